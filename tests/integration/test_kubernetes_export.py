"""`export kubernetes`: manifests valid against the Kubernetes API schemas, and a pod's view of them
(its mounts laid out in a folder) served by the real server: probes answer, the license verifies."""

from __future__ import annotations

import asyncio
import base64
import shutil
from collections.abc import Iterator
from dataclasses import fields
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from inferpack.config import ServerConfig, load_config
from inferpack.deploy.kubernetes.export import ExportError, export_kubernetes
from inferpack.deploy.kubernetes.manifests import MODEL_DIR
from inferpack.license.errors import LicenseError
from inferpack.license.fingerprint import HOST_SOURCES, LicenseRequest, collect
from inferpack.license.licfile import issue_license
from tests.onnx_models import colour_classifier
from tests.support.packages import Vendor, fake_wheels, make_package, make_vendor, unpack
from tests.unit.license._fakes import build_host

from .conftest import StartServer, wait_ready

KUBERNETES_VERSION = "1.37.0"


@pytest.fixture(scope="module")
def vendor(tmp_path_factory: pytest.TempPathFactory) -> Vendor:
    return make_vendor(tmp_path_factory.mktemp("vendor"))


@pytest.fixture(scope="module")
def package(tmp_path_factory: pytest.TempPathFactory, vendor: Vendor) -> Path:
    """A real signed full package of the colour classifier, unpacked as an operator has it."""
    tmp = tmp_path_factory.mktemp("package")
    model = colour_classifier(tmp / "bundle")
    (tmp / "out").mkdir()
    tarball, _ = make_package(tmp / "out", vendor, model, fake_wheels(tmp / "wheels"), name="cats")
    return unpack(tarball, tmp / "unpacked")


def _license_for(node_root: Path, key: Ed25519PrivateKey, name: str = "cats") -> str:
    fp = collect(node_root, gpu_source=list)
    request = LicenseRequest(fp.components, fp.summary, "0.1.0", "2030-06-01T12:00:00Z")
    return issue_license(key, request, [name], days=30)


@pytest.fixture
def exported(tmp_path: Path, package: Path, vendor: Vendor) -> Iterator[tuple[Path, Path]]:
    """(manifests folder, a licensed node's root) for 3 replicas."""
    node = build_host(tmp_path / "node").root
    license_file = tmp_path / "cats.lic"
    license_file.write_text(_license_for(node, vendor.key))
    out = tmp_path / "k8s"
    export_kubernetes(package, "cats", 3, out, license_file)
    yield out, node


def _documents(folder: Path) -> dict[str, dict[str, Any]]:
    docs = {}
    for path in sorted(folder.glob("*.yaml")):
        (doc,) = list(yaml.safe_load_all(path.read_text()))
        docs[doc["kind"]] = doc
    return docs


def test_every_manifest_validates_against_the_api_schemas(exported: tuple[Path, Path]) -> None:
    out, _ = exported
    docs = _documents(out)
    assert set(docs) == {
        "Deployment", "Service", "PodDisruptionBudget", "Secret", "ConfigMap", "Kustomization"
    }  # fmt: skip
    for kind, doc in docs.items():
        if kind != "Kustomization":  # not an API object: kustomize's own file
            kubernetes_validate.validate(doc, KUBERNETES_VERSION, strict=True)
    listed = docs["Kustomization"]["resources"]
    assert sorted(listed) == sorted(p.name for p in out.glob("*.yaml") if p.name != "kustomization.yaml")
    assert (out / "license-secret.yaml").stat().st_mode & 0o077 == 0


