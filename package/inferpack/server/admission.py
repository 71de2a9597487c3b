"""Admission: which prediction requests the server takes on, decided before any work is spent.

A request is checked twice: before its body is read (refused at once, nothing read, when no
slot is free) and when it takes a slot, once its body is in (slow clients never hold one). The
slot is held through decoding, the queue and the engine run, so every request admitted is
answered: nothing is refused after its image was decoded. Refusals are 336100 + Retry-After.

How many slots: as many as the server can finish within ``latency_target_s``. Each window
of ``WINDOW_S`` measures the completion rate X and the mean time in the server W; when the
limit was reached (requests refused) or W is over the target, the limit becomes X x target
(Little's law), smoothed, between ``floor`` (enough samples to keep every batch slot of the
engine full) and ``max_inflight``. Too low a limit lets W fall under the target, and the next
window raises it; too high a limit queues requests past the target, and the next lowers it.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator

from inferpack.errors import ModelUnavailable

WINDOW_S = 0.5
SMOOTHING = 0.5  # weight of the newest estimate


class Admission:
    def __init__(self, max_inflight: int, latency_target_s: float, floor: int = 1) -> None:
        self.ceiling = max_inflight
        self.floor = min(floor, max_inflight)
        self.target_s = latency_target_s
        self.limit = float(max_inflight)
        self.admitted = 0
        self._window_start = time.monotonic()
        self._completed = 0
        self._time_in_server = 0.0
        self._refused = False

    def set_floor(self, floor: int) -> None:
        """Once the engine is known: its batch slots (max batch x batches at once)."""
        self.floor = max(1, min(floor, self.ceiling))

    def check(self) -> None:
        if self.admitted >= int(self.limit):
            self._refused = True
            raise ModelUnavailable(
                f"server is at its limit of {int(self.limit)} requests in flight "
                f"(what it can answer within {self.target_s * 1000:g} ms)"
            )

    @contextlib.contextmanager
    def slot(self) -> Iterator[None]:
        self.check()
        started = time.monotonic()
        if self.admitted == 0 and self._completed == 0:
            self._window_start = started  # an idle spell is not a slow engine
        self.admitted += 1
        try:
            yield
        finally:
            self.admitted -= 1
            self._completed_one(time.monotonic(), started)

    def _completed_one(self, now: float, started: float) -> None:
        self._completed += 1
        self._time_in_server += now - started
        elapsed = now - self._window_start
        if elapsed < WINDOW_S:
            return
        mean_s = self._time_in_server / self._completed
        if self._refused or mean_s > self.target_s:
            estimate = self._completed / elapsed * self.target_s
            smoothed = SMOOTHING * estimate + (1 - SMOOTHING) * self.limit
            self.limit = min(float(self.ceiling), max(float(self.floor), smoothed))
        self._window_start, self._completed, self._time_in_server, self._refused = now, 0, 0.0, False
