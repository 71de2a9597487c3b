"""COCO detection JSON: ``images``, ``annotations`` (``bbox`` = x, y, w, h in pixels) and
``categories``, in one ``*.json`` at the dataset root; ``file_name`` is relative to the root,
or to ``images/``. Problems name the JSON file and the line each entry starts on."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path
from typing import Any

from inferpack.datasets.items import Dataset, Item, Problem, TruthBox

_KEYS = ("images", "annotations", "categories")


def is_coco(path: Path) -> bool:
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError):
        return False
    return isinstance(document, dict) and all(key in document for key in _KEYS)


def element_lines(text: str, key: str, count: int) -> list[int | None]:
    """The line each element of the top-level array ``key`` starts on (None where the text
    cannot be followed, e.g. the key also appears inside a string before the array)."""
    match = re.search(rf'"{key}"\s*:\s*\[', text)
    lines: list[int | None] = []
    decoder = json.JSONDecoder()
    position = match.end() if match else len(text)
    while match and len(lines) < count:
        while position < len(text) and text[position] in " \t\r\n,":
            position += 1
        try:
            _, end = decoder.raw_decode(text, position)
        except json.JSONDecodeError:
            break
        lines.append(text.count("\n", 0, position) + 1)
        position = end
    return lines + [None] * (count - len(lines))


def _positive_number(value: Any) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value) and value > 0
    )


def read_coco(root: Path) -> Dataset:
    json_file = next(path for path in sorted(root.glob("*.json")) if is_coco(path))
    name = json_file.name
    text = json_file.read_text(encoding="utf-8")
    document = json.loads(text)
    problems: list[Problem] = []
    images, annotations, categories = (document[key] for key in _KEYS)
    if not all(isinstance(value, list) for value in (images, annotations, categories)):
        return Dataset(
            root, "coco", (), (), (Problem(name, 1, "images, annotations, categories must be lists"),)
        )

    category_names: dict[Any, str] = {}
    for line, category in zip(element_lines(text, "categories", len(categories)), categories, strict=True):
        if not isinstance(category, dict) or not isinstance(category.get("name"), str):
            problems.append(Problem(name, line, "a category needs an id and a name"))
            continue
        category_names[category.get("id")] = category["name"]
    classes = tuple(category_names.values())  # as listed

    image_entries: dict[Any, tuple[str, int, int]] = {}
    for line, image in zip(element_lines(text, "images", len(images)), images, strict=True):
        file_name = image.get("file_name") if isinstance(image, dict) else None
        if not isinstance(file_name, str) or not (
            _positive_number(image.get("width")) and _positive_number(image.get("height"))
        ):
            problems.append(Problem(name, line, "an image needs a file_name, a width and a height"))
            continue
        path = _resolve(root, file_name)
        if path is None:
            problems.append(
                Problem(name, line, f"image file {file_name} is missing (looked in . and images/)")
            )
            continue
        image_entries[image.get("id")] = (path, int(image["width"]), int(image["height"]))

    boxes: dict[Any, list[TruthBox]] = {image_id: [] for image_id in image_entries}
    for line, annotation in zip(
        element_lines(text, "annotations", len(annotations)), annotations, strict=True
    ):
        if not isinstance(annotation, dict):
            problems.append(Problem(name, line, "an annotation must be an object"))
            continue
        image_id, category_id, bbox = (
            annotation.get("image_id"),
            annotation.get("category_id"),
            annotation.get("bbox"),
        )
        if category_id not in category_names:
            problems.append(Problem(name, line, f"category_id {category_id!r} is not in categories"))
        elif image_id not in image_entries:
            problems.append(
                Problem(name, line, f"image_id {image_id!r} is not in images (or its file is missing)")
            )
        elif not (isinstance(bbox, list) and len(bbox) == 4 and all(_number(v) for v in bbox)):
            problems.append(Problem(name, line, "bbox must be 4 numbers: x, y, w, h in pixels"))
        else:
            _, width, height = image_entries[image_id]
            x, y, w, h = (float(v) for v in bbox)
            if w <= 0 or h <= 0:
                problems.append(Problem(name, line, "zero-size box (w or h is 0)"))
            elif x < 0 or y < 0 or x + w > width + 0.5 or y + h > height + 0.5:
                problems.append(Problem(name, line, f"bbox {bbox} lies outside the {width}x{height} image"))
            else:
                label = category_names[category_id]
                boxes[image_id].append(
                    TruthBox(label, (x + w / 2) / width, (y + h / 2) / height, w / width, h / height)
                )
    items = tuple(
        Item(path, boxes=tuple(boxes[image_id])) for image_id, (path, _, _) in image_entries.items()
    )
    return Dataset(root, "coco", classes, items, tuple(problems))


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _resolve(root: Path, file_name: str) -> str | None:
    if file_name.startswith("/") or ".." in file_name.split("/") or "\\" in file_name:
        return None
    for candidate in (file_name, f"images/{file_name}"):
        path = root / candidate
        if path.is_file() and not path.is_symlink():
            return candidate
    return None
