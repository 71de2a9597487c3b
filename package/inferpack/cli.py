"""The one command line: ``inferpack <verb>`` for operators and vendors.

Each verb is a thin argparse front over an importable function; errors print one line on
stderr and exit non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import difflib
import re
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import NoReturn, cast

from inferpack import __version__
from inferpack.cli_errors import describe_failure, one_line_errors, port_number
from inferpack.config import load_config
from inferpack.errors import BundleError, ConfigError
from inferpack.license.errors import LicenseError
from inferpack.logs import setup_logging


def _add_serve(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    serve = subparsers.add_parser("serve", help="run the inference server in the foreground")
    serve.add_argument("model_dir", type=Path, help="model bundle folder (model.onnx + model.json)")
    serve.add_argument("--name", dest="deploy_name", help="deploy name: the {DEPLOY_NAME} in the routes")
    serve.add_argument("--port", type=port_number)
    serve.add_argument("--host")
    serve.add_argument("--config", type=Path, help="TOML settings file (see inferpack.config)")
    serve.add_argument(
        "--backend",
        help="onnxruntime (default), onnxruntime-cuda, onnxruntime-tensorrt, tensorrt, or auto: "
        "the fastest this host can run (TensorRT, then ORT TensorRT/CUDA, then CPU)",
    )
    serve.add_argument("--device-id", type=int)
    serve.add_argument(
        "--precision",
        choices=("auto", "fp32", "int8"),
        help="model variant (auto: INT8 on the CPU if packed)",
    )
    serve.add_argument("--max-batch-size", type=int)
    serve.add_argument("--max-delay-ms", type=float)
    serve.add_argument("--latency-target-ms", type=float)
    serve.add_argument("--max-inflight", type=int)
    serve.add_argument("--decode-workers", type=int)
    serve.add_argument("--intra-op-threads", type=int)
    licensing = serve.add_mutually_exclusive_group(required=True)
    licensing.add_argument("--license", dest="license_file", type=Path, help="license file to enforce")
    licensing.add_argument(
        "--no-license",
        dest="development_mode",
        action="store_true",
        default=None,
        help="development only: serve with no license check (logged on every request)",
    )
    serve.add_argument(
        "--vendor-key",
        dest="vendor_public_key",
        type=Path,
        help="vendor key (PEM), if the build pins none",
    )
    serve.add_argument("--host-root", type=Path, help="where the host's identifiers are mounted")
    serve.add_argument("--state-dir", type=Path)
    serve.add_argument("--log-dir", type=Path)
    serve.add_argument("--data-dir", type=Path, help="datasets, jobs, API key (default: STATE_DIR/data)")
    serve.add_argument("--reuse-port", action="store_true", default=None)
    serve.add_argument("--log-level", default="INFO")
    serve.set_defaults(handler=_serve)


def _serve(args: argparse.Namespace) -> int:
    overrides = {
        k: v for k, v in vars(args).items() if k not in ("handler", "config", "log_level", "command")
    }
    config = load_config(file=args.config, overrides=overrides)
    setup_logging(args.log_level, config.log_dir)
    from inferpack.server.app import serve

    return asyncio.run(serve(config))


def _add_quickstart(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    quickstart = subparsers.add_parser(
        "quickstart", help="serve the embedded demo detector and show a real prediction"
    )
    quickstart.add_argument("--port", type=port_number, default=8080)
    quickstart.add_argument("--host", default="127.0.0.1")
    quickstart.add_argument(
        "--sample", type=Path, default=Path("demo-sample.jpg"), help="where to save the image"
    )
    quickstart.add_argument("--once", action="store_true", help="stop after showing the prediction")
    quickstart.set_defaults(handler=_quickstart)


def _quickstart(args: argparse.Namespace) -> int:
    setup_logging("WARNING")
    from inferpack.quickstart import PortBusy, quickstart

    try:
        return asyncio.run(quickstart(args.port, args.host, not args.once, args.sample))
    except PortBusy as exc:
        print(f"inferpack quickstart: {exc}", file=sys.stderr)
        return 1


def _add_lu(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    lu = subparsers.add_parser(
        "lu", help="update an installed service's license (verified here first; no restart needed)"
    )
    lu.add_argument("name", nargs="?", help="deploy name (default: the only service installed)")
    lu.add_argument("file", type=Path, nargs="?", help="new license (default: the one in licenses/)")
    lu.add_argument("--work-root", type=Path, help="default $INFERPACK_WORK_ROOT or /opt/inferpack/work")
    lu.set_defaults(handler=_lu)


@one_line_errors((LookupError, LicenseError, ValueError))
def _lu(args: argparse.Namespace) -> int:
    from inferpack.deploy.inventory import sole_service
    from inferpack.deploy.layout import ServiceLayout, work_root
    from inferpack.deploy.lu import dropped_license, package_licenses_dir, update_license

    root = work_root(args.work_root)
    given: str | None = args.name
    file: Path | None = args.file
    if given is not None and file is None and Path(given).is_file() and not (root / given).is_dir():
        file = Path(given)  # `lu NEW.lic`: the file, for the only service
        given = None
    name = given or sole_service(root)
    new_license = file or dropped_license(name, package_licenses_dir())
    state = update_license(ServiceLayout(root, name), new_license)
    summary = state.summary()
    print(f"license for {name} updated from {new_license}: valid until {summary.get('not_after')}")
    from inferpack.deploy.installer import InstallError
    from inferpack.deploy.operator_cli import installer_for
    from inferpack.deploy.swarm.installer import SwarmInstaller

    installer = installer_for(root, name)
    if isinstance(installer, SwarmInstaller):  # replicas read it from a Docker secret: roll a new one out
        try:
            installer.rotate_license(name, timeout_s=300)
        except InstallError as exc:
            print(f"inferpack lu: {exc}", file=sys.stderr)
            return 1
        return 0
    print("the running service picks it up within a second; no restart needed")
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse, with a usage error in one line (and the nearest verb for a mistyped one)."""

    def error(self, message: str) -> NoReturn:
        if match := re.search(r"invalid choice: '([^']*)' \(choose from (.*)\)", message):
            verbs = re.findall(r"'([^']*)'", match.group(2))
            near = difflib.get_close_matches(match.group(1), verbs, n=1)
            message = f"{match.group(1)!r} is not a verb" + (f"; did you mean {near[0]!r}?" if near else "")
        self.exit(2, f"{self.prog}: {message} (see {self.prog} --help)\n")


