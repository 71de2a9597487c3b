"""The prediction steps every protocol shares: admission, decode, batching.

The EasyDL routes and the open inference protocol routes both go through ``admitted`` (license,
model loaded, the body read, admission, licensed rate) and then ``infer_image`` /
``infer_sample``, so one request costs the same wherever it arrives and the batcher mixes them
in the same batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np
from aiohttp import web

from inferpack.httpio.body import decode_content, held_body
from inferpack.model import Model
from inferpack.runtime.batcher import DynamicBatcher
from inferpack.server.state import ServerState
from inferpack.vision.preprocess import Transform


@dataclass(frozen=True)
class Serving:
    """What an admitted request predicts with, and its body (decoded)."""

    state: ServerState
    model: Model
    batcher: DynamicBatcher
    body: bytes

    async def infer_image(self, image: bytes) -> tuple[np.ndarray, Transform]:
        """Encoded image -> the model's output row and the way back to the image's pixels."""
        loop = asyncio.get_running_loop()
        prepared = await loop.run_in_executor(self.state.decode_pool, self.model.prepare, image)
        return await self.batcher.submit(prepared.sample), prepared.transform

    async def infer_sample(self, sample: np.ndarray) -> np.ndarray:
        """A pre-processed model-input sample -> the model's output row."""
        return await self.batcher.submit(sample)


@asynccontextmanager
async def admitted(state: ServerState, request: web.Request) -> AsyncIterator[Serving]:
    """License, a loaded model, the body, an admission slot and the licensed rate, or the error
    that says which.

    Admission is checked before the body is read (refused at once, nothing read, when the server
    is full) and the slot taken once the body is in, so clients sending slowly hold none (the
    body has its deadline). The body is decoded (``Content-Encoding``) only once admitted.
    """
    state.require_license()
    model, batcher = state.serving()
    state.admission.check()
    async with held_body(request, state.body_limits) as raw:
        with state.admission.slot():
            state.metrics.inflight.inc()
            try:
                state.admit_rate()
                encoding = request.headers.get("Content-Encoding", "")
                body = decode_content(raw, encoding, state.config.max_body_bytes) if encoding else raw
                yield Serving(state, model, batcher, body)
            finally:
                state.metrics.inflight.dec()
