"""INT8 deploy packages end to end: pack with the accuracy guard, verify, install over the process
runtime, serve over HTTP within the guard, update to INT8 and roll back to FP32; and the guard's
refusal through the CLI, with both measures printed and nothing written.

The demo models' real weights, calibrated and evaluated on their synthetic shapes (seeds the
training never used), through the server's own decode, preprocess and postprocess.
"""

from __future__ import annotations

import json
import socket
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from inferpack.cli import main
from inferpack.demo import demo_model_dir
from inferpack.demo.datasets import classification_dataset, detection_dataset
from inferpack.deploy.installer import Installer, InstallOptions
from inferpack.deploy.verify import verify_package
from inferpack.quantize.bundle_int8 import Int8Request, build_int8_bundle
from inferpack.quantize.evalset import read_eval_set
from tests.conftest import b64
from tests.support.packages import Vendor, fake_wheels, license_here, make_package, make_vendor, unpack

NAME = "shapesint8"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def get(port: int, path: str, body: dict[str, Any] | None = None) -> Any:
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data)
    with NO_PROXY.open(request, timeout=30) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def vendor(tmp_path_factory: pytest.TempPathFactory) -> Vendor:
    return make_vendor(tmp_path_factory.mktemp("vendor"))


def test_int8_package_installs_serves_within_the_guard_and_rolls_back(tmp_path: Path, vendor: Vendor) -> None:
    calibration = classification_dataset(tmp_path / "calibration", 80, 11)
    evaluation = classification_dataset(tmp_path / "eval", 150, 4242)
    lines: list[str] = []
    variants = build_int8_bundle(
        demo_model_dir("shapes-classifier"),
        tmp_path / "bundle",
        Int8Request(calibration, evaluation),
        lines.append,
    )
    fp32, int8 = variants["fp32"].accuracy, variants["int8"].accuracy
    assert fp32 is not None and int8 is not None and fp32.samples == int8.samples == 150
    assert lines[-2:] == [f"FP32 {fp32.line()}", f"INT8 {int8.line()}"]
    assert variants["int8"].quantization["activation_type"] == "uint8"

    wheels = fake_wheels(tmp_path / "wheels")
    (tmp_path / "out").mkdir()
    v1, _ = make_package(tmp_path / "out", vendor, demo_model_dir("shapes-classifier"), wheels, name=NAME)
    v2, manifest = make_package(
        tmp_path / "out",
        vendor,
        tmp_path / "bundle",
        wheels,
        name=NAME,
        version="2.0.0",
        package_type="update",
    )
    assert manifest.variants == variants  # signed: precision and accuracy in manifest.json
    v2_root = unpack(v2, tmp_path / "v2")
    assert verify_package(v2_root, pinned_key=vendor.public, in_place=True).variants == variants

    port = free_port()
    installer = Installer(tmp_path / "work", out=lambda line: None)
    options = InstallOptions(
        port=port, runtime="process", license_file=license_here(vendor, NAME, tmp_path / f"{NAME}.lic")
    )
    installer.install(NAME, unpack(v1, tmp_path / "v1"), options)
    try:
        assert get(port, "/info")["precision"]["running"] == "fp32"
        installer.update(NAME, v2_root)
        info = get(port, "/info")["precision"]
        assert info["running"] == "int8"
        assert info["variants"]["int8"]["accuracy"] == int8.as_json()
        evalset = read_eval_set(evaluation, "classification", ("circle", "square", "triangle"))
        answers = [
            get(port, f"/{NAME}/ImageClassification", {"image": b64((evaluation / i.path).read_bytes())})
            for i in evalset.items
        ]
        right = [a["results"][0]["name"] == i.label for a, i in zip(answers, evalset.items, strict=True)]
        served = sum(right) / len(right)
        assert served == pytest.approx(int8.overall)  # HTTP gives what pack measured...
        assert 100 * (fp32.overall - served) <= 1.0  # ...within the guard
        installer.rollback(NAME)  # the variant is part of the version: back to 1.0.0's FP32
        assert get(port, "/info")["precision"]["running"] == "fp32"
    finally:
        installer.remove(NAME, purge=True)


def test_guard_breaking_int8_is_refused_with_both_measures_and_nothing_written(
    tmp_path: Path, vendor: Vendor, capsys: pytest.CaptureFixture[str]
) -> None:
    """The detector with its box/score decode quantised too: one 8-bit scale for pixels and
    probabilities costs several points of mAP, so the guard refuses it."""
    calibration = detection_dataset(tmp_path / "calibration", 60, 11)
    evaluation = detection_dataset(tmp_path / "eval", 60, 4243)
    out = tmp_path / "out"
    code = main(
        [
            "pack", str(demo_model_dir("shapes-detector")), "--name", "det", "--version", "1",
            "--key", str(vendor.private), "--out", str(out), "--precision", "int8",
            "--calibration", str(calibration), "--eval", str(evaluation), "--quantize-tail",
        ]
    )  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1
    assert "inferpack pack: INT8 refused by the accuracy guard: overall map50 drops" in err
    assert "\n    FP32 map50 " in err and "\n    INT8 map50 " in err
    assert not out.exists()
