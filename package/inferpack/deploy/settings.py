"""A service's saved settings (``settings.json``): everything needed to run it again by itself."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

from inferpack.deploy.layout import ServiceLayout
from inferpack.fileio import write_atomic

FORMAT = 1
ALL_INTERFACES = "0.0.0.0"  # EasyDL's servers listen on every interface


@dataclass(frozen=True)
class ServiceSettings:
    name: str
    runtime: str  # "docker", "process" or "swarm"
    port: int  # the public port the front listens on
    bind: str = ALL_INTERFACES  # the address the front listens on (--bind)
    image: str | None = None  # server image tag (docker runtime)
    gpu: int | None = None
    serve_args: tuple[str, ...] = ()
    history: tuple[str, ...] = ()  # versions in the order they served, the current one last
    backend_ports: dict[str, int] = field(default_factory=dict)  # slot -> loopback port
    replicas: int = 1  # swarm: replicas across the cluster
    errors_as_200: bool = False  # answer EasyDL errors with HTTP 200 for legacy clients (--errors-as-200)

    @property
    def local_url(self) -> str:
        """Where this host reaches the front: loopback, unless it listens on one address only."""
        host = "127.0.0.1" if self.bind in (ALL_INTERFACES, "::", "") else self.bind
        return f"http://{host}:{self.port}" if ":" not in host else f"http://[{host}]:{self.port}"

    @property
    def current_version(self) -> str | None:
        return self.history[-1] if self.history else None

    def previous_version(self) -> str | None:
        """The version that served before the current one (skipping repeats of the current)."""
        current = self.current_version
        for version in reversed(self.history[:-1]):
            if version != current:
                return version
        return None

    def activated(self, version: str) -> ServiceSettings:
        return replace(self, history=(*self.history, version)[-20:])


def save_settings(layout: ServiceLayout, settings: ServiceSettings) -> None:
    document: dict[str, Any] = {"format": FORMAT, **asdict(settings)}
    layout.home.mkdir(parents=True, exist_ok=True)
    write_atomic(layout.settings, (json.dumps(document, indent=2) + "\n").encode())


def load_settings(layout: ServiceLayout) -> ServiceSettings | None:
    """The saved settings, or None when the service was never installed here. The installer
    writes the folder's own name into them: a copy of the folder (``cp -r NAME NAME_V1``, the
    seed's backup) names another folder and is no service. ``list``, ``status``, the doctor
    and the license's ``max_instances`` all count services by this one rule."""
    path: Path = layout.settings
    if not path.is_file():
        return None
    raw = json.loads(path.read_text(encoding="utf-8"))
    raw.pop("format", None)
    raw["serve_args"] = tuple(raw.get("serve_args", ()))
    raw["history"] = tuple(raw.get("history", ()))
    settings = ServiceSettings(**raw)
    return settings if settings.name == layout.name else None
