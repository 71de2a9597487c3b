"""The deploy package verbs of the inferpack CLI.

    inferpack pack MODEL_DIR --name NAME --version V --key VENDOR.key --out DIR
                   [--type full|update] [--image REPO:TAG] [--gpu]      (vendor)
                   [--precision int8 --calibration DIR [--eval DIR] [--max-drop P] ...]
    inferpack package verify DIR [--pinned-key VENDOR.pub]              (operator, download.sh)
    inferpack package load-images DIR                                   (operator, download.sh)

Each handler returns the exit code; an expected failure is one line on stderr and exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

from inferpack.cli_errors import one_line_errors
from inferpack.deploy import image
from inferpack.deploy.images import load_package_image, pin_image, resolve_image, save_image
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
from inferpack.license.keys import load_private_key, public_pem
from inferpack.quantize import QuantizeError

_FAILURES = (
    PackageError,
    LicenseError,
    BundleError,
    ConfigError,
    QuantizeError,
    image.ImageBuildError,
    OSError,
)


def _created() -> datetime:
    """Now, or SOURCE_DATE_EPOCH (the reproducible-builds convention) to repeat a package exactly."""
    epoch = os.environ.get("SOURCE_DATE_EPOCH")
    return datetime.fromtimestamp(int(epoch), UTC) if epoch else datetime.now(UTC).replace(microsecond=0)


def _step(what: str, started: float) -> None:
    print(f"  {what} ({time.monotonic() - started:.1f}s)", file=sys.stderr)


def _int8_bundle(args: argparse.Namespace, work: Path, started: float) -> Path:
    """The bundle with its INT8 variant, made in ``work`` (nothing is written near --out if the
    guard refuses it)."""
    from inferpack.quantize.bundle_int8 import Int8Request, build_int8_bundle
    from inferpack.quantize.guard import Guard
    from inferpack.quantize.int8 import Recipe

    if args.calibration is None:
        raise QuantizeError("--precision int8 needs --calibration DIR (images of your own data)")
    request = Int8Request(
        calibration=args.calibration,
        eval_set=args.eval,
        recipe=Recipe(
            activation_type=args.activation_type,
            calibration_method=args.calibration_method,
            calibration_images=args.calibration_images,
            keep_fp32=tuple(n for n in (args.keep_fp32 or "").split(",") if n),
            keep_output_tail=not args.quantize_tail,
        ),
        guard=Guard(args.max_drop, args.max_class_drop),
    )
    bundle = work / "model"
    build_int8_bundle(args.model_dir, bundle, request, lambda line: _step(line, started))
    return bundle


@one_line_errors(_FAILURES, "inferpack pack")
def _pack(args: argparse.Namespace) -> int:
    with contextlib.ExitStack() as stack:
        if args.precision == "int8":
            work = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="inferpack-int8-")))
            args.model_dir = _int8_bundle(args, work, time.monotonic())
        elif args.calibration or args.eval:
            raise QuantizeError("--calibration and --eval go with --precision int8")
        return _pack_bundle(args)
    raise AssertionError("unreachable")  # pragma: no cover - the with block returns


def _pack_bundle(args: argparse.Namespace) -> int:
    package_path(args.out, args.name, args.version)  # refuse early, not after minutes of work
    private_key = load_private_key(args.key)
    args.out.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    check_model(args.model_dir)
    _step(f"model bundle {args.model_dir} loads with onnxruntime", started)
    client = image.docker_client()
    vendor_pem = public_pem(private_key.public_key())
    tag, image_id = pin_image(client, resolve_image(client, args.image)[0], vendor_pem)
    _step(f"image {tag} ({image_id}), the vendor key pinned in it", started)
    created = _created()
    with tempfile.TemporaryDirectory(prefix=".pack-inputs-", dir=args.out) as tmp:
        requirements = SOURCE_ROOT / "package" / "requirements.txt"
        cached = image.download_wheels(requirements, SOURCE_ROOT / ".cache" / "wheels")
        inferpack_wheel = build_inferpack_wheel(
            Path(tmp), cached, int(created.timestamp()), vendor_pem=vendor_pem
        )
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


def _add_int8_flags(pack: argparse.ArgumentParser) -> None:
    group = pack.add_argument_group("INT8 variant (--precision int8; see inferpack.quantize)")
    group.add_argument(
        "--precision", choices=("fp32", "int8"), default="fp32", help="int8: add an INT8 variant (CPU)"
    )
    group.add_argument("--calibration", type=Path, help="folder of images of your data (a few hundred)")
    group.add_argument(
        "--eval", type=Path, help="labelled set: DIR/<label>/* or YOLO images/ + labels/; runs the guard"
    )
    group.add_argument("--max-drop", type=float, default=1.0, help="points INT8 may lose overall")
    group.add_argument("--max-class-drop", type=float, default=3.0, help="points INT8 may lose on a class")
    group.add_argument("--activation-type", choices=("uint8", "int8"), default="uint8")
    group.add_argument("--calibration-method", choices=("minmax", "entropy", "percentile"), default="minmax")
    group.add_argument("--calibration-images", type=int, default=200, help="at most this many, spread")
    group.add_argument("--keep-fp32", help="comma-separated node names to keep in FP32 as well")
    group.add_argument(
        "--quantize-tail", action="store_true", help="quantise the post-processing after the last layer too"
    )


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
    _add_int8_flags(pack)
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
