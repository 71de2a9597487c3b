"""The swarm runtime on the real Docker Engine: a single-node swarm this test makes (or the one the
engine is already in: then it creates and removes only its own services).

One service's life, each step with a client calling through the public port in a loop:
install with 3 replicas (each serves), update and rollback (rolling, start-first: no failed
request), a broken update that Swarm rolls back by itself, `lu` rotating the license secret
replica by replica, a killed replica replaced by Swarm, scale, remove.

What one host cannot show: replicas on several machines, a node without the image, a node the
license does not name (their wording is unit-tested in test_swarm_tasks.py).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.test_installer import ClientLoop, Operator, free_port, inferpack, issue_license
from tests.onnx_models import colour_classifier

pytestmark = pytest.mark.docker

TUNING = {"INFERPACK_SWARM_HEALTH_INTERVAL_S": "1", "INFERPACK_SWARM_MONITOR_S": "3"}
REPLICAS = 3


def docker(*args: str, check: bool = True) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0 or not check, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def swarm(server_image: str) -> Iterator[None]:
    """A swarm to work in; left afterwards only if this fixture made it."""
    state = docker("info", "--format", "{{.Swarm.LocalNodeState}}").strip()
    made = state == "inactive"
    if made:
        docker("swarm", "init", "--advertise-addr", "127.0.0.1")
    try:
        yield
    finally:
        if made:
            docker("swarm", "leave", "--force", check=False)


@pytest.fixture(scope="module")
def packages(tmp_path_factory: pytest.TempPathFactory, swarm: None) -> dict[str, Path]:
    """v1 (full), v2 (other labels) and v3, whose model cannot load: a replica of it never gets
    healthy. v3 is built through the packing API, as `inferpack pack` refuses such a model."""
    work = tmp_path_factory.mktemp("swarm-vendor")
    inferpack("license", "keygen", "--out", str(work / "keys"))
    key = work / "keys" / "vendor.key"
    v1 = colour_classifier(work / "models" / "v1")
    v2 = colour_classifier(work / "models" / "v2", labels=["cyan", "magenta", "yellow"])
    out = work / "out"
    out.mkdir()
    name = f"swarm{uuid.uuid4().hex[:6]}"
    inferpack("pack", str(v1), "--name", name, "--version", "1.0.0", "--key", str(key), "--out", str(out))
    inferpack(
        "pack", str(v2), "--name", name, "--version", "2.0.0", "--type", "update", "--key", str(key),
        "--out", str(out),
    )  # fmt: skip
    broken = work / "models" / "v3"
    shutil.copytree(v2, broken)
    (broken / "model.onnx").write_bytes(b"not an onnx graph")
    _pack_unchecked(broken, name, "3.0.0", key, out)
    return {"v1": out / f"{name}-1.0.0.tar.gz", "v2": out / f"{name}-2.0.0.tar.gz",
            "v3": out / f"{name}-3.0.0.tar.gz", "key": key}  # fmt: skip


def _pack_unchecked(model: Path, name: str, version: str, key: Path, out: Path) -> None:
    from inferpack.deploy import image
    from inferpack.deploy.images import resolve_image
    from inferpack.deploy.pack import PackageImage, build_package
    from inferpack.license.keys import load_private_key

    tag, image_id = resolve_image(image.docker_client(), None)
    build_package(
        model, name=name, version=version, package_type="update", private_key=load_private_key(key),
        image=PackageImage(tag, image_id, None), wheels=[], out_dir=out,
    )  # fmt: skip


@pytest.fixture
def operator(
    tmp_path: Path, packages: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> Iterator[Operator]:
    for variable, value in TUNING.items():  # install.py passes its environment on
        monkeypatch.setenv(variable, value)
    name = packages["v1"].name.removesuffix("-1.0.0.tar.gz")
    operator = Operator(tmp_path / "host", tmp_path / "work", name, free_port())
    operator.home.mkdir()
    yield operator
    for service in (f"inferpack-{name}-front", f"inferpack-{name}"):
        docker("service", "rm", service, check=False)
    time.sleep(2)
    for kind in ("secret", "config"):
        listed = docker(kind, "ls", "--filter", f"label=io.inferpack.service={name}", "-q", check=False)
        for item in listed.split():
            docker(kind, "rm", item, check=False)
    docker("network", "rm", f"inferpack-{name}", check=False)


def _replica_containers(name: str) -> list[str]:
    out = docker(
        "ps", "--filter", f"label=com.docker.swarm.service.name=inferpack-{name}", "--format", "{{.ID}}"
    )
    return out.split()


def _requests_served(container: str) -> float:
    """The replica's own count of answered predictions, from its /metrics inside the container."""
    probe = (
        "import urllib.request as r; "
        "print(r.build_opener(r.ProxyHandler({})).open('http://127.0.0.1:8080/metrics').read().decode())"
    )
    text = docker("exec", container, "/opt/inferpack/venv/bin/python", "-c", probe)
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("inferpack_requests_total{") and 'error_code="0"' in line
    )


