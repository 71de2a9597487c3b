"""What a peer user would write around the model: the same as inferpack does, done plainly.

Base64 -> ``cv2.imdecode`` at full size -> ``cv2.resize`` -> RGB, scale, mean/std, NCHW
float32, as the bundle's model.json says; an ONNX Runtime session with its default
options; softmax and the top 6 as EasyDL's ``{"results": [{"name", "score"}]}``.
"""

from __future__ import annotations

import base64
import json
import os
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import onnxruntime as ort

TOP_NUM = 6
MODEL_DIR_ENV = "BENCH_MODEL_DIR"


class Classifier:
    def __init__(self, model_dir: Path | None = None) -> None:
        model_dir = model_dir or Path(os.environ[MODEL_DIR_ENV])
        spec = json.loads((model_dir / "model.json").read_text())
        inp = spec["input"]
        self.labels: list[str] = spec["labels"]
        self.size = (int(inp["width"]), int(inp["height"]))
        self.rgb = inp.get("color", "RGB") == "RGB"
        std = np.asarray(inp.get("std", [1, 1, 1]), np.float32)
        self.scale = np.float32(inp.get("scale", 1 / 255)) / std
        self.shift = np.asarray(inp.get("mean", [0, 0, 0]), np.float32) / std
        self.session = ort.InferenceSession(str(model_dir / "model.onnx"), providers=["CPUExecutionProvider"])
        self.input_name = self.session.get_inputs()[0].name

    def preprocess(self, image_b64: str) -> np.ndarray:
        data = np.frombuffer(base64.b64decode(image_b64), np.uint8)
        image = cv2.imdecode(data, cv2.IMREAD_COLOR)
        if image is None:
            raise ValueError("cannot decode the image")
        image = cv2.resize(image, self.size)
        if self.rgb:
            image = cv2.cvtColor(image, cv2.COLOR_BGR2RGB)
        sample = image.astype(np.float32) * self.scale - self.shift
        return np.ascontiguousarray(sample.transpose(2, 0, 1))

    def predict(self, batch: np.ndarray) -> np.ndarray:
        return self.session.run(None, {self.input_name: batch})[0]

    def results(self, logits: np.ndarray) -> dict[str, Any]:
        exp = np.exp(logits - logits.max())
        scores = exp / exp.sum()
        top = np.argsort(-scores)[:TOP_NUM]
        return {"results": [{"name": self.labels[i], "score": float(scores[i])} for i in top]}
