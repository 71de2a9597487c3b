"""verify_package: every way a package can be changed after signing is refused, with its reason."""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest
from tests.support.packages import FAKE_IMAGE_ID, FAKE_IMAGE_TAG, Vendor, flip_byte

from inferpack.deploy.manifest import PackageError, parse_manifest, sign_manifest
from inferpack.deploy.verify import verify_package
from inferpack.license.keys import key_id, public_pem

LAYOUT = {
    "README.txt",
    "install.py",
    "licenses/README.txt",
    "manifest.json",
    "manifest.sig",
    "model/model.json",
    "model/model.onnx",
    "original/download.sh",
    "original/images/server.tar",
    "trouble_shooting.tar",
    "vendor.pub",
    "wheels/inferpack-0.1.0-py3-none-any.whl",
    "wheels/pip-1.0-py3-none-any.whl",
    "wheels/requirements.txt",
}


def files_in(root: Path) -> set[str]:
    return {p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()}


def refused(root: Path, reason: str, *, pinned_key: Path | None = None, in_place: bool = False) -> None:
    with pytest.raises(PackageError, match=reason) as caught:
        verify_package(root, pinned_key=pinned_key, in_place=in_place)
    assert "\n" not in caught.value.reason


def test_a_fresh_package_verifies(unpacked: Path, vendor: Vendor) -> None:
    manifest = verify_package(unpacked, pinned_key=vendor.public)
    assert (manifest.deploy_name, manifest.model_version, manifest.package_type) == ("cats", "1.0.0", "full")
    assert (manifest.image.tag, manifest.image.id) == (FAKE_IMAGE_TAG, FAKE_IMAGE_ID)
    assert manifest.image.file == "original/images/server.tar"
    assert manifest.key_id == key_id(vendor.key.public_key())
    assert manifest.model_dir(unpacked) == unpacked / "model"
    assert (unpacked / "vendor.pub").read_bytes() == public_pem(vendor.key.public_key())


def test_manifest_lists_every_other_file_with_its_hash(unpacked: Path) -> None:
    # trouble_shooting/ and start/ are copied from the repo: whatever they hold is listed too.
    shipped = {name for name in files_in(unpacked) if not name.startswith(("trouble_shooting/", "start/"))}
    assert shipped == LAYOUT
    manifest = verify_package(unpacked, pinned_key=None)
    assert set(manifest.files) == files_in(unpacked) - {"manifest.json", "manifest.sig"}
    for name, digest in manifest.files.items():
        assert hashlib.sha256((unpacked / name).read_bytes()).hexdigest() == digest
    assert (unpacked / "start").is_dir() and (unpacked / "trouble_shooting").is_dir()


def test_flipped_byte_in_the_model_is_refused(unpacked: Path) -> None:
    flip_byte(unpacked / "model" / "model.onnx")
    refused(unpacked, "^model/model.onnx does not match its SHA-256 in manifest.json")


def test_added_file_is_refused_by_name(unpacked: Path) -> None:
    (unpacked / "model" / "extra.onnx").write_bytes(b"x")
    refused(unpacked, "^model/extra.onnx is not listed in manifest.json: added after signing$")


def test_removed_file_is_refused_by_name(unpacked: Path) -> None:
    (unpacked / "wheels" / "pip-1.0-py3-none-any.whl").unlink()
    refused(unpacked, "^wheels/pip-1.0-py3-none-any.whl, listed in manifest.json, is missing$")


def test_edited_manifest_fails_the_signature(unpacked: Path) -> None:
    path = unpacked / "manifest.json"
    path.write_bytes(path.read_bytes().replace(b'"gpu": false', b'"gpu": true'))
    refused(unpacked, "^manifest.sig does not verify with the package's vendor.pub")


def test_manifest_hash_updated_for_a_changed_file_still_fails_the_signature(unpacked: Path) -> None:
    flip_byte(unpacked / "model" / "model.onnx")
    raw = json.loads((unpacked / "manifest.json").read_bytes())
    raw["files"]["model/model.onnx"] = hashlib.sha256(
        (unpacked / "model/model.onnx").read_bytes()
    ).hexdigest()
    (unpacked / "manifest.json").write_text(json.dumps(raw, indent=2, sort_keys=True) + "\n")
    refused(unpacked, "^manifest.sig does not verify")


