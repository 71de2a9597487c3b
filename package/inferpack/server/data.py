"""What the data and job routes share: the stores, the API key check, and reading a body.

The routes write to the host's disk and spend its compute, so each one needs the service's
API key (``Authorization: Bearer KEY``, the seed's ``access_key`` field or query parameter,
or its ``Access-Key`` header) and a valid license.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

import orjson
from aiohttp import web

from inferpack.apikeys import KeyCheck
from inferpack.datasets.store import DatasetStore
from inferpack.errors import AccessDenied, InvalidJSON, NotFound
from inferpack.httpio.body import held_body
from inferpack.jobs.runner import JobRunner
from inferpack.jobs.store import JobStore
from inferpack.server.state import STATE, ServerState

MAX_FORM_BYTES = 64 * 1024  # a job request's fields; dataset archives are streamed apart


@dataclass
class DataServices:
    datasets: DatasetStore
    jobs: JobStore
    keys: KeyCheck
    runner: JobRunner | None = None  # once the model is loaded


DATA = web.AppKey("inferpack_data", DataServices)


def services(
    request: web.Request, fields: Mapping[str, Any] | None = None
) -> tuple[ServerState, DataServices]:
    """The server state and data services, once the key and the license check out."""
    state = request.app[STATE]
    data = request.app.get(DATA)
    if data is None:
        raise NotFound("this server has no data folder: serve it with --state-dir or --data-dir")
    key = _presented_key(request, fields or {})
    if key is None:
        raise AccessDenied("this route needs the service's API key: Authorization: Bearer KEY or access_key")
    if not data.keys.accepts(key):
        if data.keys.current_digest() is None:
            raise AccessDenied("no API key has been made for this service: run python3 install.py key NAME")
        raise AccessDenied("the API key is not this service's current key")
    state.require_license()
    return state, data


def _presented_key(request: web.Request, fields: Mapping[str, Any]) -> str | None:
    authorization = request.headers.get("Authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    for value in (
        fields.get("access_key"),
        request.query.get("access_key"),
        request.headers.get("Access-Key"),
    ):
        if isinstance(value, str) and value:
            return value
    return None


async def read_fields(request: web.Request) -> dict[str, Any]:
    """A small form (urlencoded or multipart, as ``curl -F``) or JSON object, as a dict."""
    if request.content_type in ("application/x-www-form-urlencoded", "multipart/form-data"):
        form = await request.post()
        return {key: value for key, value in form.items() if isinstance(value, str)}
    limits = replace(request.app[STATE].body_limits, max_bytes=MAX_FORM_BYTES)
    async with held_body(request, limits) as held:
        body = bytes(held)
    if not body.strip():
        return {}
    try:
        fields = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise InvalidJSON("the body is not valid JSON (or send form fields)") from None
    if not isinstance(fields, dict):
        raise InvalidJSON(f"the body must be a JSON object, got {type(fields).__name__}")
    return fields
