"""Fixtures: the fake host, its fingerprint, real Ed25519 keys, licenses issued for it, and the
license verbs run through their handlers (``cli``)."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferpack.license import sources
from inferpack.license.cli import add_license_commands
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


Cli = Callable[..., tuple[int, str, str]]


@pytest.fixture
def cli(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch) -> Cli:
    """``cli(*argv) -> (exit code, stdout, stderr)`` through a parser built like the lead's."""
    monkeypatch.setattr(sources, "nvidia_gpu_uuids", lambda: list(GPU_UUIDS))  # no real NVML here
    parser = argparse.ArgumentParser(prog="inferpack")
    add_license_commands(parser.add_subparsers(dest="command", required=True))

    def run(*argv: str | Path) -> tuple[int, str, str]:
        args = parser.parse_args([str(a) for a in argv])
        code = args.handler(args)
        out, err = capsys.readouterr()
        return code, out, err

    return run


@pytest.fixture
def vendor(tmp_path: Path, cli: Cli) -> Path:
    code, _, _ = cli("license", "keygen", "--out", tmp_path / "vendor-keys")
    assert code == 0
    return tmp_path / "vendor-keys"


@pytest.fixture
def request_file(tmp_path: Path, cli: Cli, host: FakeHost) -> Path:
    code, _, _ = cli("fingerprint", "--root", host.root, "--out", tmp_path / "req.json")
    assert code == 0
    return tmp_path / "req.json"
