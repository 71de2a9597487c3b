"""``progress.json`` in a model folder: what a run is doing, written atomically every few seconds.

The workbench answers ``/yolo/progress`` from it without touching the training process.
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

from inferpack.fileio import write_atomic

PROGRESS_FILE = "progress.json"
INTERVAL_S = 2.0


def read_progress(run_dir: Path) -> dict[str, Any]:
    try:
        raw = json.loads((run_dir / PROGRESS_FILE).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return raw if isinstance(raw, dict) else {}


class ProgressWriter:
    """Keeps the run's fields; ``update`` writes at most every ``INTERVAL_S`` unless forced."""

    def __init__(self, run_dir: Path, **fields: Any) -> None:
        self._path = run_dir / PROGRESS_FILE
        self.fields: dict[str, Any] = {**read_progress(run_dir), **fields}
        self._written = 0.0

    def update(self, force: bool = False, **fields: Any) -> None:
        self.fields.update(fields)
        now = time.monotonic()
        if force or now - self._written >= INTERVAL_S:
            self.fields["updated"] = time.time()
            write_atomic(self._path, json.dumps(self.fields, indent=2).encode())
            self._written = now
