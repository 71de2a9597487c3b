"""Any body gets a result or a documented error code: never a crash, never a hang.

Property tests (hypothesis) drive the request parser and the image path the server runs;
a seeded random fuzzer then sends bodies of every kind through the real HTTP server.
"""

from __future__ import annotations

import asyncio
import random
import string
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from inferpack.bundle import read_bundle
from inferpack.errors import ERROR_CLASSES, InferpackError, InternalError
from inferpack.model import Model
from inferpack.runtime.engine import EngineOptions
from inferpack.server.request import parse_json_body, parse_raw_body
from inferpack.vision.limits import ImageLimits
from tests.conftest import RED, b64, encode, solid
from tests.integration.conftest import StartServer

DOCUMENTED = {cls.code for cls in ERROR_CLASSES} - {InternalError.code}
LIMITS = ImageLimits()
JPEG = encode(solid(RED, 40, 30))

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**63 - 1) | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)
image_fields = st.one_of(
    json_values,
    st.just(b64(JPEG)),
    st.binary(max_size=64).map(b64),
    st.binary(max_size=64).map(lambda b: b64(JPEG[:20] + b)),
    st.text(alphabet=string.ascii_letters + string.digits + "+/=\n data:,;", max_size=80),
)
bodies = st.one_of(
    st.binary(max_size=200),
    st.fixed_dictionaries(
        {}, optional={"image": image_fields, "top_num": json_values, "threshold": json_values}
    ).map(orjson.dumps),
)


@pytest.fixture(scope="module")
def model(colour_model: Path) -> Model:
    return Model.load(read_bundle(colour_model), "onnxruntime", EngineOptions())


@settings(max_examples=400, deadline=2000, suppress_health_check=[HealthCheck.too_slow])
@given(body=bodies)
def test_json_path_gives_result_or_documented_error(model: Model, body: bytes) -> None:
    try:
        request = parse_json_body(body, LIMITS)
        model.prepare(request.image)
    except InferpackError as error:
        assert error.code in DOCUMENTED


@settings(max_examples=300, deadline=2000)
@given(
    body=st.binary(max_size=300),
    query=st.dictionaries(st.sampled_from(["top_num", "threshold", "x"]), st.text(max_size=6)),
)
def test_raw_path_gives_result_or_documented_error(model: Model, body: bytes, query: dict[str, str]) -> None:
    try:
        request = parse_raw_body(JPEG[:50] + body if body[:1] == b"\x00" else body, query, LIMITS)
        model.prepare(request.image)
    except InferpackError as error:
        assert error.code in DOCUMENTED


def random_body(rng: random.Random) -> tuple[bytes, str]:
    kind = rng.randrange(6)
    if kind == 0:
        return rng.randbytes(rng.randrange(300)), "application/json"
    if kind == 1:
        return rng.randbytes(rng.randrange(300)), rng.choice(["image/jpeg", "application/octet-stream"])
    if kind == 2:
        cut = rng.randrange(len(JPEG))
        return JPEG[:cut] + rng.randbytes(rng.randrange(50)), "image/png"
    payload: dict[str, Any] = {"image": rng.choice([b64(JPEG), b64(rng.randbytes(40)), "", 5, None, ["x"]])}
    if kind >= 4:
        payload["top_num"] = rng.choice([1, 0, -3, 2.5, "7", "x", None, [], 2**62])
        payload["threshold"] = rng.choice([0.1, -1, 2, "0.5", "nan", None, {}, float("inf")])
    body = orjson.dumps(payload) if kind != 5 else orjson.dumps(payload)[: rng.randrange(1, 30)]
    return body, "application/json"


async def test_http_fuzz_never_500_never_hangs(start_server: StartServer, colour_model: Path) -> None:
    client = await start_server(colour_model)
    rng = random.Random(20261123)
    for _ in range(300):
        body, content_type = random_body(rng)
        response = await asyncio.wait_for(
            client.post("/demo/ImageClassification", data=body, headers={"Content-Type": content_type}), 10
        )
        answer = await response.json()
        if response.status == 200:
            assert isinstance(answer["results"], list)
        else:
            assert answer["error_code"] in DOCUMENTED, (body[:80], answer)
