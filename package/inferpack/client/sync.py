"""The blocking client: one keep-alive connection (``http.client``), safe to share between threads
(calls take turns; give each thread its own ``Client`` for parallel requests)."""

from __future__ import annotations

import http.client
import threading
import time
from types import TracebackType
from typing import Any

from inferpack.client._protocol import (
    JSON_HEADERS,
    ImageSource,
    RetryPolicy,
    Service,
    read_json,
    read_prediction,
    request_body,
)
from inferpack.client.errors import ModelUnavailableError, TransportError
from inferpack.client.results import Classification, Detections, Prediction

Answer = tuple[int, dict[str, str], bytes]


class Client:
    """``Client("http://HOST:PORT/NAME")``: classify/detect/predict an image path, bytes or array.

    ``timeout_s`` bounds each attempt (connect and answer); a 336100 answer (overloaded,
    loading) is retried ``retries`` times after its Retry-After, capped at ``max_retry_wait_s``.
    """

    def __init__(
        self, url: str, *, timeout_s: float = 30.0, retries: int = 3, max_retry_wait_s: float = 10.0
    ) -> None:
        self.service = Service.parse(url)
        self.timeout_s = timeout_s
        self.policy = RetryPolicy(retries, max_retry_wait_s)
        self._detection = self.service.detection
        self._connection: http.client.HTTPConnection | None = None
        self._reused = False
        self._lock = threading.Lock()

    def _connect(self) -> http.client.HTTPConnection:
        if self._connection is None:
            kind = (
                http.client.HTTPSConnection if self.service.scheme == "https" else http.client.HTTPConnection
            )
            self._connection = kind(self.service.host, self.service.port, timeout=self.timeout_s)
            self._reused = False
        return self._connection

    def _send(self, method: str, path: str, body: bytes | None) -> Answer:
        connection = self._connect()
        try:
            connection.request(method, path, body=body, headers=JSON_HEADERS)
            response = connection.getresponse()
            data = response.read()
        except BaseException:
            self.close()
            raise
        if response.will_close:
            self.close()
        else:
            self._reused = True
        return response.status, {k.lower(): v for k, v in response.getheaders()}, data

    def _request(self, method: str, path: str, body: bytes | None = None) -> Answer:
        with self._lock:
            try:
                try:
                    return self._send(method, path, body)
                except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                    if not self._reused:
                        raise
                # The server closed the idle keep-alive connection first: once more, on a new one.
                return self._send(method, path, body)
            except TimeoutError as exc:
                raise TransportError(
                    f"no answer from {self.service.origin} within {self.timeout_s}s"
                ) from exc
            except (OSError, http.client.HTTPException) as exc:
                raise TransportError(f"{self.service.origin}: {exc}") from exc

    def _predict(self, detection: bool, body: bytes) -> Prediction:
        attempt = 0
        while True:
            try:
                return read_prediction(*self._request("POST", self.service.route(detection), body), detection)
            except ModelUnavailableError as error:
                wait = self.policy.wait_s(attempt, error)
                if wait is None:
                    raise
            time.sleep(wait)
            attempt += 1

    def info(self) -> dict[str, Any]:
        """The service's ``/info``: model, labels, engine, license."""
        return read_json(*self._request("GET", "/info"))

    def classify(self, image: ImageSource, top_num: int | None = None) -> Classification:
        result = self._predict(False, request_body(image, top_num, None))
        assert isinstance(result, Classification)
        return result

    def detect(self, image: ImageSource, threshold: float | None = None) -> Detections:
        result = self._predict(True, request_body(image, None, threshold))
        assert isinstance(result, Detections)
        return result

    def predict(
        self, image: ImageSource, *, top_num: int | None = None, threshold: float | None = None
    ) -> Prediction:
        """Classifies or detects, as the service does (its URL's route, or else its /info)."""
        if self._detection is None:
            self._detection = self.info().get("task") == "detection"
        return self._predict(self._detection, request_body(image, top_num, threshold))

    def close(self) -> None:
        if self._connection is not None:
            self._connection.close()
            self._connection = None

    def __enter__(self) -> Client:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
