"""Giving the memory of large request bodies back to the system once they are gone.

Bodies arrive in chunks of up to 256 KiB that glibc serves from its heap; freed, they stay
in the process (RSS) unless the heap is trimmed, so a burst of large uploads would keep the
front or server at its peak for good. ``malloc_trim`` returns free heap pages; it costs a
walk of the heap (~1 ms), so it runs at most once per ``MIN_INTERVAL_S`` (later, if
released bytes arrive sooner) and only once at least ``MIN_BYTES`` of bodies were released.
"""

from __future__ import annotations

import asyncio
import ctypes
import time
from collections.abc import Callable

MIN_BYTES = 4 * 1024 * 1024
MIN_INTERVAL_S = 1.0


def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL(None).malloc_trim  # glibc only: None elsewhere
    except (OSError, AttributeError):
        return None
    return trim


class HeapTrimmer:
    """Call ``released`` as bodies are dropped; trims when enough was released, not too often."""

    def __init__(self) -> None:
        self._trim = _malloc_trim()
        self._released = 0
        self._last = 0.0
        self._scheduled: asyncio.TimerHandle | None = None

    def released(self, size: int) -> None:
        self._released += size
        if self._trim is None or self._released < MIN_BYTES or self._scheduled is not None:
            return
        # Later, never now: the caller's frames (and a traceback's) may still hold the bodies.
        wait = max(0.0, self._last + MIN_INTERVAL_S - time.monotonic())
        self._scheduled = asyncio.get_running_loop().call_later(wait, self._run)

    def _run(self) -> None:
        assert self._trim is not None
        self._trim(0)
        self._released, self._last, self._scheduled = 0, time.monotonic(), None
