"""The embedded demo models and the synthetic shapes images they were trained on."""

from __future__ import annotations

from pathlib import Path

_MODELS = Path(__file__).resolve().parent / "models"


def demo_model_dir(name: str) -> Path:
    """The folder of the embedded demo model ``name`` (e.g. "shapes-detector"), shipped as package data."""
    return _MODELS / name
