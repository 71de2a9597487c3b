"""``<home>/state/routes.json``: which backend the front sends requests to.

    {"active": {"slot": "1-2-0", "port": 18081, "version": "1.2.0"},
     "standby": [{"slot": "1-1-0", "port": 18080, "version": "1.1.0"}],
     "updated": "2024-05-01T12:00:00.123456+00:00"}

``active`` gets every new request. ``standby`` (optional) lists backends that are still alive
and may answer when the active one refuses connections, e.g. the previous version while a
switch settles; the installer drops them once it has stopped them. The installer writes the
file atomically (a reader sees the old file or the new one, never half of one) and the front
polls it, so a switch is one ``write_routes`` call. ``front_routes`` asks a running front
which backend it routes to, so the installer can wait for that before stopping the old one.

Standard library only: the installer imports this before any wheel is installed.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from inferpack.deploy import loopback
from inferpack.deploy.layout import ServiceLayout
from inferpack.fileio import write_atomic

ROUTES_FILE = "routes.json"
FRONT_HEALTH_PATH = "/_front/healthz"  # answered by the front itself


class RoutesError(ValueError):
    """routes.json is missing a field or has a value of the wrong type."""


LOOPBACK = "127.0.0.1"


@dataclass(frozen=True)
class Backend:
    slot: str
    port: int
    version: str
    host: str = LOOPBACK  # another address only for a cluster's replicas (see upstream_dns.py)

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def to_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"slot": self.slot, "port": self.port, "version": self.version}
        return document if self.host == LOOPBACK else {**document, "host": self.host}

    @classmethod
    def from_json(cls, data: Any) -> Backend:
        if not isinstance(data, dict):
            raise RoutesError(f"a backend must be an object, got {data!r}")
        slot, port, version = data.get("slot"), data.get("port"), data.get("version")
        if not isinstance(slot, str) or not isinstance(version, str):
            raise RoutesError(f"backend slot and version must be strings: {data!r}")
        if isinstance(port, bool) or not isinstance(port, int) or not 0 < port < 65536:
            raise RoutesError(f"backend port must be 1-65535: {data!r}")
        host = data.get("host", LOOPBACK)
        if not isinstance(host, str) or not host or not all(c.isalnum() or c in ".:-_" for c in host):
            raise RoutesError(f"backend host must be an address or a name: {data!r}")
        return cls(slot, port, version, host)


@dataclass(frozen=True)
class Routes:
    active: Backend
    standby: tuple[Backend, ...] = ()
    updated: str = ""
    service: str = ""  # the service's folder: a front tells who holds its port

    @property
    def backends(self) -> tuple[Backend, ...]:
        """The order the front tries them in."""
        active = self.active
        return (active, *(b for b in self.standby if (b.host, b.port) != (active.host, active.port)))

    def to_json(self) -> dict[str, Any]:
        return {
            "active": self.active.to_json(),
            "standby": [b.to_json() for b in self.standby],
            "updated": self.updated,
            "service": self.service,
        }

    @classmethod
    def from_json(cls, data: Any) -> Routes:
        if not isinstance(data, dict):
            raise RoutesError("routes must be a JSON object")
        standby = data.get("standby", [])
        if not isinstance(standby, list):
            raise RoutesError("routes standby must be a list")
        updated, service = data.get("updated", ""), data.get("service", "")
        return cls(
            Backend.from_json(data.get("active")),
            tuple(Backend.from_json(b) for b in standby),
            updated if isinstance(updated, str) else "",
            service if isinstance(service, str) else "",
        )


def routes_path(layout: ServiceLayout) -> Path:
    return layout.state_dir / ROUTES_FILE


def write_routes(layout: ServiceLayout, active: Backend, standby: tuple[Backend, ...] = ()) -> Routes:
    """Points the front at ``active`` in one crash-safe rename."""
    routes = Routes(active, standby, datetime.now(UTC).isoformat(), str(layout.home))
    path = routes_path(layout)
    path.parent.mkdir(parents=True, exist_ok=True)
    # 0644: the front may run as another user (the container's).
    write_atomic(path, (json.dumps(routes.to_json(), indent=2) + "\n").encode(), mode=0o644)
    return routes


def load_routes(path: Path) -> Routes | None:
    """The routes in ``path``; None when there is no file yet. RoutesError when it is malformed."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    try:
        return Routes.from_json(json.loads(text))
    except json.JSONDecodeError as exc:
        raise RoutesError(f"{path} is not JSON: {exc}") from exc


def read_routes(layout: ServiceLayout) -> Routes | None:
    return load_routes(routes_path(layout))


def front_routes(port: int, timeout_s: float = 2.0) -> Routes | None:
    """What the front on 127.0.0.1:``port`` routes to now (its ``/_front/healthz``); None when
    it has no routes yet. OSError when no front answers."""
    with loopback.opener.open(f"http://127.0.0.1:{port}{FRONT_HEALTH_PATH}", timeout=timeout_s) as response:
        body = json.loads(response.read())
    return Routes.from_json(body["routes"]) if body.get("routes") else None
