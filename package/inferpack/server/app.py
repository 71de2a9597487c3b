"""The application factory and the server's lifecycle.

The HTTP listener comes up first (``/healthz`` answers at once, ``/readyz`` is 503) while the
model loads and warms up in the background; predictions meanwhile get 336100 + Retry-After.
A model that cannot load is fatal: ``serve`` exits non-zero with the reason, so the installer
and Docker's restart policy see it. SIGTERM stops accepting connections, lets requests in
flight finish (up to ``shutdown_timeout_s``), then releases the engine.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import cv2
from aiohttp import web

from inferpack import __version__
from inferpack.apikeys import KeyCheck
from inferpack.bundle import read_bundle
from inferpack.config import ServerConfig, data_folder
from inferpack.datasets.store import DatasetLimits, DatasetStore
from inferpack.errors import BundleError, InferpackError
from inferpack.httpio.body import BodyBudget, BodyLimits
from inferpack.httpio.protocol import EasyDLRunner
from inferpack.jobs.runner import JobRunner
from inferpack.jobs.store import JobStore
from inferpack.labeling.routes import add_labeling_routes
from inferpack.license.clock import STATE_FILE as CLOCK_STATE_FILE
from inferpack.license.errors import LicenseError
from inferpack.license.guard import LicenseGuard, RefusedLicense
from inferpack.license.pinned import trusted_key
from inferpack.license.registry import Registration, registry_dir, service_id
from inferpack.model import Model
from inferpack.runtime.batcher import DynamicBatcher
from inferpack.runtime.engine import EngineOptions
from inferpack.server.admission import MIN_ADMITTED, Admission
from inferpack.server.console import add_console_routes
from inferpack.server.data import DATA, DataServices
from inferpack.server.data_routes import add_data_routes
from inferpack.server.metrics import Metrics
from inferpack.server.middleware import AccessLogger, easydl_errors, error_response
from inferpack.server.routes import add_routes
from inferpack.server.state import STATE, ServerState, predict_path
from inferpack.server.v2_routes import add_v2_routes
from inferpack.server.yolo_routes import add_yolo_routes

log = logging.getLogger("inferpack.server")

MODEL_LOAD_FAILED = web.AppKey("inferpack_model_load_failed", asyncio.Event)


def _engine_options(config: ServerConfig) -> EngineOptions:
    return EngineOptions(
        max_batch_size=config.max_batch_size,
        intra_op_threads=config.intra_op_threads,
        cpu_streams=config.cpu_streams,
        device_id=config.device_id,
        cache_dir=config.state_dir / "engines" if config.state_dir else None,
        fp16=config.fp16,
        workspace_mb=config.workspace_mb,
        streams=config.gpu_streams,
    )


async def _load_model(app: web.Application) -> None:
    state = app[STATE]
    loop = asyncio.get_running_loop()
    started = time.perf_counter()
    try:
        bundle = read_bundle(state.config.model_dir)
        model = await loop.run_in_executor(
            None,
            Model.load,
            bundle,
            state.config.backend,
            _engine_options(state.config),
            state.config.precision,
        )
        max_batch = min(state.config.max_batch_size, model.max_batch_size or state.config.max_batch_size)
        warm = await loop.run_in_executor(None, model.warm_up, tuple(sorted({1, max_batch})))
    except Exception as exc:
        state.load_error = str(exc)
        log.exception("model %s cannot be served", state.config.model_dir)
        app[MODEL_LOAD_FAILED].set()
        return
    batcher = DynamicBatcher(
        model.run_batch,
        max_batch_size=max_batch,
        max_delay_s=state.config.max_delay_ms / 1000,
        on_batch=state.metrics.observe_batch,
        max_concurrent_batches=model.engine.concurrency,
    )
    batcher.start()
    # However slow the engine: a batch gathering while each one runs, and a client with up to
    # MIN_ADMITTED requests in flight (a batch job's worker pool) is never refused.
    state.admission.set_floor(max(MIN_ADMITTED, max_batch * (batcher.max_concurrent_batches + 1)))
    state.metrics.track_queue(lambda: batcher.queue_depth)
    state.metrics.model_load.set(time.perf_counter() - started)
    state.model, state.batcher = model, batcher
    if (data := app.get(DATA)) is not None:
        data.runner = JobRunner(data.jobs, data.datasets, model, batcher, paused=state.license_refusal)
        data.runner.start()
    log.info(
        "ready: POST %s (%s on %s, max batch %d, warm-up %.2fs, load %.2fs)",
        predict_path(state),
        model.engine.backend,
        model.engine.device,
        max_batch,
        warm,
        time.perf_counter() - started,
    )


async def _model_lifecycle(app: web.Application) -> AsyncIterator[None]:
    loader = asyncio.get_running_loop().create_task(_load_model(app), name="inferpack-model-loader")
    yield
    loader.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await loader
    state = app[STATE]
    if (data := app.get(DATA)) is not None and data.runner is not None:
        await data.runner.stop()  # before the batcher: a job's images in flight get no line
    if state.batcher is not None:
        await state.batcher.stop()
    if state.model is not None:
        state.model.engine.close()
    state.decode_pool.shutdown(wait=True)


def _license_guard(config: ServerConfig) -> LicenseGuard | RefusedLicense | None:
    """None only in development mode; without a usable license every prediction is 337000."""
    if config.development_mode:
        log.warning("development mode (--no-license): predictions are not license-checked")
        return None
    if config.license_file is None:
        return RefusedLicense("no license given: serve with --license FILE (--no-license for development)")
    assert config.state_dir is not None  # ServerConfig checks
    try:
        public_key = trusted_key(config.vendor_public_key)
        with contextlib.suppress(OSError):  # a full disk: the server keeps going (clock.py)
            config.state_dir.mkdir(parents=True, exist_ok=True)
        registration = Registration(registry_dir(), service_id(config.state_dir))
    except LicenseError as exc:
        return RefusedLicense(exc.reason)
    except OSError as exc:
        return RefusedLicense(f"cannot count this license's instances on the host: {exc}")
    return LicenseGuard(
        config.license_file,
        public_key,
        config.deploy_name,
        clock_state_path=config.state_dir / CLOCK_STATE_FILE,
        # What else this server has written: witnesses of the latest time, should the state go.
        clock_witnesses=[config.license_file, *([config.log_dir] if config.log_dir else [])],
        registration=registration,
        root=config.host_root,
        recheck_interval_s=config.license_recheck_s,
    )


async def _license_lifecycle(app: web.Application) -> AsyncIterator[None]:
    """Verifies before the first request can arrive, then keeps the verdict current."""
    guard = app[STATE].license
    if guard is None:
        yield
        return
    await asyncio.to_thread(guard.check)
    watcher = asyncio.get_running_loop().create_task(guard.run_forever(), name="inferpack-license")
    yield
    watcher.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await watcher
    guard.close()


async def init_app(config: ServerConfig) -> web.Application:
    """Builds the app; the bundle's model.json is read now so a bad bundle fails before listening."""
    spec = read_bundle(config.model_dir).spec
    # Requests already decode in parallel on the decode pool; OpenCV's own threads would only
    # compete with them and with the engine for the same cores.
    cv2.setNumThreads(1)
    metrics = Metrics()
    metrics.info.info({"version": __version__, "deploy_name": config.deploy_name, "task": spec.task})
    state = ServerState(
        config=config,
        spec=spec,
        metrics=metrics,
        decode_pool=ThreadPoolExecutor(
            max_workers=config.decode_workers, thread_name_prefix="inferpack-decode"
        ),
        body_limits=BodyLimits(
            config.max_body_bytes, config.body_timeout_s, BodyBudget(config.max_buffered_bytes)
        ),
        admission=Admission(config.max_inflight, config.latency_target_ms / 1000),
        license=_license_guard(config),
    )
    app = web.Application(middlewares=[easydl_errors], client_max_size=config.max_body_bytes)
    app[STATE] = state
    app[MODEL_LOAD_FAILED] = asyncio.Event()
    metrics.ready.set_function(lambda: float(not state.readiness_problems()))
    metrics.license_valid.set_function(lambda: float(state.license is None or state.license.state.valid))
    add_routes(app, state)
    add_v2_routes(app)
    add_data_routes(app)
    add_yolo_routes(app)
    if (folder := data_folder(config)) is not None:
        limits = DatasetLimits(max_bytes=config.max_dataset_bytes, max_images=config.max_dataset_images)
        app[DATA] = DataServices(
            DatasetStore(folder, limits), JobStore(folder, config.max_jobs), KeyCheck(folder)
        )
    add_labeling_routes(app, config.deploy_name)
    add_console_routes(app, config.deploy_name)
    app.cleanup_ctx.append(_license_lifecycle)
    app.cleanup_ctx.append(_model_lifecycle)
    return app


