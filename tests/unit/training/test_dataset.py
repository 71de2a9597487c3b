"""Data set reading and validation: the demo's own layouts pass, each flaw is named, nothing
outside the data set is read."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from inferpack.demo.shapes import LABELS
from inferpack.demo.shapes_dataset import write_classification_dataset, write_detection_dataset
from inferpack.training.dataset import DatasetInvalid, read_dataset


@pytest.fixture
def detection(tmp_path: Path) -> Path:
    return write_detection_dataset(tmp_path / "scenes", 6, seed=3)


def test_shapes_datasets_read_back(tmp_path: Path, detection: Path) -> None:
    dataset = read_dataset(detection)
    assert dataset.task == "detection" and dataset.labels == LABELS and len(dataset.samples) == 6
    assert all(s.boxes and all(0 <= v <= 1 for b in s.boxes for v in b[1:]) for s in dataset.samples)
    classes = read_dataset(write_classification_dataset(tmp_path / "shapes", 9, seed=3), "classification")
    assert classes.labels == LABELS and len(classes.samples) == 9
    assert all(s.image.parent.name == LABELS[s.label] for s in classes.samples)


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("0 0.5 0.5 0.2", "expected 5 numbers"),
        ("3 0.5 0.5 0.2 0.2", "class 3 is not in 0..2"),
        ("0 0.5 1.5 0.2 0.2", "fractions in [0, 1]"),
        ("0 0.5 0.5 0 0.2", "sizes above 0"),
        ("cat 0.5 0.5 0.2 0.2", "expected 'class cx cy w h'"),
    ],
)
def test_bad_label_rows_are_named(detection: Path, row: str, message: str) -> None:
    (detection / "data" / "scene_00002.txt").write_text(f"{row}\n")
    with pytest.raises(DatasetInvalid, match=r"scene_00002\.txt line 1") as info:
        read_dataset(detection)
    assert message in str(info.value)


def test_missing_label_file_and_bad_property(detection: Path) -> None:
    (detection / "data" / "scene_00001.txt").unlink()
    with pytest.raises(DatasetInvalid, match=r"no label file scene_00001\.txt"):
        read_dataset(detection)
    (detection / "property.json").write_text(json.dumps({"class_num": 4, "classes": list(LABELS)}))
    with pytest.raises(DatasetInvalid, match="class_num is 4 but 3 classes"):
        read_dataset(detection)
    (detection / "property.json").write_text("{not json")
    with pytest.raises(DatasetInvalid, match="not valid JSON"):
        read_dataset(detection)


def test_symlinks_out_of_the_dataset_are_not_followed(tmp_path: Path, detection: Path) -> None:
    secret = tmp_path / "secret.jpg"
    secret.write_bytes((detection / "data" / "scene_00000.jpg").read_bytes())
    os.symlink(secret, detection / "data" / "zz_link.jpg")
    (detection / "data" / "zz_link.txt").write_text("0 0.5 0.5 0.2 0.2\n")
    assert all(s.image.name != "zz_link.jpg" for s in read_dataset(detection).samples)
    os.symlink(detection, tmp_path / "linked")
    with pytest.raises(DatasetInvalid, match="not a data set folder"):
        read_dataset(tmp_path / "linked")


def test_classification_needs_two_non_empty_classes(tmp_path: Path) -> None:
    root = write_classification_dataset(tmp_path / "shapes", 9, seed=3)
    for image in (root / "square").iterdir():
        image.unlink()
    with pytest.raises(DatasetInvalid, match="square/ holds no jpg"):
        read_dataset(root)
    with pytest.raises(DatasetInvalid, match="is a classification data set, not detection"):
        (root / "square").rmdir()
        read_dataset(root, "detection")
