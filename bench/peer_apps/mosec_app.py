"""mosec: a preprocessing stage (2 processes) and a dynamically batched inference stage.

    BENCH_MODEL_DIR=... python -m bench.peer_apps.mosec_app --port P --timeout 60000
POST /inference {"image": base64}. Batching: max_batch_size 8, max_wait_time 10 ms.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from mosec import Server, Worker

from bench.peer_apps.common import Classifier

MAX_BATCH_SIZE = 8
MAX_WAIT_MS = 10


class Preprocess(Worker):
    def __init__(self) -> None:
        super().__init__()
        self.classifier = Classifier()

    def forward(self, data: dict[str, Any]) -> np.ndarray:
        return self.classifier.preprocess(data["image"])


class Inference(Worker):
    def __init__(self) -> None:
        super().__init__()
        self.classifier = Classifier()

    def forward(self, data: list[np.ndarray]) -> list[dict[str, Any]]:
        logits = self.classifier.predict(np.stack(data))
        return [self.classifier.results(row) for row in logits]


if __name__ == "__main__":
    server = Server()
    server.append_worker(Preprocess, num=2)
    server.append_worker(Inference, max_batch_size=MAX_BATCH_SIZE, max_wait_time=MAX_WAIT_MS)
    server.run()
