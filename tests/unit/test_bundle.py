"""Invalid bundles are refused at load with a message that names the problem."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from tests.onnx_models import colour_classifier

from inferpack.bundle import read_bundle
from inferpack.errors import BundleError
from inferpack.model import Model
from inferpack.runtime.engine import EngineOptions


def load(directory: Path) -> Model:
    return Model.load(read_bundle(directory), "onnxruntime", EngineOptions())


def rewrite_spec(directory: Path, **changes: Any) -> None:
    spec = json.loads((directory / "model.json").read_text())
    for dotted, value in changes.items():
        target = spec
        *parents, key = dotted.split("__")
        for parent in parents:
            target = target.setdefault(parent, {})
        target[key] = value
    (directory / "model.json").write_text(json.dumps(spec))


def test_valid_bundle_loads(tmp_path: Path) -> None:
    model = load(colour_classifier(tmp_path / "m"))
    assert model.spec.labels == ("red", "green", "blue")
    assert model.fixed_batch is None


@pytest.mark.parametrize("missing", ["model.onnx", "model.json"])
def test_missing_file(tmp_path: Path, missing: str) -> None:
    directory = colour_classifier(tmp_path / "m")
    (directory / missing).unlink()
    with pytest.raises(BundleError, match=f"has no {missing}"):
        read_bundle(directory)


def test_not_a_directory(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match="not a directory"):
        read_bundle(tmp_path / "nowhere")


def test_model_json_not_json(tmp_path: Path) -> None:
    directory = colour_classifier(tmp_path / "m")
    (directory / "model.json").write_text("{labels: [")
    with pytest.raises(BundleError, match="not valid JSON"):
        read_bundle(directory)


def test_labels_count_differs_from_model_outputs(tmp_path: Path) -> None:
    directory = colour_classifier(tmp_path / "m")
    rewrite_spec(directory, labels=["red", "green", "blue", "purple"])
    with pytest.raises(BundleError, match="4"):
        load(directory)


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"task": "segmentation"}, "task"),
        ({"output__layout": "yolov9"}, "layout"),
        ({"input__layout": "CHW"}, "layout"),
        ({"input__resize": "crop"}, "resize"),
        ({"input__width": 0}, "width"),
        ({"input__std": [1, 0, 1]}, "std"),
        ({"labels": []}, "labels"),
        ({"labels": ["a", "a", "b"]}, "duplicates"),
        ({"output__threshold": 2}, "threshold"),
    ],
)
def test_bad_spec_values(tmp_path: Path, change: dict[str, Any], message: str) -> None:
    directory = colour_classifier(tmp_path / "m")
    rewrite_spec(directory, **change)
    with pytest.raises(BundleError, match=message):
        read_bundle(directory)


def test_input_shape_mismatch(tmp_path: Path) -> None:
    directory = colour_classifier(tmp_path / "m", size=32)
    rewrite_spec(directory, input__width=64, input__height=64)
    with pytest.raises(BundleError, match=r"shape .* but model.json describes"):
        load(directory)


def test_layout_mismatch(tmp_path: Path) -> None:
    directory = colour_classifier(tmp_path / "m", layout="NHWC")
    rewrite_spec(directory, input__layout="NCHW")
    with pytest.raises(BundleError, match="NCHW"):
        load(directory)


def test_wrong_input_name(tmp_path: Path) -> None:
    directory = colour_classifier(tmp_path / "m")
    rewrite_spec(directory, input__name="pixels")
    with pytest.raises(BundleError, match=r"'pixels'.*images"):
        load(directory)


def test_not_an_onnx_file(tmp_path: Path) -> None:
    directory = colour_classifier(tmp_path / "m")
    (directory / "model.onnx").write_bytes(b"definitely not protobuf")
    with pytest.raises(BundleError, match="cannot load the model"):
        load(directory)
