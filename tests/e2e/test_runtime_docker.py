"""The docker runtime for real: the server image's front and backends on the host network.

The same moves as the process runtime's test. A crash is a SIGKILL to the server inside the
container (as the OOM killer would send): ``docker kill`` would not do, as Docker counts it as a
deliberate stop and its restart policy then leaves the container down.
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import aiohttp
import psutil
import pytest

from inferpack.deploy.docker_runtime import DockerRuntime
from inferpack.deploy.image import SERVICE_UID
from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.routes import Backend, write_routes
from inferpack.deploy.runtime import BackendSpec
from tests.e2e.test_runtime_process import (
    free_port,
    instance,
    lay_out,
    predict,
    switch_under_client_loop,
    wait_for,
    wait_healthy,
)

if TYPE_CHECKING:
    from docker import DockerClient

pytestmark = pytest.mark.docker


@pytest.fixture
def layout(tmp_path: Path, docker_client: DockerClient) -> Iterator[ServiceLayout]:
    """A service with a unique name; its containers are removed afterwards, whatever happened."""
    layout = lay_out(tmp_path / "work", f"rt-{uuid.uuid4().hex[:8]}")
    yield layout
    for container in docker_client.containers.list(
        all=True, filters={"label": f"io.inferpack.service={layout.name}"}
    ):
        container.remove(force=True)


def test_containers_serve_restart_switch_and_stop(
    layout: ServiceLayout, docker_client: DockerClient, server_image: str
) -> None:
    runtime = DockerRuntime(docker_client, health_interval_s=0.5)
    ok, description = runtime.available()
    assert ok and description.startswith("Docker Engine ")
    front_port, port1, port2 = free_port(), free_port(), free_port()
    v1, v2 = Backend("1-0-0", port1, "1.0.0"), Backend("2-0-0", port2, "2.0.0")

    front = runtime.ensure_front(layout, front_port, server_image)
    runtime.start_backend(layout, BackendSpec(v1.slot, v1.version, v1.port, image=server_image))
    write_routes(layout, v1)
    assert runtime.ensure_front(layout, front_port, server_image).details["id"] == front.details["id"]
    wait_healthy(runtime, layout, v1.slot)
    wait_healthy(runtime, layout, None)

    backend = docker_client.containers.get(f"inferpack-{layout.name}-1-0-0")
    host_config = backend.attrs["HostConfig"]
    assert host_config["NetworkMode"] == "host"
    assert host_config["RestartPolicy"]["Name"] == "unless-stopped"
    assert backend.attrs["Config"]["StopTimeout"] == 30
    assert (
        backend.labels["io.inferpack.role"] == "backend" and backend.labels["io.inferpack.version"] == "1.0.0"
    )
    mounts = {m["Destination"]: m["RW"] for m in backend.attrs["Mounts"]}
    assert mounts["/opt/inferpack/model"] is False and mounts["/opt/inferpack/license"] is False
    assert mounts["/var/lib/inferpack"] is True and mounts["/var/log/inferpack"] is True
    assert (layout.logs_dir / v1.slot).stat().st_uid == SERVICE_UID

    async def one() -> tuple[int, str]:
        async with aiohttp.ClientSession() as session:
            return await predict(session, front_port, layout.name)

    assert asyncio.run(one()) == (200, "red")

    # A crash of the server: Docker's restart policy brings the container back.
    server = psutil.Process(backend.attrs["State"]["Pid"]).children()[0]  # tini's child
    os.kill(server.pid, signal.SIGKILL)

    def restarted() -> bool:
        found = instance(runtime, layout, v1.slot)
        return found is not None and found.restarts == 1 and found.health == "healthy"

    wait_for(restarted, 60, "restart after a crash", lambda: runtime.logs(layout, v1.slot))
    assert asyncio.run(one()) == (200, "red")

    runtime.start_backend(layout, BackendSpec(v2.slot, v2.version, v2.port, image=server_image))
    wait_healthy(runtime, layout, v2.slot)
    loop = asyncio.run(switch_under_client_loop(runtime, layout, front_port, v1, v2))
    print(f"docker switch: {loop}")
    assert loop.failures == []
    assert loop.answers[0][1] == "red"
    assert loop.sent_after_stop() and set(loop.sent_after_stop()) == {"rouge"}
    assert [i.slot for i in runtime.instances(layout)] == [None, v2.slot]  # the front, then v2

    runtime.stop_backend(layout, v2.slot)
    runtime.stop_front(layout)
    runtime.stop_front(layout)  # idempotent
    assert runtime.instances(layout) == []
    assert "shutting down" in (layout.logs_dir / v2.slot / "server.log").read_text()
