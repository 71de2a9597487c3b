"""Confirming labels (``PUT /NAME/datasets/{id}/data-annotations/samples``): the accepted,
possibly corrected labels go into the dataset in its own layout.

- ``yolo``: each sample's boxes replace its ``data/<stem>.txt`` (written atomically);
- ``classes``: the image moves into its class's folder (one rename).
Every sample is checked before anything is written, so bad input changes nothing; each file
then changes atomically, so a crash leaves each image either as it was or as confirmed, and
the dataset still reads and validates. COCO and unlabelled folders have no per-image label
file to write: confirming into them is refused (export the proposals instead).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from inferpack.datasets.items import Dataset, TruthBox
from inferpack.datasets.writers import yolo_rows
from inferpack.errors import Conflict, InferpackError, InvalidArgument
from inferpack.fileio import write_atomic
from inferpack.vision.imageinfo import sniff

MAX_SAMPLES = 10_000


@dataclass(frozen=True)
class Change:
    """One file's new content (``rows``) or one image's move (``to``)."""

    path: Path
    rows: str | None = None
    to: Path | None = None


def _corners(label: dict[str, Any], where: str) -> tuple[float, float, float, float]:
    feature = (label.get("property") or {}).get("@modelarts:feature")
    try:
        (x1, y1), (x2, y2) = feature  # type: ignore[misc]
        values = tuple(float(v) for v in (x1, y1, x2, y2))
    except (TypeError, ValueError):
        raise InvalidArgument(
            f'{where}: a box needs property["@modelarts:feature"] = [[x1, y1], [x2, y2]]'
        ) from None
    if not all(math.isfinite(v) for v in values) or values[2] <= values[0] or values[3] <= values[1]:
        raise InvalidArgument(f"{where}: the box {feature} is empty or not finite")
    return values  # type: ignore[return-value]


def _yolo(dataset: Dataset, path: str, labels: list[Any], where: str) -> Change:
    try:
        header = sniff((dataset.root / path).read_bytes())
    except InferpackError as exc:
        raise InvalidArgument(f"{where}: the image cannot be read: {exc.error_msg}") from None
    width, height = header.width, header.height
    boxes = []
    for number, label in enumerate(labels):
        at = f"{where}.labels[{number}]"
        x1, y1, x2, y2 = _corners(label, at)
        x1, x2 = (min(max(v, 0.0), width) for v in (x1, x2))
        y1, y2 = (min(max(v, 0.0), height) for v in (y1, y2))
        if x2 <= x1 or y2 <= y1:
            raise InvalidArgument(f"{at}: the box lies outside the {width}x{height} image")
        boxes.append(
            TruthBox(
                label["name"],
                (x1 + x2) / 2 / width,
                (y1 + y2) / 2 / height,
                (x2 - x1) / width,
                (y2 - y1) / height,
            )
        )
    stem = path.rsplit(".", 1)[0]
    return Change(dataset.root / f"{stem}.txt", rows=yolo_rows(boxes, dataset.classes))


def _classes(dataset: Dataset, path: str, labels: list[Any], where: str) -> Change | None:
    if len(labels) != 1:
        raise InvalidArgument(f"{where}: an image of a class-folder dataset takes exactly one label")
    target = dataset.root / labels[0]["name"] / path.rsplit("/", 1)[-1]
    if target == dataset.root / path:
        return None
    if target.exists():
        raise Conflict(f"{where}: {target.relative_to(dataset.root)} exists already")
    return Change(dataset.root / path, to=target)


def plan(dataset: Dataset, body: Any) -> list[Change]:
    """The changes ``body`` asks for, all checked; raises before anything is written."""
    if dataset.format not in ("yolo", "classes"):
        raise InvalidArgument(
            f"a {dataset.format} dataset has no per-image label files to confirm into: "
            "export the proposals, or use a YOLO or class-folder dataset"
        )
    samples = body.get("samples") if isinstance(body, dict) else None
    if not isinstance(samples, list) or not samples or len(samples) > MAX_SAMPLES:
        raise InvalidArgument(f"samples must be a list of 1-{MAX_SAMPLES} {{sample_id, labels}} objects")
    known = {item.path for item in dataset.items}
    changes: list[Change] = []
    seen: set[str] = set()
    for number, sample in enumerate(samples):
        where = f"samples[{number}]"
        if not isinstance(sample, dict) or not isinstance(sample.get("labels"), list):
            raise InvalidArgument(f"{where} must be an object with sample_id and a list of labels")
        path, labels = sample.get("sample_id"), sample["labels"]
        if path not in known or path in seen:
            raise InvalidArgument(f"{where}: sample_id {path!r} is not an image of this dataset (or repeats)")
        seen.add(path)
        for label in labels:
            if not isinstance(label, dict) or label.get("name") not in dataset.classes:
                raise InvalidArgument(f"{where}: every label needs a name among {', '.join(dataset.classes)}")
        change = (
            _yolo(dataset, path, labels, where)
            if dataset.format == "yolo"
            else _classes(dataset, path, labels, where)
        )
        if change is not None:
            changes.append(change)
    return changes


def apply(changes: list[Change]) -> None:
    for change in changes:
        if change.rows is not None:
            write_atomic(change.path, change.rows.encode())
        elif change.to is not None:
            change.to.parent.mkdir(exist_ok=True)
            os.rename(change.path, change.to)
