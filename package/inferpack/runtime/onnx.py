"""ONNX Runtime engine: the default, CPU everywhere; CUDA and TensorRT providers with onnxruntime-gpu.

On a GPU the inputs and outputs go through an IO binding: ORT copies the batch to the device
once and writes the outputs into device memory it allocates, with no intermediate copies of
its own, and the results come back to the host in one copy each.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from inferpack.errors import BundleError, ConfigError
from inferpack.runtime.engine import Engine, EngineOptions, TensorInfo, backend_cache_dir, device_label
from inferpack.runtime.ort_cache import cached_session

log = logging.getLogger("inferpack.runtime")

# ONNX type strings as ORT reports them → numpy dtype names.
_ORT_TYPES = {
    "tensor(float)": "float32",
    "tensor(float16)": "float16",
    "tensor(double)": "float64",
    "tensor(uint8)": "uint8",
    "tensor(int8)": "int8",
    "tensor(int32)": "int32",
    "tensor(int64)": "int64",
}

PROVIDERS = {
    "onnxruntime": "CPUExecutionProvider",
    "onnxruntime-cuda": "CUDAExecutionProvider",
    "onnxruntime-tensorrt": "TensorrtExecutionProvider",
}


def _tensor_info(node: Any) -> TensorInfo:
    # Symbolic dims come back as strings (e.g. "batch") or None: both mean dynamic.
    shape = tuple(d if isinstance(d, int) and d > 0 else None for d in node.shape)
    return TensorInfo(name=node.name, shape=shape, dtype=_ORT_TYPES.get(node.type, node.type))


def provider_options(backend: str, options: EngineOptions) -> list[tuple[str, dict[str, Any]]]:
    """The provider list for a backend; GPU providers keep the CPU provider as ORT's own fallback
    for operators they lack (a whole-model fallback is refused in ``OnnxRuntimeEngine``).

    The TensorRT provider keeps its engines and timing cache under the state dir
    (``cache_dir/onnxruntime-tensorrt``; ORT keys its engine files by model and shapes itself).
    """
    cpu: tuple[str, dict[str, Any]] = ("CPUExecutionProvider", {})
    if backend == "onnxruntime":
        return [cpu]
    cuda: tuple[str, dict[str, Any]] = ("CUDAExecutionProvider", {"device_id": options.device_id})
    if backend == "onnxruntime-cuda":
        return [cuda, cpu]
    trt: dict[str, Any] = {
        "device_id": options.device_id,
        "trt_fp16_enable": options.fp16,
        "trt_max_workspace_size": options.workspace_mb << 20,
    }
    cache = backend_cache_dir(options, backend)
    if cache is not None:
        trt.update(
            trt_engine_cache_enable=True,
            trt_engine_cache_path=str(cache),
            trt_timing_cache_enable=True,
            trt_timing_cache_path=str(cache),
        )
    return [("TensorrtExecutionProvider", trt), cuda, cpu]


def usable_cores() -> int:
    """The cores this process may run on (its affinity: taskset, a container's cpuset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def cpu_threading(options: EngineOptions) -> tuple[int, int]:
    """(batches at once, intra-op threads per batch) on the CPU; see inferpack.config."""
    streams = max(1, options.cpu_streams)
    return streams, options.intra_op_threads or max(1, usable_cores() // streams)


class OnnxRuntimeEngine(Engine):
    def __init__(self, model_path: Path, options: EngineOptions, backend: str = "onnxruntime") -> None:
        import onnxruntime as ort

        wanted = PROVIDERS[backend]
        if wanted not in ort.get_available_providers():  # create_engine checks first; a direct caller
            raise ConfigError(
                f"backend {backend} needs {wanted}, which this onnxruntime build lacks "
                f"(available: {', '.join(ort.get_available_providers())})"
            )
        session_options = ort.SessionOptions()
        session_options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        # On the CPU, cpu_streams batches run at once (session.run is thread-safe), each on its
        # share of the cores; a GPU backend runs one batch at a time with ORT's thread choice.
        self.concurrency, threads = (
            cpu_threading(options) if backend == "onnxruntime" else (1, options.intra_op_threads)
        )
        session_options.intra_op_num_threads = threads
        # Within a batch, inter-op parallelism only adds thread contention.
        session_options.inter_op_num_threads = 1
        session_options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        providers = provider_options(backend, options)
        try:
            if backend == "onnxruntime":  # GPU providers optimise for their device at every load
                folder = backend_cache_dir(options, backend)
                self._session, self.graph = cached_session(
                    ort, model_path, session_options, providers, folder
                )
            else:
                self._session = ort.InferenceSession(
                    str(model_path), sess_options=session_options, providers=providers
                )
                self.graph = "optimised (not cached)"
        except Exception as exc:  # ORT raises its own untyped errors for bad graphs
            raise BundleError(f"{model_path}: onnxruntime cannot load the model: {exc}") from exc
        active = self._session.get_providers()
        if active[0] != wanted:
            raise ConfigError(
                f"backend {backend}: onnxruntime fell back to {active[0]} (is the device usable?)"
            )
        self.backend = backend
        self._options = options
        self._threads = threads
        self._providers = active
        self._inputs = tuple(_tensor_info(i) for i in self._session.get_inputs())
        self._outputs = tuple(_tensor_info(o) for o in self._session.get_outputs())
        self._output_names = [o.name for o in self._outputs]

    @property
    def inputs(self) -> tuple[TensorInfo, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorInfo, ...]:
        return self._outputs

    def infer(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        if self.backend == "onnxruntime":
            return list(self._session.run(self._output_names, dict(feeds)))
        binding = self._session.io_binding()
        for name, array in feeds.items():
            binding.bind_cpu_input(name, np.ascontiguousarray(array))
        for name in self._output_names:
            binding.bind_output(name, "cuda", self._options.device_id)  # ORT allocates on the device
        self._session.run_with_iobinding(binding)
        return list(binding.copy_outputs_to_cpu())

    @property
    def device(self) -> str:
        return device_label(self.backend, self._options.device_id)

    def details(self) -> dict[str, Any]:
        return {
            "providers": self._providers,
            "intra_op_threads": self._threads or "auto",
            "streams": self.concurrency,
            "io_binding": self.backend != "onnxruntime",
            "graph": self.graph,
        }
