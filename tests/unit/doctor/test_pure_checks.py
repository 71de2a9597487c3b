"""The pure verdicts: sample answers against the recorded one, disk usage against the
threshold, nvidia-smi's query output, and a crashing probe turned into a FAIL line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from inferpack.deploy.checks import Check
from inferpack.doctor import host_checks
from inferpack.doctor.host_checks import Usage, grade_disk, parse_gpu_query, usage
from inferpack.doctor.runner import _safely
from inferpack.doctor.service_checks import compare_answers

RECORDED: list[dict[str, Any]] = [{"name": "circle", "score": 0.9}, {"name": "square", "score": 0.08}]


def test_the_same_answer_within_tolerance() -> None:
    assert (
        compare_answers(RECORDED, [{"name": "circle", "score": 0.895}, {"name": "square", "score": 0.08}])
        is None
    )


@pytest.mark.parametrize(
    ("got", "says"),
    [
        ([{"name": "square", "score": 0.9}, {"name": "circle", "score": 0.08}],
         "result 1 is square 0.900, recorded at install: circle 0.900"),
        ([{"name": "circle", "score": 0.5}, {"name": "square", "score": 0.08}], "result 1 is circle 0.500"),
        ([{"name": "circle", "score": 0.9}], "1 result(s), 2 recorded at install"),
    ],
)  # fmt: skip
def test_a_different_answer_says_how(got: list[dict[str, Any]], says: str) -> None:
    assert says in (compare_answers(RECORDED, got) or "")


def test_detection_boxes_are_compared_in_pixels() -> None:
    box = {"left": 10, "top": 20, "width": 100, "height": 50}
    recorded = [{"name": "car", "score": 0.9, "location": box}]
    assert compare_answers(recorded, [{"name": "car", "score": 0.9, "location": {**box, "left": 11}}]) is None
    moved = compare_answers(recorded, [{"name": "car", "score": 0.9, "location": {**box, "left": 40}}])
    assert moved is not None and "at 40,20 100x50" in moved and "at 10,20 100x50" in moved


@pytest.mark.parametrize(
    ("used", "inodes", "status"),
    [
        (50.0, 3.0, "PASS"),
        (85.0, 3.0, "WARN"),
        (95.0, 3.0, "FAIL"),
        (50.0, 97.0, "FAIL"),
        (50.0, None, "PASS"),
    ],
)
def test_disk_against_the_threshold(used: float, inodes: float | None, status: str) -> None:
    result = grade_disk("work root", Path("/w"), Usage(used, 2**30, inodes), 90, "free space")
    assert result.status == status
    assert result.found.startswith(f"work root /w: {used:.0f}% used (1.0 GiB free)")
    assert result.next_step == (
        "" if status == "PASS" else "free space" if status == "FAIL" else result.next_step
    )


def test_usage_of_a_real_folder(tmp_path: Path) -> None:
    found = usage(tmp_path)
    assert 0 <= found.used_percent <= 100 and found.free_bytes > 0


def test_nvidia_smi_query_output() -> None:
    text = "0, NVIDIA H200, 140000, 143771\n1, NVIDIA H200, 10, 143771\nNo devices were found\n"
    gpus = parse_gpu_query(text)
    assert [(g.index, g.name, g.free_mib, g.total_mib) for g in gpus] == [
        (0, "NVIDIA H200", 140000, 143771),
        (1, "NVIDIA H200", 10, 143771),
    ]


def test_a_probe_that_crashes_is_one_fail_line() -> None:
    def broken() -> None:
        raise KeyError("State")

    [result] = _safely("cats", "container", broken)
    assert result.status == "FAIL" and result.name == "container"
    assert "KeyError" in result.found and "bug in the doctor" in result.next_step


def test_gpu_on_a_cpu_service_passes_whatever_the_host_has() -> None:
    [result] = host_checks.gpu("cats", None, docker=True)  # this host's real nvidia-smi, or none
    assert result.status == "PASS" and result.found.startswith("not a GPU service: needs no NVIDIA driver")


def test_gpu_service_with_its_gpu_nearly_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_checks, "query_gpus", lambda: parse_gpu_query("0, NVIDIA H200, 100, 143771\n"))
    monkeypatch.setattr(
        host_checks.checks, "check_gpu", lambda index: Check("gpu", True, "GPU 0: NVIDIA H200")
    )
    results = {r.name: r for r in host_checks.gpu("cats", 0, docker=False)}
    assert results["gpu"].status == "PASS"
    assert (
        results["gpu-memory"].status == "WARN" and "100 MiB free of 143771 MiB" in results["gpu-memory"].found
    )


def test_gpu_service_without_a_driver_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(host_checks, "query_gpus", lambda: "no NVIDIA driver (nvidia-smi not found)")
    monkeypatch.setattr(
        host_checks.checks,
        "check_gpu",
        lambda index: Check("gpu", False, "nvidia-smi cannot run", "install it"),
    )
    [result] = host_checks.gpu("cats", 0, docker=False)
    assert result.status == "FAIL" and result.next_step == "install the NVIDIA driver, or fix --gpu"
