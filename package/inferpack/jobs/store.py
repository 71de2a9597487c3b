"""Jobs kept in the service's data folder, each in its own folder:

<data>/jobs/<ID>/job.json        the job (records.Job), replaced atomically on every change
<data>/jobs/<ID>/results.jsonl   one line per image (results.ResultsLog)
<data>/jobs/<ID>/cancel          present once a cancel was asked for (by HTTP or the CLI)
<data>/jobs/<ID>/report.json, report.html   an evaluation's measures

Ids are the creation time (as the seed's ``/yolo/output?key=20201216173126``) plus a random
suffix. At most ``max_active`` jobs are queued or running at once; more is refused (336100,
retry later) before anything is written.
"""

from __future__ import annotations

import json
import secrets
import shutil
import time
from pathlib import Path
from typing import Any

from inferpack.datasets.store import DatasetStore, check_id
from inferpack.errors import Conflict, InvalidArgument, ModelUnavailable, NotFound
from inferpack.fileio import write_atomic
from inferpack.jobs.records import KINDS, Job, JobKind
from inferpack.jobs.results import ResultsLog

JOB_FILE = "job.json"
CANCEL_FILE = "cancel"
DEFAULT_MAX_ACTIVE = 4


class JobStore:
    def __init__(self, data_dir: Path, max_active: int = DEFAULT_MAX_ACTIVE) -> None:
        self.folder = data_dir / "jobs"
        self.max_active = max_active

    def home(self, job_id: str) -> Path:
        return self.folder / check_id(job_id, "job id")

    def results(self, job_id: str) -> ResultsLog:
        return ResultsLog(self.home(job_id) / "results.jsonl")

    def get(self, job_id: str) -> Job:
        path = self.home(job_id) / JOB_FILE
        if not path.is_file():
            raise NotFound(f"no job {job_id!r} on this service")
        return Job.from_json(json.loads(path.read_text(encoding="utf-8")))

    def all(self) -> list[Job]:
        if not self.folder.is_dir():
            return []
        return [self.get(p.name) for p in sorted(self.folder.iterdir()) if (p / JOB_FILE).is_file()]

    def save(self, job: Job) -> None:
        write_atomic(self.home(job.id) / JOB_FILE, json.dumps(job.to_json(), indent=2).encode())

    def active(self) -> list[Job]:
        return [job for job in self.all() if not job.finished_state]

    def create(
        self,
        kind: str,
        dataset_id: str,
        datasets: DatasetStore,
        threshold: float | None = None,
        config: dict[str, Any] | None = None,
    ) -> Job:
        if kind not in KINDS:
            raise InvalidArgument(f"kind must be one of {', '.join(KINDS)}, got {kind!r}")
        job_kind: JobKind = kind
        info = datasets.info(dataset_id)
        if job_kind == "evaluate" and info.task is None:
            raise InvalidArgument(
                f"dataset {dataset_id!r} has no labels ({info.format} layout): it can be predicted only"
            )
        if len(self.active()) >= self.max_active:
            raise ModelUnavailable(
                f"{self.max_active} jobs are queued or running, the limit: retry when one ends", 30
            )
        self.folder.mkdir(parents=True, exist_ok=True)
        while True:
            job_id = time.strftime("%Y%m%d%H%M%S", time.gmtime()) + secrets.token_hex(2)
            try:
                self.home(job_id).mkdir()
                break
            except FileExistsError:
                continue
        job = Job(
            id=job_id,
            kind=job_kind,
            dataset=dataset_id,
            created=round(time.time(), 3),
            total=info.images,
            threshold=threshold,
            config=config or {},
        )
        self.save(job)
        return job

    def cancel(self, job_id: str) -> Job:
        """Asks for a cancel: a queued job is cancelled now, a running one by its runner."""
        job = self.get(job_id)
        if job.finished_state:
            raise Conflict(f"job {job_id} is already {job.state}")
        (self.home(job_id) / CANCEL_FILE).touch()
        if job.state == "queued":
            job = job.with_(state="cancelled", finished=round(time.time(), 3))
            self.save(job)
        return job

    def cancel_requested(self, job_id: str) -> bool:
        return (self.home(job_id) / CANCEL_FILE).exists()

    def uses(self, dataset_id: str) -> list[str]:
        """The jobs still queued or running over ``dataset_id``."""
        return [job.id for job in self.active() if job.dataset == dataset_id]

    def delete(self, job_id: str) -> None:
        job = self.get(job_id)
        if not job.finished_state:
            raise Conflict(f"job {job_id} is {job.state}: cancel it first")
        shutil.rmtree(self.home(job_id))
