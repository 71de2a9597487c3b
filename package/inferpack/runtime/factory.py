"""Creates an engine by backend name; ``auto`` picks the fastest one this host can run."""

from __future__ import annotations

import logging
from pathlib import Path

from inferpack.errors import ConfigError
from inferpack.runtime.engine import Engine, EngineOptions

log = logging.getLogger("inferpack.runtime")


def _ort_providers() -> list[str]:
    import onnxruntime as ort

    return list(ort.get_available_providers())


def resolve_backend(backend: str) -> str:
    """Turns ``auto`` into a concrete backend: ORT TensorRT EP, then CUDA EP, then ORT CPU."""
    if backend != "auto":
        return backend
    providers = _ort_providers()
    if "TensorrtExecutionProvider" in providers:
        return "onnxruntime-tensorrt"
    if "CUDAExecutionProvider" in providers:
        return "onnxruntime-cuda"
    return "onnxruntime"


def create_engine(backend: str, model_path: Path, options: EngineOptions) -> Engine:
    """Loads the model with the named backend. An explicit backend that cannot run here is an
    error, never a silent fallback: the operator asked for it for a reason."""
    chosen = resolve_backend(backend)
    if chosen != backend:
        log.info("backend auto resolved to %s", chosen)
    if chosen.startswith("onnxruntime"):
        from inferpack.runtime.onnx import OnnxRuntimeEngine

        return OnnxRuntimeEngine(model_path, options, backend=chosen)
    raise ConfigError(f"unknown backend {backend!r}")
