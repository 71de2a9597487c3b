"""GPU discovery: none without nvidia-ml-py (this host), and how NVML's answers are read.

``StandInNvml`` is an in-process stand-in for the ``pynvml`` module with canned answers; it
checks the parsing only. Real NVML runs in tests/gpu on a GPU machine.
"""

from __future__ import annotations

import importlib.util
import types

import pytest

from inferpack.runtime import gpu


class StandInNvmlError(Exception):
    pass


def stand_in_nvml(*, fail_init: bool = False) -> types.ModuleType:
    module = types.ModuleType("pynvml")

    def init() -> None:
        if fail_init:
            raise StandInNvmlError("Driver Not Loaded")

    memory = types.SimpleNamespace(total=141 << 30)
    module.NVMLError = StandInNvmlError  # type: ignore[attr-defined]
    module.nvmlInit = init  # type: ignore[attr-defined]
    module.nvmlShutdown = lambda: None  # type: ignore[attr-defined]
    module.nvmlSystemGetDriverVersion = lambda: b"580.1"  # type: ignore[attr-defined]  # old pynvml: bytes
    module.nvmlDeviceGetCount = lambda: 2  # type: ignore[attr-defined]
    module.nvmlDeviceGetHandleByIndex = lambda i: i  # type: ignore[attr-defined]
    module.nvmlDeviceGetName = lambda h: f"Stand-in GPU {h}"  # type: ignore[attr-defined]
    module.nvmlDeviceGetUUID = lambda h: f"GPU-{h}"  # type: ignore[attr-defined]
    module.nvmlDeviceGetCudaComputeCapability = lambda h: (9, h)  # type: ignore[attr-defined]
    module.nvmlDeviceGetMemoryInfo = lambda h: memory  # type: ignore[attr-defined]
    return module


@pytest.mark.skipif(importlib.util.find_spec("pynvml") is not None, reason="pynvml is installed here")
def test_without_nvidia_ml_py_there_is_no_gpu() -> None:
    found, why = gpu.find_gpu(0)
    assert found is None and "nvidia-ml-py (pynvml) is not installed" in why


def test_nvml_answers_are_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "pynvml", stand_in_nvml())
    gpus = gpu.list_gpus()
    assert [g.name for g in gpus] == ["Stand-in GPU 0", "Stand-in GPU 1"]
    assert gpus[1].compute_capability == (9, 1) and gpus[1].sm == "sm_91"
    assert gpus[0].driver_version == "580.1"
    assert gpus[0].describe()["memory_mib"] == 141 << 10
    assert gpu.find_gpu(1)[0] == gpus[1]
    found, why = gpu.find_gpu(2)
    assert found is None and why == "GPU 2 asked, NVML sees 2"


def test_nvml_without_a_driver_is_no_gpu(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(__import__("sys").modules, "pynvml", stand_in_nvml(fail_init=True))
    found, why = gpu.find_gpu(0)
    assert found is None and "Driver Not Loaded" in why
