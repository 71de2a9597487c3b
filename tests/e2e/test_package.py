"""Deploy packages on the real Docker Engine: `original/download.sh` verifies, then `docker load`s.

Most tests carry a tiny image (one file, `docker import`-ed under a unique tag, saved, then
removed so that loading it is real); one test packs, verifies and loads the real server image.
The package's wheels are the real ones, so install.py really bootstraps its offline venv.
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tarfile
import time
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from inferpack.cli import main
from inferpack.deploy import image
from inferpack.deploy.extract import extract_package
from inferpack.deploy.images import load_package_image
from inferpack.deploy.manifest import IMAGE_FILE, PackageError, sha256_file
from inferpack.deploy.pack import SOURCE_ROOT, PackageImage, build_inferpack_wheel
from inferpack.license.keys import key_id
from inferpack.license.pinned import IMAGE_LABEL
from tests.onnx_models import colour_classifier
from tests.support.packages import CREATED, Vendor, flip_byte, make_package, make_vendor, unpack

if TYPE_CHECKING:
    from docker import DockerClient

pytestmark = [
    pytest.mark.docker,
    pytest.mark.skipif(sys.version_info[:2] != (3, 11), reason="the package's wheels are for CPython 3.11"),
]


@pytest.fixture(scope="module")
def vendor(tmp_path_factory: pytest.TempPathFactory) -> Vendor:
    return make_vendor(tmp_path_factory.mktemp("vendor"))


@pytest.fixture(scope="module")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return colour_classifier(tmp_path_factory.mktemp("bundle") / "colour")


@pytest.fixture(scope="module")
def real_wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    """What `inferpack pack` ships: the cached pinned wheels and this tree's inferpack wheel."""
    cached = image.download_wheels(
        SOURCE_ROOT / "package" / "requirements.txt", SOURCE_ROOT / ".cache" / "wheels"
    )
    wheel = build_inferpack_wheel(tmp_path_factory.mktemp("wheel"), cached, int(CREATED.timestamp()))
    return [*sorted(p for p in cached.iterdir() if p.is_file()), wheel]


def unique_tag() -> str:
    return f"inferpack-test/package-{uuid.uuid4().hex[:12]}:1"


def remove_image(client: DockerClient, ref: str) -> None:
    import docker

    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.remove(ref, force=True)


@pytest.fixture(scope="module")
def tiny_image(
    docker_client: DockerClient, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[PackageImage]:
    """A one-file image saved to a tarball, then removed from the engine (so a load is real)."""
    rootfs = io.BytesIO()
    with tarfile.open(fileobj=rootfs, mode="w") as tar:
        info = tarfile.TarInfo("hello.txt")
        info.size = len(data := uuid.uuid4().bytes)  # unique content: a unique image id
        tar.addfile(info, io.BytesIO(data))
    tag = unique_tag()
    repository, _, version = tag.rpartition(":")
    docker_client.api.import_image_from_data(rootfs.getvalue(), repository=repository, tag=version)
    image_id = str(docker_client.images.get(tag).id)
    tarball = tmp_path_factory.mktemp("image") / "tiny.tar"
    with tarball.open("wb") as out:
        for chunk in docker_client.api.get_image(tag):
            out.write(chunk)
    remove_image(docker_client, image_id)
    yield PackageImage(tag, image_id, tarball)
    remove_image(docker_client, image_id)


@pytest.fixture(scope="module")
def tiny_full_package(
    tmp_path_factory: pytest.TempPathFactory,
    vendor: Vendor,
    model_dir: Path,
    real_wheels: list[Path],
    tiny_image: PackageImage,
) -> Path:
    tarball, _ = make_package(
        tmp_path_factory.mktemp("full"), vendor, model_dir, real_wheels, image=tiny_image
    )
    return tarball


@pytest.fixture(scope="module")
def installer_venv(tmp_path_factory: pytest.TempPathFactory, tiny_full_package: Path) -> Path:
    """install.py's venv, made once from the real wheels and shared through INFERPACK_VENV."""
    venv = tmp_path_factory.mktemp("venv") / "venv"
    root = unpack(tiny_full_package, tmp_path_factory.mktemp("bootstrap") / "pkg")
    result = run([sys.executable, "install.py", "--version"], root, venv)
    assert result.returncode == 0, result.stderr
    return venv


def run(
    command: list[str], cwd: Path, venv: Path | None, work_root: Path | None = None
) -> subprocess.CompletedProcess[str]:
    """Runs as the operator would, with python3 being this interpreter (CPython 3.11)."""
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}:{os.environ['PATH']}"}
    env.pop("INFERPACK_VENV", None)
    if venv is not None:
        env["INFERPACK_VENV"] = str(venv)
    if work_root is not None:
        env["INFERPACK_WORK_ROOT"] = str(work_root)
    return subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=300, check=False)


