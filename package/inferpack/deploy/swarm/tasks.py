"""One Swarm task as an InstanceStatus: node, state, health, version, and what to do about it.

A task that cannot start on its node says why in its status (``No such image``, a missing bind
source); the next step is spelled out for that node rather than left as a silent pending task.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

from inferpack.deploy.docker_runtime import LABEL
from inferpack.deploy.runtime import FRONT, InstanceStatus

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.services import Service


def next_step(error: str, node: str, image: str) -> str:
    """The operator's next step for a task error, on the node it names."""
    if "No such image" in error:
        return (
            f"on node {node}: load the package's image (bash original/download.sh in the unpacked "
            f"full package) and check that `docker image inspect --format '{{{{.Id}}}}'` shows {image}"
        )
    if "bind source path does not exist" in error:
        path = error.rsplit(":", 1)[-1].strip()
        return (
            f"on node {node}: {path} is missing; copy the service's versions/ folder there and write "
            "the node's snapshot (python3 install.py fingerprint --out <work root>/NAME/license/"
            "host-fingerprint.json), as the README's 'Run on several hosts' says"
        )
    if "insufficient resources" in error or "no suitable node" in error:
        return "no node has the CPU/memory a replica asks for: add a node or lower --replicas"
    return "see docker service ps --no-trunc and docker service logs for the task"


def _health(client: DockerClient, task: dict[str, Any]) -> str:
    """The container's own health where it runs on this node; else what the task state implies
    (Swarm holds a task in "starting" until its health check passes)."""
    container_id = task["Status"].get("ContainerStatus", {}).get("ContainerID")
    if container_id:
        with contextlib.suppress(Exception):  # on another node: not visible here
            state = client.api.inspect_container(container_id)["State"]
            return str(state.get("Health", {}).get("Status", "none"))
    return "healthy" if task["Status"]["State"] == "running" else "starting"


def task_status(
    client: DockerClient, service: Service, task: dict[str, Any], nodes: dict[str, dict[str, Any]]
) -> InstanceStatus:
    spec_labels = task["Spec"]["ContainerSpec"].get("Labels", {})
    role = spec_labels.get(f"{LABEL}.role", "backend")
    node = nodes.get(task.get("NodeID", ""), {}).get("Description", {}).get("Hostname", "(not placed)")
    slot = task.get("Slot")
    name = f"{service.name}.{slot if slot is not None else node}"
    status = task["Status"]
    error = status.get("Err", "")
    image = str(task["Spec"]["ContainerSpec"]["Image"])
    details = {"node": node, "task": task["ID"][:12], "image": image, "desired": task.get("DesiredState", "")}
    details["license"] = spec_labels.get(f"{LABEL}.license", "")
    if error:
        details |= {"error": error, "next": next_step(error, node, image)}
    port = spec_labels.get(f"{LABEL}.port")
    return InstanceStatus(
        name=name,
        role=FRONT if role == FRONT else "backend",
        slot=None if role == FRONT else "replica",
        state=status["State"],
        health=_health(client, task),
        port=int(port) if port and port.isdigit() else None,
        exit_code=status.get("ContainerStatus", {}).get("ExitCode"),
        started_at=status.get("Timestamp"),
        version=spec_labels.get(f"{LABEL}.version"),
        details=details,
    )