def build_parser(serve_only: bool = False) -> argparse.ArgumentParser:
    """Every verb; ``serve_only``: the serve verb alone, so a service's start does not import the
    other verbs' modules (installer, doctor, Kubernetes export, front: a fifth of its imports)."""
    parser = _Parser(prog="inferpack", description=__doc__)
    parser.add_argument("--version", action="version", version=f"inferpack {__version__}")
    # The verbs' parsers are _Parsers too (argparse makes them of the parent's class).
    subparsers = cast(
        "argparse._SubParsersAction[argparse.ArgumentParser]",
        parser.add_subparsers(dest="command", required=True),
    )
    _add_serve(subparsers)
    if serve_only:
        return parser
    from inferpack.client.cli import add_predict_command
    from inferpack.deploy.front import add_runtime_commands
    from inferpack.deploy.kubernetes.export import add_export_command
    from inferpack.deploy.operator_cli import add_operator_commands
    from inferpack.deploy.package_cli import add_package_commands
    from inferpack.doctor.cli import add_doctor_command
    from inferpack.jobs.cli import add_data_commands, extend_predict
    from inferpack.labeling.cli import add_label_command
    from inferpack.license.cli import add_license_commands
    from inferpack.training.cli import add_training_commands, extend_evaluate
    from inferpack.workbench.cli import add_workbench_command

    _add_quickstart(subparsers)
    _add_lu(subparsers)
    add_operator_commands(subparsers)
    add_doctor_command(subparsers)
    add_license_commands(subparsers)
    add_package_commands(subparsers)
    add_runtime_commands(subparsers)
    add_export_command(subparsers)
    add_predict_command(subparsers)
    extend_predict(subparsers.choices["predict"])
    add_data_commands(subparsers)
    add_label_command(subparsers)
    extend_evaluate(subparsers.choices["evaluate"])
    add_training_commands(subparsers)
    add_workbench_command(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(serve_only=argv[:1] == ["serve"]).parse_args(argv)
    try:
        code: int = args.handler(args)
    except (ConfigError, BundleError, LicenseError, ValueError) as exc:  # e.g. serve's settings
        print(f"inferpack {args.command}: {describe_failure(exc)}", file=sys.stderr)
        return 1
    return code


if __name__ == "__main__":
    sys.exit(main())
