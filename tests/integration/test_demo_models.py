"""The committed demo models, served by the real server, on a fresh held-out set of shapes.

The images are generated with seeds the training script never used (it trains on seed 1 and
validates on 2), sent as base64 JPEG over HTTP, and scored with ``inferpack.evaluation`` (and,
on the same answers, by pycocotools and scikit-learn, which must agree to 1e-6):
what is asserted is the quality a user of the appliance gets, through the real decoding,
letterbox, batching and (for the detector) yolov8 decoding + NMS.
"""

from __future__ import annotations

import asyncio
from typing import Any

import numpy as np
import pytest
from aiohttp.test_utils import TestClient
from sklearn import metrics

from inferpack.demo import demo_model_dir
from inferpack.demo.shapes import (
    LABELS,
    classification_sample,
    detection_scene,
    sample_classification,
    sample_detection,
)
from inferpack.evaluation.classification import evaluate_classification
from inferpack.evaluation.detection import Box, evaluate_detection
from tests.conftest import b64, encode
from tests.integration.conftest import StartServer
from tests.unit.evaluation.references import coco_eval

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


def predictions(results: list[dict[str, Any]]) -> list[Box]:
    boxes = []
    for r in results:
        loc = r["location"]
        boxes.append(Box(r["name"], loc["left"], loc["top"], loc["width"], loc["height"], r["score"]))
    return boxes


def truth_boxes(boxes: list[tuple[str, int, int, int, int]]) -> list[Box]:
    return [Box(label, x1, y1, x2 - x1, y2 - y1) for label, x1, y1, x2, y2 in boxes]


async def test_classifier_top1_on_held_out_images(start_server: StartServer) -> None:
    rng = np.random.default_rng(HELD_OUT_SEED)
    samples = [classification_sample(rng) for _ in range(CLASSIFICATION_IMAGES)]
    assert {label for _, label in samples} == set(LABELS)
    assert max(max(i.shape[:2]) / min(i.shape[:2]) for i, _ in samples) > 2.2  # wide and tall ones too
    client = await start_server(demo_model_dir("shapes-classifier"))
    bodies = [{"image": b64(encode(image)), "top_num": 1} for image, _ in samples]
    results = await post_all(client, "/demo/ImageClassification", bodies)
    truth = [label for _, label in samples]
    predicted = [r[0]["name"] for r in results]
    accuracy = evaluate_classification(truth, [[name] for name in predicted], LABELS).accuracy
    assert accuracy == pytest.approx(metrics.accuracy_score(truth, predicted), abs=1e-6)
    print(f"\nclassifier: top-1 {accuracy:.4f} on {CLASSIFICATION_IMAGES} held-out images")  # -s shows it
    assert accuracy >= 0.95, f"top-1 {accuracy:.4f} on {CLASSIFICATION_IMAGES} held-out images"


async def test_detector_map_on_held_out_scenes(start_server: StartServer) -> None:
    rng = np.random.default_rng(HELD_OUT_SEED + 1)
    scenes = [detection_scene(rng) for _ in range(DETECTION_SCENES)]
    client = await start_server(demo_model_dir("shapes-detector"))
    # A low threshold: the precision/recall curve needs the low-scoring detections too.
    bodies = [{"image": b64(encode(image)), "threshold": 0.05} for image, _ in scenes]
    results = await post_all(client, "/demo/ObjectDetection", bodies)
    truths = [truth_boxes(boxes) for _, boxes in scenes]
    found = [predictions(r) for r in results]
    report = evaluate_detection(truths, found, LABELS, threshold=0.3)
    per_class = {label: round(m.ap50, 4) for label, m in report.per_class.items() if m.ap50 is not None}
    print(f"\ndetector: mAP@0.5 {report.map50:.4f} {per_class} on {DETECTION_SCENES} scenes")
    assert all(report.per_class[label].ground_truths > 30 for label in LABELS), report.per_class
    assert report.map50 >= 0.8, f"mAP@0.5 {report.map50:.4f} {per_class} on {DETECTION_SCENES} scenes"
    reference = coco_eval(truths, found, LABELS).stats
    assert (report.map, report.map50, report.map75) == pytest.approx(tuple(reference[:3]), abs=1e-6)


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
    assert len(found) == len(boxes), results
    report = evaluate_detection([truth_boxes(boxes)], [found], LABELS, threshold=0.3)
    assert (report.precision, report.recall, report.map50) == (1.0, 1.0, pytest.approx(1.0)), results
