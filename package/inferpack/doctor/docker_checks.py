"""The Docker Engine and what it knows beyond ``Runtime.instances``: the last health probe's
output, an OOM kill, and the full ``docker inspect`` for the support bundle.

The docker SDK is imported on first use, as in docker_runtime, so a host that runs only
process-runtime services needs neither Docker nor the SDK for the doctor.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from inferpack.deploy import checks
from inferpack.deploy.docker_runtime import DockerRuntime
from inferpack.doctor.result import HOST, Result, from_check, passed

ENGINE_HINT = "start the Docker Engine: systemctl start docker (then: systemctl status docker)"


@dataclass(frozen=True)
class Engine:
    result: Result
    root: Path | None  # DockerRootDir, when the engine answered


def engine(needed: bool) -> Engine:
    """Reachable and its version; when no service uses Docker, unreachable is no failure."""
    runtime = DockerRuntime()
    check = replace(checks.check_runtime(runtime), name="docker")
    if not check.passed and not needed:
        return Engine(passed(HOST, "docker", f"not used by any service here ({check.detail})"), None)
    result = from_check(HOST, check, ENGINE_HINT)
    if not check.passed:
        return Engine(result, None)
    root = runtime.client.info().get("DockerRootDir")
    return Engine(result, Path(root) if root else None)


def image(scope: str, tag: str | None) -> Result:
    return from_check(scope, checks.check_image(tag), "run: bash original/download.sh in the deploy package")


def inspect(name: str) -> dict[str, Any] | None:
    """``docker inspect NAME`` as a dict; None when there is no such container or no engine."""
    import docker

    try:
        attrs: dict[str, Any] = DockerRuntime().client.api.inspect_container(name)
    except docker.errors.DockerException:
        return None
    return attrs


def last_health_output(attrs: dict[str, Any]) -> str:
    """The newest failed health probe's output, one line: why Docker calls it unhealthy."""
    log = attrs.get("State", {}).get("Health", {}).get("Log") or []
    if not log:
        return ""
    last = log[-1]
    if last.get("ExitCode") == 0:
        return ""  # it passed: nothing to explain
    output = " ".join(str(last.get("Output", "")).split())
    return f"exit {last.get('ExitCode')} at {str(last.get('End', ''))[:19]}: {output[-300:]}"


def oom_killed(attrs: dict[str, Any]) -> bool:
    return bool(attrs.get("State", {}).get("OOMKilled"))
