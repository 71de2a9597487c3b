"""``export kubernetes NAME --replicas N --out DIR``: manifests for a verified deploy package.

Nothing is written unless the package verifies and the license is signed by the package's
vendor for this deploy name (which machines it names is for each pod to check on its node).
The manifests go into a new folder, never over an earlier export.
"""

from __future__ import annotations

import argparse
from pathlib import Path

from inferpack.cli_errors import one_line_errors
from inferpack.deploy.kubernetes.manifests import KubeSpec, render
from inferpack.deploy.manifest import Manifest, PackageError
from inferpack.deploy.verify import verify_package
from inferpack.fileio import write_new
from inferpack.license.errors import LicenseError
from inferpack.license.keys import load_public_key
from inferpack.license.licfile import check_signature, decode_armor, parse_payload


class ExportError(RuntimeError):
    """The export could not be made; nothing was written."""


def _license_text(path: Path, package_root: Path, name: str) -> tuple[str, int]:
    """The license file's text and how many hosts it names, once its signature checks out."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExportError(f"cannot read the license {path}: {exc}") from None
    payload, signature = decode_armor(text)
    check_signature(payload, signature, load_public_key(package_root / "vendor.pub"))
    lic = parse_payload(payload, signature)
    if name not in lic.deploy_names:
        raise ExportError(f"{path} is not for {name!r} (it names {', '.join(lic.deploy_names)})")
    return text, len(lic.hosts)


def export_kubernetes(
    package_root: Path, name: str, replicas: int, out: Path, license_file: Path | None
) -> KubeSpec:
    if replicas < 1:
        raise ExportError("--replicas must be at least 1")
    try:
        manifest = verify_package(package_root, pinned_key=None, in_place=True)
    except PackageError as exc:
        raise ExportError(f"{package_root}: {exc.reason}; nothing was written") from None
    if manifest.deploy_name != name:
        raise ExportError(f"this package is for {manifest.deploy_name!r}, not {name!r}")
    license_path = license_file or package_root / "licenses" / f"{name}.lic"
    if not license_path.is_file():
        raise ExportError(f"no license at {license_path}: every pod enforces one (pass --license FILE)")
    text, hosts = _license_text(license_path, package_root, name)
    spec = KubeSpec(
        name=name,
        version=manifest.model_version,
        image=manifest.image.tag,
        image_id=manifest.image.id,
        gpu=manifest.gpu,
        replicas=replicas,
        license_text=text,
        vendor_key_text=(package_root / "vendor.pub").read_text(encoding="utf-8"),
    )
    files = {**render(spec), "README.md": readme(spec, manifest, hosts)}
    if out.exists() and any(out.iterdir()):
        raise ExportError(f"{out} is not empty: export into a new folder")
    out.mkdir(parents=True, exist_ok=True)
    for file_name, content in files.items():
        mode = 0o600 if "secret" in file_name else 0o644  # the license is the customer's
        write_new(out / file_name, content.encode(), mode)
    return spec


def readme(spec: KubeSpec, manifest: Manifest, hosts: int) -> str:
    image_file = manifest.image.file or "(an update package carries no image: use the full package's)"
    gpu = (
        "\nGPU package: each pod asks for one `nvidia.com/gpu` (the NVIDIA device plugin must run on the\n"
        "nodes). A license issued with `--gpu` needs every licensed GPU of the node present in the\n"
        "pod, so for one GPU per pod issue the cluster license without `--gpu`.\n"
        if spec.gpu
        else ""
    )
    return f"""\
# {spec.name} {spec.version} on Kubernetes (air-gapped)

{spec.replicas} replica(s) of the server image `{spec.image}` (image id `{spec.image_id}`).
The license names {hosts} host(s); each pod checks it against the node it runs on.
{gpu}
## On every node that may run a pod

1. Import the image into the node's container runtime (no registry is needed or used;
   `imagePullPolicy: Never`), from the package's `{image_file}`:

       ctr -n k8s.io images import {image_file}        # containerd (most clusters)
       docker load -i {image_file}                      # cri-dockerd nodes

   and check it is the signed one: `crictl inspecti {spec.image}` (or `docker image inspect`)
   must show the id `{spec.image_id}`.
2. Put the model where the pods mount it (read-only):

       mkdir -p {spec.model_host_path} && cp -r model/. {spec.model_host_path}/

3. Make the node's license request, on the node itself:

       python3 install.py fingerprint --out NODE.json

   Send one per node to the vendor, who issues one license naming them all
   (`inferpack license issue --request node1.json --request node2.json ...`).

A pod reads the node's identifiers live: `/etc/machine-id`, `/sys` (DMI, NICs, disks),
`/proc/cpuinfo`, the node init's mounts and `/dev/disk`, hostPath read-only below `/host`.
No written file stands in for them, so copying anything to an unlicensed node does not help.
A pod on an unlicensed node answers 337000 and stays unready (out of the Service) while the
others serve; `kubectl describe pod` shows the readiness reason.

## Apply

    kubectl apply -k .          # or kubectl apply -f each file

Files: `deployment.yaml` (probes: startup and liveness on `/healthz`, readiness on `/readyz`,
port 8080; rolling update one pod at a time with maxUnavailable 0), `service.yaml` (ClusterIP on
8080: put your Ingress or LoadBalancer in front), `pdb.yaml`, `license-secret.yaml` (the
license, key `license.lic`, mounted at `/opt/inferpack/license`), `configmap.yaml`
(`server.toml` settings and the vendor public key).

## Renewing the license

Replace the Secret: `kubectl create secret generic {spec.name}-license --from-file=license.lic=NEW.lic
--dry-run=client -o yaml | kubectl apply -f -`. The kubelet updates the mounted file (within a
minute or so) and each server re-verifies it without a restart.

## What a pod keeps

The root filesystem is read-only; state (the clock guard, engine caches) and logs are emptyDir,
so they last as long as the pod. The server also logs to stdout (`kubectl logs`).
"""


@one_line_errors((ExportError, LicenseError, OSError))
def _export(args: argparse.Namespace) -> int:
    from inferpack.deploy.operator_cli import package_root

    spec = export_kubernetes(package_root(), args.name, args.replicas, args.out, args.license)
    print(
        f"wrote Kubernetes manifests for {spec.name} {spec.version} ({spec.replicas} replicas) to {args.out}"
    )
    print(f"next: read {args.out / 'README.md'} (image import and model on each node), then kubectl apply -k")
    return 0


def add_export_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    export = subparsers.add_parser("export", help="manifests for running this package elsewhere")
    targets = export.add_subparsers(dest="target", required=True)
    kube = targets.add_parser("kubernetes", help="Deployment, Service, PDB, license Secret, ConfigMap")
    kube.add_argument("name", help="deploy name (the package's)")
    kube.add_argument("--replicas", type=int, default=2)
    kube.add_argument("--out", type=Path, required=True, help="a new folder for the manifests")
    kube.add_argument("--license", type=Path, help="license file (default: licenses/NAME.lic)")
    kube.set_defaults(handler=_export)
