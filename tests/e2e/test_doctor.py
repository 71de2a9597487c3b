"""`bash trouble_shooting.sh` on a real deployment: healthy, then each real failure injected.

One service is installed from a real signed package on the real Docker Engine (as
test_installer does) and shared by the tests, in file order: each injection is undone before
the next test, and every test starts by waiting until the service serves again. The failures
are the real thing: a stopped container, a hung server (unhealthy), another program on the
port, an expired or foreign license in place, a clock guard mark in the future (what a clock
set back leaves), model weights altered after install, a model that crashes on load (its
traceback in the log), a disk threshold exceeded; last the same service reinstalled on the
process runtime, whose backend is then killed.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import re
import signal
import socket
import struct
import subprocess
import tarfile
import time
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np
import psutil
import pytest
import tritonclient.http as httpclient

from inferpack.client import Client
from inferpack.deploy.layout import ServiceLayout
from inferpack.license._time import utcnow
from inferpack.license.clock import ClockGuard, clock_key
from inferpack.license.fingerprint import LicenseRequest, collect, hash_component, read_request
from inferpack.license.keys import load_private_key
from inferpack.license.licfile import issue_license
from tests.conftest import RED, encode, solid
from tests.e2e import test_installer
from tests.e2e.test_installer import Operator, Packages, containers, free_port, install_v1, service_name

pytestmark = pytest.mark.docker

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
packages = test_installer.packages  # the module-scoped fixture: signed packages and the vendor key
TEN, MINUS_TEN = struct.pack("<f", 10.0), struct.pack("<f", -10.0)  # the colour model's weights


@dataclass
class Deployed:
    operator: Operator
    package: Path  # the unpacked full package, with trouble_shooting/ in it

    @property
    def name(self) -> str:
        return self.operator.name

    @property
    def layout(self) -> ServiceLayout:
        return ServiceLayout(self.operator.work_root, self.name)

    @property
    def front(self) -> str:
        return f"inferpack-{self.name}-front"

    @property
    def backend(self) -> str:
        return f"inferpack-{self.name}-v1.0.0"

    def doctor(self, *args: str) -> subprocess.CompletedProcess[str]:
        """The operator's command, from the unpacked package."""
        env = {**os.environ, "INFERPACK_WORK_ROOT": str(self.operator.work_root)}
        env.pop("VIRTUAL_ENV", None)
        return subprocess.run(
            ["bash", "trouble_shooting/trouble_shooting.sh", self.name, *args],
            cwd=self.package,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )

    def start_script(self) -> None:
        """What a FAIL line's next step says to run; returns once the front answers ready."""
        result = subprocess.run(
            ["bash", str(self.layout.start_script)], capture_output=True, text=True, timeout=300
        )
        assert result.returncode == 0, result.stdout + result.stderr


def wait_for(check: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not within {timeout_s}s")
        time.sleep(0.25)


def serves(deployed: Deployed) -> bool:
    try:
        with NO_PROXY.open(f"http://127.0.0.1:{deployed.operator.port}/readyz", timeout=3) as response:
            return bool(response.status == 200)
    except OSError:
        return False


def finding(output: str, status: str, check: str) -> tuple[str, str]:
    """The first ``status`` line of ``check`` and its next step (the ``->`` line under it)."""
    lines = output.splitlines()
    for index, line in enumerate(lines):
        if re.match(rf"{status}\s+\S+\s+{re.escape(check)}\s", line):
            step = lines[index + 1].strip() if index + 1 < len(lines) else ""
            return line, step.removeprefix("-> ") if step.startswith("->") else ""
    raise AssertionError(f"no {status} line for {check} in:\n{output}")


def statuses(output: str) -> dict[str, set[str]]:
    found: dict[str, set[str]] = {}
    for line in output.splitlines():
        if match := re.match(r"(PASS|WARN|FAIL)\s+\S+\s+(\S+)\s", line):
            found.setdefault(match.group(1), set()).add(match.group(2))
    return found


def docker(*args: str) -> str:
    return subprocess.run(["docker", *args], capture_output=True, text=True, check=True).stdout.strip()


def health(container: str) -> str:
    return docker("inspect", "-f", "{{.State.Health.Status}}", container)


def healthy(container: str) -> bool:
    return health(container) == "healthy"


def write_like(path: Path, data: bytes) -> None:
    """Replaces ``path``'s bytes atomically, keeping its owner and mode (the server reads it)."""
    stat = path.stat()
    tmp = path.with_name(f".{path.name}.test")
    tmp.write_bytes(data)
    os.chown(tmp, stat.st_uid, stat.st_gid)
    tmp.chmod(stat.st_mode & 0o777)
    tmp.replace(path)


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory, packages: Packages) -> Iterator[Deployed]:
    home = tmp_path_factory.mktemp("doctor")
    operator = Operator(home / "host", home / "work", service_name(packages), free_port())
    operator.home.mkdir()
    try:
        yield Deployed(operator, install_v1(operator, packages))
    finally:
        names = [c.split()[0] for c in containers(operator.name)]
        if names:
            subprocess.run(["docker", "rm", "-f", *names], capture_output=True)
        for pidfile in operator.work_root.glob("*/state/processes/*.pid"):
            with contextlib.suppress(ValueError, OSError):
                os.killpg(int(pidfile.read_text()), signal.SIGKILL)


