"""EasyDL's error answer in one place, for the server and the front alike: the log id scheme and
the ``{"log_id", "error_code", "error_msg"}`` body (``{"error"}`` on the /v2 routes) with its
headers. Standard library only."""

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


V2_PREFIX = "/v2"  # the open inference protocol's routes (server/v2_routes.py)


def error_body(log_id: int, error: InferpackError, path: str = "") -> dict[str, Any]:
    """EasyDL's body; for a request under ``/v2`` the open inference protocol's ``{"error": msg}``
    (all that tritonclient and other v2 clients read)."""
    if path == V2_PREFIX or path.startswith(V2_PREFIX + "/"):
        return {"error": error.error_msg}
    return {"log_id": log_id, "error_code": error.code, "error_msg": error.error_msg}


def error_headers(error: InferpackError) -> dict[str, str]:
    """What an error answer carries besides its body (the log id header is every answer's)."""
    return {"Retry-After": str(error.retry_after_s)} if isinstance(error, ModelUnavailable) else {}
