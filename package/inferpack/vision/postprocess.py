"""One model output row (batch axis removed) -> EasyDL results.

Layouts are those of ``OutputSpec`` (bundle.py). ``check_output_shape`` runs at model load
and, since ONNX axes may be dynamic, on every row too: a row that does not fit is the
model's fault, answered as InternalError.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from inferpack.bundle import ModelSpec
from inferpack.errors import BundleError, InternalError, InvalidArgument
from inferpack.vision.geometry import Transform

Floats = NDArray[np.float32]
Candidates = tuple[NDArray[np.float64], Floats, NDArray[np.intp]]  # xyxy boxes, scores, classes

# layout: (its shape, the row axis that holds one box's values, how many precede the class scores)
_LAYOUTS = {
    "yolov8": ("[N, 4+C, A]", 0, 4),
    "yolov5": ("[N, A, 5+C]", 1, 5),
    "boxes": ("[N, K, 6]", 1, 6),  # no per-class scores: a class index
}


@dataclass(frozen=True, slots=True)
class Detection:
    """A box in original image pixels, at least 1x1 and inside the image."""

    label: str
    score: float
    left: int
    top: int
    width: int
    height: int


def check_output_shape(shape: Sequence[int | str | None], spec: ModelSpec) -> None:
    """One image's output shape (batch axis removed) fits the labels and layout, or BundleError.

    Axes that are not positive ints (ONNX dynamic axes: names or None) are not checked.
    """
    dims = tuple(shape)
    classes = spec.num_classes
    if spec.task == "classification":
        if len(dims) != 1:
            raise BundleError(f"a classification output must be [N, classes], got [N, {_dims(dims)}]")
        if _fixed(dims[0]) and dims[0] != classes:
            raise BundleError(
                f"labels has {classes} entries but the classification output has {dims[0]} classes"
            )
        return
    layout = spec.output.layout
    if layout not in _LAYOUTS:
        raise BundleError(f"unknown detection layout {layout!r}; expected one of {', '.join(_LAYOUTS)}")
    form, axis, values = _LAYOUTS[layout]
    if len(dims) != 2:
        raise BundleError(f"a {layout} output must be {form}, got [N, {_dims(dims)}]")
    size = dims[axis]
    if layout == "boxes":
        if _fixed(size) and size != values:
            raise BundleError(f"a boxes output has 6 columns (x1, y1, x2, y2, score, class), got {size}")
    elif _fixed(size) and size != values + classes:
        raise BundleError(
            f"labels has {classes} entries but the {layout} output has {size} "
            f"{'rows' if axis == 0 else 'columns'}; expected {values}+{classes}"
        )


def classify(row: NDArray[np.floating], spec: ModelSpec, top_num: int) -> list[tuple[str, float]]:
    """Class scores, best first (ties in label order), at most ``top_num`` of them.

    Logits go through a softmax, or a sigmoid per class when ``multi_label``;
    probabilities are used as they are.
    """
    if top_num < 1:
        raise InvalidArgument(f"top_num must be a positive integer, got {top_num}")
    _check_row(row, spec)
    x = np.asarray(row, np.float64)
    if not np.isfinite(x).all():
        raise InternalError("the model output contains NaN or infinity")
    if spec.output.type == "probabilities":
        scores = x
    elif spec.output.multi_label:
        scores = np.exp(-np.logaddexp(0.0, -x))  # sigmoid without overflow
    else:
        scores = np.exp(x - x.max())  # shifted: exp never overflows
        scores /= scores.sum()
    order = np.argsort(-scores, kind="stable")[:top_num]
    return [(spec.labels[i], float(scores[i])) for i in order]


def detect(
    row: NDArray[np.floating], spec: ModelSpec, transform: Transform, threshold: float
) -> list[Detection]:
    """Boxes scoring at least ``threshold``, in original pixels, best first.

    Candidates are cut by score first (cheap), mapped to the original image and clipped;
    boxes under 1x1 px once rounded (e.g. entirely in letterbox padding) are dropped,
    then class-aware NMS (not for "boxes", whose graph did it) and ``max_detections``.
    """
    _check_row(row, spec)
    out = spec.output
    values = np.asarray(row, np.float32)
    # A NumPy scalar compares in float64; a Python float would be rounded to the scores'
    # float32 (NumPy 2) and let 0.29999998 pass a threshold of 0.3.
    threshold = np.float64(threshold)
    with np.errstate(invalid="ignore", over="ignore"):  # NaN/inf from a broken model: dropped below
        if out.layout == "yolov8":
            boxes, scores, classes = _yolov8(values, threshold)
        elif out.layout == "yolov5":
            boxes, scores, classes = _yolov5(values, threshold)
        else:
            boxes, scores, classes = _boxes(values, threshold, spec.num_classes)
    finite = np.isfinite(boxes).all(axis=1) & np.isfinite(scores)
    boxes, scores, classes = boxes[finite], scores[finite], classes[finite]
    if out.coordinates == "normalized":
        boxes *= (spec.input.width, spec.input.height, spec.input.width, spec.input.height)
    boxes = transform.to_original(boxes)
    edges = np.rint(boxes).astype(np.int64)
    sized = (edges[:, 2] > edges[:, 0]) & (edges[:, 3] > edges[:, 1])
    boxes, scores, classes, edges = boxes[sized], scores[sized], classes[sized], edges[sized]
    if out.layout == "boxes":
        keep = np.argsort(-scores, kind="stable")[: out.max_detections]
    else:
        keep = nms(boxes, scores, classes, out.iou_threshold, out.max_detections)
    return [
        Detection(
            spec.labels[classes[i]],
            float(scores[i]),
            int(edges[i, 0]),
            int(edges[i, 1]),
            int(edges[i, 2] - edges[i, 0]),
            int(edges[i, 3] - edges[i, 1]),
        )
        for i in keep
    ]


def nms(
    boxes: NDArray[np.float64],
    scores: Floats,
    classes: NDArray[np.intp],
    iou_threshold: float,
    limit: int,
) -> NDArray[np.intp]:
    """Greedy class-aware non-maximum suppression over xyxy boxes of positive area.

    Returns the kept indices, best score first, at most ``limit`` (so at most ``limit``
    passes, each vectorised over the remaining boxes).
    """
    x1, y1, x2, y2 = boxes.T
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep: list[int] = []
    while order.size and len(keep) < limit:
        best, rest = order[0], order[1:]
        keep.append(int(best))
        w = np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest])
        h = np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest])
        inter = np.maximum(w, 0.0) * np.maximum(h, 0.0)
        iou = inter / (areas[best] + areas[rest] - inter)
        order = rest[(iou <= iou_threshold) | (classes[rest] != classes[best])]
    return np.asarray(keep, np.intp)


def _fixed(dim: int | str | None) -> bool:
    return isinstance(dim, int) and dim > 0


def _dims(dims: tuple[int | str | None, ...]) -> str:
    return ", ".join("?" if d is None else str(d) for d in dims)


def _check_row(row: NDArray[np.floating], spec: ModelSpec) -> None:
    try:
        check_output_shape(row.shape, spec)
    except BundleError as exc:
        raise InternalError(f"unexpected model output: {exc}") from exc


def _xywh_to_xyxy(cx: Floats, cy: Floats, w: Floats, h: Floats) -> NDArray[np.float64]:
    half_w, half_h = w / 2, h / 2
    return np.stack([cx - half_w, cy - half_h, cx + half_w, cy + half_h], axis=1).astype(np.float64)


def _yolov8(row: Floats, threshold: float) -> Candidates:
    """``[4+C, A]``: cx, cy, w, h, then one score per class; an anchor scores its best class."""
    class_scores = row[4:]
    best = class_scores.max(axis=0)
    idx = np.flatnonzero(best >= threshold)
    classes = class_scores[:, idx].argmax(axis=0)
    cx, cy, w, h = row[:4, idx]
    return _xywh_to_xyxy(cx, cy, w, h), best[idx], classes


def _yolov5(row: Floats, threshold: float) -> Candidates:
    """``[A, 5+C]``: cx, cy, w, h, objectness, class probabilities; score = obj * class."""
    # Class probabilities are at most 1, so objectness alone already rules most anchors out.
    idx = np.flatnonzero(row[:, 4] >= threshold)
    cand = row[idx]
    classes = cand[:, 5:].argmax(axis=1)
    scores = cand[:, 4] * cand[np.arange(idx.size), 5 + classes]
    ok = scores >= threshold
    cand = cand[ok]
    return _xywh_to_xyxy(cand[:, 0], cand[:, 1], cand[:, 2], cand[:, 3]), scores[ok], classes[ok]


def _boxes(row: Floats, threshold: float, num_classes: int) -> Candidates:
    """``[K, 6]``: x1, y1, x2, y2, score, class index; padding rows have no valid class."""
    scores, cls = row[:, 4], row[:, 5]
    ok = (scores >= threshold) & (cls >= 0) & (cls < num_classes) & (cls == np.floor(cls))
    return row[ok, :4].astype(np.float64), scores[ok], cls[ok].astype(np.intp)
