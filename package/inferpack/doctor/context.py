"""What every check reads: the run's options, and each service as it is found on this host."""

from __future__ import annotations

import functools
import sys
from dataclasses import dataclass
from pathlib import Path

from inferpack.deploy.inventory import service_status
from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.routes import Routes, RoutesError, read_routes
from inferpack.deploy.runtime import InstanceStatus, Runtime
from inferpack.deploy.runtimes import make_runtime
from inferpack.deploy.settings import ServiceSettings
from inferpack.doctor.host_checks import DEFAULT_DISK_THRESHOLD
from inferpack.license.fingerprint import Fingerprint, collect


@dataclass(frozen=True)
class Options:
    work_root: Path
    names: tuple[str, ...] = ()  # none: every installed service
    disk_threshold: int = DEFAULT_DISK_THRESHOLD  # percent used above which disk FAILs
    scan_lines: int = 2000  # log lines read per instance
    show_lines: int = 5  # key log lines shown per instance
    timeout_s: float = 5.0  # per HTTP probe
    package_root: Path | None = None  # the unpacked deploy package we run from, if any


@dataclass(frozen=True)
class Service:
    layout: ServiceLayout
    settings: ServiceSettings
    runtime: Runtime
    routes: Routes | None
    routes_error: str | None
    instances: list[InstanceStatus]

    @property
    def name(self) -> str:
        return self.layout.name

    @property
    def start_script(self) -> Path:
        return self.layout.start_script


def load_service(layout: ServiceLayout) -> Service:
    """The service as ``status`` sees it, plus its routes; LookupError when it is not installed."""
    status = service_status(layout)
    try:
        routes, error = read_routes(layout), None
    except RoutesError as exc:
        routes, error = None, str(exc)
    runtime = make_runtime(status.settings.runtime, Path(sys.executable))
    return Service(layout, status.settings, runtime, routes, error, status.instances)


@functools.cache
def this_machine() -> Fingerprint:
    """The host's fingerprint, collected once per run (it may ask NVML/nvidia-smi)."""
    return collect(Path("/"))
