"""Reading request bodies on a public port (the front and the server) without trusting the client.

A body is read before the request takes any other resource, under three bounds:
- a size limit, checked as bytes arrive (``Content-Length`` is not believed);
- a deadline for the whole body: a client trickling a byte every few seconds, or gone quiet
  half-way, is answered 408;
- a budget shared by every connection, the bytes all bodies being read or held may take
  together: past it a request is refused at once with 336100 + Retry-After, so 200 half-sent
  uploads of 8 MB cost the budget, not 1.6 GB. (Beyond the budget, each connection may hold
  aiohttp's read buffer, 2 x 64 KiB with ``EasyDLRunner``, and one socket read of 256 KiB.)

``Content-Encoding`` is left to the caller: the front passes bodies through as they are, and the
server decodes them with ``decode_content`` (identity, gzip and deflate; others 415), the decoded
size under the same limit, so a gzip bomb stops at the limit.
"""

from __future__ import annotations

import asyncio
import contextlib
import zlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

from aiohttp import web

from inferpack.errors import (
    InvalidArgument,
    ModelUnavailable,
    PayloadTooLarge,
    RequestTimeout,
    UnsupportedEncoding,
)
from inferpack.httpio.memory import HeapTrimmer

CHUNK_BYTES = 64 * 1024
RETRY_AFTER_S = 2
# zlib's window bits: 16 + 15 reads the gzip wrapper; 15 the zlib one (HTTP's "deflate");
# -15 raw deflate, which some clients send as "deflate" all the same.
_GZIP, _ZLIB, _RAW = 16 + zlib.MAX_WBITS, zlib.MAX_WBITS, -zlib.MAX_WBITS
ENCODINGS = {"gzip": (_GZIP,), "x-gzip": (_GZIP,), "deflate": (_ZLIB, _RAW)}


@dataclass
class BodyBudget:
    """Bytes of request bodies held at once across every connection."""

    limit_bytes: int
    used_bytes: int = 0
    trimmer: HeapTrimmer = field(default_factory=HeapTrimmer, repr=False)

    def take(self, size: int) -> None:
        if self.used_bytes + size > self.limit_bytes:
            raise ModelUnavailable(
                f"request bodies being received take {self.used_bytes} bytes, "
                f"the limit for all connections is {self.limit_bytes}",
                RETRY_AFTER_S,
            )
        self.used_bytes += size

    def give_back(self, size: int) -> None:
        self.used_bytes -= size
        if size:
            self.trimmer.released(size)


@dataclass(frozen=True)
class BodyLimits:
    max_bytes: int
    timeout_s: float
    budget: BodyBudget


@contextlib.asynccontextmanager
async def held_body(request: web.BaseRequest, limits: BodyLimits) -> AsyncIterator[bytes]:
    """The body as it came (still encoded), counted against the budget until the block ends.

    After a refusal aiohttp reads and drops whatever more comes for its ``lingering_time``
    (10 s), so that the client reads the answer, then closes the connection.
    """
    reading = _Reading(limits)
    try:
        yield await reading.read(request)
    finally:
        limits.budget.give_back(reading.held)


@dataclass
class _Reading:
    limits: BodyLimits
    held: int = 0  # taken from the budget so far

    async def read(self, request: web.BaseRequest) -> bytes:
        limit = self.limits.max_bytes
        if request.content_length is not None and request.content_length > limit:
            raise PayloadTooLarge(f"request body is {request.content_length} bytes, the limit is {limit}")
        chunks: list[bytes] = []
        try:
            await self._receive(request, chunks)
        except BaseException:
            # A traceback keeps this frame alive until the cyclic GC runs: drop the chunks now.
            chunks.clear()
            raise
        return b"".join(chunks)

    async def _receive(self, request: web.BaseRequest, chunks: list[bytes]) -> None:
        limit = self.limits.max_bytes
        try:
            async with asyncio.timeout(self.limits.timeout_s):
                async for chunk in request.content.iter_chunked(CHUNK_BYTES):
                    if self.held + len(chunk) > limit:
                        raise PayloadTooLarge(f"request body is over the limit of {limit} bytes")
                    self.limits.budget.take(len(chunk))
                    self.held += len(chunk)
                    chunks.append(chunk)
        except ConnectionError:
            raise InvalidArgument("the client closed the connection before its body arrived") from None
        except TimeoutError:
            raise RequestTimeout(
                f"the body did not arrive within {self.limits.timeout_s:g}s ({self.held} bytes came)"
            ) from None


def decode_content(body: bytes, content_encoding: str, limit: int) -> bytes:
    """The body with its ``Content-Encoding`` undone (codings applied in order, undone last
    first), never decoding more than ``limit`` bytes."""
    codings = [c.strip().lower() for c in content_encoding.split(",") if c.strip()]
    for coding in reversed(codings):
        if coding == "identity":
            continue
        if coding not in ENCODINGS:
            raise UnsupportedEncoding(
                f"Content-Encoding {coding!r} is not accepted; send identity, gzip or deflate"
            )
        body = _inflate(body, coding, limit)
    return body


def _inflate(data: bytes, coding: str, limit: int) -> bytes:
    for wbits in ENCODINGS[coding]:
        inflater = zlib.decompressobj(wbits)
        try:
            out = inflater.decompress(data, limit + 1)
        except zlib.error:
            continue
        if len(out) > limit:
            raise PayloadTooLarge(f"the {coding} body decodes to over {limit} bytes, the limit")
        if inflater.eof and not inflater.unused_data:
            return out
    raise InvalidArgument(f"the body is not valid {coding} data (Content-Encoding: {coding})")
