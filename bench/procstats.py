"""CPU time and memory of a server's whole process tree (peers fork workers), via psutil."""

from __future__ import annotations

import time
from dataclasses import dataclass

import psutil  # type: ignore[import-untyped]


class ProcessTree:
    """A server process and its descendants, as they are when asked (workers may be forked late)."""

    def __init__(self, pid: int) -> None:
        self.root = psutil.Process(pid)
        self._known: dict[int, psutil.Process] = {pid: self.root}

    def processes(self) -> list[psutil.Process]:
        try:
            for child in self.root.children(recursive=True):
                self._known.setdefault(child.pid, child)
        except psutil.NoSuchProcess:
            pass
        return [p for p in self._known.values() if p.is_running()]

    def cpu_seconds(self) -> float:
        """User + system CPU seconds used so far by every process in the tree."""
        total = 0.0
        for process in self.processes():
            try:
                times = process.cpu_times()
            except psutil.NoSuchProcess:
                continue
            total += times.user + times.system
        return total

    def rss_bytes(self) -> int:
        total = 0
        for process in self.processes():
            try:
                total += process.memory_info().rss
            except psutil.NoSuchProcess:
                continue
        return total


def _machine_busy_seconds() -> float:
    times = psutil.cpu_times()
    return float(sum(times) - times.idle - getattr(times, "iowait", 0.0) - getattr(times, "guest", 0.0))


@dataclass(frozen=True)
class CpuShare:
    """CPU% over a window (100 % = one core busy): the server's process tree, this benchmark
    process (client or raw engine) and everything else on the machine (other users: noise)."""

    server: float
    bench: float
    others: float


class CpuMeter:
    """What the server, the benchmark itself and the rest of the machine used between start and stop."""

    def __init__(self, server: ProcessTree | None) -> None:
        self._server = server
        self._bench = psutil.Process()  # this process alone: its children are the servers
        self._start = (0.0, 0.0, 0.0, 0.0)

    def _sample(self) -> tuple[float, float, float, float]:
        server = self._server.cpu_seconds() if self._server else 0.0
        own = self._bench.cpu_times()
        return (time.perf_counter(), server, own.user + own.system, _machine_busy_seconds())

    def start(self) -> None:
        self._start = self._sample()

    def stop(self) -> CpuShare:
        wall, server, bench, machine = (b - a for a, b in zip(self._start, self._sample(), strict=True))
        if wall <= 0:
            return CpuShare(0.0, 0.0, 0.0)
        others = max(0.0, machine - server - bench)
        return CpuShare(
            100 * server / wall if self._server else float("nan"), 100 * bench / wall, 100 * others / wall
        )
