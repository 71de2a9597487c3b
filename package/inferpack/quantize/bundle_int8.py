"""Pack's INT8 step: a copy of the vendor's bundle with ``model.int8.onnx`` and ``variants.json``
added, after the accuracy guard passed (or a QuantizeError carrying both measures if it did not).

Everything is written into a fresh folder the caller owns; the vendor's bundle is only read.
"""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from inferpack.bundle import Bundle, read_bundle
from inferpack.datasets.items import Dataset
from inferpack.model import Model
from inferpack.quantize import QuantizeError
from inferpack.quantize.evalset import measure, read_eval_set
from inferpack.quantize.guard import Guard
from inferpack.quantize.int8 import RECIPE, Recipe, quantize
from inferpack.runtime.engine import EngineOptions
from inferpack.runtime.factory import create_engine
from inferpack.variants import VARIANT_FILES, VARIANTS_FILE, Precision, Variant, variants_json

Report = Callable[[str], None]
_OPTIONS = EngineOptions(max_batch_size=8)


@dataclass(frozen=True)
class Int8Request:
    calibration: Path
    eval_set: Path | None = None
    recipe: Recipe = RECIPE
    guard: Guard = field(default_factory=Guard)


def _load(bundle: Bundle, graph: Path) -> Model:
    return Model(bundle, create_engine("onnxruntime", graph, _OPTIONS))


def _copy_bundle(source: Path, dest: Path) -> None:
    """The vendor's bundle without any variant files of an earlier pack (they are remade)."""
    skip = {VARIANT_FILES["int8"], VARIANTS_FILE}
    shutil.copytree(
        source, dest, ignore=lambda folder, names: [n for n in names if Path(folder) == source and n in skip]
    )


def build_int8_bundle(
    model_dir: Path, dest: Path, request: Int8Request, report: Report
) -> dict[Precision, Variant]:
    """Fills ``dest`` (which must not exist) with the bundle plus its INT8 variant; returns the variants."""
    _copy_bundle(model_dir, dest)
    bundle = read_bundle(dest)
    fp32 = _load(bundle, bundle.model_path)
    int8_path = dest / VARIANT_FILES["int8"]
    made = quantize(fp32, bundle.model_path, request.calibration, int8_path, request.recipe)
    report(
        f"quantised on {made.calibration_images} calibration images "
        f"({request.recipe.activation_type} activations, {request.recipe.calibration_method}; "
        f"{len(made.fp32_nodes)} nodes kept FP32)"
    )
    variants: dict[Precision, Variant] = {
        "fp32": Variant("fp32"),
        "int8": Variant("int8", None, made.describe()),
    }
    if request.eval_set is not None:
        evalset = read_eval_set(request.eval_set, bundle.spec.task, bundle.spec.labels)
        variants = _guarded(bundle, fp32, int8_path, evalset, request.guard, variants, report)
    else:
        report("WARNING no --eval set: the INT8 variant ships unmeasured (no accuracy guard)")
    (dest / VARIANTS_FILE).write_text(json.dumps(variants_json(variants), indent=2, sort_keys=True) + "\n")
    return read_bundle(dest).variants  # as the server will read them


def _guarded(
    bundle: Bundle,
    fp32: Model,
    int8_path: Path,
    evalset: Dataset,
    guard: Guard,
    variants: dict[Precision, Variant],
    report: Report,
) -> dict[Precision, Variant]:
    before = measure(fp32, evalset)
    after = measure(_load(bundle, int8_path), evalset)
    lines = [f"FP32 {before.line()}", f"INT8 {after.line()}"]
    breaches = guard.breaches(before, after)
    if breaches:
        raise QuantizeError(
            "INT8 refused by the accuracy guard: " + "; ".join(breaches) + "\n" + "\n".join(lines)
        )
    for line in lines:
        report(line)
    return {
        "fp32": Variant("fp32", before),
        "int8": Variant("int8", after, variants["int8"].quantization),
    }