def test_the_deployment_keeps_the_single_host_guarantees(exported: tuple[Path, Path]) -> None:
    deployment = _documents(exported[0])["Deployment"]
    spec = deployment["spec"]
    assert spec["replicas"] == 3
    assert spec["strategy"]["rollingUpdate"]["maxUnavailable"] == 0
    (container,) = spec["template"]["spec"]["containers"]
    security = container["securityContext"]
    assert security["runAsNonRoot"] and security["readOnlyRootFilesystem"] and security["runAsUser"] == 10001
    assert container["imagePullPolicy"] == "Never"
    assert container["resources"]["requests"] and container["resources"]["limits"]
    assert "nvidia.com/gpu" not in container["resources"]["limits"]  # a CPU package
    host_paths = {
        m["mountPath"]: m.get("readOnly", False)
        for m in container["volumeMounts"]
        if m["mountPath"].startswith("/host")
    }
    assert host_paths == {f"/host/{below}": True for _, below in HOST_SOURCES}
    assert "fingerprint_snapshot" not in _documents(exported[0])["ConfigMap"]["data"]["server.toml"]
    readme = (exported[0] / "README.md").read_text()
    assert "ctr -n k8s.io images import" in readme and "docker load -i" in readme
    assert "sha256:" in readme  # the id to check the import against


def _pod_root(out: Path, node: Path, pod: Path) -> tuple[dict[str, str], dict[str, Any]]:
    """Lays out what the container sees, from the manifests alone: each volume at its mountPath
    under ``pod``; hostPath volumes from ``node`` (a node's root). Returns (env, container)."""
    docs = _documents(out)
    pod_spec = docs["Deployment"]["spec"]["template"]["spec"]
    (container,) = pod_spec["containers"]
    volumes = {v["name"]: v for v in pod_spec["volumes"]}
    for mount in container["volumeMounts"]:
        target = pod / mount["mountPath"].lstrip("/")
        volume = volumes[mount["name"]]
        if "configMap" in volume:
            assert volume["configMap"]["name"] == docs["ConfigMap"]["metadata"]["name"]
            for key, text in docs["ConfigMap"]["data"].items():
                (target / key).parent.mkdir(parents=True, exist_ok=True)
                (target / key).write_text(text)
        elif "secret" in volume:
            assert volume["secret"]["secretName"] == docs["Secret"]["metadata"]["name"]
            for key, data in docs["Secret"]["data"].items():
                (target / key).parent.mkdir(parents=True, exist_ok=True)
                (target / key).write_bytes(base64.b64decode(data))
        elif "hostPath" in volume:
            source = node / volume["hostPath"]["path"].lstrip("/")
            if volume["hostPath"]["path"] == "/proc/1/mountinfo":  # the fake node has one process
                source = node / "proc/self/mountinfo"
            target.parent.mkdir(parents=True, exist_ok=True)
            if not source.exists():  # no type check: the kubelet mounts an empty folder
                target.mkdir(parents=True)
                continue
            if source.is_dir():
                shutil.copytree(source, target, symlinks=True)  # as a bind mount: links kept
            else:
                shutil.copyfile(source, target)
        else:
            target.mkdir(parents=True, exist_ok=True)  # emptyDir
    return {e["name"]: e["value"] for e in container["env"]}, container


def _prepare_node(node: Path, package: Path, out: Path) -> None:
    """What the README tells the operator to do on each node: the model."""
    deployment = _documents(out)["Deployment"]
    volumes = {
        v["name"]: v["hostPath"]["path"]
        for v in deployment["spec"]["template"]["spec"]["volumes"]
        if "hostPath" in v
    }
    shutil.copytree(package / "model", node / volumes["model"].lstrip("/"))


def _config_in(pod: Path, env: dict[str, str], container: dict[str, Any]) -> ServerConfig:
    """The server's settings as the image's `serve MODEL` + args + env make them, paths re-rooted."""
    args = container["args"]
    assert args[0] == "--config"
    flags = dict(zip(args[2::2], args[3::2], strict=True))
    license_flags = {
        "license_file": flags.pop("--license"),
        "vendor_public_key": flags.pop("--vendor-key"),
        "host_root": flags.pop("--host-root"),
    }
    assert not flags, flags
    config = load_config(pod / args[1].lstrip("/"), env, {"model_dir": MODEL_DIR, **license_flags})
    rerooted = {
        f.name: pod / str(getattr(config, f.name)).lstrip("/")
        for f in fields(config)
        if isinstance(getattr(config, f.name), Path)
    }
    return ServerConfig(**{**{f.name: getattr(config, f.name) for f in fields(config)}, **rerooted})


