"""Measures of a model on labelled images, by ``inferpack.evaluation``: accuracy (top-1) for
classification, COCO mAP@0.5 (and the rest of its measures) for detection.

``measure`` scores model output rows the way the server answers them (its ``classify`` and
``detect``, boxes in the original image's pixels); ``evaluate_bundle`` runs an exported
bundle through the server's own ``Model`` (decode, preprocess, ONNX Runtime, postprocess), so
its figures are the ones a client of the deployed package would measure.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from inferpack.bundle import ModelSpec, read_bundle
from inferpack.datasets.items import Dataset, Item
from inferpack.evaluation.classification import evaluate_classification
from inferpack.evaluation.detection import Box, evaluate_detection
from inferpack.model import Model
from inferpack.runtime.engine import EngineOptions
from inferpack.vision.geometry import Transform
from inferpack.vision.postprocess import classify, detect

EVAL_THRESHOLD = 0.05  # detections scored for mAP: low, so the precision/recall curve is whole
BATCH = 16


def truth_boxes(item: Item, width: int, height: int) -> list[Box]:
    boxes = []
    for truth in item.boxes or ():
        x1, y1, x2, y2 = truth.pixels(width, height)
        boxes.append(Box(truth.label, x1, y1, x2 - x1, y2 - y1))
    return boxes


def measure(
    spec: ModelSpec,
    rows: Sequence[NDArray[np.float32]],
    transforms: Sequence[Transform],
    items: Sequence[Item],
) -> dict[str, Any]:
    if spec.task == "classification":
        ranked = [[label for label, _ in classify(row, spec, spec.num_classes)] for row in rows]
        result = evaluate_classification([str(i.label) for i in items], ranked, spec.labels, ks=(1,))
        return {"top1": result.accuracy, "macro_f1": result.macro_f1, "count": len(rows)}
    predictions = [
        [
            Box(d.label, d.left, d.top, d.width, d.height, d.score)
            for d in detect(row, spec, t, EVAL_THRESHOLD)
        ]
        for row, t in zip(rows, transforms, strict=True)
    ]
    truths = [truth_boxes(i, t.width, t.height) for i, t in zip(items, transforms, strict=True)]
    report = evaluate_detection(truths, predictions, spec.labels, threshold=spec.output.threshold)
    ap50 = {label: c.ap50 for label, c in report.per_class.items()}
    return {"map50": report.map50, "map": report.map, "ap50": ap50, "count": len(rows)}


def headline(measures: dict[str, Any]) -> float:
    """The one figure that ranks checkpoints: top-1 or mAP@0.5."""
    return float(measures["top1"] if "top1" in measures else measures["map50"])


def evaluate_bundle(
    directory: Path, dataset: Dataset, items: Sequence[Item], threads: int = 1
) -> dict[str, Any]:
    """Measures of the bundle at ``directory`` on ``items`` of ``dataset``, through the serving path."""
    bundle = read_bundle(directory)
    model = Model.load(bundle, "onnxruntime", EngineOptions(max_batch_size=BATCH, intra_op_threads=threads))
    try:
        rows: list[NDArray[np.float32]] = []
        transforms: list[Transform] = []
        for start in range(0, len(items), BATCH):
            prepared = [
                model.prepare((dataset.root / i.path).read_bytes()) for i in items[start : start + BATCH]
            ]
            rows.extend(model.run_batch(np.stack([p.sample for p in prepared])))
            transforms.extend(p.transform for p in prepared)
        return measure(bundle.spec, rows, transforms, items)
    finally:
        model.engine.close()
