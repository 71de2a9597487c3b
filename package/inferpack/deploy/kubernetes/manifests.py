"""Kubernetes objects for one deploy package: what the server in each pod reads, and from where.

Each pod runs the package's server image as in the docker runtime, with the same container
contract (``package/Dockerfile``): the model read-only at ``/opt/inferpack/model``, the license
folder at ``/opt/inferpack/license``, the host's identifiers read-only below ``/host``, state and
logs writable. In a pod they come from:

* the model: a hostPath folder on each node (the image carries no model; see the README);
* the license: a Secret mounted as a folder, so a new license (``kubectl apply`` of the Secret)
  reaches running pods without a restart: the kubelet swaps the file, the server re-reads it;
* the vendor key and the server settings: a ConfigMap (``server.toml``, ``vendor.pub``);
* the fingerprint: read live from the node's own sources (``HOST_SOURCES``: machine-id, /sys,
  the CPU, the node init's mounts, /dev/disk), hostPath read-only below ``/host``, never from a
  written snapshot;
* the license flags: container args, as the server takes them from the command line only;
* state (clock guard, engine caches) and logs: emptyDir, as the root filesystem is read-only.
"""

from __future__ import annotations

import base64
import json
from dataclasses import dataclass
from typing import Any

from inferpack.deploy.kubernetes.yamltext import dump_documents
from inferpack.license.fingerprint import HOST_SOURCES

PORT = 8080
PORT_NAME = "http"
READY_PATH, LIVE_PATH = "/readyz", "/healthz"
CONFIG_DIR, CONFIG_FILE, VENDOR_KEY_FILE = "/etc/inferpack", "server.toml", "vendor.pub"
LICENSE_DIR, LICENSE_KEY = "/opt/inferpack/license", "license.lic"
MODEL_DIR, HOST_ROOT = "/opt/inferpack/model", "/host"
STATE_DIR, LOG_DIR = "/var/lib/inferpack", "/var/log/inferpack"
SERVICE_UID = 10001
NODE_ROOT = "/opt/inferpack/nodes"  # where each node keeps the model versions
GPU_RESOURCE = "nvidia.com/gpu"
LICENSE_ARGS = (
    "--license", f"{LICENSE_DIR}/{LICENSE_KEY}", "--vendor-key", f"{CONFIG_DIR}/{VENDOR_KEY_FILE}",
    "--host-root", HOST_ROOT,
)  # fmt: skip


@dataclass(frozen=True)
class KubeSpec:
    name: str
    version: str
    image: str  # repository:tag as the node's runtime knows it after the import
    image_id: str  # sha256:... the import is checked against
    gpu: bool
    replicas: int
    license_text: str
    vendor_key_text: str
    cpu: str = "2"
    memory: str = "2Gi"

    @property
    def model_host_path(self) -> str:
        return f"{NODE_ROOT}/{self.name}/versions/{self.version}"

    @property
    def labels(self) -> dict[str, str]:
        return {"app.kubernetes.io/name": "inferpack", "app.kubernetes.io/instance": self.name}


def server_settings(spec: KubeSpec) -> dict[str, str | int]:
    """``server.toml``: the settings the image's environment does not already give, but the
    license ones (``LICENSE_ARGS``: the server takes those from its command line only)."""
    settings: dict[str, str | int] = {"deploy_name": spec.name}
    if spec.gpu:  # the pod sees only the GPU it was given, as device 0
        settings |= {"backend": "auto", "device_id": 0}
    return settings


def _toml(settings: dict[str, str | int]) -> str:
    # TOML basic strings share JSON's escapes for everything a path or name can hold.
    return "".join(f"{key} = {json.dumps(value)}\n" for key, value in settings.items())


