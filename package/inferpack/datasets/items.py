"""What a dataset is once read: its images, their truth, and the problems found reading it."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Literal, get_args

Format = Literal["yolo", "classes", "coco", "images"]
FORMATS: tuple[Format, ...] = get_args(Format)
Task = Literal["classification", "detection"]
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp")


@dataclass(frozen=True, order=True)
class Problem:
    """One thing wrong, where it is: ``file`` relative to the dataset root, ``line`` 1-based."""

    file: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.message}"


@dataclass(frozen=True)
class TruthBox:
    """A labelled object, relative to the image size: centre and size in 0-1 (the YOLO rows)."""

    label: str
    cx: float
    cy: float
    w: float
    h: float

    def pixels(self, width: int, height: int) -> tuple[float, float, float, float]:
        """x1, y1, x2, y2 in the image's pixels."""
        return (
            (self.cx - self.w / 2) * width,
            (self.cy - self.h / 2) * height,
            (self.cx + self.w / 2) * width,
            (self.cy + self.h / 2) * height,
        )


@dataclass(frozen=True)
class Item:
    """One image: ``path`` relative to the dataset root, and its truth when the format has one
    (``label`` for classification, ``boxes`` for detection)."""

    path: str
    label: str | None = None
    boxes: tuple[TruthBox, ...] | None = None

    @property
    def name(self) -> str:
        """The image's file name, as the seed's ``/yolo/output`` names it."""
        return self.path.rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Dataset:
    root: Path
    format: Format
    classes: tuple[str, ...]
    items: tuple[Item, ...]
    problems: tuple[Problem, ...] = ()

    @property
    def task(self) -> Task | None:
        """What the truth can evaluate: None for an unlabelled folder."""
        if self.format == "classes":
            return "classification"
        if self.format in ("yolo", "coco"):
            return "detection"
        return None
