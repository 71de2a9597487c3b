"""A deploy package's ``manifest.json`` and its Ed25519 signature ``manifest.sig``.

A package is a flat folder (``tar xzf NAME-VERSION.tar.gz`` in a fresh folder gives it)::

    install.py                      the operator's stdlib-only bootstrap (a copy of the repo's)
    wheels/                         the inferpack wheel, every pinned runtime wheel and pip's, for
                                    the installer's private, offline venv
    model/                          the model bundle (model.onnx, model.json, anything else in it)
    original/download.sh            verify signature + every hash, then ``docker load`` the image
    original/images/server.tar      ``docker save`` of the server image (full packages only)
    trouble_shooting/               the repo's trouble_shooting/ folder
    start/                          the repo's start/ folder
    licenses/README.txt             where the operator drops this machine's license (NAME.lic)
    vendor.pub                      the vendor's Ed25519 public key (PEM)
    README.txt                      the operator's steps for this package
    manifest.json                   metadata + the SHA-256 of every other file (this module)
    manifest.sig                    base64 Ed25519 signature over SIGNING_CONTEXT + manifest.json

``manifest.json`` (keys sorted, two-space indent)::

    {"format": 1, "package_type": "full" | "update", "deploy_name": "cats",
     "model_version": "1.0.0", "created": "2030-01-01T00:00:00Z", "inferpack_version": "0.1.0",
     "image": {"tag": "inferpack-server:...", "id": "sha256:...",
               "file": "original/images/server.tar" | null},
     "gpu": false, "key_id": "<16 hex: inferpack.license.keys.key_id of vendor.pub>",
     "files": {"<relative path>": "<sha256 hex>", ...},
     "variants": {...}}             only when the bundle carries variants.json: the same document
                                    (precisions and measured accuracy, inferpack.variants)

``files`` lists every file of the package except manifest.json and manifest.sig. The signing
context keeps manifests and licenses (``inferpack-license-v1\\n``, same vendor key) apart: a
signature made for one can never be replayed as the other.
"""

from __future__ import annotations

import base64
import binascii
import json
import re
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from inferpack.errors import BundleError
from inferpack.fileio import sha256_file as sha256_file  # re-exported: pack and verify use it from here
from inferpack.names import is_deploy_name
from inferpack.variants import Precision, Variant, parse_variants, variants_json

FORMAT = 1
SIGNING_CONTEXT = b"inferpack-manifest-v1\n"
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
VENDOR_KEY = "vendor.pub"
MODEL_DIR = "model"
IMAGE_FILE = "original/images/server.tar"
# What every package must carry, whatever its type.
REQUIRED_FILES = (
    "install.py",
    VENDOR_KEY,
    "original/download.sh",
    f"{MODEL_DIR}/model.onnx",
    f"{MODEL_DIR}/model.json",
)
VERSION = re.compile(r"[A-Za-z0-9][A-Za-z0-9._+-]{0,63}")
VERSION_RULE = "1-64 letters, digits, '.', '_', '+' or '-', starting with a letter or digit"
TIME_FORMAT = "%Y-%m-%dT%H:%M:%SZ"
MAX_PATH = 1024  # bytes, whole relative path
MAX_COMPONENT = 255  # bytes, one path component (NAME_MAX)
_SHA256 = re.compile(r"[0-9a-f]{64}")
_IMAGE_ID = re.compile(r"sha256:[0-9a-f]{64}")
_KEY_ID = re.compile(r"[0-9a-f]{16}")

_KIND_NAMES = {int: "an integer", str: "a string", bool: "true or false", dict: "an object"}

PackageType = Literal["full", "update"]


