"""The one place where failures become EasyDL error responses, and where requests are counted.

Every request gets a ``log_id`` first; every answer, success or error, carries it (``X-Log-Id``
header, and the body in EasyDL's shape) and so does the access log line. ``InferpackError``s map
to their code and HTTP status; anything unexpected is logged with its traceback and answered
336000. Under ``/v2`` the body takes the open inference protocol's shape, ``{"error": msg}``.
"""

from __future__ import annotations

import logging
import time
from typing import Any

import orjson
from aiohttp import web
from aiohttp.abc import AbstractAccessLogger
from aiohttp.typedefs import Handler

from inferpack.easydl import error_body, error_headers
from inferpack.errors import (
    InferpackError,
    InternalError,
    MethodNotAllowed,
    ModelUnavailable,
    UnknownRoute,
)
from inferpack.server.state import ERROR_CODE, LOG_ID, STATE, predict_path

log = logging.getLogger("inferpack.server")
access_log = logging.getLogger("inferpack.access")


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(body=orjson.dumps(data), status=status, content_type="application/json")


def error_response(log_id: int, error: InferpackError, path: str = "") -> web.Response:
    """The error body for the request's ``path`` (``easydl.error_body``), status and headers."""
    response = json_response(error_body(log_id, error, path), status=error.http_status)
    response.headers.update(error_headers(error))
    return response


def _route_label(request: web.Request) -> str:
    # Unmatched paths share one label so scanners can't blow up the metric's cardinality.
    return request.match_info.route.name or "unmatched"


def _from_http_exception(exc: web.HTTPException, request: web.Request) -> InferpackError:
    """The router's 404/405 in EasyDL's body shape, saying which route this service does answer."""
    state = request.app[STATE]
    detail = f"{request.method} {request.path}: {exc.reason}; this service answers POST {predict_path(state)}"
    return MethodNotAllowed(detail) if exc.status == 405 else UnknownRoute(detail)


@web.middleware
async def easydl_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    state = request.app[STATE]
    log_id = state.log_ids.next()
    request[LOG_ID] = log_id
    if state.license is None:  # said on every request, so no one mistakes it for a product
        log.warning(
            "development mode (--no-license): %s %s with no license check", request.method, request.path
        )
    started = time.perf_counter()
    code = 0
    try:
        response = await handler(request)
    except InferpackError as error:
        code = error.code
        response = error_response(log_id, error, request.path)
        # Overload refusals come by the hundred per second, each in the access log already.
        level = logging.DEBUG if isinstance(error, ModelUnavailable) else logging.INFO
        log.log(level, "log_id=%d error_code=%d %s", log_id, error.code, error.error_msg)
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        routing_error = _from_http_exception(exc, request)
        code = routing_error.code
        response = error_response(log_id, routing_error, request.path)
    except Exception:
        code = InternalError.code
        log.exception("log_id=%d unexpected failure on %s %s", log_id, request.method, request.path)
        response = error_response(log_id, InternalError(), request.path)
    request[ERROR_CODE] = code
    response.headers["X-Log-Id"] = str(log_id)
    route = _route_label(request)
    state.metrics.requests.labels(route, str(code)).inc()
    state.metrics.latency.labels(route).observe(time.perf_counter() - started)
    return response


class AccessLogger(AbstractAccessLogger):
    """One line per request with its log_id and EasyDL code, so an operator can find a failing call."""

    def log(self, request: web.BaseRequest, response: web.StreamResponse, time: float) -> None:
        self.logger.info(
            '%s "%s %s" %d %d %.1fms log_id=%s error_code=%s',
            request.remote,
            request.method,
            request.path_qs,
            response.status,
            response.body_length,
            time * 1000,
            request.get(LOG_ID, "-"),
            request.get(ERROR_CODE, "-"),
        )
