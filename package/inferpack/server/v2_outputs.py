"""A batch of model output rows as open inference protocol output tensors.

The raw output keeps the ONNX output's name. The post-processed results are the EasyDL
route's answers as tensors, one row per image:
- ``labels`` (BYTES) and ``scores`` (FP32), ``[N, K]``, best first;
- detection also ``boxes`` (FP32, ``[N, K, 4]``: left, top, width, height in the image's
  pixels) and ``counts`` (INT32, ``[N]``). An image with fewer than K boxes is padded with
  label "" and zeros past its count.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from inferpack.model import Model
from inferpack.server.request import DEFAULT_TOP_NUM
from inferpack.server.v2_tensors import Tensor
from inferpack.vision.preprocess import Transform

LABELS, SCORES, BOXES, COUNTS = "labels", "scores", "boxes", "counts"


def postprocessed_names(model: Model) -> tuple[str, ...]:
    if model.spec.task == "classification":
        return (LABELS, SCORES)
    return (LABELS, SCORES, BOXES, COUNTS)


def postprocessed_metadata(model: Model) -> list[dict[str, object]]:
    shapes: dict[str, tuple[str, list[int]]] = {
        LABELS: ("BYTES", [-1, -1]),
        SCORES: ("FP32", [-1, -1]),
        BOXES: ("FP32", [-1, -1, 4]),
        COUNTS: ("INT32", [-1]),
    }
    return [
        {"name": name, "datatype": shapes[name][0], "shape": shapes[name][1]}
        for name in postprocessed_names(model)
    ]


def raw_output(model: Model, rows: Sequence[np.ndarray]) -> Tensor:
    batch = np.stack(rows).astype(np.float32, copy=False)
    return Tensor(model.output_tensor.name, "FP32", batch.shape, batch)


def _classified(model: Model, rows: Sequence[np.ndarray], top_num: int) -> list[Tensor]:
    answers = [model.classify(row, top_num) for row in rows]
    shape = (len(rows), len(answers[0]))
    labels = tuple(name for answer in answers for name, _ in answer)
    scores = np.array([[score for _, score in answer] for answer in answers], np.float32).reshape(shape)
    return [Tensor(LABELS, "BYTES", shape, labels), Tensor(SCORES, "FP32", shape, scores)]


def _detected(
    model: Model, rows: Sequence[np.ndarray], transforms: Sequence[Transform], threshold: float
) -> list[Tensor]:
    answers = [
        model.detect(row, transform, threshold) for row, transform in zip(rows, transforms, strict=True)
    ]
    width = max((len(answer) for answer in answers), default=0)
    labels = [""] * (len(rows) * width)
    scores = np.zeros((len(rows), width), np.float32)
    boxes = np.zeros((len(rows), width, 4), np.float32)
    for i, answer in enumerate(answers):
        for j, d in enumerate(answer):
            labels[i * width + j] = d.label
            scores[i, j] = d.score
            boxes[i, j] = (d.left, d.top, d.width, d.height)
    counts = np.array([len(answer) for answer in answers], np.int32)
    return [
        Tensor(LABELS, "BYTES", scores.shape, tuple(labels)),
        Tensor(SCORES, "FP32", scores.shape, scores),
        Tensor(BOXES, "FP32", boxes.shape, boxes),
        Tensor(COUNTS, "INT32", counts.shape, counts),
    ]


def postprocessed(
    model: Model,
    rows: Sequence[np.ndarray],
    transforms: Sequence[Transform],
    top_num: int | None,
    threshold: float | None,
) -> list[Tensor]:
    """The EasyDL answers for these rows, with the same defaults as the EasyDL routes."""
    if model.spec.task == "classification":
        return _classified(model, rows, DEFAULT_TOP_NUM if top_num is None else top_num)
    return _detected(model, rows, transforms, model.spec.output.threshold if threshold is None else threshold)
