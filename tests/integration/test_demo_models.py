"""The committed demo models, served by the real server, on a fresh held-out set of shapes.

The images are generated with seeds the training script never used (it trains on seed 1 and
validates on 2), sent as base64 JPEG over HTTP, and scored with ``inferpack.demo.evaluate``:
what is asserted is the quality a user of the appliance gets, through the real decoding,
letterbox, batching and (for the detector) yolov8 decoding + NMS.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
from aiohttp.test_utils import TestClient

from inferpack.demo import demo_model_dir
from inferpack.demo.evaluate import Prediction, Truth, mean_average_precision, top1_accuracy
from inferpack.demo.shapes import (
    LABELS,
    classification_sample,
    detection_scene,
    sample_classification,
    sample_detection,
)
from tests.conftest import b64, encode
from tests.integration.conftest import StartServer

HELD_OUT_SEED = 4242
CLASSIFICATION_IMAGES = 300
DETECTION_SCENES = 150
CONCURRENCY = 16


async def post_all(client: TestClient[Any, Any], url: str, bodies: list[dict[str, Any]]) -> list[Any]:
    """POSTs every body, at most CONCURRENCY at a time; returns the answers' ``results`` in order."""
    gate = asyncio.Semaphore(CONCURRENCY)

    async def post(body: dict[str, Any]) -> Any:
        async with gate:
            response = await client.post(url, json=body)
            answer = await response.json()
            assert response.status == 200, answer
            assert "error_code" not in answer, answer
            return answer["results"]

    return await asyncio.gather(*(post(body) for body in bodies))


def predictions(results: list[dict[str, Any]]) -> list[Prediction]:
    out = []
    for r in results:
        loc = r["location"]
        box = (loc["left"], loc["top"], loc["left"] + loc["width"], loc["top"] + loc["height"])
        out.append(Prediction(r["name"], r["score"], box))
    return out


async def test_classifier_top1_on_held_out_images(start_server: StartServer) -> None:
    rng = np.random.default_rng(HELD_OUT_SEED)
    samples = [classification_sample(rng) for _ in range(CLASSIFICATION_IMAGES)]
    assert {label for _, label in samples} == set(LABELS)
    assert max(max(i.shape[:2]) / min(i.shape[:2]) for i, _ in samples) > 2.2  # wide and tall ones too
    client = await start_server(demo_model_dir("shapes-classifier"))
    bodies = [{"image": b64(encode(image)), "top_num": 1} for image, _ in samples]
    results = await post_all(client, "/demo/ImageClassification", bodies)
    accuracy = top1_accuracy([r[0]["name"] for r in results], [label for _, label in samples])
    print(f"\nclassifier: top-1 {accuracy:.4f} on {CLASSIFICATION_IMAGES} held-out images")  # -s shows it
    assert accuracy >= 0.95, f"top-1 {accuracy:.4f} on {CLASSIFICATION_IMAGES} held-out images"


async def test_detector_map_on_held_out_scenes(start_server: StartServer) -> None:
    rng = np.random.default_rng(HELD_OUT_SEED + 1)
    scenes = [detection_scene(rng) for _ in range(DETECTION_SCENES)]
    client = await start_server(demo_model_dir("shapes-detector"))
    # A low threshold: the precision/recall curve needs the low-scoring detections too.
    bodies = [{"image": b64(encode(image)), "threshold": 0.05} for image, _ in scenes]
    results = await post_all(client, "/demo/ObjectDetection", bodies)
    truths = [[Truth(label, (x1, y1, x2, y2)) for label, x1, y1, x2, y2 in boxes] for _, boxes in scenes]
    report = mean_average_precision([predictions(r) for r in results], truths, LABELS)
    per_class = {label: round(ap, 4) for label, ap in report.ap.items() if ap is not None}
    print(f"\ndetector: mAP@0.5 {report.mean_ap:.4f} {per_class} on {DETECTION_SCENES} scenes")
    assert all(report.ground_truths[label] > 30 for label in LABELS), report.ground_truths
    assert report.mean_ap >= 0.8, f"mAP@0.5 {report.mean_ap:.4f} {per_class} on {DETECTION_SCENES} scenes"


async def test_sample_images_are_answered_correctly(start_server: StartServer) -> None:
    """The installer gate sends these; the demo models must get them right."""
    image, label = sample_classification()
    client = await start_server(demo_model_dir("shapes-classifier"))
    (results,) = await post_all(client, "/demo/ImageClassification", [{"image": b64(encode(image))}])
    assert results[0]["name"] == label and results[0]["score"] > 0.9, results

    image, boxes = sample_detection()
    client = await start_server(demo_model_dir("shapes-detector"))
    (results,) = await post_all(client, "/demo/ObjectDetection", [{"image": b64(encode(image))}])
    found = predictions(results)  # at the model's own threshold, as the gate asks
    truths = [[Truth(label, (x1, y1, x2, y2)) for label, x1, y1, x2, y2 in boxes]]
    assert len(found) == len(boxes), results
    assert mean_average_precision([found], truths, LABELS).mean_ap == 1.0, results
