"""/healthz, /readyz, /metrics and /info."""

from __future__ import annotations

from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from tests.conftest import RED, b64, encode, solid
from tests.integration.conftest import StartServer, wait_ready
from tests.onnx_models import slow_classifier

URL = "/demo/ImageClassification"


def sample(text: str, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(text):
        for found in family.samples:
            if found.name == name and found.labels == labels:
                return float(found.value)
    raise AssertionError(f"{name} {labels} not in metrics")


async def test_healthz_at_once_readyz_after_warm_up(start_server: StartServer, tmp_path: Path) -> None:
    client = await start_server(
        slow_classifier(tmp_path / "slow", convolutions=48), ready=False, max_batch_size=32
    )
    assert (await client.get("/healthz")).status == 200
    not_ready = await client.get("/readyz")
    assert not_ready.status == 503
    assert (await not_ready.json())["reasons"] == ["model is loading"]
    await wait_ready(client)
    assert (await (await client.get("/readyz")).json()) == {"status": "ready"}


async def test_metrics_count_requests_by_route_and_code(
    start_server: StartServer, colour_model: Path
) -> None:
    client = await start_server(colour_model)
    for _ in range(3):
        await client.post(URL, json={"image": b64(encode(solid(RED)))})
    await client.post(URL, json={"top_num": 1})
    response = await client.get("/metrics")
    assert response.status == 200
    assert response.headers["Content-Type"].startswith("text/plain")
    text = await response.text()
    assert sample(text, "inferpack_requests_total", route="ImageClassification", error_code="0") == 3
    assert sample(text, "inferpack_requests_total", route="ImageClassification", error_code="336006") == 1
    assert sample(text, "inferpack_batch_size_count") >= 3
    assert sample(text, "inferpack_request_duration_seconds_count", route="ImageClassification") == 4
    assert sample(text, "inferpack_model_load_seconds") > 0
    assert sample(text, "inferpack_queue_depth") == 0
    assert sample(text, "inferpack_ready") == 1


async def test_info_describes_the_deployment(start_server: StartServer, colour_model: Path) -> None:
    client = await start_server(colour_model, max_batch_size=4)
    info = await (await client.get("/info")).json()
    assert info["deploy_name"] == "demo"
    assert info["task"] == "classification"
    assert info["route"] == "POST /demo/ImageClassification"
    assert info["model"]["labels"] == ["red", "green", "blue"]
    assert info["engine"]["backend"] == "onnxruntime"
    assert info["engine"]["device"] == "cpu"
    assert info["batching"]["max_batch_size"] == 4
    assert info["ready"] is True
    assert "license" in info
    assert isinstance(info["version"], str)
