"""Admission: which prediction requests the server takes on, decided before any work is spent.

A request is checked twice: before its body is read (refused at once, nothing read, when no
slot is free) and when it takes a slot, once its body is in (slow clients never hold one). The
slot is held through decoding, the queue and the engine run, so every request admitted is
answered: nothing is refused after its image was decoded. Refusals are 336100 + Retry-After.

How many slots: as many as the server can answer within ``latency_target_s``. Every window
of ``WINDOW_S`` measures the completion rate X and the mean time in the server W. When the
server is saturated (requests were refused, or W is over the target) the limit becomes
median(X over the last ``WINDOWS`` windows) x target (Little's law), between ``floor``
(enough to keep the engine's batches full, and at least ``MIN_ADMITTED``) and
``max_inflight``. The median, not the last X: a window in which the machine stalled (another
process took the core) or caught up does not move the limit much; a slower engine shows
within ``WINDOWS`` windows. Too low a limit keeps W under the target, and refusals then raise
it to X x target; too high a limit lets W pass the target and the next window lowers it.
"""

from __future__ import annotations

import collections
import contextlib
import statistics
import time
from collections.abc import Iterator

from inferpack.errors import ModelUnavailable

WINDOW_S = 0.5
WINDOWS = 10
MIN_ADMITTED = 32  # the least the limit falls to (if max_inflight allows)


class Admission:
    def __init__(self, max_inflight: int, latency_target_s: float, floor: int = 1) -> None:
        self.ceiling = max_inflight
        self.floor = min(floor, max_inflight)
        self.target_s = latency_target_s
        self.limit = float(max_inflight)
        self.admitted = 0
        self._rates: collections.deque[float] = collections.deque(maxlen=WINDOWS)
        self._window_start = time.monotonic()
        self._completed = 0
        self._time_in_server = 0.0
        self._refused = False

    def set_floor(self, floor: int) -> None:
        """Once the engine is known (see ``MIN_ADMITTED``)."""
        self.floor = max(1, min(floor, self.ceiling))

    def check(self) -> None:
        if self.admitted >= int(self.limit):
            self._refused = True
            raise ModelUnavailable(
                f"server is at its limit of {int(self.limit)} requests in flight "
                f"(what it answers within {self.target_s * 1000:g} ms)"
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
        self._rates.append(self._completed / elapsed)
        if self._refused or self._time_in_server / self._completed > self.target_s:
            estimate = statistics.median(self._rates) * self.target_s
            self.limit = min(float(self.ceiling), max(float(self.floor), estimate))
        self._window_start, self._completed, self._time_in_server, self._refused = now, 0, 0.0, False
