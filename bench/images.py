"""The request images every server gets: synthetic ~640x480 photos-like JPEGs, as EasyDL JSON bodies."""

from __future__ import annotations

import base64

import cv2
import numpy as np
import orjson

WIDTH, HEIGHT = 640, 480


def synthetic_jpeg(seed: int, quality: int = 90) -> bytes:
    """Smooth gradients, shapes and mild noise: compresses like a photo (tens of KiB), not like noise."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    image = np.empty((HEIGHT, WIDTH, 3), np.float32)
    for channel in range(3):
        fx, fy = rng.uniform(0.002, 0.02, 2).tolist()
        phase = rng.uniform(0, 6.3)
        image[..., channel] = 128 + 90 * np.sin(x * fx + y * fy + phase)
    canvas = np.clip(image, 0, 255).astype(np.uint8)
    for _ in range(12):
        colour = tuple(int(c) for c in rng.integers(0, 256, 3))
        centre = (int(rng.integers(0, WIDTH)), int(rng.integers(0, HEIGHT)))
        if rng.random() < 0.5:
            cv2.circle(canvas, centre, int(rng.integers(10, 120)), colour, -1, cv2.LINE_AA)
        else:
            size = rng.integers(20, 200, 2)
            cv2.rectangle(canvas, centre, (centre[0] + int(size[0]), centre[1] + int(size[1])), colour, -1)
    noisy = canvas.astype(np.int16) + rng.normal(0, 6, canvas.shape).astype(np.int16)
    ok, encoded = cv2.imencode(
        ".jpg", np.clip(noisy, 0, 255).astype(np.uint8), [cv2.IMWRITE_JPEG_QUALITY, quality]
    )
    assert ok
    return encoded.tobytes()


def request_bodies(count: int = 32) -> list[bytes]:
    """``{"image": base64}`` bodies for ``count`` distinct images."""
    return [orjson.dumps({"image": base64.b64encode(synthetic_jpeg(seed)).decode()}) for seed in range(count)]


def describe(bodies: list[bytes]) -> str:
    sizes = [len(b) for b in bodies]
    return f"{len(bodies)} JPEGs {WIDTH}x{HEIGHT}, JSON body {min(sizes) // 1024}-{max(sizes) // 1024} KiB"
