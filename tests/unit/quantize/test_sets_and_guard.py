"""Calibration and evaluation sets read as untrusted folders; the guard's limits; the output tail."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from inferpack.demo import demo_model_dir
from inferpack.demo.export import write_set
from inferpack.demo.shapes import LABELS
from inferpack.quantize import QuantizeError
from inferpack.quantize.evalset import read_eval_set
from inferpack.quantize.guard import Guard
from inferpack.quantize.images import evenly, image_files
from inferpack.quantize.int8 import WEIGHTED_OPS, output_tail
from inferpack.variants import Accuracy


def test_the_output_tail_is_the_detector_decode_and_nothing_of_the_classifier() -> None:
    graph = onnx.load(str(demo_model_dir("shapes-detector") / "model.onnx")).graph
    tail = set(output_tail(graph))
    ops = {n.name: n.op_type for n in graph.node}
    assert {ops[name] for name in tail} >= {"Softplus", "Sigmoid", "Concat", "Div"}
    assert not {ops[name] for name in tail} & WEIGHTED_OPS
    assert graph.node[-1].name in tail  # the node producing the output
    classifier = onnx.load(str(demo_model_dir("shapes-classifier") / "model.onnx")).graph
    assert output_tail(classifier) == []  # it ends in its Gemm: nothing after the last layer


def test_guard_limits_overall_and_per_class() -> None:
    fp32 = Accuracy("top1", 0.95, {"a": 0.95, "b": 0.95}, 100)
    guard = Guard()
    assert guard.breaches(fp32, Accuracy("top1", 0.94, {"a": 0.93, "b": 0.95}, 100)) == []
    assert guard.breaches(fp32, Accuracy("top1", 0.935, {"a": 0.91, "b": 0.96}, 100)) == [
        "overall top1 drops 1.50 points (limit 1)",
        "class a drops 4.00 points (limit 3)",
    ]
    assert Guard(max_drop=2, max_class_drop=5).breaches(fp32, Accuracy("top1", 0.935, {"a": 0.91}, 1)) == [
        "class b drops 95.00 points (limit 5)"  # a class INT8 never got right is a full drop
    ]


def test_classification_set_layout(tmp_path: Path) -> None:
    folder = write_set("classification", tmp_path / "set", 7, 9)
    evalset = read_eval_set(folder, "classification", LABELS)
    assert len(evalset.samples) == 9 and {s.label for s in evalset.samples} <= set(LABELS)
    (folder / "hexagon").mkdir()
    (folder / "hexagon" / "x.jpg").write_bytes((next((folder / "circle").glob("*.jpg"))).read_bytes())
    with pytest.raises(QuantizeError, match=r"hexagon/x\.jpg: a classification set is DIR/<label>/IMAGE"):
        read_eval_set(folder, "classification", LABELS)


@pytest.mark.parametrize(
    ("line", "reason"),
    [("0 0.5 0.5 0.2", "expected 'class_index cx cy w h'"), ("3 0.5 0.5 0.2 0.2", "class index 0-2"),
     ("0 0.5 0.5 1.2 0.2", r"4 numbers in \[0, 1\]"), ("x 0.5 0.5 0.2 0.2", "expected")],
)  # fmt: skip
def test_detection_labels_are_checked_line_by_line(tmp_path: Path, line: str, reason: str) -> None:
    folder = write_set("detection", tmp_path / "set", 7, 2)
    label = folder / "labels" / "00001.txt"
    label.write_text(label.read_text() + line + "\n")
    with pytest.raises(QuantizeError, match=f"00001.txt:\\d+: .*{reason}"):
        read_eval_set(folder, "detection", LABELS)


def test_links_are_never_followed_and_sets_are_spread(tmp_path: Path) -> None:
    folder = write_set("classification", tmp_path / "set", 7, 12)
    (folder / "circle" / "outside.jpg").symlink_to("/etc/hostname")
    files = image_files(folder)
    assert len(files) == 12 and all(not f.is_symlink() for f in files)
    picked = evenly(files, 4)
    assert len(picked) == 4 and picked[0] == files[0] and picked[-1].parent != files[0].parent
    with pytest.raises(QuantizeError, match="is not a folder of images"):
        image_files(tmp_path / "missing")
