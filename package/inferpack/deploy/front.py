"""The stable front: a small reverse proxy on the public port, in front of the backends.

Clients keep talking to the same port while versions change behind it. Each request goes to
the active backend of ``routes.json`` (polled every ``poll_interval_s``: a switch is seen
within that, and requests already sent to the old backend finish there). When a backend
connection fails before an answer (refused, reset, or a keep-alive connection a draining
backend has just closed) the front re-reads the routes and tries again, with a short backoff,
until ``retry_deadline_s``: the prediction API is idempotent, so a client never sees a
switch or a backend restart shorter than that. After the deadline it answers 336100 + 503 +
Retry-After, in EasyDL's shape. A backend that accepted the request but does not answer
within ``backend_timeout_s`` is not retried (it may still be working on it).

Bodies are read whole before they are forwarded (a retry sends them again), under the rules of
``httpio.body``: ``max_body_bytes`` each, within ``body_timeout_s``, and ``max_buffered_bytes``
for all connections together (beyond it: 336100 at once). They pass through as they came,
``Content-Encoding`` included: the server decodes them, within its own limits. Requests aiohttp's
parser refuses (over-long request line or headers) are answered in EasyDL's shape too.

``GET /_front/healthz`` is answered here (with the routes in use); every other path goes to
the backend. SIGTERM stops listening and lets requests in flight finish.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import logging
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import aiohttp
import orjson
from aiohttp import web
from multidict import CIMultiDict, CIMultiDictProxy
from yarl import URL

from inferpack.cli_errors import port_number
from inferpack.deploy.routes import FRONT_HEALTH_PATH, Backend, Routes, RoutesError, load_routes
from inferpack.easydl import LogIds, error_body, error_headers
from inferpack.errors import InferpackError, InternalError, ModelUnavailable
from inferpack.httpio.body import BodyBudget, BodyLimits, held_body
from inferpack.httpio.protocol import EasyDLRunner
from inferpack.logs import setup_logging
from inferpack.server.peer import PEER_HEADER

log = logging.getLogger("inferpack.front")

# RFC 9110 §7.6.1, plus headers this proxy sets itself (lengths are recomputed; Expect was
# already answered when the body was read here). Content-Encoding passes: the body is as it came.
HOP_BY_HOP = frozenset(
    {
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection",
        "te", "trailer", "transfer-encoding", "upgrade", "content-length", "expect",
    }
)  # fmt: skip
RETRY_AFTER_S = 2


@dataclass(frozen=True)
class FrontConfig:
    routes_file: Path | None  # one host: the routes the installer writes
    port: int
    upstream: str | None = None  # a cluster: HOST:PORT, every address HOST resolves to is a replica
    host: str = "0.0.0.0"
    retry_deadline_s: float = 10.0
    backend_timeout_s: float = 120.0
    poll_interval_s: float = 0.1
    max_body_bytes: int = 8 * 1024 * 1024  # above the server's 4 MiB: it answers oversize itself
    body_timeout_s: float = 30.0
    max_buffered_bytes: int = 128 * 1024 * 1024  # bodies held at once, all connections together
    max_connections: int = 512  # to the backends; more concurrent requests wait for one
    shutdown_timeout_s: float = 20.0
    errors_as_200: bool = False  # EasyDL errors on predictions answered with HTTP 200 (legacy clients)


class RoutesWatcher:
    """The routes in effect, re-read whenever the file's inode, times or size change (a stat
    per poll: the file is replaced by a rename, so a new version is a new inode)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.routes: Routes | None = None
        self._seen: tuple[int, ...] | None = None

    def refresh(self) -> Routes | None:
        try:
            stat = self.path.stat()
        except FileNotFoundError:
            return self.routes  # keep the last routes known: better than none
        seen = (stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns, stat.st_size)
        if seen != self._seen:
            self._seen = seen
            try:
                routes = load_routes(self.path)
            except (OSError, RoutesError) as exc:
                log.error("ignoring %s, still routing as before: %s", self.path, exc)
                return self.routes
            if routes is not None and routes != self.routes:
                log.info(
                    "routing to %s (version %s, port %d)",
                    routes.active.slot,
                    routes.active.version,
                    routes.active.port,
                )
                self.routes = routes
        return self.routes

    def next_routes(self) -> Routes | None:
        """The routes for the next request: the active backend first."""
        return self.routes

    async def poll(self, interval_s: float) -> None:
        while True:
            self.refresh()
            await asyncio.sleep(interval_s)


class Upstreams(Protocol):
    """Where the front's backends come from: routes.json (one host) or DNS (a cluster)."""

    routes: Routes | None

    def refresh(self) -> Routes | None: ...

    def next_routes(self) -> Routes | None: ...

    async def poll(self, interval_s: float) -> None: ...