@dataclass
class RunningServer:
    """A started server: listening, with its model loading in the background."""

    app: web.Application
    runner: web.AppRunner

    async def wait_ready(self) -> None:
        """Returns once the model is loaded and warm; raises if it failed to load."""
        state = self.app[STATE]
        failed = self.app[MODEL_LOAD_FAILED]
        while not (state.model_loaded or failed.is_set()):
            await asyncio.sleep(0.05)
        if failed.is_set():
            raise BundleError(f"model cannot be served: {state.load_error}")

    async def stop(self) -> None:
        """Stops listening, lets requests in flight finish, then releases the engine."""
        await self.runner.cleanup()


def make_runner(app: web.Application, **extra: Any) -> EasyDLRunner:
    """The server's runner, shared with the tests' server so they run what production runs:
    protocol errors in EasyDL's shape, bodies left encoded (``read_request`` decodes them
    within the size limit)."""
    state = app[STATE]

    def answer(error: InferpackError) -> web.StreamResponse:
        log_id = state.log_ids.next()
        response = error_response(log_id, error)
        response.headers["X-Log-Id"] = str(log_id)
        return response

    return EasyDLRunner(
        app,
        answer=answer,
        auto_decompress=False,
        access_log_class=AccessLogger,
        access_log=logging.getLogger("inferpack.access"),
        handle_signals=False,
        shutdown_timeout=state.config.shutdown_timeout_s,
        **extra,
    )


async def start_server(config: ServerConfig) -> RunningServer:
    app = await init_app(config)
    runner = make_runner(app)
    await runner.setup()
    site = web.TCPSite(runner, config.host, config.port, reuse_port=config.reuse_port or None)
    await site.start()
    log.info(
        "inferpack %s listening on http://%s:%d (deploy %s)",
        __version__,
        config.host,
        config.port,
        config.deploy_name,
    )
    return RunningServer(app, runner)


async def serve(config: ServerConfig) -> int:
    """Runs the server in the foreground until SIGTERM/SIGINT; returns the process exit code."""
    running = await start_server(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    stopped = loop.create_task(stop.wait())
    failed = loop.create_task(running.app[MODEL_LOAD_FAILED].wait())
    await asyncio.wait({stopped, failed}, return_when=asyncio.FIRST_COMPLETED)
    for task in (stopped, failed):
        task.cancel()
    log.info("shutting down: finishing requests in flight (up to %.0fs)", config.shutdown_timeout_s)
    await running.stop()
    return 1 if running.app[MODEL_LOAD_FAILED].is_set() else 0
