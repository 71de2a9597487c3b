"""The doctor on a swarm service: one result per task, with the next step on the task's node."""

from __future__ import annotations

from pathlib import Path

from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.routes import Backend, Routes
from inferpack.deploy.runtime import InstanceStatus
from inferpack.deploy.settings import ServiceSettings
from inferpack.deploy.swarm.runtime import SwarmRuntime
from inferpack.deploy.swarm.tasks import next_step
from inferpack.doctor.context import Service
from inferpack.doctor.service_checks import instances


def _task(name: str, state: str, health: str, node: str, error: str = "") -> InstanceStatus:
    details = {"node": node}
    if error:
        details |= {"error": error, "next": next_step(error, node, "sha256:ab")}
    return InstanceStatus(name, "backend", "replica", state, health, None, version="1.0.0", details=details)


def test_every_replica_is_checked_on_its_node(tmp_path: Path) -> None:
    settings = ServiceSettings(name="cats", runtime="swarm", port=8080, replicas=3)
    tasks = [
        InstanceStatus(
            "inferpack-cats-front.n1", "front", None, "running", "healthy", 8080, details={"node": "n1"}
        ),
        _task("inferpack-cats.1", "running", "healthy", "n1"),
        _task("inferpack-cats.2", "running", "unhealthy", "n1"),
        _task("inferpack-cats.3", "rejected", "starting", "n2", "No such image: sha256:ab"),
    ]
    routes = Routes(Backend("replica", 8080, "1.0.0", "tasks.inferpack-cats"))
    service = Service(ServiceLayout(tmp_path, "cats"), settings, SwarmRuntime(), routes, None, tasks)
    results = {(r.found.split(":")[0], r.status) for r in instances(service)}
    assert ("inferpack-cats.1 (replica of version 1.0.0 on node n1)", "PASS") in results
    assert ("inferpack-cats.2 (replica of version 1.0.0 on node n1)", "FAIL") in results
    by_check = {r.found: r for r in instances(service)}
    missing = next(r for d, r in by_check.items() if d.startswith("inferpack-cats.3 on node n2"))
    assert missing.status == "FAIL" and "on node n2: load the package's image" in missing.next_step
    assert any(r.name == "replicas" and r.found == "2 of 3 replicas running" for r in by_check.values())
