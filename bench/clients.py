"""The open inference protocol route vs the EasyDL route, on one inferpack server and model.

Three ways to send the same 32 JPEGs (bench/images.py) to the same server, one after another
in a rotated order each round, figures pooled:
- ``easydl-base64``: POST /NAME/ImageClassification, ``{"image": base64}`` (what EasyDL clients send);
- ``v2-base64``: POST /v2/models/NAME/infer, a BYTES tensor holding the base64 text in JSON;
- ``v2-binary``: the same tensor as raw bytes after the JSON header (tritonclient's binary_data).
Both v2 forms ask for the post-processed ``labels`` and ``scores`` (binary in ``v2-binary``), so
every form gets the EasyDL answer's top-6 labels back: what differs is the protocol and encoding.

    .venv/bin/python -m bench.clients [--models demo|resnet50] [--rounds 2] [--duration 15]
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import orjson

from bench import servers
from bench.images import describe, request_bodies, synthetic_jpeg
from bench.loadgen import LoadResult, run_load
from bench.models import BenchModel, pick
from bench.report import Row, table
from bench.rounds import pooled, rotated

COUNT = 32
OUTPUTS = ("labels", "scores")


@dataclass(frozen=True)
class Form:
    name: str
    path: str  # under the server's origin
    bodies: list[bytes]
    content_type: str = "application/json"
    headers: dict[str, str] = field(default_factory=dict)

    @staticmethod
    def accept(body: bytes) -> bool:
        return b'"results"' in body or b'"outputs"' in body


def _v2_header(image: dict[str, object], binary: bool) -> bytes:
    return orjson.dumps(
        {
            "inputs": [{"name": "image", "datatype": "BYTES", "shape": [1], **image}],
            "parameters": {"top_num": 6},
            "outputs": [{"name": name, "parameters": {"binary_data": binary}} for name in OUTPUTS],
        }
    )


def v2_base64_bodies() -> list[bytes]:
    jpegs = [synthetic_jpeg(seed) for seed in range(COUNT)]
    return [_v2_header({"data": [base64.b64encode(jpeg).decode()]}, binary=False) for jpeg in jpegs]


def v2_binary_bodies() -> tuple[list[bytes], int]:
    """Bodies and their one JSON header length: each header is padded with spaces (valid JSON)
    to the longest, so one Inference-Header-Content-Length fits every body."""
    jpegs = [synthetic_jpeg(seed) for seed in range(COUNT)]
    headers = [_v2_header({"parameters": {"binary_data_size": 4 + len(j)}}, binary=True) for j in jpegs]
    length = max(len(h) for h in headers)
    bodies = [h.ljust(length) + struct.pack("<I", len(j)) + j for h, j in zip(headers, jpegs, strict=True)]
    return bodies, length


def forms() -> list[Form]:
    binary, length = v2_binary_bodies()
    infer = "/v2/models/bench/infer"
    return [
        Form("easydl-base64", "/bench/ImageClassification", request_bodies(COUNT)),
        Form("v2-base64", infer, v2_base64_bodies()),
        Form(
            "v2-binary",
            infer,
            binary,
            content_type="application/octet-stream",
            headers={"Inference-Header-Content-Length": str(length)},
        ),
    ]


def compare(model: BenchModel, args: argparse.Namespace) -> None:
    contenders = forms()
    results: dict[str, list[LoadResult]] = {form.name: [] for form in contenders}
    with servers.inferpack(model) as server:
        origin = server.url.rsplit("/", 2)[0]
        for index in range(args.rounds):
            for form in rotated(contenders, index):
                load = run_load(
                    origin + form.path,
                    form.bodies,
                    concurrency=args.concurrency,
                    duration_s=args.duration,
                    warmup_s=args.warmup,
                    server_pid=server.pid,
                    content_type=form.content_type,
                    accept=form.accept,
                    extra_headers=form.headers,
                )
                result = asyncio.run(load)
                results[form.name].append(result)
                print(
                    f"{model.name} round {index + 1}: {form.name} {result.throughput:.1f} img/s", flush=True
                )
    base = pooled(results["easydl-base64"])
    rows = []
    for name, rounds in results.items():
        total = pooled(rounds)
        rows.append(Row.of_load(name, total, note=f"{total.throughput / base.throughput:.2f}x easydl"))
    sizes = {form.name: sum(map(len, form.bodies)) // len(form.bodies) // 1024 for form in contenders}
    print(table(f"{model.name}: one server, three request forms, {args.rounds} rounds pooled", rows))
    print("mean body: " + ", ".join(f"{name} {kib} KiB" for name, kib in sizes.items()))
    for name, rounds in results.items():
        for sample in (s for r in rounds for s in r.error_samples):
            print(f"   {name} error: {sample}")
    print(flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="demo", help="demo (its classifier) and/or resnet50")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--duration", type=float, default=15.0, help="seconds of recorded load per form")
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--concurrency", type=int, default=16)
    args = parser.parse_args(argv)
    print(f"images: {describe(request_bodies(COUNT))}; concurrency {args.concurrency}\n", flush=True)
    for model in pick(args.models, tasks=("classification",)):
        compare(model, args)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
