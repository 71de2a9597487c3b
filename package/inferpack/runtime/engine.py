"""The engine contract: what the model layer needs from ONNX Runtime, TensorRT or anything else.

An engine loads one ONNX model, reports its tensors, and runs a batch. It knows nothing of
images, labels or HTTP. Backends are created by name through ``create_engine`` and their
heavy libraries are imported only when chosen, so a CPU host never needs GPU packages.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np


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
    intra_op_threads: int = 0  # 0: let the backend decide
    device_id: int = 0
    cache_dir: Path | None = None  # where GPU backends keep built engines
    fp16: bool = True


class Engine(ABC):
    """One loaded model, ready to run batches. Not thread-safe: the batcher calls it serially."""

    backend: str

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

    @abstractmethod
    def describe(self) -> dict[str, Any]:
        """Backend, device and settings, for /info and the start log."""

    def close(self) -> None:  # noqa: B027 - optional hook, most engines hold nothing to release
        """Releases what the engine holds."""
