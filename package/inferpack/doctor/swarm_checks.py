"""The doctor on a swarm service: every front and replica task, on the node it runs on."""

from __future__ import annotations

from inferpack.deploy.runtime import FRONT
from inferpack.doctor.context import Service
from inferpack.doctor.result import Result, failed, passed
from inferpack.doctor.service_checks import instance_check


def swarm_tasks(service: Service) -> list[Result]:
    """Each front and replica task on its node; a task that cannot start says what to do there."""
    results = []
    for instance in service.instances:
        where = f"on node {instance.details.get('node', '?')}"
        what = "front" if instance.role == FRONT else f"replica of version {instance.version}"
        if error := instance.details.get("error"):
            step = instance.details.get("next", "see docker service ps --no-trunc")
            results.append(
                failed(service.name, "replica", f"{instance.name} {where}: {instance.state}: {error}", step)
            )
        else:
            results.append(instance_check(service, instance, f"{what} {where}"))
    running = sum(i.role != FRONT and i.state == "running" for i in service.instances)
    wanted = service.settings.replicas
    if running < wanted:
        results.append(
            failed(
                service.name,
                "replicas",
                f"{running} of {wanted} replicas running",
                "see the replica checks above",
            )
        )
    else:
        results.append(passed(service.name, "replicas", f"{running} of {wanted} replicas running"))
    return results
