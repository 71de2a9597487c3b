"""What a model folder holds (no PyTorch here: the workbench and ``evaluate`` read these too).

``train.json`` (config.py), ``progress.json`` (progress.py), ``checkpoints/last.pt`` and
``best.pt``, ``bundle/`` (the best checkpoint exported), ``report.json`` (the bundle's
measures on the validation split once the run has finished).
"""

from __future__ import annotations

from pathlib import Path

from inferpack.bundle import SPEC_FILE

CHECKPOINTS = "checkpoints"
LAST = "last.pt"
BEST = "best.pt"
BUNDLE = "bundle"
REPORT_FILE = "report.json"


def checkpoint_path(run_dir: Path, which: str = LAST) -> Path:
    return run_dir / CHECKPOINTS / which


def bundle_dir(model_dir: Path) -> Path:
    """``model_dir`` itself when it is a bundle, else the bundle a training run exported into it."""
    return model_dir if (model_dir / SPEC_FILE).exists() else model_dir / BUNDLE
