"""verify_license: a valid license, and each refusal with the reason the server will return."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferpack.license.clock import ClockGuard, clock_key
from inferpack.license.fingerprint import Fingerprint, collect
from inferpack.license.verify import verify_license

from ._fakes import GPU_UUIDS, T0, FakeHost

MakeLicense = Callable[..., str]
NOW = T0 + timedelta(days=10)


def test_a_valid_license(
    make_license: MakeLicense, vendor_key: Ed25519PrivateKey, fingerprint: Fingerprint
) -> None:
    state = verify_license(make_license(max_qps=5), vendor_key.public_key(), "cats", fingerprint, NOW)
    assert state.valid, state.reason
    assert state.reason == "license valid"
    summary = state.summary()
    assert summary["licensee"] == "ACME Corp"
    assert summary["deploy_names"] == ["cats"]
    assert summary["matched_components"] == "7/7"
    assert summary["days_left"] == 355
    assert summary["limits"] == {"max_instances": None, "max_qps": 5.0}
    assert summary["not_after"] == "2031-06-01T12:00:00Z"
    # /info shows it: no fingerprint hash, key or signature in it.
    assert not re.search(r"[0-9a-f]{32}", json.dumps(summary))


def test_a_tampered_payload_byte_is_a_bad_signature(
    make_license: MakeLicense, vendor_key: Ed25519PrivateKey, fingerprint: Fingerprint
) -> None:
    text = make_license()
    lines = text.splitlines()
    start = lines.index("-----BEGIN INFERPACK LICENSE-----") + 1
    end = lines.index("-----SIGNATURE-----")
    payload = bytearray(base64.b64decode("".join(lines[start:end])))
    payload[payload.index(b"ACME")] = ord("X")  # still valid JSON: only the signature can tell
    tampered = [*lines[:start], base64.b64encode(bytes(payload)).decode(), *lines[end:]]
    state = verify_license("\n".join(tampered), vendor_key.public_key(), "cats", fingerprint, NOW)
    assert not state.valid
    assert state.reason == "bad signature: the license was altered after signing or is not from this vendor"
    assert state.license is None  # nothing unsigned is ever shown as license data
    assert "licensee" not in state.summary()


def test_a_flipped_base64_character_is_a_bad_signature(
    make_license: MakeLicense, vendor_key: Ed25519PrivateKey, fingerprint: Fingerprint
) -> None:
    text = make_license()
    i = text.index("-----BEGIN INFERPACK LICENSE-----\n") + 40
    flipped = text[:i] + ("A" if text[i] != "A" else "B") + text[i + 1 :]
    state = verify_license(flipped, vendor_key.public_key(), "cats", fingerprint, NOW)
    assert state.reason.startswith("bad signature")


def test_signed_by_another_key(
    make_license: MakeLicense, vendor_key: Ed25519PrivateKey, fingerprint: Fingerprint
) -> None:
    text = make_license(key=Ed25519PrivateKey.generate())
    state = verify_license(text, vendor_key.public_key(), "cats", fingerprint, NOW)
    assert "bad signature: signed by another key" in state.reason


def test_malformed(vendor_key: Ed25519PrivateKey, fingerprint: Fingerprint) -> None:
    state = verify_license("not a license", vendor_key.public_key(), "cats", fingerprint, NOW)
    assert state.reason.startswith("malformed license: no '-----BEGIN INFERPACK LICENSE-----' line")


def test_not_yet_valid(
    make_license: MakeLicense, vendor_key: Ed25519PrivateKey, fingerprint: Fingerprint
) -> None:
    state = verify_license(
        make_license(), vendor_key.public_key(), "cats", fingerprint, T0 - timedelta(days=2)
    )
    assert state.reason == "not valid before 2030-06-01T00:00:00Z"
    assert state.summary()["licensee"] == "ACME Corp"  # signed: safe to show


@pytest.mark.parametrize(
    ("trial", "reason"), [(False, "expired on 2030-06-11T12:00:00Z"), (True, "trial expired on")]
)
def test_expired(
    make_license: MakeLicense,
    vendor_key: Ed25519PrivateKey,
    fingerprint: Fingerprint,
    trial: bool,
    reason: str,
) -> None:
    text = make_license(trial=True) if trial else make_license(days=10)
    later = T0 + timedelta(days=40)
    state = verify_license(text, vendor_key.public_key(), "cats", fingerprint, later)
    assert state.reason.startswith(reason)
    assert state.summary()["days_left"] == 0


def test_other_deploy_name(
    make_license: MakeLicense, vendor_key: Ed25519PrivateKey, fingerprint: Fingerprint
) -> None:
    text = make_license(deploy_names=["cats", "dogs"])
    state = verify_license(text, vendor_key.public_key(), "birds", fingerprint, NOW)
    assert state.reason == "not licensed for deploy name 'birds' (licensed: cats, dogs)"


def test_one_changed_component_is_tolerated_two_are_not(
    make_license: MakeLicense, vendor_key: Ed25519PrivateKey, host: FakeHost
) -> None:
    text = make_license()
    host.write("sys/block/nvme0n1/device/serial", "REPLACED-DISK-1\n")
    one_changed = collect(host.root, gpu_source=lambda: list(GPU_UUIDS))
    state = verify_license(text, vendor_key.public_key(), "cats", one_changed, NOW)
    assert state.valid, state.reason
    assert state.summary()["matched_components"] == "6/7"

    host.write("etc/machine-id", "0123456789abcdef0123456789abcdef\n")
    two_changed = collect(host.root, gpu_source=lambda: list(GPU_UUIDS))
    state = verify_license(text, vendor_key.public_key(), "cats", two_changed, NOW)
    assert state.reason == "wrong machine: 5 of 7 fingerprint components match, at least 6 required"


def test_one_replaced_nic_of_two_still_matches(
    make_license: MakeLicense, vendor_key: Ed25519PrivateKey, host: FakeHost
) -> None:
    text = make_license(min_matches=7)
    host.write("sys/class/net/eno1/address", "3c:ec:ef:00:00:99\n")
    state = verify_license(
        text, vendor_key.public_key(), "cats", collect(host.root, gpu_source=lambda: list(GPU_UUIDS)), NOW
    )
    assert state.valid, state.reason


def test_another_machine(make_license: MakeLicense, vendor_key: Ed25519PrivateKey, tmp_path: Path) -> None:
    other = FakeHost(tmp_path / "other")
    other.write("etc/machine-id", "ffeeddccbbaa99887766554433221100\n")
    other.write("proc/cpuinfo", "model name\t: AMD EPYC 7763\n")
    state = verify_license(
        make_license(), vendor_key.public_key(), "cats", collect(other.root, gpu_source=list), NOW
    )
    assert state.reason == "wrong machine: 0 of 7 fingerprint components match, at least 6 required"


def test_a_gpu_license_needs_the_licensed_gpu(
    make_license: MakeLicense, vendor_key: Ed25519PrivateKey, host: FakeHost
) -> None:
    text = make_license(gpu=True)
    swapped_gpu = collect(host.root, gpu_source=lambda: ["GPU-ffffffff-0000-1111-2222-333333333333"])
    state = verify_license(text, vendor_key.public_key(), "cats", swapped_gpu, NOW)
    assert state.reason == "wrong machine: 0 of the 1 licensed GPU(s) present"
    no_gpu = collect(host.root, gpu_source=list)
    assert verify_license(text, vendor_key.public_key(), "cats", no_gpu, NOW).reason.startswith(
        "wrong machine: 0 of the 1"
    )
    # The same machine without a GPU binding is fine with the GPU gone (6 of 7 components).
    assert verify_license(make_license(), vendor_key.public_key(), "cats", no_gpu, NOW).valid


def test_clock_rollback_is_checked_last_and_reported(
    make_license: MakeLicense, vendor_key: Ed25519PrivateKey, fingerprint: Fingerprint, tmp_path: Path
) -> None:
    clock = ClockGuard(tmp_path / "clock.json", clock_key(fingerprint))
    text, key = make_license(), vendor_key.public_key()
    assert verify_license(text, key, "cats", fingerprint, NOW + timedelta(days=5), clock).valid
    within = verify_license(text, key, "cats", fingerprint, NOW + timedelta(days=5, hours=-23), clock)
    assert within.valid, within.reason
    beyond = verify_license(text, key, "cats", fingerprint, NOW, clock)
    assert beyond.reason == "clock rolled back (now 2030-06-11T12:00:00Z, last seen 2030-06-16T12:00:00Z)"


def test_inspection_can_skip_deploy_name_and_clock(
    make_license: MakeLicense, vendor_key: Ed25519PrivateKey, fingerprint: Fingerprint
) -> None:
    assert verify_license(make_license(), vendor_key.public_key(), None, fingerprint, NOW).valid
