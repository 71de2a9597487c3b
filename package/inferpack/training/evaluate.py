"""Measures of a model on labelled samples: top-1 for classification, VOC mAP@0.5 for detection.

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
from inferpack.demo.evaluate import Prediction, Truth, mean_average_precision, top1_accuracy
from inferpack.model import Model
from inferpack.runtime.engine import EngineOptions
from inferpack.training.dataset import Sample
from inferpack.vision.geometry import Transform
from inferpack.vision.postprocess import classify, detect

EVAL_THRESHOLD = 0.05  # detections scored for mAP: low, so the precision/recall curve is whole
BATCH = 16


def truths(sample: Sample, transform: Transform, labels: Sequence[str]) -> list[Truth]:
    w, h = transform.width, transform.height
    return [
        Truth(labels[i], ((cx - bw / 2) * w, (cy - bh / 2) * h, (cx + bw / 2) * w, (cy + bh / 2) * h))
        for i, cx, cy, bw, bh in sample.boxes
    ]


def measure(
    spec: ModelSpec,
    rows: Sequence[NDArray[np.float32]],
    transforms: Sequence[Transform],
    samples: Sequence[Sample],
) -> dict[str, Any]:
    if spec.task == "classification":
        predicted = [classify(row, spec, 1)[0][0] for row in rows]
        return {"top1": top1_accuracy(predicted, [spec.labels[s.label] for s in samples]), "count": len(rows)}
    predictions = [
        [
            Prediction(d.label, d.score, (d.left, d.top, d.left + d.width, d.top + d.height))
            for d in detect(row, spec, transform, EVAL_THRESHOLD)
        ]
        for row, transform in zip(rows, transforms, strict=True)
    ]
    expected = [truths(s, t, spec.labels) for s, t in zip(samples, transforms, strict=True)]
    report = mean_average_precision(predictions, expected, spec.labels)
    return {"map50": report.mean_ap, "ap50": report.ap, "count": len(rows)}


def headline(measures: dict[str, Any]) -> float:
    """The one figure that ranks checkpoints: top-1 or mAP@0.5."""
    return float(measures["top1"] if "top1" in measures else measures["map50"])


def evaluate_bundle(directory: Path, samples: Sequence[Sample], threads: int = 1) -> dict[str, Any]:
    """Measures of the bundle at ``directory`` on ``samples``, through the serving path."""
    bundle = read_bundle(directory)
    model = Model.load(bundle, "onnxruntime", EngineOptions(max_batch_size=BATCH, intra_op_threads=threads))
    try:
        rows: list[NDArray[np.float32]] = []
        transforms: list[Transform] = []
        for start in range(0, len(samples), BATCH):
            prepared = [model.prepare(s.image.read_bytes()) for s in samples[start : start + BATCH]]
            rows.extend(model.run_batch(np.stack([p.sample for p in prepared])))
            transforms.extend(p.transform for p in prepared)
        return measure(bundle.spec, rows, transforms, samples)
    finally:
        model.engine.close()
