"""The seed's training API under ``/yolo/``, plus /healthz and /metrics.

Every ``/yolo/`` route checks the access key first, then every field, and only then changes
anything: a refused request leaves the workbench's folders and jobs as they were.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import replace
from pathlib import Path
from typing import Any

from aiohttp import web

from inferpack.datasets.readers import read_dataset
from inferpack.datasets.validate import validate as validate_dataset
from inferpack.errors import Conflict, InvalidArgument, NotFound
from inferpack.server.metrics import CONTENT_TYPE
from inferpack.server.middleware import json_response
from inferpack.training.config import TrainConfig
from inferpack.training.layout import LAST, checkpoint_path
from inferpack.training.progress import read_progress
from inferpack.training.samples import DatasetInvalid, training_dataset
from inferpack.workbench import forms
from inferpack.workbench.predictions import start_prediction
from inferpack.workbench.state import WORKBENCH, Workbench

PROGRESS_FIELDS = (
    *("loss", "lr", "epoch", "final_epoch", "validation", "history", "best", "eta_s", "pid", "error"),
    "report",
)


async def _params(request: web.Request) -> tuple[Workbench, forms.Params]:
    bench = request.app[WORKBENCH]
    params = await forms.read_params(request)
    forms.check_access(request, params, bench.access_key)
    return bench, params


def _url(request: web.Request, route: str, **query: str) -> str:
    return str(request.url.with_path(f"/yolo/{route}").with_query(query))


async def _checked_dataset(bench: Workbench, name: str) -> tuple[Path, str]:
    """The data set's folder and task, once every image and label in it checks out."""
    path = bench.store.dataset(name)
    try:
        dataset = await asyncio.to_thread(training_dataset, path, None, True)
    except DatasetInvalid as exc:
        raise InvalidArgument(f"data set {name!r} is not valid: {exc}") from None
    assert dataset.task is not None
    return path, dataset.task


async def train(request: web.Request) -> web.Response:
    bench, params = await _params(request)
    model_name = forms.name(params, "model_name")
    dataset_name = forms.name(params, "dataset")
    assert model_name is not None and dataset_name is not None
    batch_size = forms.integer(params, "batch_size", 1, high=4096)
    subdivisions = forms.integer(params, "subdivisions", 1, high=batch_size)
    lr = forms.number(params, "lr", 0.001, 0.0, 1.0)
    final_epoch = forms.integer(params, "final_epoch", bench.default_epochs, high=10_000)
    size = forms.integer(params, "size", 0, low=0, high=1024)  # an extension: the input side
    source_name = forms.name(params, "source", required=False)
    if (bench.store.models / model_name).exists():
        raise Conflict(f"a model named {model_name!r} exists already; delete it or pick another name")
    dataset, task = await _checked_dataset(bench, dataset_name)
    source = None
    if source_name is not None:
        source = bench.store.model(source_name)
        if not checkpoint_path(source, LAST).is_file():
            raise Conflict(f"source {source_name!r} has no checkpoint yet")
    try:
        config = TrainConfig(
            dataset=str(dataset),
            task=task,  # type: ignore[arg-type]
            name=model_name,
            final_epoch=final_epoch,
            batch_size=batch_size,
            subdivisions=subdivisions,
            lr=lr,
            size=size,
            threads=bench.threads,
            source=str(source) if source else None,
        )
    except ValueError as exc:
        raise InvalidArgument(str(exc)) from None
    run_dir = bench.store.models / model_name
    run_dir.mkdir()
    config.save(run_dir)
    await bench.jobs.submit(run_dir)
    return json_response({"url": _url(request, "progress", model_name=model_name)})


async def _model(request: web.Request) -> tuple[Workbench, forms.Params, str, Path]:
    bench, params = await _params(request)
    model_name = forms.name(params, "model_name")
    assert model_name is not None
    return bench, params, model_name, bench.store.model(model_name)


async def stop(request: web.Request) -> web.Response:
    bench, _, model_name, run_dir = await _model(request)
    if not await bench.jobs.stop(run_dir):
        raise Conflict(f"model {model_name!r} is not training")
    return json_response({"model_name": model_name, "state": bench.jobs.state(run_dir)})


