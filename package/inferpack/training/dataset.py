"""Training data sets on disk: the YOLO training API's layout for detection, class folders for
classification. ``read_dataset`` checks everything a training run would trip over and names
the first problem (the ``/validate`` message).

- detection: ``property.json`` (``{"class_num": 2, "classes": ["car", "truck"]}``) and ``data/``
  holding ``NAME.jpg|jpeg|png`` next to ``NAME.txt``, one ``class cx cy w h`` row per object,
  every number a fraction of the image in [0, 1] (an empty .txt: no objects).
- classification: one folder per class holding its images; labels in sorted folder order.

Only regular files inside the data set are read: symbolic links are refused, so a data set
cannot make the trainer read files from elsewhere.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from inferpack.bundle import Task

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
PROPERTY_FILE = "property.json"
MAX_LABEL_BYTES = 1 << 20

Box = tuple[int, float, float, float, float]  # class index, cx, cy, w, h (fractions of the image)


class DatasetInvalid(ValueError):
    """The data set cannot be trained on; the message says why."""


@dataclass(frozen=True)
class Sample:
    image: Path
    label: int = -1  # classification: the class index
    boxes: tuple[Box, ...] = ()  # detection


@dataclass(frozen=True)
class Dataset:
    root: Path
    task: Task
    labels: tuple[str, ...]
    samples: tuple[Sample, ...]


def _regular(path: Path) -> bool:
    return path.is_file() and not path.is_symlink()


def _images(folder: Path) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and _regular(p))


def _labels_of(root: Path) -> tuple[str, ...]:
    try:
        raw = json.loads((root / PROPERTY_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetInvalid(f"{PROPERTY_FILE} is not valid JSON: {exc}") from exc
    classes = raw.get("classes") if isinstance(raw, dict) else None
    if not isinstance(classes, list) or not classes or not all(isinstance(c, str) and c for c in classes):
        raise DatasetInvalid(f"{PROPERTY_FILE}: classes must be a non-empty list of non-empty strings")
    if len(set(classes)) != len(classes):
        raise DatasetInvalid(f"{PROPERTY_FILE}: classes contain duplicates")
    if raw.get("class_num", len(classes)) != len(classes):
        raise DatasetInvalid(
            f"{PROPERTY_FILE}: class_num is {raw['class_num']} but {len(classes)} classes are listed"
        )
    return tuple(classes)


def _boxes(text_file: Path, classes: int) -> tuple[Box, ...]:
    if not _regular(text_file):
        raise DatasetInvalid(f"data/{text_file.stem}: the image has no label file {text_file.name}")
    if text_file.stat().st_size > MAX_LABEL_BYTES:
        raise DatasetInvalid(f"data/{text_file.name} is larger than {MAX_LABEL_BYTES} bytes")
    boxes: list[Box] = []
    for number, line in enumerate(text_file.read_text(encoding="utf-8", errors="replace").splitlines(), 1):
        fields = line.split()
        if not fields:
            continue
        where = f"data/{text_file.name} line {number}"
        try:
            index, values = int(fields[0]), [float(f) for f in fields[1:]]
        except ValueError:
            raise DatasetInvalid(f"{where}: expected 'class cx cy w h', got {line.strip()!r}") from None
        if len(values) != 4:
            raise DatasetInvalid(f"{where}: expected 5 numbers, got {len(fields)}")
        if not 0 <= index < classes:
            raise DatasetInvalid(f"{where}: class {index} is not in 0..{classes - 1}")
        if not all(0.0 <= v <= 1.0 for v in values) or values[2] <= 0 or values[3] <= 0:
            raise DatasetInvalid(f"{where}: coordinates must be fractions in [0, 1] and sizes above 0")
        boxes.append((index, values[0], values[1], values[2], values[3]))
    return tuple(boxes)


def _detection(root: Path) -> Dataset:
    labels = _labels_of(root)
    data = root / "data"
    if not data.is_dir() or data.is_symlink():
        raise DatasetInvalid("no data/ folder next to property.json")
    samples = tuple(
        Sample(image, boxes=_boxes(image.with_suffix(".txt"), len(labels))) for image in _images(data)
    )
    return Dataset(root, "detection", labels, samples)


def _classification(root: Path) -> Dataset:
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.is_symlink())
    labels = tuple(p.name for p in folders)
    samples = tuple(Sample(image, label=i) for i, folder in enumerate(folders) for image in _images(folder))
    if len(labels) < 2:
        raise DatasetInvalid("a classification data set needs at least 2 class folders")
    empty = [p.name for p in folders if not _images(p)]
    if empty:
        raise DatasetInvalid(f"class folder {empty[0]}/ holds no jpg/jpeg/png image")
    return Dataset(root, "classification", labels, samples)


def read_dataset(root: Path, task: Task | None = None) -> Dataset:
    """The data set at ``root``, its task told by its layout (or checked against ``task``)."""
    if not root.is_dir() or root.is_symlink():
        raise DatasetInvalid(f"{root.name} is not a data set folder")
    dataset = _detection(root) if (root / PROPERTY_FILE).exists() else _classification(root)
    if task is not None and dataset.task != task:
        raise DatasetInvalid(f"{root.name} is a {dataset.task} data set, not {task}")
    if not dataset.samples:
        raise DatasetInvalid("the data set holds no jpg/jpeg/png image")
    return dataset
