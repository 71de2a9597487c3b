"""manifest.json: its fields, the paths it may list, and the domain-separated signature."""

from __future__ import annotations

import base64
import json
from dataclasses import replace
from typing import Any

import pytest
from tests.support.packages import CREATED, FAKE_IMAGE_ID, Vendor

from inferpack.deploy.manifest import (
    SIGNING_CONTEXT,
    ImageRef,
    Manifest,
    PackageError,
    check_signature,
    parse_manifest,
    sign_manifest,
    unsafe_path_reason,
)
from inferpack.license.licfile import SIGNING_CONTEXT as LICENSE_CONTEXT
from inferpack.variants import Accuracy, Precision, Variant

FILES = {
    name: "0" * 64
    for name in ("install.py", "vendor.pub", "original/download.sh", "model/model.onnx", "model/model.json")
}


def manifest(**changes: Any) -> Manifest:
    base = Manifest(
        package_type="update",
        deploy_name="cats",
        model_version="1.0.0",
        created=CREATED,
        inferpack_version="0.1.0",
        image=ImageRef("inferpack-server:0.1.0-abc", FAKE_IMAGE_ID, None),
        gpu=False,
        key_id="0123456789abcdef",
        files=dict(FILES),
    )
    return replace(base, **changes)


def edited(**changes: Any) -> bytes:
    raw = json.loads(manifest().to_json())
    raw.update(changes)
    return json.dumps(raw).encode()


def test_round_trip_is_exact() -> None:
    original = manifest(gpu=True)
    data = original.to_json()
    assert parse_manifest(data) == original
    assert parse_manifest(data).to_json() == data
    assert json.loads(data)["created"] == "2030-01-02T03:04:05Z"


@pytest.mark.parametrize(
    ("name", "problem"),
    [
        ("", "is empty"),
        ("/etc/passwd", "is an absolute path"),
        ("../evil", "has a '..' path component"),
        ("model/../../evil", "has a '..' path component"),
        ("./model.onnx", "has a '.' path component"),
        ("model//x", "has an empty path component"),
        ("model/", "has an empty path component"),
        ("model\\..\\evil", "contains a backslash"),
        ("evil\nname", "contains a control character"),
        ("nul\x00byte", "contains a control character"),
        ("\udcff", "is not valid UTF-8"),
        ("x" * 256, "has a component longer than 255 bytes"),
        ("a/" * 600 + "b", "is longer than 1024 bytes"),
    ],
)
def test_unsafe_paths_are_named(name: str, problem: str) -> None:
    assert unsafe_path_reason(name) == problem


@pytest.mark.parametrize(
    "name", ["install.py", "model/model.onnx", "wheels/numpy-2.4.6-cp311.whl", "模型/标签.txt"]
)
def test_plain_relative_paths_are_fine(name: str) -> None:
    assert unsafe_path_reason(name) is None


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"\xff", "not JSON"),
        (b"[]", "not a JSON object"),
        (edited(format=2), "has format 2; this inferpack reads format 1"),
        (edited(format=True), "'format' is missing or not an integer"),
        (edited(package_type="patch"), "package_type is 'patch'"),
        (edited(deploy_name="../x"), "not a valid deploy name"),
        (edited(model_version="1 0"), "model_version '1 0' is not"),
        (edited(created="yesterday"), "created is not a UTC time"),
        (edited(gpu="yes"), "'gpu' is missing or not true or false"),
        (edited(key_id="xyz"), "key_id 'xyz' is not 16 hex digits"),
        (edited(files={**FILES, "../evil": "0" * 64}), "lists '../evil', which has a '..' path component"),
        (edited(files={**FILES, "manifest.sig": "0" * 64}), "lists manifest.sig, which it cannot hash"),
        (edited(files={**FILES, "model/model.onnx": "abc"}), "the hash of model/model.onnx is not"),
        (edited(files={k: v for k, v in FILES.items() if k != "vendor.pub"}), "does not list vendor.pub"),
        (edited(image={"tag": "x y", "id": FAKE_IMAGE_ID, "file": None}), "image tag 'x y' is not"),
        (edited(image={"tag": "x:1", "id": "abc", "file": None}), "image id 'abc' is not sha256"),
        (edited(image={"tag": "x:1", "id": FAKE_IMAGE_ID, "file": "model/model.onnx"}), "carries no image"),
        (
            edited(package_type="full", image={"tag": "x:1", "id": FAKE_IMAGE_ID, "file": "missing.tar"}),
            "a full package names its image file, listed in files",
        ),
    ],
)
def test_bad_manifests_are_refused_with_the_reason(data: bytes, reason: str) -> None:
    with pytest.raises(PackageError, match=reason.replace("(", r"\(").replace(")", r"\)")):
        parse_manifest(data)


def test_signature_covers_every_byte(vendor: Vendor) -> None:
    data = manifest().to_json()
    signature = sign_manifest(data, vendor.key)
    check_signature(data, signature, vendor.key.public_key())
    with pytest.raises(PackageError, match=r"manifest\.sig does not verify"):
        check_signature(data.replace(b"1.0.0", b"1.0.1"), signature, vendor.key.public_key())
    with pytest.raises(PackageError, match="not base64"):
        check_signature(data, b"%%%", vendor.key.public_key())


def test_a_license_signature_is_no_manifest_signature(vendor: Vendor) -> None:
    """The same vendor key signs licenses: its signature over the same bytes must not pass here."""
    data = manifest().to_json()
    license_signature = base64.b64encode(vendor.key.sign(LICENSE_CONTEXT + data))
    with pytest.raises(PackageError, match="does not verify"):
        check_signature(data, license_signature, vendor.key.public_key())
    assert SIGNING_CONTEXT == b"inferpack-manifest-v1\n" != LICENSE_CONTEXT


def test_signature_by_another_key_fails(vendor: Vendor, other_vendor: Vendor) -> None:
    data = manifest().to_json()
    with pytest.raises(PackageError, match="does not verify"):
        check_signature(data, sign_manifest(data, other_vendor.key), vendor.key.public_key())


def test_variants_round_trip_and_are_checked() -> None:
    accuracy = Accuracy("map50", 0.97, {"circle": 0.96}, 150)
    variants: dict[Precision, Variant] = {
        "fp32": Variant("fp32", accuracy),
        "int8": Variant("int8", accuracy),
    }
    original = manifest(variants=variants)
    data = original.to_json()
    assert parse_manifest(data) == original and parse_manifest(data).to_json() == data
    assert "variants" not in json.loads(manifest().to_json())  # FP32-only manifests are unchanged
    assert original.precisions().startswith("fp32 (map50 97.00 (circle 96.00) on 150 samples), int8")
    with pytest.raises(PackageError, match=r"variants: variants\.json: unknown precision 'int4'"):
        parse_manifest(edited(variants={"format": 1, "variants": {"fp32": {}, "int4": {}}}))
