"""inferpack.client (blocking and asyncio) and ``inferpack predict`` against the real server."""

from __future__ import annotations

import asyncio
import json
import logging
import socket
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from aiohttp.test_utils import TestClient

import inferpack
from inferpack.cli import main as inferpack_main
from inferpack.client import (
    AsyncClient,
    Classification,
    Client,
    Detections,
    ImageDecodeError,
    InvalidArgumentError,
    ModelUnavailableError,
    TransportError,
)
from inferpack.demo import demo_model_dir
from inferpack.demo.shapes import sample_detection
from tests.conftest import BLUE, GREEN, RED, b64, encode, solid
from tests.integration.conftest import StartServer
from tests.onnx_models import slow_classifier

PACKAGE_ROOT = str(Path(inferpack.__file__).resolve().parents[1])


def base_url(server: TestClient[Any, Any]) -> str:
    return str(server.make_url("/demo"))


async def easydl(server: TestClient[Any, Any], route: str, image: bytes, **params: Any) -> Any:
    response = await server.post(f"/demo/{route}", json={"image": b64(image), **params})
    return await response.json()


async def test_blocking_client_from_path_bytes_and_array(
    start_server: StartServer, colour_model: Path, tmp_path: Path
) -> None:
    server = await start_server(colour_model)
    path = tmp_path / "green.png"
    path.write_bytes(encode(solid(GREEN), ".png"))

    def calls() -> list[Classification]:
        with Client(base_url(server)) as client:
            return [
                client.classify(path, top_num=2),
                client.classify(str(path)),
                client.classify(path.read_bytes(), top_num=2),
                client.classify(solid(GREEN)),  # an OpenCV image array
            ]

    results = await asyncio.to_thread(calls)
    expected = await easydl(server, "ImageClassification", path.read_bytes(), top_num=2)
    assert [(r.name, r.score) for r in results[0].results] == [
        (e["name"], e["score"]) for e in expected["results"]
    ]
    assert len(results[1].results) == 3 and results[2].results == results[0].results
    assert results[3].top is not None and results[3].top.name == "green"
    assert len({r.log_id for r in results}) == 4


async def test_blocking_client_reuses_one_connection(start_server: StartServer, colour_model: Path) -> None:
    server = await start_server(colour_model)

    def local_ports() -> set[int]:
        with Client(base_url(server)) as client:
            ports = set()
            for colour in (RED, GREEN, BLUE, RED):
                client.classify(encode(solid(colour)))
                assert client._connection is not None and client._connection.sock is not None
                ports.add(client._connection.sock.getsockname()[1])
            return ports

    assert len(await asyncio.to_thread(local_ports)) == 1


async def test_async_client_detects_as_the_easydl_route(start_server: StartServer) -> None:
    server = await start_server(demo_model_dir("shapes-detector"))
    image, _ = sample_detection()
    async with AsyncClient(base_url(server)) as client:
        answers = await asyncio.gather(*(client.detect(image, threshold=0.4) for _ in range(4)))
        by_info = await client.predict(encode(image, ".png"), threshold=0.4)  # /info says: detection
    expected = (await easydl(server, "ObjectDetection", encode(image, ".png"), threshold=0.4))["results"]
    assert isinstance(by_info, Detections) and len(expected) == 3
    for answer in (*answers, by_info):
        assert [(d.name, d.score) for d in answer.results] == [(e["name"], e["score"]) for e in expected]
        assert [vars(d.location) for d in answer.results] == [e["location"] for e in expected]


async def test_typed_errors_carry_code_message_and_log_id(
    start_server: StartServer, colour_model: Path
) -> None:
    server = await start_server(colour_model)
    async with AsyncClient(base_url(server)) as client:
        with pytest.raises(ImageDecodeError) as not_image:
            await client.classify(b"plain text, not an image")
        with pytest.raises(InvalidArgumentError) as bad_top_num:
            await client.classify(encode(solid(RED)), top_num=0)
    assert not_image.value.error_code == 336005 and not_image.value.http_status == 400
    assert not_image.value.error_msg.startswith("Image decode failed")
    assert isinstance(not_image.value.log_id, int) and str(not_image.value.log_id) in str(not_image.value)
    assert bad_top_num.value.error_code == 336001 and "top_num" in bad_top_num.value.error_msg


@pytest.fixture
async def loading_server(start_server: StartServer, tmp_path: Path) -> TestClient[Any, Any]:
    # 48 convolutions: loading + warm-up takes long enough to be caught in the act (Retry-After: 5).
    return await start_server(
        slow_classifier(tmp_path / "slow", convolutions=48), ready=False, max_batch_size=32
    )


