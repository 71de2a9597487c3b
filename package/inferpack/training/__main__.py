"""``python -m inferpack.training RUN_DIR``: one training run as its own process."""

from __future__ import annotations

import sys
from pathlib import Path

from inferpack.training.run import run_training

if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python -m inferpack.training RUN_DIR")
    run_training(Path(sys.argv[1]))
