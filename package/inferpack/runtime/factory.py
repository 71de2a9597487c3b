"""Creates an engine by backend name; ``auto`` picks the fastest one this host can run.

``auto``: TensorRT when its Python packages import and a GPU is present, then ONNX Runtime's
TensorRT execution provider, then its CUDA provider (both only with a GPU present: an
onnxruntime-gpu build lists them either way), then ONNX Runtime on the CPU. An explicitly named
backend that cannot run here is a ConfigError at start naming what is missing, never a silent
fallback: the operator asked for it for a reason.
"""

from __future__ import annotations

import importlib.util
import logging
from dataclasses import dataclass
from pathlib import Path

from inferpack.errors import ConfigError
from inferpack.runtime.engine import Engine, EngineOptions
from inferpack.runtime.gpu import GpuInfo, find_gpu
from inferpack.runtime.onnx import PROVIDERS  # the module imports onnxruntime only when loading

log = logging.getLogger("inferpack.runtime")

AUTO_ORDER = ("tensorrt", "onnxruntime-tensorrt", "onnxruntime-cuda", "onnxruntime")


def _ort_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def _missing_modules(*names: str) -> list[str]:
    missing = []
    for name in names:
        try:
            found = importlib.util.find_spec(name) is not None
        except ImportError:  # a parent package is missing: cuda for cuda.bindings
            found = False
        if not found:
            missing.append(name)
    return missing


@dataclass(frozen=True)
class Availability:
    """Whether a backend can run here, and if not, why (for the start-up error and the log)."""

    backend: str
    reason: str = ""  # empty: available
    gpu: GpuInfo | None = None

    @property
    def ok(self) -> bool:
        return not self.reason


def availability(backend: str, device_id: int) -> Availability:
    if backend == "onnxruntime":
        return Availability(backend)
    if backend == "tensorrt":
        missing = _missing_modules("cuda.bindings")
        if _missing_modules("tensorrt") and _missing_modules("tensorrt_bindings"):
            missing.insert(0, "tensorrt")
        if missing:
            return Availability(
                backend,
                f"the Python packages for {', '.join(missing)} are not installed "
                "(tensorrt, cuda-python: the GPU image has them, see requirements-gpu.txt)",
            )
    elif backend in PROVIDERS:
        providers = _ort_providers()
        if PROVIDERS[backend] not in providers:
            return Availability(
                backend,
                f"this onnxruntime build lacks {PROVIDERS[backend]} (available: {', '.join(providers)}; "
                "the GPU image installs onnxruntime-gpu)",
            )
    else:
        raise ConfigError(f"unknown backend {backend!r}")
    gpu, why = find_gpu(device_id)
    if gpu is None:
        return Availability(backend, f"no usable NVIDIA GPU {device_id}: {why}")
    return Availability(backend, gpu=gpu)


def resolve_backend(backend: str, device_id: int = 0) -> Availability:
    """The backend to load: ``auto`` resolved, an explicit one checked (ConfigError if it can't run)."""
    if backend != "auto":
        found = availability(backend, device_id)
        if not found.ok:
            raise ConfigError(f"backend {backend} is not available on this host: {found.reason}")
        return found
    skipped: list[str] = []
    for candidate in AUTO_ORDER:
        found = availability(candidate, device_id)
        if found.ok:
            if skipped:
                log.info("backend auto: %s (skipped %s)", candidate, "; ".join(skipped))
            return found
        skipped.append(f"{candidate}: {found.reason}")
    raise AssertionError("onnxruntime on the CPU is always available")  # pragma: no cover


def create_engine(backend: str, model_path: Path, options: EngineOptions) -> Engine:
    """Loads the model with the named (or ``auto``-chosen) backend and logs what it runs on."""
    chosen = resolve_backend(backend, options.device_id)
    engine: Engine
    if chosen.backend == "tensorrt":
        from inferpack.runtime.tensorrt import TensorRTEngine

        assert chosen.gpu is not None
        engine = TensorRTEngine(model_path, options, chosen.gpu)
    else:
        from inferpack.runtime.onnx import OnnxRuntimeEngine

        engine = OnnxRuntimeEngine(model_path, options, backend=chosen.backend)
    engine.requested_backend = backend
    described = engine.describe()
    log.info(
        "engine: backend %s on %s%s (requested %s)",
        engine.backend,
        described.get("device", "?"),
        f" ({chosen.gpu.name}, compute {chosen.gpu.sm})" if chosen.gpu is not None else "",
        backend,
    )
    return engine
