"""Overload: does the server keep its goodput when offered more than it can serve?

``inferpack serve`` runs pinned to ``--server-cpus`` and this load generator to
``--client-cpus``, so they do not compete for a core. First the capacity: a closed loop at
``--concurrency`` (throughput and p99 at saturation). Then open-loop load, requests sent at a
fixed rate whatever the answers, at each of ``--factors`` x that capacity. Capacity and the
overloaded runs alternate for ``--rounds`` (the machine is shared), figures pooled.

For each: goodput (answers 200 per second) against capacity, p99 of the requests answered
against p99 at capacity, every non-200 answer by EasyDL error code, and the server's RSS.
Goal (issue 10): goodput >= 90 % of capacity at 2x and 4x, accepted p99 <= 2x the p99 at
capacity, no errors but 336100, RSS flat.

    .venv/bin/python -m bench.overload [--models demo] [--rounds 2] [--factors 2,4]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import itertools
import os
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import aiohttp
import numpy as np
import orjson

from bench import servers
from bench.images import describe, request_bodies
from bench.loadgen import LoadResult, run_load
from bench.models import BenchModel, pick
from bench.procstats import CpuMeter, CpuShare, ProcessTree
from bench.rounds import pooled

MIB = 1024 * 1024
GOODPUT_GOAL = 0.90
P99_GOAL = 2.0


@dataclass
class OpenResult:
    """What an open-loop run at ``offered`` requests per second saw in its recorded window."""

    offered: float
    sent: int = 0
    latencies_s: list[float] = field(default_factory=list)  # of the requests answered 200
    codes: collections.Counter[str] = field(default_factory=collections.Counter)  # non-200 answers
    elapsed_s: float = 0.0
    rss_mib: tuple[float, float] = (0.0, 0.0)  # the server's, when the run started and ended
    cpu: CpuShare = field(default_factory=lambda: CpuShare(0.0, 0.0, 0.0))  # in the recorded window

    @property
    def goodput(self) -> float:
        return len(self.latencies_s) / self.elapsed_s if self.elapsed_s else 0.0

    def p99_ms(self) -> float:
        return float(np.percentile(self.latencies_s, 99) * 1000) if self.latencies_s else float("nan")


def _code(status: int, payload: bytes) -> str:
    try:
        body = orjson.loads(payload)
    except orjson.JSONDecodeError:
        return f"HTTP {status} (not JSON)"
    return f"HTTP {status} {body.get('error_code', '?')}" if isinstance(body, dict) else f"HTTP {status}"


async def _one(
    session: aiohttp.ClientSession, url: str, body: bytes, result: OpenResult, window: tuple[float, float]
) -> None:
    started = time.perf_counter()
    try:
        async with session.post(url, data=body, headers={"Content-Type": "application/json"}) as response:
            payload = await response.read()
            status = response.status
    except (TimeoutError, aiohttp.ClientError) as exc:
        status, payload = 0, type(exc).__name__.encode()
    finished = time.perf_counter()
    if not window[0] <= started < window[1]:
        return
    if status == 200:
        result.latencies_s.append(finished - started)
    else:
        result.codes[_code(status, payload) if status else payload.decode()] += 1


async def run_open(
    url: str, bodies: list[bytes], rate: float, duration_s: float, warmup_s: float, server_pid: int
) -> OpenResult:
    """Sends ``rate`` requests per second, evenly spaced, for ``warmup_s + duration_s``; records
    the requests sent within the recorded window (answered after it or not)."""
    result = OpenResult(offered=rate)
    tree = ProcessTree(server_pid)
    rss_before = tree.rss_bytes()
    meter = CpuMeter(tree)
    cycle = itertools.cycle(bodies)
    connector = aiohttp.TCPConnector(limit=0)  # an open loop: no cap on requests in flight
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=60)) as session:
        start = time.perf_counter()
        window = (start + warmup_s, start + warmup_s + duration_s)
        tasks: set[asyncio.Task[None]] = set()
        for index in itertools.count():
            due = start + index / rate
            if due >= window[1]:
                break
            await asyncio.sleep(max(0.0, due - time.perf_counter()))
            if window[0] <= due:
                if not result.sent:
                    meter.start()
                result.sent += 1
            task = asyncio.create_task(_one(session, url, next(cycle), result, window))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        result.cpu = meter.stop()
        await asyncio.gather(*tasks)
    result.elapsed_s = duration_s
    result.rss_mib = (rss_before / MIB, tree.rss_bytes() / MIB)
    return result


def measure(model: BenchModel, bodies: list[bytes], args: argparse.Namespace) -> None:
    settings = dict(item.split("=", 1) for item in args.settings.split(",") if item)
    capacity_runs: list[LoadResult] = []
    overloads: dict[float, list[OpenResult]] = {factor: [] for factor in args.factors}
    with servers.inferpack(model, settings, cpus=args.server_cpus) as server:
        for index in range(args.rounds):
            capacity = asyncio.run(
                run_load(
                    server.url,
                    bodies,
                    concurrency=args.concurrency,
                    duration_s=args.duration,
                    warmup_s=args.warmup,
                    server_pid=server.pid,
                )
            )
            capacity_runs.append(capacity)
            for factor in args.factors:
                rate = factor * capacity.throughput
                run = run_open(server.url, bodies, rate, args.duration, args.warmup, server.pid)
                overloads[factor].append(asyncio.run(run))
            print(f"round {index + 1}: capacity {capacity.throughput:.1f} img/s", flush=True)
    report(model, pooled(capacity_runs), overloads)


def _per_cpu_second(rate: float, cpu_percent: float) -> float:
    return rate / (cpu_percent / 100) if cpu_percent > 0 else float("nan")


def report(model: BenchModel, capacity: LoadResult, overloads: dict[float, list[OpenResult]]) -> None:
    """Goodput against capacity both as img/s and as img per server CPU-second: on a shared
    machine the server does not get the same share of its core in every run, the second
    figure is the one that share does not move."""
    capacity_cpu_s = _per_cpu_second(capacity.throughput, capacity.cpu.server)
    print(
        f"\n{model.name}: capacity {capacity.throughput:.1f} img/s, p99 {capacity.p99_ms:.0f} ms, "
        f"server CPU {capacity.cpu.server:.0f} %, {capacity_cpu_s:.1f} img/CPU-s, "
        f"others {capacity.cpu.others:.0f} %, {capacity.errors} refused"
    )
    print(
        f"{'offered':>13} {'goodput':>8} {'of cap.':>8} {'CPU %':>6} {'img/CPU-s':>10} {'of cap.':>8} "
        f"{'p99 ms':>7} {'p99/cap':>8} {'RSS MiB':>12}  answers other than 200"
    )
    for factor, runs in overloads.items():
        latencies = [latency for run in runs for latency in run.latencies_s]
        goodput = len(latencies) / sum(run.elapsed_s for run in runs)
        p99 = float(np.percentile(latencies, 99) * 1000) if latencies else float("nan")
        codes: collections.Counter[str] = sum((run.codes for run in runs), collections.Counter())
        cpu = float(np.mean([run.cpu.server for run in runs]))
        per_cpu_s = _per_cpu_second(goodput, cpu)
        offered = float(np.mean([run.offered for run in runs]))
        share, share_cpu_s = goodput / capacity.throughput, per_cpu_s / capacity_cpu_s
        print(
            f"{factor:>4g}x {offered:>6.1f}/s {goodput:>8.1f} {share:>8.0%} {cpu:>6.0f} "
            f"{per_cpu_s:>10.1f} {share_cpu_s:>8.0%} {p99:>7.0f} {p99 / capacity.p99_ms:>8.2f} "
            f"{runs[0].rss_mib[0]:>5.0f} -> {runs[-1].rss_mib[1]:<4.0f}  {dict(codes)}"
        )
        only_336100 = set(codes) <= {"HTTP 503 336100"}
        p99_met = p99 <= P99_GOAL * capacity.p99_ms
        for label, fraction in (("img/s", share), ("img/CPU-s", share_cpu_s)):
            met = fraction >= GOODPUT_GOAL and p99_met and only_336100
            verdict = "met" if met else "NOT met"
            print(f"      goal by {label} (goodput >= 90 %, p99 <= 2x, only 336100): {verdict}")


def _floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",")]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="demo", help="resnet50 and/or demo (default: demo classifier)")
    parser.add_argument("--factors", type=_floats, default=[2.0, 4.0], help="offered load / capacity")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds recorded per run")
    parser.add_argument("--warmup", type=float, default=3.0, help="seconds of load before recording")
    parser.add_argument("--concurrency", type=int, default=16, help="closed loop measuring capacity")
    parser.add_argument("--server-cpus", default="1", help="taskset CPU list for the server")
    parser.add_argument("--client-cpus", default="0", help="CPU list for this load generator")
    parser.add_argument("--settings", default="", help="inferpack settings K=V,K=V for the server")
    args = parser.parse_args(argv)
    os.sched_setaffinity(0, {int(cpu) for cpu in args.client_cpus.split(",")})
    bodies = request_bodies()
    print(f"images: {describe(bodies)}; server on CPU {args.server_cpus}, client on {args.client_cpus}")
    for model in pick(args.models, tasks=("classification",)):
        measure(model, bodies, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
