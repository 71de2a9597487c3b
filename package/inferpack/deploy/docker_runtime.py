"""The docker runtime: the front and each backend in a container of the server image.

Containers use the host network (see runtime.py), restart ``unless-stopped``, and carry labels
(``io.inferpack.service``, ``.role``, ``.slot``, ``.version``, ``.port``) from which
``instances`` reads the service back, plus ``io.inferpack.config``, a hash of how the
container was made: starting again with the same settings keeps the running container,
different settings replace it. The docker SDK is imported on first use, so hosts without it
can still use the process runtime.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import json
import os
from dataclasses import asdict
from pathlib import Path
from typing import TYPE_CHECKING, Any

from inferpack.deploy.image import SERVICE_UID
from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.routes import FRONT_HEALTH_PATH, ROUTES_FILE
from inferpack.deploy.runtime import (
    DEFAULT_FRONT,
    FRONT,
    BackendSpec,
    FrontOptions,
    InstanceStatus,
    Runtime,
    full_instance_name,
    instance_name,
)
from inferpack.license.fingerprint import HOST_SOURCES
from inferpack.license.registry import RUN_REGISTRY, registry_dir

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.containers import Container

LABEL = "io.inferpack"
ENTRYPOINT = ["/usr/bin/tini", "--", "inferpack"]
MODEL, LICENSE, VENDOR_KEY = "/opt/inferpack/model", "/opt/inferpack/license", "/opt/inferpack/vendor.pub"
STATE, LOGS, HOST_ROOT = "/var/lib/inferpack", "/var/log/inferpack", "/host"
ROUTES = f"{STATE}/{ROUTES_FILE}"
STOP_TIMEOUT_S = 30  # above the server's shutdown_timeout_s (15 s) and the front's retry deadline
SECOND_NS = 1_000_000_000
RUNNING = ("running", "restarting")  # restarting: its policy is at work, a new one would do no better
PROBE = (
    "import urllib.request as r; "
    "r.build_opener(r.ProxyHandler({{}})).open('http://127.0.0.1:{port}{path}', timeout=2)"
)


class DockerRuntime(Runtime):
    name = "docker"

    def __init__(self, client: DockerClient | None = None, *, health_interval_s: float | None = None) -> None:
        """``health_interval_s``: how often Docker probes health (default: the image's 5 s)."""
        self._client = client
        self.health_interval_s = health_interval_s

    @property
    def client(self) -> DockerClient:
        if self._client is None:
            import docker

            self._client = docker.from_env()
        return self._client

    def available(self) -> tuple[bool, str]:
        import docker

        try:
            self.client.ping()
            version = self.client.version()
        except docker.errors.DockerException as exc:
            return False, f"Docker Engine unreachable: {exc}"
        return True, f"Docker Engine {version.get('Version')} (API {version.get('ApiVersion')})"

    def start_backend(self, layout: ServiceLayout, spec: BackendSpec) -> InstanceStatus:
        if spec.image is None:
            raise ValueError("the docker runtime needs BackendSpec.image")
        model = layout.versions / spec.version
        if not model.is_dir():
            raise FileNotFoundError(f"version {spec.version} is not installed: no {model}")
        logs = _service_dir(layout.logs_dir / spec.slot)
        _service_dir(layout.state_dir)
        layout.license_dir.mkdir(parents=True, exist_ok=True)  # mounted even when empty: `lu` fills it
        volumes = {
            str(model): {"bind": MODEL, "mode": "ro"},
            str(layout.license_dir): {"bind": LICENSE, "mode": "ro"},
            str(layout.state_dir): {"bind": STATE, "mode": "rw"},
            str(logs): {"bind": LOGS, "mode": "rw"},
        }
        if layout.vendor_key.is_file():
            volumes[str(layout.vendor_key)] = {"bind": VENDOR_KEY, "mode": "ro"}
        # The host-wide count of licensed instances (license/registry.py), shared by every container.
        volumes[str(registry_dir())] = {"bind": str(RUN_REGISTRY), "mode": "rw"}
        for path, below in HOST_SOURCES:  # the fingerprint, read live (never a file we wrote)
            if os.path.exists(path):
                volumes[path] = {"bind": f"{HOST_ROOT}/{below}", "mode": "ro"}
        command = [
            "serve", MODEL, "--name", layout.name, "--host", "127.0.0.1", "--port", str(spec.port),
            "--state-dir", STATE, "--log-dir", LOGS, "--host-root", HOST_ROOT,
            *_license_args(layout), *_gpu_args(spec), *spec.serve_args,
        ]  # fmt: skip
        settings: dict[str, Any] = {
            "image": spec.image,
            "command": command,
            "volumes": volumes,
            # The image's HEALTHCHECK probes /readyz on INFERPACK_PORT.
            "environment": {"INFERPACK_PORT": str(spec.port), "INFERPACK_HOST": "127.0.0.1"},
            "healthcheck": {"interval": self._interval_ns()} if self.health_interval_s else None,
            "gpu": spec.gpu,
        }
        labels = {"role": "backend", "slot": spec.slot, "version": spec.version, "port": str(spec.port)}
        return self._ensure(layout, instance_name(layout, spec.slot), labels, settings)

    def stop_backend(self, layout: ServiceLayout, slot: str, timeout_s: float = 30.0) -> None:
        self._stop(instance_name(layout, slot), timeout_s)

    def ensure_front(
        self, layout: ServiceLayout, port: int, image: str | None, options: FrontOptions = DEFAULT_FRONT
    ) -> InstanceStatus:
        """Keeps a front that runs on ``port`` with these options, even from an older image:
        replacing it would refuse clients' connections for a moment, and the proxy rarely changes."""
        if image is None:
            raise ValueError("the docker runtime needs the server image for the front")
        import docker

        wanted = {"port": str(port), "options": _options_label(options)}
        with contextlib.suppress(docker.errors.NotFound):
            running = self.client.containers.get(instance_name(layout))
            found = {key: running.labels.get(f"{LABEL}.{key}", "") for key in wanted}
            if running.status == "running" and found == wanted:
                return _status(running)
        _service_dir(layout.state_dir)
        logs = _service_dir(layout.logs_dir / FRONT)
        probe = PROBE.format(port=port, path=FRONT_HEALTH_PATH)
        settings: dict[str, Any] = {
            "image": image,
            "command": ["front", "--port", str(port), "--routes", ROUTES, "--log-dir", LOGS, *options.args()],
            # The front only reads the routes there.
            "volumes": {
                str(layout.state_dir): {"bind": STATE, "mode": "ro"},
                str(logs): {"bind": LOGS, "mode": "rw"},
            },
            "environment": {},
            "healthcheck": {
                "test": ["CMD", "/opt/inferpack/venv/bin/python", "-I", "-S", "-c", probe],
                "interval": self._interval_ns() if self.health_interval_s else 5 * SECOND_NS,
                "timeout": 3 * SECOND_NS,
                "retries": 3,
                "start_period": 10 * SECOND_NS,
            },
            "gpu": None,
        }
        return self._ensure(layout, instance_name(layout), {"role": FRONT, **wanted}, settings)

    def stop_front(self, layout: ServiceLayout, timeout_s: float = 30.0) -> None:
        self._stop(instance_name(layout), timeout_s)

    def instances(self, layout: ServiceLayout) -> list[InstanceStatus]:
        containers = self.client.containers.list(
            all=True, filters={"label": f"{LABEL}.service={layout.name}"}
        )
        ours = [c for c in containers if _home_of(c) in ("", str(layout.home))]  # "": made before the label
        return sorted((_status(c) for c in ours), key=lambda s: (s.role != FRONT, s.name))

    def logs(self, layout: ServiceLayout, name: str, tail: int = 200) -> str:
        import docker

        name = full_instance_name(layout, name)
        try:
            output: bytes = self.client.containers.get(name).logs(tail=tail)
        except docker.errors.NotFound:
            return f"(no container {name})"
        return output.decode(errors="replace")

    def _interval_ns(self) -> int:
        assert self.health_interval_s is not None
        return int(self.health_interval_s * SECOND_NS)

    def _ensure(
        self, layout: ServiceLayout, name: str, labels: dict[str, str], settings: dict[str, Any]
    ) -> InstanceStatus:
        import docker

        config = hashlib.sha256(json.dumps(settings, sort_keys=True).encode()).hexdigest()[:16]
        with contextlib.suppress(docker.errors.NotFound):
            container = self.client.containers.get(name)
            if _home_of(container) not in ("", str(layout.home)):  # never replace another work root's
                raise FileExistsError(errno.EEXIST, "taken", f"container {name} of {_home_of(container)}")
            if container.labels.get(f"{LABEL}.config") == config and container.status in RUNNING:
                return _status(container)
        self._stop(name, STOP_TIMEOUT_S)  # another config, or not running: made anew
        gpu = settings["gpu"]
        api = self.client.api  # the low-level API: containers.run() cannot set stop_timeout
        host_config = api.create_host_config(
            network_mode="host",
            restart_policy={"Name": "unless-stopped"},
            binds=settings["volumes"],
            # The code and the model are read-only; what is written goes to the mounts or /tmp.
            read_only=True,
            tmpfs={"/tmp": ""},
            log_config=docker.types.LogConfig(type="json-file", config={"max-size": "10m", "max-file": "3"}),
            device_requests=None
            if gpu is None
            else [docker.types.DeviceRequest(device_ids=[str(gpu)], capabilities=[["gpu"]])],
        )
        created = api.create_container(
            settings["image"],
            settings["command"],
            entrypoint=ENTRYPOINT,
            name=name,
            labels={
                f"{LABEL}.service": layout.name,
                f"{LABEL}.home": str(layout.home),  # the same name may be installed in another work root
                f"{LABEL}.config": config,
                **{f"{LABEL}.{key}": value for key, value in labels.items()},
            },
            environment=settings["environment"],
            healthcheck=settings["healthcheck"],
            host_config=host_config,
            stop_timeout=STOP_TIMEOUT_S,
            use_config_proxy=False,  # nothing here goes out; a proxy would only capture 127.0.0.1
        )
        api.start(created["Id"])
        container = self.client.containers.get(created["Id"])
        return _status(container)

    def _stop(self, name: str, timeout_s: float) -> None:
        """SIGTERM (tini passes it on; requests in flight finish), SIGKILL after ``timeout_s``."""
        import docker

        with contextlib.suppress(docker.errors.NotFound):
            container = self.client.containers.get(name)
            container.stop(timeout=int(timeout_s))
            container.remove(force=True)


def _status(container: Container) -> InstanceStatus:
    attrs = container.attrs
    state = attrs.get("State", {})
    labels = container.labels
    port = labels.get(f"{LABEL}.port")
    return InstanceStatus(
        name=container.name or "",
        role=labels.get(f"{LABEL}.role", "backend"),
        slot=labels.get(f"{LABEL}.slot"),
        state=state.get("Status", "unknown"),
        health=state.get("Health", {}).get("Status", "none"),
        port=int(port) if port and port.isdigit() else None,
        restarts=int(attrs.get("RestartCount", 0)),
        exit_code=state.get("ExitCode"),
        started_at=state.get("StartedAt"),
        version=labels.get(f"{LABEL}.version"),
        details={
            "id": container.short_id,
            "image": str(attrs.get("Config", {}).get("Image", "")),
            "home": _home_of(container),
        },
    )


def _service_dir(path: Path) -> Path:
    """A folder the container's user (uid 10001) can write to, with everything already in it:
    logs and state kept from a process-runtime install (owned by root) included."""
    path.mkdir(parents=True, exist_ok=True)
    if os.geteuid() == 0:
        for folder, _, files in os.walk(path):
            for entry in (folder, *(os.path.join(folder, name) for name in files)):
                os.chown(entry, SERVICE_UID, SERVICE_UID, follow_symlinks=False)
    return path


def _home_of(container: Container) -> str:
    return str(container.labels.get(f"{LABEL}.home", ""))


def _options_label(options: FrontOptions) -> str:
    return json.dumps(asdict(options), sort_keys=True)


def _gpu_args(spec: BackendSpec) -> list[str]:
    """With a GPU the server picks its fastest backend; the device request makes the chosen GPU
    the container's only one, device 0. Before ``serve_args``, so an operator's tuning wins."""
    return [] if spec.gpu is None else ["--backend", "auto", "--device-id", "0"]


def _license_args(layout: ServiceLayout) -> list[str]:
    """Always: with no license file yet the server answers 337000 until `lu` puts one there.
    The vendor key counts only where the image pins none (license/pinned.py)."""
    return ["--license", f"{LICENSE}/{layout.license_file.name}", "--vendor-key", VENDOR_KEY]
