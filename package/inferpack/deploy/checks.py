"""The environment checks ``install`` runs first, each printed as one PASS/FAIL line with a hint.

A failed check stops the install unless ``--force``: it is far cheaper to read "port 8080 is
taken by another program" than to debug a container that never becomes healthy.
"""

from __future__ import annotations

import re
import shutil
import socket
import subprocess
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from inferpack.deploy.routes import front_routes
from inferpack.deploy.runtime import Runtime
from inferpack.deploy.settings import ALL_INTERFACES
from inferpack.license.errors import LicenseError
from inferpack.license.fingerprint import collect
from inferpack.license.keys import load_public_key
from inferpack.license.licfile import License, parse_license
from inferpack.license.pinned import IMAGE_LABEL
from inferpack.license.registry import live_elsewhere, service_id
from inferpack.license.verify import verify_license


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    hint: str = ""


def report(checks: list[Check], out: Callable[[str], None]) -> bool:
    """Prints one line per check (and the hint under a failure); True when all passed."""
    for check in checks:
        out(f"{'PASS' if check.passed else 'FAIL'}  {check.name:<10} {check.detail}")
        if not check.passed and check.hint:
            out(f"      {'':<10} -> {check.hint}")
    return all(check.passed for check in checks)


def check_runtime(runtime: Runtime) -> Check:
    ok, detail = runtime.available()
    hint = "start the Docker Engine (systemctl start docker), or install with --runtime process"
    return Check("runtime", ok, detail, "" if ok else hint)


def _existing_parent(path: Path) -> Path:
    while not path.exists():
        path = path.parent
    return path


def check_disk(work_root: Path, need_bytes: int) -> Check:
    free = shutil.disk_usage(_existing_parent(work_root)).free
    detail = f"{free / 2**30:.1f} GiB free under {work_root}, {need_bytes / 2**30:.2f} GiB needed"
    return Check("disk", free >= need_bytes, detail, "free some space or choose another --work-root")


def port_is_free(port: int, bind: str = ALL_INTERFACES) -> bool:
    with socket.socket(socket.AF_INET6 if ":" in bind else socket.AF_INET, socket.SOCK_STREAM) as probe:
        # As the front binds (asyncio sets SO_REUSEADDR): connections left in TIME_WAIT by a
        # service just removed do not hold the port, a listener does.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((bind, port))
        except OSError:
            return False
    return True


def port_holder(port: int) -> str:
    """Who listens on ``port``: an inferpack service's front says which service it is (from
    any work root); another program is named by its process where this user may see it."""
    try:
        routes = front_routes(port, timeout_s=2.0)
    except (OSError, ValueError, KeyError, TypeError):
        routes = None
    if routes is not None and routes.service:
        home = Path(routes.service)
        return f"the inferpack service {home.name} (work root {home.parent})"
    return port_listener(port)


def port_listener(port: int) -> str:
    """Who listens on ``port``: "NAME (pid N)", or "an unknown program" without the rights to see."""
    import psutil  # type: ignore[import-untyped]

    try:
        for conn in psutil.net_connections(kind="tcp"):
            if conn.status == psutil.CONN_LISTEN and conn.laddr and conn.laddr.port == port and conn.pid:
                try:
                    return f"{psutil.Process(conn.pid).name()} (pid {conn.pid})"
                except psutil.Error:
                    return f"pid {conn.pid}"
    except psutil.AccessDenied:
        pass
    return "an unknown program (run as root to see which)"


def check_port(port: int, held_by_us: bool, bind: str = ALL_INTERFACES) -> Check:
    if held_by_us:
        return Check("port", True, f"{port} is this service's own front")
    if port_is_free(port, bind):
        return Check("port", True, f"{port} is free on {bind}")
    holder = port_holder(port)
    return Check(
        "port", False, f"{port} is in use by {holder}", f"choose another with --port, or stop {holder}"
    )


def check_image(image: str | None, key_id: str | None = None) -> Check:
    """The image is loaded, and (``key_id``: the package's vendor key) pins that very key."""
    import docker
    import docker.errors

    if image is None:
        return Check("image", False, "the package names no server image", "ask the vendor for a full package")
    try:
        found = docker.from_env().images.get(image)
    except docker.errors.ImageNotFound:
        return Check("image", False, f"{image} is not loaded", "run: bash original/download.sh")
    except docker.errors.DockerException as exc:
        return Check("image", False, f"cannot ask Docker about {image}: {exc}")
    pinned = found.labels.get(IMAGE_LABEL)
    if key_id is not None and pinned != key_id:
        return Check(
            "image",
            False,
            f"{image} pins vendor key {pinned or 'none'}, the package is signed by {key_id}",
            "use the image of this package, loaded by bash original/download.sh",
        )
    return Check("image", True, f"{image} ({found.short_id})")


def check_gpu(index: int) -> Check:
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return Check("gpu", False, f"nvidia-smi cannot run: {exc}", "install the NVIDIA driver")
    gpus = [line for line in listing.stdout.splitlines() if line.startswith("GPU ")]
    if index >= len(gpus):
        return Check(
            "gpu", False, f"GPU {index} asked, {len(gpus)} present", "pick an index nvidia-smi -L shows"
        )
    return Check("gpu", True, gpus[index].split(" (UUID")[0])


