"""POST /{name}/ImageClassification through the real server, with a model whose answers are known."""

from __future__ import annotations

import logging
import math
from pathlib import Path

import pytest

from tests.conftest import BLUE, GREEN, RED, b64, encode, solid
from tests.integration.conftest import StartServer

URL = "/demo/ImageClassification"


async def test_json_form_answers_the_dominant_colour(start_server: StartServer, colour_model: Path) -> None:
    client = await start_server(colour_model)
    for colour, label in ((RED, "red"), (GREEN, "green"), (BLUE, "blue")):
        response = await client.post(URL, json={"image": b64(encode(solid(colour)))})
        assert response.status == 200
        body = await response.json()
        assert isinstance(body["log_id"], int)
        assert body["results"][0]["name"] == label
        # logits are 10 x channel mean (≈1 for the pure channel): softmax(10, 0, 0) ≈ 0.99991
        assert body["results"][0]["score"] == pytest.approx(math.exp(10) / (math.exp(10) + 2), abs=2e-3)


async def test_results_sorted_and_scores_form_a_distribution(
    start_server: StartServer, colour_model: Path
) -> None:
    client = await start_server(colour_model)
    mixed = solid((40, 120, 200))  # BGR: most red, then green, then blue
    body = await (await client.post(URL, json={"image": b64(encode(mixed, ".png"))})).json()
    names = [r["name"] for r in body["results"]]
    scores = [r["score"] for r in body["results"]]
    assert names == ["red", "green", "blue"]
    assert scores == sorted(scores, reverse=True)
    assert sum(scores) == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("top_num", "expected"), [(None, 3), (1, 1), (2, 2), (3, 3), (50, 3), ("2", 2), (2.0, 2)]
)
async def test_top_num(start_server: StartServer, colour_model: Path, top_num: object, expected: int) -> None:
    client = await start_server(colour_model)
    payload: dict[str, object] = {"image": b64(encode(solid(GREEN)))}
    if top_num is not None:
        payload["top_num"] = top_num
    body = await (await client.post(URL, json=payload)).json()
    assert len(body["results"]) == expected
    assert body["results"][0]["name"] == "green"


@pytest.mark.parametrize("content_type", ["image/jpeg", "image/png", "application/octet-stream"])
async def test_raw_bytes_form(start_server: StartServer, colour_model: Path, content_type: str) -> None:
    client = await start_server(colour_model)
    ext = ".png" if content_type == "image/png" else ".jpg"
    response = await client.post(
        URL, data=encode(solid(BLUE), ext), headers={"Content-Type": content_type}, params={"top_num": "1"}
    )
    assert response.status == 200
    body = await response.json()
    assert [r["name"] for r in body["results"]] == ["blue"]


async def test_log_id_is_unique_and_in_header_and_access_log(
    start_server: StartServer, colour_model: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = await start_server(colour_model)
    caplog.set_level(logging.INFO, logger="inferpack.access")
    ids = []
    for _ in range(20):
        response = await client.post(URL, json={"image": b64(encode(solid(RED)))})
        body = await response.json()
        assert response.headers["X-Log-Id"] == str(body["log_id"])
        ids.append(body["log_id"])
    bad = await client.post(URL, data=b"{not json", headers={"Content-Type": "application/json"})
    bad_id = (await bad.json())["log_id"]
    ids.append(bad_id)
    assert len(set(ids)) == len(ids)
    assert all(0 < i < 2**53 for i in ids)  # exact as a JSON number in every client
    assert any(f"log_id={bad_id} error_code=336002" in r.getMessage() for r in caplog.records)


async def test_grey_rgba_and_16bit_png_are_converted(start_server: StartServer, colour_model: Path) -> None:
    import numpy as np

    client = await start_server(colour_model)
    rgba = np.dstack([solid(RED), np.full((48, 64), 255, np.uint8)])
    red16 = solid(RED).astype(np.uint16) * 257
    grey = np.full((48, 64), 128, np.uint8)
    for image, expected in ((rgba, "red"), (red16, "red"), (grey, None)):
        response = await client.post(URL, json={"image": b64(encode(image, ".png"))})
        assert response.status == 200, await response.text()
        body = await response.json()
        if expected:
            assert body["results"][0]["name"] == expected
        else:  # grey: all channels equal, all classes equally likely
            assert [r["score"] for r in body["results"]] == pytest.approx([1 / 3] * 3, abs=1e-3)


@pytest.mark.parametrize("content_type", [None, "application/octet-stream", "text/plain", "image/jpeg"])
async def test_json_body_whatever_the_content_type(
    start_server: StartServer, colour_model: Path, content_type: str | None
) -> None:
    # HTTP clients often label any byte body octet-stream; a body starting with "{" is JSON.
    client = await start_server(colour_model)
    body = b' {"image": "' + b64(encode(solid(GREEN))).encode() + b'", "top_num": 1}'
    headers = {"Content-Type": content_type} if content_type else {}
    response = await client.post(URL, data=body, headers=headers)
    assert [r["name"] for r in (await response.json())["results"]] == ["green"]
