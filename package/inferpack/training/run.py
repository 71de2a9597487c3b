"""Runs (or resumes) the training run in a model folder, recording a failure in its progress."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import cv2
import torch

from inferpack.training.config import TrainConfig
from inferpack.training.progress import ProgressWriter
from inferpack.training.trainer import Trainer


def run_training(run_dir: Path) -> dict[str, Any]:
    config = TrainConfig.load(run_dir)
    torch.set_num_threads(config.threads)
    cv2.setNumThreads(1)
    torch.manual_seed(config.seed)
    try:
        return Trainer(run_dir, config).run()
    except Exception as exc:
        ProgressWriter(run_dir).update(True, state="failed", error=str(exc))
        raise
