"""The clock guard: refuses a system clock set back to stretch a license past its end date.

The latest time seen is kept in a small JSON state file, MAC'd with a key bound to this machine
(its machine-id hash, or the next steadiest component), so an edited file, or one copied from
another machine, fails its check. Time moving forward is fine and advances the mark; moving back
by more than a tolerance fails.

Limits, honestly: the key derivation ships in this code, so a determined root user can forge
the file, and a *missing* file must read as a first start (a fresh install has none), so
deleting it also clears the mark. The guard stops casual clock games and says clearly what
happened; it is not a secure timestamp.

Support reset (see licenses/README.md): a license issued with ``clock_reset`` re-bases the mark
to the current time once; its issue id is recorded, so the same file never resets it again.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
from dataclasses import dataclass
from datetime import datetime, timedelta
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


class ClockGuard:
    def __init__(self, state_path: Path, key: bytes, tolerance: timedelta = DEFAULT_TOLERANCE) -> None:
        self.state_path = state_path
        self._key = key
        self.tolerance = tolerance

    def _mac(self, body: dict[str, object]) -> str:
        canonical = json.dumps(body, sort_keys=True, separators=(",", ":")).encode()
        return hmac.new(self._key, canonical, hashlib.sha256).hexdigest()

    def _load(self) -> _State | None:
        """The stored state; None on first start; LicenseError when it is unreadable or forged."""
        try:
            raw = self.state_path.read_bytes()
        except FileNotFoundError:
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
        try:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            write_atomic(self.state_path, json.dumps(body).encode())
        except OSError as exc:
            # Fail closed: a guard that cannot remember time guards nothing.
            raise LicenseError(
                f"cannot write the clock state {self.state_path}: {exc.strerror or exc}"
            ) from None

    def check(self, now: datetime, reset_id: str | None = None) -> None:
        """Records ``now``; LicenseError when the clock went back beyond the tolerance.

        ``reset_id``: the issue id of a verified clock-reset license; the first time it is seen it
        clears a rollback or a damaged state file and is recorded as used.
        """
        now = require_aware(now).replace(microsecond=0)
        try:
            state = self._load()
        except LicenseError:
            if reset_id is None:
                raise
            log.warning("clock state %s was damaged; reset by license %s", self.state_path, reset_id)
            self._store(_State(now, (reset_id,)))
            return
        if state is None:
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
        elif now > state.last_seen or fresh_reset:
            self._store(_State(max(now, state.last_seen), resets))
