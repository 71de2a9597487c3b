"""inferpack against other Python serving stacks: same ONNX model, same images, same load.

Each peer runs from its own virtual environment (default /work/peersenv, made with
``python3.11 -m venv /work/peersenv && /work/peersenv/bin/pip install litserve mosec
onnxruntime opencv-python-headless``), with batching on (max batch 8, 10 ms wait) and its
app in bench/peer_apps/. The servers run one at a time, in a rotated order each round
(the machine is shared); figures are pooled over the rounds. Models: the ResNet-50-sized
classifier and the embedded demo classifier when present (where per-request costs show).

    .venv/bin/python -m bench.peers [--rounds 2] [--duration 20] [--peers-venv /work/peersenv]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path

from bench import servers
from bench.images import describe, request_bodies
from bench.loadgen import LoadResult, run_load
from bench.models import BenchModel, pick
from bench.report import Row, ratio_line, table
from bench.rounds import pooled, rotated

GOAL = 1.3  # inferpack throughput / best peer's, at equal or better p99 (issue 6)

Launcher = Callable[[BenchModel], contextlib.AbstractContextManager[servers.Running]]


def launchers(python: Path) -> dict[str, Launcher]:
    return {
        "inferpack": lambda model: servers.inferpack(model),
        "mosec": lambda model: servers.mosec(model, python),
        "litserve": lambda model: servers.litserve(model, python),
    }


def compare(
    model: BenchModel, contenders: list[tuple[str, Launcher]], bodies: list[bytes], args: argparse.Namespace
) -> float:
    """Prints the figures for one model; returns inferpack's throughput over the best peer's."""
    names = [name for name, _ in contenders]
    results: dict[str, list[LoadResult]] = {name: [] for name in names}
    for index in range(args.rounds):
        for name, launcher in rotated(contenders, index):
            with launcher(model) as server:
                load = run_load(
                    server.url,
                    bodies,
                    concurrency=args.concurrency,
                    duration_s=args.duration,
                    warmup_s=args.warmup,
                    server_pid=server.pid,
                )
                results[name].append(asyncio.run(load))
            print(
                f"{model.name} round {index + 1}: {name} {results[name][-1].throughput:.1f} img/s", flush=True
            )
    total = {name: Row.of_load(name, pooled(rounds)) for name, rounds in results.items()}
    mine = total["inferpack"]
    rows = [mine]
    for name in names[1:]:
        ratio = mine.throughput / total[name].throughput
        rows.append(replace(total[name], note=f"inferpack / {name}: {ratio:.2f}x"))
    print(table(f"{model.name}: inferpack vs peers, {args.rounds} rounds pooled", rows))
    for name, rounds in results.items():
        for sample in (s for r in rounds for s in r.error_samples):
            print(f"   {name} error: {sample}")
    best_peer = max(names[1:], key=lambda n: total[n].throughput)
    ratio = mine.throughput / total[best_peer].throughput
    print(ratio_line(f"{model.name}: inferpack / best peer ({best_peer}), img/s", ratio, GOAL))
    per_cpu = mine.per_cpu_second / total[best_peer].per_cpu_second
    print(f"{model.name}: inferpack / {best_peer}, img per CPU-second: {per_cpu:.3f}")
    p99_ok = mine.p99_ms <= total[best_peer].p99_ms
    print(
        f"{model.name}: p99 inferpack {mine.p99_ms:.0f} ms vs {best_peer} {total[best_peer].p99_ms:.0f} ms "
        f"({'equal or better' if p99_ok else 'WORSE'})\n",
        flush=True,
    )
    return ratio


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--peers-venv", type=Path, default=Path("/work/peersenv"))
    parser.add_argument("--peers", default="mosec,litserve", help="comma-separated (default: mosec,litserve)")
    parser.add_argument("--models", default="resnet50,demo", help="resnet50 and/or demo (its classifier)")
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
    bodies = request_bodies()
    print(f"images: {describe(bodies)}; concurrency {args.concurrency}\n", flush=True)
    for model in pick(args.models, tasks=("classification",)):
        compare(model, [(name, available[name]) for name in names], bodies, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
