"""LicenseGuard: the license state a running server holds and gates every request on."""

from __future__ import annotations

import asyncio
import logging
import os
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from inferpack.errors import AuthCheckFailed
from inferpack.license._io import read_text
from inferpack.license._time import utcnow
from inferpack.license.clock import DEFAULT_TOLERANCE, ClockGuard, clock_key
from inferpack.license.errors import LicenseError
from inferpack.license.fingerprint import collect
from inferpack.license.registry import Registration
from inferpack.license.sources import GpuSource
from inferpack.license.verify import LicenseState, verify_license

log = logging.getLogger("inferpack.license")

_FileStamp = tuple[int, int, int, int] | None
MIN_LIVE_COMPONENTS = 2  # machine-id and the CPU model are readable on any Linux host


def _stamp(path: Path) -> _FileStamp:
    try:
        st = os.stat(path)
    except OSError:
        return None
    # The inode changes when `lu` swaps the file in with a rename; mtime/size catch edits in place.
    return st.st_dev, st.st_ino, st.st_size, st.st_mtime_ns


def _identity(state: LicenseState) -> tuple[bool, str, str | None]:
    """What makes a state change worth a log line: validity, reason, or another license."""
    return state.valid, state.reason, state.license.issue_id if state.license else None


class LicenseGuard:
    """Verifies ``license_path`` at ``check()``, then from ``run_forever()`` every
    ``recheck_interval_s`` and within ``poll_interval_s`` of the file changing, so a swapped,
    removed or expired license takes effect without a restart.

    The machine is fingerprinted afresh at every check, live, below ``root`` (a container has
    the host's identifiers mounted read-only there); fewer than ``MIN_LIVE_COMPONENTS`` read is
    a refusal, never a fallback to a file. The clock guard keeps its state in
    ``clock_state_path``, which must persist across container recreates.
    """

    def __init__(
        self,
        license_path: Path,
        public_key: Ed25519PublicKey,
        deploy_name: str,
        *,
        clock_state_path: Path,
        clock_witnesses: Sequence[Path] = (),
        registration: Registration | None = None,
        root: Path = Path("/"),
        recheck_interval_s: float = 60.0,
        poll_interval_s: float = 1.0,
        clock_tolerance: timedelta = DEFAULT_TOLERANCE,
        gpu_source: GpuSource | None = None,
        now: Callable[[], datetime] = utcnow,
    ) -> None:
        self.license_path = license_path
        self.public_key = public_key
        self.deploy_name = deploy_name
        self.clock_state_path = clock_state_path
        self.clock_witnesses = clock_witnesses
        self.registration = registration
        self._share = 1  # services on this host serving the same license: they split max_qps
        self._clock_seen: datetime | None = None  # the mark, also when it could not be written
        self.clock_unsaved: str | None = None  # why not, while it cannot (the doctor FAILs it)
        self.root = root
        self.recheck_interval_s = recheck_interval_s
        self.poll_interval_s = poll_interval_s
        self.clock_tolerance = clock_tolerance
        self._gpu_source = gpu_source
        self._now = now
        self._state = LicenseState(False, "the license has not been checked yet")

    @property
    def state(self) -> LicenseState:
        """The latest check's result."""
        return self._state

    def check(self) -> LicenseState:
        """Re-reads the license file and the fingerprint, verifies, and keeps the result."""
        state = self._registered(self._verify(self._now()))
        previous, self._state = self._state, state
        if _identity(state) != _identity(previous):
            if state.valid:
                log.info("license valid: %s", state.summary())
            else:
                log.warning("license refused: %s", state.reason)
        return state

    def _verify(self, now: datetime) -> LicenseState:
        try:
            text = read_text(self.license_path, "license file")
            fingerprint = collect(self.root, gpu_source=self._gpu_source)
        except LicenseError as exc:
            return LicenseState(False, exc.reason, checked_at=now)
        if len(fingerprint.components) < MIN_LIVE_COMPONENTS:
            found = ", ".join(fingerprint.found) or "none"
            return LicenseState(
                False,
                f"cannot identify this machine: only {len(fingerprint.components)} fingerprint "
                f"component(s) readable under {self.root} ({found}), at least {MIN_LIVE_COMPONENTS} needed",
                checked_at=now,
            )
        clock = ClockGuard(
            self.clock_state_path,
            clock_key(fingerprint),
            self.clock_tolerance,
            witnesses=(self.clock_state_path.parent, *self.clock_witnesses),
            remembered=self._clock_seen,
        )
        state = verify_license(text, self.public_key, self.deploy_name, fingerprint, now, clock)
        self._clock_seen, self.clock_unsaved = clock.remembered, clock.unsaved
        return state

    def _registered(self, state: LicenseState) -> LicenseState:
        """``state``, unless this host already runs ``max_instances`` other services on it."""
        registration = self.registration
        if registration is None:
            return state
        if not state.valid or state.license is None:
            registration.release()
            return state
        limits = state.license.limits
        if (full := registration.claim(state.license.issue_id, limits.max_instances)) is not None:
            return LicenseState(False, full, state.license, state.match, state.checked_at)
        self._share = registration.live_count()
        return state

    async def run_forever(self) -> None:
        """Checks at once, then keeps the state current until cancelled (a cheap stat per poll)."""
        stamp = _stamp(self.license_path)
        await self._check_in_thread()
        checked_at = time.monotonic()
        while True:
            await asyncio.sleep(self.poll_interval_s)
            if self.registration is not None and self.max_qps is not None:
                self._share = self.registration.live_count()  # a few syscalls: follows starts/stops
            current = _stamp(self.license_path)
            if current != stamp or time.monotonic() - checked_at >= self.recheck_interval_s:
                stamp = current
                await self._check_in_thread()
                checked_at = time.monotonic()

    async def _check_in_thread(self) -> None:
        # File reads and NVML queries block: keep them off the event loop.
        try:
            await asyncio.to_thread(self.check)
        except Exception:
            # A check that crashed must not leave an earlier "valid" standing.
            log.exception("license check failed")
            self._state = LicenseState(False, "the license check failed unexpectedly; see the server log")

    def close(self) -> None:
        """Leaves the host-wide registry (a process that exits leaves it anyway)."""
        if self.registration is not None:
            self.registration.release()

    def require(self) -> None:
        """Raises AuthCheckFailed (337000) with the reason unless the last check passed; no I/O."""
        state = self._state
        if not state.valid:
            raise AuthCheckFailed(state.reason)

    @property
    def max_qps(self) -> float | None:
        """This server's share of the valid license's limit (split between the services serving
        it on this host); None without a limit or a valid license."""
        state = self._state  # one read: the checking thread may replace it meanwhile
        limit = state.license.limits.max_qps if state.valid and state.license else None
        return limit / self._share if limit is not None else None

    @property
    def max_instances(self) -> int | None:
        state = self._state
        return state.license.limits.max_instances if state.valid and state.license else None


class RefusedLicense:
    """What a server holds when it cannot even start checking (no license given, no vendor key):
    the same gate as LicenseGuard, refusing with ``reason``. Development mode holds no gate."""

    def __init__(self, reason: str) -> None:
        self.state = LicenseState(False, reason)

    def check(self) -> LicenseState:
        return self.state

    async def run_forever(self) -> None:
        return None

    def close(self) -> None:
        return None

    def require(self) -> None:
        raise AuthCheckFailed(self.state.reason)

    max_qps: float | None = None
    max_instances: int | None = None
    clock_unsaved: str | None = None
