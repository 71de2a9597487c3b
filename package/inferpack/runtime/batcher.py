"""Dynamic batching: concurrent requests are gathered into one engine run.

Requests wait in a queue (the server's admission bounds how many). One worker takes the
first waiting sample, then gathers more until ``max_batch_size`` or until ``max_delay_s``
has passed since it took the first, and runs the batch on a dedicated thread (the event
loop must never block). Up to ``max_concurrent_batches`` batches run at once, each on its
own thread: 1 (the default) for engines that are not thread-safe, 2 for a GPU engine with
two streams, so one batch's copies overlap the other's compute. While the batches run, new
requests pile up, so under load batches fill on their own without waiting.

Background work (batch jobs) has a lane of its own, ``submit_background``: a background batch
starts only when no online request waits or runs and none has arrived for ``quiet_s`` (on a
CPU, a batch running beside an online one takes its cores), is never mixed into an online
batch, and holds at most ``max_concurrent_batches - 1`` run slots (one when there is one), so an
online request finds a slot free, or waits for at most one background batch. Background
batches run on threads of their own at the lowest CPU priority (nice 19), so on a busy CPU the
online work keeps its cores and the job gets what is left.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from inferpack.errors import ModelUnavailable

log = logging.getLogger("inferpack.batcher")

RunBatch = Callable[[np.ndarray], np.ndarray]  # batch in, output with one row per sample out
BatchObserver = Callable[[int, float], None]


def lowest_priority() -> None:
    """Makes the calling thread the last in line for the CPU (Linux: threads have their own nice)."""
    with contextlib.suppress(OSError, AttributeError):
        os.setpriority(os.PRIO_PROCESS, threading.get_native_id(), 19)


@dataclass(eq=False)
class _Pending:
    sample: np.ndarray
    future: asyncio.Future[np.ndarray] = field(repr=False)


class DynamicBatcher:
    """``submit`` one preprocessed sample, get back its row of the model output."""

    def __init__(
        self,
        run_batch: RunBatch,
        *,
        max_batch_size: int,
        max_delay_s: float,
        on_batch: BatchObserver | None = None,
        max_concurrent_batches: int = 1,
    ) -> None:
        self._run_batch = run_batch
        self.max_batch_size = max_batch_size
        self._max_delay_s = max_delay_s
        self._queue: asyncio.Queue[_Pending] = asyncio.Queue()
        self._on_batch = on_batch
        # One thread per batch in flight: with one, the engine runs batches strictly in turn.
        self.max_concurrent_batches = max(1, max_concurrent_batches)
        self._executor = ThreadPoolExecutor(
            max_workers=self.max_concurrent_batches, thread_name_prefix="inferpack-engine"
        )
        self._free = asyncio.Semaphore(self.max_concurrent_batches)
        self._running: set[asyncio.Task[None]] = set()
        self._worker: asyncio.Task[None] | None = None
        self._background: asyncio.Queue[_Pending] = asyncio.Queue()  # the job runner bounds it
        self._background_slots = max(1, self.max_concurrent_batches - 1)
        self._background_running = 0
        self._background_executor = ThreadPoolExecutor(
            max_workers=self._background_slots,
            thread_name_prefix="inferpack-engine-bg",
            initializer=lowest_priority,
        )
        self._online_running = 0
        self._online_seen = 0.0  # monotonic time an online request last arrived or finished
        self.quiet_s = max(0.01, 4 * max_delay_s)
        self._wake = asyncio.Event()  # something was queued, or a background slot came free

    @property
    def queue_depth(self) -> int:
        return self._queue.qsize()

    def start(self) -> None:
        self._worker = asyncio.get_running_loop().create_task(self._work(), name="inferpack-batcher")

    async def stop(self) -> None:
        """Stops after the batches in progress (their requests are answered); requests still
        queued are refused."""
        if self._worker is not None:
            self._worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._worker
        if self._running:
            await asyncio.gather(*self._running, return_exceptions=True)
        for queue in (self._queue, self._background):
            while not queue.empty():
                pending = queue.get_nowait()
                if not pending.future.done():
                    pending.future.set_exception(ModelUnavailable("server is shutting down"))
        self._executor.shutdown(wait=True)
        self._background_executor.shutdown(wait=True)

    async def submit(self, sample: np.ndarray) -> np.ndarray:
        self._online_seen = time.monotonic()
        return await self._enqueue(self._queue, sample)

    async def submit_background(self, sample: np.ndarray) -> np.ndarray:
        """Like ``submit``, at background priority (see the module docstring)."""
        return await self._enqueue(self._background, sample)

    async def _enqueue(self, queue: asyncio.Queue[_Pending], sample: np.ndarray) -> np.ndarray:
        future: asyncio.Future[np.ndarray] = asyncio.get_running_loop().create_future()
        queue.put_nowait(_Pending(sample, future))
        self._wake.set()
        return await future

    async def _first(self) -> tuple[_Pending, bool]:
        """The next sample to start a batch with, online first; True when it is background work."""
        while True:
            if not self._queue.empty():
                return self._queue.get_nowait(), False
            quiet = time.monotonic() - self._online_seen
            ready = (
                not self._background.empty()
                and self._background_running < self._background_slots
                and self._online_running == 0
            )
            if ready and quiet >= self.quiet_s:
                return self._background.get_nowait(), True
            self._wake.clear()
            if not ready:
                await self._wake.wait()
            else:  # background work waits for online traffic to go quiet
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._wake.wait(), max(0.001, self.quiet_s - quiet))

    async def _gather(self) -> tuple[list[_Pending], bool]:
        first, background = await self._first()
        batch = [first]
        if background:  # no waiting for company: the job keeps enough queued
            while len(batch) < self.max_batch_size and not self._background.empty():
                batch.append(self._background.get_nowait())
            self._background_running += 1
            return batch, True
        deadline = time.monotonic() + self._max_delay_s
        while len(batch) < self.max_batch_size:
            if not self._queue.empty():
                batch.append(self._queue.get_nowait())
                continue
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            try:
                batch.append(await asyncio.wait_for(self._queue.get(), remaining))
            except TimeoutError:
                break
        # A client that went away no longer needs its answer: don't spend the engine on it.
        return [p for p in batch if not p.future.done()], False

    async def _work(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            # Gathering starts only when a run slot is free, so a batch keeps filling meanwhile.
            await self._free.acquire()
            try:
                batch, background = await self._gather()
            except BaseException:
                self._free.release()
                raise
            if not batch:
                self._free.release()
                continue
            if not background:
                self._online_running += 1
            task = loop.create_task(self._run(batch, background), name="inferpack-batch")
            self._running.add(task)
            task.add_done_callback(self._running.discard)

    async def _run(self, batch: list[_Pending], background: bool) -> None:
        try:
            inputs = np.stack([p.sample for p in batch])
            started = time.perf_counter()
            try:
                executor = self._background_executor if background else self._executor
                outputs = await asyncio.get_running_loop().run_in_executor(executor, self._run_batch, inputs)
            except Exception as exc:  # the engine failed this batch: every request in it gets 336000
                log.exception("engine failed on a batch of %d", len(batch))
                for pending in batch:
                    if not pending.future.done():
                        pending.future.set_exception(exc)
                return
            if self._on_batch is not None:
                self._on_batch(len(batch), time.perf_counter() - started)
            for index, pending in enumerate(batch):
                if not pending.future.done():
                    pending.future.set_result(outputs[index])
        finally:
            self._free.release()
            if background:
                self._background_running -= 1
            else:
                self._online_running -= 1
                self._online_seen = time.monotonic()
            self._wake.set()
