"""Labelled evaluation sets, and measuring a loaded ``Model`` on one (the accuracy guard's input).

Until the dataset readers and measures of ``inferpack.datasets`` / ``inferpack.evaluation``
land, this reads the two plain layouts ``inferpack.demo.export`` writes and scores with
``inferpack.demo.evaluate``; ``measure`` is the one seam to switch over.

- classification: ``DIR/<label>/*.jpg|png|bmp``; every folder must be one of the model's labels
- detection (YOLO): ``DIR/images/NAME.jpg`` with ``DIR/labels/NAME.txt`` lines
  ``class_index cx cy w h`` (normalised); an image without a label file has no objects

The model sees each image exactly as a request's: the server's decode, preprocess, batch and
postprocess (detections down to ``DETECTION_FLOOR``, as mAP needs the low-scoring ones too).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from inferpack.demo.evaluate import Prediction, Truth, mean_average_precision, top1_accuracy
from inferpack.errors import InferpackError
from inferpack.model import Model, Prepared
from inferpack.quantize import QuantizeError
from inferpack.quantize.images import image_files
from inferpack.variants import Accuracy

DETECTION_FLOOR = 0.05
MAX_OBJECTS_PER_IMAGE = 1000


@dataclass(frozen=True)
class Sample:
    path: Path
    label: str | None  # classification
    truths: tuple[Truth, ...]  # detection, in image pixels (filled in when the image is decoded)
    yolo: tuple[tuple[int, float, float, float, float], ...] = ()


@dataclass(frozen=True)
class EvalSet:
    folder: Path
    task: str
    samples: tuple[Sample, ...]


def _classification_set(folder: Path, labels: tuple[str, ...]) -> list[Sample]:
    samples = []
    for path in image_files(folder):
        label = path.relative_to(folder).parts[0]
        if label not in labels or len(path.relative_to(folder).parts) != 2:
            raise QuantizeError(
                f"{path}: a classification set is DIR/<label>/IMAGE with a label of the model "
                f"({', '.join(labels)})"
            )
        samples.append(Sample(path, label, ()))
    return samples


def _yolo_line(path: Path, number: int, line: str, classes: int) -> tuple[int, float, float, float, float]:
    parts = line.split()
    try:
        index, cx, cy, w, h = int(parts[0]), *(float(p) for p in parts[1:])
    except (ValueError, IndexError, TypeError):
        raise QuantizeError(f"{path}:{number}: expected 'class_index cx cy w h'") from None
    if len(parts) != 5 or not 0 <= index < classes or not all(0.0 <= v <= 1.0 for v in (cx, cy, w, h)):
        raise QuantizeError(f"{path}:{number}: class index 0-{classes - 1} and 4 numbers in [0, 1] expected")
    return index, cx, cy, w, h


def _detection_set(folder: Path, classes: int) -> list[Sample]:
    samples = []
    for path in image_files(folder / "images"):
        label_file = folder / "labels" / path.relative_to(folder / "images").with_suffix(".txt")
        lines = label_file.read_text(encoding="utf-8").splitlines() if label_file.is_file() else []
        if len(lines) > MAX_OBJECTS_PER_IMAGE:
            raise QuantizeError(f"{label_file}: more than {MAX_OBJECTS_PER_IMAGE} objects")
        yolo = tuple(
            _yolo_line(label_file, n, line, classes) for n, line in enumerate(lines, 1) if line.strip()
        )
        samples.append(Sample(path, None, (), yolo))
    return samples


def read_eval_set(folder: Path, task: str, labels: tuple[str, ...]) -> EvalSet:
    samples = (
        _classification_set(folder, labels)
        if task == "classification"
        else _detection_set(folder, len(labels))
    )
    if not samples:
        raise QuantizeError(f"{folder}: no labelled images found")
    return EvalSet(folder, task, tuple(samples))


def _prepare(model: Model, path: Path) -> Prepared:
    try:
        return model.prepare(path.read_bytes())
    except InferpackError as exc:
        raise QuantizeError(f"{path}: {exc}") from None


def _to_pixels(sample: Sample, width: int, height: int, labels: tuple[str, ...]) -> list[Truth]:
    return [
        Truth(
            labels[i],
            ((cx - w / 2) * width, (cy - h / 2) * height, (cx + w / 2) * width, (cy + h / 2) * height),
        )
        for i, cx, cy, w, h in sample.yolo
    ]


def measure(model: Model, evalset: EvalSet, batch_size: int = 8) -> Accuracy:
    """Top-1 (classification) or mAP@0.5 (detection), overall and per class, of ``model``."""
    labels = model.spec.labels
    batch_size = model.fixed_batch or batch_size
    predicted: list[str] = []
    found: list[list[Prediction]] = []
    truths: list[list[Truth]] = []
    for start in range(0, len(evalset.samples), batch_size):
        chunk = evalset.samples[start : start + batch_size]
        prepared = [_prepare(model, sample.path) for sample in chunk]
        rows = model.run_batch(np.stack([p.sample for p in prepared]))
        for sample, item, row in zip(chunk, prepared, rows, strict=True):
            if evalset.task == "classification":
                predicted.append(model.classify(row, 1)[0][0])
                continue
            truths.append(_to_pixels(sample, item.transform.width, item.transform.height, labels))
            found.append(
                [
                    Prediction(d.label, d.score, (d.left, d.top, d.left + d.width, d.top + d.height))
                    for d in model.detect(row, item.transform, DETECTION_FLOOR)
                ]
            )
    if evalset.task == "classification":
        actual = [s.label or "" for s in evalset.samples]
        per_class = {
            label: top1_accuracy(
                [p for p, t in zip(predicted, actual, strict=True) if t == label], [label] * n
            )
            for label in labels
            if (n := actual.count(label))
        }
        return Accuracy("top1", top1_accuracy(predicted, actual), per_class, len(actual))
    report = mean_average_precision(found, truths, labels)
    per_class = {label: ap for label, ap in report.ap.items() if ap is not None}
    return Accuracy("map50", report.mean_ap, per_class, len(evalset.samples))
