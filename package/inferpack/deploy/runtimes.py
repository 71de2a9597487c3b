"""Creates the runtime a service uses, by the name saved in its settings."""

from __future__ import annotations

import os
from pathlib import Path

from inferpack.deploy.runtime import Runtime

RUNTIMES = ("docker", "process", "swarm")


def make_runtime(name: str, python: Path) -> Runtime:
    """``python``: the interpreter (with inferpack) that the process runtime runs servers with."""
    if name == "docker":
        from inferpack.deploy.docker_runtime import DockerRuntime

        return DockerRuntime()
    if name == "process":
        from inferpack.deploy.process_runtime import ProcessRuntime

        return ProcessRuntime(python=str(python))
    if name == "swarm":
        from inferpack.deploy.swarm.runtime import SwarmRuntime
        from inferpack.deploy.swarm.specs import SwarmTuning

        return SwarmRuntime(tuning=SwarmTuning.from_env(os.environ))
    raise ValueError(f"unknown runtime {name!r}; choose one of {', '.join(RUNTIMES)}")
