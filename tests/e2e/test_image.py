"""The server image, built with no registry and run for real on the local Docker Engine."""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest

from inferpack import __version__
from inferpack.deploy import image
from inferpack.deploy.image import BUILD_KEY_LABEL, SERVICE_UID
from tests.conftest import RED, b64, encode, solid
from tests.onnx_models import colour_classifier

if TYPE_CHECKING:
    from docker import DockerClient

pytestmark = pytest.mark.docker

# Catches a build that leaves the wheels (112 MiB) or a toolchain in the final image (now
# 436 MiB, 300 of them OpenCV, onnxruntime and numpy).
SIZE_BUDGET_MIB = 500
# Run inside the container (its network is "none"): GET /healthz, then one prediction.
CALL_SERVER = """import json, sys, urllib.request
def call(path, body=None):
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request("http://127.0.0.1:8080" + path, data=data)
    with urllib.request.urlopen(request, timeout=10) as response:
        return response.status, json.loads(response.read())
print(json.dumps([call("/healthz"), call("/demo/ImageClassification", {"image": sys.argv[1], "top_num": 1})]))
"""
DEPS = "import inferpack, onnxruntime, cv2, numpy, aiohttp, cryptography, psutil, prometheus_client, orjson"


def run_python(client: DockerClient, image_id: str, script: str, *args: str, **kwargs: Any) -> str:
    """Runs ``python -c script`` in a fresh container with no network; returns its output."""
    container = client.containers.run(
        image_id, ["-c", script, *args], entrypoint=["python"], network_mode="none", detach=True, **kwargs
    )
    try:
        status = container.wait(timeout=120)["StatusCode"]
        output: str = container.logs().decode()
    finally:
        container.remove(force=True)
    assert status == 0, output
    return output


def test_runs_as_the_unprivileged_service_user(docker_client: DockerClient, server_image: str) -> None:
    config = docker_client.images.get(server_image).attrs["Config"]
    assert config["User"] == f"{SERVICE_UID}:{SERVICE_UID}"
    ids = run_python(
        docker_client, server_image, "import os; print(os.getuid(), os.getgid(), os.getgroups())"
    )
    assert ids.split() == [str(SERVICE_UID), str(SERVICE_UID), f"[{SERVICE_UID}]"]


def test_image_config_is_the_installers_contract(docker_client: DockerClient, server_image: str) -> None:
    config = docker_client.images.get(server_image).attrs["Config"]
    health = config["Healthcheck"]
    assert health["Test"][0] == "CMD" and any("/readyz" in part for part in health["Test"])
    assert health["Interval"] > 0 and health["Timeout"] > 0 and health["StartPeriod"] > 0
    assert health["Retries"] >= 1
    assert config["StopSignal"] == "SIGTERM"
    assert config["Entrypoint"][:2] == ["/usr/bin/tini", "--"]
    assert config["Entrypoint"][2:] == ["inferpack", "serve", "/opt/inferpack/model"]
    assert "8080/tcp" in config["ExposedPorts"]
    assert "INFERPACK_PORT=8080" in config["Env"] and "INFERPACK_LOG_DIR=/var/log/inferpack" in config["Env"]
    assert config["Labels"]["org.opencontainers.image.version"] == __version__
    assert config["Labels"][BUILD_KEY_LABEL]


def test_deps_import_and_onnxruntime_runs_without_network(
    docker_client: DockerClient, server_image: str, tmp_path: Path
) -> None:
    model = (colour_classifier(tmp_path / "m") / "model.onnx").read_bytes()
    script = f"""{DEPS}
import base64, importlib.util, os, sys
assert importlib.util.find_spec("pip") is None and not os.path.exists("/tmp/wheels")
session = onnxruntime.InferenceSession(base64.b64decode(sys.argv[1]), providers=["CPUExecutionProvider"])
image = numpy.zeros((1, 3, 32, 32), numpy.float32)
image[:, 2] = 1.0
print(int(session.run(None, {{"images": image}})[0].argmax()))
"""
    assert run_python(docker_client, server_image, script, b64(model)).strip() == "2"


def test_image_size_within_budget(
    docker_client: DockerClient, server_image: str, record_property: Callable[[str, object], None]
) -> None:
    size_mib = docker_client.images.get(server_image).attrs["Size"] / 2**20
    record_property("image_size_mib", round(size_mib))
    print(f"server image: {size_mib:.0f} MiB")
    assert size_mib < SIZE_BUDGET_MIB


def _wait_healthy(container: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        container.reload()
        state = container.attrs["State"]
        if state["Health"]["Status"] == "healthy":
            return
        assert state["Status"] == "running", container.logs().decode()
        time.sleep(0.5)
    raise AssertionError(f"not healthy after {timeout_s}s:\n{container.logs().decode()}")


def test_serves_read_only_offline_and_stops_on_sigterm(
    docker_client: DockerClient, server_image: str, tmp_path: Path
) -> None:
    model = colour_classifier(tmp_path / "model")
    logs = tmp_path / "logs"
    logs.mkdir()
    # The mounts keep their host permissions: the service user must be able to read and write.
    for path in (model, *model.iterdir()):
        path.chmod(0o755 if path.is_dir() else 0o644)
    logs.chmod(0o777)
    container = docker_client.containers.run(
        server_image,
        ["--name", "demo", "--no-license"],  # run by hand: development mode, said explicitly
        network_mode="none",
        read_only=True,
        tmpfs={"/tmp": ""},
        volumes={
            str(model): {"bind": "/opt/inferpack/model", "mode": "ro"},
            str(logs): {"bind": "/var/log/inferpack", "mode": "rw"},
        },
        detach=True,
    )
    try:
        _wait_healthy(container, timeout_s=60)  # Docker's own HEALTHCHECK on /readyz passed
        result = container.exec_run(["python", "-c", CALL_SERVER, b64(encode(solid(RED)))])
        assert result.exit_code == 0, result.output.decode()
        (health_status, _), (predict_status, answer) = json.loads(result.output)
        assert health_status == 200
        assert predict_status == 200 and answer["results"][0]["name"] == "red"

        started = time.monotonic()
        container.stop(timeout=10)  # SIGTERM, then SIGKILL after 10 s
        stop_s = time.monotonic() - started
        assert container.wait(timeout=10)["StatusCode"] == 0
        assert stop_s < 5, f"SIGTERM took {stop_s:.1f}s"
        output = container.logs().decode()
    finally:
        container.remove(force=True)
    assert "shutting down" in output
    assert "shutting down" in (logs / "server.log").read_text()


def test_unreachable_engine_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://127.0.0.1:9")  # nothing listens on the discard port
    with pytest.raises(
        image.ImageBuildError, match=re.escape("Docker Engine unreachable at tcp://127.0.0.1:9")
    ):
        image.docker_client()


def test_base_build_without_root_says_so(
    docker_client: DockerClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(os, "geteuid", lambda: 1000)
    recipe = image.BaseRecipe(revision=-1)  # a recipe no engine has: the build would start
    with pytest.raises(image.ImageBuildError, match="needs root"):
        image.ensure_base_image(docker_client, recipe)
