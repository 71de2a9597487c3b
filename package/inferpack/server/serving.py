"""The prediction steps every protocol shares: admission, decode, batching.

The EasyDL routes and the open inference protocol routes both go through ``admitted`` (license,
model loaded, in-flight limit, licensed rate) and then ``infer_image`` / ``infer_sample``, so
one request costs the same wherever it arrives and the batcher mixes them in the same batches.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

import numpy as np

from inferpack.errors import ModelUnavailable
from inferpack.model import Model
from inferpack.runtime.batcher import DynamicBatcher
from inferpack.server.state import ServerState
from inferpack.vision.preprocess import Transform


@dataclass(frozen=True)
class Serving:
    """What an admitted request predicts with."""

    state: ServerState
    model: Model
    batcher: DynamicBatcher

    async def infer_image(self, image: bytes) -> tuple[np.ndarray, Transform]:
        """Encoded image -> the model's output row and the way back to the image's pixels."""
        loop = asyncio.get_running_loop()
        prepared = await loop.run_in_executor(self.state.decode_pool, self.model.prepare, image)
        return await self.batcher.submit(prepared.sample), prepared.transform

    async def infer_sample(self, sample: np.ndarray) -> np.ndarray:
        """A pre-processed model-input sample -> the model's output row."""
        return await self.batcher.submit(sample)


@asynccontextmanager
async def admitted(state: ServerState) -> AsyncIterator[Serving]:
    """License, a loaded model, the in-flight limit and the licensed rate, or the error that says which."""
    state.require_license()
    model, batcher = state.serving()
    # Admission control: bounded work in flight means bounded memory and latency.
    if state.inflight >= state.config.max_inflight:
        raise ModelUnavailable(f"server is at its limit of {state.config.max_inflight} requests in flight")
    state.inflight += 1
    state.metrics.inflight.inc()
    try:
        state.admit_rate()
        yield Serving(state, model, batcher)
    finally:
        state.inflight -= 1
        state.metrics.inflight.dec()
