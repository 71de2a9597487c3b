"""Small ONNX models built with onnx.helper, whose answers are known in advance.

- ``colour_classifier``: mean of each input channel x 10 → logits for ["red", "green", "blue"]
  (input RGB), so a red image is "red" with a score we can compute.
- ``fixed_boxes_detector``: ignores the image and returns the same boxes (model-input pixels)
  in the ``boxes`` layout, so the mapping back to the original image can be checked exactly.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

OPSET = 17
COLOUR_LABELS = ["red", "green", "blue"]


def _save(model: onnx.ModelProto, directory: Path, spec: dict[str, Any]) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    onnx.checker.check_model(model)
    onnx.save(model, str(directory / "model.onnx"))
    (directory / "model.json").write_text(json.dumps(spec, indent=2))
    return directory


def colour_classifier(
    directory: Path,
    *,
    batch: int | str = "batch",
    size: int = 32,
    layout: str = "NCHW",
    **spec_overrides: Any,
) -> Path:
    shape: list[int | str] = [batch, 3, size, size] if layout == "NCHW" else [batch, size, size, 3]
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, shape)
    y = helper.make_tensor_value_info("logits", TensorProto.FLOAT, [batch, 3])
    weights = numpy_helper.from_array((np.eye(3) * 10).astype(np.float32), "weights")
    axes = [2, 3] if layout == "NCHW" else [1, 2]
    nodes = [
        helper.make_node("ReduceMean", ["images"], ["means"], axes=axes, keepdims=0),
        helper.make_node("MatMul", ["means", "weights"], ["logits"]),
    ]
    graph = helper.make_graph(nodes, "colour_classifier", [x], [y], [weights])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    spec: dict[str, Any] = {
        "name": "colour-classifier",
        "version": "1.0.0",
        "task": "classification",
        "labels": COLOUR_LABELS,
        "input": {"name": "images", "width": size, "height": size, "layout": layout, "color": "RGB"},
        "output": {"type": "logits"},
    }
    spec.update(spec_overrides)
    return _save(model, directory, spec)


def slow_classifier(directory: Path, *, convolutions: int = 8, channels: int = 64, size: int = 64) -> Path:
    """The colour classifier plus a chain of convolutions whose result is multiplied by zero:
    same answers, but tens of milliseconds per sample. For overload and loading tests."""
    colour_classifier(directory, size=size)
    model = onnx.load(str(directory / "model.onnx"))
    graph = model.graph
    graph.node[-1].output[0] = "fast_logits"
    rng = np.random.default_rng(0)
    previous, in_channels = "images", 3
    for index in range(convolutions):
        weight = rng.normal(0, 0.05, (channels, in_channels, 3, 3)).astype(np.float32)
        graph.initializer.append(numpy_helper.from_array(weight, f"conv_w{index}"))
        graph.node.append(
            helper.make_node("Conv", [previous, f"conv_w{index}"], [f"conv_{index}"], pads=[1, 1, 1, 1])
        )
        previous, in_channels = f"conv_{index}", channels
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(0.0, dtype=np.float32), "nothing"),
            numpy_helper.from_array(np.array([-1, 1], dtype=np.int64), "column"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("ReduceMean", [previous], ["busy"], axes=[1, 2, 3], keepdims=0),
            helper.make_node("Mul", ["busy", "nothing"], ["zero"]),
            helper.make_node("Reshape", ["zero", "column"], ["zero_column"]),
            helper.make_node("Add", ["fast_logits", "zero_column"], ["logits"]),
        ]
    )
    onnx.checker.check_model(model)
    onnx.save(model, str(directory / "model.onnx"))
    return directory


def failing_classifier(directory: Path) -> Path:
    """The colour classifier, except that any image with a pixel brighter than 0.5 makes the
    graph reshape 3 values into rows of 4: onnxruntime fails at run time (zeros, as in the
    warm-up, pass). A real engine failure, for the 336000 path."""
    colour_classifier(directory)
    model = onnx.load(str(directory / "model.onnx"))
    graph = model.graph
    graph.node[-1].output[0] = "raw_logits"
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array(0.5, dtype=np.float32), "half"),
            numpy_helper.from_array(np.array([-1, 3], dtype=np.int64), "base_shape"),
        ]
    )
    graph.node.extend(
        [
            helper.make_node("ReduceMax", ["images"], ["brightest"], keepdims=0),
            helper.make_node("Greater", ["brightest", "half"], ["bright"]),
            helper.make_node("Cast", ["bright"], ["extra"], to=TensorProto.INT64),
            helper.make_node("Unsqueeze", ["extra", "axis0"], ["extra_1d"]),
            helper.make_node("Concat", ["zero_1d", "extra_1d"], ["delta"], axis=0),
            helper.make_node("Add", ["base_shape", "delta"], ["target_shape"]),
            helper.make_node("Reshape", ["raw_logits", "target_shape"], ["logits"]),
        ]
    )
    graph.initializer.extend(
        [
            numpy_helper.from_array(np.array([0], dtype=np.int64), "axis0"),
            numpy_helper.from_array(np.array([0], dtype=np.int64), "zero_1d"),
        ]
    )
    onnx.checker.check_model(model)
    onnx.save(model, str(directory / "model.onnx"))
    return directory


def fixed_boxes_detector(directory: Path, boxes: list[list[float]], *, size: int = 320) -> Path:
    """``boxes``: rows of x1, y1, x2, y2, score, class index in model-input pixels."""
    table = np.array(boxes, dtype=np.float32)[None]  # [1, K, 6]
    x = helper.make_tensor_value_info("images", TensorProto.FLOAT, ["batch", 3, size, size])
    y = helper.make_tensor_value_info("detections", TensorProto.FLOAT, ["batch", len(boxes), 6])
    initializers = [
        numpy_helper.from_array(table, "table"),
        numpy_helper.from_array(np.array([0], dtype=np.int64), "first"),
        numpy_helper.from_array(np.array([len(boxes), 6], dtype=np.int64), "row_shape"),
    ]
    nodes = [
        helper.make_node("Shape", ["images"], ["input_shape"]),
        helper.make_node("Gather", ["input_shape", "first"], ["batch_dim"], axis=0),
        helper.make_node("Concat", ["batch_dim", "row_shape"], ["out_shape"], axis=0),
        helper.make_node("Expand", ["table", "out_shape"], ["detections"]),
    ]
    graph = helper.make_graph(nodes, "fixed_boxes", [x], [y], initializers)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)])
    spec = {
        "name": "fixed-boxes",
        "task": "detection",
        "labels": ["a", "b", "c"],
        "input": {"name": "images", "width": size, "height": size, "resize": "letterbox"},
        "output": {"layout": "boxes", "threshold": 0.3},
    }
    return _save(model, directory, spec)
