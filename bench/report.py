"""Printing benchmark figures as aligned tables."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from bench.loadgen import LoadResult
from bench.raw_ort import RawResult


@dataclass(frozen=True)
class Row:
    """One line: ``cpu`` is the server's process tree (raw ORT: this process), ``client`` the
    load generator, ``others`` the rest of the machine, i.e. how noisy the measurement was
    (100 % = one core)."""

    name: str
    throughput: float
    p50_ms: float
    p99_ms: float
    cpu: float = math.nan
    others: float = math.nan
    client: float = math.nan
    errors: int = 0
    note: str = ""

    @property
    def per_cpu_second(self) -> float:
        """Images per CPU-second used: less sensitive than img/s to what else the machine runs."""
        return self.throughput / (self.cpu / 100) if self.cpu > 0 else math.nan

    @classmethod
    def of_load(cls, name: str, result: LoadResult, note: str = "") -> Row:
        return cls(
            name,
            result.throughput,
            result.p50_ms,
            result.p99_ms,
            cpu=result.cpu.server,
            others=result.cpu.others,
            client=result.cpu.bench,
            errors=result.errors,
            note=note,
        )

    @classmethod
    def of_raw(cls, name: str, result: RawResult, note: str = "") -> Row:
        return cls(
            name,
            result.throughput,
            result.p50_ms,
            result.p99_ms,
            cpu=result.cpu.bench,
            others=result.cpu.others,
            note=note,
        )


def _num(value: float, digits: int = 1) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def table(title: str, rows: Sequence[Row]) -> str:
    header = ("", "img/s", "p50 ms", "p99 ms", "CPU %", "img/CPU-s", "client %", "others %", "errors", "")
    lines = [
        (
            r.name,
            _num(r.throughput),
            _num(r.p50_ms),
            _num(r.p99_ms),
            _num(r.cpu, 0),
            _num(r.per_cpu_second),
            _num(r.client, 0),
            _num(r.others, 0),
            str(r.errors),
            r.note,
        )
        for r in rows
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *lines, strict=True)]
    out = [f"== {title}"]
    for line in (header, *lines):
        cells = [line[0].ljust(widths[0])] + [
            c.rjust(w) for c, w in zip(line[1:-1], widths[1:-1], strict=True)
        ]
        out.append("  ".join([*cells, line[-1]]).rstrip())
    return "\n".join(out)


def ratio_line(label: str, value: float, goal: float, higher_is_better: bool = True) -> str:
    met = value >= goal if higher_is_better else value <= goal
    sign = "≥" if higher_is_better else "≤"
    return f"{label}: {value:.3f}  (goal {sign} {goal:g}: {'met' if met else 'MISSED'})"
