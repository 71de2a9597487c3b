"""The front against hostile clients, as a real process on a loopback port: memory under many
half-sent uploads, encoded bodies and over-long requests reaching the real server behind it."""

from __future__ import annotations

import asyncio
import contextlib
import gzip
import io
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import aiohttp
import orjson
import pytest
from tests.conftest import RED, b64, encode, solid
from tests.support.front import StartFront, free_port, front_process

from inferpack.config import ServerConfig
from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.routes import Backend, routes_path, write_routes
from inferpack.server.app import start_server

MIB = 1024 * 1024
BUDGET = 32 * MIB
CONNECTIONS = 200
# What the front may hold beyond its idle size while the uploads hang: the budget, plus for each
# connection whose body is refused (aiohttp then reads and drops the rest for a while) up to its
# read buffer (2 x 64 KiB) and one socket read (256 KiB), plus Python objects. Without a budget
# it held all they sent (here 400 MiB).
HANGING_BOUND = BUDGET + CONNECTIONS * (2 * 64 + 256) * 1024 + 16 * MIB
RETURNED_BOUND = 24 * MIB  # above the idle size once they are gone
URL_PATH = "/demo/ImageClassification"


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError(f"no VmRSS for {pid}")


@pytest.fixture
async def real_backend(layout: ServiceLayout, colour_model: Path) -> AsyncIterator[None]:
    port = free_port()
    config = ServerConfig(deploy_name="demo", model_dir=colour_model, port=port, development_mode=True)
    server = await start_server(config)
    try:
        await server.wait_ready()
        write_routes(layout, Backend("1-0-0", port, "1.0.0"))
        yield
    finally:
        await server.stop()


async def half_upload(port: int, declared: int, sent: int) -> asyncio.StreamWriter:
    """A connection that declares ``declared`` body bytes, sends ``sent`` and then waits."""
    _, writer = await asyncio.open_connection("127.0.0.1", port)
    head = f"POST {URL_PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: {declared}\r\n\r\n"
    writer.write(head.encode() + b"{" + b" " * (sent - 1))
    with contextlib.suppress(ConnectionError):
        await writer.drain()
    return writer


async def buffered_bytes(session: aiohttp.ClientSession, port: int, until: Callable[[int], bool]) -> int:
    """The front's buffered bytes, once ``until`` holds for them (within 20 s)."""
    for _ in range(200):
        async with session.get(f"http://127.0.0.1:{port}/_front/healthz") as response:
            held: int = (await response.json())["buffered_bytes"]
        if until(held):
            return held
        await asyncio.sleep(0.1)
    raise AssertionError(f"the front holds {held} bytes of bodies")


async def test_half_sent_uploads_hold_at_most_the_budget_and_memory_comes_back(
    layout: ServiceLayout, real_backend: None
) -> None:
    image = orjson.dumps({"image": b64(encode(solid(RED)))})
    flags = ("--max-buffered-bytes", str(BUDGET), "--body-timeout", "20")
    async with (
        front_process(routes_path(layout), *flags) as (process, port),
        aiohttp.ClientSession() as session,
    ):
        pid = process.pid
        url = f"http://127.0.0.1:{port}{URL_PATH}"
        async with session.post(url, data=image, headers={"Content-Type": "application/json"}) as response:
            assert response.status == 200
        idle = rss_bytes(pid)
        uploads = await asyncio.gather(*(half_upload(port, 4 * MIB, 2 * MIB) for _ in range(CONNECTIONS)))
        buffered = await buffered_bytes(session, port, until=lambda held: held >= BUDGET - 2 * MIB)
        await asyncio.sleep(0.5)  # and the refused ones are being drained
        hanging = rss_bytes(pid)
        # A client that behaves is refused while the budget is full (less room left than its
        # 1 MiB body), and served once it is not.
        large = io.BytesIO(b'{"image": "' + b"A" * MIB + b'"}')
        async with session.post(url, data=large, headers={"Content-Type": "application/json"}) as response:
            refused = await response.json()
        for writer in uploads:
            writer.close()
        await buffered_bytes(session, port, until=lambda held: held == 0)
        await asyncio.sleep(1.5)  # past the trim interval
        returned = rss_bytes(pid)
        async with session.post(url, data=image, headers={"Content-Type": "application/json"}) as response:
            assert response.status == 200
    print(
        f"front RSS: idle {idle / MIB:.0f} MiB, 200 half-sent 4 MiB uploads (400 MiB sent) "
        f"{hanging / MIB:.0f} MiB ({buffered / MIB:.0f} MiB buffered), after {returned / MIB:.0f} MiB"
    )
    assert buffered <= BUDGET
    assert hanging - idle < HANGING_BOUND
    assert returned - idle < RETURNED_BOUND
    assert refused["error_code"] == 336100


async def test_gzip_and_over_long_requests_through_the_front(
    layout: ServiceLayout, front: StartFront, real_backend: None
) -> None:
    url = await front()
    body = gzip.compress(orjson.dumps({"image": b64(encode(solid(RED)))}))
    async with aiohttp.ClientSession() as session:
        headers = {"Content-Type": "application/json", "Content-Encoding": "gzip"}
        async with session.post(url + URL_PATH, data=body, headers=headers) as response:
            assert response.status == 200 and (await response.json())["results"][0]["name"] == "red"
        async with session.post(url + URL_PATH, data=b"not gzip", headers=headers) as response:
            assert response.status == 400 and (await response.json())["error_code"] == 336001
        headers["Content-Encoding"] = "br"
        async with session.post(url + URL_PATH, data=body, headers=headers) as response:
            assert response.status == 415 and (await response.json())["error_code"] == 336001
        bomb = gzip.compress(b" " * (64 * MIB))
        headers["Content-Encoding"] = "gzip"
        async with session.post(url + URL_PATH, data=bomb, headers=headers) as response:
            assert response.status == 413 and (await response.json())["error_code"] == 336004
        async with session.get(url + "/" + "a" * 9000) as response:
            assert response.status == 414 and (await response.json())["error_code"] == 336001
        async with session.get(url + "/readyz", headers={"X-Big": "b" * 9000}) as response:
            assert response.status == 431 and (await response.json())["error_code"] == 336001
