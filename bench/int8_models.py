"""INT8 variants of the bench models, made with inferpack's own pack step (inferpack.quantize).

The ResNet-50-sized model has random weights, so its INT8 variant is for speed only (no accuracy
to guard): calibrated on the bench's synthetic JPEGs, cached beside the FP32 bundle. The demo
models are quantised with their held-out sets, which gives the accuracy figures.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from bench.images import synthetic_jpeg
from bench.models import CACHE, BenchModel, bundle_at, resnet50_bundle
from inferpack.demo.datasets import classification_dataset, detection_dataset
from inferpack.quantize.bundle_int8 import Int8Request, build_int8_bundle
from inferpack.quantize.int8 import RECIPE
from inferpack.variants import Precision, Variant

CALIBRATION_SEED = 11  # the demo models trained on seed 1 and validated on 2
HELD_OUT_SEED = {"classification": 4242, "detection": 4243}  # as tests/integration/test_demo_models.py
HELD_OUT_COUNT = {"classification": 300, "detection": 150}


def resnet50_int8_bundle(cache: Path = CACHE, calibration_images: int = 32) -> BenchModel:
    """The ResNet-50-sized bundle with model.int8.onnx beside model.onnx (built once)."""
    fp32 = resnet50_bundle(cache)
    target = cache / f"{fp32.directory.name}-int8"
    if not (target / "model.int8.onnx").is_file():
        print(f"quantising {fp32.directory.name} on {calibration_images} synthetic JPEGs ...", flush=True)
        with tempfile.TemporaryDirectory(prefix="calibration-") as tmp:
            for seed in range(calibration_images):
                (Path(tmp) / f"{seed:03d}.jpg").write_bytes(synthetic_jpeg(1000 + seed))
            build_int8_bundle(fp32.directory, target, Int8Request(Path(tmp)), print)
    return bundle_at(target)


def demo_accuracy(
    model: BenchModel, work: Path, calibration_images: int = RECIPE.calibration_images
) -> dict[Precision, Variant]:
    """FP32 and INT8 measured on the demo model's held-out set (the pack step's guard figures)."""
    write = classification_dataset if model.task == "classification" else detection_dataset
    calibration = write(work / "calibration", calibration_images, CALIBRATION_SEED)
    held_out = write(work / "held-out", HELD_OUT_COUNT[model.task], HELD_OUT_SEED[model.task])
    return build_int8_bundle(model.directory, work / "bundle", Int8Request(calibration, held_out), print)
