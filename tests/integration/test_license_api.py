"""The license as the server enforces it: real keys, real files, a fake host root, the real server.

Each failure cause answers predictions with 337000 and a message that says why, turns /readyz
503 and shows in /info; a valid license arriving later restores service with no restart.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferpack.deploy.layout import ServiceLayout
from inferpack.license.clock import ClockGuard, clock_key
from inferpack.license.fingerprint import LicenseRequest, collect
from inferpack.license.licfile import issue_license
from tests.conftest import RED, b64, encode, solid
from tests.integration.conftest import StartServer
from tests.unit.license._fakes import FakeHost, build_host

URL = "/demo/ImageClassification"
IMAGE = b64(encode(solid(RED)))


class Vendor:
    """A vendor key pair on disk, and licenses it issues for a host root."""

    def __init__(self, directory: Path) -> None:
        directory.mkdir(parents=True, exist_ok=True)
        self.key = Ed25519PrivateKey.generate()
        self.public_key = directory / "vendor.pub"
        self.public_key.write_bytes(
            self.key.public_key().public_bytes(
                serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
            )
        )

    def issue(self, root: Path, path: Path, *, key: Ed25519PrivateKey | None = None, **options: Any) -> Path:
        fingerprint = collect(root)
        request = LicenseRequest(fingerprint.components, fingerprint.summary, "0.1.0", "2026-01-01T00:00:00Z")
        options.setdefault("deploy_names", ["demo"])
        if not {"days", "until", "trial"} & set(options):
            options["days"] = 30
        names = options.pop("deploy_names")
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(issue_license(key or self.key, request, names, **options))
        return path


@pytest.fixture
def vendor(tmp_path: Path) -> Vendor:
    return Vendor(tmp_path / "vendor")


@pytest.fixture
def host(tmp_path: Path) -> FakeHost:
    return build_host(tmp_path / "host")


@pytest.fixture
def licensed(
    start_server: StartServer, colour_model: Path, vendor: Vendor, host: FakeHost, tmp_path: Path
) -> Any:
    """Starts the server enforcing ``tmp_path/license/license.lic`` against the fake host."""

    async def start(**settings: Any) -> TestClient[Any, Any]:
        settings.setdefault("ready", False)
        settings.setdefault("state_dir", tmp_path / "state")
        return await start_server(
            colour_model,
            license_file=tmp_path / "license" / "license.lic",
            vendor_public_key=vendor.public_key,
            host_root=host.root,
            **settings,
        )

    return start


async def refused(client: TestClient[Any, Any], fragment: str) -> None:
    response = await client.post(URL, json={"image": IMAGE})
    assert response.status == 403
    body = await response.json()
    assert body["error_code"] == 337000
    assert body["error_msg"].startswith("Auth check failed: ")
    assert fragment in body["error_msg"], body["error_msg"]
    readyz = await client.get("/readyz")
    assert readyz.status == 503
    assert any(fragment in reason for reason in (await readyz.json())["reasons"])
    info = await (await client.get("/info")).json()
    assert info["license"]["valid"] is False and fragment in info["license"]["reason"]


async def serves(client: TestClient[Any, Any]) -> None:
    response = await client.post(URL, json={"image": IMAGE})
    assert response.status == 200, await response.text()
    assert (await response.json())["results"][0]["name"] == "red"


async def eventually(check: Any, timeout_s: float = 10.0) -> None:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        try:
            await check()
            return
        except AssertionError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.1)


async def test_valid_license_serves(licensed: Any, vendor: Vendor, host: FakeHost, tmp_path: Path) -> None:
    vendor.issue(host.root, tmp_path / "license" / "license.lic", max_instances=2, licensee="ACME")
    client = await licensed(ready=True)
    await serves(client)
    info = await (await client.get("/info")).json()
    assert info["license"]["valid"] is True
    assert info["license"]["licensee"] == "ACME"
    assert info["license"]["deploy_names"] == ["demo"]


async def test_tampered_payload_byte(licensed: Any, vendor: Vendor, host: FakeHost, tmp_path: Path) -> None:
    path = vendor.issue(host.root, tmp_path / "license" / "license.lic")
    lines = path.read_text().splitlines()
    body_line = lines.index("-----BEGIN INFERPACK LICENSE-----") + 2
    lines[body_line] = (
        lines[body_line][:10] + ("A" if lines[body_line][10] != "A" else "B") + lines[body_line][11:]
    )
    path.write_text("\n".join(lines) + "\n")
    await refused(await licensed(), "bad signature")


async def test_signed_by_another_key(licensed: Any, vendor: Vendor, host: FakeHost, tmp_path: Path) -> None:
    vendor.issue(host.root, tmp_path / "license" / "license.lic", key=Ed25519PrivateKey.generate())
    await refused(await licensed(), "signed by another key")


async def test_expired(licensed: Any, vendor: Vendor, host: FakeHost, tmp_path: Path) -> None:
    issued = datetime.now(UTC) - timedelta(days=40)
    vendor.issue(host.root, tmp_path / "license" / "license.lic", days=30, now=issued)
    await refused(await licensed(), "expired on")


async def test_not_yet_valid(licensed: Any, vendor: Vendor, host: FakeHost, tmp_path: Path) -> None:
    vendor.issue(host.root, tmp_path / "license" / "license.lic", now=datetime.now(UTC) + timedelta(days=3))
    await refused(await licensed(), "not valid before")


async def test_other_deploy_name(licensed: Any, vendor: Vendor, host: FakeHost, tmp_path: Path) -> None:
    vendor.issue(host.root, tmp_path / "license" / "license.lic", deploy_names=["cats", "dogs"])
    await refused(await licensed(), "not licensed for deploy name 'demo' (licensed: cats, dogs)")


async def test_one_component_changed_still_valid(
    licensed: Any, vendor: Vendor, host: FakeHost, tmp_path: Path
) -> None:
    vendor.issue(host.root, tmp_path / "license" / "license.lic")
    host.write("sys/block/nvme0n1/device/serial", "REPLACED-DISK-0001\n")  # a new disk
    client = await licensed(ready=True)
    await serves(client)


async def test_too_many_components_changed(
    licensed: Any, vendor: Vendor, host: FakeHost, tmp_path: Path
) -> None:
    vendor.issue(host.root, tmp_path / "license" / "license.lic")
    host.write("etc/machine-id", "0" * 31 + "1\n")  # another machine: new id, board and disk
    host.write("sys/class/dmi/id/product_uuid", "00000000-0000-0000-0000-000000000001\n")
    host.write("sys/class/dmi/id/board_serial", "OTHER-BOARD\n")
    await refused(await licensed(), "fingerprint components match, at least")


async def test_clock_rolled_back_beyond_tolerance(
    licensed: Any, vendor: Vendor, host: FakeHost, tmp_path: Path
) -> None:
    vendor.issue(host.root, tmp_path / "license" / "license.lic")
    guard = ClockGuard(tmp_path / "state" / "license-clock.json", clock_key(collect(host.root)))
    guard.check(datetime.now(UTC) + timedelta(days=3))  # the server once saw a date 3 days ahead
    await refused(await licensed(), "clock rolled back")


async def test_clock_back_within_tolerance(
    licensed: Any, vendor: Vendor, host: FakeHost, tmp_path: Path
) -> None:
    vendor.issue(host.root, tmp_path / "license" / "license.lic")
    guard = ClockGuard(tmp_path / "state" / "license-clock.json", clock_key(collect(host.root)))
    guard.check(datetime.now(UTC) + timedelta(hours=2))
    await serves(await licensed(ready=True))


async def test_clock_state_deleted_but_the_servers_own_files_remember(
    licensed: Any, vendor: Vendor, host: FakeHost, tmp_path: Path
) -> None:
    """Deleting the clock state no longer resets the guard: the server's log, written while the
    clock said three days later, is a witness."""
    vendor.issue(host.root, tmp_path / "license" / "license.lic")
    log = tmp_path / "logs" / "server.log"
    log.parent.mkdir()
    log.write_text("written three days from now\n")
    ahead = (datetime.now(UTC) + timedelta(days=3)).timestamp()
    os.utime(log, (ahead, ahead))
    assert not (tmp_path / "state" / "license-clock.json").exists()
    await refused(await licensed(log_dir=log.parent), "clock rolled back")


async def test_license_removed_while_running(
    licensed: Any, vendor: Vendor, host: FakeHost, tmp_path: Path
) -> None:
    path = vendor.issue(host.root, tmp_path / "license" / "license.lic")
    client = await licensed(ready=True, license_recheck_s=1.0)
    await serves(client)
    path.unlink()
    await eventually(lambda: refused(client, "license"), timeout_s=5)


async def test_max_qps_enforced_with_336100(
    licensed: Any, vendor: Vendor, host: FakeHost, tmp_path: Path
) -> None:
    vendor.issue(host.root, tmp_path / "license" / "license.lic", max_qps=2)
    client = await licensed(ready=True)
    statuses = []
    for _ in range(8):
        response = await client.post(URL, json={"image": IMAGE})
        statuses.append(response.status)
        if response.status == 503:
            body = await response.json()
            assert body["error_code"] == 336100 and "licensed rate" in body["error_msg"]
    assert 2 <= statuses.count(200) <= 3 and statuses.count(503) >= 5, statuses


async def test_max_instances_counts_servers_host_wide(
    licensed: Any, vendor: Vendor, host: FakeHost, tmp_path: Path
) -> None:
    """Another server (another state folder: another work root, a hand-run serve) on the same
    license is refused beyond max_instances, and takes over once the first one stops."""
    vendor.issue(host.root, tmp_path / "license" / "license.lic", max_instances=1)
    first = await licensed(ready=True)
    await serves(first)
    second = await licensed(state_dir=tmp_path / "state-2", license_recheck_s=1.0)
    await refused(second, "max_instances reached: 1 other service(s) on this host serve license")
    await first.close()
    await eventually(lambda: serves(second), timeout_s=10)


async def test_max_qps_is_shared_by_the_servers_on_the_host(
    licensed: Any, vendor: Vendor, host: FakeHost, tmp_path: Path
) -> None:
    vendor.issue(host.root, tmp_path / "license" / "license.lic", max_qps=4)
    first = await licensed(ready=True)
    await licensed(ready=True, state_dir=tmp_path / "state-2")
    await asyncio.sleep(1.5)  # the first server's next count of the services on its license
    statuses = [(await first.post(URL, json={"image": IMAGE})).status for _ in range(8)]
    assert 2 <= statuses.count(200) <= 3 and statuses.count(503) >= 5, statuses  # 4/s split in two


def run_lu(work_root: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "inferpack", "lu", *args, "--work-root", str(work_root)],
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.fixture
def installed(tmp_path: Path, vendor: Vendor) -> ServiceLayout:
    """A service laid out the way the installer does it, licensed for THIS machine (lu reads /)."""
    layout = ServiceLayout(tmp_path / "work", "demo")
    layout.license_dir.mkdir(parents=True)
    layout.vendor_key.write_bytes(vendor.public_key.read_bytes())
    return layout


async def test_lu_hot_swap_resumes_service_without_restart(
    start_server: StartServer, colour_model: Path, vendor: Vendor, installed: ServiceLayout, tmp_path: Path
) -> None:
    expired_at = datetime.now(UTC) - timedelta(days=40)
    vendor.issue(Path("/"), installed.license_file, days=30, now=expired_at)
    client = await start_server(
        colour_model,
        ready=False,
        license_file=installed.license_file,
        vendor_public_key=installed.vendor_key,
        state_dir=installed.state_dir,
    )
    await refused(client, "expired on")
    fresh = vendor.issue(Path("/"), tmp_path / "incoming" / "demo.lic", days=365)
    result = run_lu(installed.root, "demo", str(fresh))
    assert result.returncode == 0, result.stderr
    assert "no restart" in result.stdout
    assert installed.license_file.read_bytes() == fresh.read_bytes()
    assert json.loads(installed.fingerprint_snapshot.read_text())["components"]
    await eventually(lambda: serves(client), timeout_s=5)


async def test_lu_with_bad_file_keeps_the_old_license(
    start_server: StartServer, colour_model: Path, vendor: Vendor, installed: ServiceLayout, tmp_path: Path
) -> None:
    vendor.issue(Path("/"), installed.license_file, days=365)
    before = installed.license_file.read_bytes()
    client = await start_server(
        colour_model,
        license_file=installed.license_file,
        vendor_public_key=installed.vendor_key,
        state_dir=installed.state_dir,
    )
    wrong_name = vendor.issue(Path("/"), tmp_path / "incoming" / "a.lic", deploy_names=["other"])
    other_key = vendor.issue(Path("/"), tmp_path / "incoming" / "b.lic", key=Ed25519PrivateKey.generate())
    garbage = tmp_path / "incoming" / "c.lic"
    garbage.write_text("hello")
    for bad, reason in (
        (wrong_name, "not licensed for deploy name"),
        (other_key, "signed by another key"),
        (garbage, "malformed"),
        (tmp_path / "missing.lic", "cannot read"),
    ):
        result = run_lu(installed.root, "demo", str(bad))
        assert result.returncode == 1
        assert reason in result.stderr and result.stderr.count("\n") == 1, result.stderr
        assert installed.license_file.read_bytes() == before
    await serves(client)


def test_lu_for_a_service_that_is_not_installed(tmp_path: Path) -> None:
    result = run_lu(tmp_path / "work", "ghost", str(tmp_path / "x.lic"))
    assert result.returncode == 1
    assert "not installed" in result.stderr


async def test_open_inference_protocol_refused_with_the_reason(
    licensed: Any, vendor: Vendor, host: FakeHost, tmp_path: Path
) -> None:
    issued = datetime.now(UTC) - timedelta(days=40)
    vendor.issue(host.root, tmp_path / "license" / "license.lic", days=30, now=issued)
    client = await licensed()
    image = {"name": "image", "datatype": "BYTES", "shape": [1], "data": [IMAGE]}
    response = await client.post("/v2/models/demo/infer", json={"inputs": [image]})
    assert response.status == 403
    error = (await response.json())["error"]
    assert error.startswith("Auth check failed: ") and "expired on" in error
    ready = await client.get("/v2/health/ready")
    assert ready.status == 503 and "expired on" in (await ready.json())["error"]