class _Retryable(Exception):
    """The backend gave no answer and has not started on the request: another try is safe."""


class Front:
    def __init__(self, config: FrontConfig, watcher: Upstreams, session: aiohttp.ClientSession) -> None:
        self.config = config
        self.watcher = watcher
        self.session = session
        self.log_ids = LogIds()  # the server's scheme: ids from the front and servers sort together
        self.limits = BodyLimits(
            config.max_body_bytes, config.body_timeout_s, BodyBudget(config.max_buffered_bytes)
        )
        self.retries = 0  # backend attempts that failed before an answer and were tried again

    async def health(self, request: web.Request) -> web.Response:
        routes = self.watcher.routes
        body = {
            "status": "alive",
            "routes": routes.to_json() if routes else None,
            "retries": self.retries,
            "buffered_bytes": self.limits.budget.used_bytes,
        }
        return web.Response(body=orjson.dumps(body), content_type="application/json")

    async def proxy(self, request: web.Request) -> web.Response:
        response = await self._proxy(request)
        if self.config.errors_as_200 and request.method == "POST" and response.status >= 400:
            # Only an EasyDL error body (log_id + error_code) keeps its meaning without the status.
            with contextlib.suppress(ValueError, TypeError):
                body = orjson.loads(response.body)  # type: ignore[arg-type]
                if isinstance(body, dict) and "error_code" in body:
                    response.headers["X-Original-Status"] = str(response.status)
                    response.set_status(200)
        return response

    async def _proxy(self, request: web.Request) -> web.Response:
        try:
            async with held_body(request, self.limits) as body:
                return await self._send(request, body)
        except InferpackError as error:  # the body was refused: too large, too slow, no room
            return self.error(error, request.path)

    async def _send(self, request: web.Request, body: bytes) -> web.Response:
        headers = _request_headers(request)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.config.retry_deadline_s
        routes, delay, failure = self.watcher.next_routes(), 0.0, "no backend is routed yet"
        while True:
            for backend in routes.backends if routes else ():
                try:
                    return await self._forward(backend, request, headers, body)
                except _Retryable as exc:
                    self.retries += 1
                    failure = f"backend {backend.slot} at {backend.host}:{backend.port}: {exc}"
            remaining = deadline - loop.time()
            if remaining <= 0:
                log.warning("%s %s: no backend answered: %s", request.method, request.path, failure)
                return self.error(ModelUnavailable(failure, RETRY_AFTER_S), request.path)
            # At once the first time (a stale keep-alive connection is the common case), then backing off.
            await asyncio.sleep(min(delay, remaining))
            delay = min(max(delay * 2, 0.05), 0.5)
            routes = self.watcher.refresh()

    async def _forward(
        self, backend: Backend, request: web.Request, headers: CIMultiDict[str], body: bytes
    ) -> web.Response:
        url = URL(f"{backend.url}{request.raw_path}", encoded=True)
        try:
            async with self.session.request(
                request.method, url, headers=headers, data=body or None, allow_redirects=False
            ) as response:
                payload = await response.read()
        except aiohttp.SocketTimeoutError:
            timeout = self.config.backend_timeout_s
            return self.error(
                ModelUnavailable(f"{backend.slot} did not answer in {timeout:g}s", RETRY_AFTER_S),
                request.path,
            )
        except (aiohttp.ClientConnectionError, aiohttp.ClientPayloadError) as exc:
            raise _Retryable(str(exc) or type(exc).__name__) from exc
        except aiohttp.ClientError as exc:  # an answer that is not HTTP: not worth another try
            log.error("backend %s answered badly: %s", backend.slot, exc)
            return self.error(InternalError(f"backend {backend.slot} answered badly"), request.path)
        return web.Response(
            status=response.status,
            reason=response.reason,
            headers=_strip_hop_by_hop(response.headers),
            body=payload,
        )

    def error(self, error: InferpackError, path: str = "") -> web.Response:
        """The backend's error shape for the request's ``path``: EasyDL's, or on /v2 the protocol's."""
        # The server's log id scheme: ms since the epoch x 1000 + a sequence.
        log_id = self.log_ids.next()
        response = web.Response(
            body=orjson.dumps(error_body(log_id, error, path)),
            status=error.http_status,
            content_type="application/json",
        )
        response.headers.update({"X-Log-Id": str(log_id), **error_headers(error)})
        return response


def _strip_hop_by_hop(headers: CIMultiDictProxy[str] | CIMultiDict[str]) -> CIMultiDict[str]:
    named = {
        token.strip().lower() for value in headers.getall("Connection", []) for token in value.split(",")
    }
    drop = HOP_BY_HOP | named
    return CIMultiDict((k, v) for k, v in headers.items() if k.lower() not in drop)


