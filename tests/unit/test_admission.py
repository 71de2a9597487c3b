"""The admission limit settles where the time in the server meets the target, under real time."""

from __future__ import annotations

import asyncio
import time

import pytest

from inferpack.errors import ModelUnavailable
from inferpack.server.admission import Admission

WORKERS = 4  # an "engine" that serves 4 at once ...
SERVICE_S = 0.01  # ... 10 ms each: 400 per second
TARGET_S = 0.05  # so 20 admitted is what it answers within the target (Little's law)


async def overload(admission: Admission, clients: int, seconds: float) -> tuple[list[float], int]:
    """``clients`` in a closed loop, each sending again at once whatever the answer; returns the
    time each admitted request spent in the server, and how many were refused."""
    engine = asyncio.Semaphore(WORKERS)
    times: list[float] = []
    refused = 0
    deadline = time.monotonic() + seconds

    async def client() -> None:
        nonlocal refused
        while time.monotonic() < deadline:
            try:
                with admission.slot():
                    started = time.monotonic()
                    async with engine:
                        await asyncio.sleep(SERVICE_S)
                    times.append(time.monotonic() - started)
            except ModelUnavailable:
                refused += 1
                await asyncio.sleep(0.002)

    await asyncio.gather(*(client() for _ in range(clients)))
    return times, refused


async def test_the_limit_falls_to_what_is_answered_within_the_target() -> None:
    admission = Admission(max_inflight=200, latency_target_s=TARGET_S, floor=WORKERS)
    await overload(admission, clients=150, seconds=1.5)  # settling
    times, refused = await overload(admission, clients=150, seconds=1.0)
    settled = sorted(times)[len(times) // 2]
    print(f"limit {admission.limit:.1f}, median time in server {settled * 1000:.0f} ms, {refused} refused")
    assert 8 <= admission.limit <= 40  # 20 ideally; the machine is shared
    assert settled <= 2 * TARGET_S
    assert refused > 0 and admission.admitted == 0


async def test_a_light_load_is_never_refused() -> None:
    admission = Admission(max_inflight=200, latency_target_s=TARGET_S, floor=WORKERS)
    times, refused = await overload(admission, clients=WORKERS, seconds=1.0)
    assert refused == 0 and len(times) > 20 and admission.limit == 200


async def test_however_short_the_target_a_full_batch_is_admitted() -> None:
    admission = Admission(max_inflight=200, latency_target_s=0.001, floor=8)
    await overload(admission, clients=50, seconds=1.5)
    assert admission.limit == 8


def test_a_full_server_refuses_with_336100_naming_its_limit() -> None:
    admission = Admission(max_inflight=2, latency_target_s=TARGET_S)
    with admission.slot(), admission.slot(), pytest.raises(ModelUnavailable, match="limit of 2 requests"):
        admission.check()
    assert admission.admitted == 0
