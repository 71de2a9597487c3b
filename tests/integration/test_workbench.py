"""The training workbench over real HTTP, called as the seed's curl lines do (form fields and an
access key): a short real training run that lowers the validation loss, stop -> restart that
carries the step counter on, predict -> output, download -> pack -> serve with the measures the
workbench reported, delete of a running job, and bad input that changes nothing."""

from __future__ import annotations

import asyncio
import base64
import io
import json
import os
import shutil
import zipfile
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import pytest
from aiohttp import FormData
from aiohttp.test_utils import TestClient

from inferpack.datasets.readers import read_dataset
from inferpack.demo.datasets import detection_dataset
from inferpack.deploy.manifest import MODEL_DIR
from inferpack.deploy.pack import check_model
from inferpack.deploy.verify import verify_package
from inferpack.evaluation.detection import Box, evaluate_detection
from inferpack.training.evaluate import EVAL_THRESHOLD, truth_boxes
from inferpack.workbench.app import WorkbenchConfig, init_app
from tests.integration.conftest import StartServer
from tests.support.packages import fake_wheels, make_package, make_vendor, unpack

pytest.importorskip("torch", reason="the [train] extra (tests/run.sh installs it)")

KEY = "ExampleAccessKey1234"
Client = TestClient[Any, Any]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return detection_dataset(tmp_path_factory.mktemp("data") / "scenes", 120, seed=5)


@pytest.fixture
async def workbench(
    tmp_path: Path, scenes: Path, aiohttp_client: Callable[..., Awaitable[Client]]
) -> tuple[Client, Path]:
    root = tmp_path / "bench"
    shutil.copytree(scenes, root / "datasets" / "scenes")  # a copy: data sets may not be links
    return await aiohttp_client(init_app(WorkbenchConfig(root=root, access_key=KEY))), root


async def post(client: Client, route: str, **fields: str) -> tuple[int, Any]:
    form = FormData()  # multipart, as curl -F sends
    for name, value in {"access_key": KEY, **fields}.items():
        form.add_field(name, value)
    response = await client.post(f"/yolo/{route}", data=form)
    return response.status, await response.json()


async def get(client: Client, route: str, **query: str) -> tuple[int, Any]:
    response = await client.get(f"/yolo/{route}", params=query, headers={"Access-Key": KEY})
    return response.status, (await response.json() if response.content_type == "application/json" else None)


async def wait_for(
    client: Client, model: str, done: Callable[[dict[str, Any]], bool], timeout_s: float = 400
) -> dict[str, Any]:
    deadline = asyncio.get_running_loop().time() + timeout_s
    while True:
        status, progress = await get(client, "progress", model_name=model)
        assert status == 200 and progress["state"] != "failed", progress
        if done(progress):
            return progress
        assert asyncio.get_running_loop().time() < deadline, progress
        await asyncio.sleep(0.2)


async def served_map(client: Client, dataset_dir: Path, held_out: list[str]) -> float:
    """mAP@0.5 of the served model's HTTP answers on the held-out images, as the trainer scores it."""
    dataset = read_dataset(dataset_dir)
    items = [item for item in dataset.items if item.path in held_out]
    assert len(items) == len(held_out)
    truths, predictions = [], []
    for item in items:
        data = (dataset_dir / item.path).read_bytes()
        body = {"image": base64.b64encode(data).decode(), "threshold": EVAL_THRESHOLD}
        answer = await (await client.post("/scenes/ObjectDetection", json=body)).json()
        boxes = [(r["name"], r["score"], r["location"]) for r in answer["results"]]
        predictions.append([Box(n, b["left"], b["top"], b["width"], b["height"], p) for n, p, b in boxes])
        height, width = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR).shape[:2]
        truths.append(truth_boxes(item, width, height))
    return evaluate_detection(truths, predictions, dataset.classes, threshold=0.3).map50


