"""A labeling task as ModelArts shows it (``GET /NAME/datasets/{id}/tasks/{task_id}``), on top
of its job: ``progress`` 0-100, a numeric ``status`` (0 queued, 1 running, 2 done, 3 failed,
4 cancelled), ``elapsed_time`` in seconds, and ``result`` with the counts and the ``events``
start, init, labeling, result_processing, end, each with its status and times (ms)."""

from __future__ import annotations

import time
from typing import Any

from inferpack.errors import InvalidArgument
from inferpack.jobs.records import Job
from inferpack.labeling.hard import parse_scope

TASK_TYPES = ("pre-label", "auto-label", "auto-grouping")
STATUS = {"queued": 0, "running": 1, "done": 2, "failed": 3, "cancelled": 4}
FLAGS = ("collect_key_sample", "ambiguity", "image_brightness", "image_colorfulness")
MAX_CLUSTERS = 100


def task_config(fields: dict[str, Any]) -> dict[str, Any]:
    """The job's config from a start request; anything malformed is refused before a job exists."""
    task_type = fields.get("task_type")
    if task_type not in TASK_TYPES:
        raise InvalidArgument(f"task_type must be one of {', '.join(TASK_TYPES)}, got {task_type!r}")
    raw = fields.get("config", {})
    if not isinstance(raw, dict):
        raise InvalidArgument(f"config must be a JSON object, got {type(raw).__name__}")
    merged = {**{k: fields[k] for k in FLAGS if k in fields}, **raw}
    config: dict[str, Any] = {"task_type": task_type}
    for flag in FLAGS:
        value = merged.get(flag, False)
        if not isinstance(value, bool):
            raise InvalidArgument(f"config.{flag} must be true or false, got {value!r}")
        config[flag] = value
    try:
        if parse_scope(merged.get("confidence_scope")) is not None:
            config["confidence_scope"] = str(merged["confidence_scope"])
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    clusters = merged.get("n_clusters", 3)
    if isinstance(clusters, bool) or not isinstance(clusters, int) or not 2 <= clusters <= MAX_CLUSTERS:
        raise InvalidArgument(f"config.n_clusters must be a whole number 2-{MAX_CLUSTERS}, got {clusters!r}")
    config["n_clusters"] = clusters
    return config


def _ms(seconds: float | None) -> int | None:
    return None if seconds is None else round(seconds * 1000)


def _event(name: str, ordinal: int, status: str, start: float | None, end: float | None) -> dict[str, Any]:
    event: dict[str, Any] = {"name": name, "ordinal": ordinal, "level": 1, "status": status}
    if start is not None:
        event["create_time"] = _ms(start)
        event["elapsed_time"] = round((end if end is not None else time.time()) - start)
    return event


def _events(job: Job) -> list[dict[str, Any]]:
    processing = job.summary.get("processing_started")
    ended = job.finished_state
    failed = "failed" if job.state == "failed" else "cancelled" if job.state == "cancelled" else None

    def status(begun: bool, over: bool) -> str:
        if over:
            return "success"
        if ended and failed is not None and begun:
            return failed
        return "running" if begun else "waiting"

    started = job.started is not None
    labelled = processing is not None or (job.state == "done")
    return [
        _event("start", 1, "success", job.created, job.started or job.finished),
        _event("init", 2, "success" if started else status(False, False), job.started, job.started),
        _event("labeling", 3, status(started, labelled), job.started, processing or job.finished),
        _event(
            "result_processing",
            4,
            status(processing is not None, job.state == "done"),
            processing,
            job.finished,
        ),
        _event("end", 5, job.state if ended else "waiting", job.finished, job.finished),
    ]


def task_view(job: Job) -> dict[str, Any]:
    total = job.total or 1
    progress = 100 if job.state == "done" else min(99, int(100 * job.done / total))
    result = {
        "total_sample_count": job.summary.get("total_sample_count", job.total),
        "annotated_sample_count": job.summary.get("annotated_sample_count", 0),
        "events": _events(job),
    }
    if "hard_sample_count" in job.summary:
        result["hard_sample_count"] = job.summary["hard_sample_count"]
    if "groups" in job.summary:
        result["groups"] = job.summary["groups"]
    end = job.finished if job.finished is not None else time.time()
    return {
        "task_id": job.id,
        "task_type": job.config.get("task_type"),
        "dataset_id": job.dataset,
        "create_time": time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(job.created)),
        "progress": progress,
        "status": STATUS[job.state],
        "state": job.state,
        "message": job.reason or f"{job.done} of {job.total} images labelled, task {job.state}",
        "elapsed_time": round(end - (job.started or job.created)),
        "result": result,
        "config": {k: v for k, v in job.config.items() if k != "task_type"},
    }
