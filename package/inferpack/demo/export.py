"""The demo's synthetic shapes written out as labelled image folders, so the demo models can be
calibrated and evaluated like a vendor's own data (``inferpack pack --calibration/--eval``).

Layouts (what ``inferpack.quantize.evalset`` reads):
- classification: ``DIR/<label>/NNNNN.jpg``
- detection (YOLO): ``DIR/images/NNNNN.jpg`` and ``DIR/labels/NNNNN.txt``, one
  ``class_index cx cy w h`` line per object, normalised to the image size.

Seeds 1 and 2 trained and validated the demo models: use others for held-out sets.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from inferpack.demo.shapes import LABELS, Image, classification_sample, detection_scene

JPEG_QUALITY = 95  # what the HTTP tests send


def _write_jpeg(path: Path, image: Image) -> None:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY])
    if not ok:  # pragma: no cover - OpenCV encodes any uint8 BGR image
        raise RuntimeError(f"cannot encode {path.name}")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data.tobytes())


def write_classification_set(folder: Path, seed: int, count: int) -> Path:
    rng = np.random.default_rng(seed)
    for index in range(count):
        image, label = classification_sample(rng)
        _write_jpeg(folder / label / f"{index:05d}.jpg", image)
    return folder


def write_detection_set(folder: Path, seed: int, count: int) -> Path:
    rng = np.random.default_rng(seed)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    for index in range(count):
        image, boxes = detection_scene(rng)
        height, width = image.shape[:2]
        _write_jpeg(folder / "images" / f"{index:05d}.jpg", image)
        lines = [
            f"{LABELS.index(label)} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
            f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}"
            for label, x1, y1, x2, y2 in boxes
        ]
        (folder / "labels" / f"{index:05d}.txt").write_text("\n".join(lines) + "\n")
    return folder


def write_set(task: str, folder: Path, seed: int, count: int) -> Path:
    """The demo set for ``task`` ("classification" or "detection") in its labelled layout."""
    if task == "classification":
        return write_classification_set(folder, seed, count)
    if task == "detection":
        return write_detection_set(folder, seed, count)
    raise ValueError(f"no demo set for task {task!r}")