@pytest.fixture
def service(deployed: Deployed) -> Deployed:
    """The shared service, serving: a test that broke it has put it back."""
    wait_for(lambda: serves(deployed), 90, "the service serving")
    for name in [c.split()[0] for c in containers(deployed.name)]:  # and Docker's probes agree
        wait_for(functools.partial(healthy, name), 60, f"{name} healthy")
    return deployed


def test_healthy_deployment_passes(service: Deployed) -> None:
    result = service.doctor()
    print(result.stdout)
    assert result.returncode == 0, result.stdout + result.stderr
    found = statuses(result.stdout)
    assert "FAIL" not in found, result.stdout
    # WARN only where this machine explains it: no NVIDIA GPU for this CPU service.
    assert found.get("WARN", set()) <= {"gpu"}, result.stdout
    expected = {"docker", "disk", "memory", "image", "container", "port", "ready", "prediction",
                "network", "model", "license", "fingerprint", "clock", "logs"}  # fmt: skip
    assert expected <= found["PASS"], result.stdout
    assert "summary: " in result.stdout and " 0 FAIL" in result.stdout

    as_json = json.loads(service.doctor("--json").stdout)
    assert as_json["ok"] is True and as_json["summary"]["FAIL"] == 0
    checks = {(r["check"], r["status"]) for r in as_json["results"]}
    assert ("prediction", "PASS") in checks and ("license", "PASS") in checks


def test_clients_through_the_installed_service(service: Deployed) -> None:
    """tritonclient on /v2, inferpack.client and the web console, through the front to the
    licensed backend container: the same answer by every way in."""
    origin = f"127.0.0.1:{service.operator.port}"
    jpeg = encode(solid(RED))
    with Client(f"http://{origin}/{service.name}") as client:
        easydl = client.classify(jpeg, top_num=2)
    triton = httpclient.InferenceServerClient(origin)
    try:
        assert triton.is_server_ready() and triton.is_model_ready(service.name)
        image = httpclient.InferInput("image", [1], "BYTES")
        image.set_data_from_numpy(np.array([jpeg], dtype=np.object_), binary_data=True)
        wanted = [httpclient.InferRequestedOutput(name) for name in ("labels", "scores")]
        result = triton.infer(service.name, [image], outputs=wanted, parameters={"top_num": 2})
    finally:
        triton.close()
    assert [label.decode() for label in result.as_numpy("labels")[0]] == [r.name for r in easydl.results]
    assert result.as_numpy("scores")[0].tolist() == pytest.approx([r.score for r in easydl.results], rel=1e-6)
    assert easydl.results[0].name == "red"
    with NO_PROXY.open(f"http://{origin}/{service.name}/", timeout=10) as page:
        assert page.status == 200 and "default-src 'none'" in page.headers["Content-Security-Policy"]
        assert b'src="console.js"' in page.read()


