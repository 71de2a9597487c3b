"""The swarm runtime: a deploy name's replicas and fronts as Docker Swarm services (specs.py).

It answers the Runtime interface in Swarm's terms: ``start_backend`` makes the replicas
service serve a version (a rolling update that Swarm health-gates and rolls back by itself),
``ensure_front`` starts the fronts, ``instances`` lists every task with its node, and
``stop_*`` remove the services. Run it on a swarm manager.
"""

from __future__ import annotations

import contextlib
import time
from typing import TYPE_CHECKING, Any

from inferpack.deploy.docker_runtime import LABEL
from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.runtime import DEFAULT_FRONT, FRONT, BackendSpec, FrontOptions, InstanceStatus, Runtime
from inferpack.deploy.swarm import specs
from inferpack.deploy.swarm.specs import SwarmTuning

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.services import Service

# Task states that end a task, and the states Swarm passes through on the way to running.
ENDED = ("complete", "shutdown", "failed", "rejected", "orphaned", "remove")


def _runs(container_labels: dict[str, str]) -> tuple[str | None, str | None]:
    """(version, license secret) a task's labels say it runs."""
    prefix = f"{LABEL}."
    return container_labels.get(prefix + "version"), container_labels.get(prefix + "license")


class SwarmError(RuntimeError):
    """Swarm refused or undid something; the message says what and what still serves."""


