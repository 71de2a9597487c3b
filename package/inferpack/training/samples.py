"""Data set images -> model inputs, through the server's own decode and preprocess code.

What the model trains and validates on is then exactly what the server will feed it for the
same file: reduced JPEG decoding, letterbox padding and colour order included. The training
pre-processing is fixed at x/255 with mean 0 and std 1, so a sample is kept as the uint8
image the preprocessor produced (exact: x/255*255 rounds back to x), a quarter of the memory.
Data sets are read and validated by ``inferpack.datasets`` (any labelled layout it reads).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from inferpack.bundle import InputSpec, Task
from inferpack.datasets.items import Dataset, Item
from inferpack.datasets.readers import read_dataset
from inferpack.datasets.validate import validate
from inferpack.errors import InferpackError
from inferpack.vision.decode import decode_image
from inferpack.vision.geometry import Transform
from inferpack.vision.preprocess import Preprocessor

Targets = NDArray[np.float32]  # detection: [K, 5] class, x1, y1, x2, y2 in model-input pixels


class DatasetInvalid(ValueError):
    """The data set cannot be trained on; the message says why (file and line)."""


@dataclass(frozen=True)
class Prepared:
    pixels: NDArray[np.uint8]  # C, H, W as the preprocessor laid it out, 0-255
    label: int
    boxes: Targets
    transform: Transform  # model-input pixels -> the original image's


def training_dataset(root: Path, task: Task | None = None, check_images: bool = False) -> Dataset:
    """The labelled data set at ``root``; ``check_images`` also decodes every image (/validate)."""
    if not root.is_dir() or root.is_symlink():
        raise DatasetInvalid(f"{root.name} is not a data set folder")
    dataset = read_dataset(root)
    if dataset.task is None:
        raise DatasetInvalid(
            f"{root.name} holds no labels: training needs a YOLO, COCO or class-folder data set"
        )
    if task is not None and dataset.task != task:
        raise DatasetInvalid(f"{root.name} is a {dataset.task} data set, not {task}")
    report = validate(dataset) if check_images else None
    problems = report.problems if report else dataset.problems
    if problems:  # one line: it is also a CLI error and an HTTP error message
        raise DatasetInvalid("; ".join(report.message().splitlines() if report else map(str, problems)))
    if len(dataset.items) < 2:
        raise DatasetInvalid(f"{root.name} holds {len(dataset.items)} image(s); training needs at least 2")
    return dataset


def input_spec(width: int, height: int) -> InputSpec:
    """The pre-processing every trained model uses, written into its model.json on export."""
    return InputSpec(name="images", width=width, height=height, resize="letterbox")


def prepare(root: Path, item: Item, classes: Sequence[str], spec: InputSpec) -> Prepared:
    """One image as the server would see it; DatasetInvalid names an image it cannot serve."""
    try:
        image = decode_image(
            (root / item.path).read_bytes(), target_size=(spec.width, spec.height), resize=spec.resize
        )
    except InferpackError as exc:
        raise DatasetInvalid(f"{item.path}: {exc.error_msg}") from exc
    tensor, transform = Preprocessor(spec)(image)
    pixels = np.rint(tensor / np.float32(spec.scale)).astype(np.uint8)
    rows = []
    for box in item.boxes or ():
        x1, y1, x2, y2 = box.pixels(image.width, image.height)
        rows.append(
            [
                classes.index(box.label),
                x1 / transform.scale_x + transform.left,
                y1 / transform.scale_y + transform.top,
                x2 / transform.scale_x + transform.left,
                y2 / transform.scale_y + transform.top,
            ]
        )
    label = classes.index(item.label) if item.label is not None else -1
    return Prepared(pixels, label, np.asarray(rows, np.float32).reshape(-1, 5), transform)


def _prepare(args: tuple[Path, Item, Sequence[str], InputSpec]) -> Prepared:
    return prepare(*args)


def prepare_all(dataset: Dataset, items: Sequence[Item], spec: InputSpec, workers: int) -> list[Prepared]:
    """Every item, in order, on ``workers`` processes (1: in this one)."""
    jobs = [(dataset.root, item, dataset.classes, spec) for item in items]
    if workers <= 1 or len(jobs) < 64:
        return [_prepare(job) for job in jobs]
    with get_context("spawn").Pool(workers) as pool:
        return pool.map(_prepare, jobs, chunksize=32)
