"""The vendor's Ed25519 key pair: generate, load, and name it by a short key id."""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
from pathlib import Path

from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from inferpack.fileio import write_new
from inferpack.license.errors import LicenseError

log = logging.getLogger("inferpack.license")


def key_id(public_key: Ed25519PublicKey) -> str:
    """First 16 hex digits of SHA-256 over the raw public key: enough to tell vendor keys apart."""
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_pem(public_key: Ed25519PublicKey) -> bytes:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )


def generate_keypair(directory: Path, name: str = "vendor") -> tuple[Path, Path]:
    """Writes ``NAME.key`` (PKCS#8 PEM, mode 0600) and ``NAME.pub`` into ``directory``.

    Refuses (FileExistsError naming the file) when either exists: overwriting a vendor key would
    orphan every license and package it signed.
    """
    private_path, public_path = directory / f"{name}.key", directory / f"{name}.pub"
    for path in (private_path, public_path):
        if path.exists():
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path))
    directory.mkdir(mode=0o700, parents=True, exist_ok=True)
    private_key = Ed25519PrivateKey.generate()
    private_pem = private_key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    write_new(private_path, private_pem, 0o600)
    write_new(public_path, public_pem(private_key.public_key()), 0o644)
    return private_path, public_path


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as exc:
        raise LicenseError(f"cannot read {what} {path}: {exc.strerror or exc}") from None


def load_private_key(path: Path) -> Ed25519PrivateKey:
    data = _read(path, "private key")
    if path.stat().st_mode & (stat.S_IRWXG | stat.S_IRWXO):
        log.warning("private key %s is readable by other users; chmod 600 it", path)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except (ValueError, TypeError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, Ed25519PrivateKey):
        raise LicenseError(f"{path} is not an unencrypted Ed25519 private key (PEM)")
    return key


def load_public_key(source: Path | bytes) -> Ed25519PublicKey:
    """A PEM public key from a file, or from bytes (e.g. embedded in a deploy package)."""
    data = _read(source, "public key") if isinstance(source, Path) else source
    try:
        key = serialization.load_pem_public_key(data)
    except (ValueError, UnsupportedAlgorithm):
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise LicenseError(
            f"{source if isinstance(source, Path) else 'data'} is not an Ed25519 public key (PEM)"
        )
    return key
