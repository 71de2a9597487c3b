"""A training run's settings, kept as ``train.json`` in its model folder so a restarted or
resumed run trains exactly as it started."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from inferpack.bundle import Task
from inferpack.fileio import write_atomic

CONFIG_FILE = "train.json"
DEFAULT_SIZE = {"classification": 96, "detection": 256}


@dataclass(frozen=True)
class TrainConfig:
    dataset: str  # the data set folder
    task: Task
    name: str = "model"  # written into model.json
    final_epoch: int = 10
    batch_size: int = 16
    subdivisions: int = 1  # darknet's: each batch runs as this many slices, one optimiser step per batch
    lr: float = 0.001
    size: int = 0  # input side; 0: DEFAULT_SIZE of the task
    val_fraction: float = 0.1
    checkpoint_every: int = 50  # optimiser steps between checkpoints (and one at each epoch end)
    seed: int = 0
    threads: int = 1
    source: str | None = None  # a model folder to start from (fine-tuning)
    device: str = "cpu"  # or "cuda" (a torch device name): where the network trains

    def __post_init__(self) -> None:
        problems = [
            (self.final_epoch < 1, "final_epoch must be at least 1"),
            (self.batch_size < 1, "batch_size must be at least 1"),
            (
                self.subdivisions < 1 or self.batch_size % self.subdivisions,
                "subdivisions must divide batch_size",
            ),
            (not 0 < self.lr <= 1, "lr must be in (0, 1]"),
            (self.size < 0 or self.size % 32, "size must be a multiple of 32"),
            (not 0 < self.val_fraction < 1, "val_fraction must be in (0, 1)"),
            (self.checkpoint_every < 1, "checkpoint_every must be at least 1"),
            (self.threads < 1, "threads must be at least 1"),
        ]
        for failed, message in problems:
            if failed:
                raise ValueError(message)

    @property
    def input_side(self) -> int:
        return self.size or DEFAULT_SIZE[self.task]

    def save(self, run_dir: Path) -> None:
        write_atomic(run_dir / CONFIG_FILE, json.dumps(asdict(self), indent=2).encode())

    @classmethod
    def load(cls, run_dir: Path) -> TrainConfig:
        raw: dict[str, Any] = json.loads((run_dir / CONFIG_FILE).read_text(encoding="utf-8"))
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in raw.items() if k in known})
