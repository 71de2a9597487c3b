"""What the ONNX Runtime and TensorRT engines share: batch profiles, cache folders, checks."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from inferpack.errors import BundleError
from inferpack.runtime.engine import BatchProfile, EngineOptions, backend_cache_dir, batch_size_of
from inferpack.runtime.onnx import provider_options
from inferpack.runtime.tensorrt import profile_shapes


def test_profile_comes_from_the_batching_settings() -> None:
    profile = BatchProfile.from_options(EngineOptions(max_batch_size=16))
    assert (profile.min, profile.opt, profile.max) == (1, 16, 16)
    assert profile.shapes((None, 3, 224, 224)) == ((1, 3, 224, 224), (16, 3, 224, 224), (16, 3, 224, 224))
    assert profile.shapes((4, 3, 8, 8)) == ((4, 3, 8, 8),) * 3  # a fixed batch stays fixed
    with pytest.raises(ValueError, match="only the batch axis may be dynamic"):
        profile.shapes((None, 3, None, None))


def test_tensorrt_profile_shapes_refuse_dynamic_image_sizes() -> None:
    batch = BatchProfile(1, 4, 8)
    assert profile_shapes([("images", (None, 3, 32, 32))], batch) == (
        ("images", (1, 3, 32, 32), (4, 3, 32, 32), (8, 3, 32, 32)),
    )
    with pytest.raises(BundleError, match="TensorRT backend: only the batch axis"):
        profile_shapes([("images", (None, 3, None, 32))], batch)


def test_batch_size_check() -> None:
    feeds = {"a": np.zeros((3, 2)), "b": np.zeros((3, 5))}
    assert batch_size_of(feeds, 8) == 3
    with pytest.raises(ValueError, match="exceeds the engine's maximum of 2"):
        batch_size_of(feeds, 2)
    with pytest.raises(ValueError, match="disagree"):
        batch_size_of({"a": np.zeros((3, 2)), "b": np.zeros((4, 2))}, None)


def test_backend_cache_dir_is_under_the_state_dir(tmp_path: Path) -> None:
    assert backend_cache_dir(EngineOptions(), "tensorrt") is None
    folder = backend_cache_dir(EngineOptions(cache_dir=tmp_path / "engines"), "tensorrt")
    assert folder == tmp_path / "engines" / "tensorrt" and folder.is_dir()


def test_ort_gpu_provider_options(tmp_path: Path) -> None:
    options = EngineOptions(device_id=1, cache_dir=tmp_path / "engines", fp16=False, workspace_mb=512)
    assert provider_options("onnxruntime", options) == [("CPUExecutionProvider", {})]
    cuda = provider_options("onnxruntime-cuda", options)
    assert cuda == [("CUDAExecutionProvider", {"device_id": 1}), ("CPUExecutionProvider", {})]
    (name, trt), *rest = provider_options("onnxruntime-tensorrt", options)
    assert name == "TensorrtExecutionProvider" and [n for n, _ in rest] == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    cache = str(tmp_path / "engines" / "onnxruntime-tensorrt")
    assert trt == {
        "device_id": 1,
        "trt_fp16_enable": False,
        "trt_max_workspace_size": 512 << 20,
        "trt_engine_cache_enable": True,
        "trt_engine_cache_path": cache,
        "trt_timing_cache_enable": True,
        "trt_timing_cache_path": cache,
    }
    (_, no_cache), *_ = provider_options("onnxruntime-tensorrt", EngineOptions())
    assert "trt_engine_cache_path" not in no_cache and no_cache["trt_fp16_enable"] is True
