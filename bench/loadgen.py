"""The one load generator every benchmark uses: an aiohttp client at fixed concurrency.

``concurrency`` workers each send a request, wait for the answer, and send the next, for
``warmup_s`` (not recorded) and then ``duration_s`` (recorded). A request counts in the
window it completes in; anything but HTTP 200 with a body that passes ``accept`` is an error.
The server's CPU% over the recorded window comes from its process tree.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import aiohttp
import numpy as np

from bench.procstats import CpuMeter, CpuShare, ProcessTree

Accept = Callable[[bytes], bool]


def accept_results(body: bytes) -> bool:
    """The EasyDL classification answer shape that every server under test returns."""
    return b'"results"' in body


@dataclass
class LoadResult:
    completed: int
    errors: int
    elapsed_s: float
    latencies_s: np.ndarray = field(repr=False)
    cpu: CpuShare
    error_samples: list[str] = field(default_factory=list)

    @property
    def throughput(self) -> float:
        return self.completed / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def percentile_ms(self, q: float) -> float:
        if not len(self.latencies_s):
            return float("nan")
        return float(np.percentile(self.latencies_s, q) * 1000)

    @property
    def cpu_percent(self) -> float:
        return self.cpu.server

    @property
    def p50_ms(self) -> float:
        return self.percentile_ms(50)

    @property
    def p99_ms(self) -> float:
        return self.percentile_ms(99)


@dataclass
class _Window:
    start: float = float("inf")
    end: float = float("inf")
    latencies: list[float] = field(default_factory=list)
    errors: int = 0
    error_samples: list[str] = field(default_factory=list)

    def record(self, started: float, finished: float, error: str | None) -> None:
        if not self.start <= finished < self.end:
            return
        if error is None:
            self.latencies.append(finished - started)
            return
        self.errors += 1
        if len(self.error_samples) < 5:
            self.error_samples.append(error)


async def _worker(
    session: aiohttp.ClientSession,
    url: str,
    bodies: itertools.cycle[bytes],
    headers: dict[str, str],
    accept: Accept,
    window: _Window,
) -> None:
    while time.perf_counter() < window.end:
        body = next(bodies)
        started = time.perf_counter()
        error: str | None = None
        try:
            async with session.post(url, data=body, headers=headers) as response:
                payload = await response.read()
                if response.status != 200 or not accept(payload):
                    error = f"HTTP {response.status}: {payload[:200]!r}"
        except (TimeoutError, aiohttp.ClientError) as exc:
            error = f"{type(exc).__name__}: {exc}"
            await asyncio.sleep(0.01)  # a refused connection must not spin
        window.record(started, time.perf_counter(), error)


async def run_load(
    url: str,
    bodies: list[bytes],
    *,
    concurrency: int,
    duration_s: float,
    warmup_s: float = 5.0,
    server_pid: int | None = None,
    content_type: str = "application/json",
    accept: Accept = accept_results,
    extra_headers: Mapping[str, str] | None = None,
) -> LoadResult:
    """Drives ``url`` with ``bodies`` in turn; returns what the recorded window saw."""
    window = _Window()
    cycle = itertools.cycle(bodies)
    headers = {"Content-Type": content_type, **(extra_headers or {})}
    meter = CpuMeter(ProcessTree(server_pid) if server_pid else None)
    connector = aiohttp.TCPConnector(limit=concurrency)
    timeout = aiohttp.ClientTimeout(total=120)
    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        now = time.perf_counter()
        window.start, window.end = now + warmup_s, now + warmup_s + duration_s
        workers = [
            asyncio.create_task(_worker(session, url, cycle, headers, accept, window))
            for _ in range(concurrency)
        ]
        await asyncio.sleep(max(0.0, window.start - time.perf_counter()))
        meter.start()
        await asyncio.sleep(max(0.0, window.end - time.perf_counter()))
        cpu = meter.stop()
        await asyncio.gather(*workers)
    return LoadResult(
        completed=len(window.latencies),
        errors=window.errors,
        elapsed_s=duration_s,
        latencies_s=np.asarray(window.latencies),
        cpu=cpu,
        error_samples=window.error_samples,
    )
