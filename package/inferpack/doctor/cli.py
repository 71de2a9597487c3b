"""The ``doctor`` verb: ``python3 install.py doctor [NAME...] [--json] [--bundle FILE]``, which
``trouble_shooting/trouble_shooting.sh`` runs. Exit 0 when no check FAILed, else 1."""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

from inferpack.deploy.layout import work_root
from inferpack.doctor.bundle import write_bundle
from inferpack.doctor.context import Options
from inferpack.doctor.host_checks import DEFAULT_DISK_THRESHOLD
from inferpack.doctor.report import dumps, text_lines
from inferpack.doctor.runner import run


def _package_root() -> Path | None:
    """The deploy package install.py runs from (its manifest lets the model files be checked)."""
    root = os.environ.get("INFERPACK_PACKAGE_ROOT")
    return Path(root).resolve() if root else None


def _percent(text: str) -> int:
    value = int(text)
    if not 1 <= value <= 100:
        raise argparse.ArgumentTypeError("a percentage from 1 to 100")
    return value


def _doctor(args: argparse.Namespace) -> int:
    opts = Options(
        work_root=work_root(args.work_root),
        names=tuple(args.names),
        disk_threshold=args.disk_threshold,
        scan_lines=args.log_lines,
        show_lines=args.show_lines,
        package_root=_package_root(),
    )
    report = run(opts)
    print(dumps(report, opts) if args.json else "\n".join(text_lines(report, opts)), flush=True)
    if args.bundle is not None:
        try:
            names = write_bundle(args.bundle, report, opts)
        except OSError as exc:
            print(
                f"inferpack doctor: cannot write the bundle {args.bundle}: {exc.strerror or exc}",
                file=sys.stderr,
            )
            return 1
        print(f"support bundle: {args.bundle} ({len(names)} files); send it to the vendor", file=sys.stderr)
    return 0 if report.ok else 1


def add_doctor_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    doctor = subparsers.add_parser(
        "doctor", help="check installed services end to end; PASS/WARN/FAIL with the next step"
    )
    doctor.add_argument("names", nargs="*", metavar="NAME", help="services to check (default: all)")
    doctor.add_argument("--json", action="store_true", help="machine-readable output")
    doctor.add_argument(
        "--bundle", type=Path, metavar="FILE", help="also write a support tar.gz for the vendor"
    )
    doctor.add_argument("--work-root", type=Path, help="default $INFERPACK_WORK_ROOT or /opt/inferpack/work")
    doctor.add_argument(
        "--disk-threshold",
        type=_percent,
        default=DEFAULT_DISK_THRESHOLD,
        metavar="PCT",
        help=f"FAIL when a disk is more than PCT%% used (default {DEFAULT_DISK_THRESHOLD})",
    )
    doctor.add_argument("--log-lines", type=int, default=2000, help="log lines read per container/process")
    doctor.add_argument("--show-lines", type=int, default=5, help="key log lines shown per finding")
    doctor.set_defaults(handler=_doctor)
