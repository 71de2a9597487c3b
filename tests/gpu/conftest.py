"""GPU tests: marked ``gpu`` and skipped unless an NVIDIA GPU is visible (``nvidia-smi -L``).

They need the GPU packages of requirements-gpu.txt in the venv and the TensorRT libraries on
the loader path: ``tests/gpu/run_on_gpu.sh`` sets that up and runs them.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from tests.integration.conftest import start_server, wait_ready

__all__ = ["start_server", "wait_ready"]


def _visible_gpu() -> str | None:
    if shutil.which("nvidia-smi") is None:
        return "nvidia-smi not found"
    try:
        listing = subprocess.run(["nvidia-smi", "-L"], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nvidia-smi failed: {exc}"
    if listing.returncode != 0 or not listing.stdout.startswith("GPU "):
        return f"no NVIDIA GPU visible: {listing.stdout.strip() or listing.stderr.strip()}"
    return None


_WHY_NOT = _visible_gpu()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        if "tests/gpu/" in item.nodeid.replace("\\", "/") or item.nodeid.startswith("tests/gpu"):
            item.add_marker(pytest.mark.gpu)
            if _WHY_NOT is not None:
                item.add_marker(pytest.mark.skip(reason=_WHY_NOT))
