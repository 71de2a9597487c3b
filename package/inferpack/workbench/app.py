"""The workbench's application: error middleware, lifecycle (jobs left running by a stopped or
crashed service are queued again and resume from their checkpoints), and ``serve``."""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path

from aiohttp import web
from aiohttp.typedefs import Handler

from inferpack.errors import InferpackError, InternalError, MethodNotAllowed, UnknownRoute
from inferpack.server.middleware import error_response
from inferpack.training.progress import read_progress
from inferpack.workbench.jobs import ACTIVE_STATES, JobRunner
from inferpack.workbench.routes import add_routes
from inferpack.workbench.state import WORKBENCH, Workbench
from inferpack.workbench.store import Store

log = logging.getLogger("inferpack.workbench")
MAX_BODY_BYTES = 1 << 20  # fields only: data sets are put in the root's datasets/ folder


@dataclass(frozen=True)
class WorkbenchConfig:
    root: Path
    access_key: str
    host: str = "127.0.0.1"
    port: int = 8000
    max_jobs: int = 1
    threads: int = 1
    nice: int = 10
    default_epochs: int = 10


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    bench = request.app[WORKBENCH]
    log_id = bench.log_ids.next()
    try:
        response = await handler(request)
        code = 0
    except InferpackError as error:
        response, code = error_response(log_id, error), error.code
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        detail = f"{request.method} {request.path}: {exc.reason}; the workbench answers /yolo/*"
        routing = MethodNotAllowed(detail) if exc.status == 405 else UnknownRoute(detail)
        response, code = error_response(log_id, routing), routing.code
    except Exception:
        log.exception("log_id=%d unexpected failure on %s %s", log_id, request.method, request.path)
        response, code = error_response(log_id, InternalError()), InternalError.code
    response.headers["X-Log-Id"] = str(log_id)
    bench.metrics.requests.labels(request.match_info.route.name or "unmatched", str(code)).inc()
    return response


async def _jobs_lifecycle(app: web.Application) -> AsyncIterator[None]:
    bench = app[WORKBENCH]
    for name in bench.store.model_names():
        run_dir = bench.store.models / name
        if read_progress(run_dir).get("state") in ACTIVE_STATES:
            log.info(
                "resuming %s, left %s when the workbench last stopped", name, read_progress(run_dir)["state"]
            )
            await bench.jobs.submit(run_dir)
    yield
    await bench.jobs.close()
    for task in list(bench.background):
        task.cancel()


def init_app(config: WorkbenchConfig) -> web.Application:
    bench = Workbench(
        store=Store(config.root),
        jobs=JobRunner(config.max_jobs, config.nice),
        access_key=config.access_key,
        threads=config.threads,
        default_epochs=config.default_epochs,
    )
    app = web.Application(middlewares=[json_errors], client_max_size=MAX_BODY_BYTES)
    app[WORKBENCH] = bench
    add_routes(app)
    app.cleanup_ctx.append(_jobs_lifecycle)
    return app


async def serve(config: WorkbenchConfig) -> int:
    """Runs until SIGTERM/SIGINT; running jobs are killed then and resume at the next start."""
    runner = web.AppRunner(init_app(config), handle_signals=False)
    await runner.setup()
    await web.TCPSite(runner, config.host, config.port).start()
    log.info("workbench on http://%s:%d/yolo/ (root %s)", config.host, config.port, config.root)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()
    return 0
