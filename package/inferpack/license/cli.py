"""The license verbs of the inferpack CLI: ``license keygen|issue|show`` and ``fingerprint``.

``add_license_commands(subparsers)`` registers them; each sets ``handler`` to a function of the
parsed arguments that returns the exit code: 0 ok, 1 with one line on stderr, 2 for usage
(argparse's own errors).
"""

from __future__ import annotations

import argparse
import sys
from datetime import date
from pathlib import Path

from inferpack.cli_errors import one_line_errors
from inferpack.fileio import write_new
from inferpack.license._io import read_text
from inferpack.license._time import format_utc
from inferpack.license.errors import LicenseError
from inferpack.license.fingerprint import COMPONENT_KINDS, collect, read_request, write_request
from inferpack.license.keys import generate_keypair, key_id, load_private_key, load_public_key
from inferpack.license.licfile import TRIAL_DAYS, License, issue_license, parse_license
from inferpack.license.verify import match_fingerprint, verify_license

_FAILURES = (LicenseError, OSError, ValueError)


def _iso_date(text: str) -> date:
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a date as YYYY-MM-DD, got {text!r}") from None


def _unsafe_key_location(directory: Path) -> Path | None:
    """A git work tree or deploy package at or above ``directory``: no place for a private key."""
    resolved = directory.resolve()
    for folder in (resolved, *resolved.parents):
        for marker in (".git", "manifest.json", "manifest.sig"):
            if (folder / marker).exists():
                return folder / marker
    return None


@one_line_errors(_FAILURES, "inferpack license keygen")
def _keygen(args: argparse.Namespace) -> int:
    if marker := _unsafe_key_location(args.out):
        raise LicenseError(
            f"refusing to write a private key under {marker.parent} ({marker.name} found: a repository "
            "or a package); choose a folder outside any repository or package"
        )
    private_path, public_path = generate_keypair(args.out, args.name)
    print(f"private key {private_path} (mode 0600: keep it offline, never in a package or repository)")
    public_id = key_id(load_public_key(public_path))
    print(f"public key  {public_path} (key id {public_id}; embed it in deploy packages)")
    return 0


@one_line_errors(_FAILURES, "inferpack license issue")
def _issue(args: argparse.Namespace) -> int:
    requests = [read_request(path) for path in args.request]
    text = issue_license(
        load_private_key(args.key),
        requests,
        [name.strip() for name in args.deploy.split(",") if name.strip()],
        days=args.days,
        until=args.until,
        trial=args.trial,
        max_instances=args.max_instances,
        max_qps=args.max_qps,
        gpu=args.gpu,
        licensee=args.licensee,
        min_matches=args.min_matches,
        clock_reset=args.clock_reset,
    )
    write_new(args.out, text.encode(), 0o644)
    lic = parse_license(text)
    for number, host in enumerate(lic.hosts, 1):
        if len(host.components) < 3:
            which = f" (host {number}, {args.request[number - 1]})" if len(lic.hosts) > 1 else ""
            weak = f"only {len(host.components)} fingerprint component(s){which}; the machine binding is weak"
            print(f"warning: {weak}", file=sys.stderr)
    names = ", ".join(lic.deploy_names)
    hosts = f", {len(lic.hosts)} hosts" if len(lic.hosts) > 1 else ""
    print(f"wrote {args.out}: deploy {names}{hosts}, valid {lic.validity()}, issue id {lic.issue_id}")
    return 0


def _host_rows(lic: License) -> list[tuple[str, str]]:
    """A components and a policy row per licensed host (numbered when there are several)."""
    rows = []
    for number, host in enumerate(lic.hosts, 1):
        gpus = host.policy.require_gpus
        need = f"at least {host.policy.min_matches} matching" + (
            f", {len(gpus)} licensed GPU(s) present" if gpus else ""
        )
        suffix = f" {number}" if len(lic.hosts) > 1 else ""
        rows.append((f"components{suffix}", ", ".join(k for k in COMPONENT_KINDS if k in host.components)))
        rows.append((f"policy{suffix}", need))
    return rows


@one_line_errors(_FAILURES, "inferpack license show")
def _show(args: argparse.Namespace) -> int:
    text = read_text(args.file, "license file")
    lic = parse_license(text)
    fingerprint = collect(args.root, args.snapshot)
    limits = lic.limits
    rows = [
        ("licensee", lic.licensee or "(none)"),
        ("deploy names", ", ".join(lic.deploy_names)),
        ("valid", lic.validity()),
        ("issued", f"{format_utc(lic.issued_at)}, issue id {lic.issue_id}"),
        ("vendor key id", lic.key_id),
        ("limits", f"max_instances {limits.max_instances or 'any'}, max_qps {limits.max_qps or 'any'}"),
        *_host_rows(lic),
        ("clock reset", "yes (one-shot)" if lic.clock_reset else "no"),
    ]
    match = match_fingerprint(lic, fingerprint)
    host = f" (licensed host {match.host})" if match.hosts > 1 else ""
    rows.append(
        ("this machine", match.problem() or f"{match.matched} of {match.total} components match{host}")
    )
    if args.public_key is None:
        verdict, code = "signature not checked (pass --public-key to verify)", 0
    else:
        state = verify_license(text, load_public_key(args.public_key), args.deploy, fingerprint)
        verdict, code = ("yes" if state.valid else f"no: {state.reason}"), (0 if state.valid else 1)
        if state.valid and args.deploy is None:
            verdict += " (deploy name not checked: pass --deploy)"
    rows.append(("verifies here", verdict))
    print(f"license {args.file}")
    for label, value in rows:
        print(f"  {label + ':':<15} {value}")
    return code


