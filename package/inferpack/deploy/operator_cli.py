"""The operator's verbs: install, update, rollback, start, remove, list, status, scale (``doctor`` is
registered beside them by the top-level CLI: deploy/ does not import doctor/)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path

from inferpack.cli_errors import one_line_errors, port_number
from inferpack.deploy.environments import ENVIRONMENTS, remove_unused
from inferpack.deploy.installer import Installer, InstallError, InstallOptions
from inferpack.deploy.inventory import describe, ignored_folders, installed_services, service_status
from inferpack.deploy.journal import InstallerBusy, work_root_lock
from inferpack.deploy.layout import ServiceLayout, work_root
from inferpack.deploy.runtimes import RUNTIMES
from inferpack.deploy.settings import ALL_INTERFACES, load_settings
from inferpack.deploy.versions import VersionConflict
from inferpack.license.errors import LicenseError

_one_line_errors = one_line_errors(
    (InstallError, InstallerBusy, VersionConflict, LicenseError, LookupError, ValueError)
)


def package_root() -> Path:
    """The unpacked deploy package install.py runs from."""
    return Path(os.environ.get("INFERPACK_PACKAGE_ROOT", ".")).resolve()


def installer_for(root: Path, name: str, runtime: str | None = None) -> Installer:
    """The swarm installer for a service installed (or being installed) on Docker Swarm."""
    settings = load_settings(ServiceLayout(root, name))
    if runtime == "swarm" or (settings is not None and settings.runtime == "swarm"):
        from inferpack.deploy.swarm.installer import SwarmInstaller

        return SwarmInstaller(root)
    return Installer(root)


def _installer(args: argparse.Namespace) -> Installer:
    return installer_for(work_root(args.work_root), args.name, getattr(args, "runtime", None))


@_one_line_errors
def _install(args: argparse.Namespace) -> int:
    options = InstallOptions(
        port=args.port,
        bind=args.bind,
        errors_as_200=args.errors_as_200,
        gpu=args.gpu,
        license_file=args.license,
        runtime=args.runtime,
        replicas=args.replicas,
        force=args.force,
        gate_timeout_s=args.timeout,
    )
    if args.replicas != 1 and args.runtime != "swarm":
        raise InstallError("--replicas needs --runtime swarm: one host serves one instance per service")
    _installer(args).install(args.name, package_root(), options)
    return 0


@_one_line_errors
def _update(args: argparse.Namespace) -> int:
    _installer(args).update(
        args.name,
        args.package.resolve(),
        gate_timeout_s=args.timeout,
        allow_task_change=args.allow_task_change,
    )
    return 0


@_one_line_errors
def _rollback(args: argparse.Namespace) -> int:
    _installer(args).rollback(args.name, args.to, gate_timeout_s=args.timeout)
    return 0


@_one_line_errors
def _start(args: argparse.Namespace) -> int:
    _installer(args).start(args.name)
    return 0


@_one_line_errors
def _remove(args: argparse.Namespace) -> int:
    _installer(args).remove(args.name, purge=args.purge)
    return 0


@_one_line_errors
def _gc(args: argparse.Namespace) -> int:
    root = work_root(args.work_root)
    with work_root_lock(root):
        if not remove_unused(root):
            print(f"every Python environment under {root / ENVIRONMENTS} is in use")
    return 0


@_one_line_errors
def _scale(args: argparse.Namespace) -> int:
    from inferpack.deploy.swarm.installer import SwarmInstaller

    installer = _installer(args)
    if not isinstance(installer, SwarmInstaller):
        raise InstallError(f"{args.name} does not run on Docker Swarm: only a swarm service scales")
    installer.scale(args.name, args.replicas, args.timeout)
    return 0


@_one_line_errors
def _list(args: argparse.Namespace) -> int:
    root = work_root(args.work_root)
    services = installed_services(root)
    for note in ignored_folders(root):
        print(f"note: {note}")
    if not services:
        print(f"no service is installed under {work_root(args.work_root)}")
        return 0
    print(f"{'NAME':<20} {'VERSION':<12} {'PORT':<6} {'RUNTIME':<8} STATE")
    for layout in services:
        status = service_status(layout)
        state = "healthy" if status.healthy else "NOT healthy"
        print(
            f"{layout.name:<20} {status.serving or '-':<12} {status.settings.port:<6} "
            f"{status.settings.runtime:<8} {state}"
        )
    return 0


@_one_line_errors
def _status(args: argparse.Namespace) -> int:
    status = service_status(ServiceLayout(work_root(args.work_root), args.name))
    print("\n".join(describe(status)))
    return 0 if status.healthy else 1


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--work-root", type=Path, help="default $INFERPACK_WORK_ROOT or /opt/inferpack/work")


def add_operator_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    install = subparsers.add_parser("install", help="install this package's service and start it")
    install.add_argument("name", help="deploy name (the package's)")
    install.add_argument("--port", type=port_number, default=8080, help="public port, 1-65535 (default 8080)")
    install.add_argument(
        "--bind",
        default=ALL_INTERFACES,
        metavar="ADDR",
        help=f"address the public port listens on (default {ALL_INTERFACES}: every interface, as EasyDL; "
        "127.0.0.1: this host only)",
    )
    install.add_argument(
        "--errors-as-200",
        action="store_true",
        help="answer prediction errors with HTTP 200 and the same EasyDL JSON, for legacy clients "
        "that read the body only on 200 (default: the proper HTTP status)",
    )
    install.add_argument("--gpu", type=int, help="GPU index to serve on")
    install.add_argument("--license", type=Path, help="license file (default: licenses/NAME.lic)")
    install.add_argument(
        "--runtime",
        choices=("auto", *RUNTIMES),
        default="auto",
        help="docker: containers of the package's image; process: local processes with this Python, "
        "for hosts without Docker; swarm: replicated services on a Docker Swarm (run on a manager); "
        "auto (default): docker when a Docker Engine answers, else process",
    )
    install.add_argument("--replicas", type=int, default=1, help="swarm: replicas across the swarm")
    install.add_argument("--force", action="store_true", help="go on past failed environment checks")
    install.set_defaults(handler=_install)

    update = subparsers.add_parser("update", help="serve a new version from a full or update package")
    update.add_argument("name")
    update.add_argument("package", type=Path, help="the package .tar.gz (or an unpacked, verified folder)")
    update.add_argument(
        "--allow-task-change",
        action="store_true",
        help="serve it even though its task (route) or label set differs from the serving version",
    )
    update.set_defaults(handler=_update)

    rollback = subparsers.add_parser("rollback", help="serve the previous (or a named) installed version")
    rollback.add_argument("name")
    rollback.add_argument("--to", help="version to go back to (default: the previous one)")
    rollback.set_defaults(handler=_rollback)

    start = subparsers.add_parser("start", help="(re)create an installed service from its saved settings")
    start.add_argument("name")
    start.set_defaults(handler=_start)

    remove = subparsers.add_parser("remove", help="stop and delete the service's containers/processes")
    remove.add_argument("name")
    remove.add_argument("--purge", action="store_true", help="also delete versions, license, logs, data")
    remove.set_defaults(handler=_remove)

    listing = subparsers.add_parser("list", help="installed services")
    listing.set_defaults(handler=_list)

    gc = subparsers.add_parser("gc", help="delete the Python environments no installed service uses")
    gc.set_defaults(handler=_gc)

    status = subparsers.add_parser("status", help="one service: version, health, port, license, uptime")
    status.add_argument("name")
    status.set_defaults(handler=_status)

    scale = subparsers.add_parser("scale", help="swarm: run N replicas of the service")
    scale.add_argument("name")
    scale.add_argument("replicas", type=int)
    scale.set_defaults(handler=_scale)

    for parser in (install, update, rollback, start, remove, listing, gc, status, scale):
        _common(parser)
    for parser in (install, update, rollback, scale):
        parser.add_argument(
            "--timeout", type=float, default=180.0, help="seconds a new version has to pass its checks"
        )
