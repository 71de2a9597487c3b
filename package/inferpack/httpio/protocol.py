"""EasyDL answers for requests aiohttp refuses before any handler runs.

aiohttp's HTTP parser answers an over-long request line, an over-long header, too many
headers or a malformed request with a plain-text 400 of its own. ``EasyDLRunner`` is an
``AppRunner`` whose connections answer them in EasyDL's JSON shape instead, with the status
that names the problem: 414 for the request line, 431 for the headers, 400 otherwise (the
EasyDL code is 336001 for all). aiohttp raises the same ``LineTooLong`` for the request line
and for a header, naming the limit it hit, so the two limits differ by a byte to tell them apart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import BadHttpMessage, LineTooLong
from aiohttp.web_protocol import RequestHandler

from inferpack.errors import (
    HeadersTooLarge,
    InferpackError,
    InternalError,
    InvalidArgument,
    UriTooLong,
)

log = logging.getLogger("inferpack.http")

MAX_REQUEST_LINE = 8192
MAX_HEADER_LINE = 8191  # one less, so a LineTooLong says which it was
MAX_HEADERS = 100
# aiohttp buffers up to twice this per connection before it stops reading from the socket; its
# default (256 KiB) let 200 connections whose bodies are being refused hold 100 MiB meanwhile.
READ_BUFFER_BYTES = 64 * 1024
ErrorAnswer = Callable[[InferpackError], web.StreamResponse]


def protocol_error(status: int, exc: BaseException | None) -> InferpackError:
    """The EasyDL error for what aiohttp's parser (or a handler outside the middleware) raised."""
    if isinstance(exc, LineTooLong):
        limit = exc.args[1] if len(exc.args) > 1 else None
        if limit == MAX_REQUEST_LINE:
            return UriTooLong(f"the request line is over {MAX_REQUEST_LINE} bytes")
        return HeadersTooLarge(f"a header line is over {MAX_HEADER_LINE} bytes")
    if isinstance(exc, BadHttpMessage):
        if "too many headers" in exc.message.lower():
            return HeadersTooLarge(f"more than {MAX_HEADERS} headers")
        return InvalidArgument(f"malformed HTTP request: {exc.message}")
    if status < 500:
        return InvalidArgument(f"malformed HTTP request (HTTP {status})")
    return InternalError()


class _EasyDLRequestHandler(RequestHandler):
    def __init__(self, manager: web.Server, answer: ErrorAnswer, **kwargs: Any) -> None:
        super().__init__(manager, **kwargs)
        self._answer = answer

    def handle_error(
        self,
        request: web.BaseRequest,
        status: int = 500,
        exc: BaseException | None = None,
        message: str | None = None,
    ) -> web.StreamResponse:
        if request.writer.output_size > 0:  # an answer has started: nothing more can be said
            raise ConnectionError("the response was already started")
        error = protocol_error(status, exc)
        if isinstance(error, InternalError):
            log.error("unexpected failure handling a request from %s", request.remote, exc_info=exc)
        else:
            log.info("refused a request from %s: %s", request.remote, error.error_msg)
        response = self._answer(error)
        response.force_close()
        return response


class _EasyDLServer(web.Server):
    def __init__(self, base: web.Server, answer: ErrorAnswer, loop: asyncio.AbstractEventLoop) -> None:
        super().__init__(
            base.request_handler,
            request_factory=base.request_factory,
            handler_cancellation=base.handler_cancellation,
            loop=loop,
            **base._kwargs,
        )
        self._answer = answer

    def __call__(self) -> RequestHandler:
        return _EasyDLRequestHandler(self, self._answer, loop=self._loop, **self._kwargs)


class EasyDLRunner(web.AppRunner):
    """An ``AppRunner`` with the request limits above, a smaller read buffer per connection, and
    EasyDL answers to protocol errors."""

    def __init__(self, app: web.Application, *, answer: ErrorAnswer, **kwargs: Any) -> None:
        kwargs.setdefault("max_line_size", MAX_REQUEST_LINE)
        kwargs.setdefault("max_field_size", MAX_HEADER_LINE)
        kwargs.setdefault("max_headers", MAX_HEADERS)
        kwargs.setdefault("read_bufsize", READ_BUFFER_BYTES)
        super().__init__(app, **kwargs)
        self._answer = answer

    async def _make_server(self) -> web.Server:
        return _EasyDLServer(await super()._make_server(), self._answer, asyncio.get_running_loop())
