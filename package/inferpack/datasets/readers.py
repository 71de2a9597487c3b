"""Reading a dataset folder in any of its layouts into a ``Dataset``, noting each problem with
its file and line as it goes (``validate`` adds the image checks).

- ``yolo``: the seed's layout: ``property.json`` (``class_num``, ``classes``, ``use_tiny``) and
  ``data/`` with each image beside a same-named ``.txt`` of ``cls cx cy w h`` rows in 0-1;
- ``classes``: a folder per class, ``<label>/*.jpg``;
- ``coco``: one COCO detection JSON at the root, ``file_name`` relative to the root or ``images/``;
- ``images``: any folder of images, unlabelled (prediction only).
Symbolic links are never followed: a dataset is what is inside its folder.
"""

from __future__ import annotations

import json
import math
import os
import re
from pathlib import Path

from inferpack.datasets.coco import is_coco, read_coco
from inferpack.datasets.items import IMAGE_SUFFIXES, Dataset, Format, Item, Problem, TruthBox

PROPERTY_FILE = "property.json"
UNSUPPORTED = f"is not an image the API accepts ({', '.join(s[1:] for s in IMAGE_SUFFIXES)})"


def is_image_name(name: str) -> bool:
    return name.lower().endswith(IMAGE_SUFFIXES)


def files_under(root: Path) -> list[str]:
    """Regular files below ``root``, as sorted POSIX paths relative to it; hidden ones and links
    left out."""
    found: list[str] = []
    for folder, dirs, files in os.walk(root):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and not (Path(folder) / d).is_symlink())
        for name in files:
            path = Path(folder) / name
            if not name.startswith(".") and path.is_file() and not path.is_symlink():
                found.append(path.relative_to(root).as_posix())
    return sorted(found)


def detect_format(root: Path) -> Format:
    if (root / PROPERTY_FILE).is_file() or (root / "data").is_dir():
        return "yolo"
    if any(is_coco(path) for path in sorted(root.glob("*.json"))):
        return "coco"
    files = files_under(root)
    top_images = [f for f in files if "/" not in f and is_image_name(f)]
    nested = [f for f in files if f.count("/") == 1 and is_image_name(f)]
    folders = {f.split("/")[0] for f in nested}
    # Mostly images one folder down, in two folders or more: a folder per class (a stray image
    # at the top is then a problem to report, not a reason to lose the labels).
    return "classes" if len(folders) >= 2 and len(nested) > len(top_images) else "images"


def read_dataset(root: Path, format: Format | None = None) -> Dataset:
    format = format or detect_format(root)
    if format == "yolo":
        return read_yolo(root)
    if format == "coco":
        return read_coco(root)
    if format == "classes":
        return read_classes(root)
    return read_images(root)


def _line_of(text: str, key: str) -> int | None:
    match = re.search(rf'"{re.escape(key)}"\s*:', text)
    return text.count("\n", 0, match.start()) + 1 if match else None


def _read_property(root: Path, problems: list[Problem]) -> tuple[str, ...]:
    path = root / PROPERTY_FILE
    if not path.is_file():
        problems.append(Problem(PROPERTY_FILE, None, "is missing: it names the classes"))
        return ()
    text = path.read_text(encoding="utf-8", errors="replace")
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        problems.append(Problem(PROPERTY_FILE, exc.lineno, f"is not valid JSON: {exc.msg}"))
        return ()
    if not isinstance(document, dict):
        problems.append(Problem(PROPERTY_FILE, 1, "must be a JSON object"))
        return ()
    classes = document.get("classes")
    if not isinstance(classes, list) or not all(isinstance(c, str) and c for c in classes):
        problems.append(Problem(PROPERTY_FILE, _line_of(text, "classes"), "classes must be a list of names"))
        return ()
    duplicates = sorted({c for c in classes if classes.count(c) > 1})
    if duplicates:
        problems.append(
            Problem(PROPERTY_FILE, _line_of(text, "classes"), f"classes repeats {', '.join(duplicates)}")
        )
    class_num = document.get("class_num")
    if isinstance(class_num, bool) or not isinstance(class_num, int):
        problems.append(Problem(PROPERTY_FILE, _line_of(text, "class_num"), "class_num must be an integer"))
    elif class_num != len(classes):
        problems.append(
            Problem(
                PROPERTY_FILE,
                _line_of(text, "class_num"),
                f"class_num is {class_num} but classes lists {len(classes)} names",
            )
        )
    return tuple(classes)


