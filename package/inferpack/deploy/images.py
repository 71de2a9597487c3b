"""The server image's way through a deploy package: found (or built) and ``docker save``-d by the
vendor; ``docker load``-ed on the operator's host only once the whole package verifies.

Loading checks the package right before it reads the image file, then checks that what Docker
loaded has the image id the signed manifest names: the id is the digest of the image config,
which lists the digest of every layer, and Docker checks the layers against it while loading.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

from inferpack.deploy import image
from inferpack.deploy.manifest import Manifest, PackageError
from inferpack.deploy.verify import verify_package
from inferpack.license.keys import key_id, load_public_key
from inferpack.license.pinned import IMAGE_LABEL, IMAGE_PATH, PINNED_KEY_NAME

if TYPE_CHECKING:
    from docker import DockerClient


def resolve_image(client: DockerClient, ref: str | None) -> tuple[str, str]:
    """``(tag, id)`` of the image a package will carry or require.

    ``ref`` None: the server image built from this source tree (``build_server_image``, cached),
    under its content-keyed tag ``inferpack-server:<version>-<build key>``.
    """
    import docker

    if ref is None:
        found = client.images.get(image.build_server_image(client))
        labels = found.labels
        version, key = labels["org.opencontainers.image.version"], labels[image.BUILD_KEY_LABEL]
        tag = f"{image.SERVER_REPOSITORY}:{version}-{key}"
    else:
        tag = ref if ":" in ref.rpartition("/")[2] else f"{ref}:latest"
        try:
            found = client.images.get(tag)
        except docker.errors.ImageNotFound:
            raise PackageError(f"image {tag} is not in the local Docker Engine") from None
    if tag not in found.tags:  # e.g. an image id was given: the installer needs a name
        raise PackageError(f"give the image as repository:tag, not {ref} (its tags: {found.tags})")
    return tag, str(found.id)


def pin_image(client: DockerClient, tag: str, vendor_pem: bytes) -> tuple[str, str]:
    """``(tag, id)`` of ``tag`` with the vendor key baked in where the server reads its pinned key,
    and labelled with its id: one small layer, tagged ``TAG-kKEYID`` and reused while it exists
    (so update packages of the same release name the same image id)."""
    import docker

    kid = key_id(load_public_key(vendor_pem))
    repository, _, base = tag.rpartition(":")
    pinned = f"{repository}:{base}-k{kid}"
    with contextlib.suppress(docker.errors.ImageNotFound):
        found = client.images.get(pinned)
        if found.labels.get(IMAGE_LABEL) == kid:
            return pinned, str(found.id)
    with tempfile.TemporaryDirectory(prefix="inferpack-pin-") as tmp:
        context = Path(tmp)
        (context / PINNED_KEY_NAME).write_bytes(vendor_pem)
        os.utime(context / PINNED_KEY_NAME, (0, 0))
        (context / "Dockerfile").write_text(f"FROM {tag}\nCOPY {PINNED_KEY_NAME} {IMAGE_PATH}\n")
        image._docker_build(client, context, pinned, {}, {IMAGE_LABEL: kid})
    return pinned, str(client.images.get(pinned).id)


def save_image(client: DockerClient, tag: str, dest: Path) -> None:
    """``docker save TAG > dest``: the tarball keeps the tag, so ``docker load`` restores it."""
    with dest.open("xb") as out:
        for chunk in client.api.get_image(tag):
            out.write(chunk)


def load_package_image(
    root: Path, *, pinned_key: Path | None, in_place: bool, client: DockerClient | None = None
) -> str:
    """Verifies the package at ``root`` right before reading its image, then ``ensure_loaded``."""
    return ensure_loaded(root, verify_package(root, pinned_key=pinned_key, in_place=in_place), client)


def ensure_loaded(root: Path, manifest: Manifest, client: DockerClient | None = None) -> str:
    """Makes sure Docker has the image of the package at ``root``, which the caller has just
    verified (``manifest``); says what it did, or PackageError.

    Loads the image file of a full package unless Docker already has that image id (then only
    the tag is restored); for an update package, only checks that the image it needs is there.
    """
    import docker

    client = client or image.docker_client()
    ref = manifest.image
    repository, _, tag = ref.tag.rpartition(":")
    try:
        present = client.images.get(ref.id)
    except docker.errors.ImageNotFound:
        present = None
    if present is not None:
        present.tag(repository, tag)
        if ref.file is None:
            return f"image {ref.tag} ({ref.id}), which this update package needs, is in Docker"
        return f"image {ref.tag} ({ref.id}) is already in Docker: not loaded again"
    if ref.file is None:
        raise PackageError(
            f"this update package needs the image {ref.tag} ({ref.id}), which Docker does not have: "
            "load it first with `bash original/download.sh` in the full package of that release"
        )
    started = time.monotonic()
    try:
        with (root / ref.file).open("rb") as stream:
            client.images.load(stream)
        loaded = client.images.get(ref.tag)
    except docker.errors.DockerException as exc:
        raise PackageError(f"docker load of {ref.file} failed: {exc}") from None
    if loaded.id != ref.id:
        # Only if the file changed between the check and the load: do not leave the tag on it.
        client.images.remove(ref.tag, noprune=True)
        raise PackageError(f"Docker loaded {ref.tag} as {loaded.id}, but the manifest says {ref.id}")
    return f"loaded image {ref.tag} ({ref.id}) in {time.monotonic() - started:.1f}s"
