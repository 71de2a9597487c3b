"""``inferpack pack``: a model bundle, the server image, the installer and the vendor key into one
signed deploy package, ``NAME-VERSION.tar.gz`` (its layout: inferpack.deploy.manifest).

``build_package`` takes everything already made (wheels, the saved image) so that it does no
Docker or pip work itself; ``package_cli`` gathers those. The tarball is reproducible: the same
inputs and ``created`` give the same bytes (sorted names, mtimes = ``created``, owner 0:0 with
no names, modes 0644/0755, gzip without a name or time).
"""

from __future__ import annotations

import gzip
import os
import shutil
import subprocess
import sys
import tarfile
import tempfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferpack import __version__
from inferpack.bundle import read_bundle
from inferpack.deploy import image
from inferpack.deploy.manifest import (
    IMAGE_FILE,
    MANIFEST,
    MODEL_DIR,
    SIGNATURE,
    VENDOR_KEY,
    VERSION,
    VERSION_RULE,
    ImageRef,
    Manifest,
    PackageError,
    PackageType,
    sha256_file,
    sign_manifest,
)
from inferpack.deploy.package_texts import licenses_readme, package_readme
from inferpack.fileio import open_atomic
from inferpack.license.keys import key_id, public_pem
from inferpack.license.pinned import SOURCE_PATH
from inferpack.names import DEPLOY_NAME_RULE, is_deploy_name

SOURCE_ROOT = image.SOURCE_ROOT
# Copied from the source tree as they are (regular files; a missing folder ships empty).
TREES = ("trouble_shooting", "start")
SCRIPT = "trouble_shooting.sh"  # also packed alone in trouble_shooting.tar, for the seed's steps
# gzip -6 packs the 443 MiB server image to 157 MiB in 18 s here; -1 takes 6 s for 174 MiB.
GZIP_LEVEL = 6


@dataclass(frozen=True)
class PackageImage:
    tag: str
    id: str
    tarball: Path | None  # `docker save` output to ship (full packages); None for an update


def check_model(model_dir: Path) -> None:
    """Refuses a bundle the server could not serve: model.json, and each variant's graph loaded by
    onnxruntime."""
    from inferpack.model import Model
    from inferpack.runtime.engine import EngineOptions

    bundle = read_bundle(model_dir)
    for precision in bundle.variants:
        Model.load(bundle, "onnxruntime", EngineOptions(max_batch_size=1), precision)


def package_path(out_dir: Path, name: str, version: str) -> Path:
    if not is_deploy_name(name):
        raise PackageError(f"deploy name {name!r} is not valid: use {DEPLOY_NAME_RULE}")
    if not VERSION.fullmatch(version):
        raise PackageError(f"version {version!r} is not valid: use {VERSION_RULE}")
    target = out_dir / f"{name}-{version}.tar.gz"
    if target.exists():
        raise PackageError(f"{target} already exists; refusing to overwrite it")
    return target


def build_package(
    model_dir: Path,
    *,
    name: str,
    version: str,
    package_type: PackageType,
    private_key: Ed25519PrivateKey,
    image: PackageImage,
    wheels: Sequence[Path],
    out_dir: Path,
    gpu: bool = False,
    created: datetime | None = None,
    source_root: Path = SOURCE_ROOT,
) -> tuple[Path, Manifest]:
    """Writes ``out_dir/NAME-VERSION.tar.gz`` (never over an existing file); returns it and its manifest."""
    target = package_path(out_dir, name, version)
    bundle = read_bundle(model_dir)  # the structure only; check_model also loads the graph
    if (package_type == "full") != (image.tarball is not None):
        raise PackageError("a full package carries the image tarball, an update package none")
    created = (created or datetime.now(UTC)).astimezone(UTC).replace(microsecond=0)
    staging = Path(tempfile.mkdtemp(prefix=f".{name}-{version}-", dir=out_dir))
    try:
        _copy(source_root / "install.py", staging / "install.py")
        _copy(source_root / "original" / "download.sh", staging / "original" / "download.sh")
        for tree in TREES:
            _copy_tree(source_root / tree, staging / tree)
        _script_tar(
            staging / "trouble_shooting" / SCRIPT, staging / "trouble_shooting.tar", int(created.timestamp())
        )
        _copy_tree(model_dir, staging / MODEL_DIR)
        for wheel in wheels:
            _copy(wheel, staging / "wheels" / wheel.name)
        if image.tarball is not None:
            _copy(image.tarball, staging / IMAGE_FILE)
        public_key = private_key.public_key()
        (staging / VENDOR_KEY).write_bytes(public_pem(public_key))
        (staging / "licenses").mkdir()
        (staging / "licenses" / "README.txt").write_text(licenses_readme(name))
        manifest = Manifest(
            package_type=package_type,
            deploy_name=name,
            model_version=version,
            created=created,
            inferpack_version=__version__,
            image=ImageRef(image.tag, image.id, IMAGE_FILE if image.tarball is not None else None),
            gpu=gpu,
            key_id=key_id(public_key),
            files={},
            variants=bundle.variants
            if len(bundle.variants) > 1 or bundle.variants["fp32"].accuracy
            else None,
        )
        (staging / "README.txt").write_text(package_readme(manifest))
        files = {path.relative_to(staging).as_posix(): sha256_file(path) for path in _walk_files(staging)}
        manifest = replace(manifest, files=files)
        data = manifest.to_json()
        (staging / MANIFEST).write_bytes(data)
        (staging / SIGNATURE).write_bytes(sign_manifest(data, private_key))
        _write_tarball(staging, target, int(created.timestamp()))
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target, manifest