async def test_a_pod_on_a_licensed_node_serves_and_its_probes_answer(
    exported: tuple[Path, Path], package: Path, tmp_path: Path, start_server: StartServer
) -> None:
    out, node = exported
    _prepare_node(node, package, out)
    env, container = _pod_root(out, node, tmp_path / "pod")
    config = _config_in(tmp_path / "pod", env, container)
    (port,) = container["ports"]
    assert config.port == port["containerPort"] == 8080 and config.host == "0.0.0.0"
    assert (
        config.license_file is not None
        and config.license_file.read_text() == (tmp_path / "cats.lic").read_text()
    )  # the Secret's key is the file the server enforces
    client = await start_server(config.model_dir, ready=False, **{
        f.name: getattr(config, f.name) for f in fields(config) if f.name not in ("model_dir", "host", "port")
    })  # fmt: skip
    await wait_ready(client)
    for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
        get = container[probe]["httpGet"]
        assert get["port"] == port["name"]
        assert (await client.get(get["path"])).status == 200, probe
    info = await (await client.get("/info")).json()
    assert info["license"]["valid"] is True and info["deploy_name"] == "cats"


async def test_a_pod_on_an_unlicensed_node_is_unready_and_answers_337000(
    exported: tuple[Path, Path], package: Path, tmp_path: Path, start_server: StartServer
) -> None:
    out, _ = exported
    other = build_host(tmp_path / "other-node")
    other.write("etc/machine-id", "8e41b07c3d2f4a5b96e1f0a7c4d3b2e1\n")
    other.write("sys/class/dmi/id/product_uuid", "11111111-2222-4333-8444-555555555555\n")
    _prepare_node(other.root, package, out)
    env, container = _pod_root(out, other.root, tmp_path / "pod")
    config = _config_in(tmp_path / "pod", env, container)
    client = await start_server(config.model_dir, ready=False, **{
        f.name: getattr(config, f.name) for f in fields(config) if f.name not in ("model_dir", "host", "port")
    })  # fmt: skip
    readiness = container["readinessProbe"]["httpGet"]["path"]
    for _ in range(600):  # until the model has loaded and only the license keeps it unready
        response = await client.get(readiness)
        reasons = (await response.json()).get("reasons", [])
        if len(reasons) == 1 and reasons[0].startswith("license"):
            break
        await asyncio.sleep(0.05)
    assert response.status == 503
    assert "wrong machine" in reasons[0]
    answer = await (await client.post("/cats/ImageClassification", json={"image": "aGk="})).json()
    assert answer["error_code"] == 337000


@pytest.mark.parametrize("problem", ["other vendor", "other deploy name", "not empty", "tampered"])
def test_export_refuses_and_writes_nothing(
    problem: str, package: Path, vendor: Vendor, tmp_path: Path
) -> None:
    node = build_host(tmp_path / "node").root
    root = tmp_path / "pkg"
    shutil.copytree(package, root)
    key = Ed25519PrivateKey.generate() if problem == "other vendor" else vendor.key
    license_file = tmp_path / "cats.lic"
    license_file.write_text(_license_for(node, key, "dogs" if problem == "other deploy name" else "cats"))
    out = tmp_path / "k8s"
    if problem == "not empty":
        out.mkdir()
        (out / "mine.yaml").write_text("keep me\n")
    if problem == "tampered":
        model = next((root / "model").glob("*.onnx"))
        model.write_bytes(model.read_bytes()[:-1] + b"\0")
    expected = {
        "other vendor": "bad signature",
        "other deploy name": "not for 'cats'",
        "not empty": "is not empty",
        "tampered": "nothing was written",
    }[problem]
    with pytest.raises((ExportError, LicenseError), match=expected):
        export_kubernetes(root, "cats", 2, out, license_file)
    assert sorted(p.name for p in out.glob("*")) == (["mine.yaml"] if problem == "not empty" else [])
