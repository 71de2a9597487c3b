"""Synthetic images of coloured circles, squares and triangles, deterministic from a seed.

The demo models are trained and tested on these, so the appliance can show and check a real
prediction with no data set shipped. Images vary in size (sides 120-640 px) and aspect ratio
(up to 2.5) because the server must handle both; backgrounds are noisy gradients with faint
clutter so a model cannot win by spotting "the only non-flat pixels". Everything comes from
a ``numpy.random.Generator``: the same seed gives the same pixels and boxes.
"""

from __future__ import annotations

import math

import cv2
import numpy as np
from numpy.typing import NDArray

LABELS: tuple[str, ...] = ("circle", "square", "triangle")

Image = NDArray[np.uint8]  # BGR uint8, HxWx3
TrueBox = tuple[str, int, int, int, int]  # label, x1, y1, x2, y2 in image pixels (x2, y2 exclusive)

MIN_SIDE, MAX_SIDE = 120, 640
MAX_ASPECT = 2.5
_MIN_CONTRAST = 100.0  # Euclidean BGR distance between a shape and the background under it
_SAMPLE_SEED = 20240601  # sample_image's seed: the installer gate's answer must not change


def image_size(rng: np.random.Generator) -> tuple[int, int]:
    """A random (width, height): longer side 120-640 px, aspect ratio 1-2.5, either way round."""
    aspect = math.exp(rng.uniform(0.0, math.log(MAX_ASPECT)))
    long_side = int(rng.integers(max(MIN_SIDE, 160), MAX_SIDE + 1))
    short_side = max(MIN_SIDE, round(long_side / aspect))
    long_side = min(MAX_SIDE, max(long_side, short_side))
    return (long_side, short_side) if rng.random() < 0.5 else (short_side, long_side)


