"""Every service the installer starts enforces its license: the real installer CLI on the process
runtime, a real signed package, real licenses for this machine, the real front on a real port.

Installed with --force and no usable license, a service answers 337000 (never "development
mode"), through restarts of every kind, until `lu` puts a valid license in place, which takes
effect within about a second with no restart. settings.json and the environment cannot reach
development mode or another host root.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psutil
import pytest

from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.pack import SOURCE_ROOT, pinned_sources
from inferpack.deploy.process_runtime import ProcessRuntime
from inferpack.license.fingerprint import LicenseRequest, collect
from inferpack.license.keys import public_pem
from inferpack.license.licfile import issue_license
from tests.conftest import RED, b64, encode, solid
from tests.onnx_models import colour_classifier
from tests.support.packages import Vendor, fake_wheels, make_package, make_vendor, unpack
from tests.unit.license._fakes import build_host

NAME = "cats"
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
BODY = json.dumps({"image": b64(encode(solid(RED)))}).encode()
# What an operator could export before `install.py start`: none of it may reach an installed server.
HOSTILE_ENV = {
    "INFERPACK_DEVELOPMENT_MODE": "1",
    "INFERPACK_HOST_ROOT": "/nonexistent",
    "INFERPACK_LICENSE_FILE": "/nonexistent.lic",
    "INFERPACK_VENDOR_PUBLIC_KEY": "/nonexistent.pub",
}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def issue(vendor: Vendor, path: Path, root: Path = Path("/"), **options: Any) -> Path:
    fingerprint = collect(root, gpu_source=list)
    request = LicenseRequest(fingerprint.components, fingerprint.summary, "0.1.0", "2026-01-01T00:00:00Z")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(issue_license(vendor.key, request, [NAME], days=options.pop("days", 30), **options))
    return path


@dataclass
class Host:
    package: Path
    work_root: Path
    port: int
    vendor: Vendor
    home: Path

    @property
    def layout(self) -> ServiceLayout:
        return ServiceLayout(self.work_root, NAME)

    def inferpack(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "inferpack", *args, "--work-root", str(self.work_root)],
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, "INFERPACK_PACKAGE_ROOT": str(self.package), **(env or {})},
        )

    def install(self, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.inferpack(
            "install", NAME, "--runtime", "process", "--port", str(self.port), *args, env=env
        )

    def predict(self) -> tuple[int, dict[str, Any]]:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/{NAME}/ImageClassification",
            data=BODY,
            headers={"Content-Type": "application/json"},
        )
        try:
            with NO_PROXY.open(request, timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def readyz(self) -> tuple[int, dict[str, Any]]:
        try:
            with NO_PROXY.open(f"http://127.0.0.1:{self.port}/readyz", timeout=10) as response:
                return response.status, json.loads(response.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read())

    def get(self, path: str, address: str = "127.0.0.1", spoof: bool = False) -> tuple[int, bytes]:
        """GET on the public port from ``address``; ``spoof``: claiming the front's loopback peer."""
        headers = {"X-Inferpack-Peer": "127.0.0.1"} if spoof else {}
        request = urllib.request.Request(f"http://{address}:{self.port}{path}", headers=headers)
        with NO_PROXY.open(request, timeout=10) as response:
            return response.status, response.read()

    def refuses(self, fragment: str) -> None:
        status, body = self.predict()
        assert (status, body.get("error_code")) == (403, 337000), body
        assert fragment in body["error_msg"], body
        status, ready = self.readyz()
        assert status == 503 and any(r.startswith("license: ") for r in ready["reasons"]), ready

    def serves(self) -> None:
        status, body = self.predict()
        assert status == 200 and body["results"][0]["name"] == "red", body


def until(check: Callable[[], None], timeout_s: float) -> float:
    """Seconds until ``check`` stopped raising AssertionError; the last failure after ``timeout_s``."""
    started = time.monotonic()
    while True:
        try:
            check()
            return time.monotonic() - started
        except (AssertionError, OSError):
            if time.monotonic() - started > timeout_s:
                raise
            time.sleep(0.05)


@pytest.fixture(scope="module")
def vendor(tmp_path_factory: pytest.TempPathFactory) -> Vendor:
    return make_vendor(tmp_path_factory.mktemp("vendor"))


@pytest.fixture(scope="module")
def tarball(tmp_path_factory: pytest.TempPathFactory, vendor: Vendor) -> Path:
    work = tmp_path_factory.mktemp("packages")
    model = colour_classifier(work / "model")
    (work / "out").mkdir()
    return make_package(work / "out", vendor, model, fake_wheels(work / "wheels"), name=NAME)[0]


@pytest.fixture
def host(tmp_path: Path, tarball: Path, vendor: Vendor) -> Iterator[Host]:
    host = Host(unpack(tarball, tmp_path / "package"), tmp_path / "work", free_port(), vendor, tmp_path)
    yield host
    host.inferpack("remove", NAME)
    for process in psutil.process_iter(["cmdline"]):  # a failed test leaves nothing running either
        if str(host.work_root) in " ".join(process.info["cmdline"] or []):
            process.kill()


