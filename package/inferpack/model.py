"""A servable model: a bundle's spec + an engine + the image pre/post-processing between them.

This is what the HTTP layer calls. ``prepare`` (decode + preprocess) and ``run_batch`` block
and run off the event loop; ``classify``/``detect`` are cheap and run anywhere.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import numpy as np

from inferpack.bundle import Bundle, ModelSpec
from inferpack.errors import BundleError, ConfigError
from inferpack.runtime.engine import Engine, EngineOptions, TensorInfo
from inferpack.runtime.factory import create_engine, resolve_backend
from inferpack.variants import Precision, PrecisionSetting
from inferpack.vision.decode import decode_image
from inferpack.vision.limits import ImageLimits
from inferpack.vision.postprocess import Detection, check_output_shape, classify, detect
from inferpack.vision.preprocess import Preprocessor, Transform

log = logging.getLogger("inferpack.model")


@dataclass(frozen=True)
class Prepared:
    """One request's model input, and how to map the model's boxes back to its image."""

    sample: np.ndarray
    transform: Transform


def _pick(tensors: tuple[TensorInfo, ...], name: str | None, kind: str) -> int:
    if name is None:
        return 0
    for index, tensor in enumerate(tensors):
        if tensor.name == name:
            return index
    found = ", ".join(t.name for t in tensors)
    raise BundleError(f"model.json names {kind} {name!r} but the ONNX model's {kind}s are: {found}")


def _check_input(spec: ModelSpec, tensor: TensorInfo) -> None:
    expected = spec.input.tensor_shape(batch=1)[1:]
    actual = tensor.shape[1:]
    if len(tensor.shape) != 4:
        raise BundleError(f"ONNX input {tensor.name!r} has shape {tensor.shape}; an image input is rank 4")
    mismatched = [(a, e) for a, e in zip(actual, expected, strict=True) if a is not None and a != e]
    if mismatched:
        raise BundleError(
            f"ONNX input {tensor.name!r} has shape {tensor.shape} but model.json describes "
            f"{spec.input.layout} {expected} (width {spec.input.width}, height {spec.input.height})"
        )
    if tensor.dtype != "float32":
        raise BundleError(f"ONNX input {tensor.name!r} is {tensor.dtype}; inferpack feeds float32")


def choose_precision(bundle: Bundle, setting: PrecisionSetting, backend: str) -> Precision:
    """``auto``: INT8 on the CPU when the bundle carries it, else FP32 (GPU engines run FP32/FP16).
    A forced precision the bundle lacks, or INT8 on a GPU backend, is refused, never replaced."""
    if setting == "auto":
        return "int8" if backend == "onnxruntime" and "int8" in bundle.variants else "fp32"
    if setting == "int8" and backend != "onnxruntime":
        raise ConfigError(f"precision int8 runs on the onnxruntime (CPU) backend, not {backend}")
    bundle.graph_path(setting)  # BundleError when the bundle has no such variant
    return setting


class Model:
    def __init__(
        self, bundle: Bundle, engine: Engine, limits: ImageLimits | None = None, precision: Precision = "fp32"
    ) -> None:
        self.spec = bundle.spec
        self.engine = engine
        self.precision = precision
        self.variants = bundle.variants
        self.limits = limits or ImageLimits()
        if len(engine.inputs) != 1:
            raise BundleError(f"the ONNX model has {len(engine.inputs)} inputs; an image model has one")
        self._input = engine.inputs[_pick(engine.inputs, self.spec.input.name, "input")]
        _check_input(self.spec, self._input)
        self._output_index = _pick(engine.outputs, self.spec.output.name, "output")
        check_output_shape(engine.outputs[self._output_index].shape[1:], self.spec)
        # A graph with a fixed batch is fed exactly that many samples (padded when fewer).
        self.fixed_batch = self._input.fixed_batch
        self._preprocessor = Preprocessor(self.spec.input)

    @classmethod
    def load(
        cls, bundle: Bundle, backend: str, options: EngineOptions, precision: PrecisionSetting = "auto"
    ) -> Model:
        started = time.perf_counter()
        chosen = choose_precision(bundle, precision, resolve_backend(backend, options.device_id).backend)
        engine = create_engine(backend, bundle.graph_path(chosen), options)
        model = cls(bundle, engine, precision=chosen)
        log.info(
            "loaded %s %s (%s, %s) with %s in %.2fs",
            model.spec.name,
            model.spec.version,
            model.spec.task,
            chosen,
            model.engine.backend,
            time.perf_counter() - started,
        )
        return model

    @property
    def max_batch_size(self) -> int | None:
        return self.fixed_batch

    @property
    def input_tensor(self) -> TensorInfo:
        return self._input

    @property
    def output_tensor(self) -> TensorInfo:
        return self.engine.outputs[self._output_index]

    @property
    def target_size(self) -> tuple[int, int]:
        return (self.spec.input.width, self.spec.input.height)

    def prepare(self, image_bytes: bytes) -> Prepared:
        image = decode_image(image_bytes, self.limits, self.target_size, resize=self.spec.input.resize)
        sample, transform = self._preprocessor(image)
        return Prepared(sample, transform)

    def run_batch(self, batch: np.ndarray) -> np.ndarray:
        count = batch.shape[0]
        if self.fixed_batch is not None and count < self.fixed_batch:
            padding = np.zeros((self.fixed_batch - count, *batch.shape[1:]), dtype=batch.dtype)
            batch = np.concatenate([batch, padding])
        outputs = self.engine.infer({self._input.name: batch})
        return outputs[self._output_index][:count]

    def warm_up(self, batch_sizes: tuple[int, ...]) -> float:
        """Runs zero batches so the first real request pays no lazy initialisation."""
        started = time.perf_counter()
        for size in batch_sizes:
            self.run_batch(np.zeros(self.spec.input.tensor_shape(size), dtype=np.float32))
        return time.perf_counter() - started

    def classify(self, row: np.ndarray, top_num: int) -> list[tuple[str, float]]:
        return classify(row, self.spec, top_num)

    def detect(self, row: np.ndarray, transform: Transform, threshold: float) -> list[Detection]:
        return detect(row, self.spec, transform, threshold)

    def easydl_results(
        self, row: np.ndarray, transform: Transform, top_num: int, threshold: float | None
    ) -> list[dict[str, Any]]:
        """One output row as EasyDL answers it: the ``top_num`` best classes, or the boxes
        scoring at least ``threshold`` (None: the model's) in the original image's pixels."""
        if self.spec.task == "classification":
            return [{"name": name, "score": score} for name, score in self.classify(row, top_num)]
        threshold = self.spec.output.threshold if threshold is None else threshold
        return [
            {
                "name": d.label,
                "score": d.score,
                "location": {"left": d.left, "top": d.top, "width": d.width, "height": d.height},
            }
            for d in self.detect(row, transform, threshold)
        ]

    def describe(self) -> dict[str, Any]:
        return {
            "name": self.spec.name,
            "version": self.spec.version,
            "task": self.spec.task,
            "labels": list(self.spec.labels),
            "input": {"width": self.spec.input.width, "height": self.spec.input.height},
            "engine": self.engine.describe(),
            "precision": self.describe_precision(),
        }

    def describe_precision(self) -> dict[str, Any]:
        """What runs, what else the bundle carries, and each variant's measured accuracy (/info)."""
        return {
            "running": self.precision,
            "variants": {p: v.as_json() for p, v in sorted(self.variants.items())},
        }