async def restart(request: web.Request) -> web.Response:
    bench, params, model_name, run_dir = await _model(request)
    if bench.jobs.state(run_dir) in ("queued", "running"):
        raise Conflict(f"model {model_name!r} is {bench.jobs.state(run_dir)} already")
    if "final_epoch" in params:  # train further than first planned
        config = TrainConfig.load(run_dir)
        final_epoch = forms.integer(params, "final_epoch", config.final_epoch, config.final_epoch, 10_000)
        replace(config, final_epoch=final_epoch).save(run_dir)
    await bench.jobs.submit(run_dir)
    return json_response({"url": _url(request, "progress", model_name=model_name)})


def _progress(bench: Workbench, model_name: str, run_dir: Path) -> dict[str, Any]:
    recorded = read_progress(run_dir)
    config = TrainConfig.load(run_dir)
    answer: dict[str, Any] = {
        "model_name": model_name,
        "dataset": Path(config.dataset).name,
        "current_steps": recorded.get("current_steps", 0),
        "max_steps": recorded.get("max_steps"),
        "iou": recorded.get("iou"),
        "state": bench.jobs.state(run_dir),
    }
    answer.update({k: recorded[k] for k in PROGRESS_FIELDS if k in recorded})
    return answer


async def progress(request: web.Request) -> web.Response:
    bench, _, model_name, run_dir = await _model(request)
    return json_response(_progress(bench, model_name, run_dir))


async def list_models(request: web.Request) -> web.Response:
    bench, _ = await _params(request)
    models = [_progress(bench, name, bench.store.models / name) for name in bench.store.model_names()]
    return json_response({"models": models})


async def delete(request: web.Request) -> web.Response:
    bench, _, model_name, run_dir = await _model(request)
    await bench.jobs.stop(run_dir)
    await asyncio.to_thread(bench.store.delete_model, model_name)
    return json_response({"model_name": model_name, "deleted": True})


async def validate(request: web.Request) -> web.Response:
    bench, params = await _params(request)
    dataset_name = forms.name(params, "dataset")
    assert dataset_name is not None
    path = bench.store.dataset(dataset_name)
    report = await asyncio.to_thread(validate_dataset, await asyncio.to_thread(read_dataset, path))
    return json_response({"valid": report.valid, "message": report.message(), "task": report.dataset.task})


async def download(request: web.Request) -> web.Response:
    bench, _, model_name, _ = await _model(request)
    data = await asyncio.to_thread(bench.store.download, model_name)
    return web.Response(
        body=data,
        content_type="application/zip",
        headers={"Content-Disposition": f'attachment; filename="{model_name}.zip"'},
    )


async def predict(request: web.Request) -> web.Response:
    bench, params, model_name, run_dir = await _model(request)
    dataset_name = forms.name(params, "dataset_id")
    assert dataset_name is not None
    dataset, _ = await _checked_dataset(bench, dataset_name)
    if not checkpoint_path(run_dir, LAST).is_file():
        raise Conflict(f"model {model_name!r} has no checkpoint yet")
    key = await start_prediction(bench, run_dir, dataset)
    return json_response({"url": _url(request, "output", key=key)})


async def output(request: web.Request) -> web.Response:
    bench, params = await _params(request)
    key = forms.name(params, "key")
    assert key is not None
    path = bench.store.predictions / f"{key}.json"
    if not path.is_file():
        raise NotFound(f"no prediction with key {key!r}")
    return json_response(json.loads(path.read_text(encoding="utf-8")))


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "ok"})


async def metrics(request: web.Request) -> web.Response:
    bench = request.app[WORKBENCH]
    return web.Response(body=bench.metrics.render(), headers={"Content-Type": CONTENT_TYPE})


def add_routes(app: web.Application) -> None:
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/metrics", metrics, name="metrics")
    for method, path, handler in (
        ("POST", "train", train),
        ("POST", "stop", stop),
        ("POST", "restart", restart),
        ("GET", "progress", progress),
        ("POST", "predict", predict),
        ("GET", "output", output),
        ("GET", "list", list_models),
        ("POST", "delete", delete),
        ("GET", "validate", validate),
        ("GET", "download", download),
    ):
        app.router.add_route(method, f"/yolo/{path}", handler, name=path)
