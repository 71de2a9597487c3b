"""The INT8 graph: ONNX Runtime's pre-processing, then static QDQ quantisation calibrated on
images fed through the server's own decode + preprocess (``Model.prepare``).

What is chosen here, and why (measured on the demo models, bench/README.md "INT8"):
- QDQ format, per-channel INT8 weights: what ORT's CPU kernels fuse into VNNI integer convs.
- Activations uint8 with MinMax calibration by default (``RECIPE``).
- The *output tail* stays FP32: every node after the graph's last weighted layer (Conv, Gemm,
  MatMul). There a detector decodes boxes (pixels, 0-256+) and sigmoid scores (0-1) into one
  tensor, and a shared 8-bit scale cannot hold both: scores collapse to a few steps.
- ``keep_fp32`` names more nodes (of the pre-processed graph) for a model that needs it.

``onnx`` (the ``quantize`` extra) is imported here only: pack time, never on the serving path.
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from inferpack.datasets.readers import read_dataset
from inferpack.model import Model
from inferpack.quantize import QuantizeError

log = logging.getLogger("inferpack.quantize")

ActivationType = Literal["uint8", "int8"]
CalibrationMethod = Literal["minmax", "entropy", "percentile"]
WEIGHTED_OPS = frozenset({"Conv", "ConvTranspose", "Gemm", "MatMul"})


@dataclass(frozen=True)
class Recipe:
    activation_type: ActivationType = "uint8"
    calibration_method: CalibrationMethod = "minmax"
    calibration_images: int = 200
    keep_fp32: tuple[str, ...] = ()  # besides the output tail
    keep_output_tail: bool = True
    per_channel: bool = True


RECIPE = Recipe()


@dataclass(frozen=True)
class Quantized:
    path: Path
    recipe: Recipe
    fp32_nodes: tuple[str, ...]
    calibration_images: int

    def describe(self) -> dict[str, Any]:
        """What ``variants.json`` records about how the INT8 graph was made."""
        recipe = asdict(self.recipe)
        del recipe["keep_fp32"], recipe["keep_output_tail"]
        return {**recipe, "calibration_images": self.calibration_images, "fp32_nodes": list(self.fp32_nodes)}


def output_tail(graph: Any) -> list[str]:
    """Names of the nodes that no weighted layer depends on: the graph's post-processing."""
    producers = {out: node for node in graph.node for out in node.output}
    feeds_weighted: set[str] = set()
    stack = [node for node in graph.node if node.op_type in WEIGHTED_OPS]
    while stack:
        node = stack.pop()
        for name in node.input:
            producer = producers.get(name)
            if producer is not None and producer.name not in feeds_weighted:
                feeds_weighted.add(producer.name)
                stack.append(producer)
    return [n.name for n in graph.node if n.op_type not in WEIGHTED_OPS and n.name not in feeds_weighted]


def calibration_files(root: Path, limit: int) -> list[Path]:
    """At most ``limit`` images of the set at ``root`` (any inferpack.datasets layout, labels
    unused), spread over the whole sorted list so every class folder is represented."""
    if not root.is_dir():
        raise QuantizeError(f"{root} is not a folder of calibration images")
    paths = [root / item.path for item in read_dataset(root).items]
    if len(paths) <= limit:
        return paths
    step = len(paths) / limit
    return [paths[int(i * step)] for i in range(limit)]


class _Calibration:
    """ORT's CalibrationDataReader protocol over image files, batch by batch, prepared lazily."""

    def __init__(self, model: Model, files: list[Path], input_name: str, batch_size: int) -> None:
        self._batches = self._iterate(model, files, input_name, batch_size)

    @staticmethod
    def _iterate(
        model: Model, files: list[Path], input_name: str, batch_size: int
    ) -> Iterator[dict[str, Any]]:
        for start in range(0, len(files), batch_size):
            samples = []
            for path in files[start : start + batch_size]:
                try:
                    samples.append(model.prepare(path.read_bytes()).sample)
                except Exception as exc:  # a bad calibration image is the vendor's to fix, by name
                    raise QuantizeError(f"calibration image {path}: {exc}") from None
            batch = np.stack(samples)
            if model.fixed_batch is not None and len(samples) < model.fixed_batch:
                pad = np.zeros((model.fixed_batch - len(samples), *batch.shape[1:]), batch.dtype)
                batch = np.concatenate([batch, pad])
            yield {input_name: batch}

    def get_next(self) -> dict[str, Any] | None:
        return next(self._batches, None)


def quantize(
    model: Model, fp32_graph: Path, calibration: Path, out: Path, recipe: Recipe = RECIPE
) -> Quantized:
    """Writes the INT8 graph of ``fp32_graph`` to ``out``, calibrated on images in ``calibration``."""
    try:
        import onnx
        from onnxruntime import quantization as q
        from onnxruntime.quantization.shape_inference import quant_pre_process
    except ImportError as exc:
        raise QuantizeError(f"--precision int8 needs {exc.name}: pip install 'inferpack[quantize]'") from None

    files = calibration_files(calibration, recipe.calibration_images)
    if not files:
        raise QuantizeError(f"{calibration}: no jpg/png/bmp images to calibrate on")
    with tempfile.TemporaryDirectory(prefix="inferpack-quantize-") as tmp:
        prepared = Path(tmp) / "prepared.onnx"
        # Shape inference and ORT's fusions first (symbolic shapes are not needed: an image model's
        # only dynamic axis is the batch, and that would need sympy).
        quant_pre_process(str(fp32_graph), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(str(prepared)).graph
        known = {n.name for n in graph.node}
        unknown = sorted(set(recipe.keep_fp32) - known)
        if unknown:
            raise QuantizeError(
                f"--keep-fp32 names nodes the pre-processed graph lacks: {', '.join(unknown)}"
            )
        keep = sorted({*recipe.keep_fp32, *(output_tail(graph) if recipe.keep_output_tail else ())})
        kind = q.QuantType.QUInt8 if recipe.activation_type == "uint8" else q.QuantType.QInt8
        method = {
            "minmax": q.CalibrationMethod.MinMax,
            "entropy": q.CalibrationMethod.Entropy,
            "percentile": q.CalibrationMethod.Percentile,
        }[recipe.calibration_method]
        reader = _Calibration(model, files, graph.input[0].name, model.fixed_batch or 8)
        try:
            q.quantize_static(
                str(prepared),
                str(out),
                reader,
                quant_format=q.QuantFormat.QDQ,
                per_channel=recipe.per_channel,
                activation_type=kind,
                weight_type=q.QuantType.QInt8,
                nodes_to_exclude=keep,
                calibrate_method=method,
            )
        except QuantizeError:
            raise
        except Exception as exc:  # ORT's quantiser raises its own untyped errors
            raise QuantizeError(f"onnxruntime could not quantise {fp32_graph}: {exc}") from exc
    log.info("quantised %s on %d images, %d nodes kept FP32", fp32_graph, len(files), len(keep))
    return Quantized(out, recipe, tuple(keep), len(files))
