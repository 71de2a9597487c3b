"""Every EasyDL error code, each produced by the real condition through the real server."""

from __future__ import annotations

import asyncio
import base64
import io
import struct
import zlib
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient

from tests.conftest import RED, b64, encode, solid
from tests.integration.conftest import StartServer
from tests.onnx_models import failing_classifier, slow_classifier

URL = "/demo/ImageClassification"


async def expect_error(response: Any, code: int, status: int, fragment: str = "") -> dict[str, Any]:
    assert response.status == status, await response.text()
    body: dict[str, Any] = await response.json()
    assert set(body) == {"log_id", "error_code", "error_msg"}
    assert body["error_code"] == code
    assert fragment.lower() in body["error_msg"].lower(), body["error_msg"]
    return body


def png_header_only(width: int, height: int) -> bytes:
    """A PNG signature and IHDR declaring a huge image, with almost no pixel data: a bomb."""
    ihdr = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    chunk = struct.pack(">I", len(ihdr)) + b"IHDR" + ihdr + struct.pack(">I", zlib.crc32(b"IHDR" + ihdr))
    idat = zlib.compress(b"\x00" * 1024)
    idat_chunk = struct.pack(">I", len(idat)) + b"IDAT" + idat + struct.pack(">I", zlib.crc32(b"IDAT" + idat))
    return b"\x89PNG\r\n\x1a\n" + chunk + idat_chunk


@pytest.fixture
async def client(start_server: StartServer, colour_model: Path) -> TestClient[Any, Any]:
    return await start_server(colour_model)


@pytest.mark.parametrize("body", [b"{not json", b"", b"\xff\xfe", b'{"image": "a"'])
async def test_invalid_json_336002(client: TestClient[Any, Any], body: bytes) -> None:
    response = await client.post(URL, data=body, headers={"Content-Type": "application/json"})
    await expect_error(response, 336002, 400, "Invalid JSON")


@pytest.mark.parametrize("content_type", ["application/json", "application/x-www-form-urlencoded"])
@pytest.mark.parametrize("ext", [".jpg", ".png", ".bmp"])
async def test_a_raw_image_sent_as_json_or_form_says_what_to_send(
    client: TestClient[Any, Any], content_type: str, ext: str
) -> None:
    response = await client.post(URL, data=encode(solid(RED), ext), headers={"Content-Type": content_type})
    await expect_error(response, 336002, 400, "it is a raw image: send it with Content-Type: image/*")


@pytest.mark.parametrize("payload", ["[1, 2]", '"image"', "42", "null"])
async def test_json_that_is_not_an_object_336002(client: TestClient[Any, Any], payload: str) -> None:
    response = await client.post(URL, data=payload, headers={"Content-Type": "application/json"})
    await expect_error(response, 336002, 400, "object")


@pytest.mark.parametrize("payload", [{}, {"image": ""}, {"image": None}, {"top_num": 3}])
async def test_missing_image_336006(client: TestClient[Any, Any], payload: dict[str, Any]) -> None:
    await expect_error(await client.post(URL, json=payload), 336006, 400, "Missing required parameter")


async def test_raw_form_without_body_336006(client: TestClient[Any, Any]) -> None:
    response = await client.post(URL, data=b"", headers={"Content-Type": "image/jpeg"})
    await expect_error(response, 336006, 400)


@pytest.mark.parametrize(
    "extra",
    [
        {"top_num": 0},
        {"top_num": -1},
        {"top_num": "abc"},
        {"top_num": True},
        {"top_num": 1.5},
        {"image": 12345},
        {"image": ["a"]},
    ],
)
async def test_invalid_argument_336001(client: TestClient[Any, Any], extra: dict[str, Any]) -> None:
    payload = {"image": b64(encode(solid(RED)))} | extra
    await expect_error(await client.post(URL, json=payload), 336001, 400, "Invalid Argument")


@pytest.mark.parametrize(
    "query",
    # "²" is a Unicode digit int() refuses: found by the fuzz test, it once gave 336000
    [{"top_num": "0"}, {"top_num": "x"}, {"top_num": "²"}, {"threshold": "2"}],
)
async def test_invalid_query_parameter_336001(client: TestClient[Any, Any], query: dict[str, str]) -> None:
    response = await client.post(
        URL, data=encode(solid(RED)), headers={"Content-Type": "image/jpeg"}, params=query
    )
    await expect_error(response, 336001, 400)


async def test_data_uri_header_336003_says_to_strip_it(client: TestClient[Any, Any]) -> None:
    payload = {"image": "data:image/jpeg;base64," + b64(encode(solid(RED)))}
    await expect_error(await client.post(URL, json=payload), 336003, 400, "data:")


@pytest.mark.parametrize("image", ["!!!!", "abc$def", "a" * 5, "€uro"])
async def test_bad_base64_336003(client: TestClient[Any, Any], image: str) -> None:
    await expect_error(await client.post(URL, json={"image": image}), 336003, 400, "Base64")


async def test_base64_over_4mb_336004_413(client: TestClient[Any, Any]) -> None:
    body = b'{"image": "' + b"A" * (4 * 1024 * 1024 + 4) + b'"}'
    response = await client.post(URL, data=io.BytesIO(body), headers={"Content-Type": "application/json"})
    await expect_error(response, 336004, 413, "Invalid input size")


