"""LicenseGuard as a server holds it: start check, cheap gate, hot removal and hot swap, expiry."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferpack.errors import AuthCheckFailed
from inferpack.license.fingerprint import Fingerprint
from inferpack.license.guard import LicenseGuard
from inferpack.license.install import replace_license

from ._fakes import GPU_UUIDS, T0, FakeHost

MakeLicense = Callable[..., str]


class Clock:
    """A settable wall clock for the guard."""

    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock(T0 + timedelta(days=1))


@pytest.fixture
def license_path(tmp_path: Path, make_license: MakeLicense) -> Path:
    path = tmp_path / "license" / "license.lic"
    path.parent.mkdir()
    path.write_text(make_license(days=30, max_qps=20, max_instances=2))
    return path


@pytest.fixture
def guard(
    tmp_path: Path, license_path: Path, vendor_key: Ed25519PrivateKey, host: FakeHost, clock: Clock
) -> LicenseGuard:
    return LicenseGuard(
        license_path,
        vendor_key.public_key(),
        "cats",
        clock_state_path=tmp_path / "state" / "license-clock.json",
        root=host.root,
        recheck_interval_s=0.2,
        poll_interval_s=0.02,
        gpu_source=lambda: list(GPU_UUIDS),
        now=clock,
    )


@pytest.fixture
async def running(guard: LicenseGuard) -> AsyncIterator[LicenseGuard]:
    task = asyncio.create_task(guard.run_forever())
    await _until(lambda: guard.state.valid, within_s=2)
    yield guard
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


async def _until(condition: Callable[[], bool], within_s: float) -> float:
    """Seconds until ``condition`` held; fails the test after ``within_s``."""
    start = time.monotonic()
    while not condition():
        assert time.monotonic() - start < within_s, "condition not reached in time"
        await asyncio.sleep(0.01)
    return time.monotonic() - start


def test_unchecked_guard_refuses(guard: LicenseGuard) -> None:
    with pytest.raises(AuthCheckFailed, match="not been checked yet"):
        guard.require()
    assert guard.max_qps is None


def test_check_at_start_then_a_cheap_gate(guard: LicenseGuard, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="inferpack.license"):
        state = guard.check()
    assert state.valid, state.reason
    assert guard.state is state
    guard.require()
    assert (guard.max_qps, guard.max_instances) == (20.0, 2)
    assert "license valid" in caplog.text
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="inferpack.license"):
        guard.check()
    assert caplog.text == ""  # only changes are logged


def test_refusal_is_a_337000_with_the_reason(guard: LicenseGuard, license_path: Path) -> None:
    license_path.unlink()
    guard.check()
    with pytest.raises(AuthCheckFailed) as err:
        guard.require()
    assert err.value.code == 337000
    assert err.value.error_msg == f"Auth check failed: no license file at {license_path}"
    assert guard.max_qps is None and guard.max_instances is None


def test_too_few_live_components_is_a_refusal_never_a_fallback(guard: LicenseGuard, tmp_path: Path) -> None:
    """A host root that hides the machine (``--host-root /empty`` once did it) names the cause."""
    guard.root = tmp_path / "empty"
    reason = guard.check().reason
    assert reason.startswith("cannot identify this machine: only 1 fingerprint component(s) readable under")
    assert "at least 2 needed" in reason


def test_the_clock_guard_runs_inside_the_check(guard: LicenseGuard, clock: Clock) -> None:
    clock.now += timedelta(days=5)
    assert guard.check().valid
    clock.now -= timedelta(days=3)
    assert guard.check().reason.startswith("clock rolled back")


def test_a_tampered_clock_state_is_refused(guard: LicenseGuard) -> None:
    assert guard.check().valid
    guard.clock_state_path.write_text(guard.clock_state_path.read_text().replace("2030", "2029"))
    assert "failed its integrity check" in guard.check().reason


async def test_license_removed_while_running_is_refused_within_the_period(
    running: LicenseGuard, license_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    license_path.unlink()
    with caplog.at_level(logging.WARNING, logger="inferpack.license"):
        took = await _until(lambda: not running.state.valid, within_s=running.recheck_interval_s + 1)
    assert took < running.recheck_interval_s + 1
    assert running.state.reason.startswith("no license file")
    assert "license refused: no license file" in caplog.text
    with pytest.raises(AuthCheckFailed):
        running.require()


async def test_a_new_valid_license_resumes_service_without_restart(
    running: LicenseGuard,
    license_path: Path,
    tmp_path: Path,
    make_license: MakeLicense,
    vendor_key: Ed25519PrivateKey,
    fingerprint: Fingerprint,
    clock: Clock,
) -> None:
    license_path.write_text(make_license(deploy_names=["dogs"]))
    await _until(lambda: not running.state.valid, within_s=2)
    assert "not licensed for deploy name 'cats'" in running.state.reason

    incoming = tmp_path / "incoming.lic"
    incoming.write_text(make_license(days=365, max_qps=99))
    replace_license(license_path, incoming, vendor_key.public_key(), "cats", fingerprint, now=clock.now)
    await _until(lambda: running.state.valid, within_s=2)
    running.require()
    assert running.max_qps == 99.0


async def test_expiry_is_noticed_by_the_periodic_recheck(running: LicenseGuard, clock: Clock) -> None:
    clock.now = T0 + timedelta(days=31)  # the file does not change: only the period catches this
    await _until(lambda: not running.state.valid, within_s=running.recheck_interval_s + 1)
    assert running.state.reason.startswith("expired on")


async def test_a_crashing_check_does_not_leave_a_stale_valid_state(
    running: LicenseGuard, license_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_nvml() -> list[str]:
        raise RuntimeError("driver exploded")

    running._gpu_source = broken_nvml
    with caplog.at_level(logging.ERROR, logger="inferpack.license"):
        license_path.touch()
        await _until(lambda: not running.state.valid, within_s=2)
    assert running.state.reason == "the license check failed unexpectedly; see the server log"
    assert "driver exploded" in caplog.text
