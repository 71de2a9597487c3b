"""What the swarm runtime asks Docker Swarm for, per deploy name NAME (all labelled
``io.inferpack.service=NAME``):

* ``inferpack-NAME``: the replicas, a replicated service of the package's image **by image id**
  (a node runs exactly the signed image it loaded, or nothing), DNS round-robin on the overlay
  network ``inferpack-NAME``, health-checked on ``/readyz``; rolling updates one replica at a
  time, new before old (start-first), watched for ``monitor`` and rolled back by Swarm itself on
  failure;
* ``inferpack-NAME-front``: the product's front, one per node (global), publishing the public
  port in host mode and spreading requests over ``tasks.inferpack-NAME`` (upstream_dns.py);
* the license as a Docker secret named after its content, and the vendor key as a Docker config.

Each replica mounts, from the node it runs on, the model version
(``<work root>/NAME/versions/V``) and the node's fingerprint sources (``HOST_SOURCES``), all
read-only: it checks the license against the node it runs on. State and logs are tmpfs (logs
also go to ``docker service logs``).
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any

import docker.types

from inferpack.deploy.docker_runtime import (
    ENTRYPOINT,
    HOST_ROOT,
    LABEL,
    LICENSE,
    MODEL,
    PROBE,
    SECOND_NS,
    VENDOR_KEY,
)
from inferpack.deploy.image import SERVICE_UID
from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.routes import FRONT_HEALTH_PATH
from inferpack.license.fingerprint import HOST_SOURCES

REPLICA_PORT = 8080
LICENSE_FILE = f"{LICENSE}/license.lic"
PYTHON = "/opt/inferpack/venv/bin/python"
SCRATCH_STATE, SCRATCH_LOGS = "/run/inferpack-state", "/run/inferpack-logs"  # tmpfs, per task
REPLICA_ARGS = [
    "serve", MODEL, "--host", "0.0.0.0", "--port", str(REPLICA_PORT), "--license", LICENSE_FILE,
    "--vendor-key", VENDOR_KEY, "--host-root", HOST_ROOT, "--state-dir", SCRATCH_STATE,
    "--log-dir", SCRATCH_LOGS,
]  # fmt: skip


@dataclass(frozen=True)
class SwarmTuning:
    """Timings and limits per replica; each can be set as ``INFERPACK_SWARM_<FIELD>`` when the
    service is installed or updated (tests shorten the waits)."""

    health_interval_s: float = 5.0
    monitor_s: float = 15.0  # a new replica must stay healthy this long before the next one
    cpus: float = 2.0
    memory_mb: int = 2048

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> SwarmTuning:
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get(f"INFERPACK_SWARM_{f.name.upper()}")
            if raw is not None:
                try:
                    values[f.name] = float(raw) if f.type == "float" else int(raw)
                except ValueError:
                    raise ValueError(
                        f"INFERPACK_SWARM_{f.name.upper()} must be a number, not {raw!r}"
                    ) from None
                if values[f.name] <= 0:
                    raise ValueError(f"INFERPACK_SWARM_{f.name.upper()} must be positive")
        return cls(**values)


def replicas_name(layout: ServiceLayout) -> str:
    return f"inferpack-{layout.name}"


def front_name(layout: ServiceLayout) -> str:
    return f"inferpack-{layout.name}-front"


def network_name(layout: ServiceLayout) -> str:
    return f"inferpack-{layout.name}"


def content_name(layout: ServiceLayout, what: str, data: bytes) -> str:
    """Secrets and configs cannot change: a new content is a new name (``lu`` swaps them)."""
    return f"inferpack-{layout.name}-{what}-{hashlib.sha256(data).hexdigest()[:12]}"


def labels(layout: ServiceLayout, **more: str) -> dict[str, str]:
    return {f"{LABEL}.service": layout.name, **{f"{LABEL}.{k}": v for k, v in more.items()}}


def _healthcheck(path: str, port: int, tuning: SwarmTuning) -> docker.types.Healthcheck:
    return docker.types.Healthcheck(
        test=["CMD", PYTHON, "-I", "-S", "-c", PROBE.format(port=port, path=path)],
        interval=int(tuning.health_interval_s * SECOND_NS),
        timeout=3 * SECOND_NS,
        retries=3,
        start_period=120 * SECOND_NS,
    )


def _rollout(tuning: SwarmTuning, failure_action: str) -> dict[str, Any]:
    return {
        "parallelism": 1,
        "delay": 0,
        "order": "start-first",
        "monitor": int(tuning.monitor_s * SECOND_NS),
        "failure_action": failure_action,
        "max_failure_ratio": 0,
    }


def replicas_spec(
    layout: ServiceLayout,
    *,
    image_id: str,
    version: str,
    replicas: int,
    license_secret: tuple[str, str],  # (id, name)
    vendor_config: tuple[str, str],
    tuning: SwarmTuning,
) -> dict[str, Any]:
    """Keyword arguments for ``services.create`` / ``Service.update``."""
    mounts = [
        docker.types.Mount(MODEL, str(layout.versions / version), type="bind", read_only=True),
        # Folders the image lacks: Docker would give a tmpfs over an image folder that folder's owner.
        docker.types.Mount(SCRATCH_STATE, None, type="tmpfs", tmpfs_mode=0o1777),
        docker.types.Mount(SCRATCH_LOGS, None, type="tmpfs", tmpfs_mode=0o1777),
        docker.types.Mount("/tmp", None, type="tmpfs", tmpfs_mode=0o1777),
        # What this host has (a bind of a missing path fails every task); the nodes are alike.
        *(
            docker.types.Mount(f"{HOST_ROOT}/{below}", path, type="bind", read_only=True)
            for path, below in HOST_SOURCES
            if os.path.exists(path)
        ),
    ]
    owner = {"uid": str(SERVICE_UID), "gid": str(SERVICE_UID), "mode": 0o440}
    return {
        "image": image_id,
        "name": replicas_name(layout),
        "command": ENTRYPOINT,
        "args": [*REPLICA_ARGS, "--name", layout.name],
        "labels": labels(layout, role="replicas", version=version),
        # What a task runs, as `wait_rolled_out` compares it: the version and the license.
        "container_labels": labels(layout, role="backend", version=version, license=license_secret[1]),
        "mode": docker.types.ServiceMode("replicated", replicas=replicas),
        "mounts": mounts,
        "secrets": [docker.types.SecretReference(*license_secret, filename=LICENSE_FILE, **owner)],
        "configs": [docker.types.ConfigReference(*vendor_config, filename=VENDOR_KEY, **owner)],
        "networks": [network_name(layout)],
        "endpoint_spec": docker.types.EndpointSpec(mode="dnsrr"),
        "healthcheck": _healthcheck("/readyz", REPLICA_PORT, tuning),
        "read_only": True,
        "stop_grace_period": 30 * SECOND_NS,  # above the server's 15 s drain
        "restart_policy": docker.types.RestartPolicy(condition="any", delay=2 * SECOND_NS),
        "resources": docker.types.Resources(
            cpu_limit=int(tuning.cpus * 1e9), mem_limit=tuning.memory_mb * 2**20
        ),
        "update_config": docker.types.UpdateConfig(**_rollout(tuning, "rollback")),
        "rollback_config": docker.types.RollbackConfig(**_rollout(tuning, "pause")),
    }


def front_spec(
    layout: ServiceLayout, *, image_id: str, port: int, tuning: SwarmTuning, errors_as_200: bool = False
) -> dict[str, Any]:
    return {
        "image": image_id,
        "name": front_name(layout),
        "command": ENTRYPOINT,
        "args": [
            "front",
            "--port",
            str(port),
            "--upstream",
            f"tasks.{replicas_name(layout)}:{REPLICA_PORT}",
            *(["--errors-as-200"] if errors_as_200 else []),
        ],
        "labels": labels(layout, role="front", port=str(port)),
        "container_labels": labels(layout, role="front", port=str(port)),
        "mode": docker.types.ServiceMode("global"),
        "networks": [network_name(layout)],
        # Host mode: the routing mesh is not needed, as each node's front spreads over every replica.
        "endpoint_spec": docker.types.EndpointSpec(mode="dnsrr", ports={port: (port, "tcp", "host")}),
        "healthcheck": _healthcheck(FRONT_HEALTH_PATH, port, tuning),
        "read_only": True,
        "stop_grace_period": 30 * SECOND_NS,
        "restart_policy": docker.types.RestartPolicy(condition="any", delay=2 * SECOND_NS),
        "update_config": docker.types.UpdateConfig(**_rollout(tuning, "rollback")),
    }
