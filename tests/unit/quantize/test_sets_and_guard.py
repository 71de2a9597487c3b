"""Calibration and evaluation sets read as untrusted folders; the guard's limits; the output tail."""

from __future__ import annotations

from pathlib import Path

import onnx
import pytest

from inferpack.demo import demo_model_dir
from inferpack.demo.datasets import classification_dataset, detection_dataset
from inferpack.demo.shapes import LABELS
from inferpack.quantize import QuantizeError
from inferpack.quantize.evalset import read_eval_set
from inferpack.quantize.guard import Guard
from inferpack.quantize.int8 import WEIGHTED_OPS, calibration_files, output_tail
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


def test_an_eval_set_must_fit_the_model(tmp_path: Path) -> None:
    folder = classification_dataset(tmp_path / "set", 9, 7)
    assert len(read_eval_set(folder, "classification", LABELS).items) == 9
    with pytest.raises(QuantizeError, match=r"is a classes set \(classification\); the model does detection"):
        read_eval_set(folder, "detection", LABELS)
    with pytest.raises(QuantizeError, match="classes square are not among the model's labels"):
        read_eval_set(folder, "classification", ("circle", "triangle"))
    with pytest.raises(QuantizeError, match="is not a dataset folder"):
        read_eval_set(tmp_path / "missing", "classification", LABELS)


def test_a_broken_label_file_is_named_with_its_line(tmp_path: Path) -> None:
    folder = detection_dataset(tmp_path / "set", 2, 7)
    label = sorted((folder / "data").glob("*.txt"))[1]
    label.write_text(label.read_text() + "0 0.5 0.5 0.2\n")
    with pytest.raises(
        QuantizeError, match=rf"problem\(s\) in the evaluation set: data/{label.name}:\d+: has 4 values"
    ):
        read_eval_set(folder, "detection", LABELS)


def test_calibration_takes_any_layout_spread_and_never_follows_links(tmp_path: Path) -> None:
    folder = classification_dataset(tmp_path / "set", 12, 7)
    (folder / "circle" / "outside.jpg").symlink_to("/etc/hostname")
    files = calibration_files(folder, 100)
    assert len(files) == 12 and all(not f.is_symlink() for f in files)
    picked = calibration_files(folder, 4)
    assert len(picked) == 4 and picked[0] == files[0] and picked[-1].parent != files[0].parent
    assert len(calibration_files(detection_dataset(tmp_path / "yolo", 3, 7), 100)) == 3
    with pytest.raises(QuantizeError, match="is not a folder of calibration images"):
        calibration_files(tmp_path / "missing", 10)
