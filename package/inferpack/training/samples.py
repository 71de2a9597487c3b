"""Data set images -> model inputs, through the server's own decode and preprocess code.

What the model trains and validates on is then exactly what the server will feed it for the
same file: reduced JPEG decoding, letterbox padding and colour order included. The training
pre-processing is fixed at x/255 with mean 0 and std 1, so a sample is kept as the uint8
image the preprocessor produced (exact: x/255*255 rounds back to x), a quarter of the memory.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import get_context

import numpy as np
from numpy.typing import NDArray

from inferpack.bundle import InputSpec
from inferpack.errors import InferpackError
from inferpack.training.dataset import DatasetInvalid, Sample
from inferpack.vision.decode import decode_image
from inferpack.vision.geometry import Transform
from inferpack.vision.preprocess import Preprocessor

Targets = NDArray[np.float32]  # detection: [K, 5] class, x1, y1, x2, y2 in model-input pixels


@dataclass(frozen=True)
class Prepared:
    pixels: NDArray[np.uint8]  # C, H, W as the preprocessor laid it out, 0-255
    label: int
    boxes: Targets
    transform: Transform  # model-input pixels -> the original image's


def input_spec(width: int, height: int) -> InputSpec:
    """The pre-processing every trained model uses, written into its model.json on export."""
    return InputSpec(name="images", width=width, height=height, resize="letterbox")


def prepare(sample: Sample, spec: InputSpec) -> Prepared:
    """One sample as the server would see it; DatasetInvalid names an image it cannot serve."""
    data = sample.image.read_bytes()
    try:
        image = decode_image(data, target_size=(spec.width, spec.height), resize=spec.resize)
    except InferpackError as exc:
        raise DatasetInvalid(f"{sample.image.name}: {exc.error_msg}") from exc
    tensor, transform = Preprocessor(spec)(image)
    pixels = np.rint(tensor / np.float32(spec.scale)).astype(np.uint8)
    rows = []
    for index, cx, cy, w, h in sample.boxes:
        x1, y1 = (cx - w / 2) * image.width, (cy - h / 2) * image.height
        x2, y2 = (cx + w / 2) * image.width, (cy + h / 2) * image.height
        rows.append(
            [
                index,
                x1 / transform.scale_x + transform.left,
                y1 / transform.scale_y + transform.top,
                x2 / transform.scale_x + transform.left,
                y2 / transform.scale_y + transform.top,
            ]
        )
    return Prepared(pixels, sample.label, np.asarray(rows, np.float32).reshape(-1, 5), transform)


def _prepare(args: tuple[Sample, InputSpec]) -> Prepared:
    return prepare(*args)


def prepare_all(samples: Sequence[Sample], spec: InputSpec, workers: int) -> list[Prepared]:
    """Every sample, in order, on ``workers`` processes (1: in this one)."""
    if workers <= 1 or len(samples) < 64:
        return [prepare(s, spec) for s in samples]
    with get_context("spawn").Pool(workers) as pool:
        return pool.map(_prepare, [(s, spec) for s in samples], chunksize=32)
