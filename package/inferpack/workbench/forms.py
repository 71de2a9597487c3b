"""Request parameters as the seed's clients send them: form fields (``curl -F``), a JSON object
or the query string, all read the same way; the access key as a field or an ``Access-Key`` header.

Every getter names the field it refuses, as 336001 (wrong type or value) or 336006 (missing).
Names of models and data sets follow the data sets' id rule, so none can climb out of the
workbench's folders ('..', '/', a leading dot are all refused).
"""

from __future__ import annotations

import hmac
from typing import Any

import orjson
from aiohttp import web

from inferpack.datasets.store import check_id
from inferpack.errors import AccessDenied, InvalidArgument, InvalidJSON, MissingParameter

Params = dict[str, Any]


async def read_params(request: web.Request) -> Params:
    params: Params = dict(request.query)
    if request.method != "POST" or not request.can_read_body:
        return params
    if request.content_type == "application/json":
        try:
            body = orjson.loads(await request.read())
        except orjson.JSONDecodeError as exc:
            raise InvalidJSON(f"the body is not JSON: {exc}") from None
        if not isinstance(body, dict):
            raise InvalidJSON("the body must be a JSON object")
        params.update(body)
    else:
        form = await request.post()
        params.update({k: v for k, v in form.items() if isinstance(v, str)})
    return params


def check_access(request: web.Request, params: Params, key: str) -> None:
    given = params.get("access_key") or request.headers.get("Access-Key") or ""
    if not isinstance(given, str) or not hmac.compare_digest(given.encode(), key.encode()):
        raise AccessDenied("access_key is missing or wrong (send it as a field or an Access-Key header)")


def text(params: Params, field: str, required: bool = True) -> str | None:
    value = params.get(field)
    if value is None or value == "":
        if required:
            raise MissingParameter(f"{field} is required")
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be text, got {value!r}")
    return value


def name(params: Params, field: str, required: bool = True) -> str | None:
    value = text(params, field, required)
    return None if value is None else check_id(value, field)


def integer(params: Params, field: str, default: int, low: int = 1, high: int = 100_000) -> int:
    value = params.get(field, default)
    if isinstance(value, str) and value.isascii() and value.isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InvalidArgument(f"{field} must be an integer in [{low}, {high}], got {value!r}")
    return value


def number(params: Params, field: str, default: float, low: float, high: float) -> float:
    value = params.get(field, default)
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InvalidArgument(f"{field} must be a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not low < value <= high:
        raise InvalidArgument(f"{field} must be a number in ({low}, {high}], got {value!r}")
    return float(value)
