"""The front for real: real aiohttp backends on loopback ports, real routes.json switches."""

from __future__ import annotations

import asyncio
import gzip
import hashlib
import signal
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path

import aiohttp
import pytest
from aiohttp import web
from tests.conftest import RED, b64, encode, solid
from tests.support.front import StartFront, free_port, front_process

from inferpack.config import ServerConfig
from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.routes import Backend, front_routes, routes_path, write_routes
from inferpack.server.app import start_server


@dataclass
class FakeBackend:
    """A small aiohttp app that says who it is and echoes what it received."""

    name: str
    port: int = field(default_factory=free_port)
    calls: int = 0
    runner: web.AppRunner | None = None

    @property
    def route(self) -> Backend:
        return Backend(self.name, self.port, f"{self.name}.0")

    async def start(self) -> FakeBackend:
        app = web.Application(client_max_size=16 * 1024 * 1024)
        app.router.add_route("*", "/{tail:.*}", self.handle)
        self.runner = web.AppRunner(app, access_log=None, shutdown_timeout=5)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()
        return self

    async def stop(self) -> None:
        """Graceful, as `inferpack serve` on SIGTERM: stop listening, finish requests in flight."""
        if self.runner is not None:
            await self.runner.cleanup()

    async def handle(self, request: web.Request) -> web.StreamResponse:
        self.calls += 1
        body = await request.read()
        if request.path == "/slow":
            await asyncio.sleep(float(request.query["s"]))
        if request.path == "/gzip":
            return web.Response(body=gzip.compress(b"squeezed"), headers={"Content-Encoding": "gzip"})
        return web.json_response(
            {
                "backend": self.name,
                "method": request.method,
                "raw_path": request.raw_path,
                "headers": {k.lower(): v for k, v in request.headers.items()},
                "body_sha256": hashlib.sha256(body).hexdigest(),
            },
            status=int(request.query.get("status", 200)),
            headers={"X-Backend": self.name, "Trailer": "X-Checksum", "Set-Cookie": "a=1"},
        )


@pytest.fixture
async def backends() -> AsyncIterator[Callable[[str], Awaitable[FakeBackend]]]:
    started: list[FakeBackend] = []

    async def start(name: str) -> FakeBackend:
        started.append(await FakeBackend(name).start())
        return started[-1]

    yield start
    for backend in started:
        await backend.stop()


async def test_forwards_method_path_query_headers_and_body(
    layout: ServiceLayout, front: StartFront, backends: Callable[[str], Awaitable[FakeBackend]]
) -> None:
    a = await backends("a")
    write_routes(layout, a.route)
    url = await front()
    body = bytes(range(256)) * 400  # ~100 KB, not UTF-8
    async with (
        aiohttp.ClientSession() as session,
        session.put(
            f"{url}/demo/x%2Fy?q=a%20b&q=c&status=201",
            data=body,
            headers={"X-Custom": "kept", "X-Forwarded-For": "10.0.0.9", "Content-Type": "image/png"},
        ) as response,
    ):
        answer = await response.json()
        assert response.status == 201
        assert response.headers["X-Backend"] == "a" and response.headers["Set-Cookie"] == "a=1"
        assert "Trailer" not in response.headers  # hop-by-hop: not passed back
    assert answer["method"] == "PUT"
    assert answer["raw_path"] == "/demo/x%2Fy?q=a%20b&q=c&status=201"
    assert answer["body_sha256"] == hashlib.sha256(body).hexdigest()
    headers = answer["headers"]
    assert headers["x-custom"] == "kept" and headers["content-type"] == "image/png"
    assert headers["x-forwarded-for"] == "10.0.0.9, 127.0.0.1"
    assert headers["content-length"] == str(len(body))


