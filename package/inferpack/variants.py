"""The precision variants a model bundle carries, and what each was measured to cost.

A bundle always has the FP32 graph ``model.onnx``; ``inferpack pack --precision int8`` adds
``model.int8.onnx`` and ``variants.json``, which records every variant's measured accuracy and
how the INT8 one was made::

    {"format": 1,
     "variants": {
       "fp32": {"accuracy": {"metric": "top1", "overall": 0.99, "per_class": {...}, "samples": 300}},
       "int8": {"accuracy": {...} | null,
                "quantization": {"activation_type": "uint8", "calibration_method": "minmax",
                                 "calibration_images": 200, "per_channel": true,
                                 "fp32_nodes": ["/head/Concat", ...]}}}}

File names are fixed per precision (never read from the JSON), so the file cannot point a
server outside its bundle. A bundle without ``variants.json`` is FP32 only. The same document
goes into the signed package manifest, and ``/info`` shows it.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, get_args

from inferpack.errors import BundleError

Precision = Literal["fp32", "int8"]
PrecisionSetting = Literal["auto", "fp32", "int8"]  # the server's ``precision`` setting
Metric = Literal["top1", "map50"]
PRECISIONS: tuple[Precision, ...] = get_args(Precision)
PRECISION_SETTINGS: tuple[PrecisionSetting, ...] = get_args(PrecisionSetting)
METRICS: tuple[Metric, ...] = get_args(Metric)
VARIANT_FILES: dict[Precision, str] = {"fp32": "model.onnx", "int8": "model.int8.onnx"}
VARIANTS_FILE = "variants.json"
FORMAT = 1


@dataclass(frozen=True)
class Accuracy:
    """A measure on a labelled set: overall and per class, each in [0, 1]."""

    metric: Metric
    overall: float
    per_class: dict[str, float]
    samples: int

    def as_json(self) -> dict[str, Any]:
        return {
            "metric": self.metric,
            "overall": round(self.overall, 6),
            "per_class": {k: round(v, 6) for k, v in self.per_class.items()},
            "samples": self.samples,
        }

    def line(self) -> str:
        """One line for the vendor: overall and per class, in percent."""
        classes = ", ".join(f"{k} {100 * v:.2f}" for k, v in self.per_class.items())
        return f"{self.metric} {100 * self.overall:.2f} ({classes}) on {self.samples} samples"


@dataclass(frozen=True)
class Variant:
    precision: Precision
    accuracy: Accuracy | None = None
    quantization: dict[str, Any] = field(default_factory=dict)

    def as_json(self) -> dict[str, Any]:
        document: dict[str, Any] = {"accuracy": self.accuracy.as_json() if self.accuracy else None}
        if self.quantization:
            document["quantization"] = self.quantization
        return document


def _fraction(value: Any, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise BundleError(f"{VARIANTS_FILE}: {what} must be a number in [0, 1], got {value!r}")
    if math.isnan(value):  # pragma: no cover - JSON has no NaN literal, Python's reader accepts it
        raise BundleError(f"{VARIANTS_FILE}: {what} is NaN")
    return float(value)


def parse_accuracy(raw: Any) -> Accuracy | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or raw.get("metric") not in METRICS:
        raise BundleError(f"{VARIANTS_FILE}: accuracy must be an object with metric one of {METRICS}")
    per_class = raw.get("per_class")
    samples = raw.get("samples")
    if not isinstance(per_class, dict) or not all(isinstance(k, str) for k in per_class):
        raise BundleError(f"{VARIANTS_FILE}: accuracy.per_class must map class names to numbers")
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise BundleError(f"{VARIANTS_FILE}: accuracy.samples must be a positive integer")
    return Accuracy(
        metric=raw["metric"],
        overall=_fraction(raw.get("overall"), "accuracy.overall"),
        per_class={k: _fraction(v, f"accuracy.per_class.{k}") for k, v in per_class.items()},
        samples=samples,
    )


def parse_variants(raw: Any) -> dict[Precision, Variant]:
    """The variants in a decoded ``variants.json`` (or the manifest's copy), checked."""
    if not isinstance(raw, dict) or raw.get("format") != FORMAT or not isinstance(raw.get("variants"), dict):
        raise BundleError(f"{VARIANTS_FILE} must be an object with format {FORMAT} and a variants object")
    variants: dict[Precision, Variant] = {}
    for name, entry in raw["variants"].items():
        if name not in PRECISIONS:
            raise BundleError(
                f"{VARIANTS_FILE}: unknown precision {name!r}; expected {', '.join(PRECISIONS)}"
            )
        if not isinstance(entry, dict):
            raise BundleError(f"{VARIANTS_FILE}: variant {name} must be an object")
        quantization = entry.get("quantization", {})
        if not isinstance(quantization, dict):
            raise BundleError(f"{VARIANTS_FILE}: {name}.quantization must be an object")
        variants[name] = Variant(name, parse_accuracy(entry.get("accuracy")), quantization)
    if "fp32" not in variants:
        raise BundleError(f"{VARIANTS_FILE} must list the fp32 variant (model.onnx)")
    return variants


def variants_json(variants: dict[Precision, Variant]) -> dict[str, Any]:
    return {"format": FORMAT, "variants": {p: v.as_json() for p, v in sorted(variants.items())}}


def read_variants(directory: Path) -> dict[Precision, Variant]:
    """The bundle's variants: ``variants.json`` checked against the graphs present, or FP32 only."""
    path = directory / VARIANTS_FILE
    if not path.exists():
        return {"fp32": Variant("fp32")}
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BundleError(f"{path} is not valid JSON: {exc}") from exc
    variants = parse_variants(raw)
    for precision in variants:
        graph = directory / VARIANT_FILES[precision]
        if graph.is_symlink() or not graph.is_file():
            raise BundleError(f"{VARIANTS_FILE} lists {precision} but the bundle has no {graph.name}")
    return variants
