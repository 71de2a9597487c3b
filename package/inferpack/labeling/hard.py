"""Hard examples: a coefficient in [0, 1] and the reasons for it, per image, from the model's
own answers (ModelArts' ``@modelarts:hard``, ``hard_coefficient``, ``hard_reasons``).

Each reason has a strength in [0, 1]; the coefficient is 1 - prod(1 - strength), so one
strong reason makes an image hard and weak ones add up. An image is hard at ``HARD_AT``.

| id | reason                                                      | strength                     |
|----|-------------------------------------------------------------|------------------------------|
| 0  | no object found (detection)                                 | 0.5                          |
| 1  | low top-1 score (classification; or inside confidence_scope)| 1 - top1, doubled below 0.5  |
| 2  | small margin between the top two classes                    | 1 - (top1 - top2) / 0.8      |
| 3  | a box scores within NEAR_THRESHOLD of the threshold         | 1 - distance / NEAR          |
| 4  | the answer changes on the horizontally mirrored image       | 0.8                          |
| 5  | brightness far from the dataset's (when image_brightness)   | robust z-score beyond 3      |
| 6  | colourfulness far from the dataset's (image_colorfulness)   | robust z-score beyond 3      |
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from inferpack.labeling.signals import answer_labels

REASONS: dict[int, str] = {
    0: "no object found",
    1: "low top-1 score",
    2: "small margin between the top two classes",
    3: "a box scores near the threshold",
    4: "the answer changes on the horizontally mirrored image",
    5: "brightness far from the rest of the dataset",
    6: "colourfulness far from the rest of the dataset",
}
HARD_AT = 0.5
NEAR_THRESHOLD = 0.15
MARGIN_SCALE = 0.8
MIRROR_STRENGTH = 0.8
OUTLIER_Z = 3.0


@dataclass(frozen=True)
class Hardness:
    coefficient: float
    reasons: tuple[int, ...]

    @property
    def hard(self) -> bool:
        return self.coefficient >= HARD_AT


def parse_scope(value: Any) -> tuple[float, float] | None:
    """ModelArts' ``confidence_scope``, "0.0-0.5": top scores inside it are hard."""
    if value is None:
        return None
    try:
        low, high = (float(part) for part in str(value).split("-"))
    except ValueError:
        raise ValueError(f'confidence_scope must be "LOW-HIGH" such as "0.0-0.5", got {value!r}') from None
    if not 0.0 <= low <= high <= 1.0:
        raise ValueError(f"confidence_scope must lie in 0-1 with LOW ≤ HIGH, got {value!r}")
    return low, high


def _classification(results: Sequence[dict[str, Any]], scope: tuple[float, float] | None) -> dict[int, float]:
    scores = [float(r["score"]) for r in results] + [0.0, 0.0]
    top1, top2 = scores[0], scores[1]
    strengths = {2: max(0.0, 1.0 - (top1 - top2) / MARGIN_SCALE)}
    strengths[1] = min(1.0, 2.0 * (1.0 - top1)) if top1 < 0.5 else 1.0 - top1
    if scope is not None and scope[0] <= top1 <= scope[1]:
        strengths[1] = 1.0
    return strengths


def _detection(results: Sequence[dict[str, Any]], threshold: float) -> dict[int, float]:
    scores = [float(r["score"]) for r in results]
    strengths: dict[int, float] = {}
    if not any(score >= threshold for score in scores):
        strengths[0] = 0.5
    near = [1.0 - abs(score - threshold) / NEAR_THRESHOLD for score in scores]
    strengths[3] = max([0.0, *near])
    return strengths


def _outliers(values: Sequence[float | None]) -> list[float]:
    """Each value's strength as an outlier by robust z-score (median, MAD)."""
    known = np.array([v for v in values if v is not None], dtype=np.float64)
    if known.size < 3:
        return [0.0] * len(values)
    median = float(np.median(known))
    mad = max(float(np.median(np.abs(known - median))) * 1.4826, 1e-6)
    return [
        0.0 if v is None else float(np.clip((abs(v - median) / mad - OUTLIER_Z) / OUTLIER_Z, 0, 1))
        for v in values
    ]


def hardness(
    lines: Sequence[dict[str, Any]], task: str, threshold: float, config: dict[str, Any]
) -> list[Hardness]:
    """One ``Hardness`` per result line (an error line is hard for no reason: coefficient 0)."""
    scope = parse_scope(config.get("confidence_scope"))
    stats = [line.get("stats") or {} for line in lines]
    brightness = _outliers([s.get("brightness") for s in stats]) if config.get("image_brightness") else None
    colour = _outliers([s.get("colourfulness") for s in stats]) if config.get("image_colorfulness") else None
    found = []
    for number, line in enumerate(lines):
        if "error" in line:
            found.append(Hardness(0.0, ()))
            continue
        results = line["results"]
        strengths = (
            _classification(results, scope) if task == "classification" else _detection(results, threshold)
        )
        if "mirrored" in line and line["mirrored"] != answer_labels(results, task, threshold):
            strengths[4] = MIRROR_STRENGTH
        if brightness is not None:
            strengths[5] = brightness[number]
        if colour is not None:
            strengths[6] = colour[number]
        kept = {reason: s for reason, s in strengths.items() if s > 0.0}
        coefficient = 1.0 - float(np.prod([1.0 - s for s in kept.values()]))
        reasons = tuple(sorted(r for r, s in kept.items() if s >= HARD_AT / 2))
        found.append(Hardness(round(coefficient, 4), reasons))
    return found
