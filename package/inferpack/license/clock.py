"""The clock guard: refuses a system clock set back to stretch a license past its end date.

The latest time seen is kept in a small JSON state file, MAC'd with a key bound to this machine
(its machine-id hash, or the next steadiest component), so an edited file, or one copied from
another machine, fails its check. Time moving forward is fine and advances the mark; moving back
by more than a tolerance fails.

Deleting the file does not clear the mark: a missing or unreadable file is judged against other
witnesses of the latest time seen, which the server writes anyway: the newest modification time
among ``witnesses`` (its logs, its state folder, the license file) and the license's own signed
issue time. Only with every witness gone (or back-dated) does a missing file read as a first start.

A full disk does not lock anyone out: a mark that cannot be written is kept in memory
(``remembered``), logged, and reported in ``unsaved`` (the doctor FAILs it); the license is not
refused for it. A restart then forgets what was not written; the witnesses still stand.

Limits, honestly: the key derivation ships in this code, so a determined root user can forge
the file, and can back-date every witness (``touch -d``). The guard stops casual clock games and
says clearly what happened; it is not a secure timestamp.

Support reset (see licenses/README.md): a license issued with ``clock_reset`` re-bases the mark
to the current time once; its issue id is recorded, so the same file never resets it again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from inferpack.fileio import write_atomic
from inferpack.license._time import format_utc, parse_utc, require_aware
from inferpack.license.errors import LicenseError
from inferpack.license.fingerprint import APP_KEY, Fingerprint

log = logging.getLogger("inferpack.license")

DEFAULT_TOLERANCE = timedelta(hours=24)
STATE_FILE = "license-clock.json"  # the server keeps it in its state dir; trouble_shooting reads it
_STATE_VERSION = 1
_RESET_HINT = "ask the vendor's support for a clock-reset license (licenses/README.md)"


_KEY_ANCHORS = ("machine_id", "product_uuid", "board_serial", "disk_serial")


def clock_key(fingerprint: Fingerprint) -> bytes:
    """The state file's MAC key, bound to the steadiest component found (machine-id first).

    One component, not all: a key over every component would change with a replaced NIC and
    turn an allowed hardware change into a "tampered" lock-out.
    """
    anchor = next((fingerprint.components[k] for k in _KEY_ANCHORS if k in fingerprint.components), "")
    return hmac.new(APP_KEY, b"clock-guard\0" + str(anchor).encode(), hashlib.sha256).digest()


@dataclass(frozen=True)
class _State:
    last_seen: datetime
    resets: tuple[str, ...]  # issue ids of clock-reset licenses already used


def newest_mtime(paths: Sequence[Path]) -> tuple[datetime, Path] | None:
    """The latest modification time among ``paths`` and what lies up to two levels inside those
    that are folders (a service's logs/<slot>/server.log), with its path; None when none is."""
    newest: tuple[float, Path] | None = None
    pending = [(path, 2) for path in paths]
    while pending:
        path, depth = pending.pop()
        try:
            mtime = path.stat().st_mtime
            inside = list(path.iterdir()) if depth and path.is_dir() else []
        except OSError:
            continue
        if newest is None or mtime > newest[0]:
            newest = (mtime, path)
        pending.extend((child, depth - 1) for child in inside)
    return (datetime.fromtimestamp(newest[0], UTC), newest[1]) if newest else None


class ClockGuard:
    def __init__(
        self,
        state_path: Path,
        key: bytes,
        tolerance: timedelta = DEFAULT_TOLERANCE,
        *,
        witnesses: Sequence[Path] = (),
        remembered: datetime | None = None,
    ) -> None:
        """``witnesses``: files and folders whose modification times stand in for a missing
        state file; ``remembered``: the mark kept in memory by the previous check."""
        self.state_path = state_path
        self._key = key
        self.tolerance = tolerance
        self.witnesses = witnesses
        self.remembered = remembered
        self.unsaved: str | None = None  # why the mark could not be written, if it could not

    def _mac(self, body: dict[str, object]) -> str:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(self._key, canonical, hashlib.sha256).hexdigest()

    def _load(self) -> _State | None:
        """The stored state; None on first start; LicenseError when it is unreadable or forged."""
        try:
            raw = self.state_path.read_bytes()
        except (FileNotFoundError, NotADirectoryError):  # no file there (then witnesses judge)
            return None
        except OSError as exc:
            raise LicenseError(
                f"cannot read the clock state {self.state_path}: {exc.strerror or exc}; {_RESET_HINT}"
            ) from None
        try:
            data = json.loads(raw)  # bad UTF-8 is a ValueError too
            mac = data.pop("mac")
            genuine = isinstance(mac, str) and hmac.compare_digest(mac, self._mac(data))
            if genuine and data["version"] == _STATE_VERSION:
                return _State(parse_utc(data["last_seen"]), tuple(str(r) for r in data["resets"]))
        except (ValueError, TypeError, KeyError, AttributeError):
            pass
        raise LicenseError(
            f"the clock state {self.state_path} failed its integrity check (edited, copied from another "
            f"machine, or damaged); {_RESET_HINT}"
        )

    def _store(self, state: _State) -> None:
        body: dict[str, object] = {
            "version": _STATE_VERSION,
            "last_seen": format_utc(state.last_seen),
            "resets": list(state.resets),
        }
        body["mac"] = self._mac(body)
        self.remembered = state.last_seen
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.state_path, json.dumps(body).encode())
            self.unsaved = None
        except OSError as exc:
            # Degrade, never lock out: the mark stays in memory (and the witnesses on disk).
            self.unsaved = (
                f"cannot write the clock state {self.state_path}: {exc.strerror or exc}; "
                "the mark is kept in memory until it can be written"
            )
            log.warning("%s", self.unsaved)

    def check(self, now: datetime, reset_id: str | None = None, issued_at: datetime | None = None) -> None:
        """Records ``now``; LicenseError when the clock went back beyond the tolerance.

        ``reset_id``: the issue id of a verified clock-reset license; the first time it is seen it
        clears a rollback or a damaged state file and is recorded as used. ``issued_at``: the
        license's signed issue time, a witness no file operation can move.
        """
        now = require_aware(now).replace(microsecond=0)
        if issued_at is not None and now < issued_at - self.tolerance:
            raise LicenseError(f"clock rolled back (now {format_utc(now)}, before the license was "
                               f"issued at {format_utc(issued_at)})")  # fmt: skip
        try:
            state = self._load()
        except LicenseError:
            if reset_id is None:
                raise
            log.warning("clock state %s was damaged; reset by license %s", self.state_path, reset_id)
            self._store(_State(now, (reset_id,)))
            return
        unwritten = self.remembered is not None and (state is None or state.last_seen < self.remembered)
        if unwritten:
            assert self.remembered is not None
            state = _State(self.remembered, state.resets if state else ())  # written or not, it was seen
        if state is None:
            if reset_id is None:
                self._check_witnesses(now)
            self._store(_State(now, (reset_id,) if reset_id else ()))
            return
        resets = state.resets
        if reset_id is not None and reset_id not in resets:
            resets = (*resets, reset_id)
        fresh_reset = resets != state.resets
        if now < state.last_seen - self.tolerance:
            if not fresh_reset:
                raise LicenseError(
                    f"clock rolled back (now {format_utc(now)}, last seen {format_utc(state.last_seen)})"
                )
            log.warning("clock rollback to %s cleared by clock-reset license %s", format_utc(now), reset_id)
            self._store(_State(now, resets))
        elif now > state.last_seen or fresh_reset or unwritten:
            self._store(_State(max(now, state.last_seen), resets))

    def _check_witnesses(self, now: datetime) -> None:
        """With no state file: the newest witness must not be beyond the tolerance ahead of now."""
        newest = newest_mtime(self.witnesses)
        if newest is not None and now < newest[0] - self.tolerance:
            raise LicenseError(
                f"clock rolled back (now {format_utc(now)}, {newest[1]} was written at "
                f"{format_utc(newest[0])}; the clock state {self.state_path} is missing)"
            )
