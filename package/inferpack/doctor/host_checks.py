"""The machine under the services: disk and inodes, memory, GPU.

Disk is judged by a ``threshold`` (percent used, blocks or inodes): over it FAIL, within
``WARN_MARGIN`` points of it WARN. A full work root stops logs and the clock guard's writes
(the license then fails closed); a full Docker root stops containers from starting.
"""

from __future__ import annotations

import os
import subprocess
from dataclasses import dataclass
from pathlib import Path

import psutil  # type: ignore[import-untyped]

from inferpack.deploy import checks
from inferpack.doctor.result import HOST, Result, failed, from_check, passed, warned

DEFAULT_DISK_THRESHOLD = 90  # percent used
WARN_MARGIN = 10
MIN_AVAILABLE_MEMORY = 512 * 2**20
GPU_MEMORY_WARN = 0.10  # free fraction under which a GPU service is warned about


@dataclass(frozen=True)
class Usage:
    used_percent: float
    free_bytes: int
    inodes_used_percent: float | None  # None where the filesystem has no fixed inode table


def usage(path: Path) -> Usage:
    """As ``df`` counts it: used / (used + available to unprivileged users)."""
    stat = os.statvfs(path)
    used = (stat.f_blocks - stat.f_bfree) * stat.f_frsize
    available = stat.f_bavail * stat.f_frsize
    blocks = 100.0 * used / (used + available) if used + available else 0.0
    inodes = None
    if stat.f_files:  # btrfs and some others report 0: inodes never run out there
        inodes = 100.0 * (stat.f_files - stat.f_ffree) / (stat.f_files - stat.f_ffree + stat.f_favail)
    return Usage(blocks, available, inodes)


def grade_disk(what: str, path: Path, found: Usage, threshold: int, remedy: str) -> Result:
    """Pure: the verdict for one filesystem's usage against the threshold."""
    inodes = (
        f", inodes {found.inodes_used_percent:.0f}% used" if found.inodes_used_percent is not None else ""
    )
    detail = (
        f"{what} {path}: {found.used_percent:.0f}% used ({found.free_bytes / 2**30:.1f} GiB free)"
        f"{inodes}; threshold {threshold}%"
    )
    worst = max(found.used_percent, found.inodes_used_percent or 0.0)
    if worst > threshold:
        return failed(HOST, "disk", detail, remedy)
    if worst > threshold - WARN_MARGIN:
        return warned(HOST, "disk", detail, f"space runs short soon: {remedy}")
    return passed(HOST, "disk", detail)


def disk(what: str, path: Path, threshold: int, remedy: str) -> Result:
    try:
        found = usage(path)
    except OSError as exc:
        return failed(
            HOST, "disk", f"{what} {path}: cannot stat ({exc.strerror})", f"check that {path} exists"
        )
    return grade_disk(what, path, found, threshold, remedy)


def memory() -> Result:
    mem = psutil.virtual_memory()
    detail = f"{mem.available / 2**30:.1f} GiB available of {mem.total / 2**30:.1f} GiB"
    remedy = "stop programs that are not needed (top -o %MEM), or add memory to this machine"
    if mem.available < MIN_AVAILABLE_MEMORY:
        return failed(HOST, "memory", detail, remedy)
    if mem.available < 0.1 * mem.total:
        return warned(HOST, "memory", detail, remedy)
    return passed(HOST, "memory", detail)


@dataclass(frozen=True)
class GpuMemory:
    index: int
    name: str
    free_mib: int
    total_mib: int


def parse_gpu_query(text: str) -> list[GpuMemory]:
    """``nvidia-smi --query-gpu=index,name,memory.free,memory.total --format=csv,noheader,nounits``."""
    gpus = []
    for line in text.splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) == 4 and parts[0].isdigit() and parts[2].isdigit() and parts[3].isdigit():
            gpus.append(GpuMemory(int(parts[0]), parts[1], int(parts[2]), int(parts[3])))
    return gpus


def query_gpus() -> list[GpuMemory] | str:
    """The GPUs the driver shows, or why none can be listed."""
    try:
        done = subprocess.run(
            [
                "nvidia-smi",
                "--query-gpu=index,name,memory.free,memory.total",
                "--format=csv,noheader,nounits",
            ],
            capture_output=True,
            text=True,
            timeout=30,
        )
    except FileNotFoundError:
        return "no NVIDIA driver (nvidia-smi not found)"
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"nvidia-smi cannot run: {exc}"
    if done.returncode != 0:
        return f"nvidia-smi failed: {(done.stderr or done.stdout).strip()[:200]}"
    return parse_gpu_query(done.stdout)


def gpu(scope: str, index: int | None, docker: bool) -> list[Result]:
    """A CPU service (``index`` None) needs no GPU and no driver: PASS whatever is found."""
    found = query_gpus()
    if index is None:
        present = (
            f" (present: {', '.join(f'{g.index}: {g.name}' for g in found)})"
            if isinstance(found, list) and found
            else ""
        )
        return [passed(scope, "gpu", f"not a GPU service: needs no NVIDIA driver{present}")]
    results = [from_check(scope, checks.check_gpu(index), "install the NVIDIA driver, or fix --gpu")]
    if docker:
        results.append(from_check(scope, checks.check_nvidia_runtime()))
    if isinstance(found, list):
        for g in found:
            if g.index == index:
                detail = f"GPU {index} ({g.name}): {g.free_mib} MiB free of {g.total_mib} MiB"
                if g.free_mib < GPU_MEMORY_WARN * g.total_mib:
                    results.append(
                        warned(
                            scope,
                            "gpu-memory",
                            detail,
                            "other programs use this GPU: nvidia-smi lists them; stop them",
                        )
                    )
                else:
                    results.append(passed(scope, "gpu-memory", detail))
    return results
