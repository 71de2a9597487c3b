"""Held-out datasets of shapes on disk, in the layouts a customer would bring: a YOLO dataset
for the demo detector, a folder per class for the demo classifier (tests, bench, README)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from inferpack.datasets.items import TruthBox
from inferpack.datasets.writers import write_classes, write_yolo
from inferpack.demo.shapes import LABELS, Image, classification_sample, detection_scene


def _jpeg(image: Image) -> bytes:
    ok, data = cv2.imencode(".jpg", image, [cv2.IMWRITE_JPEG_QUALITY, 95])
    assert ok
    return data.tobytes()


def detection_dataset(root: Path, count: int, seed: int) -> Path:
    """``count`` scenes in the YOLO layout; boxes exactly as drawn (pixel edges, relative)."""
    rng = np.random.default_rng(seed)
    images = []
    for index in range(count):
        image, boxes = detection_scene(rng)
        height, width = image.shape[:2]
        truth = [
            TruthBox(
                label, (x1 + x2) / 2 / width, (y1 + y2) / 2 / height, (x2 - x1) / width, (y2 - y1) / height
            )
            for label, x1, y1, x2, y2 in boxes
        ]
        images.append((f"scene_{index:05d}.jpg", _jpeg(image), truth))
    write_yolo(root, LABELS, images)
    return root


def classification_dataset(root: Path, count: int, seed: int) -> Path:
    """``count`` images in a folder per class."""
    rng = np.random.default_rng(seed)
    samples = (classification_sample(rng) for _ in range(count))
    write_classes(
        root, ((label, f"shape_{i:05d}.jpg", _jpeg(image)) for i, (image, label) in enumerate(samples))
    )
    return root


def degraded(image: Image, rng: np.random.Generator) -> Image:
    """A harder copy: lower contrast, heavier noise and a block of random pixels over part of the image, each
    to a random degree, so the demo models make some mistakes (hard-example measurements)."""
    img = image.astype(np.float32)
    mean = img.mean(axis=(0, 1), keepdims=True)
    img = mean + (img - mean) * rng.uniform(0.25, 1.0)
    height, width = img.shape[:2]
    block_w, block_h = int(width * rng.uniform(0.05, 0.3)), int(height * rng.uniform(0.05, 0.3))
    x, y = int(rng.integers(0, width - block_w + 1)), int(rng.integers(0, height - block_h + 1))
    img[y : y + block_h, x : x + block_w] = rng.uniform(0, 255, (block_h, block_w, 3))  # never a shape
    img += rng.standard_normal(img.shape, dtype=np.float32) * np.float32(rng.uniform(5, 35))
    degraded_image: Image = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return degraded_image


def degraded_classification_dataset(root: Path, count: int, seed: int) -> Path:
    """Like ``classification_dataset``, every image ``degraded``."""
    rng = np.random.default_rng(seed)
    samples = [classification_sample(rng) for _ in range(count)]
    write_classes(
        root,
        (
            (label, f"shape_{i:05d}.jpg", _jpeg(degraded(image, rng)))
            for i, (image, label) in enumerate(samples)
        ),
    )
    return root
