"""The server image, built with no container registry.

Three cached steps, each keyed by a hash of what it is made from:

1. ``ensure_base_image``: a Debian rootfs with python3 made by ``debootstrap --variant=minbase``
   (plus bookworm's updates and security fixes), pruned of docs, man pages, translations and
   package lists, packed reproducibly and ``docker import``-ed as
   ``inferpack-base:bookworm-py3.11-<recipe hash>``. Needs root (debootstrap, chroot); installs
   debootstrap with apt-get when it is missing.
2. ``download_wheels``: the pinned runtime wheels for the image's CPython (manylinux, x86_64) in
   ``.cache/wheels/<hash>/``, with a copy of the requirements file and the pinned pip and
   setuptools wheels, so an offline venv can be made with ``python3 -m venv --without-pip`` and
   ``python WHEELS/pip-*.whl/pip install --no-index --find-links WHEELS -r WHEELS/requirements.txt``
   (the operator host's installer needs the same, for its own Python).
3. ``build_server_image``: ``package/Dockerfile`` over a staged context (the Dockerfile, the
   wheels and an inferpack wheel built from the source tree), tagged
   ``inferpack-server:<version>-<key>`` where the key hashes the base image id, the Dockerfile,
   the wheels and the inferpack sources; an image labelled with that key is reused as it is.

``package/image/build.sh`` (``python -m inferpack.deploy.image``) runs them from the command line.

``--gpu`` builds the GPU variant instead: ``requirements-gpu.txt`` (onnxruntime-gpu, TensorRT's
bindings, cuda-python, nvidia-ml-py) over an NVIDIA CUDA + cuDNN base (``GPU_BASE_IMAGE``, or
``--base-image``; it must already be in the engine: ``docker pull`` it where a registry is
reachable), with Python 3.11 and the TensorRT libraries from apt (``GPU_BUILD_ARGS``). The CPU
image is built exactly as before.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import TYPE_CHECKING

from inferpack.license.pinned import IMAGE_LABEL as PINNED_KEY_LABEL

if TYPE_CHECKING:
    from docker import DockerClient
    from docker.models.images import Image

log = logging.getLogger(__name__)

SOURCE_ROOT = Path(__file__).resolve().parents[3]
BASE_REPOSITORY = "inferpack-base"
SERVER_REPOSITORY = "inferpack-server"
BUILD_KEY_LABEL = "io.inferpack.build-key"
SERVICE_UID = 10001
DEBIAN_MIRROR = "http://deb.debian.org/debian"
DEBIAN_SECURITY_MIRROR = "http://deb.debian.org/debian-security"
# Not runtime dependencies: pip installs the wheels from its own wheel (no python3-venv or pip
# needed where the venv is made), setuptools builds the inferpack wheel with no index.
BUILD_REQUIREMENTS = ("pip==26.3", "setuptools==84.2.1")
# The GPU variant: a CUDA 13 runtime with cuDNN on Ubuntu 22.04 (which packages Python 3.11),
# and TensorRT 11's runtime, ONNX parser and plugin libraries from NVIDIA's apt repository,
# matching requirements-gpu.txt's tensorrt-cu13-bindings.
GPU_BASE_IMAGE = "nvidia/cuda:13.0.2-cudnn-runtime-ubuntu22.04"
GPU_BUILD_ARGS = {
    "PYTHON": "python3.11",
    "GPU_APT_PACKAGES": "libnvinfer11 libnvinfer-plugin11 libnvonnxparsers11",
}
# Everything left here after debootstrap is pruned (relative to the rootfs); /usr/share/doc
# keeps each package's copyright file.
PRUNE = (
    "var/cache/apt/*",
    "var/lib/apt/lists/*",
    "var/cache/debconf/*-old",
    "var/lib/dpkg/*-old",
    "var/cache/ldconfig/aux-cache",
    "var/log/*",
    "tmp/*",
    "usr/share/man/*",
    "usr/share/info/*",
    "usr/share/lintian/*",
    "usr/share/locale/*",
    "debootstrap",
)
# The same, for whatever apt installs on top of the base later (as Debian's slim images do).
DPKG_EXCLUDES = """\
path-exclude=/usr/share/doc/*
path-include=/usr/share/doc/*/copyright
path-exclude=/usr/share/man/*
path-exclude=/usr/share/info/*
path-exclude=/usr/share/lintian/*
path-exclude=/usr/share/locale/*
"""


class ImageBuildError(RuntimeError):
    """A step of the image build failed; the message names the step and what to do."""


@dataclass(frozen=True)
class BaseRecipe:
    suite: str = "bookworm"
    python: str = "3.11"  # the suite's python3: checked after debootstrap, wheels are made for it
    packages: tuple[str, ...] = ("python3", "ca-certificates", "tini")
    revision: int = 1  # bump when the build steps change in a way the fields above do not show

    def key(self) -> str:
        return _digest(json.dumps([asdict(self), PRUNE, DPKG_EXCLUDES]))[:12]

    @property
    def tag(self) -> str:
        """The moving tag (latest build of this suite/python); the Dockerfile's default base."""
        return f"{BASE_REPOSITORY}:{self.suite}-py{self.python}"

    @property
    def keyed_tag(self) -> str:
        return f"{self.tag}-{self.key()}"


def docker_client() -> DockerClient:
    """A client for the local engine (DOCKER_HOST etc. honoured), or ImageBuildError."""
    import docker

    client = None
    try:
        client = docker.from_env()
        client.ping()
    except docker.errors.DockerException as exc:
        if client is not None:
            client.close()  # its connection pool, not left to the garbage collector
        where = os.environ.get("DOCKER_HOST", "the default socket")
        raise ImageBuildError(f"Docker Engine unreachable at {where}: {exc}") from exc
    return client


def ensure_base_image(
    client: DockerClient,
    recipe: BaseRecipe = BaseRecipe(),
    *,
    mirror: str = DEBIAN_MIRROR,
    security_mirror: str = DEBIAN_SECURITY_MIRROR,
) -> str:
    """Returns the base image's keyed tag, building and importing it unless the engine has it."""
    with _build_lock():
        if _has_image(client, recipe.keyed_tag):
            log.info("base image %s is cached", recipe.keyed_tag)
            client.images.get(recipe.keyed_tag).tag(recipe.tag)
            return recipe.keyed_tag
        if os.geteuid() != 0:
            raise ImageBuildError(
                f"building the base image {recipe.keyed_tag} needs root (debootstrap, chroot): "
                "run as root once, or `docker load` a saved base image"
            )
        started = time.monotonic()
        # /var/tmp, not /tmp: a tmpfs /tmp may be nodev, and apt in the chroot needs /dev/null.
        with tempfile.TemporaryDirectory(prefix="inferpack-base-", dir="/var/tmp") as tmp:
            root = Path(tmp) / "rootfs"
            tarball = Path(tmp) / "rootfs.tar"
            try:
                labels, epoch = _make_rootfs(root, recipe, mirror, security_mirror)
                _pack_rootfs(root, tarball, epoch)
            finally:
                _unmount_below(root)  # before TemporaryDirectory deletes the tree
            log.info("importing %s (%d MB tar)", recipe.keyed_tag, tarball.stat().st_size >> 20)
            repository, tag = recipe.keyed_tag.split(":")
            client.api.import_image(
                src=str(tarball),
                repository=repository,
                tag=tag,
                changes=[
                    "ENV PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "ENV LANG=C.UTF-8",
                    'CMD ["python3"]',
                    *(f"LABEL {k}={v}" for k, v in labels.items()),
                ],
            )
        client.images.get(recipe.keyed_tag).tag(recipe.tag)
        log.info("base image %s built in %.0fs", recipe.keyed_tag, time.monotonic() - started)
        return recipe.keyed_tag


def download_wheels(
    requirements: Path,
    cache_root: Path,
    *,
    python_version: str = "3.11",
    max_glibc: tuple[int, int] = (2, 36),
) -> Path:
    """Returns ``cache_root/<hash>/``: binary wheels for ``requirements`` and BUILD_REQUIREMENTS.

    For CPython ``python_version`` on x86_64 Linux with glibc up to ``max_glibc`` (bookworm: 2.36;
    pick the oldest glibc the operator hosts may have for the installer's wheels).
    """
    platforms = _manylinux_platforms(max_glibc)
    text = requirements.read_text(encoding="utf-8")
    key = _digest(json.dumps([text, BUILD_REQUIREMENTS, python_version, platforms]))[:16]
    folder = cache_root / key
    if folder.is_dir():
        log.info("wheels for %s are cached in %s", requirements.name, folder)
        return folder
    cache_root.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{key}-", dir=cache_root))
    try:
        started = time.monotonic()
        log.info(
            "downloading the wheels of %s for CPython %s (minutes on a cold cache)",
            requirements.name,
            python_version,
        )
        _run(
            [
                sys.executable, "-m", "pip", "download", "--quiet", "--disable-pip-version-check",
                "--only-binary=:all:", "--python-version", python_version, "--implementation", "cp",
                "--abi", "cp" + python_version.replace(".", ""),
                *(arg for platform in platforms for arg in ("--platform", platform)),
                "--dest", str(staging), "-r", str(requirements), *BUILD_REQUIREMENTS,
            ],
            f"pip download for CPython {python_version} of {requirements}",
        )  # fmt: skip
        shutil.copyfile(requirements, staging / "requirements.txt")
        try:
            staging.rename(folder)  # atomic: a folder under its final name is complete
        except OSError:
            if not folder.is_dir():
                raise
            log.info("another build downloaded the same wheels meanwhile")
        else:
            log.info("downloaded wheels to %s in %.0fs", folder, time.monotonic() - started)
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return folder


def build_server_image(
    client: DockerClient,
    tag: str | None = None,
    *,
    base_image: str | None = None,
    source_root: Path = SOURCE_ROOT,
    cache_dir: Path | None = None,
    gpu: bool = False,
) -> str:
    """Builds ``package/Dockerfile`` (or reuses the image built from the same inputs); returns its id.

    ``base_image`` defaults to ``ensure_base_image`` (``GPU_BASE_IMAGE`` with ``gpu``); the image
    is tagged ``inferpack-server:<version>-<key>`` (``<version>-gpu-<key>``), and also ``tag``.
    """
    requirements = source_root / "package" / ("requirements-gpu.txt" if gpu else "requirements.txt")
    if not (source_root / "package" / "Dockerfile").is_file() or not requirements.is_file():
        raise ImageBuildError(f"{source_root} is not an inferpack source tree (no package/Dockerfile)")
    base_image = base_image or (GPU_BASE_IMAGE if gpu else ensure_base_image(client))
    base_id = _image_id(client, base_image)
    wheels = download_wheels(requirements, (cache_dir or source_root / ".cache") / "wheels")
    with tempfile.TemporaryDirectory(prefix="inferpack-image-") as tmp, _build_lock():
        # A snapshot, so that what the key hashes is what gets built while people edit the tree.
        sources = _snapshot_sources(source_root, Path(tmp) / "src")
        key = _digest(
            base_id,
            wheels.name,
            *(f"{p.relative_to(sources)}\0{_digest(p.read_bytes())}" for p in _files(sources)),
        )[:16]
        # Images built FROM this one (pack's vendor-key layer) inherit its labels: skip them.
        cached = [
            found
            for found in client.images.list(filters={"label": f"{BUILD_KEY_LABEL}={key}"})
            if PINNED_KEY_LABEL not in found.labels
        ]
        if cached:
            image = cached[0]
            # Its content-keyed tag may have been removed since: packages name the image by it.
            image.tag(*_server_tag(image.labels["org.opencontainers.image.version"], gpu, key).split(":"))
            log.info("server image %s is cached", ", ".join(image.tags) or image.short_id)
        else:
            image = _build_server(client, sources, wheels, base_image, key, Path(tmp) / "context", gpu)
        if tag:
            image.tag(tag)
        return str(image.id)


def _server_tag(version: str, gpu: bool, key: str) -> str:
    return f"{SERVER_REPOSITORY}:{version}-{'gpu-' if gpu else ''}{key}"


def _build_server(
    client: DockerClient, sources: Path, wheels: Path, base_image: str, key: str, context: Path, gpu: bool
) -> Image:
    """Stages the context (Dockerfile, wheels/, app/) and runs the build."""
    started = time.monotonic()
    context.mkdir()
    shutil.copyfile(sources / "package" / "Dockerfile", context / "Dockerfile")
    _link_tree(wheels, context / "wheels")
    version = _build_inferpack_wheel(sources, wheels, context / "app").name.split("-")[1]
    tag = _server_tag(version, gpu, key)
    labels = {"org.opencontainers.image.version": version, BUILD_KEY_LABEL: key}
    _docker_build(client, context, tag, {"BASE_IMAGE": base_image, **(GPU_BUILD_ARGS if gpu else {})}, labels)
    image = client.images.get(tag)
    log.info(
        "server image %s built in %.0fs (%d MiB)", tag, time.monotonic() - started, image.attrs["Size"] >> 20
    )
    return image


def _make_rootfs(
    root: Path, recipe: BaseRecipe, mirror: str, security_mirror: str
) -> tuple[dict[str, str], int]:
    """debootstrap + updates + pruning; returns labels saying what went in, and the epoch."""
    started = time.monotonic()
    _run(
        [
            _ensure_debootstrap(), "--variant=minbase", "--components=main",
            "--include=" + ",".join(recipe.packages), recipe.suite, str(root), mirror,
        ],
        f"debootstrap {recipe.suite} from {mirror}",
        log_file=root / "debootstrap" / "debootstrap.log",
    )  # fmt: skip
    log.info("debootstrap %s took %.0fs", recipe.suite, time.monotonic() - started)
    (root / "etc/dpkg/dpkg.cfg.d/90-inferpack-minimal").write_text(DPKG_EXCLUDES)
    (root / "etc/apt/apt.conf.d/90-inferpack-no-recommends").write_text('APT::Install-Recommends "false";\n')
    (root / "etc/apt/sources.list").write_text(
        f"deb {mirror} {recipe.suite} main\n"
        f"deb {mirror} {recipe.suite}-updates main\n"
        f"deb {security_mirror} {recipe.suite}-security main\n"
    )
    _chroot(root, "apt-get -q update && apt-get -qy -o Dpkg::Options::=--force-confold upgrade")
    python = _chroot(root, "python3 -c 'import sys; print(\"%d.%d\" % sys.version_info[:2])'")
    if python != recipe.python:
        raise ImageBuildError(f"{recipe.suite}'s python3 is {python}, the recipe says {recipe.python}")
    installed = _chroot(root, "dpkg-query -W -f '${Package}=${Version}\\n' | LC_ALL=C sort")
    epoch = _release_epoch(root)
    _prune_rootfs(root, epoch)
    return {
        "org.opencontainers.image.title": BASE_REPOSITORY,
        "org.opencontainers.image.created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch)),
        "io.inferpack.base.recipe": recipe.key(),
        "io.inferpack.base.suite": recipe.suite,
        "io.inferpack.base.python": python,
        "io.inferpack.base.packages-sha256": _digest(installed),
    }, epoch


def _prune_rootfs(root: Path, epoch: int) -> None:
    for pattern in PRUNE:
        for path in root.glob(pattern):
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
    for path in (root / "usr/share/doc").rglob("*"):
        if path.name != "copyright" and (path.is_symlink() or path.is_file()):
            path.unlink()
    # debootstrap copies the host's resolver and name; Docker mounts its own at run time.
    for name in ("etc/resolv.conf", "etc/hostname"):
        (root / name).write_text("")
    for name in ("etc/shadow", "etc/shadow-"):  # "days since last change" would be the build date
        shadow = root / name
        if shadow.exists():
            days = str(epoch // 86400)
            lines = [
                re.sub(r"^([^:]*:[^:]*:)\d*", rf"\g<1>{days}", x) for x in shadow.read_text().splitlines()
            ]
            shadow.write_text("\n".join(lines) + "\n")


def _release_epoch(root: Path) -> int:
    """The newest Date of the suites' Release files: the clamp for mtimes of files made during
    the build (files from packages keep theirs, so python's .pyc stay valid)."""
    dates = [
        parsedate_to_datetime(match.group(1)).timestamp()
        for path in (root / "var/lib/apt/lists").glob("*Release")
        if (match := re.search(r"^Date: (.+)$", path.read_text(errors="replace"), re.MULTILINE))
    ]
    if not dates:
        raise ImageBuildError(f"no Release file with a Date under {root}/var/lib/apt/lists")
    return int(max(dates))


def _pack_rootfs(root: Path, tarball: Path, epoch: int) -> None:
    """The same files give the same tar (sorted, numeric owners, clamped mtimes)."""
    _run(
        [
            "tar", "--create", "--file", str(tarball), "--directory", str(root), "--sort=name",
            "--numeric-owner", f"--mtime=@{epoch}", "--clamp-mtime", "--one-file-system", ".",
        ],
        "packing the rootfs",
    )  # fmt: skip


def _ensure_debootstrap() -> str:
    path = os.environ.get("PATH", "") + ":/usr/sbin:/sbin"
    found = shutil.which("debootstrap", path=path)
    if found:
        return found
    if shutil.which("apt-get") is None:
        raise ImageBuildError("debootstrap is not installed and there is no apt-get to install it")
    log.info("installing debootstrap with apt-get")
    install = ["apt-get", "install", "-y", "-q", "--no-install-recommends", "debootstrap"]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(install, env=env, capture_output=True, check=False).returncode != 0:
        _run(["apt-get", "update", "-q"], "apt-get update (to install debootstrap)", env=env)
        _run(install, "apt-get install debootstrap", env=env)
    found = shutil.which("debootstrap", path=path)
    if not found:
        raise ImageBuildError("apt-get installed debootstrap but it is not on PATH or in /usr/sbin")
    return found


def _chroot(root: Path, script: str) -> str:
    env = {
        "PATH": "/usr/sbin:/usr/bin:/sbin:/bin",
        "LC_ALL": "C.UTF-8",
        "DEBIAN_FRONTEND": "noninteractive",
    }
    return _run(["chroot", str(root), "/bin/sh", "-ec", script], f"in the rootfs: {script}", env=env)


def _unmount_below(root: Path) -> None:
    """Unmounts anything an interrupted debootstrap left mounted in the rootfs (deepest first),
    so that deleting the rootfs can never reach into the host's /proc or /dev."""
    prefix = str(root.resolve()) + "/"
    with open("/proc/self/mountinfo", encoding="utf-8") as mountinfo:
        points = [line.split()[4] for line in mountinfo]
    for point in sorted((p for p in points if p.startswith(prefix)), reverse=True):
        _run(["umount", "--lazy", point], f"unmounting {point}")


def _snapshot_sources(source_root: Path, dest: Path) -> Path:
    """Copies what the image is built from: the Dockerfile and the inferpack project."""
    names = ["package/Dockerfile", "pyproject.toml", "README.md"]
    package = source_root / "package" / "inferpack"
    for path in [*(source_root / name for name in names), *_files(package)]:
        # A key pinned in a working tree by hand is never built in: `pack` pins the vendor's.
        if path.is_file() and path.suffix not in (".pyc", ".pub") and "__pycache__" not in path.parts:
            target = dest / path.relative_to(source_root)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(path, target)
    return dest


def _files(folder: Path) -> list[Path]:
    return sorted(path for path in folder.rglob("*") if path.is_file())


def _build_inferpack_wheel(sources: Path, wheels: Path, dest: Path) -> Path:
    """``pip wheel`` of the snapshot (no build/ or egg-info in the tree other people work in);
    setuptools comes from the wheel folder, not an index."""
    _run(
        [
            sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check", "--no-deps",
            "--no-index", "--find-links", str(wheels), "--wheel-dir", str(dest), str(sources),
        ],
        "building the inferpack wheel",
    )  # fmt: skip
    (wheel,) = dest.glob("inferpack-*.whl")
    return wheel


def _docker_build(
    client: DockerClient, context: Path, tag: str, buildargs: dict[str, str], labels: dict[str, str]
) -> None:
    import docker

    tail: deque[str] = deque(maxlen=40)
    started = time.monotonic()
    try:
        for chunk in client.api.build(
            path=str(context), tag=tag, buildargs=buildargs, labels=labels, rm=True, forcerm=True, decode=True
        ):
            if "stream" in chunk:
                for line in chunk["stream"].splitlines():
                    # A line per stage with the time so far: a cold build takes minutes.
                    level = logging.INFO if line.startswith("Step ") else logging.DEBUG
                    log.log(level, "docker build (%.0fs): %s", time.monotonic() - started, line)
                    tail.append(line)
            if "error" in chunk:
                raise ImageBuildError(f"docker build of {tag} failed: {chunk['error']}\n" + "\n".join(tail))
    except docker.errors.APIError as exc:
        raise ImageBuildError(f"docker build of {tag} failed: {exc}") from exc


def _has_image(client: DockerClient, ref: str) -> bool:
    import docker

    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def _image_id(client: DockerClient, ref: str) -> str:
    import docker

    try:
        return str(client.images.get(ref).id)
    except docker.errors.ImageNotFound as exc:
        raise ImageBuildError(f"base image {ref} is not in the engine (docker load it first)") from exc


def _manylinux_platforms(max_glibc: tuple[int, int]) -> list[str]:
    """pip does not widen an explicit --platform to older glibc versions, so list them all,
    with the legacy aliases some wheels carry only (manylinux2014 is glibc 2.17)."""
    major, minor = max_glibc
    tags = [f"manylinux_{major}_{m}_x86_64" for m in range(minor, 4, -1)]
    legacy = [("manylinux2014", 17), ("manylinux2010", 12), ("manylinux1", 5)]
    return tags + [f"{name}_x86_64" for name, since in legacy if since <= minor]


def _link_tree(source: Path, dest: Path) -> None:
    """Hard links (a copy across file systems) of a flat folder."""
    dest.mkdir()
    for path in source.iterdir():
        try:
            os.link(path, dest / path.name)
        except OSError:
            shutil.copyfile(path, dest / path.name)


@contextmanager
def _build_lock() -> Iterator[None]:
    """One build at a time per host: the engine, and so the image tags, are shared."""
    import fcntl

    with open(Path(tempfile.gettempdir()) / "inferpack-image-build.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


def _run(
    cmd: Sequence[str], what: str, *, env: dict[str, str] | None = None, log_file: Path | None = None
) -> str:
    """Runs a command; its stdout, or ImageBuildError naming ``what`` with the output's tail."""
    result = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        output = result.stdout + result.stderr
        if log_file is not None and log_file.is_file():
            output += log_file.read_text(errors="replace")
        tail = "\n".join(output.strip().splitlines()[-20:])
        raise ImageBuildError(f"{what} failed (exit {result.returncode}):\n{tail}")
    return result.stdout.strip()


def _digest(*parts: str | bytes) -> str:
    sha = hashlib.sha256()
    for part in parts:
        sha.update(part.encode() if isinstance(part, str) else part)
        sha.update(b"\n")
    return sha.hexdigest()


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="package/image/build.sh", description="Build the inferpack server image with no registry."
    )
    parser.add_argument("--base-only", action="store_true", help="only build (or find) the base image")
    parser.add_argument("--base-image", help="build FROM this instead (e.g. python:3.11-slim)")
    parser.add_argument("--tag", help="also tag the server image with this name")
    parser.add_argument(
        "--gpu", action="store_true", help=f"the GPU variant (requirements-gpu.txt, FROM {GPU_BASE_IMAGE})"
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="show docker build output")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO, format="%(asctime)s %(message)s"
    )
    try:
        client = docker_client()
        if args.base_only:
            print(ensure_base_image(client))
        else:
            print(build_server_image(client, args.tag, base_image=args.base_image, gpu=args.gpu))
    except ImageBuildError as exc:
        print(f"image build: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