def _request_headers(request: web.Request) -> CIMultiDict[str]:
    headers = _strip_hop_by_hop(request.headers)
    prior = headers.popall("X-Forwarded-For", [])
    headers["X-Forwarded-For"] = ", ".join([*prior, request.remote or "unknown"])
    headers[PEER_HEADER] = request.remote or "unknown"  # replaces a client's: the backend trusts it
    return headers


@dataclass
class RunningFront:
    runner: web.AppRunner
    session: aiohttp.ClientSession
    watcher_task: asyncio.Task[None]

    async def stop(self) -> None:
        """Stops listening, lets requests in flight finish, then closes the backend connections."""
        await self.runner.cleanup()
        self.watcher_task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await self.watcher_task
        await self.session.close()


async def start_front(config: FrontConfig) -> RunningFront:
    watcher: Upstreams
    if config.upstream is not None:
        from inferpack.deploy.upstream_dns import DnsUpstreams

        watcher = DnsUpstreams.parse(config.upstream)
        await watcher.resolve()
    elif config.routes_file is not None:
        watcher = RoutesWatcher(config.routes_file)
        watcher.refresh()
    else:
        raise ValueError("the front needs --routes or --upstream")
    session = aiohttp.ClientSession(
        connector=aiohttp.TCPConnector(limit=config.max_connections),
        timeout=aiohttp.ClientTimeout(total=None, sock_connect=2.0, sock_read=config.backend_timeout_s),
        auto_decompress=False,  # bodies pass through as they are, Content-Encoding included
        cookie_jar=aiohttp.DummyCookieJar(),  # one backend cookie must not go out with everyone's requests
        skip_auto_headers=("User-Agent", "Accept", "Accept-Encoding", "Content-Type"),
    )
    front = Front(config, watcher, session)
    app = web.Application()
    app.router.add_get(FRONT_HEALTH_PATH, front.health)
    app.router.add_route("*", "/{tail:.*}", front.proxy)
    runner = EasyDLRunner(
        app,
        answer=front.error,
        auto_decompress=False,  # forwarded as it came; the backend decodes within its limits
        access_log=None,
        handle_signals=False,
        shutdown_timeout=config.shutdown_timeout_s,
    )
    await runner.setup()
    try:
        await web.TCPSite(runner, config.host, config.port).start()
    except OSError:
        await runner.cleanup()
        await session.close()
        raise
    task = asyncio.get_running_loop().create_task(watcher.poll(config.poll_interval_s), name="routes-watcher")
    source = config.upstream or config.routes_file
    log.info("front listening on http://%s:%d, backends from %s", config.host, config.port, source)
    return RunningFront(runner, session, task)


async def run_front(config: FrontConfig) -> int:
    """Runs the front in the foreground until SIGTERM/SIGINT."""
    running = await start_front(config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    log.info("front shutting down: finishing requests in flight")
    await running.stop()
    return 0


def _front_command(args: argparse.Namespace) -> int:
    setup_logging(args.log_level, args.log_dir, file_name="front.log")
    config = FrontConfig(
        routes_file=args.routes,
        port=args.port,
        upstream=args.upstream,
        host=args.host,
        retry_deadline_s=args.retry_deadline,
        backend_timeout_s=args.backend_timeout,
        max_body_bytes=args.max_body_bytes,
        errors_as_200=args.errors_as_200,
        body_timeout_s=args.body_timeout,
        max_buffered_bytes=args.max_buffered_bytes,
    )
    return asyncio.run(run_front(config))


def add_runtime_commands(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """``front`` and ``supervise``: started by the runtimes, not by operators."""
    from inferpack.deploy.supervise import add_supervise_command

    front = subparsers.add_parser("front", help="(runtime) the stable reverse proxy on a service's port")
    front.add_argument("--port", type=port_number, required=True)
    backends = front.add_mutually_exclusive_group(required=True)
    backends.add_argument("--routes", type=Path, help="routes.json naming the active backend")
    backends.add_argument("--upstream", help="HOST:PORT; each address HOST resolves to is a backend (Swarm)")
    front.add_argument("--host", default="0.0.0.0")
    front.add_argument("--retry-deadline", type=float, default=10.0, metavar="S")
    front.add_argument("--backend-timeout", type=float, default=120.0, metavar="S")
    front.add_argument("--max-body-bytes", type=int, default=FrontConfig.max_body_bytes)
    front.add_argument("--errors-as-200", action="store_true", help="EasyDL errors on POST with HTTP 200")
    front.add_argument("--body-timeout", type=float, default=FrontConfig.body_timeout_s, metavar="S")
    front.add_argument("--max-buffered-bytes", type=int, default=FrontConfig.max_buffered_bytes)
    front.add_argument("--log-dir", type=Path, help="also write front.log here")
    front.add_argument("--log-level", default="INFO")
    front.set_defaults(handler=_front_command)
    add_supervise_command(subparsers)