def test_bundle_has_what_it_says_and_no_secrets(service: Deployed, packages: Packages) -> None:
    target = service.operator.home / "support.tar.gz"
    result = service.doctor("--bundle", str(target))
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"support bundle: {target}" in result.stderr
    with tarfile.open(target) as tar:
        members = {m.name.split("/", 1)[1]: tar.extractfile(m).read() for m in tar.getmembers() if m.isfile()}  # type: ignore[union-attr]
    base = f"services/{service.name}"
    for name in ("README.txt", "results.txt", "results.json", "versions.json", "fingerprint-request.json",
                 "package-manifest.json", f"{base}/settings.json", f"{base}/routes.json",
                 f"{base}/answers/1.0.0.json", f"{base}/model/1.0.0/model.json",
                 f"{base}/license-summary.json",
                 f"{base}/inspect/{service.backend}.json", f"{base}/inspect/{service.front}.json",
                 f"{base}/logs/{service.backend}.log", f"{base}/logs/{service.front}.log"):  # fmt: skip
        assert name in members, sorted(members)
    assert json.loads(members["results.json"])["ok"] is True
    assert json.loads(members[f"{base}/inspect/{service.backend}.json"])["Name"] == f"/{service.backend}"
    assert json.loads(members["fingerprint-request.json"])["format"] == "inferpack-fingerprint"
    assert json.loads(members[f"{base}/license-summary.json"])["valid"] is True
    assert b"ready: POST" in members[f"{base}/logs/{service.backend}.log"]

    # Nothing secret, and no image or model bytes.
    license_text = service.layout.license_file.read_text()
    signature = license_text.split("-----SIGNATURE-----")[1].split("-----END")[0]
    secrets = {
        "vendor private key": packages.vendor_key.read_bytes().strip(),
        "license signature": "".join(signature.split()).encode()[:40],
        "license block": b"BEGIN INFERPACK LICENSE",
        "any private key": b"PRIVATE KEY",
        "model weights": (service.layout.versions / "1.0.0" / "model.onnx").read_bytes()[-64:],
    }
    for name, data in members.items():
        for what, secret in secrets.items():
            assert secret not in data, f"{what} in {name}"
        assert not name.endswith((".lic", ".key", ".onnx", ".tar", ".pem")), name
        assert len(data) < 8 * 2**20, name
    assert sum(len(d) for d in members.values()) < 8 * 2**20


def test_disk_over_threshold(service: Deployed) -> None:
    result = service.doctor("--disk-threshold", "1")
    assert result.returncode == 1
    line, step = finding(result.stdout, "FAIL", "disk")
    assert f"work root {service.operator.work_root}" in line and "threshold 1%" in line
    assert "free space under" in step
    assert "Docker root" in result.stdout


def _reissue(service: Deployed, packages: Packages, request: LicenseRequest, **kwargs: object) -> str:
    key = load_private_key(packages.vendor_key)
    return issue_license(key, request, [service.name], **kwargs)  # type: ignore[arg-type]


@contextlib.contextmanager
def license_in_place(service: Deployed, text: str) -> Iterator[None]:
    """Another license file where the running server reads it; the original back afterwards."""
    path = service.layout.license_file
    original = path.read_bytes()
    write_like(path, text.encode())
    try:
        wait_for(lambda: not serves(service), 30, "the server refusing the license")
        yield
    finally:
        write_like(path, original)


def test_license_expired(service: Deployed, packages: Packages) -> None:
    request = read_request(service.layout.fingerprint_snapshot)
    expired = _reissue(service, packages, request, days=1, now=utcnow() - timedelta(days=10))
    with license_in_place(service, expired):
        output = failing_doctor(service)
    line, step = finding(output, "FAIL", "license")
    assert "refused: expired on" in line
    assert "renewed license" in step and f"python3 install.py lu {service.name}" in step
    line, step = finding(output, "FAIL", "ready")
    assert "license: expired" in line and "license checks" in step


