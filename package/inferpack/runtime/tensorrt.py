"""TensorRT engine: builds (once per GPU model, TensorRT version and model) and runs the model.

Build: the bundle's ONNX through TensorRT's ONNX parser into an explicit-batch network (the
only kind since TensorRT 10), one optimisation profile per stream with min/opt/max of the batch
axis from the batching settings (``BatchProfile``), a workspace limit, FP16 where the installed
TensorRT still has the builder flag and the GPU is fast at it (TensorRT 11 removed weak typing:
there the precision is the ONNX model's own, and an FP16 model must be converted beforehand,
e.g. with ModelOpt AutoCast), and a timing cache kept beside the engines so rebuilds for other
models on the same GPU are faster. The serialized engine is cached (``engine_cache``).

Run: tensor-name I/O (``set_input_shape``, ``set_tensor_address``, ``execute_async_v3``). Each
of ``options.streams`` slots has its own execution context (on its own optimisation profile, as
TensorRT requires for contexts used at the same time), CUDA stream, device buffers allocated
once for the largest batch, and pinned host buffers; ``infer`` takes a free slot, so two batches
in flight overlap one's copies with the other's compute. CUDA calls go through ``cuda-python``
(``cuda.bindings.runtime``), as TensorRT's own Python samples do.
"""

from __future__ import annotations

import ctypes
import logging
import queue
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from inferpack.errors import BundleError, ConfigError
from inferpack.fileio import sha256_file, write_atomic
from inferpack.runtime.engine import (
    BatchProfile,
    Engine,
    EngineOptions,
    TensorInfo,
    backend_cache_dir,
    batch_size_of,
    device_label,
)
from inferpack.runtime.engine_cache import EngineCache, EngineKey, ProfileShapes
from inferpack.runtime.gpu import GpuInfo

log = logging.getLogger("inferpack.runtime")

BACKEND = "tensorrt"


def import_tensorrt() -> Any:
    """The TensorRT Python module: ``tensorrt`` (the full pip package or NVIDIA's images), else
    ``tensorrt_bindings`` (the ``tensorrt-cuNN-bindings`` wheel alone, with the TensorRT libraries
    from the system, as in the GPU image); ImportError when neither is there."""
    try:
        import tensorrt
    except ImportError:
        import tensorrt_bindings as tensorrt
    return tensorrt


def _check(result: Any) -> Any:
    """cuda-python calls return (error, *values): raise on error, return the value(s)."""
    error, *values = result
    if int(error) != 0:
        from cuda.bindings import runtime as cudart

        name = cudart.cudaGetErrorName(error)[1]
        raise RuntimeError(f"CUDA error {int(error)} ({_text(name)})")
    if not values:
        return None
    return values[0] if len(values) == 1 else tuple(values)


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@dataclass
class _Buffer:
    """One I/O tensor of one slot: device memory and pinned host memory, both for the max batch."""

    name: str
    dtype: np.dtype[Any]
    nbytes: int
    device: int
    host_ptr: int
    host: np.ndarray = field(repr=False)  # flat view of the pinned memory


@dataclass
class _Slot:
    index: int
    context: Any
    stream: Any
    inputs: dict[str, _Buffer]
    outputs: dict[str, _Buffer]


def _network_inputs(network: Any) -> list[tuple[str, tuple[int | None, ...]]]:
    inputs = []
    for i in range(network.num_inputs):
        tensor = network.get_input(i)
        inputs.append((tensor.name, tuple(d if d >= 0 else None for d in tensor.shape)))
    return inputs


def profile_shapes(
    inputs: list[tuple[str, tuple[int | None, ...]]], batch: BatchProfile
) -> tuple[ProfileShapes, ...]:
    try:
        return tuple((name, *batch.shapes(shape)) for name, shape in inputs)
    except ValueError as exc:
        raise BundleError(f"TensorRT backend: {exc}") from exc


