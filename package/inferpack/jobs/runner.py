"""Runs jobs inside the server, on its model and batcher, at background priority.

One job at a time, oldest first, a running one (left by a restart) before any queued one.
Each image is read and decoded on a thread of the runner's own (the online decode pool stays
free), then goes through the batcher's background lane; a bounded number are in flight so the
lane stays fed. Finished lines are appended to the results log in small fsynced groups; at
each group the cancel marker is checked and job.json's count updated.

Resuming is what starting is: the images with a line are skipped. A corrupt image is that
image's result (an error line), never a failed job; a shutting-down batcher is neither: the
image gets no line and is done after the restart. Only one process runs jobs from a data folder
(an ``flock``): during ``update`` the new version's server takes over when the old one stops.
"""

from __future__ import annotations

import asyncio
import contextlib
import fcntl
import json
import logging
import os
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from inferpack.datasets.items import Dataset
from inferpack.datasets.store import DatasetStore
from inferpack.errors import InferpackError, ModelUnavailable, NotFound
from inferpack.fileio import write_atomic
from inferpack.jobs.records import Job
from inferpack.jobs.scoring import EVALUATION_FLOOR, report_paths, score, summary_of
from inferpack.jobs.store import JobStore
from inferpack.labeling.hard import NEAR_THRESHOLD
from inferpack.labeling.proposals import write_proposals
from inferpack.labeling.signals import answer_labels, image_stats, mirrored
from inferpack.model import Model
from inferpack.runtime.batcher import DynamicBatcher, lowest_priority

log = logging.getLogger("inferpack.jobs")

FLUSH_LINES = 32
FLUSH_S = 0.5
TOP_CLASSES = 5  # classification results kept per image: enough for top-5 accuracy


@dataclass
class Progress:
    """The running job's pace in this process (a resumed job counts from its restart)."""

    started: float = field(default_factory=time.monotonic)
    images: int = 0

    def rate(self) -> float:
        elapsed = time.monotonic() - self.started
        return self.images / elapsed if elapsed > 0 else 0.0


class _Cancelled(Exception):
    pass