def test_license_for_another_machine(service: Deployed, packages: Packages) -> None:
    mine = read_request(service.layout.fingerprint_snapshot)
    other = {
        k: v if k == "cpu_model" else hash_component(k, f"another-{k}") for k, v in mine.components.items()
    }
    foreign = LicenseRequest(other, {}, mine.product_version, mine.created)
    with license_in_place(service, _reissue(service, packages, foreign, days=30)):
        output = failing_doctor(service)
    line, step = finding(output, "FAIL", "license")
    assert "wrong machine" in line and "another machine" in step and "fingerprint --out" in step
    line, _ = finding(output, "FAIL", "fingerprint")
    assert "machine_id changed" in line and "cpu_model" not in line


def test_clock_rolled_back(service: Deployed) -> None:
    """A guard mark 3 days ahead: exactly what running, then setting the clock back, leaves."""
    state = service.layout.state_dir / "license-clock.json"
    wait_for(state.is_file, 30, "the server's clock mark")
    original = state.read_bytes()
    future = service.operator.home / "future.json"
    ClockGuard(future, clock_key(collect("/"))).check(utcnow() + timedelta(days=3))
    write_like(state, future.read_bytes())
    try:
        output = failing_doctor(service)
    finally:
        write_like(state, original)
        # The server re-verifies when the license file changes: make sure it has the mark back.
        write_like(service.layout.license_file, service.layout.license_file.read_bytes())
    line, step = finding(output, "FAIL", "clock")
    assert "clock rolled back" in line and "last seen" in line
    assert "set the system clock right" in step and "clock-reset license" in step


def failing_doctor(service: Deployed) -> str:
    result = service.doctor()
    assert result.returncode == 1, result.stdout + result.stderr
    return result.stdout


@contextlib.contextmanager
def stopped(service: Deployed, container: str) -> Iterator[None]:
    """``docker stop``; afterwards start-1.sh, the step the FAIL line gives."""
    docker("stop", container)
    try:
        yield
    finally:
        service.start_script()


@contextlib.contextmanager
def listening(port: int) -> Iterator[None]:
    """Another program (this test) holding ``port``."""
    with socket.socket() as squatter:
        squatter.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        squatter.bind(("0.0.0.0", port))
        squatter.listen()
        yield


@contextlib.contextmanager
def hung(service: Deployed) -> Iterator[None]:
    """The backend's server process stopped (SIGSTOP) until Docker's probe calls it unhealthy."""
    # Failed probes count only once one has passed (before that, the start period forgives them).
    wait_for(functools.partial(healthy, service.backend), 60, "Docker calling the backend healthy")
    tini = psutil.Process(int(docker("inspect", "-f", "{{.State.Pid}}", service.backend)))
    server = tini.children()[0]
    server.suspend()
    try:
        wait_for(lambda: health(service.backend) == "unhealthy", 60, "Docker calling the backend unhealthy")
        yield
    finally:
        server.resume()


def test_port_taken_by_another_program(service: Deployed) -> None:
    with stopped(service, service.front), listening(service.operator.port):
        output = failing_doctor(service)
    line, step = finding(output, "FAIL", "port")
    assert f"port {service.operator.port} is held by another program" in line
    assert f"(pid {os.getpid()})" in line
    assert f"stop {psutil.Process().name()} (pid {os.getpid()})" in step and "start-1.sh" in step
    line, step = finding(output, "FAIL", "container")
    assert f"{service.front} (front on port {service.operator.port}): exited" in line
    assert str(service.layout.start_script) in step


def test_container_stopped(service: Deployed) -> None:
    with stopped(service, service.backend):
        output = failing_doctor(service)
    line, step = finding(output, "FAIL", "container")
    assert f"{service.backend} (version 1.0.0): exited" in line
    assert step == f"bash {service.layout.start_script} starts it again"
    line, _ = finding(output, "FAIL", "ready")
    assert "not answering" in line
    assert "prediction" not in statuses(output).get("PASS", set())


def test_container_unhealthy(service: Deployed) -> None:
    """The server process hung: the container runs, Docker's probe fails."""
    with hung(service):
        output = failing_doctor(service)
    line, step = finding(output, "FAIL", "container")
    assert f"{service.backend} (version 1.0.0): running but unhealthy" in line
    assert step.startswith(f"restart it: docker restart {service.backend}")
    assert "last health probe: exit" in output
    line, _ = finding(output, "FAIL", "ready")
    assert "not answering" in line and "timed out" in line


