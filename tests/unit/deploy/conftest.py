"""Fixtures for the deploy package tests: vendor keys, a real model, a package built once, and
the front on a free loopback port."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from tests.onnx_models import colour_classifier
from tests.support.front import StartFront, free_port
from tests.support.packages import Vendor, fake_wheels, make_package, make_vendor, unpack

from inferpack.deploy.front import FrontConfig, RunningFront, start_front
from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.manifest import Manifest
from inferpack.deploy.routes import routes_path


@pytest.fixture(scope="session")
def vendor(tmp_path_factory: pytest.TempPathFactory) -> Vendor:
    return make_vendor(tmp_path_factory.mktemp("vendor"))


@pytest.fixture(scope="session")
def other_vendor(tmp_path_factory: pytest.TempPathFactory) -> Vendor:
    return make_vendor(tmp_path_factory.mktemp("other-vendor"))


@pytest.fixture(scope="session")
def model_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return colour_classifier(tmp_path_factory.mktemp("bundle") / "colour")


@pytest.fixture(scope="session")
def wheels(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    return fake_wheels(tmp_path_factory.mktemp("wheels") / "wheels")


@pytest.fixture(scope="session")
def built(
    tmp_path_factory: pytest.TempPathFactory, vendor: Vendor, model_dir: Path, wheels: list[Path]
) -> tuple[Path, Manifest]:
    """A full package (fake image file) and its manifest, built once: tests copy, never change it."""
    return make_package(tmp_path_factory.mktemp("packages"), vendor, model_dir, wheels)


@pytest.fixture
def package(built: tuple[Path, Manifest]) -> Path:
    return built[0]


@pytest.fixture
def unpacked(package: Path, tmp_path: Path) -> Path:
    return unpack(package, tmp_path / "unpacked")


@pytest.fixture
def layout(tmp_path: Path) -> ServiceLayout:
    return ServiceLayout(tmp_path, "demo")


@pytest.fixture
async def front(layout: ServiceLayout) -> AsyncIterator[StartFront]:
    """Starts the front on a free port (settings overridable); returns its base URL."""
    running: list[RunningFront] = []

    async def start(**settings: Any) -> str:
        settings.setdefault("poll_interval_s", 0.05)
        config = FrontConfig(routes_path(layout), free_port(), host="127.0.0.1", **settings)
        running.append(await start_front(config))
        return f"http://127.0.0.1:{config.port}"

    yield start
    for item in running:
        await item.stop()
