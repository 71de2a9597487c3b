"""Fixtures: the fake host, its fingerprint, real Ed25519 keys and licenses issued for it."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferpack.license.fingerprint import Fingerprint, LicenseRequest, collect
from inferpack.license.licfile import issue_license

from ._fakes import GPU_UUIDS, T0, FakeHost, build_host


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return build_host(tmp_path / "host")


@pytest.fixture
def fingerprint(host: FakeHost) -> Fingerprint:
    return collect(host.root, gpu_source=lambda: list(GPU_UUIDS))


@pytest.fixture
def request_for(fingerprint: Fingerprint) -> LicenseRequest:
    return LicenseRequest(fingerprint.components, fingerprint.summary, "0.1.0", "2030-06-01T12:00:00Z")


@pytest.fixture
def vendor_key() -> Ed25519PrivateKey:
    return Ed25519PrivateKey.generate()


@pytest.fixture
def make_license(vendor_key: Ed25519PrivateKey, request_for: LicenseRequest) -> Callable[..., str]:
    """Issues a license for the fake host at T0 (365 days, deploy name "cats") unless told otherwise."""

    def make(**kwargs: object) -> str:
        options: dict[str, Any] = {"days": 365, "now": T0, "licensee": "ACME Corp"}
        options.update(kwargs)
        if "days" not in kwargs and ("until" in kwargs or "trial" in kwargs):
            options.pop("days")
        request = options.pop("request", request_for)
        names = options.pop("deploy_names", ["cats"])
        key = options.pop("key", vendor_key)
        return issue_license(key, request, names, **options)

    return make