async def test_hop_by_hop_headers_are_not_forwarded(
    layout: ServiceLayout, front: StartFront, backends: Callable[[str], Awaitable[FakeBackend]]
) -> None:
    a = await backends("a")
    write_routes(layout, a.route)
    url = await front()
    host, port = "127.0.0.1", int(url.rsplit(":", 1)[1])
    # A raw request, so that the client library adds or drops nothing itself.
    request = (
        "GET /echo HTTP/1.1\r\nHost: example\r\nConnection: keep-alive, X-Named-Hop\r\n"
        "Keep-Alive: timeout=5\r\nTE: trailers\r\nProxy-Authorization: Basic eDp5\r\n"
        "Upgrade: h2c\r\nX-Named-Hop: 1\r\nX-End-To-End: 1\r\n\r\n"
    )
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(request.encode())
    await writer.drain()
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    length = int(
        next(line.split(":")[1] for line in head.split("\r\n") if line.lower().startswith("content-length"))
    )
    answer = (await reader.readexactly(length)).decode()
    writer.close()
    for header in ("keep-alive", "te", "proxy-authorization", "upgrade", "x-named-hop"):
        assert f'"{header}"' not in answer
    assert '"x-end-to-end": "1"' in answer and '"host": "example"' in answer


async def test_bodies_pass_through_encoded_and_the_front_health_is_local(
    layout: ServiceLayout, front: StartFront, backends: Callable[[str], Awaitable[FakeBackend]]
) -> None:
    a = await backends("a")
    write_routes(layout, a.route)
    url = await front()
    async with aiohttp.ClientSession(auto_decompress=False) as session:
        async with session.get(f"{url}/gzip") as response:
            assert response.headers["Content-Encoding"] == "gzip"
            assert gzip.decompress(await response.read()) == b"squeezed"
        calls = a.calls
        async with session.get(f"{url}/_front/healthz") as response:
            assert (await response.json())["routes"]["active"] == a.route.to_json()
        async with session.get(f"{url}/healthz") as response:
            assert (await response.json())["backend"] == "a"
        assert a.calls == calls + 1  # /healthz went to the backend, /_front/healthz did not
    routes = await asyncio.to_thread(front_routes, int(url.rsplit(":", 1)[1]))
    assert routes is not None and routes.active == a.route


async def test_a_switch_sends_new_requests_to_the_new_backend_while_old_ones_finish(
    layout: ServiceLayout, front: StartFront, backends: Callable[[str], Awaitable[FakeBackend]]
) -> None:
    a, b = await backends("a"), await backends("b")
    write_routes(layout, a.route)
    url = await front()
    async with aiohttp.ClientSession() as session:

        async def who(path: str = "/") -> tuple[int, str]:
            async with session.get(url + path) as response:
                return response.status, (await response.json())["backend"]

        slow = asyncio.ensure_future(who("/slow?s=0.6"))
        await asyncio.sleep(0.1)
        write_routes(layout, b.route)
        await asyncio.sleep(0.2)  # four polls
        assert await who() == (200, "b")
        assert await slow == (200, "a")


async def client_loop(url: str, stop: asyncio.Event, workers: int = 4) -> tuple[list[str], list[str]]:
    """Requests from ``workers`` clients until ``stop``; returns who answered and the failures."""
    answered: list[str] = []
    failures: list[str] = []
    async with aiohttp.ClientSession() as session:

        async def worker() -> None:
            while not stop.is_set():
                try:
                    async with session.post(f"{url}/predict", json={"image": "x"}) as response:
                        if response.status == 200:
                            answered.append((await response.json())["backend"])
                        else:
                            failures.append(f"{response.status} {await response.text()}")
                except aiohttp.ClientError as exc:
                    failures.append(repr(exc))

        await asyncio.gather(*(worker() for _ in range(workers)))
    return answered, failures