@contextlib.contextmanager
def model_replaced(service: Deployed, change: Callable[[bytes], bytes]) -> Iterator[None]:
    """The installed model.onnx changed on disk, then the backend restarted onto it; afterwards
    the original back and the backend recreated (start-1.sh), as an operator would."""
    model = service.layout.versions / "1.0.0" / "model.onnx"
    original = model.read_bytes()
    write_like(model, change(original))
    docker("restart", "-t", "5", service.backend)
    try:
        yield
    finally:
        write_like(model, original)
        docker("rm", "-f", service.backend)
        service.start_script()


def test_model_altered_after_install(service: Deployed) -> None:
    """Weights negated in place: the model still loads, but answers differently."""
    assert TEN in (service.layout.versions / "1.0.0" / "model.onnx").read_bytes()
    with model_replaced(service, lambda data: data.replace(TEN, MINUS_TEN)):
        wait_for(lambda: serves(service), 60, "the backend serving the altered model")
        output = failing_doctor(service)
    line, step = finding(output, "FAIL", "prediction")
    assert "the sample answer changed since install: result 1 is" in line
    assert "may be damaged" in step and "versions/1.0.0" in step
    line, step = finding(output, "FAIL", "model")
    assert "model.onnx differs from the package manifest" in line
    assert f"copy {service.package / 'model'}/ over" in step and f"docker restart {service.backend}" in step


def test_traceback_in_logs(service: Deployed) -> None:
    """A model file that no longer loads: the server logs the traceback and exits, in a loop."""
    with model_replaced(service, lambda data: b"this is no longer an ONNX model"):

        def logs() -> str:
            both = subprocess.run(["docker", "logs", service.backend], capture_output=True, text=True)
            return both.stdout + both.stderr

        wait_for(lambda: "Traceback" in logs(), 60, "a traceback in the backend's log")
        output = failing_doctor(service)
    print(output)
    line, step = finding(output, "FAIL", "logs")
    assert f"{service.backend}: last" in line and "traceback(s) since the last start, latest 20" in line
    assert f"read them (docker logs {service.backend})" in step and "--bundle" in step
    assert "cannot be served" in output
    line, step = finding(output, "FAIL", "container")
    assert (
        f"{service.backend} (version 1.0.0): crash loop" in line and "see the logs check" in step
    )  # the key lines under it, with their timestamps


def test_process_runtime(service: Deployed) -> None:
    """The same package reinstalled as local processes (the venv is reused: cheap), then its
    backend killed."""
    operator, package = service.operator, service.package
    operator.run(package, "remove", service.name)
    # Another port: the old one may still be in TIME_WAIT, which the installer's check refuses.
    port = str(free_port())
    operator.run(package, "install", service.name, "--port", port, "--runtime", "process")
    try:
        result = service.doctor()
        assert result.returncode == 0, result.stdout + result.stderr
        found = statuses(result.stdout)
        assert "FAIL" not in found and found.get("WARN", set()) <= {"gpu", "logs"}, result.stdout
        if "logs" in found.get("WARN", set()):
            # The backend logs to the folder the containers did: test_traceback_in_logs's crashes
            # are there, but before this run's start, so they are a WARN and no longer a FAIL.
            line, step = finding(result.stdout, "WARN", "logs")
            assert "traceback(s) before the last start" in line and "none since" in line
            assert step.startswith("nothing to do while the service works")
        assert {"process", "ready", "prediction", "license", "clock", "logs"} <= found["PASS"]
        assert "docker" in found["PASS"]  # not needed here, and not a failure

        pidfile = service.layout.state_dir / "processes" / f"inferpack-{service.name}-v1.0.0.pid"
        os.killpg(int(pidfile.read_text()), signal.SIGKILL)
        line, step = finding(failing_doctor(service), "FAIL", "process")
        assert f"inferpack-{service.name}-v1.0.0 (version 1.0.0): exited" in line
        assert step == f"bash {service.layout.start_script} starts it again"
    finally:
        operator.run(package, "remove", service.name, check=False)
