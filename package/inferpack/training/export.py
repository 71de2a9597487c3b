"""A trained network -> an inferpack bundle (``model.onnx`` + ``model.json``) the server serves as is.

ONNX with a dynamic batch axis; model.json carries the exact pre-processing training used
(``samples.input_spec``: letterbox, RGB, x/255) and, for detection, the YOLOv8 layout the
graph ends in. The folder is written beside its final place and renamed into it, so a reader
(a download, a packer) never sees half a bundle.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import warnings
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch
from torch import nn

from inferpack.bundle import MODEL_FILE, SPEC_FILE, ModelSpec, Task, parse_spec
from inferpack.training.samples import input_spec

OPSET = 17
DETECTION_OUTPUT = {
    "layout": "yolov8",
    "coordinates": "pixels",
    "iou_threshold": 0.45,
    "threshold": 0.3,
    "max_detections": 100,
}


def model_json(task: Task, labels: tuple[str, ...], side: int, name: str, version: str) -> dict[str, Any]:
    spec = asdict(input_spec(side, side))
    spec.update(mean=list(spec["mean"]), std=list(spec["std"]), layout="NCHW", color="RGB")
    return {
        "schema_version": 1,
        "name": name,
        "version": version,
        "task": task,
        "labels": list(labels),
        "input": spec,
        "output": {"type": "logits"} if task == "classification" else dict(DETECTION_OUTPUT),
    }


def model_spec(task: Task, labels: tuple[str, ...], side: int) -> ModelSpec:
    return parse_spec(model_json(task, labels, side, "model", "1"))


def export_bundle(model: nn.Module, directory: Path, spec: dict[str, Any]) -> Path:
    """Writes ``directory`` (replacing a previous bundle there in one rename); returns it."""
    side = int(spec["input"]["width"])
    directory.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=directory.parent, prefix=f".{directory.name}."))
    try:
        was_training = model.training
        model.eval()
        with torch.no_grad(), warnings.catch_warnings():
            # InstanceNorm without running statistics always normalises by the input's own,
            # in training and inference alike: the exporter's "train=True" note is expected.
            warnings.filterwarnings("ignore", "ONNX export mode is set to TrainingMode.EVAL", UserWarning)
            torch.onnx.export(
                model,
                (torch.zeros(1, 3, side, side),),
                str(staging / MODEL_FILE),
                input_names=["images"],
                output_names=["output0"],
                dynamic_axes={"images": {0: "batch"}, "output0": {0: "batch"}},
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        model.train(was_training)
        (staging / SPEC_FILE).write_text(json.dumps(spec, indent=2) + "\n")
        os.chmod(staging, 0o755)
        old = directory.with_name(f".{directory.name}.old")
        shutil.rmtree(old, ignore_errors=True)
        if directory.exists():
            os.replace(directory, old)
        os.replace(staging, directory)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return directory