async def test_a_client_loop_sees_no_failure_across_switches_and_graceful_stops(
    layout: ServiceLayout, front: StartFront, backends: Callable[[str], Awaitable[FakeBackend]]
) -> None:
    a, b, c = await backends("a"), await backends("b"), await backends("c")
    write_routes(layout, a.route)
    # A slow poll: requests keep going to the old backend after it stopped, and must be saved.
    url = await front(poll_interval_s=0.3)
    stop = asyncio.Event()
    started = time.perf_counter()
    loop = asyncio.ensure_future(client_loop(url, stop))
    for old, new in ((a, b), (b, c)):
        await asyncio.sleep(0.5)
        write_routes(layout, new.route)
        await old.stop()  # at once: requests the front still sends there are refused and retried
    await asyncio.sleep(0.5)
    stop.set()
    answered, failures = await loop
    elapsed = time.perf_counter() - started
    async with aiohttp.ClientSession() as session, session.get(f"{url}/_front/healthz") as response:
        retries = (await response.json())["retries"]
    print(
        f"client loop: {len(answered) + len(failures)} requests, {len(failures)} failed, "
        f"{retries} retried by the front, {elapsed:.1f}s"
    )
    assert failures == []
    assert retries > 0  # requests did reach a stopped backend, and were saved
    assert {"a", "b", "c"} <= set(answered) and answered[-1] == "c"
    assert "a" not in answered[answered.index("c") :]


async def test_a_dead_backend_is_retried_until_the_routes_name_a_live_one(
    layout: ServiceLayout, front: StartFront, backends: Callable[[str], Awaitable[FakeBackend]]
) -> None:
    dead = Backend("dead", free_port(), "0")  # connection refused
    write_routes(layout, dead)
    url = await front(retry_deadline_s=5.0)

    async def replace_later() -> None:
        await asyncio.sleep(0.5)
        write_routes(layout, (await backends("b")).route)

    started = time.perf_counter()
    async with aiohttp.ClientSession() as session:
        replacing = asyncio.ensure_future(replace_later())
        async with session.post(f"{url}/predict", json={}) as response:
            assert response.status == 200 and (await response.json())["backend"] == "b"
        await replacing
    assert 0.5 <= time.perf_counter() - started < 2.0


async def test_a_standby_backend_answers_while_the_active_one_refuses(
    layout: ServiceLayout, front: StartFront, backends: Callable[[str], Awaitable[FakeBackend]]
) -> None:
    b = await backends("b")
    write_routes(layout, Backend("dead", free_port(), "0"), standby=(b.route,))
    url = await front(retry_deadline_s=0.5)
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert (await response.json())["backend"] == "b"


@pytest.mark.parametrize("routed", [True, False])
async def test_no_backend_answers_336100_with_retry_after_at_the_deadline(
    layout: ServiceLayout, front: StartFront, routed: bool
) -> None:
    if routed:
        write_routes(layout, Backend("dead", free_port(), "0"))
    url = await front(retry_deadline_s=0.4)
    started = time.perf_counter()
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/demo/ImageClassification") as response,
    ):
        body = await response.json()
        assert response.status == 503 and response.headers["Retry-After"] == "2"
        assert response.headers["X-Log-Id"] == str(body["log_id"])
    assert 0.4 <= time.perf_counter() - started < 1.5
    assert body["error_code"] == 336100
    assert body["error_msg"].startswith("Model temporarily unavailable: ")
    assert (
        ("refused" in body["error_msg"].lower() or "connect" in body["error_msg"].lower())
        if routed
        else ("no backend is routed" in body["error_msg"])
    )


async def test_the_fronts_own_errors_on_v2_routes_take_the_protocols_shape(
    layout: ServiceLayout, front: StartFront
) -> None:
    """tritonclient reads only ``{"error": ...}``: the front's 336100 during a restart must fit it."""
    url = await front(retry_deadline_s=0.1)
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}/v2/models/demo/infer", data=b"{}") as response,
    ):
        assert response.status == 503 and response.headers["Retry-After"] == "2"
        body = await response.json()
    assert list(body) == ["error"] and body["error"].startswith("Model temporarily unavailable: ")


async def test_a_backend_that_does_not_answer_in_time_is_not_retried(
    layout: ServiceLayout, front: StartFront, backends: Callable[[str], Awaitable[FakeBackend]]
) -> None:
    a = await backends("a")
    write_routes(layout, a.route)
    url = await front(backend_timeout_s=0.2)
    async with aiohttp.ClientSession() as session, session.get(f"{url}/slow?s=1") as response:
        assert response.status == 503 and (await response.json())["error_code"] == 336100
    assert a.calls == 1


