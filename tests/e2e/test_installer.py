"""The operator's whole journey on the real Docker Engine, as an operator would run it.

A vendor key, real packages made with `inferpack pack`, a license issued for THIS machine's
fingerprint, then in a fresh host folder: tar xzf, download.sh, install.py install, predictions
through the public port, update (with a client calling in a loop: no failed request), rollback,
lu, status/list, a broken update rolled back automatically, an installer killed with SIGKILL
mid-update and recovered by the next run, start-1.sh recreating the containers, remove.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from inferpack.deploy.image import SERVICE_UID
from tests.conftest import RED, encode, solid
from tests.onnx_models import colour_classifier, failing_classifier

pytestmark = pytest.mark.docker

ROOT = Path(__file__).resolve().parents[2]
IMAGE_JSON = json.dumps({"image": base64.b64encode(encode(solid(RED))).decode()}).encode()
NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def inferpack(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """The vendor's CLI (the repo's own environment)."""
    result = subprocess.run(
        [sys.executable, "-m", "inferpack", *args], cwd=cwd, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class Operator:
    """An operator's host: packages unpacked in folders, one work root."""

    home: Path
    work_root: Path
    name: str
    port: int

    def unpack(self, tarball: Path, folder: str) -> Path:
        target = self.home / folder
        target.mkdir()
        subprocess.run(["tar", "xzf", str(tarball), "-C", str(target)], check=True)
        return target

    def run(self, package: Path, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "INFERPACK_WORK_ROOT": str(self.work_root)}
        env.pop("VIRTUAL_ENV", None)
        result = subprocess.run(
            ["python3", "install.py", *args],
            cwd=package,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if check:
            assert result.returncode == 0, result.stdout + result.stderr
        return result

    def predict(self, timeout_s: float = 10) -> str:
        request = urllib.request.Request(
            f"http://127.0.0.1:{self.port}/{self.name}/ImageClassification",
            data=IMAGE_JSON,
            headers={"Content-Type": "application/json"},
        )
        with NO_PROXY.open(request, timeout=timeout_s) as response:
            return str(json.loads(response.read())["results"][0]["name"])


@dataclass
class ClientLoop:
    """A client calling the service in a loop, counting what failed."""

    operator: Operator
    answers: list[str] = field(default_factory=list)
    failures: list[str] = field(default_factory=list)
    _stop: threading.Event = field(default_factory=threading.Event)

    def __enter__(self) -> ClientLoop:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()
        return self

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.answers.append(self.operator.predict())
            except (OSError, urllib.error.HTTPError) as exc:
                self.failures.append(repr(exc))

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=30)


@dataclass(frozen=True)
class Packages:
    full_v1: Path
    update_v2: Path
    broken_v3: Path
    vendor_key: Path


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory, server_image: str) -> Packages:
    work = tmp_path_factory.mktemp("vendor")
    inferpack("license", "keygen", "--out", str(work / "keys"))
    models = work / "models"
    v1 = colour_classifier(models / "v1")
    v2 = colour_classifier(models / "v2", labels=["cyan", "magenta", "yellow"])
    v3 = failing_classifier(models / "v3")  # loads, but its sample prediction fails
    out = work / "out"
    out.mkdir()
    name = f"e2e{uuid.uuid4().hex[:6]}"
    key = str(work / "keys" / "vendor.key")
    inferpack("pack", str(v1), "--name", name, "--version", "1.0.0", "--key", key, "--out", str(out))
    for model, version in ((v2, "2.0.0"), (v3, "3.0.0")):
        inferpack(
            "pack", str(model), "--name", name, "--version", version, "--type", "update", "--key", key,
            "--out", str(out),
        )  # fmt: skip
    return Packages(
        out / f"{name}-1.0.0.tar.gz", out / f"{name}-2.0.0.tar.gz", out / f"{name}-3.0.0.tar.gz", Path(key)
    )


def service_name(packages: Packages) -> str:
    return packages.full_v1.name.removesuffix("-1.0.0.tar.gz")


def issue_license(operator: Operator, packages: Packages, target: Path, days: int = 30) -> Path:
    """The operator's fingerprint request, signed by the vendor: a license for THIS machine."""
    request = operator.home / f"request-{days}.json"
    inferpack("fingerprint", "--out", str(request))
    target.parent.mkdir(parents=True, exist_ok=True)
    inferpack(
        "license", "issue", "--key", str(packages.vendor_key), "--request", str(request),
        "--deploy", operator.name, "--days", str(days), "--out", str(target),
    )  # fmt: skip
    return target


