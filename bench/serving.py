"""inferpack end-to-end against raw ONNX Runtime, in one run on this machine.

For each model: (a) raw ONNX Runtime in-process on pre-decoded tensors, every batch size
in ``--batch-sizes``, keeping the best; (b) ``inferpack serve`` as a subprocess, driven over
HTTP with base64 JPEG bodies (~640x480) at ``--concurrency``. The machine is shared, so
(a) at its best batch size and (b) then alternate for ``--rounds``, the server idle while
(a) runs: each round's ratio is (b) over the mean of the (a) runs either side of it, and
the figure reported is the median ratio. "others %" shows what the rest of the machine used.

    .venv/bin/python -m bench.serving [--models resnet50,demo] [--rounds 3] [--set KEY=VALUE]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
from collections.abc import Sequence

from bench import servers
from bench.images import describe, request_bodies
from bench.loadgen import LoadResult, run_load
from bench.models import BenchModel, demo_bundles, resnet50_bundle
from bench.raw_ort import RawEngine, RawResult, best
from bench.report import Row, ratio_line, table

GOAL = 0.90  # inferpack / raw ORT, ResNet-50-sized, issue 2


def parse_settings(items: Sequence[str]) -> dict[str, str]:
    settings = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise SystemExit(f"--set wants KEY=VALUE, got {item!r}")
        settings[key.strip().lower().replace("-", "_")] = value.strip()
    return settings


def pick_models(names: str) -> list[BenchModel]:
    models: list[BenchModel] = []
    for name in names.split(","):
        if name == "resnet50":
            models.append(resnet50_bundle())
        elif name == "demo":
            found = demo_bundles()
            if not found:
                print("(no demo model in package/inferpack/demo/models: skipped)")
            models.extend(found)
        else:
            raise SystemExit(f"unknown model {name!r}: use resnet50 and/or demo")
    return models


def bench_model(model: BenchModel, bodies: list[bytes], args: argparse.Namespace) -> float:
    """Prints one model's figures; returns (b)/(a), the median over the rounds."""
    engine = RawEngine(model)
    sweep = engine.sweep(args.batch_sizes, args.raw_duration)
    top = best(sweep)
    settings = parse_settings(args.set)
    raws: list[RawResult] = []
    loads: list[LoadResult] = []
    try:
        with servers.inferpack(model, settings) as server:
            for index in range(args.rounds):
                raws.append(engine.measure(top.batch_size, args.raw_duration))
                load = run_load(
                    server.url,
                    bodies,
                    concurrency=args.concurrency,
                    duration_s=args.duration,
                    warmup_s=args.warmup if index == 0 else 2.0,
                    server_pid=server.pid,
                )
                loads.append(asyncio.run(load))
            raws.append(engine.measure(top.batch_size, args.raw_duration))
    finally:
        engine.close()
    shown = ", ".join(f"{k}={v}" for k, v in settings.items()) or "defaults"
    rows = [Row.of_raw(f"raw ORT batch {r.batch_size}", r, "(best)" if r is top else "") for r in sweep]
    ratios = []
    for index, load in enumerate(loads):
        raw = (raws[index].throughput + raws[index + 1].throughput) / 2
        ratios.append(load.throughput / raw)
        rows.append(Row.of_raw(f"round {index + 1}: raw ORT batch {top.batch_size}", raws[index]))
        note = f"(c={args.concurrency}, {shown}) ratio {ratios[-1]:.3f}"
        rows.append(Row.of_load(f"round {index + 1}: inferpack", load, note))
    rows.append(Row.of_raw(f"final: raw ORT batch {top.batch_size}", raws[-1]))
    print(table(f"{model.name}: raw ORT in-process vs inferpack end-to-end", rows))
    for sample in (s for load in loads for s in load.error_samples):
        print(f"   error: {sample}")
    ratio = statistics.median(ratios)
    print(ratio_line(f"{model.name}: inferpack / raw ORT (median of {len(ratios)} rounds)", ratio, GOAL))
    print(flush=True)
    return ratio


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
    parser.add_argument("--set", action="append", default=[], help="inferpack setting KEY=VALUE (repeatable)")
    args = parser.parse_args(argv)
    bodies = request_bodies()
    print(f"images: {describe(bodies)}\n", flush=True)
    for model in pick_models(args.models):
        bench_model(model, bodies, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