def has_image(client: DockerClient, ref: str) -> bool:
    import docker

    try:
        client.images.get(ref)
    except docker.errors.ImageNotFound:
        return False
    return True


def test_download_sh_verifies_then_loads(
    docker_client: DockerClient, tiny_full_package: Path, tiny_image: PackageImage, tmp_path: Path
) -> None:
    """From scratch, as an operator: its own venv beside install.py, then a real `docker load`."""
    root = unpack(tiny_full_package, tmp_path / "pkg")
    assert not has_image(docker_client, tiny_image.id)
    try:
        work_root = tmp_path / "work"
        result = run(["bash", "pkg/original/download.sh"], tmp_path, None, work_root)  # from any folder
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"PASS loaded image {tiny_image.tag} ({tiny_image.id})" in result.stdout
        assert result.stdout.rstrip().endswith("(see README.txt)")
        assert docker_client.images.get(tiny_image.tag).id == tiny_image.id
        # install.py's own venv lives in the work root (it outlives the package folder)
        assert len(list((work_root / ".inferpack").glob("venv-*/bin/python"))) == 1

        again = run(["bash", str(root / "original" / "download.sh")], root, None, work_root)
        assert again.returncode == 0, again.stderr
        assert "is already in Docker: not loaded again" in again.stdout
    finally:
        remove_image(docker_client, tiny_image.id)


def append_comment(path: Path) -> None:
    """A change that keeps install.py runnable: only the manifest check can notice it."""
    path.write_text(path.read_text() + "# changed\n")


@pytest.mark.parametrize(
    ("target", "tamper"),
    [(IMAGE_FILE, flip_byte), ("model/model.onnx", flip_byte), ("install.py", append_comment)],
)
def test_download_sh_refuses_a_changed_file_and_loads_nothing(
    docker_client: DockerClient,
    tiny_full_package: Path,
    tiny_image: PackageImage,
    installer_venv: Path,
    tmp_path: Path,
    target: str,
    tamper: Callable[[Path], None],
) -> None:
    root = unpack(tiny_full_package, tmp_path / "pkg")
    tamper(root / target)
    result = run(["bash", "original/download.sh"], root, installer_venv)
    assert result.returncode != 0
    assert f"FAIL package verify: {target} does not match its SHA-256 in manifest.json" in result.stderr
    assert "FAIL: the package did not verify: nothing was loaded" in result.stderr
    assert "PASS" not in result.stdout
    assert not has_image(docker_client, tiny_image.id) and not has_image(docker_client, tiny_image.tag)


def test_download_sh_refuses_a_tampered_wheel_before_pip(
    tiny_full_package: Path, tmp_path: Path, docker_client: DockerClient, tiny_image: PackageImage
) -> None:
    root = unpack(tiny_full_package, tmp_path / "pkg")
    wheel = next((root / "wheels").glob("inferpack-*.whl"))
    flip_byte(wheel)
    result = run(["bash", "original/download.sh"], root, None, work_root=tmp_path / "work")
    assert result.returncode != 0
    assert f"install.py: wheels/{wheel.name} does not match its SHA-256 in manifest.json" in result.stderr
    assert not list((tmp_path / "work" / ".inferpack").glob("venv-*"))  # pip never ran
    assert not has_image(docker_client, tiny_image.id)


def test_update_package_needs_its_image(
    docker_client: DockerClient,
    tmp_path: Path,
    vendor: Vendor,
    model_dir: Path,
    real_wheels: list[Path],
    tiny_image: PackageImage,
    installer_venv: Path,
) -> None:
    required = PackageImage(tiny_image.tag, tiny_image.id, None)
    tarball, _ = make_package(tmp_path, vendor, model_dir, real_wheels, package_type="update", image=required)
    root = unpack(tarball, tmp_path / "pkg")
    missing = run(["bash", "original/download.sh"], root, installer_venv)
    assert missing.returncode != 0
    assert f"needs the image {tiny_image.tag} ({tiny_image.id}), which Docker does not have" in missing.stderr
    assert "bash original/download.sh` in the full package" in missing.stderr
    assert tiny_image.tarball is not None
    with tiny_image.tarball.open("rb") as stream:
        docker_client.images.load(stream)
    try:
        present = run(["bash", "original/download.sh"], root, installer_venv)
        assert present.returncode == 0, present.stderr
        assert "which this update package needs, is in Docker" in present.stdout
    finally:
        remove_image(docker_client, tiny_image.id)


