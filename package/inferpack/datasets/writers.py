"""Writing datasets in the layouts ``readers`` reads: the seed's YOLO layout and a folder per
class. Exports of job results and the demo datasets are written with these."""

from __future__ import annotations

import json
from collections.abc import Iterable, Sequence
from pathlib import Path

from inferpack.datasets.items import TruthBox
from inferpack.datasets.readers import PROPERTY_FILE


def yolo_rows(boxes: Sequence[TruthBox], classes: Sequence[str]) -> str:
    """``cls cx cy w h`` per box, 6 decimals as in the seed's example."""
    index = {name: i for i, name in enumerate(classes)}
    return "".join(f"{index[b.label]} {b.cx:.6f} {b.cy:.6f} {b.w:.6f} {b.h:.6f}\n" for b in boxes)


def property_json(classes: Sequence[str]) -> bytes:
    document = {"class_num": len(classes), "classes": list(classes), "use_tiny": False}
    return (json.dumps(document, indent=2) + "\n").encode()


def write_yolo(
    root: Path, classes: Sequence[str], images: Iterable[tuple[str, bytes, Sequence[TruthBox]]]
) -> None:
    """``images``: (file name, encoded bytes, boxes) each."""
    (root / "data").mkdir(parents=True, exist_ok=True)
    (root / PROPERTY_FILE).write_bytes(property_json(classes))
    for name, data, boxes in images:
        (root / "data" / name).write_bytes(data)
        (root / "data" / name).with_suffix(".txt").write_text(yolo_rows(boxes, classes))


def write_classes(root: Path, images: Iterable[tuple[str, str, bytes]]) -> None:
    """``images``: (label, file name, encoded bytes) each, written to ``root/<label>/<name>``."""
    for label, name, data in images:
        (root / label).mkdir(parents=True, exist_ok=True)
        (root / label / name).write_bytes(data)
