"""``inferpack predict URL IMAGE... [--draw OUT]``: predictions from a service, printed or drawn.

Also ``python -m inferpack.client ...`` where only the client is installed. Each image's
failure is one line on stderr (with the EasyDL error_code and log_id); the exit status is 1
when any image failed.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path

from inferpack.cli_errors import describe_failure
from inferpack.client._protocol import image_bytes
from inferpack.client.errors import ClientError
from inferpack.client.results import Detections, Prediction
from inferpack.client.sync import Client

EXPECTED = (ClientError, OSError, ValueError)


def add_predict_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("url", help="the service: http://HOST:PORT/NAME (or its prediction route)")
    parser.add_argument("images", nargs="+", type=Path, help="jpg/png/bmp files")
    parser.add_argument("--top-num", type=int, help="classification: how many labels (default 6)")
    parser.add_argument("--threshold", type=float, help="detection: lowest score (default: the model's)")
    parser.add_argument(
        "--draw", type=Path, help="write the image with its boxes/labels here (a folder for several images)"
    )
    parser.add_argument("--json", action="store_true", help="one JSON line per image")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds per attempt (default 30)")
    parser.add_argument("--retries", type=int, default=3, help="retries on 336100 (default 3)")


def add_predict_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser("predict", help="send images to a service and print (or draw) its answers")
    add_predict_arguments(parser)
    parser.set_defaults(handler=run)


def _text(image: Path, prediction: Prediction) -> str:
    if isinstance(prediction, Detections):
        lines = [
            f"  {d.name} {d.score:.4f} at left={d.location.left} top={d.location.top} "
            f"width={d.location.width} height={d.location.height}"
            for d in prediction.results
        ]
    else:
        lines = [f"  {label.name} {label.score:.4f}" for label in prediction.results]
    return "\n".join([f"{image} (log_id {prediction.log_id}): {len(lines)} results", *lines])


def _drawing_path(draw: Path, image: Path, several: bool) -> Path:
    if not several:
        return draw
    draw.mkdir(parents=True, exist_ok=True)
    return draw / image.name


def _one(client: Client, args: argparse.Namespace, image: Path) -> None:
    data = image_bytes(image)
    prediction = client.predict(data, top_num=args.top_num, threshold=args.threshold)
    if args.json:
        print(json.dumps({"image": str(image), **asdict(prediction)}))
    else:
        print(_text(image, prediction))
    if args.draw is not None:
        from inferpack.client.draw import draw, save

        save(_drawing_path(args.draw, image, len(args.images) > 1), draw(data, prediction))


def run(args: argparse.Namespace) -> int:
    failed = 0
    try:
        client = Client(args.url, timeout_s=args.timeout, retries=args.retries)
    except ValueError as exc:
        print(f"inferpack predict: {exc}", file=sys.stderr)
        return 1
    with client:
        for image in args.images:
            try:
                _one(client, args, image)
            except EXPECTED as exc:
                failed += 1
                print(f"inferpack predict: {image}: {describe_failure(exc)}", file=sys.stderr)
    return 1 if failed else 0


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inferpack.client", description=__doc__)
    add_predict_arguments(parser)
    return run(parser.parse_args(argv))
