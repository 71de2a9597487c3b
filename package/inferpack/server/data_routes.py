"""Datasets and jobs over HTTP (all need the API key, see ``server/data.py``).

| route                                   | what                                                   |
|-----------------------------------------|--------------------------------------------------------|
| POST   /datasets?id=ID                  | body: a .zip or .tar.gz of the dataset (streamed)      |
| GET    /datasets, /datasets/{id}        | list, show                                             |
| GET    /datasets/{id}/validate          | every problem with its file and line                   |
| DELETE /datasets/{id}                   | refused while a job still reads it                     |
| POST   /jobs                            | {"kind": "predict"/"evaluate", "dataset": ID, "threshold"} |
| GET    /jobs, /jobs/{id}                | list, show (state, progress, images/s, ETA)            |
| POST   /jobs/{id}/cancel; DELETE /jobs/{id} | cancel; delete a finished job                      |
| GET    /jobs/{id}/results?offset=&limit= | result lines by image index (partial while running)   |
| GET    /jobs/{id}/report.json, report.html | an evaluation's report                             |
| GET    /jobs/{id}/export?format=        | yolo, voc, coco, csv, jsonl                            |
"""

from __future__ import annotations

import asyncio
import os
import tempfile
from pathlib import Path
from typing import Any

from aiohttp import web

from inferpack.datasets.store import check_id
from inferpack.datasets.validate import validate
from inferpack.errors import Conflict, InvalidArgument, MissingParameter, NotFound, PayloadTooLarge
from inferpack.jobs.exports import MEDIA_TYPES, SUFFIXES, check_format, export
from inferpack.jobs.records import Job
from inferpack.jobs.runner import view
from inferpack.jobs.scoring import report_paths
from inferpack.server.data import DataServices, read_fields, services
from inferpack.server.middleware import json_response
from inferpack.server.request import parse_threshold
from inferpack.server.state import ServerState
from inferpack.vision.limits import DEFAULT_LIMITS

CHUNK = 1 << 20


async def upload_dataset(request: web.Request) -> web.Response:
    _, data = services(request)
    dataset_id = check_id(request.query.get("id") or request.query.get("name"))
    limit = data.datasets.limits.max_bytes
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"the archive is {request.content_length} bytes; the limit is {limit}")
    data.datasets.folder.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=data.datasets.folder, prefix=".upload-")
    archive = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            size = 0
            async for chunk in request.content.iter_chunked(CHUNK):
                size += len(chunk)
                if size > limit:
                    raise PayloadTooLarge(f"the archive is over the limit of {limit} bytes")
                await asyncio.to_thread(out.write, chunk)
        if size == 0:
            raise MissingParameter("the body holds no archive: send the dataset as a .zip or .tar.gz")
        info = await asyncio.to_thread(data.datasets.import_archive, archive, dataset_id)
    finally:
        archive.unlink(missing_ok=True)
    return json_response({"dataset": info.to_json()}, status=201)


async def list_datasets(request: web.Request) -> web.Response:
    _, data = services(request)
    return json_response({"datasets": [info.to_json() for info in data.datasets.all()]})


async def show_dataset(request: web.Request) -> web.Response:
    _, data = services(request)
    return json_response({"dataset": data.datasets.info(request.match_info["id"]).to_json()})


async def delete_dataset(request: web.Request) -> web.Response:
    _, data = services(request)
    dataset_id = request.match_info["id"]
    data.datasets.info(dataset_id)
    if users := data.jobs.uses(dataset_id):
        raise Conflict(f"jobs {', '.join(users)} still read dataset {dataset_id}: cancel them first")
    await asyncio.to_thread(data.datasets.delete, dataset_id)
    return json_response({"deleted": dataset_id})


async def validation(state: ServerState, data: DataServices, dataset_id: str) -> dict[str, Any]:
    dataset = data.datasets.open(dataset_id)
    limits = state.model.limits if state.model is not None else DEFAULT_LIMITS
    report = await asyncio.to_thread(validate, dataset, limits, state.spec.labels)
    problems = [{"file": p.file, "line": p.line, "message": p.message} for p in report.problems]
    return {"valid": report.valid, "message": report.message(), "problems": problems}


async def validate_dataset(request: web.Request) -> web.Response:
    state, data = services(request)
    return json_response(await validation(state, data, request.match_info["id"]))


def create_job(
    state: ServerState,
    data: DataServices,
    fields: dict[str, Any],
    kind: str,
    config: dict[str, Any] | None = None,
) -> Job:
    dataset_id = fields.get("dataset", fields.get("dataset_id"))
    if dataset_id is None:
        raise MissingParameter("the dataset field is missing")
    check_id(dataset_id)
    threshold = parse_threshold(fields["threshold"]) if fields.get("threshold") is not None else None
    if kind == "evaluate":
        task = data.datasets.info(dataset_id).task
        if task is not None and task != state.spec.task:
            raise InvalidArgument(
                f"dataset {dataset_id} is labelled for {task}; this model does {state.spec.task}"
            )
    job = data.jobs.create(kind, dataset_id, data.datasets, threshold, config)
    if data.runner is not None:
        data.runner.wake()
    return job


