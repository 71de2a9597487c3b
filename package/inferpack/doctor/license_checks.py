"""The service's license as its server sees it: verifies for this machine and deploy name, days
left, which fingerprint components changed since it was issued, and the clock guard's verdict.

The clock is judged with the server's own ``ClockGuard`` on a copy of its state file: the
doctor gives the same answer the server will, and never moves the server's mark itself.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from datetime import datetime
from pathlib import Path

from inferpack.doctor.context import Service
from inferpack.doctor.result import Result, failed, passed, warned
from inferpack.fileio import write_atomic
from inferpack.license._time import format_utc, utcnow
from inferpack.license.clock import STATE_FILE as CLOCK_STATE_FILE
from inferpack.license.clock import ClockGuard, clock_key
from inferpack.license.errors import LicenseError
from inferpack.license.fingerprint import COMPONENT_KINDS, Fingerprint
from inferpack.license.licfile import HostBinding
from inferpack.license.pinned import trusted_key
from inferpack.license.verify import LicenseState, licensed_host, match_fingerprint, verify_license

RENEW_WITHIN_DAYS = 14
MIN_FREE_BYTES = 1 << 20


def _request_step(name: str) -> str:
    return (
        "make a request (python3 install.py fingerprint --out request.json), send it to the vendor, "
        f"then install the new license: python3 install.py lu {name} NEW.lic"
    )


def verify(service: Service, fingerprint: Fingerprint, now: datetime) -> LicenseState | None:
    """The license verified as the server does, minus the clock (a check of its own); None
    when no license is installed."""
    try:
        text = service.layout.license_file.read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as exc:
        return LicenseState(False, f"cannot read {service.layout.license_file}: {exc}")
    try:
        key = trusted_key(service.layout.vendor_key)
    except (OSError, LicenseError) as exc:
        return LicenseState(False, f"the vendor key {service.layout.vendor_key} is unusable: {exc}")
    return verify_license(text, key, service.name, fingerprint, now)


def license_check(service: Service, state: LicenseState | None) -> Result:
    name = service.name
    if state is None:
        return failed(
            name,
            "license",
            f"no license installed ({service.layout.license_file}): every prediction answers 337000",
            _request_step(name),
        )
    if not state.valid:
        reason = state.reason
        if "expired" in reason:
            step = "ask the vendor for a renewed license: " + _request_step(name)
        elif "not valid before" in reason:
            step = "check the system clock (date -u); if it is right, wait until then or ask the vendor"
        elif "wrong machine" in reason:
            step = "this license is for another machine (see the fingerprint check): " + _request_step(name)
        else:
            step = _request_step(name)
        return failed(name, "license", f"refused: {reason}", step)
    summary = state.summary()
    days = summary.get("days_left")
    found = f"valid until {summary.get('not_after')} ({days} days left), {summary.get('matched_components')} "
    found += "fingerprint components match"
    if isinstance(days, int) and days < RENEW_WITHIN_DAYS:
        return warned(name, "license", found, "renew it before it expires: " + _request_step(name))
    return passed(name, "license", found)


def changed_components(host: HostBinding, fingerprint: Fingerprint) -> tuple[list[str], list[str]]:
    """Pure: (licensed kinds whose value differs now, licensed kinds not found on this machine)."""
    changed, missing = [], []
    for kind in COMPONENT_KINDS:  # the fingerprint's own order, steadiest first
        if (licensed := host.components.get(kind)) is None:
            continue
        if kind not in fingerprint.components:
            missing.append(kind)
            continue
        now = fingerprint.components[kind]
        want = set(licensed) if isinstance(licensed, tuple) else {licensed}
        have = set(now) if isinstance(now, tuple) else {now}
        if not want & have:
            changed.append(kind)
    return changed, missing


def fingerprint_check(
    service: Service, state: LicenseState | None, fingerprint: Fingerprint
) -> Result | None:
    """What changed on this machine since the license was issued (needs a genuine license)."""
    if state is None or state.license is None:
        return None
    lic = state.license
    match = state.match or match_fingerprint(lic, fingerprint)
    changed, missing = changed_components(licensed_host(lic, match), fingerprint)
    differences = [f"{k} changed" for k in changed] + [f"{k} not found" for k in missing]
    host = f" (licensed host {match.host} of {match.hosts})" if match.hosts > 1 else ""
    policy = f"{match.matched} of {match.total} match{host}, {match.required} required"
    if match.problem() is not None:
        return failed(
            service.name,
            "fingerprint",
            f"{', '.join(differences) or 'GPUs missing'} ({policy})",
            "if this is the licensed machine, hardware was replaced: " + _request_step(service.name),
        )
    if differences:
        return warned(
            service.name,
            "fingerprint",
            f"{', '.join(differences)} since issue ({policy})",
            "still licensed; one more hardware change will lock it: ask the vendor for a license "
            "for this machine as it is now (python3 install.py fingerprint --out request.json)",
        )
    return passed(service.name, "fingerprint", f"every licensed component matches ({policy})")


def clock_check(service: Service, fingerprint: Fingerprint, now: datetime | None = None) -> Result:
    """The server's clock guard, run on a copy of its state (and its witnesses when it has none):
    rolled back beyond the tolerance? And can the server still write its mark?"""
    now = now or utcnow()
    layout = service.layout
    state = layout.state_dir / CLOCK_STATE_FILE
    if (unwritable := _unwritable(layout.state_dir)) is not None:
        return failed(
            service.name,
            "clock",
            f"the server cannot write its clock mark in {layout.state_dir} ({unwritable}): it serves "
            "with the mark in memory, and a restart forgets what was not written",
            f"free disk space under {layout.state_dir} (the logs are capped; look for other files)",
        )
    witnesses = (layout.state_dir, layout.logs_dir, layout.license_file)
    with tempfile.TemporaryDirectory(prefix="inferpack-doctor-") as scratch:
        copy = Path(scratch) / CLOCK_STATE_FILE
        try:
            if state.is_file():
                shutil.copyfile(state, copy)
            ClockGuard(copy, clock_key(fingerprint), witnesses=witnesses).check(now)
        except OSError as exc:
            return failed(
                service.name,
                "clock",
                f"cannot read the clock mark {state}: {exc.strerror}",
                "run as root (sudo bash trouble_shooting.sh)",
            )
        except LicenseError as exc:
            return failed(
                service.name,
                "clock",
                f"{exc.reason.split('; ')[0]} (guard state {state})",
                "set the system clock right (date -u; timedatectl set-ntp true); if it was right, "
                "ask the vendor's support for a clock-reset license (licenses/README.md)",
            )
    return passed(
        service.name, "clock", f"system clock {format_utc(now)} is not behind the server's last mark"
    )


def _unwritable(folder: Path) -> str | None:
    """Why the server could not write a small file in ``folder`` now, or None if it could."""
    if folder.is_dir() and shutil.disk_usage(folder).free < MIN_FREE_BYTES:  # what non-root gets
        return "the disk is full"
    probe = folder / f".doctor-probe-{os.getpid()}"
    try:
        write_atomic(probe, b"\0" * 4096)
        probe.unlink()
    except OSError as exc:
        return exc.strerror or str(exc)
    return None


def checks(service: Service, fingerprint: Fingerprint, now: datetime | None = None) -> list[Result]:
    now = now or utcnow()
    state = verify(service, fingerprint, now)
    results = [license_check(service, state)]
    if (changes := fingerprint_check(service, state, fingerprint)) is not None:
        results.append(changes)
    results.append(clock_check(service, fingerprint, now))
    return results