class JobRunner:
    def __init__(
        self,
        jobs: JobStore,
        datasets: DatasetStore,
        model: Model,
        batcher: DynamicBatcher,
        *,
        paused: Callable[[], str | None] = lambda: None,
        poll_s: float = 1.0,
    ) -> None:
        """``paused``: why work must wait now (e.g. the license refuses), or None."""
        self.jobs, self.datasets, self.model, self.batcher = jobs, datasets, model, batcher
        self.paused, self.poll_s = paused, poll_s
        self.in_flight = batcher.max_batch_size * 2  # one batch running, the next one queued
        self.progress: dict[str, Progress] = {}
        self._decode = ThreadPoolExecutor(
            max_workers=1, thread_name_prefix="inferpack-job-decode", initializer=lowest_priority
        )
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._lock_fd: int | None = None
        self._unwritable_logged = False

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run_forever(), name="inferpack-jobs")

    def wake(self) -> None:
        """A job was created or cancelled: look now rather than at the next poll."""
        self._wake.set()

    async def stop(self) -> None:
        """Stops at once; the images in flight get no line and are done after a restart."""
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._decode.shutdown(wait=True)
        if self._lock_fd is not None:
            os.close(self._lock_fd)  # releases the flock

    async def _run_forever(self) -> None:
        while not self._try_lock():
            await self._sleep()
        while True:
            job = self._next_job()
            if job is None:
                await self._sleep()
                continue
            try:
                await self._run(job)
            except asyncio.CancelledError:
                raise
            except ModelUnavailable:
                return  # the server is stopping: the job stays running and resumes after the restart
            except Exception as exc:
                log.exception("job %s failed", job.id)
                self.jobs.save(self.jobs.get(job.id).with_(state="failed", reason=str(exc), finished=_now()))
            finally:
                self.progress.pop(job.id, None)

    async def _sleep(self) -> None:
        self._wake.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._wake.wait(), self.poll_s)

    def _try_lock(self) -> bool:
        try:
            self.jobs.folder.mkdir(parents=True, exist_ok=True)
            fd = os.open(self.jobs.folder / ".runner.lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        except OSError as exc:
            # A read-only or full data folder costs the jobs, never the online service: look again later.
            if not self._unwritable_logged:
                log.warning("jobs wait: the data folder %s cannot be written (%s)", self.jobs.folder, exc)
                self._unwritable_logged = True
            return False
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            return False
        self._lock_fd = fd
        return True

    def _next_job(self) -> Job | None:
        active = self.jobs.active()
        running = [job for job in active if job.state == "running"]
        candidates = running or active
        return candidates[0] if candidates else None

    async def _run(self, job: Job) -> None:
        if self.jobs.cancel_requested(job.id):
            self.jobs.save(job.with_(state="cancelled", finished=_now()))
            return
        try:
            dataset = self.datasets.open(job.dataset)
        except NotFound:
            raise ValueError(f"dataset {job.dataset} was deleted") from None
        results = self.jobs.results(job.id)
        done = results.repair()
        errors = sum("error" in line for line in results.read())
        job = job.with_(
            state="running",
            started=job.started or _now(),
            total=len(dataset.items),
            done=len(done),
            errors=errors,
        )
        self.jobs.save(job)
        log.info(
            "job %s (%s of %s): %d of %d images done, going on",
            job.id,
            job.kind,
            job.dataset,
            len(done),
            job.total,
        )
        progress = self.progress[job.id] = Progress()
        try:
            job = await self._predict_all(
                job, dataset, [i for i in range(len(dataset.items)) if i not in done], progress
            )
        except _Cancelled:
            self.jobs.save(self.jobs.get(job.id).with_(state="cancelled", finished=_now()))
            return
        if job.kind == "evaluate":
            job = job.with_(summary=await asyncio.to_thread(self._write_report, job, dataset))
        if job.kind == "label":  # the result_processing step: hard examples, proposals
            job = job.with_(summary={"processing_started": _now()})
            self.jobs.save(job)
            job = job.with_(
                summary={**job.summary, **await asyncio.to_thread(self._write_proposals, job, dataset)}
            )
        self.jobs.save(job.with_(state="done", finished=_now()))
        log.info("job %s done: %d images, %d errors", job.id, job.done, job.errors)

    async def _predict_all(self, job: Job, dataset: Dataset, pending: list[int], progress: Progress) -> Job:
        gate = asyncio.Semaphore(self.in_flight)
        # A line, or the ModelUnavailable of a stopping server, which stops the job's run here.
        finished: asyncio.Queue[dict[str, Any] | ModelUnavailable] = asyncio.Queue()
        threshold = self._threshold(job)

        async def one(index: int) -> None:
            try:
                finished.put_nowait(await self._predict(job, dataset, index, threshold))
            except ModelUnavailable as exc:
                finished.put_nowait(exc)
            finally:
                gate.release()

        async def feed() -> None:
            for index in pending:
                while (reason := self.paused()) is not None:
                    log.warning("job %s waits: %s", job.id, reason)
                    await asyncio.sleep(self.poll_s * 10)
                await gate.acquire()
                tasks.add(asyncio.get_running_loop().create_task(one(index)))

        tasks: set[asyncio.Task[None]] = set()
        feeder = asyncio.get_running_loop().create_task(feed())
        try:
            written = 0
            while written < len(pending):
                batch = [_line(await finished.get())]
                deadline = time.monotonic() + FLUSH_S
                while len(batch) < FLUSH_LINES and written + len(batch) < len(pending):
                    try:
                        remaining = max(0.0, deadline - time.monotonic())
                        batch.append(_line(await asyncio.wait_for(finished.get(), remaining)))
                    except TimeoutError:
                        break
                await asyncio.to_thread(self.jobs.results(job.id).append, batch)
                written += len(batch)
                progress.images += len(batch)
                job = job.with_(
                    done=job.done + len(batch), errors=job.errors + sum("error" in b for b in batch)
                )
                await asyncio.to_thread(self.jobs.save, job)  # it fsyncs: never on the event loop
                if self.jobs.cancel_requested(job.id):
                    raise _Cancelled
                tasks.difference_update([t for t in tasks if t.done()])
            return job
        finally:
            feeder.cancel()
            for task in tasks:
                task.cancel()
            await asyncio.gather(feeder, *tasks, return_exceptions=True)

    def _threshold(self, job: Job) -> float:
        chosen = self.model.spec.output.threshold if job.threshold is None else job.threshold
        if job.kind == "label":  # the boxes just under the threshold make an image hard
            return max(0.0, chosen - NEAR_THRESHOLD)
        return min(chosen, EVALUATION_FLOOR) if job.kind == "evaluate" else chosen

    async def _predict(self, job: Job, dataset: Dataset, index: int, threshold: float) -> dict[str, Any]:
        item = dataset.items[index]
        line: dict[str, Any] = {"index": index, "image": item.path}
        loop = asyncio.get_running_loop()
        try:
            data = await loop.run_in_executor(self._decode, (dataset.root / item.path).read_bytes)
            prepared = await loop.run_in_executor(self._decode, self.model.prepare, data)
            row = await self.batcher.submit_background(prepared.sample)
        except ModelUnavailable:
            raise
        except InferpackError as exc:
            return {**line, "error": {"error_code": exc.code, "error_msg": exc.error_msg}}
        except OSError as exc:
            return {
                **line,
                "error": {"error_code": 336005, "error_msg": f"cannot read the image: {exc.strerror}"},
            }
        top = min(TOP_CLASSES, self.model.spec.num_classes)
        results = self.model.easydl_results(row, prepared.transform, top, threshold)
        if job.kind == "label":
            spec = self.model.spec
            flipped = await self.batcher.submit_background(mirrored(prepared.sample, spec.input.layout))
            answer = self.model.easydl_results(flipped, prepared.transform, top, threshold)
            line["mirrored"] = answer_labels(answer, spec.task, threshold + NEAR_THRESHOLD)
            line["stats"] = await loop.run_in_executor(self._decode, image_stats, data)
        return {
            **line,
            "width": prepared.transform.width,
            "height": prepared.transform.height,
            "results": results,
        }

    def _write_proposals(self, job: Job, dataset: Dataset) -> dict[str, Any]:
        return write_proposals(
            self.jobs.home(job.id), dataset, self.jobs.results(job.id).read(), self.model.spec, job
        )

    def _write_report(self, job: Job, dataset: Dataset) -> dict[str, Any]:
        threshold = self.model.spec.output.threshold if job.threshold is None else job.threshold
        title = f"{self.model.spec.name} {self.model.spec.version} on dataset {job.dataset} (job {job.id})"
        report, page = score(
            dataset, self.jobs.results(job.id).read(), self.model.spec.labels, threshold, title
        )
        report["model"] = {
            "name": self.model.spec.name,
            "version": self.model.spec.version,
            "task": self.model.spec.task,
        }
        report_json, report_html = report_paths(self.jobs.home(job.id))
        write_atomic(report_json, json.dumps(report, indent=2).encode())
        write_atomic(report_html, page.encode())
        return summary_of(report)


def _line(item: dict[str, Any] | ModelUnavailable) -> dict[str, Any]:
    if isinstance(item, ModelUnavailable):
        raise item
    return item


def _now() -> float:
    return round(time.time(), 3)


def view(job: Job, progress: Progress | None, home: Path) -> dict[str, Any]:
    """A job as the API and CLI show it: its record, pace, and what can be fetched."""
    body = job.to_json()
    rate = progress.rate() if progress is not None else 0.0
    remaining = job.total - job.done
    body["progress"] = {
        "done": job.done,
        "total": job.total,
        "percent": round(100.0 * job.done / job.total, 1) if job.total else 100.0,
        "images_per_s": round(rate, 2),
        "eta_s": round(remaining / rate, 1) if rate > 0 and job.state == "running" else None,
    }
    body["report"] = (home / "report.json").is_file()
    return body
