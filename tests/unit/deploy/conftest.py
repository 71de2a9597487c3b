"""Fixtures for the deploy package tests: vendor keys, a real model, and a package built once."""

from __future__ import annotations

from pathlib import Path

import pytest
from tests.onnx_models import colour_classifier
from tests.support.packages import Vendor, fake_wheels, make_package, make_vendor, unpack

from inferpack.deploy.manifest import Manifest


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