def background(rng: np.random.Generator, width: int, height: int) -> NDArray[np.float32]:
    """A two-colour linear gradient in a random direction with a few faint lines and blobs."""
    c0 = rng.uniform(0, 255, 3)
    c1 = np.clip(c0 + rng.normal(0, 60, 3), 0, 255)
    angle = rng.uniform(0, 2 * math.pi)
    ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
    t = xs * math.cos(angle) + ys * math.sin(angle)
    t = (t - t.min()) / max(float(t.max() - t.min()), 1.0)
    img = (c0[None, None, :] * (1 - t[..., None]) + c1[None, None, :] * t[..., None]).astype(np.float32)
    for _ in range(int(rng.integers(0, 6))):
        # Faint clutter: thin lines and elongated ellipses (never round enough to pass for a
        # circle), at most 45 colour steps from the background, under the 100 a shape gets.
        under = img[int(rng.integers(height)), int(rng.integers(width))]
        delta = rng.normal(0, 1, 3)
        delta *= rng.uniform(15, 45) / max(float(np.linalg.norm(delta)), 1e-6)
        colour = np.clip(under + delta, 0, 255)
        p1 = (int(rng.integers(width)), int(rng.integers(height)))
        if rng.random() < 0.5:
            p2 = (int(rng.integers(width)), int(rng.integers(height)))
            cv2.line(img, p1, p2, colour.tolist(), 1, cv2.LINE_AA)
        else:
            major = int(rng.integers(10, max(11, min(width, height) // 2)))
            axes = (major, max(2, round(major / rng.uniform(2.5, 6.0))))
            cv2.ellipse(img, p1, axes, float(rng.uniform(0, 180)), 0, 360, colour.tolist(), -1, cv2.LINE_AA)
    return np.ascontiguousarray(img, np.float32)


def _shape_points(
    label: str, cx: float, cy: float, size: float, rng: np.random.Generator
) -> NDArray[np.float64]:
    """Polygon vertices of a square or triangle whose bounding box is about ``size`` wide."""
    if label == "square":
        angle = rng.uniform(-math.pi / 12, math.pi / 12)  # at most 15 degrees: still a square, not a diamond
        half = size / 2 / (abs(math.cos(angle)) + abs(math.sin(angle)))
        corners = np.array([[-1, -1], [1, -1], [1, 1], [-1, 1]], np.float64) * half
    else:  # an equilateral-ish triangle, any rotation
        angle = rng.uniform(0, 2 * math.pi)
        phases = np.array([0.0, 2 * math.pi / 3, 4 * math.pi / 3]) + rng.normal(0, 0.08, 3)
        corners = np.stack([np.cos(phases), np.sin(phases)], axis=1) * (size / 2)
    rot = np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    pts = corners @ rot.T
    pts -= (pts.min(axis=0) + pts.max(axis=0)) / 2  # centre the bounding box on (cx, cy)
    centred: NDArray[np.float64] = pts + np.array([cx, cy])
    return centred


def _contrasting_colour(rng: np.random.Generator, under: NDArray[np.float32]) -> tuple[float, float, float]:
    """A colour far from the mean background under the shape, so every shape is clearly visible."""
    mean = under.reshape(-1, 3).mean(axis=0)
    colour = rng.uniform(0, 255, 3)
    for _ in range(50):
        if float(np.linalg.norm(colour - mean)) >= _MIN_CONTRAST:
            break
        colour = rng.uniform(0, 255, 3)
    else:
        colour = np.where(mean > 127, 0.0, 255.0)
    return (float(colour[0]), float(colour[1]), float(colour[2]))


def draw_shape(
    img: NDArray[np.float32], label: str, cx: float, cy: float, size: float, rng: np.random.Generator
) -> TrueBox:
    """Draws one filled shape (anti-aliased) centred at (cx, cy); returns its tight box."""
    height, width = img.shape[:2]
    if label == "circle":
        pts = np.array([[cx - size / 2, cy - size / 2], [cx + size / 2, cy + size / 2]])
    else:
        pts = _shape_points(label, cx, cy, size, rng)
    x1, y1 = np.floor(pts.min(axis=0)).astype(int)
    x2, y2 = np.ceil(pts.max(axis=0)).astype(int)
    x1, y1, x2, y2 = max(0, x1), max(0, y1), min(width, x2), min(height, y2)
    colour = _contrasting_colour(rng, img[y1:y2, x1:x2])
    shift = 4  # sub-pixel drawing: coordinates in 1/16 px
    if label == "circle":
        centre = (round(cx * 16), round(cy * 16))
        cv2.circle(img, centre, round(size / 2 * 16), colour, -1, cv2.LINE_AA, shift)
    else:
        cv2.fillPoly(img, [np.round(pts * 16).astype(np.int32)], colour, cv2.LINE_AA, shift)
    return (label, int(x1), int(y1), int(x2), int(y2))


def _finish(img: NDArray[np.float32], rng: np.random.Generator) -> Image:
    """Sensor-like noise over everything (shapes too), then uint8."""
    sigma = rng.uniform(2.0, 14.0)
    noisy = img + rng.standard_normal(img.shape, dtype=np.float32) * np.float32(sigma)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def classification_sample(rng: np.random.Generator) -> tuple[Image, str]:
    """One clearly visible shape (30-85% of the short side) somewhere in a random image."""
    width, height = image_size(rng)
    img = background(rng, width, height)
    label = LABELS[int(rng.integers(len(LABELS)))]
    short = min(width, height)
    size = rng.uniform(0.3, 0.85) * short
    cx = rng.uniform(size / 2, width - size / 2)
    cy = rng.uniform(size / 2, height - size / 2)
    draw_shape(img, label, cx, cy, size, rng)
    return _finish(img, rng), label


def detection_scene(rng: np.random.Generator, max_shapes: int = 5) -> tuple[Image, list[TrueBox]]:
    """1-``max_shapes`` shapes (12-40% of the short side) whose boxes do not overlap.

    A shape that finds no free place after a few tries is skipped, so crowded small images
    may hold fewer than drawn; at least one is always placed (the first goes on an empty image).
    """
    width, height = image_size(rng)
    img = background(rng, width, height)
    short = min(width, height)
    count = int(rng.integers(1, max_shapes + 1))
    boxes: list[TrueBox] = []
    placed: list[tuple[float, float, float, float]] = []
    for _ in range(count):
        label = LABELS[int(rng.integers(len(LABELS)))]
        size = rng.uniform(0.12, 0.4) * short
        for _attempt in range(20):
            cx = rng.uniform(size / 2, width - size / 2)
            cy = rng.uniform(size / 2, height - size / 2)
            gap = 2.0
            box = (cx - size / 2 - gap, cy - size / 2 - gap, cx + size / 2 + gap, cy + size / 2 + gap)
            if all(box[2] <= p[0] or p[2] <= box[0] or box[3] <= p[1] or p[3] <= box[1] for p in placed):
                placed.append(box)
                boxes.append(draw_shape(img, label, cx, cy, size, rng))
                break
    return _finish(img, rng), boxes


def sample_classification() -> tuple[Image, str]:
    """The fixed classification sample (a seed of its own, never changed)."""
    return classification_sample(np.random.default_rng(_SAMPLE_SEED))


def sample_detection() -> tuple[Image, list[TrueBox]]:
    """The fixed detection sample: a scene of three shapes, one of each class."""
    rng = np.random.default_rng(_SAMPLE_SEED)
    width, height = 480, 320
    img = background(rng, width, height)
    boxes = [
        draw_shape(img, label, cx, 160.0, 110.0, rng)
        for label, cx in zip(LABELS, (85.0, 240.0, 395.0), strict=True)
    ]
    return _finish(img, rng), boxes


def sample_image(task: str) -> Image:
    """The installer gate's image for ``task`` ("classification" or "detection"): BGR uint8,
    the same pixels on every call and every machine (same NumPy and OpenCV)."""
    if task == "classification":
        return sample_classification()[0]
    if task == "detection":
        return sample_detection()[0]
    raise ValueError(f"no sample image for task {task!r}; expected classification or detection")
