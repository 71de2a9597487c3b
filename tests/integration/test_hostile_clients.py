"""Hostile clients against the real server on a loopback port: slow bodies, encodings, bombs,
over-long requests. Each answer is EasyDL JSON, and clients that behave keep being served."""

from __future__ import annotations

import asyncio
import gzip
import random
import zlib
from pathlib import Path
from typing import Any

import orjson
import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import RED, b64, encode, solid
from tests.integration.conftest import StartServer
from tests.integration.test_errors import URL, expect_error
from tests.integration.test_fuzz import DOCUMENTED

BODY = orjson.dumps({"image": b64(encode(solid(RED)))})


@pytest.fixture
async def client(start_server: StartServer, colour_model: Path) -> TestClient[Any, Any]:
    return await start_server(colour_model, max_inflight=8, body_timeout_s=2.0)


async def raw_exchange(client: TestClient[Any, Any], request: bytes) -> tuple[int, dict[str, Any]]:
    """Sends bytes as they are (no client library to fix them up); returns the status and JSON."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(request)
        await writer.drain()
        head = (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).decode()
        length = next(
            int(line.split(":")[1])
            for line in head.split("\r\n")
            if line.lower().startswith("content-length")
        )
        assert "application/json" in head.lower(), head
        return int(head.split()[1]), orjson.loads(await reader.readexactly(length))
    finally:
        writer.close()


async def slow_body(client: TestClient[Any, Any], stop: asyncio.Event) -> tuple[int, dict[str, Any]]:
    """A client that declares a body and sends a byte of it every 0.3 s until stopped or answered."""
    reader, writer = await asyncio.open_connection(client.host, client.port)
    try:
        writer.write(f"POST {URL} HTTP/1.1\r\nHost: x\r\nContent-Length: 100000\r\n\r\n{{".encode())
        answer = asyncio.ensure_future(reader.readuntil(b"\r\n\r\n"))
        while not (stop.is_set() or answer.done()):
            writer.write(b" ")
            await asyncio.sleep(0.3)
        head = (await answer).decode()
        length = next(
            int(h.split(":")[1]) for h in head.split("\r\n") if h.lower().startswith("content-length")
        )
        return int(head.split()[1]), orjson.loads(await reader.readexactly(length))
    finally:
        writer.close()


async def test_slow_bodies_hold_no_slot_and_time_out_408(client: TestClient[Any, Any]) -> None:
    """40 clients trickling their bodies (5x max_inflight): the others are answered meanwhile."""
    stop = asyncio.Event()
    slow = [asyncio.ensure_future(slow_body(client, stop)) for _ in range(40)]
    await asyncio.sleep(0.5)
    for _ in range(10):
        response = await client.post(URL, data=BODY, headers={"Content-Type": "application/json"})
        assert response.status == 200, await response.text()
    answers = await asyncio.wait_for(asyncio.gather(*slow), 10)  # the 2 s body deadline
    stop.set()
    for status, body in answers:
        assert status == 408 and body["error_code"] == 336001, body
        assert "did not arrive within 2s" in body["error_msg"]


@pytest.mark.parametrize("coding", ["gzip", "x-gzip", "deflate", "identity", "gzip, identity"])
async def test_encoded_bodies_are_decoded(client: TestClient[Any, Any], coding: str) -> None:
    data = BODY
    if "gzip" in coding:
        data = gzip.compress(BODY)
    elif coding == "deflate":
        data = zlib.compress(BODY)
    response = await client.post(
        URL, data=data, headers={"Content-Type": "application/json", "Content-Encoding": coding}
    )
    assert response.status == 200, await response.text()
    assert (await response.json())["results"][0]["name"] == "red"


@pytest.mark.parametrize(
    ("coding", "data"),
    [("gzip", b"not gzip at all"), ("gzip", gzip.compress(BODY)[:-12]), ("deflate", b"\x78\x9c garbage")],
)
async def test_invalid_encoded_bodies_400(client: TestClient[Any, Any], coding: str, data: bytes) -> None:
    response = await client.post(URL, data=data, headers={"Content-Encoding": coding})
    await expect_error(response, 336001, 400, f"not valid {coding}")


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "gzip, br"])
async def test_unsupported_encodings_415(client: TestClient[Any, Any], coding: str) -> None:
    response = await client.post(URL, data=BODY, headers={"Content-Encoding": coding})
    await expect_error(response, 336001, 415, "is not accepted")


async def test_gzip_bomb_stops_at_the_body_limit_413(client: TestClient[Any, Any]) -> None:
    bomb = gzip.compress(b"{" + b" " * (64 * 1024 * 1024), compresslevel=9)  # 64 MiB in ~64 KB
    assert len(bomb) < 128 * 1024
    response = await client.post(URL, data=bomb, headers={"Content-Encoding": "gzip"})
    await expect_error(response, 336004, 413, "decodes to over")


async def test_over_long_request_line_414_and_headers_431(client: TestClient[Any, Any]) -> None:
    status, body = await raw_exchange(client, f"GET /{'a' * 9000} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status == 414 and body["error_code"] == 336001 and "request line" in body["error_msg"]
    status, body = await raw_exchange(client, f"GET / HTTP/1.1\r\nX-Big: {'b' * 9000}\r\n\r\n".encode())
    assert status == 431 and body["error_code"] == 336001 and "header line" in body["error_msg"]
    many = "".join(f"X-H{i}: 1\r\n" for i in range(150))
    status, body = await raw_exchange(client, f"GET / HTTP/1.1\r\n{many}\r\n".encode())
    assert status == 431 and "headers" in body["error_msg"]
    status, body = await raw_exchange(client, b"GET / HTTP/1.1\r\nBad Header\r\n\r\n")
    assert (
        status == 400 and body["error_code"] == 336001 and set(body) == {"log_id", "error_code", "error_msg"}
    )
    # and the server goes on answering
    response = await client.post(URL, data=BODY, headers={"Content-Type": "application/json"})
    assert response.status == 200


@pytest.mark.parametrize("where", ["query", "json"])
async def test_top_num_with_5000_digits_336001(client: TestClient[Any, Any], where: str) -> None:
    digits = "9" * 5000  # over Python's 4300-digit int() limit
    if where == "query":
        response = await client.post(
            URL, data=encode(solid(RED)), params={"top_num": digits}, headers={"Content-Type": "image/jpeg"}
        )
    else:
        payload = (
            b'{"image": "' + b64(encode(solid(RED))).encode() + b'", "top_num": "' + digits.encode() + b'"}'
        )
        response = await client.post(URL, data=payload, headers={"Content-Type": "application/json"})
    await expect_error(response, 336001, 400, "5000 digits")


async def test_encoded_body_fuzz_gives_a_result_or_a_documented_error(client: TestClient[Any, Any]) -> None:
    rng = random.Random(20261204)
    codings = ["gzip", "deflate", "identity", "br", "zstd", "gzip, gzip", "x-gzip", "GZIP", " ", "gzip;q=1"]
    for _ in range(150):
        coding = rng.choice(codings)
        data = rng.choice([BODY, rng.randbytes(rng.randrange(200)), BODY[: rng.randrange(len(BODY))]])
        if rng.random() < 0.6:
            data = gzip.compress(data) if rng.random() < 0.5 else zlib.compress(data)
            if rng.random() < 0.3:
                data = data[: rng.randrange(len(data))]
        response = await client.post(URL, data=data, headers={"Content-Encoding": coding})
        answer = await response.json()
        assert response.status == 200 or answer["error_code"] in DOCUMENTED, (coding, data[:40], answer)
