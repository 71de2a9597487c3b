"""The TensorRT engine cache: its key, each invalidation, and never trusting a bad entry.

Pure file logic: no TensorRT or GPU is involved (the bytes stand for a serialized engine).
"""

from __future__ import annotations

import dataclasses
import json
import os
from pathlib import Path

import pytest

from inferpack.runtime.engine_cache import EngineCache, EngineKey

KEY = EngineKey(
    model_sha256="ab" * 32,
    device="NVIDIA H200",
    capability="9.0",
    builder="11.4.0",
    precision="fp32",
    profiles=((("images", (1, 3, 32, 32), (8, 3, 32, 32), (8, 3, 32, 32)),),) * 2,
    workspace_mb=1024,
)
ENGINE = b"serialized-engine-bytes" * 100


@pytest.mark.parametrize(
    "change",
    [
        {"model_sha256": "cd" * 32},
        {"device": "NVIDIA L4"},
        {"capability": "8.9"},
        {"builder": "11.5.0"},
        {"precision": "fp16"},
        {"profiles": ((("images", (1, 3, 32, 32), (16, 3, 32, 32), (16, 3, 32, 32)),),) * 2},
        {"profiles": ((("images", (1, 3, 32, 32), (8, 3, 32, 32), (8, 3, 32, 32)),),)},  # 1 stream
        {"workspace_mb": 2048},
        {"format": 2},
    ],
    ids=lambda c: next(iter(c)),
)
def test_every_invalidating_field_changes_the_key(tmp_path: Path, change: dict[str, object]) -> None:
    other = dataclasses.replace(KEY, **change)  # type: ignore[arg-type]
    assert other.digest != KEY.digest
    cache = EngineCache(tmp_path)
    cache.store(KEY, ENGINE)
    assert cache.engine_path(other) != cache.engine_path(KEY)
    assert cache.load(other) is None  # a different key misses: the old engine is never used
    assert cache.load(KEY) == ENGINE


def test_key_is_stable_and_names_the_model() -> None:
    same = EngineKey(**{f.name: getattr(KEY, f.name) for f in dataclasses.fields(KEY)})
    assert same.digest == KEY.digest
    assert KEY.stem.startswith("abababababab-")


def test_store_then_load_roundtrip_with_sidecar(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path / "engines")
    cache.store(KEY, ENGINE)
    meta = json.loads(cache.sidecar_path(KEY).read_text())
    assert meta["size"] == len(ENGINE) and len(meta["sha256"]) == 64
    assert meta["key"]["device"] == "NVIDIA H200"
    assert cache.load(KEY) == ENGINE
    assert sorted(p.name for p in (tmp_path / "engines").iterdir()) == sorted(
        [cache.engine_path(KEY).name, cache.sidecar_path(KEY).name]
    )  # atomic writes leave no temp files behind
    assert os.stat(cache.engine_path(KEY)).st_mode & 0o777 == 0o600


def _flip_one_byte(path: Path) -> None:
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize(
    "damage",
    [
        pytest.param(lambda c: _flip_one_byte(c.engine_path(KEY)), id="engine-bit-flip"),
        pytest.param(lambda c: c.engine_path(KEY).write_bytes(ENGINE[:100]), id="engine-truncated"),
        pytest.param(lambda c: c.sidecar_path(KEY).unlink(), id="sidecar-missing"),
        pytest.param(lambda c: c.sidecar_path(KEY).write_text("{not json"), id="sidecar-garbage"),
        pytest.param(
            lambda c: c.sidecar_path(KEY).write_text(
                json.dumps({**json.loads(c.sidecar_path(KEY).read_text()), "key": {"stale": True}})
            ),
            id="sidecar-for-another-key",
        ),
        pytest.param(lambda c: c.engine_path(KEY).unlink(), id="engine-missing"),
    ],
)
def test_corrupt_or_stale_entry_is_removed_and_rebuilt(tmp_path: Path, damage: object) -> None:
    cache = EngineCache(tmp_path)
    cache.store(KEY, ENGINE)
    damage(cache)  # type: ignore[operator]
    assert cache.load(KEY) is None
    assert not cache.engine_path(KEY).exists() and not cache.sidecar_path(KEY).exists()
    builds: list[int] = []

    def build() -> bytes:
        builds.append(1)
        return ENGINE

    assert cache.get_or_build(KEY, build) == (ENGINE, False)
    assert cache.get_or_build(KEY, build) == (ENGINE, True)  # the rebuilt entry is a hit next time
    assert builds == [1]


def test_get_or_build_builds_once_then_hits(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    calls: list[int] = []

    def build() -> bytes:
        calls.append(1)
        return ENGINE

    assert cache.get_or_build(KEY, build) == (ENGINE, False)
    assert EngineCache(tmp_path).get_or_build(KEY, build) == (ENGINE, True)  # a later start
    assert calls == [1]


def test_unwritable_cache_still_serves_the_built_engine(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    cache = EngineCache(blocker / "engines")  # mkdir fails: the build result is still returned
    assert cache.get_or_build(KEY, lambda: ENGINE) == (ENGINE, False)


def test_timing_cache_is_per_gpu_and_tensorrt_not_per_model(tmp_path: Path) -> None:
    cache = EngineCache(tmp_path)
    other_model = dataclasses.replace(KEY, model_sha256="cd" * 32, precision="fp16")
    assert cache.timing_cache_path(other_model) == cache.timing_cache_path(KEY)
    here = cache.timing_cache_path(KEY)
    assert cache.timing_cache_path(dataclasses.replace(KEY, device="NVIDIA L4")) != here
    assert cache.timing_cache_path(dataclasses.replace(KEY, builder="10.9")) != here
