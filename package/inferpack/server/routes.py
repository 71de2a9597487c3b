"""Route handlers: the prediction API and the operations endpoints."""

from __future__ import annotations

import time
from typing import Any

from aiohttp import web

from inferpack import __version__
from inferpack.bundle import ROUTE_BY_TASK
from inferpack.model import Model
from inferpack.server.metrics import CONTENT_TYPE
from inferpack.server.middleware import json_response
from inferpack.server.peer import local_caller
from inferpack.server.request import PredictRequest, is_raw_form, parse_json_body, parse_raw_body
from inferpack.server.serving import admitted
from inferpack.server.state import LOG_ID, STATE, ServerState, predict_path


def _parse(request: web.Request, body: bytes, model: Model) -> PredictRequest:
    if is_raw_form(request.content_type, body):
        return parse_raw_body(body, request.query, model.limits)
    return parse_json_body(body, model.limits)


async def predict(request: web.Request) -> web.Response:
    state = request.app[STATE]
    async with admitted(state, request) as serving:
        parsed = _parse(request, serving.body, serving.model)
        row, transform = await serving.infer_image(parsed.image)
        results = serving.model.easydl_results(row, transform, parsed.top_num, parsed.threshold)
    return json_response({"log_id": request[LOG_ID], "results": results})


async def healthz(request: web.Request) -> web.Response:
    return json_response({"status": "alive"})


async def readyz(request: web.Request) -> web.Response:
    state = request.app[STATE]
    problems = state.readiness_problems()
    if problems:
        return json_response({"status": "not ready", "reasons": problems}, status=503)
    return json_response({"status": "ready"})


async def metrics(request: web.Request) -> web.Response:
    state = request.app[STATE]
    return web.Response(body=state.metrics.exposition(), headers={"Content-Type": CONTENT_TYPE})


async def info(request: web.Request) -> web.Response:
    state = request.app[STATE]
    config = state.config
    body: dict[str, Any] = {
        "version": __version__,
        "deploy_name": config.deploy_name,
        "route": f"POST {predict_path(state)}",
        "task": state.spec.task,
        "model": {"name": state.spec.name, "version": state.spec.version, "labels": list(state.spec.labels)},
        "precision": state.model.describe_precision() if state.model else {"setting": config.precision},
        "engine": state.model.engine.describe()
        if state.model
        else {"backend": config.backend, "status": "loading"},
        "batching": {
            "max_batch_size": state.batcher.max_batch_size if state.batcher else config.max_batch_size,
            "max_delay_ms": config.max_delay_ms,
            "max_inflight": config.max_inflight,
            "latency_target_ms": config.latency_target_ms,
            "admission_limit": int(state.admission.limit),
            "decode_workers": config.decode_workers,
        },
        "ready": not state.readiness_problems(),
        # Who holds the license is the operator's business, not every client's.
        "license": state.license_summary(identity=local_caller(request)),
        "uptime_s": round(time.time() - state.started_at, 1),
    }
    return json_response(body)


def add_routes(app: web.Application, state: ServerState) -> None:
    route = ROUTE_BY_TASK[state.spec.task]
    app.router.add_post(predict_path(state), predict, name=route)
    app.router.add_get("/healthz", healthz, name="healthz")
    app.router.add_get("/readyz", readyz, name="readyz")
    app.router.add_get("/metrics", metrics, name="metrics")
    app.router.add_get("/info", info, name="info")