async def test_train_stop_restart_predict_download_pack_serve(
    workbench: tuple[Client, Path], tmp_path: Path, start_server: StartServer
) -> None:
    client, root = workbench
    status, answer = await post(
        client,
        "train",
        model_name="scenes_v1",
        dataset="scenes",
        batch_size="4",
        lr="0.002",
        final_epoch="3",
        size="96",
    )
    assert status == 200, answer
    assert answer["url"].endswith("/yolo/progress?model_name=scenes_v1")

    first = await wait_for(client, "scenes_v1", lambda p: len(p.get("history", [])) >= 2)
    status, answer = await post(client, "stop", model_name="scenes_v1")
    assert status == 200 and answer["state"] == "stopped", answer
    stopped = (await get(client, "progress", model_name="scenes_v1"))[1]
    assert stopped["state"] == "stopped" and stopped["current_steps"] >= first["history"][1]["step"] > 0

    status, answer = await post(client, "restart", model_name="scenes_v1")
    assert status == 200 and answer["url"].endswith("model_name=scenes_v1")
    resumed = await wait_for(
        client, "scenes_v1", lambda p: p["state"] == "running" and "pid" in p and p["pid"] != stopped["pid"]
    )
    assert resumed["current_steps"] >= first["history"][1]["step"]  # from the last checkpoint, not 0
    done = await wait_for(client, "scenes_v1", lambda p: p["state"] == "done")
    assert done["current_steps"] == done["max_steps"] and done["eta_s"] == 0
    epochs = [h["epoch"] for h in done["history"]]
    assert epochs == sorted(set(epochs)) and epochs[0] == 0 and epochs[-1] == 3
    # Training lowered the validation loss (the box term with it) and raised the boxes' IoU.
    first_val, last_val = done["history"][0], done["history"][-1]
    assert last_val["loss"] < first_val["loss"] and last_val["box_loss"] < first_val["box_loss"]
    assert last_val["iou"] > first_val["iou"]
    assert isinstance(done["iou"], float) and "map50" in done["validation"]

    status, answer = await post(client, "predict", model_name="scenes_v1", dataset_id="scenes")
    assert status == 200
    key = answer["url"].rsplit("key=", 1)[1]
    for _ in range(600):
        output = (await get(client, "output", key=key))[1]
        if output["done"]:
            break
        await asyncio.sleep(0.2)
    assert output["done"] and "error" not in output and len(output["results"]) == 120
    assert all(0 <= b["x"] <= 1 and 0 < b["w"] <= 1 for r in output["results"] for b in r["boxes"])

    response = await client.get(
        "/yolo/download", params={"model_name": "scenes_v1"}, headers={"Access-Key": KEY}
    )
    assert response.status == 200 and response.content_type == "application/zip"
    bundle = tmp_path / "downloaded"
    with zipfile.ZipFile(io.BytesIO(await response.read())) as archive:
        assert {"model.onnx", "model.json", "checkpoints/best.pt", "checkpoints/last.pt"} <= set(
            archive.namelist()
        )
        for member in ("model.onnx", "model.json"):
            (bundle / member).parent.mkdir(parents=True, exist_ok=True)
            (bundle / member).write_bytes(archive.read(member))
    check_model(bundle)  # what `inferpack pack` checks, then a real signed package of it
    vendor = make_vendor(tmp_path / "vendor")
    (tmp_path / "out").mkdir()
    package, _ = make_package(
        tmp_path / "out",
        vendor,
        bundle,
        fake_wheels(tmp_path / "wheels"),
        package_type="update",
        name="scenes",
    )
    unpacked = unpack(package, tmp_path / "unpacked")
    verify_package(unpacked, pinned_key=vendor.public)

    server = await start_server(unpacked / MODEL_DIR, deploy_name="scenes")
    report = json.loads((root / "models" / "scenes_v1" / "report.json").read_text())
    assert report["validation"] == done["report"]["validation"]
    served = await served_map(server, root / "datasets" / "scenes", report["held_out"])
    assert served == pytest.approx(report["validation"]["map50"], abs=1e-9)


