"""The background lane: job samples run only when no online request waits, never in an online
batch, and never hold every run slot."""

from __future__ import annotations

import asyncio
import threading

import numpy as np

from inferpack.runtime.batcher import DynamicBatcher

ONLINE, BACKGROUND = 1.0, 2.0  # each sample carries its lane, so a batch shows what it mixed


class Recorder:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.batches: list[list[float]] = []
        self.running: list[list[float]] = []
        self.most_background_at_once = 0

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        lanes = batch[:, 0].tolist()
        with self.lock:
            self.batches.append(lanes)
            self.running.append(lanes)
            background = sum(BACKGROUND in r for r in self.running)
            self.most_background_at_once = max(self.most_background_at_once, background)
        threading.Event().wait(0.01)
        with self.lock:
            self.running.remove(lanes)
        return batch


async def test_online_requests_jump_the_background_queue() -> None:
    recorder = Recorder()
    batcher = DynamicBatcher(recorder, max_batch_size=4, max_delay_s=0.001)
    batcher.start()
    try:
        jobs = [
            asyncio.ensure_future(batcher.submit_background(np.array([BACKGROUND, i]))) for i in range(40)
        ]
        await asyncio.sleep(0.015)  # the first background batches are running
        started = len(recorder.batches)
        online = await asyncio.gather(*(batcher.submit(np.array([ONLINE, i])) for i in range(3)))
        pending_jobs = sum(not j.done() for j in jobs)
        results = await asyncio.gather(*jobs)
    finally:
        await batcher.stop()
    assert [row[1] for row in results] == list(range(40))  # every job sample answered, its own row
    assert [row[1] for row in online] == [0, 1, 2]
    assert pending_jobs > 0  # online finished while background work was still queued
    assert all(len(set(b)) == 1 for b in recorder.batches), recorder.batches  # never mixed
    first_online = next(i for i, b in enumerate(recorder.batches) if ONLINE in b)
    # Before it: the batches started, and at most one more that was being handed to its thread.
    assert first_online <= started + 1, (started, recorder.batches)


async def test_background_leaves_a_slot_for_online_work() -> None:
    recorder = Recorder()
    batcher = DynamicBatcher(recorder, max_batch_size=2, max_delay_s=0, max_concurrent_batches=3)
    batcher.start()
    try:
        await asyncio.gather(*(batcher.submit_background(np.array([BACKGROUND, i])) for i in range(30)))
    finally:
        await batcher.stop()
    assert recorder.most_background_at_once == 2  # 3 slots: 2 for jobs, 1 always free for online
