"""On a machine with an NVIDIA GPU: the GPU backends build, cache, serve and agree with ORT CPU.

Skipped elsewhere (see conftest.py). Nothing here uses stand-ins: real TensorRT, real CUDA,
real NVML, the real HTTP server, a real container.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from inferpack.runtime.engine import EngineOptions
from inferpack.runtime.factory import create_engine, resolve_backend
from tests.conftest import RED, b64, encode, solid
from tests.onnx_models import colour_classifier, slow_classifier

FP16_TOLERANCE = {"rtol": 2e-2, "atol": 2e-2}


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Convolutions (real GPU kernels, FP16-sensitive) with the colour classifier's answers."""
    return slow_classifier(tmp_path_factory.mktemp("gpu-models") / "conv", convolutions=4, channels=32)


def _reference(model_dir: Path, batch: np.ndarray) -> list[np.ndarray]:
    cpu = create_engine("onnxruntime", model_dir / "model.onnx", EngineOptions(max_batch_size=8))
    name = cpu.inputs[0].name
    return cpu.infer({name: batch})


def _batch(model_dir: Path, count: int) -> np.ndarray:
    size = 64 if "conv" in model_dir.name else 32
    return np.random.default_rng(count).random((count, 3, size, size), dtype=np.float32)


def test_nvml_sees_the_gpu() -> None:
    from inferpack.runtime.gpu import list_gpus

    gpus = list_gpus()
    assert gpus, "NVML lists no GPU"
    print("GPUs:", [g.describe() for g in gpus])


def test_auto_picks_tensorrt() -> None:
    assert resolve_backend("auto", 0).backend == "tensorrt"


def test_tensorrt_matches_ort_cpu_and_second_load_hits_the_cache(conv_model: Path, tmp_path: Path) -> None:
    options = EngineOptions(max_batch_size=8, cache_dir=tmp_path / "engines")
    started = time.perf_counter()
    engine = create_engine("tensorrt", conv_model / "model.onnx", options)
    first = time.perf_counter() - started
    described = engine.describe()
    print("first load:", described)
    assert described["backend"] == "tensorrt" and described["engine_cache"] == "built"
    name = engine.inputs[0].name
    for count in (1, 3, 8):
        batch = _batch(conv_model, count)
        got, want = engine.infer({name: batch}), _reference(conv_model, batch)
        for g, w in zip(got, want, strict=True):
            np.testing.assert_allclose(g, w, **FP16_TOLERANCE)
    engine.close()
    files = sorted(p.name for p in (tmp_path / "engines" / "tensorrt").iterdir())
    assert any(f.endswith(".engine") for f in files) and any(f.startswith("timing-") for f in files)

    started = time.perf_counter()
    again = create_engine("tensorrt", conv_model / "model.onnx", options)
    second = time.perf_counter() - started
    print(f"build+load {first:.1f}s, cached load {second:.1f}s")
    assert again.describe()["engine_cache"] == "hit"
    batch = _batch(conv_model, 5)
    np.testing.assert_allclose(
        again.infer({name: batch})[0], _reference(conv_model, batch)[0], **FP16_TOLERANCE
    )
    again.close()


