"""The reference implementations, run on the same predictions: pycocotools and scikit-learn."""

from __future__ import annotations

import contextlib
import io
from collections.abc import Sequence
from typing import Any

import numpy as np
from pycocotools.coco import COCO
from pycocotools.cocoeval import COCOeval

from inferpack.evaluation.detection import Box


def coco_eval(
    truths: Sequence[Sequence[Box]], predictions: Sequence[Sequence[Box]], classes: Sequence[str]
) -> Any:
    """COCOeval after evaluate/accumulate/summarize, images numbered 1.. in order."""
    category = {label: i + 1 for i, label in enumerate(classes)}
    images = [{"id": i + 1, "width": 1000, "height": 1000} for i in range(len(truths))]
    annotations = [
        {
            "id": len(images) + n,  # any unique id
            "image_id": i + 1,
            "category_id": category[b.label],
            "bbox": [b.x, b.y, b.w, b.h],
            "area": b.w * b.h,
            "iscrowd": 0,
        }
        for i, boxes in enumerate(truths)
        for n, b in enumerate(boxes, start=1000 * i)
    ]
    results = [
        {"image_id": i + 1, "category_id": category[b.label], "bbox": [b.x, b.y, b.w, b.h], "score": b.score}
        for i, boxes in enumerate(predictions)
        for b in boxes
    ]
    with contextlib.redirect_stdout(io.StringIO()):
        gt = COCO()
        gt.dataset = {
            "images": images,
            "annotations": annotations,
            "categories": [{"id": i, "name": label} for label, i in category.items()],
        }
        gt.createIndex()
        dt = gt.loadRes(results) if results else COCO()
        evaluation = COCOeval(gt, dt, "bbox")
        evaluation.evaluate()
        evaluation.accumulate()
        evaluation.summarize()
    return evaluation


def class_ap(evaluation: Any, k: int, iou: int | None = None) -> float | None:
    """pycocotools' AP of category index k, area all, 100 detections (None: no ground truth)."""
    precision = evaluation.eval["precision"][:, :, k, 0, -1]
    if iou is not None:
        precision = precision[iou]
    valid = precision[precision > -1]
    return float(np.mean(valid)) if valid.size else None
