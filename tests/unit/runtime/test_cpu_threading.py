"""How ORT on the CPU shares the cores: ``cpu_streams`` batches at once, each on its share.

bench/serving.py measured 2 batches of 1 thread beating 1 batch of 2 threads on a 2-core host;
these tests pin the arithmetic, and that one real session answers two batches run at once.
"""

from __future__ import annotations

import threading
from pathlib import Path

import numpy as np
import pytest
from tests.onnx_models import colour_classifier

from inferpack.runtime import onnx as ort_engine
from inferpack.runtime.engine import EngineOptions
from inferpack.runtime.onnx import OnnxRuntimeEngine, cpu_threading


@pytest.mark.parametrize(
    ("cores", "streams", "threads", "expected"),
    [
        (2, 2, 0, (2, 1)),  # the 2-core default: one thread per batch
        (8, 2, 0, (2, 4)),
        (2, 1, 0, (1, 2)),  # cpu_streams=1: the old one-batch layout
        (1, 2, 0, (2, 1)),  # never zero threads
        (8, 2, 3, (2, 3)),  # an explicit intra_op_threads wins
        (4, 0, 0, (1, 4)),  # nonsense streams read as one
    ],
)
def test_streams_split_the_usable_cores(
    monkeypatch: pytest.MonkeyPatch, cores: int, streams: int, threads: int, expected: tuple[int, int]
) -> None:
    monkeypatch.setattr(ort_engine, "usable_cores", lambda: cores)
    assert cpu_threading(EngineOptions(cpu_streams=streams, intra_op_threads=threads)) == expected


def test_a_real_session_answers_concurrent_batches_correctly(tmp_path: Path) -> None:
    engine = OnnxRuntimeEngine(colour_classifier(tmp_path) / "model.onnx", EngineOptions(cpu_streams=2))
    assert engine.concurrency == 2 and engine.details()["streams"] == 2
    red, blue = np.zeros((4, 3, 32, 32), np.float32), np.zeros((4, 3, 32, 32), np.float32)
    red[:, 0], blue[:, 2] = 1.0, 1.0
    answers: dict[str, np.ndarray] = {}

    def run(name: str, batch: np.ndarray) -> None:
        for _ in range(50):
            answers[name] = engine.infer({"images": batch})[0]

    threads = [threading.Thread(target=run, args=item) for item in (("red", red), ("blue", blue))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert (answers["red"].argmax(axis=1) == 0).all() and (answers["blue"].argmax(axis=1) == 2).all()
