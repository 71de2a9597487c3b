"""Concurrent requests are batched, and each still gets its own answer."""

from __future__ import annotations

import asyncio
from pathlib import Path

from tests.conftest import BLUE, GREEN, RED, b64, encode, solid
from tests.integration.conftest import StartServer
from tests.integration.test_operations import sample
from tests.onnx_models import colour_classifier, slow_classifier

URL = "/demo/ImageClassification"
COLOURS = {"red": RED, "green": GREEN, "blue": BLUE}


async def test_concurrent_requests_are_batched_and_answered_correctly(
    start_server: StartServer, tmp_path: Path
) -> None:
    # A model slow enough that requests pile up while a batch runs.
    client = await start_server(slow_classifier(tmp_path / "slow"), max_batch_size=8, max_delay_ms=5)
    labels = [list(COLOURS)[i % 3] for i in range(48)]
    images = {label: b64(encode(solid(colour, 64, 64))) for label, colour in COLOURS.items()}
    responses = await asyncio.gather(*(client.post(URL, json={"image": images[label]}) for label in labels))
    bodies = [await r.json() for r in responses]
    assert [b["results"][0]["name"] for b in bodies] == labels
    metrics = await (await client.get("/metrics")).text()
    total, count = sample(metrics, "inferpack_batch_size_sum"), sample(metrics, "inferpack_batch_size_count")
    assert total == len(labels)  # warm-up runs bypass the batcher: every sample counted is a request
    assert total / count > 1.5, f"average batch size {total / count:.2f}"


async def test_fixed_batch_one_model_is_served(start_server: StartServer, tmp_path: Path) -> None:
    client = await start_server(colour_classifier(tmp_path / "b1", batch=1), max_batch_size=8)
    info = await (await client.get("/info")).json()
    assert info["batching"]["max_batch_size"] == 1
    responses = await asyncio.gather(
        *(client.post(URL, json={"image": b64(encode(solid(COLOURS[n])))}) for n in ("red", "blue") * 5)
    )
    names = [(await r.json())["results"][0]["name"] for r in responses]
    assert names == ["red", "blue"] * 5


async def test_nhwc_bgr_model(start_server: StartServer, tmp_path: Path) -> None:
    model = colour_classifier(tmp_path / "nhwc", layout="NHWC")
    client = await start_server(model)
    body = await (await client.post(URL, json={"image": b64(encode(solid(GREEN)))})).json()
    assert body["results"][0]["name"] == "green"
