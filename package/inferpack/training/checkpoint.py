"""Checkpoints: written atomically (a killed run leaves the previous one whole) and read with
``weights_only`` so a checkpoint handed in as a fine-tuning source cannot run code."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any

import torch

from inferpack.fileio import write_atomic


def save_checkpoint(path: Path, payload: dict[str, Any]) -> None:
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buffer.getvalue())


def load_checkpoint(path: Path) -> dict[str, Any]:
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many kinds for a file that is not its checkpoint
        raise ValueError(f"{path.name} is not a readable checkpoint: {exc}") from exc
    if not isinstance(payload, dict) or "model" not in payload or "architecture" not in payload:
        raise ValueError(f"{path.name} is not an inferpack training checkpoint")
    return payload