def test_corrupt_cached_engine_is_rebuilt(conv_model: Path, tmp_path: Path) -> None:
    options = EngineOptions(max_batch_size=4, cache_dir=tmp_path / "engines")
    create_engine("tensorrt", conv_model / "model.onnx", options).close()
    (engine_file,) = (tmp_path / "engines" / "tensorrt").glob("*.engine")
    data = bytearray(engine_file.read_bytes())
    data[len(data) // 2] ^= 0xFF
    engine_file.write_bytes(bytes(data))
    rebuilt = create_engine("tensorrt", conv_model / "model.onnx", options)
    assert rebuilt.describe()["engine_cache"] == "built"
    rebuilt.close()


def test_two_streams_run_concurrent_batches(conv_model: Path, tmp_path: Path) -> None:
    from concurrent.futures import ThreadPoolExecutor

    engine = create_engine("tensorrt", conv_model / "model.onnx", EngineOptions(max_batch_size=8, streams=2))
    assert engine.concurrency == 2
    name = engine.inputs[0].name
    batches = [_batch(conv_model, 8) for _ in range(16)]
    with ThreadPoolExecutor(2) as pool:
        results = list(pool.map(lambda b: engine.infer({name: b})[0], batches))
    for batch, got in zip(batches, results, strict=True):
        np.testing.assert_allclose(got, _reference(conv_model, batch)[0], **FP16_TOLERANCE)
    engine.close()


@pytest.mark.parametrize("backend", ["onnxruntime-cuda", "onnxruntime-tensorrt"])
def test_ort_gpu_providers_match_cpu(conv_model: Path, tmp_path: Path, backend: str) -> None:
    import onnxruntime

    if backend == "onnxruntime-cuda" and "CUDAExecutionProvider" not in onnxruntime.get_available_providers():
        pytest.fail("onnxruntime-gpu is not installed (run_on_gpu.sh installs it)")
    engine = create_engine(backend, conv_model / "model.onnx", EngineOptions(cache_dir=tmp_path / "engines"))
    assert engine.describe()["device"] == "cuda:0"
    batch = _batch(conv_model, 4)
    np.testing.assert_allclose(
        engine.infer({engine.inputs[0].name: batch})[0], _reference(conv_model, batch)[0], **FP16_TOLERANCE
    )


async def test_served_over_http_like_ort_cpu(start_server: Any, tmp_path: Path) -> None:
    model = colour_classifier(tmp_path / "colour")
    answers = {}
    for backend in ("onnxruntime", "tensorrt"):
        client = await start_server(
            model, backend=backend, state_dir=tmp_path / f"state-{backend}", max_batch_size=4
        )
        info = await (await client.get("/info")).json()
        print(backend, info["engine"])
        assert info["engine"]["backend"] == backend
        assert info["engine"]["device"] == ("cpu" if backend == "onnxruntime" else "cuda:0")
        bodies = await asyncio.gather(
            *(
                client.post("/demo/ImageClassification", json={"image": b64(encode(solid(RED)))})
                for _ in range(8)
            )
        )
        answers[backend] = [await b.json() for b in bodies]
        await client.close()
    for cpu, gpu in zip(answers["onnxruntime"], answers["tensorrt"], strict=True):
        assert gpu["results"][0]["name"] == cpu["results"][0]["name"] == "red"
        assert gpu["results"][0]["score"] == pytest.approx(cpu["results"][0]["score"], abs=1e-2)
    assert answers["tensorrt"][0]["results"][0]["score"] == pytest.approx(
        math.exp(10) / (math.exp(10) + 2), abs=1e-2
    )


def test_gpu_container_serves_on_the_gpu(tmp_path: Path) -> None:
    """The GPU image in a real container given GPU 0 the way the installer's ``--gpu 0`` does
    (a DeviceRequest for device 0, capability gpu; deploy/docker_runtime.py): /info from inside
    must say TensorRT on cuda:0."""
    image = os.environ.get("INFERPACK_GPU_IMAGE")
    if not image:
        pytest.fail("INFERPACK_GPU_IMAGE is not set: run_on_gpu.sh builds the GPU image and sets it")
    import docker

    client = docker.from_env()
    model = colour_classifier(tmp_path / "model")
    for path in (tmp_path, model, *model.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    container = client.containers.run(
        image,
        ["--name", "demo", "--backend", "auto"],
        detach=True,
        volumes={str(model): {"bind": "/opt/inferpack/model", "mode": "ro"}},
        device_requests=[docker.types.DeviceRequest(device_ids=["0"], capabilities=[["gpu"]])],
    )
    probe = "import urllib.request as r; print(r.urlopen('http://127.0.0.1:8080/info').read().decode())"
    try:
        deadline = time.monotonic() + 600
        info: dict[str, Any] = {}
        while time.monotonic() < deadline and not info.get("ready"):
            result = container.exec_run(["/opt/inferpack/venv/bin/python", "-c", probe])
            if result.exit_code == 0:
                info = json.loads(result.output.decode())
            container.reload()
            assert container.status == "running", container.logs().decode()[-3000:]
            time.sleep(2)
        print(info.get("engine"))
        assert info["engine"]["backend"] == "tensorrt" and info["engine"]["device"] == "cuda:0"
    finally:
        print(container.logs().decode()[-3000:])
        container.remove(force=True)
