"""variants.json: what a bundle carries, checked as untrusted input, and which variant a server runs."""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.onnx_models import colour_classifier

from inferpack.bundle import read_bundle
from inferpack.errors import BundleError, ConfigError
from inferpack.model import choose_precision
from inferpack.variants import VARIANTS_FILE, Accuracy, Variant, parse_variants, variants_json

ACCURACY = Accuracy("top1", 0.98, {"red": 1.0, "green": 0.96}, 50)


def with_variants(directory: Path, document: Any, int8_graph: bool = True) -> Path:
    bundle = colour_classifier(directory)
    if int8_graph:
        shutil.copyfile(bundle / "model.onnx", bundle / "model.int8.onnx")
    (bundle / VARIANTS_FILE).write_text(json.dumps(document))
    return bundle


def both() -> dict[str, Any]:
    return variants_json({"fp32": Variant("fp32", ACCURACY), "int8": Variant("int8", ACCURACY, {"x": 1})})


def test_round_trip_and_the_graph_per_precision(tmp_path: Path) -> None:
    bundle = read_bundle(with_variants(tmp_path / "m", both()))
    assert set(bundle.variants) == {"fp32", "int8"}
    assert bundle.variants["int8"].accuracy == ACCURACY and bundle.variants["int8"].quantization == {"x": 1}
    assert bundle.graph_path("int8") == tmp_path / "m" / "model.int8.onnx"
    assert parse_variants(variants_json(bundle.variants)) == bundle.variants


def test_a_bundle_without_variants_is_fp32_only(tmp_path: Path) -> None:
    bundle = read_bundle(colour_classifier(tmp_path / "m"))
    assert list(bundle.variants) == ["fp32"]
    with pytest.raises(BundleError, match="has no int8 variant"):
        bundle.graph_path("int8")


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        (lambda d: d["variants"].update(fp16={"accuracy": None}), "unknown precision 'fp16'"),
        (lambda d: d["variants"].pop("fp32"), "must list the fp32 variant"),
        (lambda d: d.update(format=2), "format 1"),
        (
            lambda d: d["variants"]["int8"]["accuracy"].update(overall=1.5),
            r"overall must be a number in \[0, 1\]",
        ),
        (lambda d: d["variants"]["int8"]["accuracy"].update(overall=True), "overall must be a number"),
        (lambda d: d["variants"]["int8"]["accuracy"].update(metric="f1"), "metric one of"),
        (lambda d: d["variants"]["int8"]["accuracy"].update(samples=0), "samples must be a positive integer"),
        (
            lambda d: d["variants"]["int8"].update(file="../../etc/passwd", quantization=[]),
            "must be an object",
        ),
    ],
)
def test_hostile_or_broken_variants_are_refused(tmp_path: Path, change: Any, reason: str) -> None:
    document = both()
    change(document)
    with pytest.raises(BundleError, match=reason):
        read_bundle(with_variants(tmp_path / "m", document))


def test_a_listed_variant_needs_its_graph_and_never_a_link(tmp_path: Path) -> None:
    with pytest.raises(BundleError, match=r"lists int8 but the bundle has no model\.int8\.onnx"):
        read_bundle(with_variants(tmp_path / "a", both(), int8_graph=False))
    linked = with_variants(tmp_path / "b", both(), int8_graph=False)
    (linked / "model.int8.onnx").symlink_to(linked / "model.onnx")
    with pytest.raises(BundleError, match=r"has no model\.int8\.onnx"):
        read_bundle(linked)


def test_choose_precision(tmp_path: Path) -> None:
    both_bundle = read_bundle(with_variants(tmp_path / "both", both()))
    fp32_only = read_bundle(colour_classifier(tmp_path / "fp32"))
    assert choose_precision(both_bundle, "auto", "onnxruntime") == "int8"
    assert choose_precision(both_bundle, "auto", "tensorrt") == "fp32"  # GPU engines: FP32/FP16
    assert choose_precision(both_bundle, "fp32", "onnxruntime") == "fp32"
    assert choose_precision(fp32_only, "auto", "onnxruntime") == "fp32"
    with pytest.raises(BundleError, match="has no int8 variant"):
        choose_precision(fp32_only, "int8", "onnxruntime")
    with pytest.raises(ConfigError, match="precision int8 runs on the onnxruntime"):
        choose_precision(both_bundle, "int8", "onnxruntime-cuda")