async def test_body_over_limit_336004_413(client: TestClient[Any, Any]) -> None:
    response = await client.post(
        URL, data=io.BytesIO(b"x" * (5 * 1024 * 1024)), headers={"Content-Type": "image/jpeg"}
    )
    await expect_error(response, 336004, 413)


@pytest.mark.parametrize(("width", "height"), [(14, 100), (100, 14), (4097, 20), (20, 4097)])
async def test_dimensions_out_of_limits_336004(client: TestClient[Any, Any], width: int, height: int) -> None:
    image = encode(solid(RED, width, height), ".png")
    await expect_error(await client.post(URL, json={"image": b64(image)}), 336004, 400, f"{width}")


async def test_limits_are_inclusive(client: TestClient[Any, Any]) -> None:
    for width, height in ((15, 15), (4096, 15)):
        image = encode(solid(RED, width, height), ".png")
        response = await client.post(URL, json={"image": b64(image)})
        assert response.status == 200, await response.text()


async def test_decompression_bomb_refused_before_decoding(client: TestClient[Any, Any]) -> None:
    bomb = png_header_only(60000, 60000)  # 10.8 G pixels declared in ~1 KB
    assert len(bomb) < 2048
    body = await expect_error(await client.post(URL, json={"image": b64(bomb)}), 336004, 400, "60000")
    assert body["log_id"] > 0


@pytest.mark.parametrize(
    "data",
    [b"hello world, not an image", b"GIF89a" + b"\x00" * 100, base64.b64decode(b64(b"\x89PNG\r\n\x1a\n"))],
)
async def test_not_an_image_336005(client: TestClient[Any, Any], data: bytes) -> None:
    await expect_error(await client.post(URL, json={"image": b64(data)}), 336005, 400, "Image decode failed")


async def test_truncated_jpeg_336005(client: TestClient[Any, Any]) -> None:
    jpeg = encode(solid(RED, 200, 200))
    await expect_error(await client.post(URL, json={"image": b64(jpeg[:300])}), 336005, 400)


async def test_unknown_route_and_wrong_method(client: TestClient[Any, Any]) -> None:
    wrong_task = await client.post("/demo/ObjectDetection", json={"image": "x"})
    body = await expect_error(wrong_task, 336001, 404, "ImageClassification")
    assert "/demo/ImageClassification" in body["error_msg"]
    await expect_error(await client.post("/other/ImageClassification", json={}), 336001, 404)
    await expect_error(await client.get(URL), 336001, 405)


async def test_engine_failure_is_336000_with_logged_traceback(
    start_server: StartServer, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = await start_server(failing_classifier(tmp_path / "failing"))
    dark = await client.post(URL, json={"image": b64(encode(solid((10, 10, 10))))})
    assert dark.status == 200
    response = await client.post(URL, json={"image": b64(encode(solid(RED)))})
    body = await expect_error(response, 336000, 500, "Internal error")
    assert "Reshape" not in body["error_msg"]  # internals stay in the log, not in the answer
    logged = [r for r in caplog.records if f"log_id={body['log_id']}" in r.getMessage()]
    assert logged and logged[0].exc_info is not None


async def test_overload_is_refused_before_decoding_with_retry_after(
    start_server: StartServer, tmp_path: Path
) -> None:
    """Every request admitted is answered; the others get 336100 at once, none after its
    image was decoded (the batcher has no queue limit of its own to refuse at)."""
    client = await start_server(
        slow_classifier(tmp_path / "slow"), max_batch_size=1, max_inflight=4, max_delay_ms=0
    )
    image = b64(encode(solid(RED, 64, 64)))
    responses = await asyncio.gather(*(client.post(URL, json={"image": image}) for _ in range(24)))
    statuses = [r.status for r in responses]
    assert statuses.count(200) >= 4 and set(statuses) == {200, 503}, statuses
    for response in (r for r in responses if r.status == 503):
        await expect_error(response, 336100, 503, "in flight")
        assert int(response.headers["Retry-After"]) >= 1


async def test_inflight_limit_336100(start_server: StartServer, tmp_path: Path) -> None:
    client = await start_server(slow_classifier(tmp_path / "slow"), max_batch_size=1, max_inflight=2)
    image = b64(encode(solid(RED, 64, 64)))
    responses = await asyncio.gather(*(client.post(URL, json={"image": image}) for _ in range(12)))
    refused = [r for r in responses if r.status == 503]
    assert refused
    await expect_error(refused[0], 336100, 503, "in flight")


async def test_model_loading_336100(start_server: StartServer, tmp_path: Path) -> None:
    # 48 convolutions: loading + warm-up takes long enough to be caught in the act.
    model = slow_classifier(tmp_path / "slow", convolutions=48)
    client = await start_server(model, ready=False, max_batch_size=32)
    response = await client.post(URL, json={"image": b64(encode(solid(RED)))})
    await expect_error(response, 336100, 503, "loading")
    assert response.headers["Retry-After"]
    readyz = await client.get("/readyz")
    assert readyz.status == 503
