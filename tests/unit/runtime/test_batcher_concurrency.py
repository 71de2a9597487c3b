"""The batcher runs up to ``max_concurrent_batches`` batches at once (GPU engines with two
streams), and strictly one at a time by default."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from inferpack.runtime.batcher import DynamicBatcher


class Tracker:
    def __init__(self, rendezvous: threading.Barrier | None = None) -> None:
        self.lock = threading.Lock()
        self.running = 0
        self.most = 0
        self.rendezvous = rendezvous

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        with self.lock:
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            if self.rendezvous is not None:
                self.rendezvous.wait(timeout=10)  # both batches must be inside at once
            else:
                threading.Event().wait(0.02)
            return batch * 2
        finally:
            with self.lock:
                self.running -= 1


async def _submit_all(batcher: DynamicBatcher, count: int) -> list[np.ndarray]:
    batcher.start()
    try:
        return await asyncio.gather(*(batcher.submit(np.full(2, i, np.float32)) for i in range(count)))
    finally:
        await batcher.stop()


async def test_two_batches_overlap_with_two_slots() -> None:
    tracker = Tracker(threading.Barrier(2))
    batcher = DynamicBatcher(tracker, max_batch_size=1, max_delay_s=0, max_concurrent_batches=2)
    results = await _submit_all(batcher, 4)
    assert tracker.most == 2
    assert [r.tolist() for r in results] == [[2 * i, 2 * i] for i in range(4)]


async def test_default_runs_batches_one_at_a_time() -> None:
    tracker = Tracker()
    batcher = DynamicBatcher(tracker, max_batch_size=1, max_delay_s=0)
    results = await _submit_all(batcher, 6)
    assert tracker.most == 1
    assert [r[0] for r in results] == [2 * i for i in range(6)]


async def test_stop_lets_the_batches_in_flight_answer() -> None:
    release = threading.Event()

    def slow(batch: np.ndarray) -> np.ndarray:
        release.wait(timeout=10)
        return batch

    batcher = DynamicBatcher(slow, max_batch_size=1, max_delay_s=0, max_concurrent_batches=2)
    batcher.start()
    pending = [asyncio.ensure_future(batcher.submit(np.full(1, i, np.float32))) for i in range(2)]
    await asyncio.sleep(0.05)
    stopping = asyncio.ensure_future(batcher.stop())
    await asyncio.sleep(0.05)
    release.set()
    await stopping
    assert [p.result()[0] for p in pending] == [0, 1]
