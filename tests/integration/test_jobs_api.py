"""Datasets and evaluate/predict jobs through the real server on the demo models: the measures
in the report equal pycocotools' and scikit-learn's on the same answers; exports, cancel, limits."""

from __future__ import annotations

import asyncio
import csv
import io
import json
import zipfile
from pathlib import Path
from typing import Any

import pytest
from sklearn import metrics

from inferpack.datasets.readers import read_dataset
from inferpack.demo import demo_model_dir
from inferpack.demo.datasets import classification_dataset, detection_dataset
from inferpack.demo.shapes import LABELS
from inferpack.evaluation.detection import truth_boxes
from inferpack.jobs.scoring import result_boxes
from tests.integration.conftest import StartServer
from tests.integration.jobs_support import key_for, tar_of, upload, wait_job, zip_of
from tests.unit.evaluation.references import coco_eval

HELD_OUT_SEED = 777


async def test_evaluate_detector_matches_pycocotools(start_server: StartServer, tmp_path: Path) -> None:
    state = tmp_path / "state"
    client = await start_server(demo_model_dir("shapes-detector"), state_dir=state)
    headers = key_for(state)
    folder = detection_dataset(tmp_path / "scenes", 40, HELD_OUT_SEED)
    info = await upload(client, headers, "scenes", zip_of(folder))
    assert (info["format"], info["images"], info["classes"]) == ("yolo", 40, list(LABELS))
    validation = await (await client.get("/datasets/scenes/validate", headers=headers)).json()
    assert validation["valid"], validation

    response = await client.post("/jobs", json={"kind": "evaluate", "dataset": "scenes"}, headers=headers)
    created = (await response.json())["job"]
    assert response.status == 201 and created["urls"]["report"].endswith(f"/jobs/{created['id']}/report.html")
    job = await wait_job(client, headers, created["id"])
    assert job["state"] == "done" and job["progress"]["done"] == 40 and job["errors"] == 0, job

    results = await (await client.get(f"/jobs/{job['id']}/results", headers=headers)).json()
    lines = results["results"]
    assert results["done"] and [line["index"] for line in lines] == list(range(40))
    dataset = read_dataset(folder)
    truths = [
        truth_boxes(item.boxes or (), line["width"], line["height"])
        for item, line in zip(dataset.items, lines, strict=True)
    ]
    reference = coco_eval(truths, [result_boxes(line["results"]) for line in lines], LABELS)
    report = await (await client.get(f"/jobs/{job['id']}/report.json", headers=headers)).json()
    measures = report["measures"]
    assert measures["mAP@[.5:.95]"] == pytest.approx(reference.stats[0], abs=1e-6)
    assert measures["mAP@0.5"] == pytest.approx(reference.stats[1], abs=1e-6)
    assert measures["mAP@0.5"] > 0.8
    assert job["summary"]["mAP@0.5"] == pytest.approx(measures["mAP@0.5"], abs=1e-6)

    page = await (await client.get(f"/jobs/{job['id']}/report.html", headers=headers)).text()
    assert "<svg" in page and "<polyline" in page and "http" not in page.split("<body>")[0]
    assert page.count("data:image/jpeg;base64,") == len(report["worst"]) > 0

    exported = await client.get(f"/jobs/{job['id']}/export?format=yolo", headers=headers)
    with zipfile.ZipFile(io.BytesIO(await exported.read())) as archive:
        names = archive.namelist()
        assert "property.json" in names and "data/scene_00000.jpg" in names
        assert json.loads(archive.read("property.json"))["classes"] == list(LABELS)
    re_read = read_dataset(_unzipped(await exported.read(), tmp_path / "exported"))
    assert re_read.format == "yolo" and len(re_read.items) == 40 and not re_read.problems
    voc = await client.get(f"/jobs/{job['id']}/export?format=voc", headers=headers)
    with zipfile.ZipFile(io.BytesIO(await voc.read())) as archive:
        assert "<bndbox><xmin>" in archive.read("Annotations/scene_00000.xml").decode()
    coco = await (await client.get(f"/jobs/{job['id']}/export?format=coco", headers=headers)).json()
    assert len(coco["images"]) == 40 and {c["name"] for c in coco["categories"]} == set(LABELS)
    rows = list(
        csv.reader(
            io.StringIO(
                await (await client.get(f"/jobs/{job['id']}/export?format=csv", headers=headers)).text()
            )
        )
    )
    assert rows[0][:3] == ["image", "label", "score"] and len(rows) == 1 + sum(
        len(line["results"]) for line in lines
    )


def _unzipped(data: bytes, dest: Path) -> Path:
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        archive.extractall(dest)
    return dest


