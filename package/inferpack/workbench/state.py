"""What the workbench's handlers share: its folders, job runner, access key and metrics."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field

from aiohttp import web
from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest

from inferpack.easydl import LogIds
from inferpack.workbench.jobs import JobRunner
from inferpack.workbench.store import Store


class WorkbenchMetrics:
    def __init__(self, jobs: JobRunner) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        self.requests = Counter(
            "inferpack_workbench_requests",
            "HTTP requests by route and error_code (0 = success)",
            ["route", "error_code"],
            registry=self.registry,
        )
        running = Gauge("inferpack_workbench_jobs_running", "Training jobs running", registry=self.registry)
        queued = Gauge("inferpack_workbench_jobs_queued", "Training jobs waiting", registry=self.registry)
        running.set_function(lambda: float(jobs.running))
        queued.set_function(lambda: float(jobs.queued))

    def render(self) -> bytes:
        return generate_latest(self.registry)


@dataclass
class Workbench:
    store: Store
    jobs: JobRunner
    access_key: str
    threads: int = 1  # per training job
    default_epochs: int = 10
    metrics: WorkbenchMetrics = field(init=False)
    background: set[asyncio.Task[int]] = field(default_factory=set)
    log_ids: LogIds = field(default_factory=LogIds)

    def __post_init__(self) -> None:
        self.metrics = WorkbenchMetrics(self.jobs)


WORKBENCH = web.AppKey("inferpack_workbench", Workbench)
