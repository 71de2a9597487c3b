"""Detection measures the COCO way, as pycocotools computes them (tested against it to 1e-6).

Per class and image, detections are ranked by score (ties keep their order; at most 100 per
image) and each is matched greedily, at each IoU threshold 0.50:0.05:0.95, to the unmatched
ground-truth box it overlaps most (IoU >= the threshold; non-ignored boxes first). An area range
(small < 32², medium < 96², large) ignores the ground truth outside it, and the detections
outside it that match nothing. Over all images, precision is made monotonically decreasing
and read at 101 recall points (0, 0.01, ..., 1); AP is their mean, mAP the mean over classes
that have ground truth (a class with none is left out: its AP is undefined).

Boxes are (x, y, w, h) in continuous pixels, area = w * h (no "+1"), as in COCO results.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import NDArray

from inferpack.datasets.items import TruthBox

IOU_THRESHOLDS = np.linspace(0.5, 0.95, 10)
RECALL_POINTS = np.linspace(0.0, 1.0, 101)
AREA_RANGES = {
    "all": (0.0, 1e5**2),
    "small": (0.0, 32.0**2),
    "medium": (32.0**2, 96.0**2),
    "large": (96.0**2, 1e5**2),
}
MAX_DETECTIONS = 100
Floats = NDArray[np.float64]
Flags = NDArray[np.bool_]


@dataclass(frozen=True)
class Box:
    """A ground-truth (score 1) or detected object, x, y, w, h in the image's pixels."""

    label: str
    x: float
    y: float
    w: float
    h: float
    score: float = 1.0


def truth_boxes(truth: Iterable[TruthBox], width: int, height: int) -> list[Box]:
    """A dataset's relative boxes (centre, size in 0-1) in the pixels of a width x height image."""
    boxes = []
    for box in truth:
        x1, y1, x2, y2 = box.pixels(width, height)
        boxes.append(Box(box.label, x1, y1, x2 - x1, y2 - y1))
    return boxes


@dataclass(frozen=True)
class ClassMeasures:
    ap: float | None  # mAP@[.5:.95] for this class; None: no ground truth
    ap50: float | None
    ap75: float | None
    ground_truths: int
    detections: int  # at or above the threshold
    true_positives: int  # at IoU 0.5, at or above the threshold
    precision: float
    recall: float
    pr_curve: list[float]  # precision at RECALL_POINTS, IoU 0.5 (empty: no ground truth)


@dataclass(frozen=True)
class DetectionMeasures:
    map: float  # mAP@[.5:.95], COCO's headline figure
    map50: float
    map75: float
    map_small: float  # -1 where no ground truth falls in the range, as pycocotools reports
    map_medium: float
    map_large: float
    mar100: float  # recall with at most 100 detections per image, mean over IoUs and classes
    threshold: float
    precision: float  # over all classes, at IoU 0.5, detections scoring >= threshold
    recall: float
    per_class: dict[str, ClassMeasures]
    errors_per_image: list[int] = field(default_factory=list)  # false positives + misses, as above


@dataclass
class _ImageResult:
    scores: Floats
    matched: Flags  # [T, D]
    ignored: Flags  # [T, D]
    ground_truths: int  # not ignored


def _xywh(boxes: Sequence[Box]) -> Floats:
    return np.array([[b.x, b.y, b.w, b.h] for b in boxes], np.float64).reshape(-1, 4)


def iou_matrix(dt: Floats, gt: Floats) -> Floats:
    """[D, G] intersection over union of xywh boxes (0 where they do not overlap)."""
    left = np.maximum(dt[:, None, 0], gt[None, :, 0])
    right = np.minimum(dt[:, None, 0] + dt[:, None, 2], gt[None, :, 0] + gt[None, :, 2])
    top = np.maximum(dt[:, None, 1], gt[None, :, 1])
    bottom = np.minimum(dt[:, None, 1] + dt[:, None, 3], gt[None, :, 1] + gt[None, :, 3])
    w, h = right - left, bottom - top
    inter = np.where((w > 0) & (h > 0), w * h, 0.0)
    union = (dt[:, 2] * dt[:, 3])[:, None] + (gt[:, 2] * gt[:, 3])[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=inter > 0)


def _match_image(dt: Floats, scores: Floats, gt: Floats, area: tuple[float, float]) -> _ImageResult:
    lo, hi = area
    gt_areas = gt[:, 2] * gt[:, 3]
    gt_ignored = (gt_areas < lo) | (gt_areas > hi)
    order = np.argsort(gt_ignored, kind="mergesort")
    gt, gt_ignored = gt[order], gt_ignored[order]
    ious = iou_matrix(dt, gt)
    thresholds = len(IOU_THRESHOLDS)
    matched = np.zeros((thresholds, len(dt)), bool)
    ignored = np.zeros((thresholds, len(dt)), bool)
    for t, threshold in enumerate(IOU_THRESHOLDS):
        taken = np.zeros(len(gt), bool)
        for d in range(len(dt)):
            best, m = min(threshold, 1 - 1e-10), -1
            for g in range(len(gt)):
                if taken[g]:
                    continue
                if m > -1 and not gt_ignored[m] and gt_ignored[g]:
                    break  # a real match beats any ignored box, which sort last
                if ious[d, g] < best:
                    continue
                best, m = ious[d, g], g
            if m > -1:
                matched[t, d], ignored[t, d], taken[m] = True, gt_ignored[m], True
    dt_areas = dt[:, 2] * dt[:, 3]
    ignored |= ~matched & ((dt_areas < lo) | (dt_areas > hi))[None, :]
    return _ImageResult(scores, matched, ignored, int(np.count_nonzero(~gt_ignored)))


