"""license_checks on real licenses for a made-up machine: verdicts, changed components, clock."""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.process_runtime import ProcessRuntime
from inferpack.deploy.settings import ServiceSettings
from inferpack.doctor import license_checks
from inferpack.doctor.context import Service
from inferpack.license.clock import STATE_FILE as CLOCK_STATE_FILE
from inferpack.license.clock import ClockGuard, clock_key
from inferpack.license.fingerprint import Fingerprint, LicenseRequest, hash_component
from inferpack.license.keys import public_pem
from inferpack.license.licfile import issue_license

NOW = datetime(2030, 6, 1, 12, 0, tzinfo=UTC)
RAW = {"machine_id": "m1", "product_uuid": "u1", "disk_serial": "d1", "cpu_model": "cpu", "nic_macs": ("aa",)}


def machine(**changed: str) -> Fingerprint:
    raw = {**RAW, **changed}
    components = {
        k: tuple(hash_component(k, x) for x in v) if isinstance(v, tuple) else hash_component(k, v)
        for k, v in raw.items()
    }
    return Fingerprint(components, {}, {})


@pytest.fixture
def key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def service(tmp_path: Path, key: Ed25519PrivateKey) -> Service:
    layout = ServiceLayout(tmp_path, "cats")
    layout.license_dir.mkdir(parents=True)
    layout.state_dir.mkdir(parents=True)
    layout.vendor_key.write_bytes(public_pem(key.public_key()))
    settings = ServiceSettings(name="cats", runtime="process", port=8080)
    return Service(layout, settings, ProcessRuntime(sys.executable), None, None, [])


def install(service: Service, key: Ed25519PrivateKey, days: int = 365, issued: datetime = NOW) -> None:
    request = LicenseRequest(machine().components, {}, "0.1.0", "2030-06-01T00:00:00Z")
    service.layout.license_file.write_text(issue_license(key, request, ["cats"], days=days, now=issued))


def by_name(
    service: Service, fingerprint: Fingerprint, now: datetime = NOW
) -> dict[str, tuple[str, str, str]]:
    return {
        r.name: (r.status, r.found, r.next_step) for r in license_checks.checks(service, fingerprint, now)
    }


def test_a_valid_license_on_its_machine(service: Service, key: Ed25519PrivateKey) -> None:
    install(service, key)
    found = by_name(service, machine())
    valid = "valid until 2031-06-01T12:00:00Z (365 days left), 5/5 fingerprint components match"
    assert found["license"][:2] == ("PASS", valid)
    assert found["fingerprint"][0] == "PASS" and found["clock"][0] == "PASS"


def test_a_license_about_to_expire_warns(service: Service, key: Ed25519PrivateKey) -> None:
    install(service, key, days=10)
    status, found, step = by_name(service, machine())["license"]
    assert status == "WARN" and "(10 days left)" in found and "python3 install.py lu cats" in step


def test_an_expired_license_fails_with_the_way_to_renew(service: Service, key: Ed25519PrivateKey) -> None:
    install(service, key, days=1, issued=NOW - timedelta(days=10))
    status, found, step = by_name(service, machine())["license"]
    assert status == "FAIL" and found.startswith("refused: expired on")
    assert "renewed license" in step and "fingerprint --out request.json" in step


def test_another_machine_names_what_changed(service: Service, key: Ed25519PrivateKey) -> None:
    install(service, key)
    found = by_name(service, machine(machine_id="m2", product_uuid="u2", disk_serial="d2"))
    assert found["license"][0] == "FAIL" and "wrong machine" in found["license"][1]
    status, what, _ = found["fingerprint"]
    assert status == "FAIL"
    assert what == "machine_id changed, product_uuid changed, disk_serial changed (2 of 5 match, 4 required)"


def test_one_replaced_nic_still_licensed_but_warned(service: Service, key: Ed25519PrivateKey) -> None:
    install(service, key)
    found = by_name(service, machine(nic_macs=("bb",)))  # type: ignore[arg-type]
    assert found["license"][0] == "PASS"
    assert found["fingerprint"][:2] == ("WARN", "nic_macs changed since issue (4 of 5 match, 4 required)")


def test_no_license_fails_as_the_server_refuses(service: Service) -> None:
    found = by_name(service, machine())
    assert found["license"][0] == "FAIL" and "every prediction answers 337000" in found["license"][1]
    assert "fingerprint" not in found


def test_a_clock_set_back_fails_and_the_mark_is_left_alone(service: Service, key: Ed25519PrivateKey) -> None:
    install(service, key)
    state = service.layout.state_dir / CLOCK_STATE_FILE
    ClockGuard(state, clock_key(machine())).check(NOW + timedelta(days=3))
    before = state.read_bytes()
    status, found, step = by_name(service, machine())["clock"]
    assert status == "FAIL" and found.startswith(
        "clock rolled back (now 2030-06-01T12:00:00Z, last seen 2030-06-04"
    )
    assert "set the system clock right" in step and "clock-reset license" in step
    assert state.read_bytes() == before


def test_a_clock_moving_forward_passes_without_moving_the_mark(
    service: Service, key: Ed25519PrivateKey
) -> None:
    install(service, key)
    state = service.layout.state_dir / CLOCK_STATE_FILE
    ClockGuard(state, clock_key(machine())).check(NOW - timedelta(days=3))
    before = state.read_bytes()
    assert by_name(service, machine())["clock"][0] == "PASS"
    assert state.read_bytes() == before


def test_a_clock_mark_the_server_cannot_write_fails(service: Service, key: Ed25519PrivateKey) -> None:
    """The server keeps serving then (the mark in memory); the doctor is where it shows."""
    install(service, key)
    service.layout.state_dir.rmdir()
    service.layout.state_dir.write_text("a file where the state folder should be")
    status, detail, _ = by_name(service, machine())["clock"]
    assert status == "FAIL" and "cannot write its clock mark" in detail, detail


def test_a_deleted_clock_mark_is_judged_by_the_servers_files(
    service: Service, key: Ed25519PrivateKey
) -> None:
    install(service, key)
    log = service.layout.logs_dir / "1-0-0" / "server.log"
    log.parent.mkdir(parents=True)
    log.write_text("written while the clock said three days later\n")
    ahead = (NOW + timedelta(days=3)).timestamp()
    os.utime(log, (ahead, ahead))
    status, detail, _ = by_name(service, machine())["clock"]
    assert status == "FAIL" and "clock rolled back" in detail, detail