def _job_body(request: web.Request, data: DataServices, job: Job) -> dict[str, Any]:
    runner = data.runner
    body = view(job, runner.progress.get(job.id) if runner else None, data.jobs.home(job.id))
    base = f"{request.scheme}://{request.host}/jobs/{job.id}"
    body["urls"] = {"job": base, "results": f"{base}/results", "cancel": f"{base}/cancel"}
    if job.kind == "evaluate":
        body["urls"].update(report=f"{base}/report.html", report_json=f"{base}/report.json")
    return body


async def post_job(request: web.Request) -> web.Response:
    fields = await read_fields(request)
    state, data = services(request, fields)
    job = create_job(state, data, fields, str(fields.get("kind", "predict")))
    return json_response({"job": _job_body(request, data, job)}, status=201)


async def list_jobs(request: web.Request) -> web.Response:
    _, data = services(request)
    return json_response({"jobs": [_job_body(request, data, job) for job in data.jobs.all()]})


async def show_job(request: web.Request) -> web.Response:
    _, data = services(request)
    return json_response({"job": _job_body(request, data, data.jobs.get(request.match_info["id"]))})


async def cancel_job(request: web.Request) -> web.Response:
    _, data = services(request)
    job = data.jobs.cancel(request.match_info["id"])
    if data.runner is not None:
        data.runner.wake()
    return json_response({"job": _job_body(request, data, job)})


async def delete_job(request: web.Request) -> web.Response:
    _, data = services(request)
    await asyncio.to_thread(data.jobs.delete, request.match_info["id"])
    return json_response({"deleted": request.match_info["id"]})


def int_query(request: web.Request, name: str, default: int) -> int:
    value = request.query.get(name)
    if value is None:
        return default
    if not (value.isascii() and value.isdigit()):
        raise InvalidArgument(f"{name} must be a whole number ≥ 0, got {value!r}")
    return int(value)


def sorted_lines(data: DataServices, job_id: str) -> list[dict[str, Any]]:
    return sorted(data.jobs.results(job_id).read(), key=lambda line: int(line["index"]))


async def job_results(request: web.Request) -> web.Response:
    _, data = services(request)
    job = data.jobs.get(request.match_info["id"])
    offset, limit = int_query(request, "offset", 0), int_query(request, "limit", 1000)
    lines = await asyncio.to_thread(sorted_lines, data, job.id)
    page = lines[offset : offset + limit]
    more = offset + len(page) < len(lines)
    return json_response(
        {"state": job.state, "done": job.finished_state, "total": job.total, "results": page,
         "next_offset": offset + len(page) if more else None}
    )  # fmt: skip


async def job_report(request: web.Request) -> web.StreamResponse:
    _, data = services(request)
    job = data.jobs.get(request.match_info["id"])
    report_json, report_html = report_paths(data.jobs.home(job.id))
    path = report_html if request.match_info["kind"] == "html" else report_json
    if not path.is_file():
        raise NotFound(
            f"job {job.id} ({job.kind}, {job.state}) has no report: an evaluate job writes it when done"
        )
    content_type = "text/html" if path == report_html else "application/json"
    return web.FileResponse(path, headers={"Content-Type": content_type})


async def job_export(request: web.Request) -> web.StreamResponse:
    state, data = services(request)
    job = data.jobs.get(request.match_info["id"])
    fmt = check_format(request.query.get("format", "jsonl"), state.spec.task)
    dataset = data.datasets.open(job.dataset)
    dest = data.jobs.home(job.id) / f"export-{fmt}{SUFFIXES[fmt]}"
    lines = await asyncio.to_thread(sorted_lines, data, job.id)
    await asyncio.to_thread(export, fmt, lines, dataset, state.spec.labels, state.spec.task, dest)
    filename = f"{job.id}-{fmt}{SUFFIXES[fmt]}"
    headers = {"Content-Type": MEDIA_TYPES[fmt], "Content-Disposition": f'attachment; filename="{filename}"'}
    return web.FileResponse(dest, headers=headers)


def add_data_routes(app: web.Application) -> None:
    router = app.router
    router.add_post("/datasets", upload_dataset, name="datasets")
    router.add_get("/datasets", list_datasets, name="datasets_list")
    router.add_get("/datasets/{id}", show_dataset, name="dataset")
    router.add_delete("/datasets/{id}", delete_dataset, name="dataset_delete")
    router.add_get("/datasets/{id}/validate", validate_dataset, name="dataset_validate")
    router.add_post("/jobs", post_job, name="jobs")
    router.add_get("/jobs", list_jobs, name="jobs_list")
    router.add_get("/jobs/{id}", show_job, name="job")
    router.add_delete("/jobs/{id}", delete_job, name="job_delete")
    router.add_post("/jobs/{id}/cancel", cancel_job, name="job_cancel")
    router.add_get("/jobs/{id}/results", job_results, name="job_results")
    router.add_get("/jobs/{id}/report.{kind:json|html}", job_report, name="job_report")
    router.add_get("/jobs/{id}/export", job_export, name="job_export")