def _accumulate(results: list[_ImageResult]) -> tuple[Floats, Floats] | None:
    """Precision at RECALL_POINTS [T, R] and final recall [T] over images; None: no ground truth."""
    ground_truths = sum(r.ground_truths for r in results)
    if ground_truths == 0:
        return None
    scores = np.concatenate([r.scores for r in results]) if results else np.zeros(0)
    order = np.argsort(-scores, kind="mergesort")
    matched = (
        np.concatenate([r.matched for r in results], axis=1)[:, order] if results else np.zeros((10, 0), bool)
    )
    ignored = (
        np.concatenate([r.ignored for r in results], axis=1)[:, order] if results else np.zeros((10, 0), bool)
    )
    tp = np.cumsum(matched & ~ignored, axis=1, dtype=np.float64)
    fp = np.cumsum(~matched & ~ignored, axis=1, dtype=np.float64)
    precision = np.zeros((len(IOU_THRESHOLDS), len(RECALL_POINTS)))
    recall = np.zeros(len(IOU_THRESHOLDS))
    for t in range(len(IOU_THRESHOLDS)):
        rc = tp[t] / ground_truths
        pr = tp[t] / (fp[t] + tp[t] + np.spacing(1))
        if len(rc):
            recall[t] = rc[-1]
        envelope = np.maximum.accumulate(pr[::-1])[::-1]
        at = np.searchsorted(rc, RECALL_POINTS, side="left")
        inside = at < len(rc)
        precision[t, inside] = envelope[at[inside]]
    return precision, recall


def _mean(values: list[float]) -> float:
    return float(np.mean(values)) if values else -1.0


def evaluate_detection(
    truths: Sequence[Sequence[Box]],
    predictions: Sequence[Sequence[Box]],
    classes: Sequence[str],
    threshold: float,
) -> DetectionMeasures:
    """``truths[i]`` and ``predictions[i]`` are image i's boxes; ``threshold`` is the score at
    which precision and recall are reported (AP uses every detection)."""
    if len(truths) != len(predictions):
        raise ValueError(f"ground truth for {len(truths)} images, predictions for {len(predictions)}")
    curves: dict[str, dict[str, tuple[Floats, Floats] | None]] = {}
    per_image_errors = [0] * len(truths)
    counts: dict[str, tuple[int, int, int]] = {}
    for label in classes:
        by_area: dict[str, list[_ImageResult]] = {area: [] for area in AREA_RANGES}
        gts = dets = tps = 0
        for index, (truth, found) in enumerate(zip(truths, predictions, strict=True)):
            gt = _xywh([b for b in truth if b.label == label])
            mine = sorted((b for b in found if b.label == label), key=lambda b: -b.score)[:MAX_DETECTIONS]
            if len(gt) == 0 and not mine:
                continue
            dt, scores = _xywh(mine), np.array([b.score for b in mine], np.float64)
            for area, bounds in AREA_RANGES.items():
                by_area[area].append(_match_image(dt, scores, gt, bounds))
            kept = scores >= threshold
            hits = int(np.count_nonzero(by_area["all"][-1].matched[0] & kept))
            gts, dets, tps = gts + len(gt), dets + int(np.count_nonzero(kept)), tps + hits
            per_image_errors[index] += (int(np.count_nonzero(kept)) - hits) + (len(gt) - hits)
        curves[label] = {area: _accumulate(results) for area, results in by_area.items()}
        counts[label] = (gts, dets, tps)
    return _summarise(curves, counts, classes, threshold, per_image_errors)


def _summarise(
    curves: dict[str, dict[str, tuple[Floats, Floats] | None]],
    counts: dict[str, tuple[int, int, int]],
    classes: Sequence[str],
    threshold: float,
    errors: list[int],
) -> DetectionMeasures:
    def area_map(area: str, iou: int | None = None) -> float:
        values: list[float] = []
        for label in classes:
            found = curves[label][area]
            if found is not None:
                values.extend((found[0] if iou is None else found[0][iou]).ravel().tolist())
        return _mean(values)

    per_class: dict[str, ClassMeasures] = {}
    for label in classes:
        found = curves[label]["all"]
        gts, dets, tps = counts[label]
        per_class[label] = ClassMeasures(
            ap=None if found is None else float(found[0].mean()),
            ap50=None if found is None else float(found[0][0].mean()),
            ap75=None if found is None else float(found[0][5].mean()),
            ground_truths=gts,
            detections=dets,
            true_positives=tps,
            precision=tps / dets if dets else 0.0,
            recall=tps / gts if gts else 0.0,
            pr_curve=[] if found is None else found[0][0].tolist(),
        )
    recalls = [float(r) for label in classes if (f := curves[label]["all"]) is not None for r in f[1]]
    total_gt, total_det, total_tp = (sum(c[i] for c in counts.values()) for i in range(3))
    return DetectionMeasures(
        map=area_map("all"),
        map50=area_map("all", 0),
        map75=area_map("all", 5),
        map_small=area_map("small"),
        map_medium=area_map("medium"),
        map_large=area_map("large"),
        mar100=_mean(recalls),
        threshold=threshold,
        precision=total_tp / total_det if total_det else 0.0,
        recall=total_tp / total_gt if total_gt else 0.0,
        per_class=per_class,
        errors_per_image=errors,
    )