class _ProgressLog:
    """Logs the builder's top-level phases: a first build can take minutes."""

    def __init__(self, trt: Any) -> None:
        class Monitor(trt.IProgressMonitor):  # type: ignore[misc]
            def __init__(self) -> None:
                trt.IProgressMonitor.__init__(self)
                self.started: dict[str, float] = {}

            def phase_start(self, phase_name: str, parent_phase: str | None, num_steps: int) -> None:
                if parent_phase is None:
                    self.started[phase_name] = time.monotonic()
                    log.info("TensorRT build: %s (%d steps)", phase_name, num_steps)

            def step_complete(self, phase_name: str, step: int) -> bool:
                return True  # never cancel

            def phase_finish(self, phase_name: str) -> None:
                if phase_name in self.started:
                    took = time.monotonic() - self.started.pop(phase_name)
                    log.info("TensorRT build: %s done in %.1fs", phase_name, took)

        self.monitor = Monitor()


class TensorRTEngine(Engine):
    backend = BACKEND

    def __init__(self, model_path: Path, options: EngineOptions, gpu: GpuInfo) -> None:
        try:
            trt = import_tensorrt()
            from cuda.bindings import runtime as cudart
        except ImportError as exc:
            raise ConfigError(
                f"backend tensorrt needs the tensorrt and cuda-python packages "
                f"(the GPU image installs them from requirements-gpu.txt): {exc}"
            ) from exc
        self._trt, self._cudart = trt, cudart
        self._options = options
        self._gpu = gpu
        self._slots: queue.Queue[_Slot] = queue.Queue()
        self._all_slots: list[_Slot] = []
        self.concurrency = max(1, options.streams)
        self._logger = trt.Logger(trt.Logger.WARNING)
        try:
            _check(cudart.cudaSetDevice(options.device_id))
        except RuntimeError as exc:
            raise ConfigError(f"backend tensorrt cannot use GPU {options.device_id}: {exc}") from exc
        self.batch = BatchProfile.from_options(options)
        started = time.perf_counter()
        self._engine, self.cache_hit, self.precision = self._load_or_build(model_path)
        self.load_seconds = time.perf_counter() - started
        self._inputs, self._outputs = self._io_tensors()
        try:
            for index in range(self.concurrency):
                slot = self._make_slot(index)
                self._all_slots.append(slot)
                self._slots.put(slot)
        except BaseException:
            self.close()
            raise

    # ---- building and caching ----

    def _parse(self, builder: Any, model_path: Path) -> Any:
        trt = self._trt
        network = builder.create_network(0)  # explicit batch: the only mode since TensorRT 10
        parser = trt.OnnxParser(network, self._logger)
        if not parser.parse_from_file(str(model_path)):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise BundleError(f"{model_path}: TensorRT cannot parse the model: {errors}")
        return network, parser  # the parser must outlive the network's use

    def _wants_fp16(self, builder: Any) -> bool:
        flag = getattr(self._trt.BuilderFlag, "FP16", None)  # removed in TensorRT 11 (strong typing)
        return bool(
            self._options.fp16 and flag is not None and getattr(builder, "platform_has_fast_fp16", False)
        )

    def _load_or_build(self, model_path: Path) -> tuple[Any, bool, str]:
        trt = self._trt
        builder = trt.Builder(self._logger)
        network, _parser = self._parse(builder, model_path)
        precision = "fp16" if self._wants_fp16(builder) else "fp32"
        if self._options.fp16 and precision == "fp32":
            log.info(
                "TensorRT %s: FP16 not used (%s); the engine runs in the ONNX model's own types",
                trt.__version__,
                "no FP16 builder flag: convert the model to FP16 first (ModelOpt AutoCast)"
                if getattr(trt.BuilderFlag, "FP16", None) is None
                else "this GPU has no fast FP16",
            )
        shapes = profile_shapes(_network_inputs(network), self.batch)
        key = EngineKey(
            model_sha256=sha256_file(model_path),
            device=self._gpu.name,
            capability=f"{self._gpu.compute_capability[0]}.{self._gpu.compute_capability[1]}",
            builder=str(trt.__version__),
            precision=precision,
            profiles=(shapes,) * self.concurrency,
            workspace_mb=self._options.workspace_mb,
        )
        folder = backend_cache_dir(self._options, BACKEND)
        cache = EngineCache(folder) if folder is not None else None
        runtime = trt.Runtime(self._logger)

        def build() -> bytes:
            return self._build(builder, network, key, cache)

        if cache is None:
            log.warning("no state_dir: the TensorRT engine is built at every start (not cached)")
            data, hit = build(), False
        else:
            data, hit = cache.get_or_build(key, build)
        engine = runtime.deserialize_cuda_engine(data)
        if engine is None and hit and cache is not None:
            # Checksum fine, yet TensorRT refuses it (e.g. a driver change): never trust it, rebuild.
            log.warning("TensorRT cannot load the cached engine %s: rebuilding", cache.engine_path(key).name)
            cache.discard(key)
            data, hit = cache.get_or_build(key, build)
            engine = runtime.deserialize_cuda_engine(data)
        if engine is None:
            raise BundleError(f"{model_path}: TensorRT built an engine it cannot load")
        self._runtime = runtime  # keeps the runtime alive as long as the engine
        log.info(
            "TensorRT engine %s (%s, %s, batch %d-%d opt %d)",
            "loaded from cache" if hit else "built",
            precision,
            self._gpu.name,
            self.batch.min,
            self.batch.max,
            self.batch.opt,
        )
        return engine, hit, precision

    def _build(self, builder: Any, network: Any, key: EngineKey, cache: EngineCache | None) -> bytes:
        trt = self._trt
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, self._options.workspace_mb << 20)
        if key.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        for shapes in key.profiles:
            profile = builder.create_optimization_profile()
            for name, low, opt, high in shapes:
                profile.set_shape(name, low, opt, high)
            config.add_optimization_profile(profile)
        timing_path = cache.timing_cache_path(key) if cache is not None else None
        timing_bytes = b""
        if timing_path is not None and timing_path.is_file():
            timing_bytes = timing_path.read_bytes()
        timing = config.create_timing_cache(timing_bytes)
        if not config.set_timing_cache(timing, ignore_mismatch=False) and timing_bytes:
            log.warning("TensorRT timing cache %s does not fit this build: starting a new one", timing_path)
            config.set_timing_cache(config.create_timing_cache(b""), ignore_mismatch=False)
        progress = _ProgressLog(trt)
        config.progress_monitor = progress.monitor
        log.info(
            "building the TensorRT engine on %s (first start with this model, GPU and TensorRT; "
            "this can take minutes)",
            self._gpu.name,
        )
        started = time.perf_counter()
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise BundleError("TensorRT could not build an engine for the model (see the log above)")
        log.info("TensorRT engine built in %.1fs", time.perf_counter() - started)
        if timing_path is not None:
            try:
                write_atomic(timing_path, bytes(memoryview(config.get_timing_cache().serialize())), 0o600)
            except OSError as exc:
                log.warning("cannot save the TensorRT timing cache: %s", exc)
        return bytes(memoryview(serialized))

    # ---- tensors and buffers ----

    def _io_tensors(self) -> tuple[tuple[TensorInfo, ...], tuple[TensorInfo, ...]]:
        trt, engine = self._trt, self._engine
        inputs: list[TensorInfo] = []
        outputs: list[TensorInfo] = []
        for i in range(engine.num_io_tensors):
            name = engine.get_tensor_name(i)
            shape = tuple(d if d >= 0 else None for d in engine.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(name))).name
            info = TensorInfo(name=name, shape=shape, dtype=dtype)
            (inputs if engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT else outputs).append(info)
        return tuple(inputs), tuple(outputs)

    def _allocate(self, name: str, dtype: np.dtype[Any], shape: tuple[int, ...]) -> _Buffer:
        cudart = self._cudart
        count = int(np.prod(shape))
        nbytes = count * dtype.itemsize
        device = int(_check(cudart.cudaMalloc(nbytes)))
        host_ptr = int(_check(cudart.cudaMallocHost(nbytes)))
        raw = (ctypes.c_byte * nbytes).from_address(host_ptr)
        host = np.frombuffer(memoryview(raw), dtype=dtype, count=count)
        return _Buffer(name, dtype, nbytes, device, host_ptr, host)

    def _make_slot(self, index: int) -> _Slot:
        cudart, engine = self._cudart, self._engine
        stream = _check(cudart.cudaStreamCreate())
        context = engine.create_execution_context()
        if context is None:
            raise ConfigError("TensorRT cannot create an execution context (out of GPU memory?)")
        context.set_optimization_profile_async(index, int(stream))
        slot = _Slot(index, context, stream, {}, {})
        for info in self._inputs:
            high = tuple(engine.get_tensor_profile_shape(info.name, index)[2])
            context.set_input_shape(info.name, high)
            slot.inputs[info.name] = self._allocate(info.name, np.dtype(info.dtype), high)
        for info in self._outputs:
            high = tuple(context.get_tensor_shape(info.name))
            if any(d < 0 for d in high):
                raise BundleError(f"TensorRT backend: output {info.name} has a data-dependent shape {high}")
            slot.outputs[info.name] = self._allocate(info.name, np.dtype(info.dtype), high)
        for buffer in (*slot.inputs.values(), *slot.outputs.values()):
            context.set_tensor_address(buffer.name, buffer.device)  # once: the buffers never move
        _check(cudart.cudaStreamSynchronize(stream))
        return slot

    # ---- the Engine interface ----

    @property
    def inputs(self) -> tuple[TensorInfo, ...]:
        return self._inputs

    @property
    def outputs(self) -> tuple[TensorInfo, ...]:
        return self._outputs

    @property
    def max_batch_size(self) -> int | None:
        return self.batch.max if self._inputs[0].fixed_batch is None else self._inputs[0].fixed_batch

    def infer(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        batch_size_of(feeds, self.max_batch_size)
        slot = self._slots.get()
        try:
            return self._run(slot, feeds)
        finally:
            self._slots.put(slot)

    def _run(self, slot: _Slot, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        cudart = self._cudart
        to_device = cudart.cudaMemcpyKind.cudaMemcpyHostToDevice
        to_host = cudart.cudaMemcpyKind.cudaMemcpyDeviceToHost
        _check(cudart.cudaSetDevice(self._options.device_id))  # per thread: the batcher's threads
        for name, buffer in slot.inputs.items():
            array = np.asarray(feeds[name], dtype=buffer.dtype)
            staged = buffer.host[: array.size].reshape(array.shape)
            np.copyto(staged, array)  # into pinned memory: the copy below is a real async DMA
            slot.context.set_input_shape(name, array.shape)
            _check(
                cudart.cudaMemcpyAsync(buffer.device, buffer.host_ptr, array.nbytes, to_device, slot.stream)
            )
        if not slot.context.execute_async_v3(int(slot.stream)):
            raise RuntimeError("TensorRT execute_async_v3 failed (see the log)")
        shapes = []
        for info in self._outputs:
            buffer = slot.outputs[info.name]
            shape = tuple(slot.context.get_tensor_shape(info.name))
            nbytes = int(np.prod(shape)) * buffer.dtype.itemsize
            _check(cudart.cudaMemcpyAsync(buffer.host_ptr, buffer.device, nbytes, to_host, slot.stream))
            shapes.append(shape)
        _check(cudart.cudaStreamSynchronize(slot.stream))
        # Copies out of the pinned buffers: the slot is reused by the next batch.
        return [
            slot.outputs[info.name].host[: int(np.prod(shape))].reshape(shape).copy()
            for info, shape in zip(self._outputs, shapes, strict=True)
        ]

    @property
    def device(self) -> str:
        return device_label(self.backend, self._options.device_id)

    def details(self) -> dict[str, Any]:
        return {
            "gpu": self._gpu.describe(),
            "tensorrt": str(self._trt.__version__),
            "precision": self.precision,
            "profile": {"min": self.batch.min, "opt": self.batch.opt, "max": self.batch.max},
            "streams": self.concurrency,
            "engine_cache": "hit" if self.cache_hit else "built",
            "load_seconds": round(self.load_seconds, 2),
        }

    def close(self) -> None:
        cudart = self._cudart
        for slot in self._all_slots:
            for buffer in (*slot.inputs.values(), *slot.outputs.values()):
                cudart.cudaFree(buffer.device)
                cudart.cudaFreeHost(buffer.host_ptr)
            slot.inputs.clear()
            slot.outputs.clear()
            slot.context = None
            cudart.cudaStreamDestroy(slot.stream)
        self._all_slots.clear()