def _probe(path: str, period_s: int, failures: int) -> dict[str, Any]:
    return {
        "httpGet": {"path": path, "port": PORT_NAME},
        "periodSeconds": period_s,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def _volumes(spec: KubeSpec) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(pod volumes, the container's mounts)."""
    volumes: list[dict[str, Any]] = [
        {"name": "model", "hostPath": {"path": spec.model_host_path, "type": "Directory"}},
        {"name": "license", "secret": {"secretName": f"{spec.name}-license", "defaultMode": 0o440}},
        {"name": "config", "configMap": {"name": f"{spec.name}-config", "defaultMode": 0o444}},
        {"name": "state", "emptyDir": {}},
        {"name": "logs", "emptyDir": {"sizeLimit": "1Gi"}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "1Gi"}},
    ]
    mounts: list[dict[str, Any]] = [
        {"name": "model", "mountPath": MODEL_DIR, "readOnly": True},
        {"name": "license", "mountPath": LICENSE_DIR, "readOnly": True},  # a folder: updates arrive
        {"name": "config", "mountPath": CONFIG_DIR, "readOnly": True},
        {"name": "state", "mountPath": STATE_DIR},
        {"name": "logs", "mountPath": LOG_DIR},
        {"name": "tmp", "mountPath": "/tmp"},
    ]
    for path, below in HOST_SOURCES:
        volume = "host-" + below.replace("/", "-")
        volumes.append({"name": volume, "hostPath": {"path": path}})
        mounts.append({"name": volume, "mountPath": f"{HOST_ROOT}/{below}", "readOnly": True})
    return volumes, mounts


def deployment(spec: KubeSpec) -> dict[str, Any]:
    volumes, mounts = _volumes(spec)
    resources: dict[str, dict[str, str | int]] = {
        "requests": {"cpu": spec.cpu, "memory": spec.memory},
        "limits": {"cpu": spec.cpu, "memory": spec.memory},
    }
    if spec.gpu:
        resources["requests"][GPU_RESOURCE] = 1
        resources["limits"][GPU_RESOURCE] = 1
    container = {
        "name": "server",
        "image": spec.image,
        "imagePullPolicy": "Never",  # air-gapped: imported on each node, never pulled
        "args": ["--config", f"{CONFIG_DIR}/{CONFIG_FILE}", *LICENSE_ARGS],  # after the image's `serve MODEL`
        "env": [
            {"name": "INFERPACK_HOST", "value": "0.0.0.0"},
            {"name": "INFERPACK_PORT", "value": str(PORT)},
            {"name": "INFERPACK_STATE_DIR", "value": STATE_DIR},
            {"name": "INFERPACK_LOG_DIR", "value": LOG_DIR},
        ],
        "ports": [{"name": PORT_NAME, "containerPort": PORT, "protocol": "TCP"}],
        # Listening comes first and the model loads behind it: the startup probe gives a slow
        # load (a TensorRT engine build) up to 10 minutes before liveness counts.
        "startupProbe": _probe(LIVE_PATH, 5, 120),
        "livenessProbe": _probe(LIVE_PATH, 10, 3),
        "readinessProbe": _probe(READY_PATH, 2, 2),
        "resources": resources,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": SERVICE_UID,
            "runAsGroup": SERVICE_UID,
            "allowPrivilegeEscalation": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": mounts,
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": spec.name, "labels": {**spec.labels, "app.kubernetes.io/version": spec.version}},
        "spec": {
            "replicas": spec.replicas,
            "selector": {"matchLabels": spec.labels},
            # One new pod at a time, an old one goes only once a new one is ready.
            "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
            "minReadySeconds": 5,
            "template": {
                "metadata": {"labels": {**spec.labels, "app.kubernetes.io/version": spec.version}},
                "spec": {
                    "securityContext": {
                        "fsGroup": SERVICE_UID,
                        "seccompProfile": {"type": "RuntimeDefault"},
                    },
                    "automountServiceAccountToken": False,
                    "enableServiceLinks": False,
                    "terminationGracePeriodSeconds": 30,  # above the server's 15 s drain
                    "containers": [container],
                    "volumes": volumes,
                },
            },
        },
    }


def service(spec: KubeSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": {"name": spec.name, "labels": spec.labels},
        "spec": {
            "selector": spec.labels,
            "ports": [{"name": PORT_NAME, "port": PORT, "targetPort": PORT_NAME, "protocol": "TCP"}],
        },
    }


def disruption_budget(spec: KubeSpec) -> dict[str, Any]:
    keep = "maxUnavailable" if spec.replicas > 1 else "minAvailable"
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": {"name": spec.name, "labels": spec.labels},
        # A drain takes one pod at a time; with one replica it waits rather than cut service.
        "spec": {"selector": {"matchLabels": spec.labels}, keep: 1},
    }


def license_secret(spec: KubeSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "Secret",
        "metadata": {"name": f"{spec.name}-license", "labels": spec.labels},
        "type": "Opaque",
        "data": {LICENSE_KEY: base64.b64encode(spec.license_text.encode()).decode()},
    }


def config_map(spec: KubeSpec) -> dict[str, Any]:
    return {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "metadata": {"name": f"{spec.name}-config", "labels": spec.labels},
        "data": {CONFIG_FILE: _toml(server_settings(spec)), VENDOR_KEY_FILE: spec.vendor_key_text},
    }


MANIFESTS = {
    "deployment.yaml": deployment,
    "service.yaml": service,
    "pdb.yaml": disruption_budget,
    "license-secret.yaml": license_secret,
    "configmap.yaml": config_map,
}


def render(spec: KubeSpec) -> dict[str, str]:
    """File name -> YAML text, plus ``kustomization.yaml`` so ``kubectl apply -k DIR`` takes all."""
    files = {name: dump_documents([build(spec)]) for name, build in MANIFESTS.items()}
    files["kustomization.yaml"] = dump_documents(
        [
            {
                "apiVersion": "kustomize.config.k8s.io/v1beta1",
                "kind": "Kustomization",
                "resources": list(MANIFESTS),
            }
        ]
    )
    return files
