"""Raw ONNX Runtime in-process on pre-decoded tensors: the ceiling a server is measured against.

Two ways to use the cores are tried, as a server could: one batch at a time on every core
(ORT's default threads), and one batch per core at once (1 intra-op thread each, ``streams``
threads calling ``session.run`` on the shared session, which is thread-safe).
"""

from __future__ import annotations

import gc
import os
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.models import BenchModel
from bench.procstats import CpuMeter, CpuShare


@dataclass(frozen=True)
class RawResult:
    layout: str  # e.g. "1 x 2 threads" (batches at once x threads each)
    batch_size: int
    throughput: float  # images per second
    p50_ms: float  # per run() call, i.e. per batch
    p99_ms: float
    cpu: CpuShare  # bench: ORT in this process; others: the rest of the machine

    @property
    def label(self) -> str:
        return f"raw ORT {self.layout}, batch {self.batch_size}"


class RawEngine:
    """One ORT session (full graph optimisation) run back to back by ``streams`` threads."""

    def __init__(
        self, model: BenchModel, intra_op_threads: int = 0, streams: int = 1, graph: str = "model.onnx"
    ) -> None:
        import onnxruntime as ort

        options = ort.SessionOptions()
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.intra_op_num_threads = intra_op_threads
        self._session: Any = ort.InferenceSession(
            str(model.directory / graph), options, providers=["CPUExecutionProvider"]
        )
        self._input = self._session.get_inputs()[0].name
        self._shape = model.input_shape
        self._rng = np.random.default_rng(0)
        self.streams = streams
        threads = (
            f"{intra_op_threads} thread{'s' * (intra_op_threads > 1)}" if intra_op_threads else "ORT threads"
        )
        self.layout = f"{streams} x {threads}"

    def _loop(self, feed: dict[str, np.ndarray], until: float, latencies: list[float]) -> None:
        while (now := time.perf_counter()) < until:
            self._session.run(None, feed)
            latencies.append(time.perf_counter() - now)

    def measure(self, batch_size: int, duration_s: float) -> RawResult:
        feed = {self._input: self._rng.standard_normal((batch_size, *self._shape), dtype=np.float32)}
        for _ in range(2):
            self._session.run(None, feed)
        meter = CpuMeter(None)
        meter.start()
        started = time.perf_counter()
        latencies: list[float] = []  # list.append is atomic: the threads can share it
        threads = [
            threading.Thread(target=self._loop, args=(feed, started + duration_s, latencies))
            for _ in range(self.streams)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        elapsed = time.perf_counter() - started
        ms = np.asarray(latencies) * 1000
        return RawResult(
            self.layout,
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


def layouts() -> list[tuple[int, int]]:
    """(intra-op threads, streams) to try: ORT's default on one batch, and one batch per core."""
    cores = len(os.sched_getaffinity(0))
    return [(0, 1), (1, cores)] if cores > 1 else [(0, 1)]


def best(results: Sequence[RawResult]) -> RawResult:
    return max(results, key=lambda r: r.throughput)