async def test_one_job_at_a_time_and_delete_kills_the_running_one(workbench: tuple[Client, Path]) -> None:
    client, root = workbench
    response = await client.post(
        "/yolo/train",
        json={
            "access_key": KEY,
            "model_name": "doomed",
            "dataset": "scenes",
            "batch_size": 8,
            "final_epoch": 50,
            "size": 96,
        },
    )
    assert response.status == 200, await response.json()
    running = await wait_for(client, "doomed", lambda p: p["state"] == "running" and "pid" in p)
    status, answer = await post(client, "train", model_name="doomed", dataset="scenes")
    assert status == 409 and "exists already" in answer["error_msg"]
    status, _ = await post(client, "train", model_name="waiting", dataset="scenes", size="96")
    assert status == 200 and (await get(client, "progress", model_name="waiting"))[1]["state"] == "queued"
    status, answer = await post(client, "delete", model_name="doomed")
    assert status == 200 and answer["deleted"] is True
    with pytest.raises(ProcessLookupError):
        os.kill(running["pid"], 0)
    assert not (root / "models" / "doomed").exists()
    assert (await get(client, "progress", model_name="waiting"))[1]["state"] == "running"  # next in line
    status, answer = await post(client, "stop", model_name="waiting")
    assert status == 200 and answer["state"] == "stopped"
    status, _ = await post(client, "delete", model_name="waiting")
    assert status == 200 and (await get(client, "list"))[1] == {"models": []}
    status, answer = await get(client, "progress", model_name="doomed")
    assert status == 404 and answer["error_code"] == 336001


BAD_TRAIN_FIELDS = [
    ({"model_name": "m", "dataset": "nope"}, 404, "no data set named 'nope'"),
    (
        {"model_name": "m", "dataset": "broken"},
        400,
        "data/scene_00000.txt:1: class index 7 is out of range 0-2",
    ),
    ({"model_name": "../models", "dataset": "scenes"}, 400, "model_name must be 1-64 letters"),
    ({"model_name": ".hidden", "dataset": "scenes"}, 400, "got '.hidden'"),
    (
        {"model_name": "m", "dataset": "scenes/../scenes"},
        400,
        "dataset must be 1-64 letters",
    ),
    ({"model_name": "m", "dataset": "scenes", "batch_size": "abc"}, 400, "batch_size must be an integer"),
    ({"model_name": "m", "dataset": "scenes", "lr": "fast"}, 400, "lr must be a number"),
    ({"model_name": "m", "dataset": "scenes", "final_epoch": "0"}, 400, "final_epoch must be an integer"),
    (
        {"model_name": "m", "dataset": "scenes", "batch_size": "8", "subdivisions": "3"},
        400,
        "subdivisions must divide",
    ),
    ({"model_name": "m", "dataset": "scenes", "source": "ghost"}, 404, "no model named 'ghost'"),
    ({"dataset": "scenes"}, 400, "model_name is required"),
    ({"model_name": "m", "dataset": "scenes", "access_key": "wrong"}, 401, "access_key is missing or wrong"),
]


@pytest.mark.parametrize(("fields", "status", "message"), BAD_TRAIN_FIELDS)
async def test_bad_train_requests_change_nothing(
    workbench: tuple[Client, Path], fields: dict[str, str], status: int, message: str
) -> None:
    client, root = workbench
    broken = detection_dataset(root / "datasets" / "broken", 2, seed=1)
    (broken / "data" / "scene_00000.txt").write_text("7 0.5 0.5 0.2 0.2\n")
    got, answer = await post(client, "train", **fields)
    assert got == status and message in answer["error_msg"], answer
    assert set(answer) == {"log_id", "error_code", "error_msg"}
    assert list((root / "models").iterdir()) == []
    valid = (await get(client, "validate", dataset="broken"))[1]
    assert (
        valid["valid"] is False
        and "data/scene_00000.txt:1: class index 7 is out of range" in valid["message"]
    )


async def test_json_types_and_unknown_models_are_refused(workbench: tuple[Client, Path]) -> None:
    client, root = workbench
    for body, message in (
        ({"model_name": "m", "dataset": "scenes", "batch_size": True}, "batch_size must be an integer"),
        ({"model_name": ["m"], "dataset": "scenes"}, "model_name must be text"),
        ([1, 2], "must be a JSON object"),
    ):
        payload: Any = {"access_key": KEY, **body} if isinstance(body, dict) else body
        response = await client.post("/yolo/train", json=payload, headers={"Access-Key": KEY})
        assert response.status == 400 and message in (await response.json())["error_msg"]
    for route in ("stop", "restart", "delete", "predict"):
        status, answer = await post(client, route, model_name="ghost", dataset_id="scenes")
        assert status == 404 and "no model named 'ghost'" in answer["error_msg"], route
    status, answer = await get(client, "download", model_name="ghost")
    assert status == 404
    assert (await client.get("/healthz")).status == 200
    assert b"inferpack_workbench_requests_total" in await (await client.get("/metrics")).read()
    assert list((root / "models").iterdir()) == []