# The oldest Linux driver each CUDA major version runs on (NVIDIA's CUDA Toolkit release notes,
# "minimum required driver version" with minor version compatibility).
MIN_DRIVER_BY_CUDA_MAJOR = {11: "450.80.02", 12: "525.60.13", 13: "580.65.06"}


def _version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in re.findall(r"\d+", text)[:3])


def cuda_driver_check(cuda: str | None, driver: str | None) -> Check:
    """Whether the host's NVIDIA ``driver`` runs an image built on CUDA ``cuda``; when not, which
    driver (or which of the vendor's per-CUDA packages) to use instead."""
    if cuda is None:
        return Check("cuda", True, "the image names no CUDA version: nothing to compare")
    if driver is None:
        return Check(
            "cuda",
            False,
            f"the image needs CUDA {cuda} and no NVIDIA driver answers",
            "install the NVIDIA driver",
        )
    major = _version(cuda)[0]
    needed = MIN_DRIVER_BY_CUDA_MAJOR.get(major)
    if needed is None or _version(driver) >= _version(needed):
        return Check("cuda", True, f"driver {driver} runs CUDA {cuda}")
    runs = [
        f"CUDA {m}"
        for m, floor in sorted(MIN_DRIVER_BY_CUDA_MAJOR.items())
        if _version(driver) >= _version(floor)
    ]
    return Check(
        "cuda",
        False,
        f"the image needs CUDA {cuda}: driver {needed} or newer; this host has {driver}",
        f"install NVIDIA driver {needed}+, or ask the vendor for this model's package built for "
        + (runs[-1] if runs else "an older CUDA"),
    )


def check_cuda_driver(image: str) -> Check:
    """The image's CUDA version (its CUDA_VERSION, as NVIDIA's base images set) against the driver."""
    import docker

    env = docker.from_env().images.get(image).attrs.get("Config", {}).get("Env") or []
    cuda = next((item.split("=", 1)[1] for item in env if item.startswith("CUDA_VERSION=")), None)
    try:
        query = ["nvidia-smi", "--query-gpu=driver_version", "--format=csv,noheader"]
        done = subprocess.run(query, capture_output=True, text=True, timeout=30)
        driver = done.stdout.split()[0] if done.returncode == 0 and done.stdout.split() else None
    except (OSError, subprocess.TimeoutExpired):
        driver = None
    return cuda_driver_check(cuda, driver)


def check_nvidia_runtime() -> Check:
    import docker

    runtimes = docker.from_env().info().get("Runtimes", {})
    ok = "nvidia" in runtimes
    detail = "Docker has the nvidia runtime" if ok else "Docker has no nvidia runtime"
    return Check("nvidia", ok, detail, "install nvidia-container-toolkit and restart Docker")


def check_license(license_file: Path | None, vendor_key: Path, deploy_name: str) -> Check:
    hint = f"put the license for this machine in licenses/{deploy_name}.lic or pass --license"
    if license_file is None:
        return Check("license", False, "no license file", hint + " (python3 install.py fingerprint)")
    try:
        text = license_file.read_text(encoding="utf-8")
        state = verify_license(text, load_public_key(vendor_key), deploy_name, collect(Path("/")))
    except (OSError, UnicodeDecodeError, LicenseError) as exc:
        return Check("license", False, f"{license_file}: {exc}", hint)
    if not state.valid:
        return Check("license", False, f"{license_file}: {state.reason}", hint)
    return Check("license", True, f"{license_file}: valid until {state.summary().get('not_after')}")


def check_instances(
    license_file: Path | None,
    deploy_name: str,
    others: list[tuple[str, Path]],
    instances: int = 1,
    state_dirs: Sequence[Path] = (),
) -> Check:
    """The license's ``max_instances``: services on this work root installed with the same license
    (same issue id), this one's ``instances`` (its replicas on a swarm) included, and those serving
    it on this host from anywhere else (the host-wide registry, license/registry.py). ``others``
    are the work root's other services' (name, license file); ``state_dirs`` all its services'
    state folders (counted by name already)."""
    lic = _read_license(license_file) if license_file else None  # unreadable: check_license says why
    if lic is None or lic.limits.max_instances is None:
        return Check("instances", True, "no instance limit in the license")
    sharing = [
        name
        for name, path in others
        if name != deploy_name and (other := _read_license(path)) and other.issue_id == lic.issue_id
    ]
    elsewhere = live_elsewhere(lic.issue_id, {service_id(d) for d in state_dirs if d.exists()})
    limit, count = lic.limits.max_instances, len(sharing) + instances + elsewhere
    detail = f"{count} of {limit} licensed instance(s)" + (
        f" ({', '.join(sharing)} use it too)" if sharing else ""
    )
    if elsewhere:
        detail += f" ({elsewhere} more serving it on this host, outside this work root)"
    return Check(
        "instances",
        count <= limit,
        detail,
        "remove a service that uses this license, or ask for more instances",
    )


def _read_license(path: Path) -> License | None:
    try:
        return parse_license(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, LicenseError):
        return None
