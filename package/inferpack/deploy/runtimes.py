"""Creates the runtime a service uses, by the name saved in its settings."""

from __future__ import annotations

from pathlib import Path

from inferpack.deploy.runtime import Runtime

RUNTIMES = ("docker", "process")


def make_runtime(name: str, python: Path) -> Runtime:
    """``python``: the interpreter (with inferpack) that the process runtime runs servers with."""
    if name == "docker":
        from inferpack.deploy.docker_runtime import DockerRuntime

        return DockerRuntime()
    if name == "process":
        from inferpack.deploy.process_runtime import ProcessRuntime

        return ProcessRuntime(python=str(python))
    raise ValueError(f"unknown runtime {name!r}; choose one of {', '.join(RUNTIMES)}")