@one_line_errors(_FAILURES, "inferpack fingerprint")
def _fingerprint(args: argparse.Namespace) -> int:
    fingerprint = collect(args.root, args.snapshot)
    print(f"fingerprint of {fingerprint.summary.get('hostname') or 'this machine'} (read below {args.root})")
    for kind in COMPONENT_KINDS:
        value = fingerprint.components.get(kind)
        if value is None:
            print(f"  {kind:<13} missing")
        else:
            count = f"{len(value)}, " if isinstance(value, tuple) else ""
            print(f"  {kind:<13} found ({count}{fingerprint.sources[kind]})")
    print(f"{len(fingerprint.found)} of {len(COMPONENT_KINDS)} components found")
    if not fingerprint.found:
        raise LicenseError("no fingerprint component is readable here; run it on the host, as root")
    if args.out is None:
        print("pass --out FILE to write the license request for your vendor")
    else:
        write_request(args.out, fingerprint)
        print(f"wrote the license request {args.out}: send it to your vendor")
    return 0


def add_license_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Adds ``license {keygen,issue,show}`` and ``fingerprint`` to the CLI's subparsers."""
    lic = subparsers.add_parser("license", help="vendor license tooling: keygen, issue, show")
    verbs = lic.add_subparsers(dest="license_command", required=True)

    keygen = verbs.add_parser("keygen", help="make the vendor's Ed25519 key pair")
    keygen.add_argument("--out", type=Path, required=True, help="folder for NAME.key (0600) and NAME.pub")
    keygen.add_argument("--name", default="vendor", help="file name stem (default: vendor)")
    keygen.set_defaults(handler=_keygen)

    issue = verbs.add_parser("issue", help="sign a license for a customer's fingerprint request")
    issue.add_argument("--key", type=Path, required=True, help="vendor private key (PEM)")
    issue.add_argument(
        "--request",
        type=Path,
        required=True,
        action="append",
        help="the customer's fingerprint request JSON; repeat it, one per node, for a cluster license",
    )
    issue.add_argument("--deploy", required=True, help="deploy name(s), comma-separated")
    span = issue.add_mutually_exclusive_group(required=True)
    span.add_argument("--days", type=int, help="valid for N days from now")
    span.add_argument("--until", type=_iso_date, help="valid through this UTC date (YYYY-MM-DD)")
    span.add_argument("--trial", action="store_true", help=f"a trial license: {TRIAL_DAYS} days")
    issue.add_argument(
        "--max-instances", type=int, help="service instances (replicas, across a cluster) allowed"
    )
    issue.add_argument("--max-qps", type=float, help="requests per second the server admits")
    issue.add_argument("--gpu", action="store_true", help="bind to the request's GPU(s) too")
    issue.add_argument("--licensee", default="", help="customer name shown in the license")
    issue.add_argument("--min-matches", type=int, help="fingerprint components that must match")
    issue.add_argument("--clock-reset", action="store_true", help="support: clear a clock-rollback lock once")
    issue.add_argument("--out", type=Path, required=True, help="license file to write (never overwritten)")
    issue.set_defaults(handler=_issue)

    show = verbs.add_parser("show", help="print a license and whether it verifies on this machine")
    show.add_argument("file", type=Path)
    show.add_argument("--public-key", type=Path, help="vendor public key: verify the signature too")
    show.add_argument("--deploy", help="check that this deploy name is licensed")
    show.add_argument(
        "--root", type=Path, default=Path("/"), help="where the host's identifiers are (default /)"
    )
    show.add_argument("--snapshot", type=Path, help="host fingerprint snapshot (inside a container)")
    show.set_defaults(handler=_show)

    fingerprint = subparsers.add_parser("fingerprint", help="this machine's fingerprint and license request")
    fingerprint.add_argument("--out", type=Path, help="write the license request JSON here")
    fingerprint.add_argument(
        "--root", type=Path, default=Path("/"), help="where the host's identifiers are (default /)"
    )
    fingerprint.add_argument("--snapshot", type=Path, help="host fingerprint snapshot (inside a container)")
    fingerprint.set_defaults(handler=_fingerprint)
