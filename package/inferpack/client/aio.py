"""The asyncio client, on aiohttp (the one optional dependency of ``inferpack.client``).

One ``aiohttp.ClientSession`` per client: connections are kept alive and shared by the
concurrent calls made through it.
"""

from __future__ import annotations

import asyncio
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
from inferpack.client.errors import ClientError, ModelUnavailableError, TransportError
from inferpack.client.results import Classification, Detections, Prediction

try:
    import aiohttp
except ImportError as missing:  # pragma: no cover - the blocking Client needs nothing
    raise ClientError("inferpack.client.AsyncClient needs aiohttp: pip install aiohttp") from missing

Answer = tuple[int, dict[str, str], bytes]


class AsyncClient:
    """``async with AsyncClient("http://HOST:PORT/NAME") as client: await client.classify(path)``.

    The same calls, timeouts and retries as the blocking ``Client``.
    """

    def __init__(
        self,
        url: str,
        *,
        timeout_s: float = 30.0,
        retries: int = 3,
        max_retry_wait_s: float = 10.0,
        max_connections: int = 100,
    ) -> None:
        self.service = Service.parse(url)
        self.timeout_s = timeout_s
        self.policy = RetryPolicy(retries, max_retry_wait_s)
        self._detection = self.service.detection
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    def _open(self) -> aiohttp.ClientSession:
        if self._session is None:
            self._session = aiohttp.ClientSession(
                self.service.origin,
                connector=aiohttp.TCPConnector(limit=self._max_connections),
                timeout=aiohttp.ClientTimeout(total=self.timeout_s),
                headers=JSON_HEADERS,
            )
        return self._session

    async def _request(self, method: str, path: str, body: bytes | None = None) -> Answer:
        try:
            async with self._open().request(method, path, data=body) as response:
                data = await response.read()
                return response.status, {k.lower(): v for k, v in response.headers.items()}, data
        except TimeoutError as exc:
            raise TransportError(f"no answer from {self.service.origin} within {self.timeout_s}s") from exc
        except aiohttp.ClientError as exc:
            raise TransportError(f"{self.service.origin}: {exc}") from exc

    async def _predict(self, detection: bool, body: bytes) -> Prediction:
        attempt = 0
        while True:
            try:
                return read_prediction(
                    *await self._request("POST", self.service.route(detection), body), detection
                )
            except ModelUnavailableError as error:
                wait = self.policy.wait_s(attempt, error)
                if wait is None:
                    raise
            await asyncio.sleep(wait)
            attempt += 1

    async def info(self) -> dict[str, Any]:
        return read_json(*await self._request("GET", "/info"))

    async def classify(self, image: ImageSource, top_num: int | None = None) -> Classification:
        result = await self._predict(False, request_body(image, top_num, None))
        assert isinstance(result, Classification)
        return result

    async def detect(self, image: ImageSource, threshold: float | None = None) -> Detections:
        result = await self._predict(True, request_body(image, None, threshold))
        assert isinstance(result, Detections)
        return result

    async def predict(
        self, image: ImageSource, *, top_num: int | None = None, threshold: float | None = None
    ) -> Prediction:
        if self._detection is None:
            self._detection = (await self.info()).get("task") == "detection"
        return await self._predict(self._detection, request_body(image, top_num, threshold))

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def __aenter__(self) -> AsyncClient:
        return self

    async def __aexit__(
        self, kind: type[BaseException] | None, error: BaseException | None, traceback: TracebackType | None
    ) -> None:
        await self.close()