def containers(name: str) -> list[str]:
    listing = subprocess.run(
        [
            "docker",
            "ps",
            "-a",
            "--filter",
            f"label=io.inferpack.service={name}",
            "--format",
            "{{.Names}} {{.State}}",
        ],
        capture_output=True,
        text=True,
        check=True,
    )
    return sorted(listing.stdout.split("\n")[:-1])


@pytest.fixture
def operator(tmp_path: Path, packages: Packages) -> Iterator[Operator]:
    operator = Operator(tmp_path / "host", tmp_path / "work", service_name(packages), free_port())
    operator.home.mkdir()
    yield operator
    subprocess.run(
        ["docker", "rm", "-f", *[c.split()[0] for c in containers(operator.name)]], capture_output=True
    )
    for pidfile in operator.work_root.glob("*/state/processes/*.pid"):
        with contextlib.suppress(ValueError, OSError):
            os.killpg(int(pidfile.read_text()), signal.SIGKILL)


def install_v1(operator: Operator, packages: Packages, runtime: str = "docker") -> Path:
    package = operator.unpack(packages.full_v1, "v1")
    issue_license(operator, packages, package / "licenses" / f"{operator.name}.lic")
    if runtime == "docker":
        result = subprocess.run(
            ["bash", "original/download.sh"],
            cwd=package,
            env={**os.environ, "INFERPACK_WORK_ROOT": str(operator.work_root)},
            capture_output=True,
            text=True,
            timeout=600,
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert "PASS" in result.stdout
    result = operator.run(
        package, "install", operator.name, "--port", str(operator.port), "--runtime", runtime
    )
    for check in ("runtime", "disk", "port", "license"):
        assert f"PASS  {check}" in result.stdout, result.stdout
    assert "serves at http://" in result.stdout and "curl" in result.stdout
    return package


def test_install_update_rollback_lu_remove(operator: Operator, packages: Packages) -> None:
    package = install_v1(operator, packages)
    assert operator.predict() == "red"
    layout_home = operator.work_root / operator.name
    assert (layout_home / "start" / "start-1.sh").is_file()
    assert os.readlink(layout_home / "current") == "versions/1.0.0"

    with ClientLoop(operator) as loop:
        operator.run(package, "update", operator.name, str(packages.update_v2), "--allow-task-change")
        assert operator.predict() == "cyan"  # the new model answers
        operator.run(package, "rollback", operator.name)
        assert operator.predict() == "red"  # the old one again
    assert loop.failures == [], loop.failures[:5]
    assert {"red", "cyan"} <= set(loop.answers), "the loop saw both versions"
    print(f"client loop: {len(loop.answers)} requests, {len(loop.failures)} failed")
    assert sorted(os.listdir(layout_home / "versions")) == ["1.0.0", "2.0.0"]
    assert [c for c in containers(operator.name) if "running" in c] == [
        f"inferpack-{operator.name}-front running",
        f"inferpack-{operator.name}-v1.0.0 running",
    ]

    before = (layout_home / "license" / "license.lic").read_bytes()
    fresh = issue_license(operator, packages, operator.home / "new.lic", days=90)
    result = operator.run(package, "lu", operator.name, str(fresh))
    assert "no restart" in result.stdout
    assert (layout_home / "license" / "license.lic").read_bytes() == fresh.read_bytes() != before
    assert operator.predict() == "red"

    status = operator.run(package, "status", operator.name)
    assert "healthy" in status.stdout and "1.0.0" in status.stdout and "valid until" in status.stdout
    assert operator.name in operator.run(package, "list").stdout

    operator.run(package, "remove", operator.name)
    assert containers(operator.name) == []
    assert (layout_home / "versions" / "1.0.0" / "model.onnx").is_file()  # data kept


def test_broken_update_rolls_back_automatically(operator: Operator, packages: Packages) -> None:
    package = install_v1(operator, packages)
    with ClientLoop(operator) as loop:
        result = operator.run(
            package, "update", operator.name, str(packages.broken_v3), "--timeout", "60", check=False
        )
    assert result.returncode == 1
    assert "version 3.0.0 failed its checks" in result.stderr
    assert "version 1.0.0 keeps serving" in result.stderr
    assert loop.failures == [] and set(loop.answers) == {"red"}
    assert operator.predict() == "red"
    running = [c for c in containers(operator.name) if "running" in c]
    assert running == [
        f"inferpack-{operator.name}-front running",
        f"inferpack-{operator.name}-v1.0.0 running",
    ]
    assert os.readlink(operator.work_root / operator.name / "current") == "versions/1.0.0"


def test_installer_killed_mid_update_is_recovered(operator: Operator, packages: Packages) -> None:
    package = install_v1(operator, packages)
    journal = operator.work_root / operator.name / "journal.json"
    env = {**os.environ, "INFERPACK_WORK_ROOT": str(operator.work_root)}
    victim = subprocess.Popen(
        ["python3", "install.py", "update", operator.name, str(packages.update_v2), "--allow-task-change"],
        cwd=package,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if journal.is_file() and json.loads(journal.read_text() or "{}").get("step") == "gate":
            break
        time.sleep(0.02)
    else:
        victim.kill()
        pytest.fail("the update never reached its gate")
    victim.send_signal(signal.SIGKILL)
    victim.wait()
    assert journal.is_file()
    assert operator.predict() == "red"  # still serving the old version

    result = operator.run(package, "update", operator.name, str(packages.update_v2), "--allow-task-change")
    assert "recovering from an interrupted update of version 2.0.0" in result.stdout
    assert not journal.exists()
    assert operator.predict() == "cyan"
    running = [c for c in containers(operator.name) if "running" in c]
    assert running == [
        f"inferpack-{operator.name}-front running",
        f"inferpack-{operator.name}-v2.0.0 running",
    ]


def test_start_script_recreates_the_service(operator: Operator, packages: Packages) -> None:
    install_v1(operator, packages)
    subprocess.run(["docker", "rm", "-f", *[c.split()[0] for c in containers(operator.name)]], check=True)
    with pytest.raises(OSError):
        operator.predict(timeout_s=2)
    start = operator.work_root / operator.name / "start" / "start-1.sh"
    result = subprocess.run(["bash", str(start)], capture_output=True, text=True, timeout=300, env={})
    assert result.returncode == 0, result.stdout + result.stderr
    deadline = time.monotonic() + 60
    while True:
        try:
            assert operator.predict() == "red"
            break
        except OSError:
            assert time.monotonic() < deadline
            time.sleep(0.5)


def test_process_runtime_install_update_rollback(operator: Operator, packages: Packages) -> None:
    package = install_v1(operator, packages, runtime="process")
    assert operator.predict() == "red"
    assert containers(operator.name) == []
    with ClientLoop(operator) as loop:
        operator.run(package, "update", operator.name, str(packages.update_v2), "--allow-task-change")
        assert operator.predict() == "cyan"
        operator.run(package, "rollback", operator.name)
    assert loop.failures == [], loop.failures[:5]
    print(f"client loop (process runtime): {len(loop.answers)} requests, {len(loop.failures)} failed")
    assert operator.predict() == "red"
    operator.run(package, "remove", operator.name)
    with pytest.raises(OSError):
        operator.predict(timeout_s=2)
    shutil.rmtree(operator.work_root / operator.name)


def test_docker_reinstall_after_a_process_install_runs_with_the_kept_files(
    operator: Operator, packages: Packages
) -> None:
    """Files kept by `remove` (no --purge) from a process-runtime install, owned by root, must not
    crash-loop the containers, which run as uid 10001."""
    package = install_v1(operator, packages, runtime="process")
    operator.run(package, "remove", operator.name)
    kept = sorted((operator.work_root / operator.name / "logs").rglob("*.log"))
    assert kept and all(path.stat().st_uid == os.geteuid() for path in kept)
    download = subprocess.run(
        ["bash", "original/download.sh", "--work-root", str(operator.work_root)],
        cwd=package, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    assert download.returncode == 0, download.stdout + download.stderr
    operator.run(package, "install", operator.name, "--port", str(operator.port), "--runtime", "docker")
    assert operator.predict() == "red"
    assert all(path.stat().st_uid == SERVICE_UID for path in kept if os.geteuid() == 0)
    running = [c for c in containers(operator.name) if "running" in c]
    assert len(running) == 2, running


def test_another_work_root_on_the_same_port_fails_on_the_port(
    operator: Operator, packages: Packages, tmp_path: Path
) -> None:
    package = install_v1(operator, packages)
    other = Operator(operator.home, tmp_path / "other-work", operator.name, operator.port)
    result = other.run(
        package, "install", operator.name, "--port", str(operator.port), "--runtime", "docker", check=False
    )
    assert result.returncode == 1
    holder = f"in use by the inferpack service {operator.name} (work root {operator.work_root})"
    assert holder in result.stdout, result.stdout + result.stderr
    assert "environment checks failed" in result.stderr
    assert not (other.work_root / operator.name).exists()
    assert operator.predict() == "red"  # the first one is untouched
