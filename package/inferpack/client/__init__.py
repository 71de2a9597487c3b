"""A light Python client for an inferpack service's EasyDL API.

Standard library only (``AsyncClient`` also needs aiohttp; an image array needs OpenCV)::

    from inferpack.client import Client

    with Client("http://127.0.0.1:8080/demo") as client:
        for label in client.classify("cat.jpg", top_num=3).results:
            print(label.name, label.score)

Errors the service answers are raised as ``ApiError`` subclasses with ``error_code``,
``error_msg`` and ``log_id``; 336100 (overloaded, loading) is retried first.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from inferpack.client._protocol import ImageSource
from inferpack.client.errors import (
    ApiError,
    AuthCheckFailedError,
    Base64DecodeError,
    ClientError,
    ImageDecodeError,
    InternalServerError,
    InvalidArgumentError,
    InvalidInputSizeError,
    InvalidJSONError,
    MissingParameterError,
    ModelUnavailableError,
    TransportError,
)
from inferpack.client.results import Classification, Detection, Detections, Label, Location, Prediction
from inferpack.client.sync import Client

if TYPE_CHECKING:
    from inferpack.client.aio import AsyncClient

__all__ = [
    "ApiError",
    "AsyncClient",
    "AuthCheckFailedError",
    "Base64DecodeError",
    "Classification",
    "Client",
    "ClientError",
    "Detection",
    "Detections",
    "ImageDecodeError",
    "ImageSource",
    "InternalServerError",
    "InvalidArgumentError",
    "InvalidInputSizeError",
    "InvalidJSONError",
    "Label",
    "Location",
    "MissingParameterError",
    "ModelUnavailableError",
    "Prediction",
    "TransportError",
]


def __getattr__(name: str) -> Any:
    if name == "AsyncClient":  # imported on first use: aiohttp is optional
        from inferpack.client.aio import AsyncClient

        return AsyncClient
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
