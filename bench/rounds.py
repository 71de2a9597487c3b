"""Repeated measurements on a shared machine: rotate who goes first, pool what they saw."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TypeVar

import numpy as np

from bench.loadgen import LoadResult
from bench.procstats import CpuShare

T = TypeVar("T")


def rotated(items: Sequence[T], by: int) -> list[T]:
    """``items`` starting at ``by`` (mod its length): round ``by``'s running order."""
    shift = by % len(items)
    return [*items[shift:], *items[:shift]]


def pooled(results: Sequence[LoadResult]) -> LoadResult:
    """One result from several rounds: every latency, throughput over the total time, mean CPU."""

    def mean(values: list[float]) -> float:
        return float(np.mean(values))

    return LoadResult(
        completed=sum(r.completed for r in results),
        errors=sum(r.errors for r in results),
        elapsed_s=sum(r.elapsed_s for r in results),
        latencies_s=np.concatenate([r.latencies_s for r in results]),
        cpu=CpuShare(
            mean([r.cpu.server for r in results]),
            mean([r.cpu.bench for r in results]),
            mean([r.cpu.others for r in results]),
        ),
        error_samples=[s for r in results for s in r.error_samples][:5],
    )
