"""`inferpack train` and `inferpack evaluate` as a vendor runs them: a real (short) training
run in its own process, its bundle measured on a held-out set by the CLI, and the same figure
from the bundle served over HTTP."""

from __future__ import annotations

import base64
import json
import subprocess
import sys
from pathlib import Path

import pytest

from inferpack.datasets.readers import read_dataset
from inferpack.demo.datasets import classification_dataset
from tests.integration.conftest import StartServer

pytest.importorskip("torch", reason="the [train] extra (tests/run.sh installs it)")


def inferpack(*args: str | Path) -> subprocess.CompletedProcess[str]:
    command = ["nice", "-n", "10", sys.executable, "-m", "inferpack", *map(str, args)]
    return subprocess.run(command, capture_output=True, text=True, timeout=600, check=False)


async def test_train_then_evaluate_matches_the_served_bundle(
    tmp_path: Path, start_server: StartServer
) -> None:
    shapes = classification_dataset(tmp_path / "shapes", 60, seed=7)
    held_out = classification_dataset(tmp_path / "held_out", 24, seed=8)
    out = tmp_path / "model"
    trained = inferpack(
        "train", shapes, "--task", "classification", "--out", out, "--epochs", "2", "--size", "64",
        "--batch-size", "16", "--lr", "0.003", "--threads", "1",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr
    report = json.loads(trained.stdout)
    assert report["architecture"] == "mobilenet_v3_small" and report["validation"]["count"] == 6
    assert (out / "checkpoints" / "last.pt").is_file() and (out / "checkpoints" / "best.pt").is_file()

    evaluated = inferpack("evaluate", out, held_out, "--threads", "1")
    assert evaluated.returncode == 0, evaluated.stderr
    measures = json.loads(evaluated.stdout)
    assert measures["count"] == 24

    server = await start_server(out / "bundle", deploy_name="shapes")
    dataset = read_dataset(held_out)
    correct = 0
    for item in dataset.items:
        image = base64.b64encode((held_out / item.path).read_bytes()).decode()
        answer = await (
            await server.post("/shapes/ImageClassification", json={"image": image, "top_num": 1})
        ).json()
        correct += answer["results"][0]["name"] == item.label
    assert correct / len(dataset.items) == measures["top1"]


def test_cli_refuses_a_bad_dataset_in_one_line(tmp_path: Path) -> None:
    shapes = classification_dataset(tmp_path / "shapes", 6, seed=7)
    (shapes / "circle" / "notes.txt").write_text("not an image")
    result = inferpack("train", shapes, "--task", "detection", "--out", tmp_path / "model")
    assert result.returncode == 1 and result.stderr.count("\n") == 1, result.stderr
    assert "is a classification data set, not detection" in result.stderr
    assert not (tmp_path / "model").exists()
    result = inferpack("train", shapes, "--task", "classification", "--out", tmp_path / "model")
    assert result.returncode == 1 and "circle/notes.txt" in result.stderr, result.stderr
    assert not (tmp_path / "model").exists()
