"""Turns an HTTP request into a ``PredictRequest``, or the EasyDL error that says what is wrong.

Two forms are accepted on both prediction routes:
- JSON (the EasyDL API): ``{"image": "<base64>", "top_num": 6}`` / ``{"image": ..., "threshold": 0.3}``;
- raw bytes (EasyEdge clients): the body is the image itself, ``Content-Type: image/*`` or
  ``application/octet-stream``, parameters as query parameters ``?top_num=``/``?threshold=``.
Any other Content-Type (or none) is read as JSON.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson

from inferpack.errors import InvalidArgument, InvalidJSON, MissingParameter, PayloadTooLarge
from inferpack.vision.decode import decode_base64_image
from inferpack.vision.limits import ImageLimits

DEFAULT_TOP_NUM = 6
RAW_CONTENT_TYPES = ("application/octet-stream",)


@dataclass(frozen=True)
class PredictRequest:
    image: bytes
    top_num: int = DEFAULT_TOP_NUM
    threshold: float | None = None  # None: the model's recommended threshold


# The first bytes of the image formats served: a body that starts so is a raw image.
IMAGE_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG\r\n\x1a\n", b"BM")


def is_raw_form(content_type: str, body: bytes) -> bool:
    """Raw image bytes, or the JSON form? No image format starts with "{", so a body that does
    is JSON whatever its Content-Type says (HTTP clients often default to octet-stream)."""
    content_type = content_type.lower()
    if not (content_type.startswith("image/") or content_type in RAW_CONTENT_TYPES):
        return False
    return body.lstrip()[:1] != b"{"


def _top_num(value: Any) -> int:
    # ASCII digits only: str.isdigit() also accepts "²", which int() refuses; and int() refuses
    # more than 4300 digits (sys.int_info.default_max_str_digits) too
    if isinstance(value, str) and (digits := value.strip()).isascii() and digits.isdigit():
        try:
            value = int(digits)
        except ValueError:
            raise InvalidArgument(f"top_num must be a positive integer, got {len(digits)} digits") from None
    if isinstance(value, float) and value.is_integer():
        value = int(value)  # 2.0: JSON encoders in some languages write every number as a float
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgument(f"top_num must be a positive integer, got {value!r}")
    return value


def parse_threshold(value: Any) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InvalidArgument(f"threshold must be a number in [0, 1], got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise InvalidArgument(f"threshold must be a number in [0, 1], got {value!r}")
    if not 0.0 <= value <= 1.0:
        raise InvalidArgument(f"threshold must be in [0, 1], got {value}")
    return float(value)


def parse_parameters(source: Mapping[str, Any]) -> dict[str, Any]:
    parameters: dict[str, Any] = {}
    if source.get("top_num") is not None:
        parameters["top_num"] = _top_num(source["top_num"])
    if source.get("threshold") is not None:
        parameters["threshold"] = parse_threshold(source["threshold"])
    return parameters


def load_json_object(body: bytes, hint: str) -> dict[str, Any]:
    """The body as a JSON object, or 336002 (``hint`` says what to send instead)."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidJSON(f"the body is not valid JSON; {hint}") from None
    if not isinstance(payload, dict):
        raise InvalidJSON(f"the body must be a JSON object, got {type(payload).__name__}")
    return payload


def parse_json_body(body: bytes, limits: ImageLimits) -> PredictRequest:
    raw_image = body.startswith(IMAGE_SIGNATURES)
    hint = (
        "it is a raw image: send it with Content-Type: image/* (image/jpeg, image/png, image/bmp), "
        'or as JSON {"image": "<base64>"}'
        if raw_image
        else 'send {"image": "<base64>"}'
    )
    payload = load_json_object(body, hint)
    image = payload.get("image")
    if image is None or image == "":
        raise MissingParameter("the image field is missing or empty")
    if not isinstance(image, str):
        raise InvalidArgument(f"image must be a base64 string, got {type(image).__name__}")
    parameters = parse_parameters(payload)
    return PredictRequest(image=decode_base64_image(image, limits), **parameters)


def parse_raw_body(body: bytes, query: Mapping[str, str], limits: ImageLimits) -> PredictRequest:
    if not body:
        raise MissingParameter("the request body holds no image")
    if len(body) > limits.max_raw_bytes:
        raise PayloadTooLarge(f"image is {len(body)} bytes, the limit is {limits.max_raw_bytes}")
    return PredictRequest(image=body, **parse_parameters(query))
