"""Model bundles: a folder with ``model.onnx`` and the ``model.json`` that says how to use it.

``model.json`` fully describes the model, so a new model needs no code change::

    {
      "schema_version": 1,
      "name": "shapes-detector", "version": "1.0.0",
      "task": "detection",                      # or "classification"
      "labels": ["circle", "square", "triangle"],  # in model output order
      "input": {
        "name": "images", "width": 320, "height": 320,
        "layout": "NCHW",                        # or "NHWC"
        "color": "RGB",                          # or "BGR"
        "resize": "letterbox",                   # or "stretch"
        "pad_value": 114,                        # letterbox border, 0-255
        "scale": 0.00392156862745098,            # x * scale, then (x - mean) / std
        "mean": [0, 0, 0], "std": [1, 1, 1]
      },
      "output": {
        "name": null,                            # null: the model's first output
        # classification:
        "type": "logits",                        # or "probabilities"
        "multi_label": false,                    # true: sigmoid per class
        # detection:
        "layout": "yolov8",                      # [N,4+C,A]; "yolov5" [N,A,5+C]; "boxes" [N,K,6]
        "coordinates": "pixels",                 # or "normalized" (0..1 of the model input)
        "iou_threshold": 0.45,                   # class-aware NMS (not for "boxes")
        "threshold": 0.3,                        # recommended default score threshold
        "max_detections": 100
      }
    }

Only ``task``, ``labels`` and ``input.width``/``input.height`` are required; every other
field has the default shown. ``load_bundle`` checks the JSON and, against the ONNX graph,
the input name/shape and that the output size matches the label count and layout.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from inferpack.errors import BundleError
from inferpack.variants import VARIANT_FILES, Precision, Variant, read_variants

Task = Literal["classification", "detection"]
# The EasyDL route a task is served on: /{DEPLOY_NAME}/<route>. Clients code against it.
ROUTE_BY_TASK: dict[Task, str] = {"classification": "ImageClassification", "detection": "ObjectDetection"}
DetectionLayout = Literal["yolov8", "yolov5", "boxes"]

MODEL_FILE = "model.onnx"
SPEC_FILE = "model.json"
DEFAULT_THRESHOLD = 0.3


@dataclass(frozen=True)
class InputSpec:
    name: str | None
    width: int
    height: int
    layout: Literal["NCHW", "NHWC"] = "NCHW"
    color: Literal["RGB", "BGR"] = "RGB"
    resize: Literal["stretch", "letterbox"] = "stretch"
    pad_value: int = 114
    scale: float = 1.0 / 255.0
    mean: tuple[float, float, float] = (0.0, 0.0, 0.0)
    std: tuple[float, float, float] = (1.0, 1.0, 1.0)

    def tensor_shape(self, batch: int) -> tuple[int, int, int, int]:
        if self.layout == "NCHW":
            return (batch, 3, self.height, self.width)
        return (batch, self.height, self.width, 3)


@dataclass(frozen=True)
class OutputSpec:
    name: str | None = None
    type: Literal["logits", "probabilities"] = "logits"
    multi_label: bool = False
    layout: DetectionLayout = "yolov8"
    coordinates: Literal["pixels", "normalized"] = "pixels"
    iou_threshold: float = 0.45
    threshold: float = DEFAULT_THRESHOLD
    max_detections: int = 100


@dataclass(frozen=True)
class ModelSpec:
    task: Task
    labels: tuple[str, ...]
    input: InputSpec
    output: OutputSpec
    name: str = "model"
    version: str = "1"

    @property
    def num_classes(self) -> int:
        return len(self.labels)


@dataclass(frozen=True)
class Bundle:
    directory: Path
    spec: ModelSpec
    variants: dict[Precision, Variant] = field(default_factory=lambda: {"fp32": Variant("fp32")})

    @property
    def model_path(self) -> Path:
        return self.directory / MODEL_FILE

    def graph_path(self, precision: Precision) -> Path:
        """The ONNX graph of a variant the bundle carries (inferpack.variants)."""
        if precision not in self.variants:
            raise BundleError(f"model bundle {self.directory} has no {precision} variant")
        return self.directory / VARIANT_FILES[precision]


def _choice(section: str, raw: dict[str, Any], key: str, allowed: tuple[str, ...], default: str) -> str:
    value = raw.get(key, default)
    if value not in allowed:
        raise BundleError(f"{SPEC_FILE}: {section}.{key} is {value!r}; expected one of {', '.join(allowed)}")
    return str(value)


def _number(section: str, raw: dict[str, Any], key: str, default: float, lo: float, hi: float) -> float:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not lo <= value <= hi:
        raise BundleError(f"{SPEC_FILE}: {section}.{key} must be a number in [{lo}, {hi}], got {value!r}")
    return float(value)


def _positive_int(section: str, raw: dict[str, Any], key: str, default: int | None = None) -> int:
    value = raw.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise BundleError(f"{SPEC_FILE}: {section}.{key} must be a positive integer, got {value!r}")
    return value


def _triple(
    section: str, raw: dict[str, Any], key: str, default: tuple[float, float, float]
) -> tuple[float, float, float]:
    value = raw.get(key, list(default))
    if (
        not isinstance(value, list)
        or len(value) != 3
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise BundleError(f"{SPEC_FILE}: {section}.{key} must be a list of 3 numbers, got {value!r}")
    if key == "std" and any(v == 0 for v in value):
        raise BundleError(f"{SPEC_FILE}: input.std must not contain 0")
    return (float(value[0]), float(value[1]), float(value[2]))


def _optional_name(section: str, raw: dict[str, Any]) -> str | None:
    value = raw.get("name")
    if value is not None and not isinstance(value, str):
        raise BundleError(f"{SPEC_FILE}: {section}.name must be a string, got {value!r}")
    return value


def parse_spec(raw: Any) -> ModelSpec:
    """Builds a ModelSpec from the decoded model.json, naming the first problem found."""
    if not isinstance(raw, dict):
        raise BundleError(f"{SPEC_FILE} must hold a JSON object")
    task = _choice("", raw, "task", ("classification", "detection"), "")
    labels = raw.get("labels")
    if not isinstance(labels, list) or not labels or not all(isinstance(x, str) and x for x in labels):
        raise BundleError(f"{SPEC_FILE}: labels must be a non-empty list of non-empty strings")
    if len(set(labels)) != len(labels):
        raise BundleError(f"{SPEC_FILE}: labels contain duplicates")

    raw_in = raw.get("input")
    if not isinstance(raw_in, dict):
        raise BundleError(f"{SPEC_FILE}: input section is missing")
    input_spec = InputSpec(
        name=_optional_name("input", raw_in),
        width=_positive_int("input", raw_in, "width"),
        height=_positive_int("input", raw_in, "height"),
        layout=_choice("input", raw_in, "layout", ("NCHW", "NHWC"), "NCHW"),  # type: ignore[arg-type]
        color=_choice("input", raw_in, "color", ("RGB", "BGR"), "RGB"),  # type: ignore[arg-type]
        resize=_choice("input", raw_in, "resize", ("stretch", "letterbox"), "stretch"),  # type: ignore[arg-type]
        pad_value=int(_number("input", raw_in, "pad_value", 114, 0, 255)),
        scale=_number("input", raw_in, "scale", 1.0 / 255.0, -1e6, 1e6),
        mean=_triple("input", raw_in, "mean", (0.0, 0.0, 0.0)),
        std=_triple("input", raw_in, "std", (1.0, 1.0, 1.0)),
    )

    raw_out = raw.get("output", {})
    if not isinstance(raw_out, dict):
        raise BundleError(f"{SPEC_FILE}: output must be an object")
    multi_label = raw_out.get("multi_label", False)
    if not isinstance(multi_label, bool):
        raise BundleError(f"{SPEC_FILE}: output.multi_label must be true or false")
    output_spec = OutputSpec(
        name=_optional_name("output", raw_out),
        type=_choice("output", raw_out, "type", ("logits", "probabilities"), "logits"),  # type: ignore[arg-type]
        multi_label=multi_label,
        layout=_choice("output", raw_out, "layout", ("yolov8", "yolov5", "boxes"), "yolov8"),  # type: ignore[arg-type]
        coordinates=_choice("output", raw_out, "coordinates", ("pixels", "normalized"), "pixels"),  # type: ignore[arg-type]
        iou_threshold=_number("output", raw_out, "iou_threshold", 0.45, 0.0, 1.0),
        threshold=_number("output", raw_out, "threshold", DEFAULT_THRESHOLD, 0.0, 1.0),
        max_detections=_positive_int("output", raw_out, "max_detections", 100),
    )
    return ModelSpec(
        task=task,  # type: ignore[arg-type]
        labels=tuple(labels),
        input=input_spec,
        output=output_spec,
        name=str(raw.get("name", "model")),
        version=str(raw.get("version", "1")),
    )


def read_bundle(directory: str | Path) -> Bundle:
    """Reads and checks model.json; the ONNX graph itself is checked by the engine at load."""
    directory = Path(directory)
    if not directory.is_dir():
        raise BundleError(f"model bundle {directory} is not a directory")
    for required in (MODEL_FILE, SPEC_FILE):
        if not (directory / required).is_file():
            raise BundleError(f"model bundle {directory} has no {required}")
    try:
        raw = json.loads((directory / SPEC_FILE).read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{directory / SPEC_FILE} is not valid JSON: {exc}") from exc
    return Bundle(directory=directory, spec=parse_spec(raw), variants=read_variants(directory))
