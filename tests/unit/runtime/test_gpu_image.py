"""The GPU image variant stays in step with the CPU image and leaves it as it was."""

from __future__ import annotations

import re
from pathlib import Path

from inferpack.deploy import image

PACKAGE = Path(__file__).resolve().parents[3] / "package"


def _pins(name: str) -> dict[str, str]:
    pins = {}
    for line in (PACKAGE / name).read_text().splitlines():
        if line and not line.startswith("#"):
            package, version = line.split("==")
            pins[package.lower()] = version
    return pins


def test_gpu_requirements_are_the_cpu_ones_with_gpu_runtimes() -> None:
    cpu, gpu = _pins("requirements.txt"), _pins("requirements-gpu.txt")
    assert "onnxruntime" not in gpu  # cannot be installed beside onnxruntime-gpu
    shared = {k: v for k, v in cpu.items() if k != "onnxruntime"}
    assert {k: gpu[k] for k in shared} == shared
    extra = set(gpu) - set(shared)
    assert {"onnxruntime-gpu", "tensorrt-cu13-bindings", "cuda-python", "nvidia-ml-py"} <= extra


def test_dockerfile_gpu_args_default_to_the_cpu_build() -> None:
    dockerfile = (PACKAGE / "Dockerfile").read_text()
    assert "ARG BASE_IMAGE=inferpack-base:bookworm-py3.11" in dockerfile
    assert re.findall(r"^ARG PYTHON=(\S+)$", dockerfile, re.M) == ["python3", "python3"]
    assert re.search(r"^ARG GPU_APT_PACKAGES=$", dockerfile, re.M)
    assert set(image.GPU_BUILD_ARGS) == {"PYTHON", "GPU_APT_PACKAGES"}
    assert image.GPU_BASE_IMAGE.startswith("nvidia/cuda:13.")