def _timed(figures: dict[str, object], what: str, operator: Operator, package: Path, *args: str) -> None:
    with ClientLoop(operator) as loop:
        started = time.monotonic()
        result = operator.run(package, *args, check=False)
        figures[f"{what} s"] = round(time.monotonic() - started, 1)
    figures[f"{what} requests"] = len(loop.answers) + len(loop.failures)
    figures[f"{what} failed"] = len(loop.failures)
    figures[f"{what} exit"] = result.returncode
    figures[f"{what} output"] = (result.stdout + result.stderr).strip().splitlines()[-3:]
    assert loop.failures == [], loop.failures[:3]


def test_replicated_service_on_swarm(operator: Operator, packages: dict[str, Path]) -> None:
    figures: dict[str, object] = {"replicas": REPLICAS}
    package = operator.unpack(packages["v1"], "v1")
    request = operator.home / "request.json"
    inferpack("fingerprint", "--out", str(request))
    licence = package / "licenses" / f"{operator.name}.lic"
    inferpack(
        "license", "issue", "--key", str(packages["key"]), "--request", str(request),
        "--deploy", operator.name, "--days", "30", "--max-instances", str(REPLICAS), "--out", str(licence),
    )  # fmt: skip
    env = {**os.environ, "INFERPACK_WORK_ROOT": str(operator.work_root)}
    subprocess.run(["bash", "original/download.sh"], cwd=package, check=True, capture_output=True, env=env)

    started = time.monotonic()
    result = operator.run(package, "install", operator.name, "--runtime", "swarm", "--replicas",
                  str(REPLICAS), "--port", str(operator.port))  # fmt: skip
    figures["install s"] = round(time.monotonic() - started, 1)
    assert "PASS  instances" in result.stdout and f"serves on {REPLICAS} replica(s)" in result.stdout
    assert operator.predict() == "red"

    # Every replica answers: the front spreads requests over them.
    for _ in range(6 * REPLICAS):
        assert operator.predict() == "red"
    served = [_requests_served(c) for c in _replica_containers(operator.name)]
    assert len(served) == REPLICAS and all(count > 0 for count in served), served
    status = operator.run(package, "status", operator.name).stdout
    assert status.count("backend") == REPLICAS and "health healthy" in status and "node " in status

    over = operator.run(package, "scale", operator.name, str(REPLICAS + 1), check=False)
    assert over.returncode == 1 and "license allows no more" in over.stderr

    # v2 answers other labels: the operator says clients are ready for them
    _timed(
        figures,
        "update",
        operator,
        package,
        "update",
        operator.name,
        str(packages["v2"]),
        "--allow-task-change",
    )
    assert figures["update exit"] == 0, figures
    assert operator.predict() == "cyan"
    _timed(figures, "rollback", operator, package, "rollback", operator.name)
    assert figures["rollback exit"] == 0, figures
    assert operator.predict() == "red"

    _timed(figures, "broken update", operator, package, "update", operator.name, str(packages["v3"]),
           "--timeout", "120", "--allow-task-change")  # fmt: skip
    assert figures["broken update exit"] == 1, figures
    assert "Swarm rolled the update back" in str(figures["broken update output"])
    assert operator.predict() == "red"

    fresh = issue_license(operator, _Keys(packages["key"]), operator.home / "fresh.lic", days=60)  # type: ignore[arg-type]
    secret_before = _secret_of(operator.name)
    _timed(figures, "lu", operator, package, "lu", operator.name, str(fresh))
    assert figures["lu exit"] == 0, figures
    assert _secret_of(operator.name) != secret_before
    info = json.loads(docker("exec", _replica_containers(operator.name)[0], "/opt/inferpack/venv/bin/python",
                             "-c", "import urllib.request as r; print(r.build_opener(r.ProxyHandler({}))"
                             ".open('http://127.0.0.1:8080/info').read().decode())"))  # fmt: skip
    assert info["license"]["valid"] and info["license"]["days_left"] >= 59

    victim = _replica_containers(operator.name)[0]
    with ClientLoop(operator) as loop:
        docker("kill", victim)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:
            running = _replica_containers(operator.name)
            if len(running) == REPLICAS and victim not in running and _all_healthy(running):
                break
            time.sleep(0.5)
        else:
            pytest.fail("Swarm did not replace the killed replica")
    figures["kill: requests"], figures["kill: failed"] = len(loop.answers), len(loop.failures)

    operator.run(package, "scale", operator.name, "2")
    assert len(_replica_containers(operator.name)) == 2
    operator.run(package, "remove", operator.name)
    assert docker("service", "ls", "--filter", f"label=io.inferpack.service={operator.name}", "-q") == ""
    print("swarm figures:", json.dumps(figures))


class _Keys:
    """What issue_license reads from the installer tests' Packages."""

    def __init__(self, key: Path) -> None:
        self.vendor_key = key


def _secret_of(name: str) -> str:
    spec = json.loads(docker("service", "inspect", f"inferpack-{name}"))[0]["Spec"]
    return str(spec["TaskTemplate"]["ContainerSpec"]["Secrets"][0]["SecretName"])


def _all_healthy(containers: list[str]) -> bool:
    states = docker("inspect", "--format", "{{.State.Health.Status}}", *containers).split()
    return states == ["healthy"] * len(containers)
