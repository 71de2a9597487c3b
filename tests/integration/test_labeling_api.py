"""Labeling tasks through the real server on the demo models: pre-label → review → confirm
changes exactly the confirmed files; hard examples are where the model errs; bad input
changes nothing."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from collections import Counter
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient

from inferpack.datasets.readers import read_dataset
from inferpack.demo.datasets import classification_dataset, degraded_classification_dataset, detection_dataset
from inferpack.demo.shapes import LABELS
from tests.integration.conftest import StartServer
from tests.integration.labeling_support import proposals, run_task, serve_dataset

HELD_OUT_SEED = 4242


def _digests(root: Path) -> dict[str, str]:
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in root.rglob("*")
        if p.is_file()
    }


async def test_pre_label_review_confirm_round_trip(start_server: StartServer, tmp_path: Path) -> None:
    state = tmp_path / "state"
    folder = detection_dataset(tmp_path / "scenes", 12, HELD_OUT_SEED)
    truth = read_dataset(folder)
    for item in truth.items[6:]:  # the rest of the dataset is unlabelled
        (folder / item.path).with_suffix(".txt").unlink()
    client, headers = await serve_dataset(start_server, state, "shapes-detector", folder, "scenes")

    task = await run_task(
        client, headers, "scenes", {"task_type": "pre-label", "config": {"collect_key_sample": True}}
    )
    assert (task["status"], task["state"], task["progress"]) == (2, "done", 100), task
    assert task["result"]["total_sample_count"] == 12 and task["result"]["annotated_sample_count"] >= 10
    events = task["result"]["events"]
    assert [e["name"] for e in events] == ["start", "init", "labeling", "result_processing", "end"]
    assert all(e["status"] == "success" for e in events[:4]) and events[4]["status"] == "done", events

    body = await proposals(client, headers, "scenes")
    assert body["sample_count"] == 12
    by_id = {s["sample_id"]: s for s in body["samples"]}
    unlabelled = [s for s in body["samples"] if s["sample_status"] == "UN_ANNOTATION"]
    assert sorted(s["sample_id"] for s in unlabelled) == [item.path for item in truth.items[6:]]
    first = by_id[truth.items[6].path]
    assert (
        first["metadata"]["@modelarts:size"][2] == 3
        and 0 <= first["metadata"]["@modelarts:hard_coefficient"] <= 1
    )
    box = first["labels"][0]
    assert box["type"] == 1 and box["name"] in LABELS and len(box["property"]["@modelarts:feature"]) == 2

    await _check_exports(client, headers, body["samples"])
    store = state / "data" / "datasets" / "scenes" / "content"
    before = _digests(store)
    chosen = unlabelled[:3]
    corrected = [dict(label, name="circle") for label in chosen[0]["labels"]]  # a person's correction
    review = [{"sample_id": chosen[0]["sample_id"], "labels": corrected}]
    review += [{"sample_id": s["sample_id"], "labels": s["labels"]} for s in chosen[1:]]
    response = await client.put(
        "/demo/datasets/scenes/data-annotations/samples", json={"samples": review}, headers=headers
    )
    assert response.status == 200 and (await response.json())["success"] is True
    after = _digests(store)
    changed = {path for path in after if before.get(path) != after[path]}
    assert changed == {s["sample_id"].rsplit(".", 1)[0] + ".txt" for s in chosen}
    assert set(before) <= set(after)

    confirmed = {item.path: item for item in read_dataset(store).items}
    written = confirmed[chosen[0]["sample_id"]].boxes or ()
    assert [b.label for b in written] == ["circle"] * len(corrected)
    size = chosen[1]["metadata"]["@modelarts:size"]
    (x1, y1), (x2, y2) = chosen[1]["labels"][0]["property"]["@modelarts:feature"]
    got = (confirmed[chosen[1]["sample_id"]].boxes or ())[0]
    assert abs(got.cx - (x1 + x2) / 2 / size[0]) < 1e-5 and abs(got.w - (x2 - x1) / size[0]) < 1e-5
    assert abs(got.cy - (y1 + y2) / 2 / size[1]) < 1e-5
    validation = await (await client.get("/datasets/scenes/validate", headers=headers)).json()
    missing = {p["file"] for p in validation["problems"]}
    assert missing == {item.path for item in truth.items[6:]} - {s["sample_id"] for s in chosen}, validation


async def test_hard_examples_are_where_the_model_errs(start_server: StartServer, tmp_path: Path) -> None:
    """On degraded held-out shapes the classifier errs sometimes; the images it flags hard err far more."""
    folder = degraded_classification_dataset(tmp_path / "shapes", 200, HELD_OUT_SEED)
    client, headers = await serve_dataset(
        start_server, tmp_path / "state", "shapes-classifier", folder, "shapes"
    )
    task = await run_task(client, headers, "shapes", {"task_type": "auto-label", "config": {}})
    assert task["state"] == "done", task
    samples = (await proposals(client, headers, "shapes"))["samples"]
    coefficients = [s["metadata"]["@modelarts:hard_coefficient"] for s in samples]
    assert coefficients == sorted(coefficients, reverse=True)  # auto-label: hardest first
    hard = [_wrong(s) for s in samples if s["metadata"]["@modelarts:hard"]]
    rest = [_wrong(s) for s in samples if not s["metadata"]["@modelarts:hard"]]
    assert len(hard) >= 10 and len(rest) >= 10, (len(hard), len(rest))
    hard_rate, rest_rate = sum(hard) / len(hard), sum(rest) / len(rest)
    print(
        f"hard examples: error rate {hard_rate:.3f} on {len(hard)} flagged, "
        f"{rest_rate:.3f} on {len(rest)} others"
    )
    assert sum(hard) + sum(rest) >= 10  # the degraded set does make the model err
    assert hard_rate >= 3 * rest_rate and hard_rate - rest_rate >= 0.25, (hard_rate, rest_rate)
    flagged = (await proposals(client, headers, "shapes", "&hard=true"))["samples"]
    assert len(flagged) == len(hard) and all(s["metadata"]["@modelarts:hard_reasons"] for s in flagged)

    # Accepting a proposal that differs from its folder moves just that image into the proposed class.
    moved = next(s for s in samples if _wrong(s))
    store = tmp_path / "state" / "data" / "datasets" / "shapes" / "content"
    before = _digests(store)
    review = {"samples": [{"sample_id": moved["sample_id"], "labels": moved["labels"]}]}
    response = await client.put(
        "/demo/datasets/shapes/data-annotations/samples", json=review, headers=headers
    )
    assert response.status == 200, await response.text()
    target = f"{moved['labels'][0]['name']}/{moved['sample_id'].split('/')[1]}"
    after = _digests(store)
    assert after == {
        **{k: v for k, v in before.items() if k != moved["sample_id"]},
        target: before[moved["sample_id"]],
    }
    assert (await (await client.get("/datasets/shapes/validate", headers=headers)).json())["valid"]


def _wrong(sample: dict[str, Any]) -> bool:
    return bool(sample["labels"][0]["name"] != sample["sample_id"].split("/")[0])


async def test_bad_input_is_refused_and_changes_nothing(start_server: StartServer, tmp_path: Path) -> None:
    state = tmp_path / "state"
    folder = detection_dataset(tmp_path / "scenes", 4, HELD_OUT_SEED)
    client, headers = await serve_dataset(start_server, state, "shapes-detector", folder, "scenes")
    store = state / "data" / "datasets" / "scenes" / "content"
    before = _digests(store)
    tasks = "/demo/datasets/scenes/tasks"
    for body in (
        {"task_type": "train"},
        {"task_type": "pre-label", "config": []},
        {"task_type": "pre-label", "config": {"confidence_scope": "0.7-0.2"}},
        {"task_type": "pre-label", "config": {"n_clusters": 1}},
        {"task_type": "pre-label", "config": {"image_brightness": "yes"}},
    ):
        response = await client.post(tasks, json=body, headers=headers)
        assert response.status == 400 and "error_code" in await response.json(), body
    assert (await client.post(tasks, json={"task_type": "pre-label"})).status in (401, 403)
    assert (
        await client.post("/demo/datasets/nope/tasks", json={"task_type": "pre-label"}, headers=headers)
    ).status == 404
    assert (await (await client.get(tasks, headers=headers)).json())["tasks"] == []

    task = await run_task(client, headers, "scenes", {"task_type": "pre-label"})
    sample = (await proposals(client, headers, "scenes"))["samples"][0]
    confirm = "/demo/datasets/scenes/data-annotations/samples"
    good = {"sample_id": sample["sample_id"], "labels": sample["labels"]}
    box = {"name": "circle", "property": {"@modelarts:feature": [[10, 10], [5, 40]]}}
    for body in (
        {"samples": []},
        {"samples": [good, {"sample_id": "../../../etc/passwd", "labels": []}]},
        {"samples": [good, {"sample_id": sample["sample_id"], "labels": []}]},  # repeated
        {"samples": [good, {"sample_id": sample["sample_id"], "labels": [{"name": "hexagon"}]}]},
        {"samples": [{"sample_id": sample["sample_id"], "labels": [box]}]},  # x2 < x1
        {"samples": [{"sample_id": sample["sample_id"], "labels": [{"name": "circle"}]}]},  # no box
    ):
        response = await client.put(confirm, json=body, headers=headers)
        assert response.status == 400 and "error_code" in await response.json(), body
    assert (await client.put(confirm, json={"samples": [good]})).status in (401, 403)
    assert _digests(store) == before
    assert (await client.get(f"{tasks}/{task['task_id']}x", headers=headers)).status == 404
    cancelled = await client.post(f"{tasks}/{task['task_id']}/cancel", headers=headers)
    assert cancelled.status == 409  # already done


async def test_auto_grouping_is_much_purer_than_chance(start_server: StartServer, tmp_path: Path) -> None:
    folder = classification_dataset(tmp_path / "shapes", 90, HELD_OUT_SEED)
    client, headers = await serve_dataset(
        start_server, tmp_path / "state", "shapes-classifier", folder, "shapes"
    )
    task = await run_task(
        client, headers, "shapes", {"task_type": "auto-grouping", "config": {"n_clusters": 3}}
    )
    assert task["state"] == "done" and len(task["result"]["groups"]) == 3, task
    url = f"/demo/datasets/shapes/tasks/{task['task_id']}/groups"
    groups = (await (await client.get(url, headers=headers)).json())["groups"]
    members = [path for g in groups for path in g["members"]]
    assert sorted(members) == sorted(item.path for item in read_dataset(folder).items)
    assert all(set(g["representatives"]) <= set(g["members"]) and g["representatives"] for g in groups)
    majority = sum(Counter(path.split("/")[0] for path in g["members"]).most_common(1)[0][1] for g in groups)
    chance = Counter(path.split("/")[0] for path in members).most_common(1)[0][1]
    purity = majority / len(members)
    print(f"auto-grouping purity {purity:.3f} (chance {chance / len(members):.3f}) on {len(members)} shapes")
    assert purity >= 0.8 and purity >= chance / len(members) + 0.4


async def _check_exports(client: TestClient[Any, Any], headers: dict[str, str], samples: list[Any]) -> None:
    """The proposals as Label Studio predictions and Pascal VOC XML hold the same boxes."""
    url = "/demo/datasets/scenes/auto-annotations/export"
    studio = json.loads(await (await client.get(f"{url}?format=labelstudio", headers=headers)).read())
    by_image = {task["data"]["image"]: task["predictions"][0]["result"] for task in studio}
    assert set(by_image) == {s["sample_id"] for s in samples}
    for sample in samples:
        results = by_image[sample["sample_id"]]
        assert [r["value"]["rectanglelabels"][0] for r in results] == [x["name"] for x in sample["labels"]]
        width = sample["metadata"]["@modelarts:size"][0]
        for result, label in zip(results, sample["labels"], strict=True):
            (x1, _), (x2, _) = label["property"]["@modelarts:feature"]
            assert abs(result["value"]["x"] - 100 * x1 / width) < 1e-6
            assert abs(result["value"]["width"] - 100 * (x2 - x1) / width) < 1e-6
    hard = [s for s in samples if s["metadata"]["@modelarts:hard"]]
    voc = await client.get(f"{url}?format=voc&hard=true", headers=headers)
    assert voc.status == 200
    with zipfile.ZipFile(io.BytesIO(await voc.read())) as archive:
        names = sorted(archive.namelist())
        assert names == sorted(f"Annotations/{s['sample_id'].split('/')[-1][:-4]}.xml" for s in hard)
        for sample in hard:
            xml = archive.read(f"Annotations/{sample['sample_id'].split('/')[-1][:-4]}.xml").decode()
            assert xml.count("<object>") == len(sample["labels"])