class SwarmRuntime(Runtime):
    name = "swarm"

    def __init__(self, client: DockerClient | None = None, tuning: SwarmTuning | None = None) -> None:
        self._client = client
        self.tuning = tuning or SwarmTuning()
        self.replicas = 1  # what start_backend asks for when it creates the service
        self._updated = False  # whether this runtime asked Swarm for an update (start_backend)
        self._update_before: str | None = None  # the update Swarm had on record before ours

    @property
    def client(self) -> DockerClient:
        if self._client is None:
            import docker

            self._client = docker.from_env()
        return self._client

    def available(self) -> tuple[bool, str]:
        import docker

        try:
            info = self.client.info()
        except docker.errors.DockerException as exc:
            return False, f"Docker Engine unreachable: {exc}"
        swarm = info.get("Swarm", {})
        if swarm.get("LocalNodeState") != "active":
            return False, "this Docker Engine is not in a swarm (docker swarm init, or join one)"
        if not swarm.get("ControlAvailable"):
            return False, "this node is a swarm worker: run the installer on a manager"
        return True, f"Docker Swarm, {swarm.get('Nodes')} node(s), {swarm.get('Managers')} manager(s)"

    # ---- the replicas ----------------------------------------------------------------------

    def start_backend(self, layout: ServiceLayout, spec: BackendSpec) -> InstanceStatus:
        """Creates the replicas service for ``spec.version``, or rolls the running one over to it."""
        if spec.image is None:
            raise ValueError("the swarm runtime needs BackendSpec.image (the image id)")
        self._ensure_network(layout)
        secret = self._content(layout, "license", layout.license_file.read_bytes(), secret=True)
        config = self._content(layout, "vendor", layout.vendor_key.read_bytes(), secret=False)
        service = self._service(specs.replicas_name(layout))
        replicas = self.replicas if service is None else self.replica_count(service)
        kwargs = specs.replicas_spec(
            layout,
            image_id=spec.image,
            version=spec.version,
            replicas=replicas,
            license_secret=secret,
            vendor_config=config,
            tuning=self.tuning,
        )
        if service is None:
            self.client.services.create(**kwargs)
        else:
            self._update_before = (service.attrs.get("UpdateStatus") or {}).get("StartedAt")
            self._updated = True
            service.update(**kwargs)
        return InstanceStatus(specs.replicas_name(layout), "backend", "replica", "updating", "starting", None)

    def stop_backend(self, layout: ServiceLayout, slot: str, timeout_s: float = 30.0) -> None:
        self._remove(specs.replicas_name(layout), timeout_s)

    def scale(self, layout: ServiceLayout, replicas: int) -> None:
        service = self._service(specs.replicas_name(layout))
        if service is None:
            raise SwarmError(f"{layout.name} has no replicas service in this swarm")
        service.scale(replicas)

    @staticmethod
    def replica_count(service: Service) -> int:
        return int(service.attrs["Spec"]["Mode"].get("Replicated", {}).get("Replicas", 0))

    def wait_rolled_out(self, layout: ServiceLayout, timeout_s: float) -> None:
        """Until every replica runs what the service's spec says (its version and license) and has
        passed its health check; SwarmError when Swarm rolled the update back (with its reason),
        or on timeout (with what the tasks say)."""
        deadline = time.monotonic() + timeout_s
        name = specs.replicas_name(layout)
        while True:
            service = self._service(name)
            if service is None:
                raise SwarmError(f"the service {name} is gone")
            update = service.attrs.get("UpdateStatus") or {}
            state = update.get("State", "")
            # Our update's outcome, not an earlier one's still on record (or a scale's).
            ours = self._updated and update.get("StartedAt") != self._update_before
            if ours and state in ("rollback_started", "rollback_completed", "rollback_paused", "paused"):
                self._wait_rollback(name, deadline)
                raise SwarmError(f"Swarm rolled the update back: {update.get('Message', state)}")
            wanted = _runs(service.attrs["Spec"]["TaskTemplate"]["ContainerSpec"].get("Labels", {}))
            running = [i for i in self.instances(layout) if i.role == "backend" and i.state == "running"]
            current = [i for i in running if (i.version, i.details.get("license")) == wanted]
            settled = state in ("", "completed") or not ours
            if settled and len(current) == len(running) == self.replica_count(service):
                return
            if time.monotonic() > deadline:
                errors = {
                    f"{i.details['error']} (next: {i.details['next']})"
                    for i in self.instances(layout)
                    if i.details.get("error")
                }
                problems = "; ".join(sorted(errors))
                raise SwarmError(
                    f"{len(current)} of {self.replica_count(service)} replicas run version {wanted[0]} "
                    f"after {timeout_s:.0f}s" + (f": {problems}" if problems else "")
                )
            time.sleep(0.5)

    def _wait_rollback(self, name: str, deadline: float) -> None:
        while time.monotonic() < deadline:
            service = self._service(name)
            update = (service.attrs.get("UpdateStatus") or {}) if service else {}
            if update.get("State") != "rollback_started":
                return
            time.sleep(0.5)

    # ---- the fronts --------------------------------------------------------------------------

    def ensure_front(
        self, layout: ServiceLayout, port: int, image: str | None, options: FrontOptions = DEFAULT_FRONT
    ) -> InstanceStatus:
        """One front per node, listening on every address of the node (Swarm publishes host-mode
        ports on all of them: ``--bind`` has no effect here)."""
        if image is None:
            raise ValueError("the swarm runtime needs the server image for the front")
        self._ensure_network(layout)
        if self._service(specs.front_name(layout)) is None:
            spec = specs.front_spec(
                layout, image_id=image, port=port, tuning=self.tuning, errors_as_200=options.errors_as_200
            )
            self.client.services.create(**spec)
        return InstanceStatus(specs.front_name(layout), FRONT, None, "running", "starting", port)

    def stop_front(self, layout: ServiceLayout, timeout_s: float = 30.0) -> None:
        self._remove(specs.front_name(layout), timeout_s)
        with contextlib.suppress(Exception):  # the network goes once nothing uses it
            self.client.networks.get(specs.network_name(layout)).remove()

    # ---- inspection --------------------------------------------------------------------------

    def instances(self, layout: ServiceLayout) -> list[InstanceStatus]:
        from inferpack.deploy.swarm.tasks import task_status

        nodes = {n.id: n.attrs for n in self.client.nodes.list()}
        found = []
        for name in (specs.front_name(layout), specs.replicas_name(layout)):
            service = self._service(name)
            if service is None:
                continue
            for task in service.tasks():
                if task.get("DesiredState") == "running" or task["Status"]["State"] not in ENDED:
                    found.append(task_status(self.client, service, task, nodes))
        return sorted(found, key=lambda s: (s.role != FRONT, s.name))

    def logs(self, layout: ServiceLayout, name: str, tail: int = 200) -> str:
        target = specs.front_name(layout) if name == FRONT else specs.replicas_name(layout)
        service = self._service(target)
        if service is None:
            return f"(no service {target})"
        chunks = service.logs(stdout=True, stderr=True, tail=tail, timestamps=False)
        return b"".join(chunks).decode(errors="replace")

    # ---- helpers -----------------------------------------------------------------------------

    def _service(self, name: str) -> Service | None:
        import docker

        try:
            return self.client.services.get(name)
        except docker.errors.NotFound:
            return None

    def _remove(self, name: str, timeout_s: float) -> None:
        service = self._service(name)
        if service is None:
            return
        service.remove()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline and self.client.containers.list(
            all=True, filters={"label": f"com.docker.swarm.service.name={name}"}
        ):
            time.sleep(0.5)  # the tasks stop (drain) before the service is really gone

    def _ensure_network(self, layout: ServiceLayout) -> None:
        name = specs.network_name(layout)
        if not self.client.networks.list(names=[name]):
            self.client.networks.create(name, driver="overlay", labels=specs.labels(layout), attachable=False)

    def _content(self, layout: ServiceLayout, what: str, data: bytes, *, secret: bool) -> tuple[str, str]:
        """(id, name) of the secret or config holding ``data``, made unless it exists."""
        name = specs.content_name(layout, what, data)
        store: Any = self.client.secrets if secret else self.client.configs
        existing = store.list(filters={"name": name})
        found = next((item for item in existing if item.name == name), None)
        if found is None:
            found = store.create(name=name, data=data, labels=specs.labels(layout))
        return str(found.id), name

    def prune_contents(self, layout: ServiceLayout) -> None:
        """Removes this service's secrets and configs that no service uses any more."""
        import docker

        for store in (self.client.secrets, self.client.configs):
            for item in store.list(filters={"label": f"{LABEL}.service={layout.name}"}):
                with contextlib.suppress(docker.errors.APIError):  # in use: kept
                    item.remove()