class PackageError(Exception):
    """A package that must not be used; ``reason`` is one line for the operator."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class ImageRef:
    tag: str  # repository:tag, as `docker run` is given it
    id: str  # sha256:<config digest>, as `docker image inspect` shows it
    file: str | None  # the `docker save` tarball in the package, or None (update packages)


@dataclass(frozen=True)
class Manifest:
    package_type: PackageType
    deploy_name: str
    model_version: str
    created: datetime  # UTC, whole seconds
    inferpack_version: str
    image: ImageRef
    gpu: bool
    key_id: str
    files: dict[str, str] = field(repr=False)  # relative POSIX path -> sha256 hex
    format: int = FORMAT
    variants: dict[Precision, Variant] | None = None  # None: FP32 only, nothing measured

    def precisions(self) -> str:
        """ "fp32" or "fp32+int8", with the measured accuracy of each where there is one."""
        if not self.variants:
            return "fp32"
        return ", ".join(
            f"{p} ({v.accuracy.line()})" if v.accuracy else f"{p} (not measured)"
            for p, v in sorted(self.variants.items())
        )

    def model_dir(self, root: Path) -> Path:
        """The model bundle folder of the package unpacked (and verified) at ``root``."""
        return root / MODEL_DIR

    def to_json(self) -> bytes:
        document = {
            "format": self.format,
            "package_type": self.package_type,
            "deploy_name": self.deploy_name,
            "model_version": self.model_version,
            "created": self.created.strftime(TIME_FORMAT),
            "inferpack_version": self.inferpack_version,
            "image": {"tag": self.image.tag, "id": self.image.id, "file": self.image.file},
            "gpu": self.gpu,
            "key_id": self.key_id,
            "files": self.files,
        }
        if self.variants is not None:
            document["variants"] = variants_json(self.variants)
        return (json.dumps(document, indent=2, sort_keys=True, ensure_ascii=False) + "\n").encode()


def unsafe_path_reason(name: str) -> str | None:
    """Why ``name`` cannot be a file's relative path in a package, or None when it can.

    Shared by the manifest and the tar member checks, so what may be extracted is exactly what
    a manifest may list: plain relative POSIX paths, nothing that could escape or confuse.
    """
    try:
        encoded = name.encode("utf-8")  # tarfile decodes undecodable bytes to lone surrogates
    except UnicodeEncodeError:
        return "is not valid UTF-8"
    if not name:
        return "is empty"
    if len(encoded) > MAX_PATH:
        return f"is longer than {MAX_PATH} bytes"
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in name):
        return "contains a control character"
    if "\\" in name:
        return "contains a backslash"
    if name.startswith("/"):
        return "is an absolute path"
    for part in name.split("/"):
        if not part:
            return "has an empty path component"
        if part in (".", ".."):
            return f"has a {part!r} path component"
        if len(part.encode("utf-8")) > MAX_COMPONENT:
            return f"has a component longer than {MAX_COMPONENT} bytes"
    return None


def sign_manifest(data: bytes, private_key: Ed25519PrivateKey) -> bytes:
    """The contents of manifest.sig for the manifest.json bytes ``data``."""
    return base64.b64encode(private_key.sign(SIGNING_CONTEXT + data)) + b"\n"


def check_signature(data: bytes, signature_file: bytes, public_key: Ed25519PublicKey) -> None:
    """PackageError unless ``signature_file`` (manifest.sig) signs exactly ``data`` with ``public_key``."""
    try:
        signature = base64.b64decode(signature_file.strip(), validate=True)
    except (binascii.Error, ValueError):
        raise PackageError(f"{SIGNATURE} is not base64 text") from None
    try:
        public_key.verify(signature, SIGNING_CONTEXT + data)
    except InvalidSignature:
        raise PackageError(
            f"{SIGNATURE} does not verify with the package's {VENDOR_KEY}: "
            f"{MANIFEST} was changed after signing, or signed with another key"
        ) from None


def parse_manifest(data: bytes) -> Manifest:
    """The manifest in ``data``, checked field by field; PackageError naming the first problem."""
    try:
        raw = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise PackageError(f"{MANIFEST} is not JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise PackageError(f"{MANIFEST} is not a JSON object")
    version = _field(raw, "format", int)
    if version != FORMAT:
        raise PackageError(f"{MANIFEST} has format {version}; this inferpack reads format {FORMAT}")
    package_type = _field(raw, "package_type", str)
    if package_type not in ("full", "update"):
        raise PackageError(f"{MANIFEST}: package_type is {package_type!r}, not 'full' or 'update'")
    deploy_name = _field(raw, "deploy_name", str)
    if not is_deploy_name(deploy_name):
        raise PackageError(f"{MANIFEST}: deploy_name {deploy_name!r} is not a valid deploy name")
    model_version = _field(raw, "model_version", str)
    if not VERSION.fullmatch(model_version):
        raise PackageError(f"{MANIFEST}: model_version {model_version!r} is not {VERSION_RULE}")
    try:
        created = datetime.strptime(_field(raw, "created", str), TIME_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise PackageError(f"{MANIFEST}: created is not a UTC time like 2030-01-31T12:00:00Z") from None
    files = _files(_field(raw, "files", dict))
    manifest = Manifest(
        package_type="full" if package_type == "full" else "update",
        deploy_name=deploy_name,
        model_version=model_version,
        created=created,
        inferpack_version=_field(raw, "inferpack_version", str),
        image=_image(_field(raw, "image", dict), package_type, files),
        gpu=_field(raw, "gpu", bool),
        key_id=_field(raw, "key_id", str),
        files=files,
        variants=_variants(raw.get("variants")),
    )
    if not _KEY_ID.fullmatch(manifest.key_id):
        raise PackageError(f"{MANIFEST}: key_id {manifest.key_id!r} is not 16 hex digits")
    return manifest


def _variants(raw: Any) -> dict[Precision, Variant] | None:
    if raw is None:
        return None
    try:
        return parse_variants(raw)
    except BundleError as exc:
        raise PackageError(f"{MANIFEST}: variants: {exc}") from None


def _field(raw: dict[str, Any], key: str, kind: type[Any]) -> Any:
    value = raw.get(key)
    # bool is an int in Python: a format of `true` must not pass as 1.
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise PackageError(f"{MANIFEST}: {key!r} is missing or not {_KIND_NAMES[kind]}")
    return value


def _files(raw: dict[Any, Any]) -> dict[str, str]:
    for name, digest in raw.items():
        if problem := unsafe_path_reason(name):
            raise PackageError(f"{MANIFEST} lists {name!r}, which {problem}")
        if name in (MANIFEST, SIGNATURE):
            raise PackageError(f"{MANIFEST} lists {name}, which it cannot hash")
        if not isinstance(digest, str) or not _SHA256.fullmatch(digest):
            raise PackageError(f"{MANIFEST}: the hash of {name} is not a sha256 hex digest")
    for required in REQUIRED_FILES:
        if required not in raw:
            raise PackageError(f"{MANIFEST} does not list {required}, which every package carries")
    return dict(raw)


def _image(raw: dict[str, Any], package_type: str, files: dict[str, str]) -> ImageRef:
    tag, image_id, file = raw.get("tag"), raw.get("id"), raw.get("file")
    if not isinstance(tag, str) or not tag or any(c.isspace() for c in tag):
        raise PackageError(f"{MANIFEST}: image tag {tag!r} is not an image name")
    if not isinstance(image_id, str) or not _IMAGE_ID.fullmatch(image_id):
        raise PackageError(f"{MANIFEST}: image id {image_id!r} is not sha256:<64 hex>")
    if package_type == "full" and (not isinstance(file, str) or file not in files):
        raise PackageError(f"{MANIFEST}: a full package names its image file, listed in files")
    if package_type == "update" and file is not None:
        raise PackageError(f"{MANIFEST}: an update package carries no image (image file must be null)")
    return ImageRef(tag=tag, id=image_id, file=file)
