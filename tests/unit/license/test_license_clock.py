"""The clock guard: first start, forward, rollback within/beyond tolerance, tampering, support reset."""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from inferpack.license.clock import ClockGuard, clock_key
from inferpack.license.errors import LicenseError
from inferpack.license.fingerprint import Fingerprint, hash_component

from ._fakes import T0

KEY = b"k" * 32


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state" / "clock.json"


def _last_seen(path: Path) -> str:
    data: dict[str, str] = json.loads(path.read_text())
    return data["last_seen"]


def test_missing_state_is_a_first_start(state: Path) -> None:
    ClockGuard(state, KEY).check(T0)
    assert _last_seen(state) == "2030-06-01T12:00:00Z"
    assert {p.name for p in state.parent.iterdir()} == {"clock.json"}  # written atomically, no leftovers


def test_forward_advances_and_small_rollbacks_are_tolerated(state: Path) -> None:
    guard = ClockGuard(state, KEY)
    guard.check(T0)
    guard.check(T0 + timedelta(days=3))
    assert _last_seen(state) == "2030-06-04T12:00:00Z"
    guard.check(T0 + timedelta(days=3) - timedelta(hours=23, minutes=59))  # e.g. an NTP correction
    assert _last_seen(state) == "2030-06-04T12:00:00Z"  # the mark never moves back


def test_rollback_beyond_tolerance_is_refused(state: Path) -> None:
    guard = ClockGuard(state, KEY)
    guard.check(T0)
    with pytest.raises(LicenseError) as err:
        guard.check(T0 - timedelta(hours=25))
    assert err.value.reason == "clock rolled back (now 2030-05-31T11:00:00Z, last seen 2030-06-01T12:00:00Z)"
    with pytest.raises(LicenseError, match="clock rolled back"):
        ClockGuard(state, KEY, tolerance=timedelta(hours=1)).check(T0 - timedelta(hours=2))


@pytest.mark.parametrize(
    "damage",
    [
        lambda text: text.replace("2030-06-01", "2020-06-01"),  # edited date, old MAC
        lambda text: "{not json",
        lambda text: json.dumps({"version": 1, "last_seen": "2020-01-01T00:00:00Z", "resets": []}),  # no MAC
        lambda text: "[]",
    ],
)
def test_tampered_state_is_refused(state: Path, damage: Callable[[str], str]) -> None:
    ClockGuard(state, KEY).check(T0)
    state.write_text(damage(state.read_text()))
    with pytest.raises(LicenseError, match=r"failed its integrity check .* clock-reset license"):
        ClockGuard(state, KEY).check(T0)


def test_state_from_another_machine_is_refused(state: Path) -> None:
    ClockGuard(state, KEY).check(T0)
    with pytest.raises(LicenseError, match="integrity check"):
        ClockGuard(state, b"another machine's key").check(T0)


def test_an_unreadable_state_fails_closed(tmp_path: Path) -> None:
    directory = tmp_path / "dir-not-file"
    directory.mkdir()
    with pytest.raises(LicenseError, match="cannot read the clock state"):
        ClockGuard(directory, KEY).check(T0)


def test_an_unwritable_state_degrades_to_memory_and_still_guards(tmp_path: Path) -> None:
    """A full disk (here: a state folder that is a file, ENOTDIR) must not lock anyone out."""
    blocked = tmp_path / "state"
    blocked.write_text("not a folder")
    guard = ClockGuard(blocked / "clock.json", KEY)
    guard.check(T0 + timedelta(days=3))
    assert guard.unsaved is not None and "cannot write the clock state" in guard.unsaved
    assert guard.remembered == T0 + timedelta(days=3)
    again = ClockGuard(blocked / "clock.json", KEY, remembered=guard.remembered)
    with pytest.raises(LicenseError, match="clock rolled back"):
        again.check(T0)  # the mark held in memory still counts
    blocked.unlink()
    blocked.mkdir()
    writable = ClockGuard(blocked / "clock.json", KEY, remembered=guard.remembered)
    writable.check(T0 + timedelta(days=3, hours=1))
    assert writable.unsaved is None and _last_seen(blocked / "clock.json") == "2030-06-04T13:00:00Z"


def test_a_deleted_state_is_judged_by_its_witnesses(tmp_path: Path) -> None:
    logs = tmp_path / "logs"
    logs.mkdir()
    written = logs / "server.log"
    written.write_text("lines written while the clock said T0 + 3 days\n")
    ahead = (T0 + timedelta(days=3)).timestamp()
    os.utime(written, (ahead, ahead))
    state = tmp_path / "state" / "clock.json"
    with pytest.raises(LicenseError, match=r"clock rolled back .*server.log was written at 2030-06-04"):
        ClockGuard(state, KEY, witnesses=[logs]).check(T0)
    assert not state.exists()
    ClockGuard(state, KEY, witnesses=[logs]).check(T0 + timedelta(days=2, hours=1))  # within tolerance
    assert state.exists()


def test_the_licenses_issue_time_is_a_witness(state: Path) -> None:
    with pytest.raises(LicenseError, match="before the license was issued at 2030-06-05"):
        ClockGuard(state, KEY).check(T0, issued_at=T0 + timedelta(days=4))
    ClockGuard(state, KEY).check(T0, issued_at=T0 + timedelta(hours=2))


def test_a_clock_reset_license_clears_a_rollback_once(state: Path) -> None:
    guard = ClockGuard(state, KEY)
    guard.check(T0 + timedelta(days=400))  # once ran with the clock a year ahead
    guard.check(T0, reset_id="reset-1")
    assert _last_seen(state) == "2030-06-01T12:00:00Z"
    guard.check(T0 + timedelta(days=30), reset_id="reset-1")
    with pytest.raises(LicenseError, match="clock rolled back"):
        guard.check(T0, reset_id="reset-1")  # the same license never resets twice


def test_a_reset_seen_without_rollback_is_spent(state: Path) -> None:
    guard = ClockGuard(state, KEY)
    guard.check(T0, reset_id="reset-1")
    guard.check(T0 + timedelta(days=30))
    with pytest.raises(LicenseError, match="clock rolled back"):
        guard.check(T0, reset_id="reset-1")


def test_a_clock_reset_license_repairs_a_damaged_state(state: Path) -> None:
    ClockGuard(state, KEY).check(T0)
    state.write_text("garbage")
    ClockGuard(state, KEY).check(T0, reset_id="reset-2")
    ClockGuard(state, KEY).check(T0)


def test_naive_times_are_refused(state: Path) -> None:
    with pytest.raises(ValueError, match="no timezone"):
        ClockGuard(state, KEY).check(datetime(2030, 1, 1))


def test_the_key_is_bound_to_the_machine_id_only() -> None:
    base = {"machine_id": hash_component("machine_id", "a"), "cpu_model": hash_component("cpu_model", "x")}
    changed_cpu = {**base, "cpu_model": hash_component("cpu_model", "y")}
    other_machine = {**base, "machine_id": hash_component("machine_id", "b")}

    def key(components: dict[str, str]) -> bytes:
        return clock_key(Fingerprint(components, {}, {}))

    assert key(base) == key(changed_cpu)
    assert key(base) != key(other_machine)
