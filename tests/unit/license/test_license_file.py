"""The license file: issuing, the armored text format, and every way it can be malformed."""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Callable
from dataclasses import replace
from datetime import UTC, date, datetime, timedelta

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferpack.license.errors import LicenseError
from inferpack.license.fingerprint import LicenseRequest
from inferpack.license.keys import key_id
from inferpack.license.licfile import (
    SIGNING_CONTEXT,
    TRIAL_DAYS,
    decode_armor,
    default_min_matches,
    parse_license,
    verify_signature,
)

from ._fakes import T0, armored

MakeLicense = Callable[..., str]


def test_issued_license_round_trips(make_license: MakeLicense, vendor_key: Ed25519PrivateKey) -> None:
    text = make_license(deploy_names=["cats", "dogs"], max_instances=2, max_qps=25, gpu=True)
    lic = parse_license(text)
    verify_signature(lic, vendor_key.public_key())
    assert lic.licensee == "ACME Corp"
    assert lic.deploy_names == ("cats", "dogs")
    assert lic.not_before == datetime(2030, 6, 1, tzinfo=UTC)  # start of the issue day
    assert lic.not_after == T0 + timedelta(days=365)
    assert (lic.limits.max_instances, lic.limits.max_qps) == (2, 25.0)
    assert isinstance(lic.limits.max_qps, float)
    (host,) = lic.hosts
    assert host.policy.min_matches == 6  # 7 components: all but one
    assert host.policy.require_gpus == host.components["gpu_uuids"]
    assert lic.key_id == key_id(vendor_key.public_key())
    assert not lic.trial and not lic.clock_reset
    assert "# inferpack license for ACME Corp" in text


def test_a_trial_lasts_thirty_days(make_license: MakeLicense) -> None:
    lic = parse_license(make_license(trial=True))
    assert lic.trial
    assert lic.not_after == T0 + timedelta(days=TRIAL_DAYS) == T0 + timedelta(days=30)


def test_until_is_valid_through_the_whole_day(make_license: MakeLicense) -> None:
    lic = parse_license(make_license(until=date(2031, 1, 15)))
    assert lic.not_after == datetime(2031, 1, 15, 23, 59, 59, tzinfo=UTC)


@pytest.mark.parametrize(("total", "required"), [(1, 1), (2, 2), (3, 3), (4, 3), (7, 6)])
def test_default_policy_tolerates_one_change_when_there_is_slack(total: int, required: int) -> None:
    assert default_min_matches(total) == required


@pytest.mark.parametrize(
    ("options", "reason"),
    [
        ({"trial": True, "days": 10}, "a trial license lasts 30 days"),
        ({"days": None}, "exactly one of days or until"),
        ({"days": 0}, "days must be at least 1"),
        ({"until": date(2030, 5, 31)}, "not in the future"),
        ({"deploy_names": ["cats", "bad name"]}, "invalid deploy name"),
        ({"deploy_names": []}, "invalid deploy name"),
        ({"min_matches": 8}, "min_matches must be between 1 and 7"),
        ({"max_qps": 0}, "max_qps must be positive"),
        ({"licensee": "two\nlines"}, "licensee must be one line"),
    ],
)
def test_issuing_refuses_arguments_that_make_no_sense(
    make_license: MakeLicense, options: dict[str, object], reason: str
) -> None:
    with pytest.raises(ValueError, match=re.escape(reason)):
        make_license(**options)


def test_a_gpu_license_needs_gpus_in_the_request(
    make_license: MakeLicense, request_for: LicenseRequest
) -> None:
    without_gpus = {k: v for k, v in request_for.components.items() if k != "gpu_uuids"}
    with pytest.raises(ValueError, match="lists none"):
        make_license(request=replace(request_for, components=without_gpus), gpu=True)
    with pytest.raises(ValueError, match="no fingerprint components"):
        make_license(request=replace(request_for, components={}))


def test_whitespace_and_mail_noise_do_not_break_it(
    make_license: MakeLicense, vendor_key: Ed25519PrivateKey
) -> None:
    text = make_license()
    indented_crlf = "\r\n".join("   " + line for line in text.splitlines())
    unwrapped = armored(*decode_armor(text))  # each base64 part on one long line, as some mailers do
    for variant in (
        f"Hi, your license:\r\n\r\n{indented_crlf}\r\n-- \r\nregards",
        unwrapped,
        "\ufeff" + text,
    ):
        verify_signature(parse_license(variant), vendor_key.public_key())


