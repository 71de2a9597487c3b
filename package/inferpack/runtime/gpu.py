"""NVIDIA GPU discovery through NVML (the optional ``nvidia-ml-py`` package, module ``pynvml``).

Without that package, or without a driver, there is no GPU as far as inferpack is concerned:
``auto`` then never picks a GPU backend. NVML numbers the GPUs this process can see: inside a
container started with ``--gpu IDX`` that is the one GPU passed in, as index 0.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass
from typing import Any

log = logging.getLogger("inferpack.runtime")


@dataclass(frozen=True)
class GpuInfo:
    index: int
    name: str  # e.g. "NVIDIA H200"
    uuid: str
    compute_capability: tuple[int, int]
    memory_bytes: int
    driver_version: str

    @property
    def sm(self) -> str:
        """The compute capability as TensorRT and nvcc spell it, e.g. "sm_90"."""
        return f"sm_{self.compute_capability[0]}{self.compute_capability[1]}"

    def describe(self) -> dict[str, Any]:
        return {
            "index": self.index,
            "name": self.name,
            "compute_capability": f"{self.compute_capability[0]}.{self.compute_capability[1]}",
            "memory_mib": self.memory_bytes >> 20,
            "driver": self.driver_version,
        }


class NoGpu(Exception):
    """Why no GPU can be listed: NVML missing, no driver, or none present."""


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)  # older pynvml returns bytes


def list_gpus() -> list[GpuInfo]:
    """Every GPU NVML reports; NoGpu (with the reason) when NVML cannot be used at all."""
    try:
        import pynvml
    except ImportError as exc:
        raise NoGpu("nvidia-ml-py (pynvml) is not installed") from exc
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        raise NoGpu(f"NVML cannot start (no NVIDIA driver?): {exc}") from exc
    try:
        driver = _text(pynvml.nvmlSystemGetDriverVersion())
        gpus = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
            gpus.append(
                GpuInfo(
                    index=index,
                    name=_text(pynvml.nvmlDeviceGetName(handle)),
                    uuid=_text(pynvml.nvmlDeviceGetUUID(handle)),
                    compute_capability=(int(major), int(minor)),
                    memory_bytes=int(pynvml.nvmlDeviceGetMemoryInfo(handle).total),
                    driver_version=driver,
                )
            )
        return gpus
    except pynvml.NVMLError as exc:
        raise NoGpu(f"NVML failed listing GPUs: {exc}") from exc
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()


def find_gpu(index: int) -> tuple[GpuInfo | None, str]:
    """The GPU at ``index`` and "", or None and why it is not there."""
    try:
        gpus = list_gpus()
    except NoGpu as exc:
        return None, str(exc)
    if index < len(gpus):
        return gpus[index], ""
    return None, f"GPU {index} asked, NVML sees {len(gpus)}"
