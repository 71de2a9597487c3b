"""The deploy package verbs of the inferpack CLI.

    inferpack pack MODEL_DIR --name NAME --version V --key VENDOR.key --out DIR
                   [--type full|update] [--image REPO:TAG] [--gpu]      (vendor)
    inferpack package verify DIR [--pinned-key VENDOR.pub]              (operator, download.sh)
    inferpack package load-images DIR                                   (operator, download.sh)

Each handler returns the exit code; an expected failure is one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from inferpack.cli_errors import one_line_errors
from inferpack.deploy import image
from inferpack.deploy.images import load_package_image, resolve_image, save_image
from inferpack.deploy.manifest import PackageError
from inferpack.deploy.pack import (
    SOURCE_ROOT,
    PackageImage,
    build_inferpack_wheel,
    build_package,
    check_model,
    describe,
    package_path,
)
from inferpack.deploy.verify import verify_package
from inferpack.errors import BundleError, ConfigError
from inferpack.license.errors import LicenseError
from inferpack.license.keys import load_private_key

_FAILURES = (PackageError, LicenseError, BundleError, ConfigError, image.ImageBuildError, OSError)


def _created() -> datetime:
    """Now, or SOURCE_DATE_EPOCH (the reproducible-builds convention) to repeat a package exactly."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC).replace(microsecond=0)


def _step(what: str, started: float) -> None:
    print(f"  {what} ({time.monotonic() - started:.1f}s)", file=sys.stderr)


@one_line_errors(_FAILURES, "inferpack pack")
def _pack(args: argparse.Namespace) -> int:
    args.out.mkdir(parents=True, exist_ok=True)
    package_path(args.out, args.name, args.version)  # refuse early, not after minutes of work
    private_key = load_private_key(args.key)
    started = time.monotonic()
    check_model(args.model_dir)
    _step(f"model bundle {args.model_dir} loads with onnxruntime", started)
    client = image.docker_client()
    tag, image_id = resolve_image(client, args.image)
    _step(f"image {tag} ({image_id})", started)
    created = _created()
    with tempfile.TemporaryDirectory(prefix=".pack-inputs-", dir=args.out) as tmp:
        requirements = SOURCE_ROOT / "package" / "requirements.txt"
        cached = image.download_wheels(requirements, SOURCE_ROOT / ".cache" / "wheels")
        inferpack_wheel = build_inferpack_wheel(Path(tmp), cached, int(created.timestamp()))
        _step(f"wheels: {inferpack_wheel.name} and the pinned runtime wheels", started)
        tarball = None
        if args.type == "full":
            tarball = Path(tmp) / "server.tar"
            save_image(client, tag, tarball)
            _step(f"docker save {tag}: {tarball.stat().st_size / 2**20:.0f} MiB", started)
        target, manifest = build_package(
            args.model_dir,
            name=args.name,
            version=args.version,
            package_type=args.type,
            private_key=private_key,
            image=PackageImage(tag, image_id, tarball),
            wheels=[*sorted(p for p in cached.iterdir() if p.is_file()), inferpack_wheel],
            out_dir=args.out,
            gpu=args.gpu,
            created=created,
        )
    _step("signed and packed", started)
    print("\n".join(describe(target, manifest)))
    return 0


@one_line_errors(_FAILURES, "FAIL package verify")
def _verify(args: argparse.Namespace) -> int:
    manifest = verify_package(args.dir, pinned_key=args.pinned_key, in_place=True)
    whose = "the installed vendor key" if args.pinned_key else "compare it with your delivery note"
    print(f"PASS signature: signed by vendor key id {manifest.key_id} ({whose})")
    print(f"PASS files: all {len(manifest.files)} files match their SHA-256; none missing, none added")
    print(
        f"package {manifest.deploy_name} {manifest.model_version} ({manifest.package_type}), "
        f"image {manifest.image.tag}"
    )
    return 0


@one_line_errors(_FAILURES, "FAIL package load-images")
def _load_images(args: argparse.Namespace) -> int:
    print(f"PASS {load_package_image(args.dir, pinned_key=None, in_place=True)}")
    return 0


def add_package_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``pack`` and ``package {verify,load-images}`` to the CLI's subparsers."""
    pack = subparsers.add_parser("pack", help="vendor: build a signed deploy package NAME-VERSION.tar.gz")
    pack.add_argument("model_dir", type=Path, help="model bundle folder (model.onnx + model.json)")
    pack.add_argument("--name", required=True, help="deploy name")
    pack.add_argument("--version", required=True, help="model version (the package's version)")
    pack.add_argument("--key", type=Path, required=True, help="vendor private key (PEM)")
    pack.add_argument("--type", choices=("full", "update"), default="full", help="full: with the image")
    pack.add_argument("--image", help="server image repo:tag (default: build or reuse this tree's)")
    pack.add_argument("--gpu", action="store_true", help="the service needs an NVIDIA GPU")
    pack.add_argument("--out", type=Path, required=True, help="folder for the package (never overwritten)")
    pack.set_defaults(handler=_pack)

    package = subparsers.add_parser("package", help="operator: verify an unpacked package, load its image")
    verbs = package.add_subparsers(dest="package_command", required=True)
    verify = verbs.add_parser("verify", help="check the signature and every file's SHA-256")
    verify.add_argument("dir", type=Path, help="the unpacked package")
    verify.add_argument("--pinned-key", type=Path, help="the package must be signed by this vendor key")
    verify.set_defaults(handler=_verify)
    load = verbs.add_parser("load-images", help="verify, then docker load the package's image")
    load.add_argument("dir", type=Path, help="the unpacked package")
    load.set_defaults(handler=_load_images)
