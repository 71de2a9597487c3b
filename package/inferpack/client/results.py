"""Typed answers of the EasyDL routes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Label:
    name: str
    score: float


@dataclass(frozen=True)
class Location:
    """A box in the pixels of the image as sent."""

    left: int
    top: int
    width: int
    height: int


@dataclass(frozen=True)
class Detection:
    name: str
    score: float
    location: Location


@dataclass(frozen=True)
class Classification:
    log_id: int
    results: tuple[Label, ...]  # best first

    @property
    def top(self) -> Label | None:
        return self.results[0] if self.results else None


@dataclass(frozen=True)
class Detections:
    log_id: int
    results: tuple[Detection, ...]  # best first


Prediction = Classification | Detections


def _location(raw: dict[str, Any]) -> Location:
    return Location(int(raw["left"]), int(raw["top"]), int(raw["width"]), int(raw["height"]))


def parse_prediction(answer: dict[str, Any], detection: bool) -> Prediction:
    """An EasyDL success body -> its typed form; KeyError/TypeError/ValueError on another shape."""
    items = answer["results"]
    if not isinstance(items, list):
        raise TypeError(f"results is {type(items).__name__}, not a list")
    log_id = int(answer["log_id"])
    if detection:
        return Detections(
            log_id,
            tuple(Detection(str(r["name"]), float(r["score"]), _location(r["location"])) for r in items),
        )
    return Classification(log_id, tuple(Label(str(r["name"]), float(r["score"])) for r in items))