def resign(root: Path, signer: Vendor, *, swap_vendor_pub: bool) -> None:
    """An attacker with their own key: re-sign the manifest (and, to pass, ship their key)."""
    if swap_vendor_pub:
        (root / "vendor.pub").write_bytes(public_pem(signer.key.public_key()))
    raw = json.loads((root / "manifest.json").read_bytes())
    raw["key_id"] = key_id(signer.key.public_key())
    raw["files"]["vendor.pub"] = hashlib.sha256((root / "vendor.pub").read_bytes()).hexdigest()
    data = (json.dumps(raw, indent=2, sort_keys=True) + "\n").encode()
    (root / "manifest.json").write_bytes(data)
    (root / "manifest.sig").write_bytes(sign_manifest(data, signer.key))


def test_manifest_resigned_by_another_key_is_refused(unpacked: Path, other_vendor: Vendor) -> None:
    resign(unpacked, other_vendor, swap_vendor_pub=False)
    refused(unpacked, "^manifest.sig does not verify")


def test_swapped_vendor_key_is_caught_by_the_pinned_key(
    unpacked: Path, vendor: Vendor, other_vendor: Vendor
) -> None:
    """Replacing vendor.pub too makes the package self-consistent: only the key pinned at the
    first install (or the delivery note's key id) tells it apart."""
    resign(unpacked, other_vendor, swap_vendor_pub=True)
    assert verify_package(unpacked, pinned_key=None).key_id == key_id(other_vendor.key.public_key())
    theirs, ours = key_id(other_vendor.key.public_key()), key_id(vendor.key.public_key())
    refused(
        unpacked,
        rf"^package signed by another vendor key \(id {theirs}, installed id {ours}\)$",
        pinned_key=vendor.public,
    )


def test_key_id_must_match_vendor_pub(unpacked: Path, vendor: Vendor) -> None:
    raw = json.loads((unpacked / "manifest.json").read_bytes())
    raw["key_id"] = "0" * 16
    data = (json.dumps(raw) + "\n").encode()
    (unpacked / "manifest.json").write_bytes(data)
    (unpacked / "manifest.sig").write_bytes(sign_manifest(data, vendor.key))
    refused(unpacked, "^manifest.json names vendor key id 0000000000000000, vendor.pub is ")


def test_symlink_in_the_tree_is_refused(unpacked: Path) -> None:
    (unpacked / "model" / "model.onnx").unlink()
    (unpacked / "model" / "model.onnx").symlink_to("/etc/passwd")
    refused(unpacked, "^model/model.onnx is a symbolic link")


def test_symlinked_manifest_is_refused(unpacked: Path, tmp_path: Path) -> None:
    shutil.move(unpacked / "manifest.json", tmp_path / "manifest.json")
    (unpacked / "manifest.json").symlink_to(tmp_path / "manifest.json")
    refused(unpacked, "^cannot read manifest.json")


def test_fifo_in_the_tree_is_refused(unpacked: Path) -> None:
    os.mkfifo(unpacked / "model" / "pipe")
    refused(unpacked, "^model/pipe is a device, fifo or socket")


def test_missing_signature_or_key(unpacked: Path) -> None:
    (unpacked / "manifest.sig").unlink()
    refused(unpacked, "^the package has no manifest.sig$")
    (unpacked / "vendor.pub").write_text("not a key")
    refused(unpacked, "^vendor.pub is not an Ed25519 public key")


def test_in_place_tolerates_only_what_the_host_adds(unpacked: Path) -> None:
    """install.py's venv and dropped licenses are not package content; nothing else is let in."""
    (unpacked / ".venv" / "bin").mkdir(parents=True)
    (unpacked / ".venv" / "bin" / "python").symlink_to("/usr/bin/python3")
    (unpacked / "licenses" / "cats.lic").write_text("license")
    (unpacked / "licenses" / "request.json").write_text("{}")
    verify_package(unpacked, pinned_key=None, in_place=True)
    refused(unpacked, r"^\.venv/bin/python is a symbolic link")  # a fresh extraction: strict
    for added in ("licenses/sub/x.lic", "start/start-1.sh", "request.json"):
        (unpacked / added).parent.mkdir(exist_ok=True)
        (unpacked / added).write_text("#!/bin/sh")
        refused(unpacked, f"^{added} is not listed", in_place=True)
        (unpacked / added).unlink()
    flip_byte(unpacked / "licenses" / "README.txt")  # the vendor's file in licenses/: still checked
    refused(unpacked, "^licenses/README.txt does not match", in_place=True)


def test_the_parsed_manifest_is_the_signed_one(unpacked: Path) -> None:
    manifest = verify_package(unpacked, pinned_key=None)
    assert manifest == parse_manifest((unpacked / "manifest.json").read_bytes())


def test_not_a_folder(tmp_path: Path) -> None:
    refused(tmp_path / "nowhere", "does not exist")
