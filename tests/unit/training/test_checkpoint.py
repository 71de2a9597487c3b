"""Checkpoints are data, never code: a fine-tuning ``source`` may come from anywhere."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

from inferpack.training.checkpoint import load_checkpoint, save_checkpoint

torch = pytest.importorskip("torch", reason="the [train] extra (tests/run.sh installs it)")


class _Payload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str, ...]]:
        return (os.system, (f"touch {self.marker}",))


def test_a_checkpoint_round_trips_atomically(tmp_path: Path) -> None:
    path = tmp_path / "checkpoints" / "last.pt"
    payload = {"architecture": "mobilenet_v3_small", "model": {"w": torch.ones(2)}, "step": 7}
    save_checkpoint(path, payload)
    loaded = load_checkpoint(path)
    assert loaded["step"] == 7 and torch.equal(loaded["model"]["w"], torch.ones(2))
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary left behind


def test_a_pickle_that_runs_code_is_refused_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    hostile = tmp_path / "best.pt"
    with hostile.open("wb") as out:
        pickle.dump({"architecture": "x", "model": _Payload(marker)}, out)
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(hostile)
    assert not marker.exists()


def test_other_files_are_not_checkpoints(tmp_path: Path) -> None:
    (tmp_path / "a.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="not a readable checkpoint"):
        load_checkpoint(tmp_path / "a.pt")
    torch.save({"weights": torch.zeros(1)}, tmp_path / "b.pt")
    with pytest.raises(ValueError, match="not an inferpack training checkpoint"):
        load_checkpoint(tmp_path / "b.pt")
