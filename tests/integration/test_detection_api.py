"""POST /{name}/ObjectDetection: boxes come back in pixels of the ORIGINAL image."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from tests.conftest import b64, encode, solid
from tests.integration.conftest import StartServer
from tests.onnx_models import fixed_boxes_detector

URL = "/demo/ObjectDetection"

# Rows in model-input pixels of a 320x320 letterboxed input: x1, y1, x2, y2, score, class.
BOXES = [
    [10, 80, 110, 180, 0.9, 1],  # inside the picture
    [300, 240, 330, 260, 0.8, 0],  # crosses the right edge and the bottom padding: clipped
    [0, 100, 50, 150, 0.1, 2],  # below the default threshold
]


def locations(body: dict[str, Any]) -> list[tuple[str, float, tuple[int, int, int, int]]]:
    return [
        (
            r["name"],
            r["score"],
            (r["location"]["left"], r["location"]["top"], r["location"]["width"], r["location"]["height"]),
        )
        for r in body["results"]
    ]


@pytest.fixture
def detector(tmp_path: Path) -> Path:
    return fixed_boxes_detector(tmp_path / "fixed", BOXES)


async def test_letterboxed_landscape_image_maps_back_exactly(
    start_server: StartServer, detector: Path
) -> None:
    # 640x360 into 320x320: scale 0.5, resized to 320x180, 70 px of padding above and below.
    client = await start_server(detector)
    body = await (await client.post(URL, json={"image": b64(encode(solid((9, 9, 9), 640, 360)))})).json()
    assert locations(body) == [
        ("b", pytest.approx(0.9), (20, 20, 200, 200)),
        ("a", pytest.approx(0.8), (600, 340, 40, 20)),
    ]


async def test_letterboxed_portrait_image_maps_back_exactly(
    start_server: StartServer, tmp_path: Path
) -> None:
    # 300x500 into 320x320: scale 0.64, resized to 192x320, 64 px of padding left and right.
    model = fixed_boxes_detector(tmp_path / "portrait", [[96, 32, 160, 96, 0.7, 0]])
    client = await start_server(model)
    body = await (
        await client.post(URL, json={"image": b64(encode(solid((9, 9, 9), 300, 500), ".png"))})
    ).json()
    assert locations(body) == [("a", pytest.approx(0.7), (50, 50, 100, 100))]


async def test_threshold_parameter(start_server: StartServer, detector: Path) -> None:
    client = await start_server(detector)
    image = b64(encode(solid((9, 9, 9), 640, 360)))
    low = await (await client.post(URL, json={"image": image, "threshold": 0.05})).json()
    assert [r["name"] for r in low["results"]] == ["b", "a", "c"]
    high = await (await client.post(URL, json={"image": image, "threshold": 0.85})).json()
    assert [r["name"] for r in high["results"]] == ["b"]
    none = await (await client.post(URL, json={"image": image, "threshold": 1})).json()
    assert none["results"] == []


async def test_raw_form_with_threshold_query(start_server: StartServer, detector: Path) -> None:
    client = await start_server(detector)
    response = await client.post(
        URL,
        data=encode(solid((9, 9, 9), 640, 360)),
        headers={"Content-Type": "image/jpeg"},
        params={"threshold": "0.05"},
    )
    assert len((await response.json())["results"]) == 3


@pytest.mark.parametrize("threshold", [-0.1, 1.5, "high", True])
async def test_bad_threshold_336001(start_server: StartServer, detector: Path, threshold: object) -> None:
    client = await start_server(detector)
    response = await client.post(URL, json={"image": b64(encode(solid((9, 9, 9)))), "threshold": threshold})
    assert response.status == 400
    assert (await response.json())["error_code"] == 336001
