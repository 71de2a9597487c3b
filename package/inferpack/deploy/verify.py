"""Verifying an unpacked deploy package: vendor key, signature, and every file against its hash.

What this proves, and what it cannot:

- Every file is exactly what the holder of the vendor key signed: nothing changed, missing or
  added, and no link or device anywhere in the tree.
- With ``pinned_key`` (the vendor key recorded in the work root at the first install), the package
  must also be signed by that very key. This is how updates are checked: by the inferpack already
  installed, against the key it already trusts, so a package from anyone else is refused.
- Always, when this inferpack is a shipped build (``license/pinned.py``), the package must be
  signed by the vendor key pinned in this very code: on a FIRST install too, a package re-signed
  with another key (its own ``vendor.pub``, its own licenses) is refused by the installer the
  package's genuine wheel made. Getting past that means rebuilding the inferpack wheel (process
  runtime) and the server image (docker runtime, whose label the installer also compares), and
  the signed manifest names both by hash and id: see licenses/README.md for what that leaves.
  The bootstrap (``install.py``) checks the wheels against manifest.json's hashes before this
  code exists on the host, so a wholesale rebuilt package is the limit of any offline check.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Collection
from pathlib import Path

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from inferpack.deploy.manifest import (
    MANIFEST,
    SIGNATURE,
    VENDOR_KEY,
    Manifest,
    PackageError,
    check_signature,
    parse_manifest,
    sha256_file,
)
from inferpack.license.errors import LicenseError
from inferpack.license.keys import key_id, load_public_key
from inferpack.license.pinned import pinned_key as build_pinned_key

# What the host itself adds to a package the operator works in (``in_place``): the venv that
# install.py makes beside itself from the (checked) wheels, and the operator's files in
# licenses/ (licenses for `lu`, which carry their own vendor signature; the fingerprint request
# sent to the vendor): data nothing runs. Nothing else is tolerated.
INSTALLER_VENV = ".venv"
LICENSES_DIR = "licenses"


def verify_package(root: Path, *, pinned_key: Path | None, in_place: bool = False) -> Manifest:
    """The package's manifest, once everything in ``root`` checks out; PackageError otherwise.

    ``in_place``: ``root`` is a package the operator unpacked and runs install.py in, which may
    hold the installer's ``.venv/`` and ``licenses/*.lic``; a freshly extracted package may not.
    """
    try:
        if not stat.S_ISDIR(os.lstat(root).st_mode):
            raise PackageError(f"{root} is not a folder")
    except FileNotFoundError:
        raise PackageError(f"{root} does not exist") from None
    data = _read_regular(root, MANIFEST)
    vendor = _public_key(_read_regular(root, VENDOR_KEY), VENDOR_KEY)
    if pinned_key is not None:
        pinned = _public_key(pinned_key, str(pinned_key))
        if _raw(pinned) != _raw(vendor):
            raise PackageError(
                f"package signed by another vendor key (id {key_id(vendor)}, installed id {key_id(pinned)})"
            )
    if (built_in := build_pinned_key()) is not None and _raw(built_in) != _raw(vendor):
        raise PackageError(
            f"package signed by another vendor key (id {key_id(vendor)}) than this inferpack pins "
            f"(id {key_id(built_in)})"
        )
    check_signature(data, _read_regular(root, SIGNATURE), vendor)
    manifest = parse_manifest(data)
    if manifest.key_id != key_id(vendor):
        raise PackageError(
            f"{MANIFEST} names vendor key id {manifest.key_id}, {VENDOR_KEY} is {key_id(vendor)}"
        )
    present = _regular_files(root, manifest.files if in_place else None)
    extra = sorted(present - manifest.files.keys() - {MANIFEST, SIGNATURE})
    if extra:
        more = f" (and {len(extra) - 1} more)" if len(extra) > 1 else ""
        raise PackageError(f"{extra[0]} is not listed in {MANIFEST}: added after signing{more}")
    missing = sorted(manifest.files.keys() - present)
    if missing:
        more = f" (and {len(missing) - 1} more)" if len(missing) > 1 else ""
        raise PackageError(f"{missing[0]}, listed in {MANIFEST}, is missing{more}")
    for name, expected in sorted(manifest.files.items()):
        if sha256_file(root / name) != expected:
            raise PackageError(
                f"{name} does not match its SHA-256 in {MANIFEST}: changed after signing, or corrupt"
            )
    return manifest


def _read_regular(root: Path, name: str) -> bytes:
    """A top-level file's bytes, refusing a link (O_NOFOLLOW) or anything but a regular file."""
    try:
        fd = os.open(root / name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    except FileNotFoundError:
        raise PackageError(f"the package has no {name}") from None
    except OSError as exc:
        raise PackageError(f"cannot read {name}: {exc.strerror} (a link?)") from None
    with os.fdopen(fd, "rb") as stream:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise PackageError(f"{name} is not a regular file")
        return stream.read()


def _public_key(source: bytes | Path, what: str) -> Ed25519PublicKey:
    try:
        return load_public_key(source)
    except LicenseError:
        raise PackageError(f"{what} is not an Ed25519 public key (PEM)") from None


def _raw(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


def _regular_files(root: Path, in_place_listed: Collection[str] | None) -> set[str]:
    """Relative paths of the regular files below ``root``; PackageError for anything else.

    ``in_place_listed``: the manifest's files, for a package verified in place (skips what the
    host adds), or None for a freshly extracted one."""
    found: set[str] = set()
    pending = [(root, "")]
    while pending:
        folder, prefix = pending.pop()
        with os.scandir(folder) as entries:
            for entry in entries:
                name = prefix + entry.name
                if in_place_listed is not None and _host_added(name, entry, in_place_listed):
                    continue
                if entry.is_symlink():
                    raise PackageError(f"{name} is a symbolic link: a package holds regular files only")
                if entry.is_dir(follow_symlinks=False):
                    pending.append((Path(entry.path), name + "/"))
                elif entry.is_file(follow_symlinks=False):
                    found.add(name)
                else:
                    raise PackageError(
                        f"{name} is a device, fifo or socket: a package holds regular files only"
                    )
    return found


def _host_added(name: str, entry: os.DirEntry[str], listed: Collection[str]) -> bool:
    if name == INSTALLER_VENV:
        return entry.is_dir(follow_symlinks=False)
    return (
        name.rpartition("/")[0] == LICENSES_DIR
        and name not in listed  # licenses/README.txt is the vendor's: verified as usual
        and entry.is_file(follow_symlinks=False)
    )