def build_inferpack_wheel(
    dest: Path, wheels: Path, epoch: int, source_root: Path = SOURCE_ROOT, vendor_pem: bytes | None = None
) -> Path:
    """The inferpack wheel from a snapshot of the source tree, its zip times set to ``epoch``
    (SOURCE_DATE_EPOCH) so the same sources give the same wheel; setuptools from ``wheels``.
    ``vendor_pem``: the vendor key the wheel pins (license/pinned.py), as every shipped one does."""
    with tempfile.TemporaryDirectory(prefix="inferpack-wheel-") as tmp:
        sources = pinned_sources(source_root, Path(tmp) / "src", vendor_pem)
        result = subprocess.run(
            [
                sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
                "--no-index", "--find-links", str(wheels), "--wheel-dir", str(dest), str(sources),
            ],
            env={**os.environ, "SOURCE_DATE_EPOCH": str(epoch)},
            capture_output=True,
            text=True,
            check=False,
        )  # fmt: skip
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-20:])
        raise PackageError(f"building the inferpack wheel failed:\n{tail}")
    (wheel,) = dest.glob("inferpack-*.whl")
    return wheel


def pinned_sources(source_root: Path, dest: Path, vendor_pem: bytes | None) -> Path:
    """The snapshot a wheel is built from (``dest``), pinning ``vendor_pem`` when given."""
    sources = image._snapshot_sources(source_root, dest)
    if vendor_pem is not None:
        (sources / SOURCE_PATH).write_bytes(vendor_pem)
    return sources


def _copy(source: Path, dest: Path) -> None:
    """A hard link where possible (the image tarball is large), else a copy; regular files only."""
    if source.is_symlink() or not source.is_file():
        raise PackageError(f"{source} is not a regular file: a package holds regular files only")
    dest.parent.mkdir(parents=True, exist_ok=True)
    try:
        os.link(source, dest)
    except OSError:
        shutil.copyfile(source, dest)


def _copy_tree(source: Path, dest: Path) -> None:
    dest.mkdir(parents=True)
    if not source.is_dir():
        return
    for path in sorted(source.rglob("*")):
        if "__pycache__" in path.parts or path.suffix == ".pyc":
            continue
        if path.is_dir() and not path.is_symlink():
            (dest / path.relative_to(source)).mkdir(parents=True, exist_ok=True)
        else:
            _copy(path, dest / path.relative_to(source))


def _script_tar(script: Path, dest: Path, mtime: int) -> None:
    """``trouble_shooting.tar``, as the seed's steps use it: ``tar vxf trouble_shooting.tar;
    bash trouble_shooting.sh`` in any folder (the script finds the work root by itself)."""
    if not script.is_file():
        return
    info = tarfile.TarInfo(script.name)
    info.size, info.mode, info.mtime = script.stat().st_size, 0o755, mtime
    with tarfile.open(dest, "w", format=tarfile.PAX_FORMAT) as tar, script.open("rb") as data:
        tar.addfile(info, data)


def _walk_files(root: Path) -> Iterator[Path]:
    return (path for path in sorted(root.rglob("*")) if path.is_file())


def _executable(name: str) -> bool:
    return name == "install.py" or name.endswith(".sh")


def _write_tarball(staging: Path, target: Path, mtime: int) -> None:
    """Streams the tarball into place with open_atomic: a reader never sees half a package, and
    an existing file is never replaced."""
    try:
        with (
            open_atomic(target, 0o644, overwrite=False) as raw,
            gzip.GzipFile(filename="", mode="wb", fileobj=raw, compresslevel=GZIP_LEVEL, mtime=mtime) as gz,
            tarfile.open(fileobj=gz, mode="w", format=tarfile.PAX_FORMAT) as tar,
        ):
            # Sorted full paths put every folder before what it holds.
            for path in sorted(staging.rglob("*"), key=lambda p: p.relative_to(staging).as_posix()):
                name = path.relative_to(staging).as_posix()
                info = tarfile.TarInfo(name)
                info.mtime, info.uid, info.gid, info.uname, info.gname = mtime, 0, 0, "", ""
                if path.is_dir():
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
                    continue
                info.size, info.mode = path.stat().st_size, 0o755 if _executable(name) else 0o644
                with path.open("rb") as stream:
                    tar.addfile(info, stream)
    except FileExistsError:
        raise PackageError(f"{target} already exists; refusing to overwrite it") from None


def describe(target: Path, manifest: Manifest) -> list[str]:
    """What the vendor sends with the package, in the delivery note."""
    return [
        f"package       {target}",
        f"deploy        {manifest.deploy_name} {manifest.model_version} ({manifest.package_type} package)",
        f"image         {manifest.image.tag} ({manifest.image.id})",
        f"precision     {manifest.precisions()}",
        f"size          {target.stat().st_size / 2**20:.1f} MiB",
        f"sha256        {sha256_file(target)}",
        f"vendor key id {manifest.key_id} (put it in the delivery note: the operator compares it)",
    ]
