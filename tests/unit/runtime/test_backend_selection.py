"""Backend selection with what this host really has, plus honest stand-ins for what it lacks.

On the CI machine there is no GPU, no TensorRT, no pynvml and a CPU-only onnxruntime: the first
tests use exactly that. The stand-ins below (``STAND_IN_GPU``, ``stand_in_*``) only replace the
*discovery* answers (is a module importable, which providers ORT lists, which GPU NVML sees) to
check the order ``auto`` follows; no test here loads a GPU engine, and none of them says
anything about whether the GPU path works (tests/gpu does, on a GPU machine).
"""

from __future__ import annotations

import importlib.util
import logging
from pathlib import Path

import pytest

from inferpack.config import ServerConfig
from inferpack.errors import ConfigError
from inferpack.runtime import factory
from inferpack.runtime.engine import EngineOptions
from inferpack.runtime.gpu import GpuInfo

STAND_IN_GPU = GpuInfo(
    index=0,
    name="Stand-in GPU (not a real device)",
    uuid="GPU-stand-in",
    compute_capability=(9, 0),
    memory_bytes=80 << 30,
    driver_version="0.0",
)

needs_no_tensorrt = pytest.mark.skipif(
    importlib.util.find_spec("tensorrt") is not None, reason="this host has TensorRT installed"
)
needs_cpu_only_ort = pytest.mark.skipif(
    bool({"CUDAExecutionProvider", "TensorrtExecutionProvider"} & set(factory._ort_providers())),
    reason="this host's onnxruntime has GPU providers",
)


def stand_in_gpu(monkeypatch: pytest.MonkeyPatch, present: bool) -> None:
    monkeypatch.setattr(
        factory, "find_gpu", lambda index: (STAND_IN_GPU, "") if present else (None, "stand-in: no GPU")
    )


def stand_in_modules(monkeypatch: pytest.MonkeyPatch, importable: bool) -> None:
    monkeypatch.setattr(factory, "_missing_modules", lambda *names: [] if importable else list(names))


def stand_in_providers(monkeypatch: pytest.MonkeyPatch, *providers: str) -> None:
    monkeypatch.setattr(factory, "_ort_providers", lambda: [*providers, "CPUExecutionProvider"])


# ---- this host as it is ----


@needs_no_tensorrt
@needs_cpu_only_ort
def test_auto_on_this_cpu_host_is_onnxruntime(colour_model: Path, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, "inferpack.runtime")
    engine = factory.create_engine("auto", colour_model / "model.onnx", EngineOptions())
    described = engine.describe()
    assert described["backend"] == "onnxruntime" and described["device"] == "cpu"
    assert described["requested_backend"] == "auto"
    assert "engine: backend onnxruntime on cpu (requested auto)" in caplog.text
    assert "tensorrt: the Python packages for tensorrt" in caplog.text  # why auto skipped it


@needs_no_tensorrt
def test_explicit_tensorrt_without_its_packages_is_a_clear_config_error(colour_model: Path) -> None:
    with pytest.raises(ConfigError) as error:
        factory.create_engine("tensorrt", colour_model / "model.onnx", EngineOptions())
    message = str(error.value)
    assert message.startswith("backend tensorrt is not available on this host:")
    assert "tensorrt" in message and "requirements-gpu.txt" in message


@needs_cpu_only_ort
@pytest.mark.parametrize(
    ("backend", "provider"),
    [("onnxruntime-cuda", "CUDAExecutionProvider"), ("onnxruntime-tensorrt", "TensorrtExecutionProvider")],
)
def test_explicit_ort_gpu_backend_on_cpu_build_is_a_clear_config_error(
    colour_model: Path, backend: str, provider: str
) -> None:
    with pytest.raises(ConfigError, match=rf"backend {backend} is not available.*lacks {provider}"):
        factory.create_engine(backend, colour_model / "model.onnx", EngineOptions())


def test_unknown_backend_is_refused() -> None:
    with pytest.raises(ConfigError, match="unknown backend"):
        factory.resolve_backend("tensorflow")
    with pytest.raises(ConfigError, match="backend 'tensorflow' is unknown"):
        ServerConfig(deploy_name="demo", model_dir=Path("."), backend="tensorflow")


def test_tensorrt_is_a_configurable_backend() -> None:
    assert ServerConfig(deploy_name="demo", model_dir=Path("."), backend="tensorrt").backend == "tensorrt"


# ---- the order of auto, with stand-ins for the discovery answers ----


def test_auto_prefers_tensorrt_when_importable_and_a_gpu_is_present(monkeypatch: pytest.MonkeyPatch) -> None:
    stand_in_modules(monkeypatch, importable=True)
    stand_in_gpu(monkeypatch, present=True)
    stand_in_providers(monkeypatch, "TensorrtExecutionProvider", "CUDAExecutionProvider")
    chosen = factory.resolve_backend("auto", 0)
    assert chosen.backend == "tensorrt" and chosen.gpu == STAND_IN_GPU


def test_auto_then_ort_tensorrt_then_cuda(monkeypatch: pytest.MonkeyPatch) -> None:
    stand_in_modules(monkeypatch, importable=False)
    stand_in_gpu(monkeypatch, present=True)
    stand_in_providers(monkeypatch, "TensorrtExecutionProvider", "CUDAExecutionProvider")
    assert factory.resolve_backend("auto").backend == "onnxruntime-tensorrt"
    stand_in_providers(monkeypatch, "CUDAExecutionProvider")
    assert factory.resolve_backend("auto").backend == "onnxruntime-cuda"


def test_auto_without_a_gpu_is_cpu_even_with_every_gpu_package(monkeypatch: pytest.MonkeyPatch) -> None:
    # onnxruntime-gpu lists its GPU providers whether or not a GPU is there.
    stand_in_modules(monkeypatch, importable=True)
    stand_in_gpu(monkeypatch, present=False)
    stand_in_providers(monkeypatch, "TensorrtExecutionProvider", "CUDAExecutionProvider")
    assert factory.resolve_backend("auto").backend == "onnxruntime"


def test_explicit_gpu_backend_without_a_gpu_names_the_reason(monkeypatch: pytest.MonkeyPatch) -> None:
    stand_in_modules(monkeypatch, importable=True)
    stand_in_gpu(monkeypatch, present=False)
    stand_in_providers(monkeypatch, "CUDAExecutionProvider")
    for backend in ("tensorrt", "onnxruntime-cuda"):
        with pytest.raises(ConfigError, match=rf"backend {backend} is not available.*no usable NVIDIA GPU 0"):
            factory.resolve_backend(backend, 0)


def test_explicit_cpu_backend_never_looks_for_a_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_lookup(index: int) -> None:
        raise AssertionError("the CPU backend must not query NVML")

    monkeypatch.setattr(factory, "find_gpu", no_lookup)
    assert factory.resolve_backend("onnxruntime").backend == "onnxruntime"


def test_missing_modules_handles_absent_parent_packages() -> None:
    assert factory._missing_modules("json", "no_such_pkg_inferpack.sub") == ["no_such_pkg_inferpack.sub"]
