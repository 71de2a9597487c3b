"""A job's results as files other tools read: the seed's YOLO layout (images + ``cls cx cy w h``
rows, ready to train on), Pascal VOC XML, COCO JSON (detections with their ``score``), CSV and
JSON Lines, and Label Studio predictions JSON (to review proposals in Label Studio). Lines that
are errors are left out of every format but JSON Lines.

Pascal VOC boxes are 1-based inclusive pixels (xmin = left + 1, xmax = left + width), as the
VOC devkit reads them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal, get_args
from xml.sax.saxutils import escape

import orjson

from inferpack.datasets.items import Dataset, TruthBox
from inferpack.datasets.writers import property_json, yolo_rows
from inferpack.errors import InvalidArgument

ExportFormat = Literal["yolo", "voc", "coco", "csv", "jsonl", "labelstudio"]
EXPORT_FORMATS: tuple[ExportFormat, ...] = get_args(ExportFormat)
DETECTION_ONLY = ("yolo", "voc", "coco")
MEDIA_TYPES = {"yolo": "application/zip", "voc": "application/zip", "coco": "application/json",
               "csv": "text/csv", "jsonl": "application/jsonl",
               "labelstudio": "application/json"}  # fmt: skip
SUFFIXES = {"yolo": ".zip", "voc": ".zip", "coco": ".json", "csv": ".csv", "jsonl": ".jsonl",
            "labelstudio": ".json"}  # fmt: skip


def check_format(value: Any, task: str) -> ExportFormat:
    if value not in EXPORT_FORMATS:
        raise InvalidArgument(f"format must be one of {', '.join(EXPORT_FORMATS)}, got {value!r}")
    if value in DETECTION_ONLY and task != "detection":
        raise InvalidArgument(f"{value} holds boxes: a {task} job exports as csv or jsonl")
    fmt: ExportFormat = value
    return fmt


def _sorted(lines: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(lines, key=lambda line: int(line["index"]))


def _names(lines: Sequence[dict[str, Any]]) -> dict[int, str]:
    """A unique flat file name per image (``a/1.jpg`` and ``b/1.jpg`` both exist in class folders)."""
    taken: set[str] = set()
    names: dict[int, str] = {}
    for line in lines:
        name = line["image"].rsplit("/", 1)[-1]
        if name in taken:
            name = line["image"].replace("/", "__")
        taken.add(name)
        names[int(line["index"])] = name
    return names


def _boxes(line: dict[str, Any]) -> list[TruthBox]:
    width, height = line["width"], line["height"]
    return [
        TruthBox(
            r["name"],
            (r["location"]["left"] + r["location"]["width"] / 2) / width,
            (r["location"]["top"] + r["location"]["height"] / 2) / height,
            r["location"]["width"] / width,
            r["location"]["height"] / height,
        )
        for r in line["results"]
    ]


def _voc_xml(name: str, line: dict[str, Any]) -> str:
    objects = "".join(
        f"<object><name>{escape(r['name'])}</name><pose>Unspecified</pose><truncated>0</truncated>"
        f"<difficult>0</difficult><score>{r['score']:.6f}</score><bndbox>"
        f"<xmin>{r['location']['left'] + 1}</xmin><ymin>{r['location']['top'] + 1}</ymin>"
        f"<xmax>{r['location']['left'] + r['location']['width']}</xmax>"
        f"<ymax>{r['location']['top'] + r['location']['height']}</ymax></bndbox></object>"
        for r in line["results"]
    )
    return (
        f"<annotation><folder>images</folder><filename>{escape(name)}</filename><size>"
        f"<width>{line['width']}</width><height>{line['height']}</height><depth>3</depth></size>"
        f"<segmented>0</segmented>{objects}</annotation>\n"
    )


def _coco(lines: list[dict[str, Any]], labels: Sequence[str]) -> bytes:
    names = _names(lines)
    category = {label: i + 1 for i, label in enumerate(labels)}
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for image_id, line in enumerate(lines, start=1):
        images.append(
            {
                "id": image_id,
                "file_name": names[int(line["index"])],
                "width": line["width"],
                "height": line["height"],
            }
        )
        for r in line["results"]:
            loc = r["location"]
            annotations.append({
                "id": len(annotations) + 1, "image_id": image_id, "category_id": category[r["name"]],
                "bbox": [loc["left"], loc["top"], loc["width"], loc["height"]],
                "area": loc["width"] * loc["height"], "iscrowd": 0, "score": r["score"],
            })  # fmt: skip
    categories = [{"id": i, "name": label} for label, i in category.items()]
    return json.dumps({"images": images, "annotations": annotations, "categories": categories}).encode()


def _csv(lines: list[dict[str, Any]], task: str) -> bytes:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    if task == "classification":
        writer.writerow(["image", "label", "score", "error"])
        for line in lines:
            best = line.get("results", [{}])[0] if line.get("results") else {}
            writer.writerow([line["image"], best.get("name", ""), best.get("score", ""), _error(line)])
    else:
        writer.writerow(["image", "label", "score", "left", "top", "width", "height", "error"])
        for line in lines:
            if "error" in line:
                writer.writerow([line["image"], "", "", "", "", "", "", _error(line)])
            for r in line.get("results", []):
                loc = r["location"]
                writer.writerow(
                    [
                        line["image"],
                        r["name"],
                        r["score"],
                        loc["left"],
                        loc["top"],
                        loc["width"],
                        loc["height"],
                        "",
                    ]
                )
    return out.getvalue().encode()


def _label_studio_result(r: dict[str, Any], line: dict[str, Any], task: str) -> dict[str, Any]:
    """One result as Label Studio's ``rectanglelabels`` (percent of the image) or ``choices``."""
    if task == "classification":
        return {"from_name": "label", "to_name": "image", "type": "choices", "score": r["score"],
                "value": {"choices": [r["name"]]}}  # fmt: skip
    width, height, box = line["width"], line["height"], r["location"]
    value = {"x": 100 * box["left"] / width, "y": 100 * box["top"] / height,
             "width": 100 * box["width"] / width, "height": 100 * box["height"] / height,
             "rotation": 0, "rectanglelabels": [r["name"]]}  # fmt: skip
    return {"from_name": "label", "to_name": "image", "type": "rectanglelabels", "score": r["score"],
            "original_width": width, "original_height": height, "value": value}  # fmt: skip


