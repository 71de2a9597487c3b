"""INT8 side by side, in one run: raw ONNX Runtime FP32 vs raw ORT INT8 (in-process, pre-decoded
tensors) vs inferpack serving INT8 (and FP32, ``precision=fp32``) end to end over HTTP vs the
peers serving the FP32 model as their docs show (bench.peers' apps, from ``--peers-venv``), on
the ResNet-50-sized model (random weights: speed only); then the accuracy cost on the demo
models' held-out sets (real trained weights), as ``inferpack pack --precision int8 --eval``
measures it.

Raw ORT: every batch size in ``--batch-sizes`` with both thread layouts of bench.raw_ort, the
best kept per precision; then ``--rounds`` rounds, each measuring the two raw engines at their
best and every server in a rotated order (one server up at a time); servers' figures pooled.

    .venv/bin/python -m bench.int8 [--rounds 2] [--duration 15] [--peers-venv /work/peersenv]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from bench import servers
from bench.images import describe, request_bodies
from bench.int8_models import demo_accuracy, resnet50_int8_bundle
from bench.loadgen import LoadResult, run_load
from bench.models import BenchModel, demo_bundles, resnet50_bundle
from bench.raw_ort import RawEngine, RawResult, best, layouts
from bench.report import Row, ratio_line, table
from bench.rounds import pooled, rotated

GOAL_PEER = 2.5  # inferpack INT8 / best peer (FP32), img/s at equal or better p99 (issue 15)
GOAL_RAW = 0.9  # inferpack INT8 / raw ORT INT8
Launcher = Callable[[], contextlib.AbstractContextManager[servers.Running]]


def raw_best(model: BenchModel, graph: str, args: argparse.Namespace) -> tuple[RawResult, tuple[int, int]]:
    found: list[tuple[RawResult, tuple[int, int]]] = []
    for threads, streams in layouts():
        engine = RawEngine(model, threads, streams, graph)
        found += [(r, (threads, streams)) for r in engine.sweep(args.batch_sizes, args.raw_duration)]
        engine.close()
    top = best([r for r, _ in found])
    return top, next(layout for r, layout in found if r is top)


def contenders(fp32: BenchModel, int8: BenchModel, args: argparse.Namespace) -> list[tuple[str, Launcher]]:
    chosen: list[tuple[str, Launcher]] = [
        ("inferpack INT8", lambda: servers.inferpack(int8)),  # precision auto: INT8 on the CPU
        ("inferpack FP32", lambda: servers.inferpack(int8, {"precision": "fp32"})),
    ]
    python = args.peers_venv / "bin" / "python"
    if not python.exists():
        print(f"no peers: {python} is missing (see bench/README.md, peers.py)\n")
        return chosen
    for peer in (p for p in args.peers.split(",") if p):
        start = {"mosec": servers.mosec, "litserve": servers.litserve}[peer]
        chosen.append((f"{peer} FP32", lambda start=start: start(fp32, python)))
    return chosen


def speed(args: argparse.Namespace) -> None:
    fp32, int8 = resnet50_bundle(), resnet50_int8_bundle()
    bodies = request_bodies()
    print(f"images: {describe(bodies)}; model {fp32.name}\n", flush=True)
    raw: dict[str, tuple[RawResult, tuple[int, int]]] = {
        "FP32": raw_best(fp32, "model.onnx", args),
        "INT8": raw_best(int8, "model.int8.onnx", args),
    }
    engines = {
        p: RawEngine(int8, *layout, graph=f"model{'.int8' * (p == 'INT8')}.onnx")
        for p, (_, layout) in raw.items()
    }
    rows = [
        Row.of_raw(f"sweep best: raw ORT {p}, {r.layout}, batch {r.batch_size}", r)
        for p, (r, _) in raw.items()
    ]
    servers_under_test = contenders(fp32, int8, args)
    loads: dict[str, list[LoadResult]] = {name: [] for name, _ in servers_under_test}
    raws: dict[str, list[RawResult]] = {p: [] for p in raw}
    for index in range(args.rounds):
        for precision, engine in engines.items():
            raws[precision].append(engine.measure(raw[precision][0].batch_size, args.raw_duration))
        for name, launch in rotated(servers_under_test, index):
            with launch() as server:
                load = run_load(server.url, bodies, concurrency=args.concurrency, duration_s=args.duration,
                                warmup_s=args.warmup, server_pid=server.pid)  # fmt: skip
                loads[name].append(asyncio.run(load))
            print(f"round {index + 1}: {name} {loads[name][-1].throughput:.1f} img/s", flush=True)
    for engine in engines.values():
        engine.close()
    for precision, results in raws.items():
        rows += [Row.of_raw(f"round {i + 1}: raw ORT {precision}", r) for i, r in enumerate(results)]
    total = {name: Row.of_load(name, pooled(results)) for name, results in loads.items()}
    rows += total.values()
    print(table(f"{fp32.name}: INT8 vs FP32, concurrency {args.concurrency}, {args.rounds} rounds", rows))
    for name, results in loads.items():
        for sample in (s for r in results for s in r.error_samples):
            print(f"   {name} error: {sample}")
    mine = total["inferpack INT8"]
    raw_int8 = sum(r.throughput for r in raws["INT8"]) / len(raws["INT8"])
    raw_fp32 = sum(r.throughput for r in raws["FP32"]) / len(raws["FP32"])
    print(f"raw ORT INT8 / raw ORT FP32, img/s: {raw_int8 / raw_fp32:.2f}x")
    print(ratio_line("inferpack INT8 / raw ORT INT8, img/s", mine.throughput / raw_int8, GOAL_RAW))
    print(
        f"inferpack INT8 / inferpack FP32, img/s: {mine.throughput / total['inferpack FP32'].throughput:.2f}x"
    )
    peers = [name for name in total if not name.startswith("inferpack")]
    if peers:
        top = max(peers, key=lambda n: total[n].throughput)
        print(
            ratio_line(
                f"inferpack INT8 / best peer ({top}), img/s",
                mine.throughput / total[top].throughput,
                GOAL_PEER,
            )
        )
        better = "equal or better" if mine.p99_ms <= total[top].p99_ms else "WORSE"
        print(f"p99 inferpack INT8 {mine.p99_ms:.0f} ms vs {top} {total[top].p99_ms:.0f} ms ({better})")
    print(flush=True)


def accuracy() -> None:
    for model in demo_bundles():
        with tempfile.TemporaryDirectory(prefix="int8-accuracy-") as tmp:
            print(f"{model.name}:", flush=True)
            variants = demo_accuracy(model, Path(tmp))
            fp32, int8 = variants["fp32"].accuracy, variants["int8"].accuracy
            if fp32 and int8:
                print(
                    f"  INT8 - FP32: {100 * (int8.overall - fp32.overall):+.2f} points overall\n", flush=True
                )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--peers-venv", type=Path, default=Path("/work/peersenv"))
    parser.add_argument("--peers", default="mosec,litserve")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of recorded load per server")
    parser.add_argument("--warmup", type=float, default=5.0)
    parser.add_argument("--raw-duration", type=float, default=5.0, help="seconds per raw ORT figure")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--batch-sizes", type=lambda s: [int(x) for x in s.split(",")], default=[1, 4, 8])
    parser.add_argument("--skip", choices=("speed", "accuracy"), help="run only the other part")
    args = parser.parse_args(argv)
    if args.skip != "speed":
        speed(args)
    if args.skip != "accuracy":
        accuracy()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
