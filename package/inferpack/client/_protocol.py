"""What the blocking and the asyncio clients share: the service's URL, request bodies, reading
answers into results or typed errors, and how long to wait before a retry.

Standard library only; OpenCV is imported only when a caller passes an image array.
"""

from __future__ import annotations

import base64
import json
import logging
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Union
from urllib.parse import urlsplit

from inferpack.client.errors import ERRORS_BY_CODE, ApiError, ModelUnavailableError, TransportError
from inferpack.client.results import Prediction, parse_prediction

if TYPE_CHECKING:
    import numpy as np
    from numpy.typing import NDArray

log = logging.getLogger("inferpack.client")

# The EasyDL routes, and whether each answers boxes.
ROUTES = {"ImageClassification": False, "ObjectDetection": True}
# A path, the encoded file's bytes, or a decoded image as OpenCV holds it (BGR uint8 array).
ImageSource = Union[str, os.PathLike[str], bytes, bytearray, memoryview, "NDArray[np.uint8]"]
USER_AGENT = "inferpack-client"


@dataclass(frozen=True)
class Service:
    """``http://HOST:PORT/NAME`` (or a prediction route under it), taken apart."""

    scheme: str
    host: str
    port: int
    name: str
    detection: bool | None  # None until /info says (the URL named no route)

    @classmethod
    def parse(cls, url: str) -> Service:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        segments = [s for s in parts.path.split("/") if s]
        detection = ROUTES.get(segments[-1]) if segments else None
        if detection is not None:
            segments.pop()
        if parts.scheme not in ("http", "https") or not parts.hostname or len(segments) != 1:
            raise ValueError(f"{url!r} is not a service URL like http://HOST:PORT/NAME")
        default_port = 443 if parts.scheme == "https" else 80
        return cls(parts.scheme, parts.hostname, parts.port or default_port, segments[0], detection)

    @property
    def origin(self) -> str:
        return f"{self.scheme}://{self.host}:{self.port}"

    def route(self, detection: bool) -> str:
        return f"/{self.name}/{'ObjectDetection' if detection else 'ImageClassification'}"


def image_bytes(image: ImageSource) -> bytes:
    """The encoded image file to send."""
    if isinstance(image, (bytes, bytearray, memoryview)):
        return bytes(image)
    if isinstance(image, (str, os.PathLike)):
        return Path(image).read_bytes()
    if hasattr(image, "shape") and hasattr(image, "dtype"):
        import cv2  # only for a caller that already holds pixels, so it has OpenCV

        ok, encoded = cv2.imencode(".png", image)  # lossless: the server sees these exact pixels
        if not ok:
            raise ValueError(f"OpenCV cannot encode an array of shape {image.shape} and {image.dtype}")
        return bytes(encoded.tobytes())
    raise TypeError(f"an image is a path, bytes or an OpenCV image array, not {type(image).__name__}")


def request_body(image: ImageSource, top_num: int | None, threshold: float | None) -> bytes:
    payload: dict[str, Any] = {"image": base64.b64encode(image_bytes(image)).decode("ascii")}
    if top_num is not None:
        payload["top_num"] = top_num
    if threshold is not None:
        payload["threshold"] = threshold
    return json.dumps(payload).encode()


JSON_HEADERS = {"Content-Type": "application/json", "Accept": "application/json", "User-Agent": USER_AGENT}


def _retry_after(headers: Mapping[str, str]) -> float:
    value = headers.get("retry-after", "")
    try:
        return max(0.0, float(value))
    except ValueError:  # absent, or an HTTP date: wait a second
        return 1.0


def _decode(status: int, data: bytes) -> dict[str, Any]:
    try:
        answer = json.loads(data)
    except ValueError:
        answer = None
    if not isinstance(answer, dict):
        raise TransportError(f"HTTP {status}, not an EasyDL answer: {data[:200]!r}")
    return answer


def read_json(status: int, headers: Mapping[str, str], data: bytes) -> dict[str, Any]:
    """A successful answer's JSON object, or the typed error it carries (header names lower case)."""
    if status == 503 and not data.lstrip().startswith(b"{"):
        # e.g. a proxy in front of a busy service: as retryable as the service's own 336100
        raise ModelUnavailableError(336100, f"HTTP 503: {data[:200]!r}", None, status, _retry_after(headers))
    answer = _decode(status, data)
    code = answer.get("error_code")
    if code is None and status == 200:
        return answer
    if not isinstance(code, int):
        raise TransportError(f"HTTP {status} without an EasyDL error_code: {data[:200]!r}")
    msg, log_id = str(answer.get("error_msg", "")), answer.get("log_id")
    log_id = log_id if isinstance(log_id, int) else None
    if code == ModelUnavailableError.code:
        raise ModelUnavailableError(code, msg, log_id, status, _retry_after(headers))
    raise ERRORS_BY_CODE.get(code, ApiError)(code, msg, log_id, status)


def read_prediction(status: int, headers: Mapping[str, str], data: bytes, detection: bool) -> Prediction:
    answer = read_json(status, headers, data)
    try:
        return parse_prediction(answer, detection)
    except (KeyError, TypeError, ValueError) as exc:
        raise TransportError(f"an answer without the EasyDL results shape: {data[:200]!r}") from exc


@dataclass(frozen=True)
class RetryPolicy:
    """336100 (overloaded, loading) is retried up to ``retries`` times, each after the server's
    Retry-After but never longer than ``max_wait_s``."""

    retries: int = 3
    max_wait_s: float = 10.0

    def wait_s(self, attempt: int, error: ModelUnavailableError) -> float | None:
        """Seconds to wait before retry number ``attempt + 1``, or None: give up and raise."""
        if attempt >= self.retries:
            return None
        wait = min(error.retry_after_s, self.max_wait_s)
        log.info(
            "%s (log_id %s): retry %d of %d in %.2fs",
            error.error_msg,
            error.log_id,
            attempt + 1,
            self.retries,
            wait,
        )
        return wait
