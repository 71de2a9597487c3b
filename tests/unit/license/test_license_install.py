"""`lu`'s replace_license: verify first, then one atomic swap; a bad file changes nothing."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferpack.license.clock import ClockGuard, clock_key
from inferpack.license.errors import LicenseError
from inferpack.license.fingerprint import Fingerprint
from inferpack.license.install import replace_license

from ._fakes import T0

MakeLicense = Callable[..., str]
NOW = T0 + timedelta(days=1)


@pytest.fixture
def installed(tmp_path: Path, make_license: MakeLicense) -> Path:
    current = tmp_path / "work" / "cats" / "license" / "license.lic"
    current.parent.mkdir(parents=True)
    current.write_text(make_license(days=30))
    return current


def _drop(tmp_path: Path, text: str | bytes) -> Path:
    new = tmp_path / "incoming.lic"
    if isinstance(text, bytes):
        new.write_bytes(text)
    else:
        new.write_text(text)
    return new


def test_a_good_license_is_swapped_in(
    tmp_path: Path,
    installed: Path,
    make_license: MakeLicense,
    vendor_key: Ed25519PrivateKey,
    fingerprint: Fingerprint,
) -> None:
    new = _drop(tmp_path, make_license(days=365, max_qps=50))
    inode_before = installed.stat().st_ino
    state = replace_license(installed, new, vendor_key.public_key(), "cats", fingerprint, now=NOW)
    assert state.valid
    assert installed.read_bytes() == new.read_bytes()
    assert installed.stat().st_ino != inode_before  # a rename, which a polling server notices
    assert [p.name for p in installed.parent.iterdir()] == ["license.lic"]  # no temp file left


def test_first_install_creates_the_file(
    tmp_path: Path, make_license: MakeLicense, vendor_key: Ed25519PrivateKey, fingerprint: Fingerprint
) -> None:
    target = tmp_path / "fresh" / "license.lic"
    replace_license(
        target, _drop(tmp_path, make_license()), vendor_key.public_key(), "cats", fingerprint, now=NOW
    )
    assert target.is_file()


@pytest.mark.parametrize("case", ["other deploy name", "other key", "expired", "malformed"])
def test_a_bad_license_leaves_the_old_one_byte_identical(
    tmp_path: Path,
    installed: Path,
    make_license: MakeLicense,
    vendor_key: Ed25519PrivateKey,
    fingerprint: Fingerprint,
    case: str,
) -> None:
    text, now, reason = {
        "other deploy name": (
            make_license(deploy_names=["dogs"]),
            NOW,
            "not licensed for deploy name 'cats'",
        ),
        "other key": (make_license(key=Ed25519PrivateKey.generate()), NOW, "signed by another key"),
        "expired": (make_license(days=10), T0 + timedelta(days=400), "expired on 2030-06-11T12:00:00Z"),
        "malformed": ("garbage", NOW, "malformed license"),
    }[case]
    before = installed.read_bytes()
    with pytest.raises(LicenseError) as err:
        replace_license(
            installed, _drop(tmp_path, text), vendor_key.public_key(), "cats", fingerprint, now=now
        )
    assert reason in err.value.reason
    assert err.value.reason.endswith("; the current license is unchanged")
    assert installed.read_bytes() == before
    assert [p.name for p in installed.parent.iterdir()] == ["license.lic"]


def test_unreadable_or_binary_new_files(
    tmp_path: Path, installed: Path, vendor_key: Ed25519PrivateKey, fingerprint: Fingerprint
) -> None:
    before = installed.read_bytes()
    with pytest.raises(LicenseError, match=r"cannot read the new license .*No such file"):
        replace_license(installed, tmp_path / "absent.lic", vendor_key.public_key(), "cats", fingerprint)
    with pytest.raises(LicenseError, match="is not a text file"):
        replace_license(
            installed, _drop(tmp_path, b"\xff\xfe\x00"), vendor_key.public_key(), "cats", fingerprint
        )
    assert installed.read_bytes() == before


def test_the_clock_guard_also_vets_the_new_license(
    tmp_path: Path,
    installed: Path,
    make_license: MakeLicense,
    vendor_key: Ed25519PrivateKey,
    fingerprint: Fingerprint,
) -> None:
    clock = ClockGuard(tmp_path / "clock.json", clock_key(fingerprint))
    clock.check(NOW + timedelta(days=10))
    with pytest.raises(LicenseError, match="clock rolled back"):
        replace_license(
            installed, _drop(tmp_path, make_license()), vendor_key.public_key(), "cats", fingerprint,
            clock_guard=clock, now=NOW,
        )  # fmt: skip


def test_an_uninstallable_target_is_a_reason_too(
    tmp_path: Path, make_license: MakeLicense, vendor_key: Ed25519PrivateKey, fingerprint: Fingerprint
) -> None:
    (tmp_path / "a-file").write_text("")
    with pytest.raises(LicenseError, match="cannot install the license at"):
        replace_license(
            tmp_path / "a-file" / "license.lic", _drop(tmp_path, make_license()), vendor_key.public_key(),
            "cats", fingerprint, now=NOW,
        )  # fmt: skip
