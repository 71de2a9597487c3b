"""Training jobs as processes of their own: queued, started at most ``max_jobs`` at a time, killed on stop.

A job is ``python -m inferpack.training MODEL_DIR`` in its own session (so a stop kills its
whole process group, data-loading workers included), niced, its output in ``train.log``.
The service never waits on a job and never dies with one. What a job has done lives in its
folder (checkpoints, progress.json); the runner only knows which are queued or running, and
records ``queued``/``stopped``/``failed`` in progress.json for the ones it ends.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
from collections import deque
from dataclasses import dataclass
from pathlib import Path

from inferpack.training.progress import ProgressWriter, read_progress

log = logging.getLogger("inferpack.workbench")
LOG_FILE = "train.log"
ACTIVE_STATES = ("queued", "running")


@dataclass
class _Running:
    process: asyncio.subprocess.Process
    watcher: asyncio.Task[None]
    stopping: bool = False


class JobRunner:
    def __init__(self, max_jobs: int = 1, nice: int = 10) -> None:
        self.max_jobs, self.nice = max_jobs, nice
        self._queue: deque[Path] = deque()
        self._running: dict[Path, _Running] = {}

    def state(self, run_dir: Path) -> str:
        if run_dir in self._running:
            return "running"
        if run_dir in self._queue:
            return "queued"
        recorded = str(read_progress(run_dir).get("state", "stopped"))
        return "stopped" if recorded in ACTIVE_STATES else recorded  # left behind by a killed service

    @property
    def running(self) -> int:
        return len(self._running)

    @property
    def queued(self) -> int:
        return len(self._queue)

    async def submit(self, run_dir: Path) -> None:
        if run_dir in self._running or run_dir in self._queue:
            return
        progress = ProgressWriter(run_dir)
        for stale in ("error", "report", "eta_s"):  # of the previous run
            progress.fields.pop(stale, None)
        progress.update(True, state="queued")
        self._queue.append(run_dir)
        await self._start_next()

    async def _start_next(self) -> None:
        while self._queue and len(self._running) < self.max_jobs:
            run_dir = self._queue.popleft()
            with (run_dir / LOG_FILE).open("ab") as output:
                process = await asyncio.create_subprocess_exec(
                    "nice",
                    "-n",
                    str(self.nice),
                    sys.executable,
                    "-m",
                    "inferpack.training",
                    str(run_dir),
                    stdin=asyncio.subprocess.DEVNULL,
                    stdout=output,
                    stderr=asyncio.subprocess.STDOUT,
                    start_new_session=True,
                )
            watcher = asyncio.get_running_loop().create_task(self._watch(run_dir, process))
            self._running[run_dir] = _Running(process, watcher)
            log.info("started training %s (pid %d)", run_dir.name, process.pid)

    async def _watch(self, run_dir: Path, process: asyncio.subprocess.Process) -> None:
        code = await process.wait()
        job = self._running.pop(run_dir)
        if job.stopping:
            ProgressWriter(run_dir).update(True, state="stopped", eta_s=None)
        elif code != 0 and read_progress(run_dir).get("state") != "failed":
            ProgressWriter(run_dir).update(
                True, state="failed", error=f"the training process exited with {code}"
            )
        log.info("training %s ended (exit %s)", run_dir.name, code)
        await self._start_next()

    async def stop(self, run_dir: Path) -> bool:
        """Kills the job (or takes it off the queue); False when it was neither running nor queued."""
        if run_dir in self._queue:
            self._queue.remove(run_dir)
            ProgressWriter(run_dir).update(True, state="stopped")
            return True
        job = self._running.get(run_dir)
        if job is None:
            return False
        job.stopping = True
        with contextlib.suppress(ProcessLookupError):
            os.killpg(job.process.pid, signal.SIGKILL)
        await asyncio.shield(job.watcher)
        return True

    async def close(self) -> None:
        """Kills every job but leaves them recorded as queued or running, so the next start
        of the workbench resumes them from their last checkpoints (as after a reboot)."""
        self._queue.clear()
        for job in list(self._running.values()):
            job.watcher.cancel()
            with contextlib.suppress(ProcessLookupError):
                os.killpg(job.process.pid, signal.SIGKILL)
            await job.process.wait()
        self._running.clear()
