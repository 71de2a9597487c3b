"""Fixtures for end-to-end tests on the real Docker Engine: skipped where none is reachable,
except in CI (CI=true), where a missing engine fails them."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import TYPE_CHECKING

import pytest

from inferpack.deploy import image

if TYPE_CHECKING:
    from docker import DockerClient


@pytest.fixture(scope="session")
def docker_client() -> Iterator[DockerClient]:
    try:
        client = image.docker_client()
    except image.ImageBuildError as exc:
        if os.environ.get("CI", "").lower() == "true":  # a green CI must mean the Docker paths ran
            pytest.fail(f"CI=true and no Docker Engine: {exc}", pytrace=False)
        pytest.skip(str(exc))
    yield client
    client.close()


@pytest.fixture(scope="session")
def server_image(docker_client: DockerClient) -> str:
    """The server image's id: built once per session, or reused while its inputs are unchanged.

    A cold build (base rootfs, wheels, image) takes 2-4 minutes and needs root for the
    base; `--log-cli-level=INFO` shows its steps and timings.
    """
    return image.build_server_image(docker_client)
