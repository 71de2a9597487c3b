"""ONNX Runtime's optimised CPU graph cache: a second start loads it, and a corrupt or unloadable
entry is detected, discarded and rebuilt, with the same answers as an uncached engine."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inferpack.demo import demo_model_dir
from inferpack.runtime.engine import EngineOptions
from inferpack.runtime.engine_cache import EngineCache, EngineKey
from inferpack.runtime.onnx import OnnxRuntimeEngine
from inferpack.runtime.ort_cache import graph_key

MODEL = demo_model_dir("shapes-classifier") / "model.onnx"
BATCH = np.random.default_rng(0).random((2, 3, 96, 96), dtype=np.float32)


def run(cache_dir: Path | None) -> tuple[str, np.ndarray]:
    engine = OnnxRuntimeEngine(MODEL, EngineOptions(cache_dir=cache_dir))
    return engine.graph, engine.infer({"images": BATCH})[0]


@pytest.fixture
def expected() -> np.ndarray:
    graph, logits = run(None)
    assert graph == "optimised (not cached)"
    return logits


def entry(cache_dir: Path) -> tuple[EngineCache, EngineKey]:
    import onnxruntime as ort

    return EngineCache(cache_dir / "onnxruntime"), graph_key(MODEL, ort.__version__)


def test_the_second_start_loads_the_cached_graph(tmp_path: Path, expected: np.ndarray) -> None:
    assert run(tmp_path)[0] == "optimised and cached"
    store, key = entry(tmp_path)
    assert store.engine_path(key).is_file() and store.sidecar_path(key).is_file()
    graph, logits = run(tmp_path)
    assert graph == "cached"
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


def test_a_corrupt_cached_graph_is_rebuilt(
    tmp_path: Path, expected: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    run(tmp_path)
    store, key = entry(tmp_path)
    path = store.engine_path(key)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte on disk
    path.write_bytes(bytes(data))
    graph, logits = run(tmp_path)
    assert graph == "optimised and cached" and "corrupt (size or SHA-256 differs" in caplog.text
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)
    assert run(tmp_path)[0] == "cached"  # the rebuilt entry is good


def test_a_graph_onnxruntime_refuses_is_rebuilt_even_with_a_matching_checksum(
    tmp_path: Path, expected: np.ndarray, caplog: pytest.LogCaptureFixture
) -> None:
    run(tmp_path)
    store, key = entry(tmp_path)
    store.store(key, b"not an onnx graph")  # checksum and sidecar agree
    graph, logits = run(tmp_path)
    assert graph == "optimised and cached" and "cannot load the cached graph" in caplog.text
    np.testing.assert_allclose(logits, expected, rtol=1e-5, atol=1e-5)


def test_each_model_has_its_own_entry(tmp_path: Path) -> None:
    run(tmp_path)
    OnnxRuntimeEngine(demo_model_dir("shapes-detector") / "model.onnx", EngineOptions(cache_dir=tmp_path))
    assert len(list((tmp_path / "onnxruntime").glob("*.engine"))) == 2
