"""Helpers that build real deploy packages (real keys, real tarballs) for the package tests."""

from __future__ import annotations

import hashlib
import io
import tarfile
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferpack.deploy.manifest import Manifest
from inferpack.deploy.pack import PackageImage, build_package
from inferpack.license.fingerprint import collect, read_request, write_request
from inferpack.license.keys import generate_keypair, load_private_key
from inferpack.license.licfile import issue_license

CREATED = datetime(2030, 1, 2, 3, 4, 5, tzinfo=UTC)
FAKE_IMAGE_TAG = "inferpack-test/fake:1"
FAKE_IMAGE_ID = "sha256:" + hashlib.sha256(b"fake image").hexdigest()


@dataclass(frozen=True)
class Vendor:
    key: Ed25519PrivateKey
    private: Path  # PEM, mode 0600
    public: Path  # PEM


def make_vendor(directory: Path) -> Vendor:
    private, public = generate_keypair(directory)
    return Vendor(load_private_key(private), private, public)


def fake_wheels(directory: Path) -> list[Path]:
    """Stand-ins for wheels/ where nothing installs them (the bytes are only hashed)."""
    directory.mkdir(parents=True)
    for name in ("pip-1.0-py3-none-any.whl", "inferpack-0.1.0-py3-none-any.whl", "requirements.txt"):
        (directory / name).write_bytes(f"not really {name}\n".encode())
    return sorted(directory.iterdir())


def make_package(
    out_dir: Path,
    vendor: Vendor,
    model_dir: Path,
    wheels: list[Path],
    *,
    package_type: str = "full",
    image: PackageImage | None = None,
    version: str = "1.0.0",
    name: str = "cats",
) -> tuple[Path, Manifest]:
    """A package whose image, unless given, is a small fake `docker save` file (never loaded)."""
    with tempfile.TemporaryDirectory() as tmp:
        if image is None:
            tarball = None
            if package_type == "full":
                tarball = Path(tmp) / "server.tar"
                tarball.write_bytes(b"fake image" * 1000)
            image = PackageImage(FAKE_IMAGE_TAG, FAKE_IMAGE_ID, tarball)
        return build_package(
            model_dir,
            name=name,
            version=version,
            package_type="full" if package_type == "full" else "update",
            private_key=vendor.key,
            image=image,
            wheels=wheels,
            out_dir=out_dir,
            created=CREATED,
        )


def unpack(tarball: Path, dest: Path) -> Path:
    """What an operator's `tar xzf` gives (the test's own, trusted package)."""
    with tarfile.open(tarball, "r:gz") as tar:
        tar.extractall(dest, filter="data")
    return dest


def flip_byte(path: Path, offset: int = 100) -> None:
    data = bytearray(path.read_bytes())
    data[min(offset, len(data) - 1)] ^= 0x01
    path.write_bytes(bytes(data))


def tarball_of(members: list[tuple[tarfile.TarInfo, bytes | None]], dest: Path) -> Path:
    """A hand-made .tar.gz: each TarInfo as given, with its data (size set from it)."""
    with tarfile.open(dest, "w:gz", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            if data is None:
                tar.addfile(info)
            else:
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
    return dest


def license_here(vendor: Vendor, name: str, out: Path, *, max_instances: int | None = None) -> Path:
    """A license for THIS machine's fingerprint, as the vendor would issue it from its request."""
    request = out.with_suffix(".request.json")
    write_request(request, collect(Path("/")))
    text = issue_license(vendor.key, read_request(request), [name], days=30, max_instances=max_instances)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(text, encoding="utf-8")
    return out