def test_load_checks_the_pinned_key(
    docker_client: DockerClient, tiny_full_package: Path, tiny_image: PackageImage, tmp_path: Path
) -> None:
    """The installer's path for a full update package: extract, then load against the pinned key."""
    other = make_vendor(tmp_path / "other")
    extracted, _ = extract_package(tiny_full_package, tmp_path, pinned_key=None)
    with pytest.raises(PackageError, match="package signed by another vendor key"):
        load_package_image(extracted, pinned_key=other.public, in_place=False, client=docker_client)
    assert not has_image(docker_client, tiny_image.id)


def test_cli_pack_is_reproducible(
    docker_client: DockerClient,
    tmp_path: Path,
    vendor: Vendor,
    model_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """SOURCE_DATE_EPOCH fixes `created` (and the wheel's zip times): same inputs, same bytes."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(CREATED.timestamp())))
    tag = unique_tag()
    docker_client.api.import_image_from_data(b"", repository=tag.rpartition(":")[0], tag="1")
    try:
        packages = []
        for out in ("a", "b"):
            args = ["--name", "cats", "--version", "2.0", "--key", str(vendor.private), "--type", "update"]
            assert main(["pack", str(model_dir), *args, "--image", tag, "--out", str(tmp_path / out)]) == 0
            packages.append(tmp_path / out / "cats-2.0.tar.gz")
        first, second = (extract_package(p, p.parent, pinned_key=vendor.public).manifest for p in packages)
        assert first.files == second.files  # if not: the source tree changed between the two packs
        assert sha256_file(packages[0]) == sha256_file(packages[1])
    finally:
        remove_image(docker_client, f"{tag}-k{key_id(vendor.key.public_key())}")  # what pack pinned
        remove_image(docker_client, tag)


def test_full_package_with_the_server_image(
    docker_client: DockerClient,
    server_image: str,
    tmp_path: Path,
    vendor: Vendor,
    model_dir: Path,
    installer_venv: Path,
    monkeypatch: pytest.MonkeyPatch,
    record_property: Callable[[str, object], None],
) -> None:
    """pack (the vendor key baked into the image, docker save) -> extract + verify -> docker load.

    The saved tarball loads as the very id the signed manifest names, by hand and then by
    `download.sh` (the pinned image, removed in between, is loaded again from the package)."""
    monkeypatch.setenv("SOURCE_DATE_EPOCH", str(int(CREATED.timestamp())))  # the shared venv's wheels
    tag = unpinned = unique_tag()
    docker_client.images.get(server_image).tag(*tag.rsplit(":", 1))
    try:
        started = time.monotonic()
        args = ["--name", "cats", "--version", "1.0.0", "--key", str(vendor.private), "--image", tag]
        assert main(["pack", str(model_dir), *args, "--out", str(tmp_path / "out")]) == 0
        pack_s = time.monotonic() - started
        tarball = tmp_path / "out" / "cats-1.0.0.tar.gz"

        started = time.monotonic()
        root, manifest = extract_package(tarball, tmp_path, pinned_key=vendor.public)
        extract_s = time.monotonic() - started
        pinned = docker_client.images.get(manifest.image.tag)
        assert manifest.image.tag == f"{tag}-k{manifest.key_id}" and pinned.id == manifest.image.id
        assert pinned.labels[IMAGE_LABEL] == manifest.key_id and pinned.id != server_image
        tag, server_image = manifest.image.tag, manifest.image.id  # what the operator gets

        started = time.monotonic()
        with (root / IMAGE_FILE).open("rb") as stream:
            loaded = docker_client.images.load(stream)
        load_s = time.monotonic() - started
        assert [image.id for image in loaded] == [server_image]

        docker_client.images.remove(tag)  # its only tag: the pinned image leaves Docker
        started = time.monotonic()
        result = run(["bash", "original/download.sh"], root, installer_venv)
        download_s = time.monotonic() - started
        assert result.returncode == 0, result.stdout + result.stderr
        assert f"loaded image {tag} ({server_image})" in result.stdout
        assert docker_client.images.get(tag).id == server_image
    finally:
        remove_image_tag(docker_client, unpinned)
        remove_image(docker_client, f"{unpinned}-k{key_id(vendor.key.public_key())}")  # what pack pinned
    size_mib = tarball.stat().st_size / 2**20
    timings = {
        "pack_s": pack_s,
        "extract_verify_s": extract_s,
        "docker_load_s": load_s,
        "download_sh_s": download_s,
    }
    for key, value in {**timings, "package_mib": size_mib}.items():
        record_property(key, round(value, 1))
    print(f"full package {size_mib:.0f} MiB: " + ", ".join(f"{k} {v:.1f}" for k, v in timings.items()))
    shutil.rmtree(root)


def remove_image_tag(client: DockerClient, tag: str) -> None:
    import docker

    with contextlib.suppress(docker.errors.ImageNotFound):
        client.images.remove(tag, noprune=True)
