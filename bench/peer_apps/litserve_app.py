"""LitServe: one LitAPI with batching (max_batch_size 8, batch_timeout 10 ms), CPU, one worker.

    BENCH_MODEL_DIR=... python -m bench.peer_apps.litserve_app PORT
POST /predict {"image": base64}.
"""

# No "from __future__ import annotations": LitServe builds its request model from
# decode_request's annotation, and a string annotation makes every request a 422.
import sys
from typing import Any

import litserve as ls
import numpy as np

from bench.peer_apps.common import Classifier

MAX_BATCH_SIZE = 8
BATCH_TIMEOUT_S = 0.01


class ClassifierAPI(ls.LitAPI):
    def setup(self, device: str) -> None:
        self.classifier = Classifier()

    def decode_request(self, request: dict[str, Any]) -> np.ndarray:
        return self.classifier.preprocess(request["image"])

    def batch(self, inputs: list[np.ndarray]) -> np.ndarray:
        return np.stack(inputs)

    def predict(self, x: np.ndarray) -> np.ndarray:
        return self.classifier.predict(x)

    def unbatch(self, output: np.ndarray) -> list[np.ndarray]:
        return list(output)

    def encode_response(self, output: np.ndarray) -> dict[str, Any]:
        return self.classifier.results(output)


if __name__ == "__main__":
    api = ClassifierAPI(max_batch_size=MAX_BATCH_SIZE, batch_timeout=BATCH_TIMEOUT_S)
    server = ls.LitServer(api, accelerator="cpu", workers_per_device=1, timeout=False)
    server.run(host="127.0.0.1", port=int(sys.argv[1]), generate_client_file=False)