def _read_rows(
    root: Path, label_file: str, classes: tuple[str, ...], problems: list[Problem]
) -> list[TruthBox]:
    boxes: list[TruthBox] = []
    text = (root / label_file).read_text(encoding="utf-8", errors="replace")
    for number, line in enumerate(text.splitlines(), start=1):
        fields = line.split()
        if not fields:
            continue
        if len(fields) != 5:
            problems.append(Problem(label_file, number, f"has {len(fields)} values; a row is: cls cx cy w h"))
            continue
        if not fields[0].isascii() or not fields[0].isdigit():
            problems.append(Problem(label_file, number, f"class index {fields[0]!r} is not a whole number"))
            continue
        index = int(fields[0])
        try:
            cx, cy, w, h = (float(v) for v in fields[1:])
        except ValueError:
            problems.append(Problem(label_file, number, "coordinates must be numbers"))
            continue
        if index >= len(classes):
            problems.append(
                Problem(label_file, number, f"class index {index} is out of range 0-{len(classes) - 1}")
            )
            continue
        if not all(math.isfinite(v) and 0.0 <= v <= 1.0 for v in (cx, cy, w, h)):
            problems.append(Problem(label_file, number, f"coordinate outside 0-1: {' '.join(fields[1:])}"))
            continue
        if w == 0.0 or h == 0.0:
            problems.append(Problem(label_file, number, "zero-size box (w or h is 0)"))
            continue
        boxes.append(TruthBox(classes[index], cx, cy, w, h))
    return boxes


def read_yolo(root: Path) -> Dataset:
    problems: list[Problem] = []
    classes = _read_property(root, problems)
    if not (root / "data").is_dir():
        problems.append(Problem("data", None, "is missing: the images and labels go in data/"))
        return Dataset(root, "yolo", classes, (), tuple(problems))
    files = [f"data/{name}" for name in files_under(root / "data")]
    stems = {f.rsplit(".", 1)[0]: f for f in files if is_image_name(f)}
    labels = {f.rsplit(".", 1)[0]: f for f in files if f.lower().endswith(".txt")}
    items: list[Item] = []
    for file in files:
        stem = file.rsplit(".", 1)[0]
        if file.lower().endswith(".txt"):
            if stem not in stems:
                problems.append(Problem(file, None, "extra label file: no image of the same name"))
        elif not is_image_name(file):
            problems.append(Problem(file, None, UNSUPPORTED))
        elif stem not in labels:
            problems.append(Problem(file, None, f"missing label file {stem}.txt"))
            items.append(Item(file, boxes=()))
        else:
            items.append(Item(file, boxes=tuple(_read_rows(root, labels[stem], classes, problems))))
    return Dataset(root, "yolo", classes, tuple(items), tuple(problems))


def read_classes(root: Path) -> Dataset:
    problems: list[Problem] = []
    items: list[Item] = []
    for file in files_under(root):
        folder, _, _ = file.rpartition("/")
        if not is_image_name(file):
            problems.append(Problem(file, None, UNSUPPORTED))
        elif not folder or "/" in folder:
            problems.append(Problem(file, None, "is not directly inside a class folder (<label>/image)"))
        else:
            items.append(Item(file, label=folder))
    classes = tuple(sorted({item.label for item in items if item.label is not None}))
    return Dataset(root, "classes", classes, tuple(items), tuple(problems))


def read_images(root: Path) -> Dataset:
    problems: list[Problem] = []
    items: list[Item] = []
    for file in files_under(root):
        if is_image_name(file):
            items.append(Item(file))
        else:
            problems.append(Problem(file, None, UNSUPPORTED))
    return Dataset(root, "images", (), tuple(items), tuple(problems))
