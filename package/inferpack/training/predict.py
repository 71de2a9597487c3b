"""``python -m inferpack.training.predict RUN_DIR DATASET OUT``: the seed's /predict, with the
last checkpoint.

The checkpoint is exported to a temporary bundle and run through the server's own ``Model``,
so these answers are the ones the deployed model would give. Results go to OUT atomically in
the seed's shape: per image its boxes as class, score and x, y, w, h (the box centre and
size as fractions of the image), or, for a classifier, its classes by score.
"""

from __future__ import annotations

import json
import sys
import tempfile
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch

from inferpack.bundle import read_bundle
from inferpack.datasets.readers import read_dataset
from inferpack.fileio import write_atomic
from inferpack.model import Model
from inferpack.runtime.engine import EngineOptions
from inferpack.training.checkpoint import load_checkpoint
from inferpack.training.config import TrainConfig
from inferpack.training.export import export_bundle, model_json
from inferpack.training.layout import LAST, checkpoint_path
from inferpack.training.models import build_model


def _answer(model: Model, image: bytes) -> dict[str, Any]:
    prepared = model.prepare(image)
    row = model.run_batch(prepared.sample[None])[0]
    spec = model.spec
    if spec.task == "classification":
        return {"classes": [{"class": c, "score": s} for c, s in model.classify(row, spec.num_classes)]}
    w, h = prepared.transform.width, prepared.transform.height
    boxes = [
        {
            "class": d.label,
            "score": d.score,
            "x": (d.left + d.width / 2) / w,
            "y": (d.top + d.height / 2) / h,
            "w": d.width / w,
            "h": d.height / h,
        }
        for d in model.detect(row, prepared.transform, spec.output.threshold)
    ]
    return {"boxes": boxes}


def predict(run_dir: Path, dataset_dir: Path) -> list[dict[str, Any]]:
    config = TrainConfig.load(run_dir)
    state = load_checkpoint(checkpoint_path(run_dir, LAST))
    labels = tuple(state["labels"])
    network = build_model(state["architecture"], len(labels), state["side"], state["side"])
    network.load_state_dict(state["model"])
    with tempfile.TemporaryDirectory(dir=run_dir) as scratch:
        spec = model_json(config.task, labels, int(state["side"]), config.name, "last")
        bundle = read_bundle(export_bundle(network, Path(scratch) / "bundle", spec))
        model = Model.load(
            bundle, "onnxruntime", EngineOptions(max_batch_size=1, intra_op_threads=config.threads)
        )
        try:
            dataset = read_dataset(dataset_dir)
            return [
                {"image": item.name, **_answer(model, (dataset.root / item.path).read_bytes())}
                for item in dataset.items
            ]
        finally:
            model.engine.close()


def main(run_dir: Path, dataset_dir: Path, out: Path) -> None:
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    try:
        answer: dict[str, Any] = {"done": True, "results": predict(run_dir, dataset_dir)}
    except Exception as exc:
        answer = {"done": True, "error": str(exc), "results": []}
    write_atomic(out, json.dumps(answer, default=lambda v: float(np.float64(v))).encode())


if __name__ == "__main__":
    if len(sys.argv) != 4:
        sys.exit("usage: python -m inferpack.training.predict RUN_DIR DATASET OUT")
    main(Path(sys.argv[1]), Path(sys.argv[2]), Path(sys.argv[3]))
