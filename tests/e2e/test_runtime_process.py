"""The process runtime for real: `inferpack supervise`d front and backends on this host.

A work root laid out by hand (two model versions, licensed for this machine), then the
installer's moves: front + backend + routes, a crash, a version switch under a client loop,
and a stop that leaves nothing behind. The helpers are shared with the docker runtime's test.
"""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import aiohttp
import psutil
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.process_runtime import ProcessRuntime
from inferpack.deploy.routes import Backend, write_routes
from inferpack.deploy.runtime import BackendSpec, InstanceStatus, Runtime
from inferpack.license.fingerprint import LicenseRequest, collect
from inferpack.license.keys import public_pem
from inferpack.license.licfile import issue_license
from tests.conftest import RED, b64, encode, solid
from tests.onnx_models import colour_classifier

# Version 2 names the same classes differently, so an answer says which version gave it.
LABELS = {"1.0.0": "red", "2.0.0": "rouge"}
IMAGE = b64(encode(solid(RED)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def lay_out(root: Path, name: str) -> ServiceLayout:
    """A work root as the installer leaves it: two versions side by side, a vendor key and a
    license for this machine (every installed backend enforces one)."""
    layout = ServiceLayout(root, name)
    vendor = Ed25519PrivateKey.generate()
    layout.home.mkdir(parents=True)
    layout.vendor_key.write_bytes(public_pem(vendor.public_key()))
    here = collect("/")
    request = LicenseRequest(here.components, here.summary, "0.1.0", "2026-01-01T00:00:00Z")
    layout.license_dir.mkdir()
    layout.license_file.write_text(issue_license(vendor, request, [name], days=30))
    colour_classifier(layout.versions / "1.0.0")
    colour_classifier(layout.versions / "2.0.0", labels=["rouge", "vert", "bleu"], version="2.0.0")
    for path in [layout.root, *layout.root.rglob("*")]:  # the container user reads the model
        path.chmod(0o755 if path.is_dir() else 0o644)
    return layout


def wait_for(check: Callable[[], bool], timeout_s: float, what: str, details: Callable[[], str]) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout_s}s:\n{details()}")
        time.sleep(0.1)


def instance(runtime: Runtime, layout: ServiceLayout, slot: str | None) -> InstanceStatus | None:
    return next((i for i in runtime.instances(layout) if i.slot == slot), None)


def wait_healthy(runtime: Runtime, layout: ServiceLayout, slot: str | None, timeout_s: float = 60) -> None:
    def healthy() -> bool:
        found = instance(runtime, layout, slot)
        return found is not None and found.health == "healthy"

    wait_for(healthy, timeout_s, f"{slot or 'front'} healthy", lambda: runtime.logs(layout, slot or "front"))


async def predict(session: aiohttp.ClientSession, port: int, name: str) -> tuple[int, str]:
    url = f"http://127.0.0.1:{port}/{name}/ImageClassification"
    async with session.post(url, json={"image": IMAGE, "top_num": 1}) as response:
        body = await response.json()
        return response.status, body["results"][0]["name"] if response.status == 200 else str(body)


@dataclass
class LoopResult:
    requests: int
    failures: list[str]
    answers: list[tuple[float, str]]  # (when the request was sent, the top label), in answer order
    old_stopped_at: float  # the installer's stop of the old backend returned
    duration_s: float

    def __str__(self) -> str:
        return f"{self.requests} requests, {len(self.failures)} failed, {self.duration_s:.1f}s"

    def sent_after_stop(self) -> list[str]:
        return [answer for sent, answer in self.answers if sent > self.old_stopped_at]


async def switch_under_client_loop(
    runtime: Runtime, layout: ServiceLayout, front_port: int, old: Backend, new: Backend, workers: int = 4
) -> LoopResult:
    """Clients call the front in a loop while routes.json moves to ``new`` and ``old`` is stopped
    (SIGTERM, drained) at once, as the installer does."""
    answers: list[tuple[float, str]] = []
    failures: list[str] = []
    stop = asyncio.Event()

    async def worker(session: aiohttp.ClientSession) -> None:
        while not stop.is_set():
            sent = time.monotonic()
            try:
                status, answer = await predict(session, front_port, layout.name)
            except aiohttp.ClientError as exc:
                failures.append(repr(exc))
                continue
            if status == 200:
                answers.append((sent, answer))
            else:
                failures.append(f"{status} {answer}")

    started = time.monotonic()
    async with aiohttp.ClientSession() as session:
        clients = [asyncio.ensure_future(worker(session)) for _ in range(workers)]
        await asyncio.sleep(1.0)
        write_routes(layout, new)
        await asyncio.to_thread(runtime.stop_backend, layout, old.slot)
        stopped_at = time.monotonic()
        await asyncio.sleep(1.0)
        stop.set()
        await asyncio.gather(*clients)
    duration = time.monotonic() - started
    return LoopResult(len(answers) + len(failures), failures, answers, stopped_at, duration)


def service_processes(layout: ServiceLayout) -> list[psutil.Process]:
    """Live processes started for this work root (zombies are not: they only await reaping)."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = " ".join(process.info["cmdline"] or [])
        if str(layout.home) in cmdline and process.info["status"] != psutil.STATUS_ZOMBIE:
            found.append(process)
    return found


@pytest.fixture
def layout(tmp_path: Path) -> Iterator[ServiceLayout]:
    layout = lay_out(tmp_path / "work", "proc")
    yield layout
    for process in service_processes(layout):  # a failed test leaves nothing running either
        process.kill()


def test_supervised_front_and_backends_serve_restart_switch_and_stop(layout: ServiceLayout) -> None:
    runtime = ProcessRuntime()
    assert runtime.available()[0]
    front_port, port1, port2 = free_port(), free_port(), free_port()
    v1, v2 = Backend("1-0-0", port1, "1.0.0"), Backend("2-0-0", port2, "2.0.0")

    front = runtime.ensure_front(layout, front_port, None)
    runtime.start_backend(layout, BackendSpec(v1.slot, v1.version, v1.port))
    write_routes(layout, v1)
    assert runtime.ensure_front(layout, front_port, None).details["pid"] == front.details["pid"]  # idempotent
    wait_healthy(runtime, layout, v1.slot)
    wait_healthy(runtime, layout, None)

    async def one() -> tuple[int, str]:
        async with aiohttp.ClientSession() as session:
            return await predict(session, front_port, layout.name)

    assert asyncio.run(one()) == (200, "red")

    # A crash: the supervisor restarts the server; meanwhile the front retries.
    crashed = instance(runtime, layout, v1.slot)
    assert crashed is not None and crashed.restarts == 0
    os.kill(int(crashed.details["pid"]), signal.SIGKILL)
    wait_healthy(runtime, layout, v1.slot)
    restarted = instance(runtime, layout, v1.slot)
    assert restarted is not None and restarted.restarts == 1 and restarted.exit_code == 137
    assert restarted.details["pid"] != crashed.details["pid"]
    assert asyncio.run(one()) == (200, "red")

    # A version switch under load.
    runtime.start_backend(layout, BackendSpec(v2.slot, v2.version, v2.port))
    wait_healthy(runtime, layout, v2.slot)
    loop = asyncio.run(switch_under_client_loop(runtime, layout, front_port, v1, v2))
    print(f"process switch: {loop}")
    assert loop.failures == []
    assert loop.answers[0][1] == "red"
    assert loop.sent_after_stop() and set(loop.sent_after_stop()) == {"rouge"}
    assert [i.slot for i in runtime.instances(layout)] == [None, v2.slot]  # the front, then v2

    runtime.stop_backend(layout, v2.slot)
    runtime.stop_front(layout)
    runtime.stop_front(layout)  # idempotent
    assert runtime.instances(layout) == []
    assert service_processes(layout) == []
    assert "supervisor exits" in (layout.logs_dir / v1.slot / "supervise.log").read_text()
    assert "shutting down" in (layout.logs_dir / v2.slot / "server.log").read_text()


def test_starting_again_keeps_or_replaces_what_runs(layout: ServiceLayout) -> None:
    runtime = ProcessRuntime()
    spec = BackendSpec("1-0-0", "1.0.0", free_port())
    try:
        first = runtime.start_backend(layout, spec)
        again = runtime.start_backend(layout, spec)
        assert again.details["pid"] == first.details["pid"] and again.state == "running"
        moved = runtime.start_backend(layout, BackendSpec("1-0-0", "1.0.0", free_port()))
        assert moved.details["supervisor_pid"] != first.details["supervisor_pid"]
        assert [i.port for i in runtime.instances(layout)] == [moved.port]
        assert str(first.details["supervisor_pid"]) not in {str(p.pid) for p in service_processes(layout)}
    finally:
        runtime.stop_backend(layout, "1-0-0", timeout_s=10)
    with pytest.raises(FileNotFoundError, match=r"9\.9\.9"):
        runtime.start_backend(layout, BackendSpec("9-9-9", "9.9.9", free_port()))
