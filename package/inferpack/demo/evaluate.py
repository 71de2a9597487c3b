"""Top-1 accuracy and VOC-style mAP@0.5: how the demo models' quality is measured.

mAP follows PASCAL VOC (2010 onwards): per class, detections over all images are sorted by
score (ties keep their order); each is matched greedily to the still unmatched ground-truth
box of the same class and image with the highest IoU, a true positive if that IoU >= the
threshold, else a false positive (so a second box on an already matched object is a false
positive). Matching among unmatched boxes is COCO's rule; VOC's devkit takes the best box
overall and counts a false positive if it is taken: they differ only for overlapping objects.
AP is the area under the precision/recall curve after making precision monotonically
decreasing (all-point interpolation). Classes without ground truth are left out of the mean
(their AP is undefined); a class with ground truth but no detections has AP 0.

Boxes are (x1, y1, x2, y2) in continuous pixel coordinates: width = x2 - x1 (no VOC "+1").
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

Box = tuple[float, float, float, float]  # x1, y1, x2, y2


@dataclass(frozen=True)
class Truth:
    """A ground-truth object."""

    label: str
    box: Box


@dataclass(frozen=True)
class Prediction:
    """A detected object with its confidence."""

    label: str
    score: float
    box: Box


@dataclass(frozen=True)
class DetectionReport:
    """mAP over the classes that have ground truth, and AP per class (None: no ground truth)."""

    mean_ap: float
    ap: dict[str, float | None]
    ground_truths: dict[str, int]
    detections: dict[str, int]


def top1_accuracy(predicted: Sequence[str], truth: Sequence[str]) -> float:
    """The share of samples whose best class is the true one."""
    if len(predicted) != len(truth):
        raise ValueError(f"{len(predicted)} predictions for {len(truth)} samples")
    if not truth:
        raise ValueError("no samples")
    return sum(p == t for p, t in zip(predicted, truth, strict=True)) / len(truth)


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes; 0 when either has no area."""
    w = min(a[2], b[2]) - max(a[0], b[0])
    h = min(a[3], b[3]) - max(a[1], b[1])
    if w <= 0 or h <= 0:
        return 0.0
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


def average_precision(recall: NDArray[np.float64], precision: NDArray[np.float64]) -> float:
    """All-point interpolated AP: the area under the precision envelope (VOC 2010+)."""
    r = np.concatenate([[0.0], recall, [1.0]])
    p = np.concatenate([[0.0], precision, [0.0]])
    p = np.maximum.accumulate(p[::-1])[::-1]  # precision at recall r: the best at any recall >= r
    steps = np.flatnonzero(r[1:] != r[:-1])
    return float(np.sum((r[steps + 1] - r[steps]) * p[steps + 1]))


def class_average_precision(
    predictions: Sequence[Sequence[Prediction]],
    truths: Sequence[Sequence[Truth]],
    label: str,
    iou_threshold: float = 0.5,
) -> float | None:
    """AP of one class over a set of images (``predictions[i]`` and ``truths[i]`` are image i's)."""
    if len(predictions) != len(truths):
        raise ValueError(f"predictions for {len(predictions)} images, ground truth for {len(truths)}")
    gt = [[t.box for t in image if t.label == label] for image in truths]
    total = sum(len(boxes) for boxes in gt)
    if total == 0:
        return None
    ranked = sorted(
        ((p.score, i, p.box) for i, image in enumerate(predictions) for p in image if p.label == label),
        key=lambda item: -item[0],
    )  # sorted() is stable: equal scores keep image order
    matched = [[False] * len(boxes) for boxes in gt]
    hits = np.zeros(len(ranked), np.float64)
    for k, (_, i, box) in enumerate(ranked):
        best, best_iou = -1, iou_threshold
        for j, truth in enumerate(gt[i]):
            overlap = iou(box, truth)
            if not matched[i][j] and overlap >= best_iou:
                best, best_iou = j, overlap
        if best >= 0:
            matched[i][best] = True
            hits[k] = 1.0
    tp = np.cumsum(hits)
    fp = np.cumsum(1.0 - hits)
    recall = tp / total
    precision = tp / np.maximum(tp + fp, np.finfo(np.float64).tiny)
    return average_precision(recall, precision)


def mean_average_precision(
    predictions: Sequence[Sequence[Prediction]],
    truths: Sequence[Sequence[Truth]],
    labels: Sequence[str],
    iou_threshold: float = 0.5,
) -> DetectionReport:
    """mAP@``iou_threshold`` over ``labels`` (VOC way, see the module docstring)."""
    ap = {label: class_average_precision(predictions, truths, label, iou_threshold) for label in labels}
    scored = [value for value in ap.values() if value is not None]
    if not scored:
        raise ValueError("no ground truth for any label")
    return DetectionReport(
        mean_ap=float(np.mean(scored)),
        ap=ap,
        ground_truths={label: sum(t.label == label for image in truths for t in image) for label in labels},
        detections={label: sum(p.label == label for image in predictions for p in image) for label in labels},
    )
