"""`inferpack serve` as a real process: readiness, graceful SIGTERM, fatal bad bundles."""

from __future__ import annotations

import asyncio
import json
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import aiohttp

from tests.conftest import RED, b64, encode, solid
from tests.onnx_models import slow_classifier


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def start(model_dir: Path, port: int, *extra: str) -> subprocess.Popen[bytes]:
    command = [
        sys.executable,
        "-m",
        "inferpack",
        "serve",
        str(model_dir),
        "--name",
        "demo",
        "--port",
        str(port),
        "--no-license",
    ]
    return subprocess.Popen([*command, *extra], stdout=subprocess.PIPE, stderr=subprocess.STDOUT)


async def wait_ready(session: aiohttp.ClientSession, port: int, timeout_s: float = 30) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            async with session.get(f"http://127.0.0.1:{port}/readyz") as response:
                if response.status == 200:
                    return
        except aiohttp.ClientConnectionError:
            pass
        await asyncio.sleep(0.1)
    raise AssertionError("server did not become ready")


async def test_sigterm_finishes_requests_in_flight(tmp_path: Path) -> None:
    port = free_port()
    process = start(slow_classifier(tmp_path / "slow", convolutions=16), port, "--max-batch-size", "1")
    try:
        async with aiohttp.ClientSession() as session:
            await wait_ready(session, port)
            url = f"http://127.0.0.1:{port}/demo/ImageClassification"
            image = b64(encode(solid(RED, 64, 64)))

            async def call() -> tuple[int, str]:
                async with session.post(url, json={"image": image}) as response:
                    return response.status, (await response.json())["results"][0]["name"]

            calls = [asyncio.ensure_future(call()) for _ in range(12)]
            await asyncio.sleep(0.05)  # requests are in flight; the engine runs them one by one
            process.send_signal(signal.SIGTERM)
            results = await asyncio.gather(*calls)
        assert results == [(200, "red")] * 12
        assert process.wait(timeout=20) == 0
    finally:
        process.kill()
        output = process.communicate()[0].decode()
    assert "shutting down" in output


def test_bad_bundle_exits_non_zero_with_reason(tmp_path: Path) -> None:
    model = slow_classifier(tmp_path / "m")
    spec = json.loads((model / "model.json").read_text())
    spec["labels"] = ["only-one"]
    (model / "model.json").write_text(json.dumps(spec))
    process = start(model, free_port())
    output = process.communicate(timeout=60)[0].decode()
    assert process.returncode == 1
    assert "cannot be served" in output
    assert "1" in output and "labels" in output


def test_missing_model_file_is_a_one_line_error(tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "inferpack", "serve", str(tmp_path), "--name", "demo", "--no-license"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stderr.strip().count("\n") == 0
    assert "has no model.onnx" in result.stderr
