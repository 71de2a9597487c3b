"""inferpack end-to-end against raw ONNX Runtime, in one run on this machine.

For each model: (a) raw ONNX Runtime in-process on pre-decoded tensors, every batch size
in ``--batch-sizes`` with one batch on all cores and with one batch per core at once,
keeping the best; (b) ``inferpack serve`` as a subprocess, driven over
HTTP with base64 JPEG bodies (~640x480) at ``--concurrency``. The machine is shared, so
(a) at its best batch size and (b) then alternate for ``--rounds``, the server idle while
(a) runs: each round's ratio is (b) over the mean of the (a) runs either side of it, and
the figure reported is the median ratio. "others %" shows what the rest of the machine used
(noise); "img/CPU-s", images per CPU-second the server or raw ORT used, is the figure least
disturbed by it.

    .venv/bin/python -m bench.serving [--models resnet50,demo] [--rounds 3] [--variant K=V,K=V ...]
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import statistics
from collections.abc import Sequence
from dataclasses import replace

from bench import servers
from bench.images import describe, request_bodies
from bench.loadgen import LoadResult, run_load
from bench.models import BenchModel, pick
from bench.raw_ort import RawEngine, RawResult, best, layouts
from bench.report import Row, ratio_line, table
from bench.rounds import rotated

GOAL = 0.90  # inferpack / raw ORT, ResNet-50-sized, issue 2


def parse_variant(text: str) -> dict[str, str]:
    """``"decode_workers=1,intra_op_threads=2"`` -> inferpack settings ("" or "defaults": none)."""
    settings = {}
    for item in text.split(","):
        if item.strip() in ("", "defaults"):
            continue
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--variant wants KEY=VALUE[,KEY=VALUE...], got {text!r}")
        settings[key.strip().lower().replace("-", "_")] = value.strip()
    return settings


def _label(settings: dict[str, str]) -> str:
    return ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"


def raw_sweep(model: BenchModel, args: argparse.Namespace) -> tuple[list[RawResult], RawResult, RawEngine]:
    """Every batch size and thread layout; returns them, the best, and an engine set up like it."""
    sweep: list[RawResult] = []
    layout_of: dict[str, tuple[int, int]] = {}
    for threads, streams in layouts():
        engine = RawEngine(model, threads, streams)
        layout_of[engine.layout] = (threads, streams)
        sweep += engine.sweep(args.batch_sizes, args.raw_duration)
        engine.close()
    top = best(sweep)
    return sweep, top, RawEngine(model, *layout_of[top.layout])


def interleave(
    model: BenchModel,
    bodies: list[bytes],
    variants: list[dict[str, str]],
    engine: RawEngine,
    batch_size: int,
    args: argparse.Namespace,
) -> tuple[list[RawResult], list[list[LoadResult]]]:
    """Rounds of raw ORT then each variant under load; raw once more at the end.

    All variants listen at once (an idle server uses no CPU), so each round is side by side.
    """
    raws: list[RawResult] = []
    loads: list[list[LoadResult]] = [[] for _ in variants]
    with contextlib.ExitStack() as stack:
        running = [stack.enter_context(servers.inferpack(model, v)) for v in variants]
        for index in range(args.rounds):
            raws.append(engine.measure(batch_size, args.raw_duration))
            for which in rotated(range(len(variants)), index):
                load = run_load(
                    running[which].url,
                    bodies,
                    concurrency=args.concurrency,
                    duration_s=args.duration,
                    warmup_s=args.warmup if index == 0 else 2.0,
                    server_pid=running[which].pid,
                )
                loads[which].append(asyncio.run(load))
        raws.append(engine.measure(batch_size, args.raw_duration))
    return raws, loads


def bench_model(model: BenchModel, bodies: list[bytes], args: argparse.Namespace) -> list[float]:
    """Prints one model's figures; returns (b)/(a) per variant, each the median over the rounds."""
    variants = [parse_variant(v) for v in args.variant or ["defaults"]]
    sweep, top, engine = raw_sweep(model, args)
    try:
        raws, loads = interleave(model, bodies, variants, engine, top.batch_size, args)
    finally:
        engine.close()

    def tag(which: int) -> str:
        return f" #{which + 1}" if len(variants) > 1 else ""

    rows = [Row.of_raw(r.label, r, "(best)" if r is top else "") for r in sweep]
    ratios: list[list[float]] = [[] for _ in variants]
    efficiency: list[list[float]] = [[] for _ in variants]
    for index in range(args.rounds):
        before, after = (
            Row.of_raw(f"round {index + 1}: {top.label}", raws[index]),
            Row.of_raw("", raws[index + 1]),
        )
        rows.append(before)
        for which, settings in enumerate(variants):
            served = Row.of_load(f"round {index + 1}: inferpack{tag(which)}", loads[which][index])
            ratios[which].append(2 * served.throughput / (before.throughput + after.throughput))
            efficiency[which].append(
                2 * served.per_cpu_second / (before.per_cpu_second + after.per_cpu_second)
            )
            rows.append(replace(served, note=f"({_label(settings)}) ratio {ratios[which][-1]:.3f}"))
    rows.append(Row.of_raw(f"final: {top.label}", raws[-1]))
    print(
        table(
            f"{model.name}: raw ORT in-process vs inferpack end-to-end, concurrency {args.concurrency}", rows
        )
    )
    for sample in (s for runs in loads for load in runs for s in load.error_samples):
        print(f"   error: {sample}")
    medians = [statistics.median(r) for r in ratios]
    for which, settings in enumerate(variants):
        label = f"{model.name}: inferpack{tag(which)} ({_label(settings)}) / raw ORT"
        print(ratio_line(f"{label}, img/s, median of {args.rounds} rounds", medians[which], GOAL))
        print(f"{label}, img per CPU-second, median: {statistics.median(efficiency[which]):.3f}")
    print(flush=True)
    return medians


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="resnet50,demo", help="resnet50 and/or demo (default: both)")
    parser.add_argument("--rounds", type=int, default=3, help="raw/server rounds, interleaved (noise)")
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of recorded load per round")
    parser.add_argument("--warmup", type=float, default=5.0, help="seconds of load before recording")
    parser.add_argument("--raw-duration", type=float, default=6.0, help="seconds per raw ORT figure")
    parser.add_argument("--concurrency", type=int, default=16, help="requests in flight (saturating)")
    parser.add_argument(
        "--batch-sizes",
        type=lambda s: [int(x) for x in s.split(",")],
        default=[1, 2, 4, 8, 16],
        help="raw ORT batch sizes to try (default 1,2,4,8,16)",
    )
    parser.add_argument(
        "--variant",
        action="append",
        help="inferpack settings KEY=VALUE[,KEY=VALUE] (e.g. decode_workers=1,intra_op_threads=2); "
        "repeat to compare variants side by side (default: the defaults)",
    )
    args = parser.parse_args(argv)
    bodies = request_bodies()
    print(f"images: {describe(bodies)}\n", flush=True)
    for model in pick(args.models):
        bench_model(model, bodies, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