async def test_an_oversized_body_is_refused_in_easydl_shape(
    layout: ServiceLayout, front: StartFront, backends: Callable[[str], Awaitable[FakeBackend]]
) -> None:
    write_routes(layout, (await backends("a")).route)
    url = await front(max_body_bytes=1000)
    async with aiohttp.ClientSession() as session, session.post(url, data=b"x" * 2000) as response:
        assert response.status == 413 and (await response.json())["error_code"] == 336004


async def test_the_real_server_behind_the_front(
    layout: ServiceLayout, front: StartFront, colour_model: Path
) -> None:
    port = free_port()
    server = await start_server(
        ServerConfig(deploy_name="demo", model_dir=colour_model, port=port, development_mode=True)
    )
    try:
        await server.wait_ready()
        write_routes(layout, Backend("1-0-0", port, "1.0.0"))
        url = await front()
        async with aiohttp.ClientSession() as session:
            image = b64(encode(solid(RED)))
            async with session.post(f"{url}/demo/ImageClassification", json={"image": image}) as response:
                answer = await response.json()
                assert response.status == 200 and answer["results"][0]["name"] == "red"
                assert response.headers["X-Log-Id"] == str(answer["log_id"])
            async with session.get(f"{url}/readyz") as response:
                assert response.status == 200
            async with session.get(f"{url}/demo/Nope") as response:  # the server's own EasyDL 404
                assert response.status == 404 and (await response.json())["error_code"] == 336001
            async with session.post(f"{url}/demo/ImageClassification", data=b"{") as response:
                assert response.status == 400 and (await response.json())["error_code"] == 336002
    finally:
        await server.stop()


async def test_errors_as_200_answers_easydl_errors_with_200_for_legacy_clients(
    layout: ServiceLayout, front: StartFront, colour_model: Path
) -> None:
    port = free_port()
    server = await start_server(
        ServerConfig(deploy_name="demo", model_dir=colour_model, port=port, development_mode=True)
    )
    try:
        await server.wait_ready()
        url = await front(errors_as_200=True, retry_deadline_s=0.2)
        async with aiohttp.ClientSession() as session:
            async with session.post(f"{url}/demo/ImageClassification", data=b"{}") as response:
                assert response.status == 200  # the front's own 336100: no backend routed yet
                assert (await response.json())["error_code"] == 336100
            write_routes(layout, Backend("1-0-0", port, "1.0.0"))
            while (await (await session.get(f"{url}/_front/healthz")).json())["routes"] is None:
                await asyncio.sleep(0.02)  # until the front has read the routes
            async with session.post(f"{url}/demo/ImageClassification", data=b"{") as response:
                answer = await response.json()
                assert response.status == 200 and answer["error_code"] == 336002
                assert response.headers["X-Original-Status"] == "400"
                assert response.headers["X-Log-Id"] == str(answer["log_id"])
            image = b64(encode(solid(RED)))
            async with session.post(f"{url}/demo/ImageClassification", json={"image": image}) as response:
                assert response.status == 200 and (await response.json())["results"][0]["name"] == "red"
            async with session.get(f"{url}/demo/Nope") as response:  # not a prediction: its status stays
                assert response.status == 404
    finally:
        await server.stop()


async def test_inferpack_front_on_sigterm_finishes_requests_in_flight(
    layout: ServiceLayout, backends: Callable[[str], Awaitable[FakeBackend]]
) -> None:
    write_routes(layout, (await backends("a")).route)
    async with front_process(routes_path(layout)) as (process, port), aiohttp.ClientSession() as session:
        async with asyncio.TaskGroup() as group:
            slow = group.create_task(session.get(f"http://127.0.0.1:{port}/slow?s=0.5"))
            await asyncio.sleep(0.2)
            process.send_signal(signal.SIGTERM)
        async with slow.result() as response:
            assert response.status == 200 and (await response.json())["backend"] == "a"
        assert await asyncio.wait_for(process.wait(), 10) == 0
        assert process.stdout is not None
        output = (await process.stdout.read()).decode()
    assert "front shutting down" in output
