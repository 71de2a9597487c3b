"""Raw ONNX Runtime in-process on pre-decoded tensors: the ceiling a server is measured against."""

from __future__ import annotations

import gc
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.models import BenchModel
from bench.procstats import CpuMeter, CpuShare


@dataclass(frozen=True)
class RawResult:
    batch_size: int
    throughput: float  # images per second
    p50_ms: float  # per run() call, i.e. per batch
    p99_ms: float
    cpu: CpuShare  # bench: ORT in this process; others: the rest of the machine


class RawEngine:
    """One ORT session (default threads, full graph optimisation), run back to back."""

    def __init__(self, model: BenchModel, intra_op_threads: int = 0) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = intra_op_threads
        self._session: Any = ort.InferenceSession(
            str(model.onnx_path), options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self._shape = model.input_shape
        self._rng = np.random.default_rng(0)

    def measure(self, batch_size: int, duration_s: float) -> RawResult:
        feed = {self._input: self._rng.standard_normal((batch_size, *self._shape), dtype=np.float32)}
        for _ in range(2):
            self._session.run(None, feed)
        meter = CpuMeter(None)
        meter.start()
        latencies = []
        started = time.perf_counter()
        while (now := time.perf_counter()) - started < duration_s:
            self._session.run(None, feed)
            latencies.append(time.perf_counter() - now)
        elapsed = time.perf_counter() - started
        ms = np.asarray(latencies) * 1000
        return RawResult(
            batch_size,
            batch_size * len(latencies) / elapsed,
            float(np.median(ms)),
            float(np.percentile(ms, 99)),
            meter.stop(),
        )

    def sweep(self, batch_sizes: Sequence[int], duration_s: float) -> list[RawResult]:
        return [self.measure(batch, duration_s) for batch in batch_sizes]

    def close(self) -> None:
        """Drops the session, so its threads are gone (a server may be measured next)."""
        del self._session
        gc.collect()


def best(results: Sequence[RawResult]) -> RawResult:
    return max(results, key=lambda r: r.throughput)
