"""Validation finds every planted defect, each with its file and line, using the server's decoder."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from tests.conftest import encode, solid

from inferpack.datasets.items import Problem, TruthBox
from inferpack.datasets.readers import read_dataset
from inferpack.datasets.validate import validate
from inferpack.datasets.writers import write_yolo

CLASSES = ("car", "truck")
GOOD = (TruthBox("car", 0.5, 0.5, 0.2, 0.3),)


def noise(width: int, height: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)


def planted(root: Path) -> Path:
    """A YOLO dataset with one of each defect the issue names, and two good images."""
    good = [(f"good_{i}.jpg", encode(noise(64, 48, i)), GOOD) for i in range(2)]
    write_yolo(root, CLASSES, good)
    data = root / "data"
    (root / "property.json").write_text(
        '{\n  "class_num": 3,\n  "classes": ["car", "truck"],\n  "use_tiny": false\n}\n'
    )
    (data / "bad_rows.jpg").write_bytes(encode(noise(64, 48, 10)))
    (data / "bad_rows.txt").write_text(
        "0 0.5 0.5 0.2 0.2\n"
        "7 0.5 0.5 0.2 0.2\n"  # class out of range
        "1 1.3 0.5 0.2 0.2\n"  # coordinate outside 0-1
        "\n"
        "1 0.5 0.5 0.0 0.2\n"  # zero-size
        "1 0.5 0.5 0.2\n"  # four values
    )
    (data / "no_label.png").write_bytes(encode(noise(40, 40, 11), ".png"))
    (data / "orphan.txt").write_text("0 0.5 0.5 0.1 0.1\n")
    (data / "corrupt.jpg").write_bytes(encode(noise(64, 48, 12))[:300])
    (data / "corrupt.txt").write_text("")
    (data / "anim.gif").write_bytes(b"GIF89a" + bytes(20))
    (data / "zz_copy.jpg").write_bytes((data / "good_0.jpg").read_bytes())
    (data / "zz_copy.txt").write_text("")
    (data / "tiny.jpg").write_bytes(encode(solid((0, 0, 255), 10, 10)))
    (data / "tiny.txt").write_text("")
    (data / "huge.png").write_bytes(encode(noise(1100, 1000, 13), ".png"))  # over 3 MiB of PNG
    (data / "huge.txt").write_text("")
    return root


def test_every_planted_defect_is_found_with_its_file_and_line(tmp_path: Path) -> None:
    report = validate(read_dataset(planted(tmp_path / "ds")), model_labels=("car", "bus"))
    found = {(p.file, p.line): p.message for p in report.problems}
    expected = {
        ("property.json", 2): "class_num is 3 but classes lists 2 names",
        ("data/bad_rows.txt", 2): "class index 7 is out of range 0-1",
        ("data/bad_rows.txt", 3): "coordinate outside 0-1: 1.3 0.5 0.2 0.2",
        ("data/bad_rows.txt", 5): "zero-size box",
        ("data/bad_rows.txt", 6): "has 4 values",
        ("data/no_label.png", None): "missing label file data/no_label.txt",
        ("data/orphan.txt", None): "extra label file",
        ("data/corrupt.jpg", None): "Image decode failed",
        ("data/anim.gif", None): "is not an image the API accepts",
        ("data/zz_copy.jpg", None): "duplicate image: same bytes as data/good_0.jpg",
        ("data/tiny.jpg", None): "Invalid input size: image is 10x10 px",
        ("data/huge.png", None): "over the API's limit of 3145728",
        (
            "property.json",
            None,
        ): "classes the model does not know: truck (model labels: car, bus; not in the dataset: bus)",
    }
    for where, message in expected.items():
        assert where in found, f"{where} not reported; found {found}"
        assert message in found[where], (where, found[where])
    assert len(report.problems) == len(expected), report.message()
    assert not report.valid
    assert "data/bad_rows.txt:2: class index 7" in report.message()


def test_a_clean_dataset_is_valid(tmp_path: Path) -> None:
    write_yolo(tmp_path, CLASSES, [(f"img{i}.jpg", encode(noise(80, 60, i)), GOOD) for i in range(3)])
    report = validate(read_dataset(tmp_path), model_labels=("truck", "car", "bus"))  # order may differ
    assert report.valid, report.message()
    assert report.message() == "valid: 3 images, yolo layout, classes: car, truck"
    dataset = report.dataset
    assert dataset.task == "detection"
    assert [item.boxes for item in dataset.items] == [GOOD] * 3


def test_property_json_that_is_not_json_names_its_line(tmp_path: Path) -> None:
    write_yolo(tmp_path, CLASSES, [("a.jpg", encode(noise(64, 48, 1)), GOOD)])
    (tmp_path / "property.json").write_text('{\n  "class_num": 2,\n  "classes": ["car" "truck"]\n}\n')
    problems = read_dataset(tmp_path).problems
    assert problems[0] == Problem("property.json", 3, "is not valid JSON: Expecting ',' delimiter")


def test_class_folders(tmp_path: Path) -> None:
    for label, seed in (("cat", 1), ("cat", 2), ("dog", 3)):
        (tmp_path / label).mkdir(exist_ok=True)
        (tmp_path / label / f"{seed}.jpg").write_bytes(encode(noise(32, 32, seed)))
    (tmp_path / "stray.jpg").write_bytes(encode(noise(32, 32, 9)))
    (tmp_path / "dog" / "notes.md").write_text("hi")
    dataset = read_dataset(tmp_path)
    assert dataset.format == "classes" and dataset.classes == ("cat", "dog")
    assert [(i.path, i.label) for i in dataset.items] == [
        ("cat/1.jpg", "cat"),
        ("cat/2.jpg", "cat"),
        ("dog/3.jpg", "dog"),
    ]
    assert [str(p) for p in validate(dataset).problems] == [
        "dog/notes.md: is not an image the API accepts (jpg, jpeg, png, bmp)",
        "stray.jpg: is not directly inside a class folder (<label>/image)",
    ]


COCO = """{
 "images": [
  {"id": 1, "file_name": "a.jpg", "width": 100, "height": 50},
  {"id": 2, "file_name": "gone.jpg", "width": 10, "height": 10}
 ],
 "annotations": [
  {"id": 1, "image_id": 1, "category_id": 3, "bbox": [10, 5, 20, 10]},
  {"id": 2, "image_id": 1, "category_id": 9, "bbox": [10, 5, 20, 10]},
  {"id": 3, "image_id": 1, "category_id": 3, "bbox": [90, 5, 20, 10]},
  {"id": 4, "image_id": 1, "category_id": 3, "bbox": [10, 5, 0, 10]}
 ],
 "categories": [{"id": 3, "name": "car"}]
}
"""


def test_coco_problems_name_the_json_line(tmp_path: Path) -> None:
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.jpg").write_bytes(encode(noise(100, 50, 1)))
    (tmp_path / "instances.json").write_text(COCO)
    dataset = read_dataset(tmp_path)
    assert dataset.format == "coco" and dataset.classes == ("car",)
    assert dataset.items[0].path == "images/a.jpg"
    assert dataset.items[0].boxes == (TruthBox("car", 0.2, 0.2, 0.2, 0.2),)
    assert [str(p) for p in dataset.problems] == [
        "instances.json:4: image file gone.jpg is missing (looked in . and images/)",
        "instances.json:8: category_id 9 is not in categories",
        "instances.json:9: bbox [90, 5, 20, 10] lies outside the 100x50 image",
        "instances.json:10: zero-size box (w or h is 0)",
    ]
