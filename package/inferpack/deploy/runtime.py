"""How a deployed service's processes run: Docker containers, or supervised local processes.

A service is a stable **front** listening on the public port, and one or more **backends**
(one per model version being served) listening on loopback ports. The front forwards each
request to the active backend named in ``state/routes.json``; switching version is a rewrite
of that file, so clients keep their connections and never see the switch (see front.py).

Everything runs on the host network and talks over 127.0.0.1: no NAT between front and
backends, the same addresses for both runtimes, and the installer probes a backend at the
same URL the front uses. The installer's steps are the same for both runtimes; only what is
behind this interface differs.
"""

from __future__ import annotations

import re
from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import ClassVar

from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.serve_args import check_serve_args

SLOT = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")  # part of container names and file names
FRONT = "front"


def instance_name(layout: ServiceLayout, slot: str | None = None) -> str:
    """``inferpack-NAME-front``, or ``inferpack-NAME-SLOT`` for a backend: a container name in
    the docker runtime, a process label (and file names) in the process runtime."""
    if slot is not None and (SLOT.fullmatch(slot) is None or slot == FRONT):
        raise ValueError(f"backend slot {slot!r} must match {SLOT.pattern} and not be {FRONT!r}")
    return f"inferpack-{layout.name}-{slot or FRONT}"


def full_instance_name(layout: ServiceLayout, name: str) -> str:
    """``name`` as ``instance_name`` makes it, from itself or from a slot or "front"."""
    if name.startswith(f"inferpack-{layout.name}-"):
        return name
    return instance_name(layout, None if name == FRONT else name)


@dataclass(frozen=True)
class BackendSpec:
    """One backend: a model version served by ``inferpack serve`` on a loopback port."""

    slot: str  # unique within the service, e.g. the version with dots made safe: "1.2.0" -> "1-2-0"
    version: str
    port: int  # 127.0.0.1:port
    image: str | None = None  # Docker image (docker runtime)
    gpu: int | None = None  # GPU index for a device request
    serve_args: tuple[str, ...] = ()  # extra `inferpack serve` flags: tuning only (serve_args.py)

    def __post_init__(self) -> None:
        check_serve_args(self.serve_args)


@dataclass(frozen=True)
class FrontOptions:
    """How the front answers clients: where it listens, and the status of EasyDL errors."""

    bind: str = "0.0.0.0"  # all interfaces, as EasyDL's servers
    errors_as_200: bool = False  # legacy clients that read the body only on HTTP 200

    def args(self) -> list[str]:
        """The ``inferpack front`` flags for these options."""
        return ["--host", self.bind, *(["--errors-as-200"] if self.errors_as_200 else [])]


DEFAULT_FRONT = FrontOptions()


@dataclass(frozen=True)
class InstanceStatus:
    """What the runtime knows about one front or backend."""

    name: str  # container name or process label
    role: str  # "front" or "backend"
    slot: str | None
    state: str  # "running", "exited", "restarting", "missing", ...
    health: str  # "healthy", "unhealthy", "starting", "none"
    port: int | None
    restarts: int = 0
    exit_code: int | None = None
    started_at: str | None = None
    version: str | None = None  # the model version a backend serves
    details: dict[str, str] = field(default_factory=dict)

    @property
    def url(self) -> str | None:
        return f"http://127.0.0.1:{self.port}" if self.port else None


class Runtime(ABC):
    """Starts, stops and inspects a service's front and backends. Every method is idempotent:
    starting what already runs with the same spec, or stopping what is gone, is not an error."""

    name: ClassVar[str]

    @abstractmethod
    def available(self) -> tuple[bool, str]:
        """Whether this runtime can work here, and a one-line description or reason."""

    @abstractmethod
    def start_backend(self, layout: ServiceLayout, spec: BackendSpec) -> InstanceStatus:
        """Starts the backend serving ``layout.versions / spec.version`` (restarting policy on)."""

    @abstractmethod
    def stop_backend(self, layout: ServiceLayout, slot: str, timeout_s: float = 30.0) -> None:
        """SIGTERM (requests in flight finish), then removes it."""

    @abstractmethod
    def ensure_front(
        self, layout: ServiceLayout, port: int, image: str | None, options: FrontOptions = DEFAULT_FRONT
    ) -> InstanceStatus:
        """Starts the front on ``port`` unless it already runs there with the same options."""

    @abstractmethod
    def stop_front(self, layout: ServiceLayout, timeout_s: float = 30.0) -> None: ...

    @abstractmethod
    def instances(self, layout: ServiceLayout) -> list[InstanceStatus]:
        """The front and every backend this runtime has for the service."""

    @abstractmethod
    def logs(self, layout: ServiceLayout, name: str, tail: int = 200) -> str:
        """The last ``tail`` lines of an instance's log; ``name`` as ``instance_name`` makes it,
        or the short form: a backend's slot, or "front"."""
