"""``list`` and ``status``: what is installed under a work root and how it is doing (read-only)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from inferpack.deploy.gate import readiness
from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.lu import verify_installed
from inferpack.deploy.routes import RoutesError, read_routes
from inferpack.deploy.runtime import InstanceStatus
from inferpack.deploy.runtimes import make_runtime
from inferpack.deploy.settings import ServiceSettings, load_settings
from inferpack.deploy.versions import installed_versions
from inferpack.names import is_deploy_name


@dataclass(frozen=True)
class ServiceStatus:
    layout: ServiceLayout
    settings: ServiceSettings
    serving: str | None  # the version routes.json sends traffic to
    instances: list[InstanceStatus]
    license: str

    @property
    def healthy(self) -> bool:
        front = [i for i in self.instances if i.role == "front" and i.state == "running"]
        backends = [i for i in self.instances if i.role == "backend" and i.health == "healthy"]
        return bool(front and backends)


def _installer_made(folder: Path) -> bool:
    """A service folder, by load_settings' rule; an unreadable settings.json is none either."""
    if not is_deploy_name(folder.name):
        return False
    try:
        return load_settings(ServiceLayout(folder.parent, folder.name)) is not None
    except (OSError, ValueError, TypeError):
        return False


def installed_services(root: Path) -> list[ServiceLayout]:
    if not root.is_dir():
        return []
    return [ServiceLayout(root, p.name) for p in sorted(root.iterdir()) if _installer_made(p)]


def sole_service(root: Path) -> str:
    """The name of the only service installed under ``root`` (the seed's ``lu`` takes no name);
    LookupError listing them when there are several, or none."""
    names = [layout.name for layout in installed_services(root)]
    if len(names) == 1:
        return names[0]
    if not names:
        raise LookupError(f"no service is installed under {root}")
    raise LookupError(f"{len(names)} services are installed under {root} ({', '.join(names)}): name one")


def ignored_folders(root: Path) -> list[str]:
    """Folders in the work root that look like services but are not (copies, leftovers): each
    with a note saying why it is ignored."""
    if not root.is_dir():
        return []
    notes = []
    for folder in sorted(root.iterdir()):
        if folder.is_dir() and (folder / "settings.json").is_file() and not _installer_made(folder):
            notes.append(f"{folder} is ignored: not a service the installer made here (a copy?)")
    return notes


def license_summary(layout: ServiceLayout, backend: InstanceStatus | None = None) -> str:
    """The installed license as verified here; what the running ``backend`` says wins when it
    refuses (it also checks its clock guard and what it can read of the host)."""
    refusal = _served_refusal(backend)
    if refusal is not None:
        return f"REFUSED by the running service ({refusal}): predictions answer 337000"
    state = verify_installed(layout)
    if not state.valid:
        return f"INVALID: {state.reason}"
    summary = state.summary()
    return f"valid until {summary.get('not_after')} ({summary.get('days_left')} days left)"


def _served_refusal(backend: InstanceStatus | None) -> str | None:
    if backend is None or backend.url is None:
        return None
    reason = readiness(backend.url, timeout_s=2)
    return reason.partition("license: ")[2] or None if reason else None


def service_status(layout: ServiceLayout) -> ServiceStatus:
    settings = load_settings(layout)
    if settings is None:
        raise LookupError(f"{layout.name} is not installed under {layout.root}")
    runtime = make_runtime(settings.runtime, Path(sys.executable))
    try:
        routes = read_routes(layout)
    except RoutesError:
        routes = None
    instances = [_settle_starting(i) for i in runtime.instances(layout)]
    active = next((i for i in instances if routes and i.slot == routes.active.slot), None)
    return ServiceStatus(
        layout=layout,
        settings=settings,
        serving=routes.active.version if routes else None,
        instances=instances,
        license=license_summary(layout, active),
    )


def _settle_starting(instance: InstanceStatus) -> InstanceStatus:
    """Docker says "starting" until its first probe, up to one interval after a backend starts
    (right after an update or rollback); asking /readyz now, as that probe will, gives the answer."""
    if instance.role != "backend" or instance.health != "starting" or instance.port is None:
        return instance
    ready = readiness(f"http://127.0.0.1:{instance.port}", timeout_s=2) is None
    return replace(instance, health="healthy") if ready else instance


def _uptime(started_at: str | None) -> str:
    if not started_at:
        return "-"
    try:
        started = datetime.fromisoformat(started_at.replace("Z", "+00:00"))
    except ValueError:
        return started_at
    seconds = int((datetime.now(UTC) - started).total_seconds())
    return f"{seconds // 86400}d {seconds % 86400 // 3600}h {seconds % 3600 // 60}m {seconds % 60}s"


def describe(status: ServiceStatus) -> list[str]:
    settings = status.settings
    versions = installed_versions(status.layout)
    gpu = f", GPU {settings.gpu}" if settings.gpu is not None else ""
    lines = [
        f"service   {settings.name} ({'healthy' if status.healthy else 'NOT healthy'})",
        f"version   {status.serving or 'none serving'} (installed: {', '.join(versions) or 'none'})",
        f"port      {settings.port} ({settings.runtime} runtime{gpu})",
        f"license   {status.license}",
        f"folder    {status.layout.home.absolute()}",
    ]
    for instance in status.instances:
        node = instance.details.get("node")  # a swarm task: where it runs, what it runs, what is wrong
        lines.append(
            f"{instance.role:<9} {instance.name}: {instance.state}, health {instance.health}, "
            f"restarts {instance.restarts}, up {_uptime(instance.started_at)}"
            + (f", port {instance.port}" if instance.port else "")
            + (f", node {node}, version {instance.version}" if node else "")
        )
        if error := instance.details.get("error"):
            lines.append(f"          {error}; next: {instance.details.get('next')}")
    if not status.instances:
        lines.append(f"nothing is running: bash {status.layout.start_script.absolute()} starts it")
    return lines
