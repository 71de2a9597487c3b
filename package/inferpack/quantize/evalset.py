"""Measuring a loaded ``Model`` on a labelled dataset: the accuracy guard's figures.

The dataset is read by ``inferpack.datasets`` (a folder per class, YOLO, COCO) and scored by
``inferpack.evaluation``: top-1 accuracy overall and each class's recall (its images answered
right) for classification; mAP@0.5 overall and AP@0.5 per class for detection. The model sees
each image exactly as a request's: the server's decode, preprocess, batch and postprocess
(detections down to ``DETECTION_FLOOR``, as AP needs the low-scoring ones too).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from inferpack.datasets.items import Dataset
from inferpack.datasets.readers import read_dataset
from inferpack.errors import InferpackError
from inferpack.evaluation.classification import evaluate_classification
from inferpack.evaluation.detection import Box, evaluate_detection, truth_boxes
from inferpack.model import Model, Prepared
from inferpack.quantize import QuantizeError
from inferpack.variants import Accuracy

DETECTION_FLOOR = 0.05


def read_eval_set(root: Path, task: str, labels: tuple[str, ...]) -> Dataset:
    """The labelled set at ``root``, checked: its task is the model's and its classes are the model's."""
    if not root.is_dir():
        raise QuantizeError(f"{root} is not a dataset folder")
    dataset = read_dataset(root)
    if dataset.problems:
        shown = "; ".join(str(p) for p in dataset.problems[:3])
        raise QuantizeError(f"{root}: {len(dataset.problems)} problem(s) in the evaluation set: {shown}")
    if dataset.task != task:
        raise QuantizeError(
            f"{root} is a {dataset.format} set ({dataset.task or 'unlabelled'}); the model does {task}"
        )
    unknown = sorted(set(dataset.classes) - set(labels))
    if unknown:
        raise QuantizeError(f"{root}: classes {', '.join(unknown)} are not among the model's labels")
    if not dataset.items:
        raise QuantizeError(f"{root}: no labelled images found")
    return dataset


def _prepare(model: Model, path: Path) -> Prepared:
    try:
        return model.prepare(path.read_bytes())
    except InferpackError as exc:
        raise QuantizeError(f"{path}: {exc}") from None


def measure(model: Model, dataset: Dataset, batch_size: int = 8) -> Accuracy:
    """Top-1 (classification) or mAP@0.5 (detection), overall and per class, of ``model``."""
    labels = model.spec.labels
    batch_size = model.fixed_batch or batch_size
    predicted: list[list[str]] = []
    found: list[list[Box]] = []
    truths: list[list[Box]] = []
    for start in range(0, len(dataset.items), batch_size):
        chunk = dataset.items[start : start + batch_size]
        prepared = [_prepare(model, dataset.root / item.path) for item in chunk]
        rows = model.run_batch(np.stack([p.sample for p in prepared]))
        for item, sample, row in zip(chunk, prepared, rows, strict=True):
            if model.spec.task == "classification":
                predicted.append([model.classify(row, 1)[0][0]])
                continue
            truths.append(truth_boxes(item.boxes or (), sample.transform.width, sample.transform.height))
            found.append(
                [
                    Box(d.label, d.left, d.top, d.width, d.height, d.score)
                    for d in model.detect(row, sample.transform, DETECTION_FLOOR)
                ]
            )
    count = len(dataset.items)
    if model.spec.task == "classification":
        scores = evaluate_classification(
            [item.label or "" for item in dataset.items], predicted, labels, ks=(1,)
        )
        per_class = {k: s.recall for k, s in scores.per_class.items() if s.support}
        return Accuracy("top1", scores.accuracy, per_class, count)
    report = evaluate_detection(truths, found, labels, DETECTION_FLOOR)
    per_class = {k: m.ap50 for k, m in report.per_class.items() if m.ap50 is not None}
    return Accuracy("map50", report.map50, per_class, count)
