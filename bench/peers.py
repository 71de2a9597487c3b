"""inferpack against other Python serving stacks: same ONNX model, same images, same load.

Each peer runs from its own virtual environment (default /work/peersenv, made with
``python3.11 -m venv /work/peersenv && /work/peersenv/bin/pip install litserve mosec
onnxruntime opencv-python-headless``), with batching on (max batch 8, 10 ms wait) and its
app in bench/peer_apps/. The servers run one at a time, in a rotated order each round
(the machine is shared); figures are pooled over the rounds.

    .venv/bin/python -m bench.peers [--rounds 2] [--duration 20] [--peers-venv /work/peersenv]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from bench import servers
from bench.images import describe, request_bodies
from bench.loadgen import LoadResult, run_load
from bench.models import BenchModel, resnet50_bundle
from bench.procstats import CpuShare
from bench.report import Row, ratio_line, table

GOAL = 1.3  # inferpack throughput / best peer's, at equal or better p99 (issue 6)

Launcher = Callable[[BenchModel], contextlib.AbstractContextManager[servers.Running]]


def launchers(python: Path) -> dict[str, Launcher]:
    return {
        "inferpack": lambda model: servers.inferpack(model),
        "mosec": lambda model: servers.mosec(model, python),
        "litserve": lambda model: servers.litserve(model, python),
    }


def pooled(results: Sequence[LoadResult]) -> LoadResult:
    """One result from several rounds: every latency, throughput over the total time."""

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


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--peers-venv", type=Path, default=Path("/work/peersenv"))
    parser.add_argument("--peers", default="mosec,litserve", help="comma-separated (default: mosec,litserve)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of recorded load per server")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    python = args.peers_venv / "bin" / "python"
    if not python.exists():
        raise SystemExit(f"{python} is missing: make the peers' venv first (see --help)")
    available = launchers(python)
    names = ["inferpack", *args.peers.split(",")]
    unknown = [n for n in names if n not in available]
    if unknown:
        raise SystemExit(f"unknown peers {unknown}; known: {', '.join(available)}")
    model = resnet50_bundle()
    bodies = request_bodies()
    print(f"model: {model.name}; images: {describe(bodies)}; concurrency {args.concurrency}\n", flush=True)
    results: dict[str, list[LoadResult]] = {name: [] for name in names}
    for index in range(args.rounds):
        order = names[index % len(names) :] + names[: index % len(names)]
        for name in order:
            with available[name](model) as server:
                load = run_load(
                    server.url,
                    bodies,
                    concurrency=args.concurrency,
                    duration_s=args.duration,
                    warmup_s=args.warmup,
                    server_pid=server.pid,
                )
                results[name].append(asyncio.run(load))
            print(f"round {index + 1}: {name} {results[name][-1].throughput:.1f} img/s", flush=True)
    total = {name: pooled(rounds) for name, rounds in results.items()}
    mine = total["inferpack"]
    rows = [Row.of_load("inferpack", mine)]
    for name in names[1:]:
        rows.append(
            Row.of_load(
                name, total[name], f"inferpack / {name}: {mine.throughput / total[name].throughput:.2f}x"
            )
        )
    print()
    print(table(f"{model.name}: inferpack vs peers, {args.rounds} rounds pooled", rows))
    for name, result in total.items():
        for sample in result.error_samples:
            print(f"   {name} error: {sample}")
    best_peer = max(names[1:], key=lambda n: total[n].throughput)
    ratio = mine.throughput / total[best_peer].throughput
    print(ratio_line(f"inferpack / best peer ({best_peer}) throughput", ratio, GOAL))
    p99_ok = mine.p99_ms <= total[best_peer].p99_ms
    print(
        f"p99: inferpack {mine.p99_ms:.0f} ms vs {best_peer} {total[best_peer].p99_ms:.0f} ms "
        f"({'equal or better' if p99_ok else 'WORSE'})"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