def _label_studio(lines: list[dict[str, Any]], task: str) -> bytes:
    """Label Studio's import of pre-annotations: one task per image with its ``predictions``."""
    tasks = [
        {
            "data": {"image": line["image"]},
            "predictions": [
                {
                    "model_version": "inferpack",
                    "score": max((r["score"] for r in line["results"]), default=0.0),
                    "result": [_label_studio_result(r, line, task) for r in line["results"]],
                }
            ],
        }
        for line in lines
    ]
    return json.dumps(tasks, indent=1).encode()


def _error(line: dict[str, Any]) -> str:
    return str(line["error"]["error_msg"]) if "error" in line else ""


def export(
    fmt: ExportFormat,
    lines: Sequence[dict[str, Any]],
    dataset: Dataset,
    labels: Sequence[str],
    task: str,
    dest: Path,
) -> None:
    """Writes the export to ``dest`` (a temporary name first: a reader never sees half of it)."""
    ordered = _sorted(lines)
    good = [line for line in ordered if "error" not in line]
    fd, tmp = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.")
    try:
        with os.fdopen(fd, "wb") as out:
            if fmt == "jsonl":
                out.write(b"".join(orjson.dumps(line) + b"\n" for line in ordered))
            elif fmt == "csv":
                out.write(_csv(ordered, task))
            elif fmt == "coco":
                out.write(_coco(good, labels))
            elif fmt == "labelstudio":
                out.write(_label_studio(good, task))
            else:
                _zip(fmt, good, dataset, labels, out)
        os.replace(tmp, dest)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _zip(
    fmt: ExportFormat, lines: list[dict[str, Any]], dataset: Dataset, labels: Sequence[str], out: Any
) -> None:
    names = _names(lines)
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as archive:
        if fmt == "yolo":
            archive.writestr("property.json", property_json(labels))
        for line in lines:
            name = names[int(line["index"])]
            stem = name.rsplit(".", 1)[0]
            if fmt == "yolo":
                archive.write(dataset.root / line["image"], f"data/{name}", zipfile.ZIP_STORED)
                archive.writestr(f"data/{stem}.txt", yolo_rows(_boxes(line), labels))
            else:
                archive.writestr(f"Annotations/{stem}.xml", _voc_xml(name, line))
