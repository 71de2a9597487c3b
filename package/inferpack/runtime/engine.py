"""The engine contract: what the model layer needs from ONNX Runtime, TensorRT or anything else.

An engine loads one ONNX model, reports its tensors, and runs a batch. It knows nothing of
images, labels or HTTP. Backends are created by name through ``create_engine`` and their
heavy libraries are imported only when chosen, so a CPU host never needs GPU packages.

The helpers below are what the ONNX Runtime and TensorRT engines share: the batch profile
derived from the batching settings, where a GPU backend keeps its caches, the device label, and
the batch-size check for engines with buffers sized once.
"""

from __future__ import annotations

import logging
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

log = logging.getLogger("inferpack.runtime")


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int | None, ...]  # None marks a dynamic dimension
    dtype: str  # numpy dtype name, e.g. "float32"

    @property
    def fixed_batch(self) -> int | None:
        """The batch size baked into the graph, or None when the batch axis is dynamic."""
        return self.shape[0] if self.shape else None


@dataclass(frozen=True)
class EngineOptions:
    max_batch_size: int = 8
    intra_op_threads: int = 0  # per batch; 0: let the backend decide
    cpu_streams: int = 2  # CPU backends: batches run at once (see inferpack.config)
    device_id: int = 0
    cache_dir: Path | None = None  # where GPU backends keep built engines (under the state dir)
    fp16: bool = True  # where the backend and the GPU support it
    workspace_mb: int = 1024  # TensorRT builder workspace limit
    streams: int = 2  # GPU backends: execution contexts/streams, so batches overlap copy and compute


Shape = tuple[int, ...]


@dataclass(frozen=True)
class BatchProfile:
    """The batch sizes an engine is optimised for: TensorRT's min/opt/max of the batch axis."""

    min: int
    opt: int
    max: int

    @classmethod
    def from_options(cls, options: EngineOptions) -> BatchProfile:
        # Under load the batcher fills batches up to the maximum, so that is the size to tune for.
        return cls(min=1, opt=options.max_batch_size, max=options.max_batch_size)

    def shapes(
        self, shape: tuple[int | None, ...]
    ) -> tuple[tuple[int, ...], tuple[int, ...], tuple[int, ...]]:
        """min/opt/max shapes of a tensor whose axis 0 is the batch; other axes must be fixed."""
        rest = shape[1:]
        if any(d is None for d in rest):
            raise ValueError(f"only the batch axis may be dynamic, got shape {shape}")
        fixed = tuple(int(d) for d in rest if d is not None)
        if shape and shape[0] is not None:  # the graph fixes the batch: one shape fits all
            whole = (int(shape[0]), *fixed)
            return whole, whole, whole
        return (self.min, *fixed), (self.opt, *fixed), (self.max, *fixed)


def backend_cache_dir(options: EngineOptions, backend: str) -> Path | None:
    """``cache_dir/backend``, created; None when the engine has nowhere to keep caches, or cannot
    make the folder (a full disk costs the cache, never the model)."""
    if options.cache_dir is None:
        return None
    folder = options.cache_dir / backend
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        log.warning("no engine cache: cannot create %s (%s)", folder, exc.strerror or exc)
        return None
    return folder


def device_label(backend: str, device_id: int) -> str:
    return "cpu" if backend == "onnxruntime" else f"cuda:{device_id}"


def batch_size_of(feeds: Mapping[str, np.ndarray], limit: int | None) -> int:
    """The batch size of ``feeds``; ValueError when the inputs disagree or exceed ``limit``."""
    sizes = {array.shape[0] if array.ndim else 1 for array in feeds.values()}
    if len(sizes) != 1:
        raise ValueError(f"inputs disagree on the batch size: {sorted(sizes)}")
    (size,) = sizes
    if limit is not None and size > limit:
        raise ValueError(f"batch of {size} exceeds the engine's maximum of {limit}")
    return size


class Engine(ABC):
    """One loaded model, ready to run batches.

    ``infer`` may be called from up to ``concurrency`` threads at once (1 unless the engine says
    otherwise: the batcher then runs batches strictly one after another).
    """

    backend: str
    concurrency: int = 1
    requested_backend: str | None = None  # what the configuration asked for (e.g. "auto")

    @property
    @abstractmethod
    def inputs(self) -> tuple[TensorInfo, ...]: ...

    @property
    @abstractmethod
    def outputs(self) -> tuple[TensorInfo, ...]: ...

    @property
    def max_batch_size(self) -> int | None:
        """The largest batch one ``infer`` accepts (None: no limit of the engine's own)."""
        fixed = self.inputs[0].fixed_batch
        return fixed if fixed is not None else None

    @abstractmethod
    def infer(self, feeds: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        """Runs one batch; returns every output, in ``outputs`` order, batch axis first."""

    @property
    @abstractmethod
    def device(self) -> str:
        """Where it runs: "cpu" or "cuda:N"."""

    def describe(self) -> dict[str, Any]:
        """Backend, device and settings, for /info and the start log."""
        return {
            "backend": self.backend,
            "requested_backend": self.requested_backend or self.backend,
            "device": self.device,
            **self.details(),
        }

    @abstractmethod
    def details(self) -> dict[str, Any]:
        """The backend's own settings for ``describe``."""

    def close(self) -> None:  # noqa: B027 - optional hook, most engines hold nothing to release
        """Releases what the engine holds."""
