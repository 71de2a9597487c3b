"""Writes the synthetic shapes (shapes.py) to disk as training data sets, deterministic from a seed.

Detection: the YOLO training API's layout (``property.json`` + ``data/NAME.jpg`` with
``data/NAME.txt`` rows ``class cx cy w h``, fractions of the image). Classification: one
folder per class. Images are JPEG at a random quality (70-95), as a camera would send them.
"""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np

from inferpack.demo.shapes import LABELS, Image, classification_sample, detection_scene
from inferpack.fileio import write_atomic


def _jpeg(image: Image, rng: np.random.Generator) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, int(rng.integers(70, 96))])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return data.tobytes()


def write_detection_dataset(directory: Path, count: int, seed: int) -> Path:
    """``count`` scenes of 1-5 shapes in the YOLO layout; returns ``directory``."""
    data = directory / "data"
    data.mkdir(parents=True, exist_ok=True)
    write_atomic(
        directory / "property.json",
        json.dumps({"class_num": len(LABELS), "classes": list(LABELS), "use_tiny": False}).encode(),
    )
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        image, boxes = detection_scene(rng)
        height, width = image.shape[:2]
        rows = [
            f"{LABELS.index(label)} {(x1 + x2) / 2 / width:.6f} {(y1 + y2) / 2 / height:.6f} "
            f"{(x2 - x1) / width:.6f} {(y2 - y1) / height:.6f}"
            for label, x1, y1, x2, y2 in boxes
        ]
        (data / f"scene_{index:05d}.jpg").write_bytes(_jpeg(image, rng))
        (data / f"scene_{index:05d}.txt").write_text("\n".join(rows) + "\n")
    return directory


def write_classification_dataset(directory: Path, count: int, seed: int) -> Path:
    """``count`` single-shape images, one folder per class; returns ``directory``."""
    for label in LABELS:
        (directory / label).mkdir(parents=True, exist_ok=True)
    for index in range(count):
        rng = np.random.default_rng([seed, index])
        image, label = classification_sample(rng)
        (directory / label / f"image_{index:05d}.jpg").write_bytes(_jpeg(image, rng))
    return directory