async def test_336100_retried_after_a_bounded_retry_after(
    loading_server: TestClient[Any, Any], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="inferpack.client")
    async with AsyncClient(base_url(loading_server), retries=300, max_retry_wait_s=0.1) as client:
        answer = await client.classify(encode(solid(RED, 64, 64)))
    assert answer.top is not None and answer.top.name == "red"
    retries = [r.getMessage() for r in caplog.records if r.name == "inferpack.client"]
    assert retries and all("loading" in m and m.endswith("in 0.10s") for m in retries), retries


async def test_336100_raised_when_retries_run_out(loading_server: TestClient[Any, Any]) -> None:
    def call() -> None:
        with Client(base_url(loading_server), retries=0) as client:
            client.classify(encode(solid(RED, 64, 64)))

    with pytest.raises(ModelUnavailableError) as refused:
        await asyncio.to_thread(call)
    assert refused.value.error_code == 336100 and refused.value.retry_after_s == 5
    assert refused.value.http_status == 503 and refused.value.log_id is not None


@pytest.fixture
def silent_port() -> Iterator[int]:
    """A loopback port that accepts connections and never answers."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept)
    thread.start()
    yield listener.getsockname()[1]
    stop.set()
    thread.join()
    for connection in (*accepted, listener):
        connection.close()


def test_timeout_is_a_transport_error(silent_port: int) -> None:
    started = time.monotonic()
    with (
        Client(f"http://127.0.0.1:{silent_port}/demo/ImageClassification", timeout_s=0.3) as client,
        pytest.raises(TransportError, match=r"within 0\.3s"),
    ):
        client.classify(encode(solid(RED)))
    assert time.monotonic() - started < 3


async def test_predict_cli_prints_and_draws(start_server: StartServer, tmp_path: Path, capsys: Any) -> None:
    server = await start_server(demo_model_dir("shapes-detector"))
    image = tmp_path / "scene.jpg"
    image.write_bytes(encode(sample_detection()[0]))
    drawn = tmp_path / "drawn.png"
    argv = ["predict", base_url(server), str(image), "--threshold", "0.4", "--draw", str(drawn), "--json"]
    assert await asyncio.to_thread(inferpack_main, argv) == 0
    printed = json.loads(capsys.readouterr().out)
    expected = await easydl(server, "ObjectDetection", image.read_bytes(), threshold=0.4)
    assert printed["results"] == expected["results"] and printed["image"] == str(image)
    pixels = cv2.imread(str(drawn))
    original = cv2.imread(str(image))
    assert pixels.shape == original.shape
    box = expected["results"][0]["location"]
    edge = pixels[box["top"] + box["height"] // 2, box["left"]]
    assert np.abs(edge.astype(int) - (0, 200, 255)).max() < 30  # the box's amber left edge


async def test_predict_cli_reports_each_failure_in_one_line(
    start_server: StartServer, colour_model: Path, tmp_path: Path, capsys: Any
) -> None:
    server = await start_server(colour_model)
    text = tmp_path / "notes.txt"
    text.write_text("not an image")
    good = tmp_path / "red.jpg"
    good.write_bytes(encode(solid(RED)))
    argv = ["predict", base_url(server), str(text), str(good), str(tmp_path / "missing.jpg")]
    assert await asyncio.to_thread(inferpack_main, argv) == 1
    out, err = capsys.readouterr()
    assert f"{good} (log_id " in out and "  red " in out
    lines = err.splitlines()
    assert len(lines) == 2
    assert (
        lines[0].startswith(f"inferpack predict: {text}: Image decode failed")
        and "error_code 336005" in lines[0]
    )
    assert "missing.jpg: No such file or directory" in lines[1]


async def test_client_runs_on_the_standard_library_alone(
    start_server: StartServer, colour_model: Path
) -> None:
    """``python -S``: no site-packages at all (no numpy, OpenCV, aiohttp), only the stdlib and inferpack."""
    server = await start_server(colour_model)
    code = (
        f"import sys; sys.path.insert(0, {PACKAGE_ROOT!r}); "
        "from inferpack.client.cli import main; rc = main(sys.argv[1:]); "
        "assert 'numpy' not in sys.modules and 'aiohttp' not in sys.modules; sys.exit(rc)"
    )
    process = await asyncio.create_subprocess_exec(
        sys.executable, "-S", "-c", code, base_url(server), "/dev/stdin", "--json",
        stdin=asyncio.subprocess.PIPE, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await process.communicate(encode(solid(BLUE)))
    assert process.returncode == 0, err.decode()
    assert json.loads(out)["results"][0]["name"] == "blue"