async def test_evaluate_classifier_matches_scikit_learn(start_server: StartServer, tmp_path: Path) -> None:
    state = tmp_path / "state"
    client = await start_server(demo_model_dir("shapes-classifier"), state_dir=state)
    headers = key_for(state)
    folder = classification_dataset(tmp_path / "shapes", 60, HELD_OUT_SEED)
    (folder / "circle" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    assert (await upload(client, headers, "shapes", tar_of(folder)))["format"] == "classes"
    response = await client.post("/jobs", json={"kind": "evaluate", "dataset": "shapes"}, headers=headers)
    job = await wait_job(client, headers, (await response.json())["job"]["id"])
    assert job["state"] == "done" and job["errors"] == 1, job  # the corrupt image is its own error

    lines = (await (await client.get(f"/jobs/{job['id']}/results", headers=headers)).json())["results"]
    broken = [line for line in lines if "error" in line]
    assert [line["image"] for line in broken] == ["circle/broken.jpg"]
    assert broken[0]["error"]["error_code"] == 336005
    good = [line for line in lines if "error" not in line]
    truth = [line["image"].split("/")[0] for line in good]
    predicted = [line["results"][0]["name"] for line in good]
    report = await (await client.get(f"/jobs/{job['id']}/report.json", headers=headers)).json()
    measures = report["measures"]
    assert measures["accuracy"] == pytest.approx(metrics.accuracy_score(truth, predicted), abs=1e-6)
    assert measures["macro_f1"] == pytest.approx(
        metrics.f1_score(truth, predicted, average="macro"), abs=1e-6
    )
    assert measures["mcc"] == pytest.approx(metrics.matthews_corrcoef(truth, predicted), abs=1e-6)
    assert (
        report["confusion"]["matrix"]
        == metrics.confusion_matrix(truth, predicted, labels=list(LABELS)).tolist()
    )
    assert report["image_errors"] == [{"image": "circle/broken.jpg", "error": broken[0]["error"]}]
    page = await (await client.get(f"/jobs/{job['id']}/report.html", headers=headers)).text()
    assert "Confusion matrix" in page


async def test_seed_yolo_routes(start_server: StartServer, tmp_path: Path) -> None:
    """As the seed's curl lines: -F access_key=... -F dataset_id=...; then /yolo/output?key=."""
    import aiohttp

    state = tmp_path / "state"
    client = await start_server(demo_model_dir("shapes-detector"), state_dir=state)
    headers = key_for(state)
    key = headers["Authorization"].removeprefix("Bearer ")
    await upload(client, headers, "example_data", zip_of(detection_dataset(tmp_path / "d", 6, 5)))

    validate = await (await client.get(f"/yolo/validate?dataset=example_data&access_key={key}")).json()
    assert validate == {
        "valid": True,
        "message": "valid: 6 images, yolo layout, classes: circle, square, triangle",
    }
    form = aiohttp.FormData({"access_key": key, "model_name": "demo", "dataset_id": "example_data"})
    answer = await (await client.post("/yolo/predict", data=form)).json()
    assert answer["url"].startswith("http://") and "/yolo/output?key=" in answer["url"]
    output_path = answer["url"].split("/", 3)[3]
    await wait_job(client, headers, output_path.split("key=")[1])
    output = await (await client.get(f"/{output_path}", headers={"Access-Key": key})).json()
    assert output["done"] is True and [r["image"] for r in output["results"]] == [
        f"scene_{i:05d}.jpg" for i in range(6)
    ]
    boxes = [b for r in output["results"] for b in r["boxes"]]
    assert boxes and all(set(b) == {"class", "score", "x", "y", "w", "h"} for b in boxes)
    assert all(0 <= b[k] <= 1 for b in boxes for k in "xywh") and {b["class"] for b in boxes} <= set(LABELS)


async def test_access_key(start_server: StartServer, tmp_path: Path) -> None:
    state = tmp_path / "state"
    client = await start_server(demo_model_dir("shapes-classifier"), state_dir=state)
    no_key_yet = await client.get("/datasets", headers={"Authorization": "Bearer ipk_whatever"})
    assert no_key_yet.status == 401 and "install.py key" in (await no_key_yet.json())["error_msg"]
    headers = key_for(state)
    for wrong in ({}, {"Authorization": "Bearer ipk_wrong"}, {"Access-Key": "nope"}):
        response = await client.get("/datasets", headers=wrong)
        body = await response.json()
        assert response.status == 401 and body["error_code"] == 337000 and "log_id" in body, body
    assert (await client.get("/datasets", headers=headers)).status == 200
    rotated = key_for(state)  # a new key replaces the old one at once
    assert (await client.get("/datasets", headers=headers)).status == 401
    assert (await client.get("/datasets", headers=rotated)).status == 200
    assert (await client.post("/yolo/predict", data={"dataset_id": "x"})).status == 401


async def test_bad_inputs_are_4xx_and_change_nothing(start_server: StartServer, tmp_path: Path) -> None:
    state = tmp_path / "state"
    client = await start_server(
        demo_model_dir("shapes-classifier"), state_dir=state, max_jobs=1, max_dataset_bytes=1_000_000
    )
    headers = key_for(state)
    await upload(client, headers, "good", zip_of(classification_dataset(tmp_path / "good", 6, 1)))
    traversal = io.BytesIO()
    with zipfile.ZipFile(traversal, "w") as archive:
        archive.writestr("../evil.jpg", b"x")
    cases: list[tuple[str, str, Any, int, str]] = [
        ("post", "/datasets?id=junk", b"not an archive", 400, "not a readable"),
        ("post", "/datasets?id=evil", traversal.getvalue(), 400, "'..' path component"),
        ("post", "/datasets?id=../x", b"x", 400, "dataset id must be"),
        ("post", "/datasets?id=good", zip_of(tmp_path / "good"), 409, "exists"),
        ("post", "/datasets?id=empty", b"", 400, "holds no archive"),
        ("post", "/datasets?id=big", bytes(1_000_001), 413, "the limit is 1000000"),
        ("get", "/datasets/nope", None, 404, "no dataset 'nope'"),
        ("delete", "/datasets/nope", None, 404, "no dataset"),
        ("get", "/jobs/20990101000000abcd", None, 404, "no job"),
        ("post", "/jobs/nope/cancel", None, 404, "no job"),
        ("post", "/jobs", {"kind": "train", "dataset": "good"}, 400, "kind must be one of"),
        ("post", "/jobs", {"kind": "predict", "dataset": 12}, 400, "dataset id must be"),
        ("post", "/jobs", {"kind": "predict", "dataset": "good", "threshold": "high"}, 400, "threshold"),
        ("post", "/jobs", {"kind": "predict"}, 400, "dataset field is missing"),
        ("post", "/jobs", [1, 2], 400, "must be a JSON object"),
        ("get", "/yolo/output", None, 400, "key query parameter"),
        ("get", "/yolo/output?key=..%2F..%2Fetc", None, 400, "job id must be"),
    ]
    for method, path, body, status, message in cases:
        kwargs: dict[str, Any] = {"headers": headers}
        if isinstance(body, bytes):
            kwargs["data"] = io.BytesIO(body)
        elif body is not None:
            kwargs["json"] = body
        response = await getattr(client, method)(path, **kwargs)
        answer = await response.json()
        assert response.status == status and message in answer["error_msg"], (path, answer)
        assert "error_code" in answer and "log_id" in answer
    listed = await (await client.get("/datasets", headers=headers)).json()
    assert [d["id"] for d in listed["datasets"]] == ["good"]
    assert sorted(p.name for p in (state / "data" / "datasets").iterdir()) == ["good"]  # no leftovers
    assert (await (await client.get("/jobs", headers=headers)).json())["jobs"] == []


async def test_cancel_and_the_job_limit(start_server: StartServer, tmp_path: Path) -> None:
    state = tmp_path / "state"
    client = await start_server(
        demo_model_dir("shapes-detector"), state_dir=state, max_jobs=1, max_batch_size=2
    )
    headers = key_for(state)
    await upload(client, headers, "many", zip_of(detection_dataset(tmp_path / "many", 120, 9)))
    first = (await (await client.post("/jobs", json={"dataset": "many"}, headers=headers)).json())["job"]
    over = await client.post("/jobs", json={"dataset": "many"}, headers=headers)
    assert over.status == 503 and (await over.json())["error_code"] == 336100
    busy = await client.delete("/datasets/many", headers=headers)
    assert busy.status == 409 and first["id"] in (await busy.json())["error_msg"]
    while (await (await client.get(f"/jobs/{first['id']}", headers=headers)).json())["job"]["done"] < 4:
        await asyncio.sleep(0.02)
    cancelled = await client.post(f"/jobs/{first['id']}/cancel", headers=headers)
    assert cancelled.status == 200
    job = await wait_job(client, headers, first["id"])
    assert job["state"] == "cancelled" and 0 < job["done"] < 120, job
    lines = (await (await client.get(f"/jobs/{first['id']}/results", headers=headers)).json())["results"]
    assert len(lines) == job["done"] and len({line["index"] for line in lines}) == len(lines)
    again = await client.post(f"/jobs/{first['id']}/cancel", headers=headers)
    assert again.status == 409
    assert (await client.delete("/datasets/many", headers=headers)).status == 200