def test_forced_install_without_a_license_refuses_through_restarts_until_lu(host: Host) -> None:
    installed = host.install("--force")
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "FAIL  license" in installed.stdout
    assert "answers 337000 until lu" in installed.stdout
    host.refuses("no license file at")
    status = host.inferpack("status", NAME)
    assert "REFUSED by the running service (no license file at" in status.stdout, status.stdout

    # Restarts: the supervisor's after a crash, then start-1.sh, with a hostile environment.
    backend = next(i for i in ProcessRuntime().instances(host.layout) if i.role == "backend")
    os.kill(int(backend.details["pid"]), signal.SIGKILL)
    until(lambda: host.refuses("no license file at"), timeout_s=60)
    restarted = subprocess.run(
        ["bash", str(host.layout.start_script)],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, **HOSTILE_ENV},
    )
    assert restarted.returncode == 0, restarted.stdout + restarted.stderr
    host.refuses("no license file at")

    good = issue(host.vendor, host.home / "incoming" / "good.lic", days=365)
    lu = host.inferpack("lu", NAME, str(good))
    assert lu.returncode == 0, lu.stderr
    took = until(host.serves, timeout_s=5)
    assert took < 3.0, f"lu took {took:.2f}s to take effect"
    assert "valid until" in host.inferpack("status", NAME).stdout

    host.layout.license_file.unlink()  # removed under a running service
    until(lambda: host.refuses("no license file at"), timeout_s=5)


def test_forced_install_with_another_machines_license_refuses(host: Host) -> None:
    other = build_host(host.home / "other-host")
    foreign = issue(host.vendor, host.package / "licenses" / f"{NAME}.lic", root=other.root)
    installed = host.install("--force", "--license", str(foreign))
    assert installed.returncode == 0, installed.stdout + installed.stderr
    assert "wrong machine" in installed.stdout
    host.refuses("no license file at")
    assert not host.layout.license_file.exists()


def test_settings_json_cannot_reach_development_mode_or_another_host_root(host: Host) -> None:
    issue(host.vendor, host.package / "licenses" / f"{NAME}.lic")
    installed = host.install()
    assert installed.returncode == 0, installed.stdout + installed.stderr
    host.serves()
    settings = json.loads(host.layout.settings.read_text())
    for hostile in (
        ["--no-license"],
        ["--host-root", "/empty"],
        ["--lic", "x.lic"],
        ["--max-batch-size", "-x"],
    ):
        host.inferpack("remove", NAME)
        (host.layout.home / "settings.removed.json").rename(host.layout.settings)
        host.layout.settings.write_text(json.dumps({**settings, "serve_args": hostile}))
        started = host.inferpack("start", NAME)
        assert started.returncode == 1 and "serve_args" in started.stderr, started.stderr
        assert started.stderr.count("\n") == 1, started.stderr
        with pytest.raises(OSError):
            host.predict()  # nothing was started unlicensed
    host.layout.settings.write_text(json.dumps({**settings, "serve_args": ["--max-batch-size", "4"]}))
    started = host.inferpack("start", NAME, env=HOSTILE_ENV)
    assert started.returncode == 0, started.stdout + started.stderr
    host.serves()  # tuning is allowed, and the live host root was kept despite the environment


def test_a_build_that_pins_the_vendor_key_trusts_no_other(host: Host, tmp_path: Path) -> None:
    """What a shipped wheel is: this tree with the vendor key pinned by `pack` (on PYTHONPATH, for
    the installer and the servers it starts). A package re-signed with another key and a license
    self-issued with it, or the work root's vendor.pub swapped, get nowhere."""
    build = pinned_sources(SOURCE_ROOT, tmp_path / "build", public_pem(host.vendor.key.public_key()))
    shipped = {"PYTHONPATH": str(build / "package")}
    attacker = make_vendor(tmp_path / "attacker")
    (tmp_path / "forged").mkdir()
    model = colour_classifier(tmp_path / "model")
    forged = make_package(tmp_path / "forged", attacker, model, fake_wheels(tmp_path / "wheels"), name=NAME)
    forged_root = unpack(forged[0], tmp_path / "forged-package")
    issue(attacker, forged_root / "licenses" / f"{NAME}.lic", days=3650)
    refused = host.install(env={**shipped, "INFERPACK_PACKAGE_ROOT": str(forged_root)})
    assert refused.returncode == 1 and "than this inferpack pins" in refused.stderr, refused.stderr
    assert not host.layout.settings.exists()

    issue(host.vendor, host.package / "licenses" / f"{NAME}.lic")
    installed = host.install(env=shipped)
    assert installed.returncode == 0, installed.stdout + installed.stderr
    host.serves()
    license_identity_only_for_local_callers(host)
    host.layout.vendor_key.write_bytes(attacker.public.read_bytes())  # the work root's copy swapped
    self_issued = issue(attacker, tmp_path / "self-issued.lic", days=3650)
    lu = host.inferpack("lu", NAME, str(self_issued), env=shipped)
    assert lu.returncode == 1 and "signed by another key" in lu.stderr, lu.stderr
    host.serves()
    host.layout.license_file.write_text(self_issued.read_text())  # past lu, by hand
    until(lambda: host.refuses("signed by another key"), timeout_s=5)


def license_identity_only_for_local_callers(host: Host) -> None:
    """/info through the front: licensee, issue id, key id and expiry for a caller on this machine,
    the verdict alone for anyone else (a spoofed peer header included); /metrics for all, with no
    license identity in it."""
    local = json.loads(host.get("/info")[1])["license"]
    assert local["valid"] is True and {"licensee", "issue_id", "key_id", "not_after"} <= local.keys()
    outside = this_machines_other_address()
    for spoof in (False, True):
        remote = json.loads(host.get("/info", outside, spoof=spoof)[1])["license"]
        assert remote == {"required": True, "valid": True, "reason": "license valid"}, remote
    status, metrics = host.get("/metrics", outside)
    assert status == 200 and b"inferpack_license_valid 1.0" in metrics
    assert local["issue_id"].encode() not in metrics and local["key_id"].encode() not in metrics


def this_machines_other_address() -> str:
    """A non-loopback address of this machine: a caller from there is not local."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        probe.connect(("10.255.255.255", 1))  # no packet is sent: this only picks the route
        address = str(probe.getsockname()[0])
    assert not address.startswith("127."), "this machine has no address but loopback"
    return address
