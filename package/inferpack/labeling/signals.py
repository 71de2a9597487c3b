"""What a labeling task measures per image besides the model's answer: the answer on the
horizontally mirrored image (a test-time variant the model should agree with), and the image
statistics that hard examples and auto-grouping use (brightness, colourfulness, a colour
histogram). Computed by the job runner beside its prediction; kept in the result line."""

from __future__ import annotations

from typing import Any, Literal

import cv2
import numpy as np

HISTOGRAM_BINS = 4  # per channel: 64 colour bins, coarse enough for shapes on gradients


def mirrored(sample: np.ndarray, layout: Literal["NCHW", "NHWC"]) -> np.ndarray:
    """The model input of the horizontally flipped image (the width axis reversed)."""
    return np.ascontiguousarray(np.flip(sample, axis=-1 if layout == "NCHW" else -2))


def image_stats(data: bytes) -> dict[str, Any]:
    """Brightness (mean grey, 0-1), colourfulness (Hasler & Süsstrunk, /100) and a normalised
    64-bin BGR histogram of an image the model already decoded (so it is a valid image)."""
    image = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_REDUCED_COLOR_2)
    if image is None:
        return {}
    pixels = image.reshape(-1, 3).astype(np.float32)
    b, g, r = pixels[:, 0], pixels[:, 1], pixels[:, 2]
    rg, yb = r - g, 0.5 * (r + g) - b
    colourfulness = float(np.hypot(rg.std(), yb.std()) + 0.3 * np.hypot(rg.mean(), yb.mean())) / 100
    bins = (pixels // (256 // HISTOGRAM_BINS)).astype(np.int64)
    codes = bins[:, 0] * HISTOGRAM_BINS**2 + bins[:, 1] * HISTOGRAM_BINS + bins[:, 2]
    histogram = np.bincount(codes, minlength=HISTOGRAM_BINS**3) / len(codes)
    return {
        "brightness": round(float(pixels.mean()) / 255, 4),
        "colourfulness": round(colourfulness, 4),
        "histogram": [round(float(v), 4) for v in histogram],
    }


def answer_labels(results: list[dict[str, Any]], task: str, threshold: float) -> list[str]:
    """What a variant's answer is compared by: the top-1 class, or the sorted box labels."""
    if task == "classification":
        return [results[0]["name"]] if results else []
    return sorted(r["name"] for r in results if r["score"] >= threshold)
