"""The swarm runtime's parts that need no swarm: what it asks Swarm for, the next step it gives for
a task that cannot start, its tuning, and the front spreading over the addresses a name has."""

from __future__ import annotations

from pathlib import Path

import aiohttp
import pytest

from inferpack.deploy.front import FrontConfig, start_front
from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.routes import Backend, Routes, RoutesError
from inferpack.deploy.swarm.specs import REPLICA_PORT, SwarmTuning, front_spec, replicas_spec
from inferpack.deploy.swarm.tasks import next_step
from inferpack.deploy.upstream_dns import DnsUpstreams
from inferpack.license.fingerprint import HOST_SOURCES

from .test_front import FakeBackend, free_port

IMAGE_ID = "sha256:" + "ab" * 32


def test_the_replicas_spec_keeps_the_single_host_guarantees(tmp_path: Path) -> None:
    layout = ServiceLayout(tmp_path, "cats")
    spec = replicas_spec(
        layout,
        image_id=IMAGE_ID,
        version="1.0.0",
        replicas=3,
        license_secret=("sid", "inferpack-cats-license-0123"),
        vendor_config=("cid", "inferpack-cats-vendor-4567"),
        tuning=SwarmTuning(health_interval_s=2, monitor_s=7),
    )
    assert spec["image"] == IMAGE_ID  # by id: a node runs the signed image or nothing
    assert spec["mode"] == {"replicated": {"Replicas": 3}}
    update = spec["update_config"]
    assert (update["Parallelism"], update["Order"], update["FailureAction"]) == (1, "start-first", "rollback")
    assert update["Monitor"] == 7 * 10**9
    assert spec["rollback_config"]["Order"] == "start-first"
    assert spec["healthcheck"]["Test"][-1].endswith("/readyz', timeout=2)")
    assert spec["healthcheck"]["Interval"] == 2 * 10**9
    assert spec["read_only"] and spec["endpoint_spec"]["Mode"] == "dnsrr"
    (secret,) = spec["secrets"]
    assert (
        secret["File"]["Name"]
        == "/opt/inferpack/license/license.lic"
        == spec["args"][spec["args"].index("--license") + 1]
    )
    assert secret["File"]["Mode"] == 0o440
    mounts = {m["Target"]: m for m in spec["mounts"]}
    assert mounts["/opt/inferpack/model"]["Source"] == str(layout.versions / "1.0.0")
    for path, below in HOST_SOURCES:  # the license is checked against the node a replica runs on
        if not Path(path).exists():  # a bind of a missing path would fail every task
            assert f"/host/{below}" not in mounts
            continue
        assert mounts[f"/host/{below}"]["Source"] == path and mounts[f"/host/{below}"]["ReadOnly"]
    labels = spec["container_labels"]
    assert labels["io.inferpack.version"] == "1.0.0" and labels["io.inferpack.license"].endswith("0123")


def test_the_front_is_one_per_node_on_a_host_mode_port(tmp_path: Path) -> None:
    spec = front_spec(ServiceLayout(tmp_path, "cats"), image_id=IMAGE_ID, port=8088, tuning=SwarmTuning())
    assert spec["mode"] == {"global": {}}
    (port,) = spec["endpoint_spec"]["Ports"]
    assert (port["PublishedPort"], port["TargetPort"], port["PublishMode"]) == (8088, 8088, "host")
    assert spec["args"][-1] == f"tasks.inferpack-cats:{REPLICA_PORT}"


@pytest.mark.parametrize(
    ("error", "expected"),
    [
        ("No such image: sha256:abcd", "on node n2: load the package's image (bash original/download.sh"),
        ("invalid mount config for type \"bind\": bind source path does not exist: /opt/w/cats/versions/1",
         "on node n2: /opt/w/cats/versions/1 is missing"),
        ("no suitable node (insufficient resources on 1 node)", "no node has the CPU/memory"),
        ("task: non-zero exit (1)", "docker service ps --no-trunc"),
    ],
)  # fmt: skip
def test_a_task_that_cannot_start_says_what_to_do_on_its_node(error: str, expected: str) -> None:
    step = next_step(error, "n2", "sha256:abcd")
    assert expected in step
    if "image" in expected:
        assert "sha256:abcd" in step  # the id to check the load against


def test_tuning_from_the_environment() -> None:
    tuning = SwarmTuning.from_env({"INFERPACK_SWARM_MONITOR_S": "2.5", "INFERPACK_SWARM_MEMORY_MB": "512"})
    assert (tuning.monitor_s, tuning.memory_mb, tuning.health_interval_s) == (2.5, 512, 5.0)
    for bad in ("x", "0", "-1"):
        with pytest.raises(ValueError, match="INFERPACK_SWARM_CPUS"):
            SwarmTuning.from_env({"INFERPACK_SWARM_CPUS": bad})


def test_a_backend_on_another_host_round_trips_and_a_bad_host_is_refused() -> None:
    remote = Backend("replica", 8080, "1.0.0", "tasks.inferpack-cats")
    assert Backend.from_json(remote.to_json()) == remote
    assert "host" not in Backend("a", 1, "1").to_json()  # routes.json on one host is unchanged
    for hostile in ("evil.com/x", "", "a b", 7):
        with pytest.raises(RoutesError):
            Backend.from_json({"slot": "s", "port": 1, "version": "1", "host": hostile})
    # two replicas share the port: both are tried
    assert len(Routes(Backend("a", 80, "", "10.0.0.1"), (Backend("b", 80, "", "10.0.0.2"),)).backends) == 2


@pytest.mark.parametrize("upstream", ["nohostport", ":80", "host:", "host:0", "host:99999", "host:x"])
def test_a_bad_upstream_is_refused(upstream: str) -> None:
    with pytest.raises(ValueError, match="HOST:PORT"):
        DnsUpstreams.parse(upstream)


async def test_each_request_starts_at_the_next_address() -> None:
    upstreams = DnsUpstreams("replicas", 8080)
    assert upstreams.next_routes() is None
    upstreams.routes = Routes(Backend("1", 8080, "", "10.0.0.1"), (Backend("2", 8080, "", "10.0.0.2"),))
    firsts = [routes.active.host for routes in (upstreams.next_routes() for _ in range(4)) if routes]
    assert firsts == ["10.0.0.1", "10.0.0.2", "10.0.0.1", "10.0.0.2"]


async def test_the_front_forwards_to_what_the_name_resolves_to() -> None:
    backend = await FakeBackend("replica").start()
    front = await start_front(
        FrontConfig(routes_file=None, port=free_port(), upstream=f"localhost:{backend.port}")
    )
    try:
        async with aiohttp.ClientSession() as session:
            port = front.runner.addresses[0][1]
            async with session.post(
                f"http://127.0.0.1:{port}/cats/ImageClassification", data=b"{}"
            ) as response:
                assert response.status == 200
        assert backend.calls == 1
    finally:
        await front.stop()
        await backend.stop()
