"""Vendor key pair files: modes, no overwrite, loading, key ids."""

from __future__ import annotations

import logging
import stat
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ec import SECP256R1, generate_private_key

from inferpack.license.errors import LicenseError
from inferpack.license.keys import generate_keypair, key_id, load_private_key, load_public_key


def test_keypair_files_modes_and_round_trip(tmp_path: Path) -> None:
    private_path, public_path = generate_keypair(tmp_path / "keys")
    assert stat.S_IMODE(private_path.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "keys").stat().st_mode) == 0o700
    private_key, public_key = load_private_key(private_path), load_public_key(public_path)
    assert key_id(private_key.public_key()) == key_id(public_key)
    assert len(key_id(public_key)) == 16
    assert load_public_key(public_path.read_bytes()) == public_key


def test_refuses_to_overwrite_a_vendor_key(tmp_path: Path) -> None:
    private_path, _ = generate_keypair(tmp_path)
    before = private_path.read_bytes()
    with pytest.raises(FileExistsError) as err:
        generate_keypair(tmp_path)
    assert err.value.filename == str(private_path)
    assert private_path.read_bytes() == before
    assert {p.name for p in tmp_path.iterdir()} == {"vendor.key", "vendor.pub"}  # no temp files left


def test_key_ids_differ_between_keys(tmp_path: Path) -> None:
    _, first = generate_keypair(tmp_path, "a")
    _, second = generate_keypair(tmp_path, "b")
    assert key_id(load_public_key(first)) != key_id(load_public_key(second))


def test_loading_wrong_or_missing_keys_says_why(tmp_path: Path) -> None:
    ec_key = generate_private_key(SECP256R1())
    ec_pem = ec_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    (tmp_path / "ec.key").write_bytes(ec_pem)
    with pytest.raises(LicenseError, match="not an unencrypted Ed25519 private key"):
        load_private_key(tmp_path / "ec.key")
    (tmp_path / "garbage.key").write_text("not a key")
    with pytest.raises(LicenseError, match="not an unencrypted Ed25519 private key"):
        load_private_key(tmp_path / "garbage.key")
    with pytest.raises(LicenseError, match="not an Ed25519 public key"):
        load_public_key(b"-----BEGIN PUBLIC KEY-----\ngarbage\n-----END PUBLIC KEY-----\n")
    with pytest.raises(LicenseError, match=r"cannot read private key .*No such file"):
        load_private_key(tmp_path / "absent.key")


def test_warns_about_a_private_key_others_can_read(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    private_path, _ = generate_keypair(tmp_path)
    private_path.chmod(0o644)
    with caplog.at_level(logging.WARNING, logger="inferpack.license"):
        load_private_key(private_path)
    assert "readable by other users" in caplog.text