def test_signature_from_another_key_names_both_key_ids(make_license: MakeLicense) -> None:
    other = Ed25519PrivateKey.generate()
    lic = parse_license(make_license(key=other))
    with pytest.raises(
        LicenseError, match=r"bad signature: signed by another key \(key id \w{16}, expected \w{16}\)"
    ):
        verify_signature(lic, Ed25519PrivateKey.generate().public_key())


def test_the_signature_covers_the_signing_context(
    make_license: MakeLicense, vendor_key: Ed25519PrivateKey
) -> None:
    payload, _ = decode_armor(make_license())
    bare = vendor_key.sign(payload)  # a signature over the bytes alone, e.g. by some other tool
    with pytest.raises(LicenseError, match="altered after signing"):
        verify_signature(parse_license(armored(payload, bare)), vendor_key.public_key())


def _signed(key: Ed25519PrivateKey, payload: bytes) -> str:
    return armored(payload, key.sign(SIGNING_CONTEXT + payload))


def _payload_of(text: str) -> dict[str, object]:
    data: dict[str, object] = json.loads(decode_armor(text)[0])
    return data


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("", "no '-----BEGIN INFERPACK LICENSE-----' line"),
        ("hello", "no '-----BEGIN INFERPACK LICENSE-----' line"),
        (armored(b"{}", bytes(64)) * 2, "more than one '-----BEGIN"),
        (
            "-----END INFERPACK LICENSE-----\n-----SIGNATURE-----\n-----BEGIN INFERPACK LICENSE-----\n",
            "armor lines out of order",
        ),
        (armored(b"{}", bytes(64)).replace("e30=", "e30=!"), "payload is not valid base64"),
        (armored(b"{}", bytes(10)), "signature that is not 64 bytes"),
        (armored(b"", bytes(64)), "empty payload"),
    ],
)
def test_malformed_armor_says_why(text: str, reason: str) -> None:
    with pytest.raises(LicenseError, match="^malformed license: .*" + re.escape(reason)):
        parse_license(text)


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"format": "other"}, "malformed license: not an 'inferpack-license' payload"),
        ({"version": 3}, "unsupported license format version 3 (this build reads 1 and 2)"),
        ({"licensee": 5}, "field 'licensee' is missing or has the wrong type"),
        ({"trial": 1}, "field 'trial' is missing or has the wrong type"),
        ({"deploy_names": ["a/b"]}, "'deploy_names' must list valid deploy names"),
        ({"not_after": "2031-01-01T00:00:00"}, "'not_after' is not a UTC ISO-8601 time"),
        ({"not_after": "2020-01-01T00:00:00Z"}, "not_after is before not_before"),
        ({"policy": {"min_matches": 0, "require_gpus": []}}, "the match policy does not fit"),
        ({"policy": {"min_matches": True, "require_gpus": []}}, "field 'min_matches'"),
        ({"policy": {"min_matches": 2, "require_gpus": ["a" * 64]}}, "the match policy does not fit"),
        ({"limits": {"max_instances": 0}}, "'max_instances' must be positive"),
        ({"limits": {"max_qps": "fast"}}, "field 'max_qps'"),
        ({"components": {"cpu_model": "zz"}}, "component 'cpu_model' must be a 64-hex-digit hash"),
    ],
)
def test_malformed_payload_fields_say_why(
    make_license: MakeLicense, vendor_key: Ed25519PrivateKey, change: dict[str, object], reason: str
) -> None:
    payload = {**_payload_of(make_license()), **change}
    text = _signed(vendor_key, json.dumps(payload).encode())
    with pytest.raises(LicenseError, match=re.escape(reason)):
        parse_license(text)


def test_a_signed_payload_that_is_not_json(vendor_key: Ed25519PrivateKey) -> None:
    with pytest.raises(LicenseError, match="malformed license: the payload is not JSON"):
        parse_license(_signed(vendor_key, b"\xff not json"))


def test_payload_is_kept_as_the_exact_signed_bytes(make_license: MakeLicense) -> None:
    text = make_license()
    block = text[text.index("-----BEGIN") :].split("\n")[1:-4]
    assert parse_license(text).payload == base64.b64decode("".join(block))
