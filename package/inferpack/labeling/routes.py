"""Labeling tasks over HTTP, shaped like ModelArts' (all need the API key, as the job routes).

Under /NAME/datasets/{dataset_id}:

| route                            | what                                                        |
|----------------------------------|-------------------------------------------------------------|
| POST tasks                       | {"task_type", "config"} → {"task_id"}                       |
| GET  tasks, tasks/{task_id}      | list, show (progress, status, events)                       |
| GET  tasks/{task_id}/groups      | an auto-grouping task's groups: members, representatives    |
| POST tasks/{task_id}/cancel      | cancel                                                      |
| GET  auto-annotations/samples    | proposals; offset, limit, task_id, hard, label, min/max_score |
| GET  auto-annotations/export     | the same, as labelstudio, voc, yolo, coco, csv or jsonl     |
| PUT  data-annotations/samples    | confirm labels into the dataset                             |
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiohttp import web

from inferpack.datasets.store import check_id
from inferpack.errors import Conflict, InvalidArgument, NotFound
from inferpack.jobs.exports import MEDIA_TYPES, SUFFIXES, check_format, export
from inferpack.jobs.records import Job
from inferpack.labeling import confirm
from inferpack.labeling.grouping import available
from inferpack.labeling.proposals import proposal_lines, read_groups, read_proposals
from inferpack.labeling.tasks import task_config, task_view
from inferpack.server.data import DataServices, read_fields, services
from inferpack.server.data_routes import create_job, int_query
from inferpack.server.middleware import json_response
from inferpack.server.request import parse_threshold


def _task(data: DataServices, request: web.Request) -> Job:
    job = data.jobs.get(request.match_info["task_id"])
    if job.kind != "label" or job.dataset != request.match_info["dataset_id"]:
        raise NotFound(f"no task {job.id!r} on dataset {request.match_info['dataset_id']!r}")
    return job


async def start_task(request: web.Request) -> web.Response:
    fields = await read_fields(request)
    state, data = services(request, fields)
    config = task_config(fields)
    if config["task_type"] == "auto-grouping" and not available():
        raise InvalidArgument(
            "auto-grouping needs scikit-learn on the server: pip install 'inferpack[labeling]'"
        )
    dataset_id = check_id(request.match_info["dataset_id"])
    job = create_job(
        state, data, {"dataset": dataset_id, "threshold": fields.get("threshold")}, "label", config
    )
    return json_response({"task_id": job.id})


async def list_tasks(request: web.Request) -> web.Response:
    _, data = services(request)
    dataset_id = request.match_info["dataset_id"]
    data.datasets.info(dataset_id)
    tasks = [task_view(job) for job in data.jobs.all() if job.kind == "label" and job.dataset == dataset_id]
    return json_response({"tasks": tasks})


async def show_task(request: web.Request) -> web.Response:
    _, data = services(request)
    return json_response(task_view(_task(data, request)))


async def task_groups(request: web.Request) -> web.Response:
    _, data = services(request)
    job = _task(data, request)
    groups = await asyncio.to_thread(read_groups, data.jobs.home(job.id))
    if job.config.get("task_type") != "auto-grouping" or (job.state == "done" and not groups):
        raise NotFound(f"task {job.id} is a {job.config.get('task_type')} task: it has no groups")
    return json_response({"task_id": job.id, "state": job.state, "groups": groups})


async def cancel_task(request: web.Request) -> web.Response:
    _, data = services(request)
    job = data.jobs.cancel(_task(data, request).id)
    if data.runner is not None:
        data.runner.wake()
    return json_response(task_view(job))


def _latest_done(data: DataServices, dataset_id: str, task_id: str | None) -> Job:
    if task_id is not None:
        return data.jobs.get(task_id)
    done = [j for j in data.jobs.all() if j.kind == "label" and j.dataset == dataset_id and j.state == "done"]
    if not done:
        raise NotFound(f"dataset {dataset_id!r} has no finished labeling task: start one first")
    return max(done, key=lambda job: job.created)


def _filtered(samples: list[dict[str, Any]], query: Any) -> list[dict[str, Any]]:
    hard = query.get("hard")
    if hard not in (None, "true", "false", "1", "0"):
        raise InvalidArgument(f"hard must be true or false, got {hard!r}")
    label = query.get("label")
    low = parse_threshold(query["min_score"]) if "min_score" in query else 0.0
    high = parse_threshold(query["max_score"]) if "max_score" in query else 1.0

    def keep(sample: dict[str, Any]) -> bool:
        if hard is not None and sample["metadata"]["@modelarts:hard"] != (hard in ("true", "1")):
            return False
        labels = [x for x in sample["labels"] if label is None or x["name"] == label]
        if label is not None and not labels:
            return False
        scores = [float(x["score"]) for x in labels]
        return (not scores and low == 0.0) or any(low <= s <= high for s in scores)

    return [s for s in samples if keep(s)]


async def auto_annotations(request: web.Request) -> web.Response:
    _, data = services(request)
    dataset_id = request.match_info["dataset_id"]
    data.datasets.info(dataset_id)
    job = _latest_done(data, dataset_id, request.query.get("task_id"))
    samples = _filtered(await asyncio.to_thread(read_proposals, data.jobs.home(job.id)), request.query)
    offset, limit = int_query(request, "offset", 0), int_query(request, "limit", 100)
    return json_response(
        {"task_id": job.id, "sample_count": len(samples), "samples": samples[offset : offset + limit]}
    )


async def export_proposals(request: web.Request) -> web.StreamResponse:
    state, data = services(request)
    dataset_id = request.match_info["dataset_id"]
    fmt = check_format(request.query.get("format", "labelstudio"), state.spec.task)
    job = _latest_done(data, dataset_id, request.query.get("task_id"))
    home = data.jobs.home(job.id)
    samples = _filtered(await asyncio.to_thread(read_proposals, home), request.query)
    lines = proposal_lines(data.jobs.results(job.id).read(), samples)
    dest = home / f"proposals-{fmt}{SUFFIXES[fmt]}"
    dataset = data.datasets.open(dataset_id)
    await asyncio.to_thread(export, fmt, lines, dataset, state.spec.labels, state.spec.task, dest)
    filename = f"{job.id}-proposals-{fmt}{SUFFIXES[fmt]}"
    headers = {"Content-Type": MEDIA_TYPES[fmt], "Content-Disposition": f'attachment; filename="{filename}"'}
    return web.FileResponse(dest, headers=headers)


async def confirm_samples(request: web.Request) -> web.Response:
    body = await read_fields(request)
    _, data = services(request, body)
    dataset_id = request.match_info["dataset_id"]
    if users := data.jobs.uses(dataset_id):
        raise Conflict(f"jobs {', '.join(users)} still read dataset {dataset_id}: wait or cancel them first")
    dataset = data.datasets.open(dataset_id)
    changes = confirm.plan(dataset, body)
    await asyncio.to_thread(confirm.apply, changes)
    return json_response({"success": True, "changed": len(changes)})


def add_labeling_routes(app: web.Application, deploy_name: str) -> None:
    base = f"/{deploy_name}/datasets/{{dataset_id}}"
    router = app.router
    router.add_post(f"{base}/tasks", start_task, name="label_tasks")
    router.add_get(f"{base}/tasks", list_tasks, name="label_tasks_list")
    router.add_get(f"{base}/tasks/{{task_id}}", show_task, name="label_task")
    router.add_get(f"{base}/tasks/{{task_id}}/groups", task_groups, name="label_task_groups")
    router.add_post(f"{base}/tasks/{{task_id}}/cancel", cancel_task, name="label_task_cancel")
    router.add_get(f"{base}/auto-annotations/samples", auto_annotations, name="auto_annotations")
    router.add_get(f"{base}/auto-annotations/export", export_proposals, name="auto_annotations_export")
    router.add_put(f"{base}/data-annotations/samples", confirm_samples, name="confirm_annotations")
