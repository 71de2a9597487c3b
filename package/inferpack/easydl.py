"""EasyDL's error answer in one place, for the server and the front alike: the log id scheme and
the ``{"log_id", "error_code", "error_msg"}`` body with its headers. Standard library only."""

from __future__ import annotations

import itertools
import time
from typing import Any

from inferpack.errors import InferpackError, ModelUnavailable


class LogIds:
    """Unique, time-ordered request ids that stay exact as JSON numbers (< 2**53):
    milliseconds since the epoch x 1000 + a per-process sequence."""

    def __init__(self) -> None:
        self._sequence = itertools.count()

    def next(self) -> int:
        return int(time.time() * 1000) * 1000 + next(self._sequence) % 1000


def error_body(log_id: int, error: InferpackError) -> dict[str, Any]:
    return {"log_id": log_id, "error_code": error.code, "error_msg": error.error_msg}


def error_headers(error: InferpackError) -> dict[str, str]:
    """What an error answer carries besides its body (the log id header is every answer's)."""
    return {"Retry-After": str(error.retry_after_s)} if isinstance(error, ModelUnavailable) else {}
