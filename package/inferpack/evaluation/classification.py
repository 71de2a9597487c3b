"""Classification measures, as scikit-learn computes them (tested against it to 1e-6).

Per class, precision = TP / predicted, recall = TP / true, F1 their harmonic mean; 0 where a
denominator is 0 (scikit-learn's ``zero_division=0``). Macro F1 is the mean of the per-class
F1 over the classes given (not the F1 of mean precision and recall); micro F1 pools every
decision, which for one label per image equals the accuracy over those classes. MCC is the
multi-class Matthews correlation from the confusion matrix (0 when undefined).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ClassScores:
    precision: float
    recall: float
    f1: float
    support: int  # images truly of this class


@dataclass(frozen=True)
class ClassificationMeasures:
    classes: list[str]
    accuracy: float
    top_k: dict[int, float]  # k -> share of images whose class is among the k best
    macro_f1: float
    micro_f1: float
    mcc: float
    per_class: dict[str, ClassScores]
    confusion: list[list[int]]  # [true][predicted], in ``classes`` order


def _ratio(numerator: float, denominator: float) -> float:
    return numerator / denominator if denominator else 0.0


def evaluate_classification(
    truth: Sequence[str], ranked: Sequence[Sequence[str]], classes: Sequence[str], ks: Sequence[int] = (1, 5)
) -> ClassificationMeasures:
    """``ranked[i]``: image i's classes, best first (at least the best one)."""
    if len(truth) != len(ranked):
        raise ValueError(f"{len(ranked)} predictions for {len(truth)} images")
    if not truth:
        raise ValueError("no images to evaluate")
    names = list(classes) + sorted({t for t in truth if t not in classes})
    index = {name: i for i, name in enumerate(names)}
    predicted = [r[0] if r else "" for r in ranked]
    confusion = np.zeros((len(names), len(names)), np.int64)
    for t, p in zip(truth, predicted, strict=True):
        if p in index:
            confusion[index[t], index[p]] += 1
    per_class: dict[str, ClassScores] = {}
    for name in names:
        i = index[name]
        tp, predicted_here, true_here = (
            int(confusion[i, i]),
            int(confusion[:, i].sum()),
            int(confusion[i].sum()),
        )
        precision, recall = _ratio(tp, predicted_here), _ratio(tp, true_here)
        per_class[name] = ClassScores(precision, recall, _f1(precision, recall), true_here)
    correct = sum(t == p for t, p in zip(truth, predicted, strict=True))
    return ClassificationMeasures(
        classes=names,
        accuracy=correct / len(truth),
        top_k={k: sum(t in r[:k] for t, r in zip(truth, ranked, strict=True)) / len(truth) for k in ks},
        macro_f1=float(np.mean([s.f1 for s in per_class.values()])),
        micro_f1=_f1(_ratio(float(np.trace(confusion)), float(confusion.sum())), correct / len(truth)),
        mcc=_mcc(confusion),
        per_class=per_class,
        confusion=confusion.tolist(),
    )


def _f1(precision: float, recall: float) -> float:
    return _ratio(2 * precision * recall, precision + recall)


def _mcc(confusion: np.ndarray) -> float:
    c = confusion.astype(np.float64)
    t, p = c.sum(axis=1), c.sum(axis=0)
    samples, correct = c.sum(), np.trace(c)
    covariance = correct * samples - float(t @ p)
    denominator = (samples**2 - float(p @ p)) * (samples**2 - float(t @ t))
    return covariance / math.sqrt(denominator) if denominator > 0 else 0.0
