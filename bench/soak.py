"""Steady memory under load: inferpack's RSS over a long saturating run, and its slope.

The server (ResNet-50-sized model by default) is driven at ``--concurrency`` for
``--minutes`` while its RSS is sampled every ``--every`` seconds. The slope comes from a
least-squares line through the samples after the first ``--settle`` minutes (allocator
pools, ORT arenas and caches fill at the start); a leak shows as a positive slope that
does not fade.

    .venv/bin/python -m bench.soak [--minutes 10] [--model-dir BUNDLE]
"""

from __future__ import annotations

import argparse
import asyncio
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from bench import servers
from bench.images import describe, request_bodies
from bench.loadgen import run_load
from bench.models import BenchModel, bundle_at, resnet50_bundle
from bench.procstats import ProcessTree
from bench.report import Row, table

MIB = 1024 * 1024


async def sample_rss(pid: int, every_s: float, until: float) -> list[tuple[float, float]]:
    """(seconds since start, RSS MiB) of the process tree until ``until`` (perf_counter)."""
    tree = ProcessTree(pid)
    started = time.perf_counter()
    samples = []
    while (now := time.perf_counter()) < until:
        samples.append((now - started, tree.rss_bytes() / MIB))
        await asyncio.sleep(every_s)
    return samples


def slope_mib_per_min(samples: Sequence[tuple[float, float]], settle_s: float) -> float:
    kept = [(t, rss) for t, rss in samples if t >= settle_s]
    if len(kept) < 3:
        return float("nan")
    seconds, rss = np.asarray(kept).T
    return float(np.polyfit(seconds / 60, rss, 1)[0])


async def soak(model: BenchModel, args: argparse.Namespace) -> None:
    bodies = request_bodies()
    duration = args.minutes * 60
    with servers.inferpack(model) as server:
        print(
            f"{model.name}: {describe(bodies)}, concurrency {args.concurrency}, {args.minutes:g} min",
            flush=True,
        )
        warmup = 5.0
        load = run_load(
            server.url,
            bodies,
            concurrency=args.concurrency,
            duration_s=duration,
            warmup_s=warmup,
            server_pid=server.pid,
        )
        rss = sample_rss(server.pid, args.every, time.perf_counter() + warmup + duration)
        result, samples = await asyncio.gather(load, rss)
    print(table("load over the whole run", [Row.of_load("inferpack", result)]))
    for sample in result.error_samples:
        print(f"   error: {sample}")
    values = [mib for _, mib in samples]
    marks = [samples[int(i * (len(samples) - 1) / 10)] for i in range(11)]
    print("RSS MiB by time: " + ", ".join(f"{t / 60:.1f} min {mib:.0f}" for t, mib in marks))
    first, last, top = values[0], values[-1], max(values)
    print(f"RSS MiB: first {first:.0f}, last {last:.0f}, max {top:.0f} ({len(values)} samples)")
    settle = args.settle * 60
    print(f"RSS slope after the first {args.settle:g} min: {slope_mib_per_min(samples, settle):+.3f} MiB/min")
    print(f"RSS slope over the second half: {slope_mib_per_min(samples, duration / 2):+.3f} MiB/min")
    print(f"RSS slope over the whole run: {slope_mib_per_min(samples, 0):+.3f} MiB/min")


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--minutes", type=float, default=10.0)
    parser.add_argument("--settle", type=float, default=1.0, help="minutes left out of the slope")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between RSS samples")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--model-dir", type=Path, help="bundle to serve (default: the ResNet-50-sized one)")
    args = parser.parse_args(argv)
    model = bundle_at(args.model_dir) if args.model_dir else resnet50_bundle()
    asyncio.run(soak(model, args))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
