"""Built engines, cached on disk under the work root: TensorRT's serialized engines
(``state_dir/engines/tensorrt``) and ONNX Runtime's optimised CPU graphs
(``state_dir/engines/onnxruntime``, inferpack.runtime.ort_cache).

A built engine is only valid for the device model it was built on (a GPU, or a CPU model with
its instruction sets), the builder version that made it (TensorRT, ONNX Runtime), its precision
and optimisation profiles, and the exact model. ``EngineKey`` holds all
of that; its digest names the file, so a change of any of them is simply a different file (a
miss, then a build). Each engine ``NAME.engine`` has a sidecar ``NAME.json`` with the full key
and the engine's SHA-256 and size. A load checks both: a sidecar that is missing, unreadable or
for another key, or an engine whose bytes don't match, is a corrupt or stale entry: it is
removed and the caller rebuilds. Nothing from the cache is trusted without that check.

Writes are atomic (``inferpack.fileio.write_atomic``): the engine first, the sidecar last, so a
crash in between leaves an engine without a sidecar, which the next load discards. Two servers
building the same key at once (a blue/green switch) both write complete files; the last wins.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from inferpack.fileio import write_atomic

log = logging.getLogger("inferpack.runtime")

# Bumped when what inferpack writes (or how it builds) changes in a way that old entries miss.
CACHE_FORMAT = 1

ProfileShapes = tuple[str, tuple[int, ...], tuple[int, ...], tuple[int, ...]]  # name, min, opt, max


@dataclass(frozen=True)
class EngineKey:
    """Everything that makes a serialized engine invalid when it changes."""

    model_sha256: str
    device: str  # the GPU's or the CPU's model name
    capability: str  # a GPU's compute capability ("9.0"); a digest of a CPU's instruction sets
    builder: str  # what built it: the TensorRT version, "onnxruntime 1.32.0 ..."
    precision: str  # "fp16", "fp32" (what the builder was allowed to use) or "int8" (the graph's)
    profiles: tuple[tuple[ProfileShapes, ...], ...]  # one tuple of input shapes per profile
    workspace_mb: int
    format: int = CACHE_FORMAT

    def as_json(self) -> dict[str, Any]:
        as_read: dict[str, Any] = json.loads(json.dumps(asdict(self)))  # tuples become lists
        return as_read

    @property
    def digest(self) -> str:
        return hashlib.sha256(json.dumps(self.as_json(), sort_keys=True).encode()).hexdigest()

    @property
    def stem(self) -> str:
        return f"{self.model_sha256[:12]}-{self.digest[:20]}"


class EngineCache:
    def __init__(self, root: Path) -> None:
        self.root = root

    def engine_path(self, key: EngineKey) -> Path:
        return self.root / f"{key.stem}.engine"

    def sidecar_path(self, key: EngineKey) -> Path:
        return self.root / f"{key.stem}.json"

    def timing_cache_path(self, key: EngineKey) -> Path:
        """The builder's timing cache: per GPU model and TensorRT version, shared by all models."""
        tag = hashlib.sha256(f"{key.device}\0{key.capability}\0{key.builder}".encode())
        return self.root / f"timing-{tag.hexdigest()[:16]}.cache"

    def load(self, key: EngineKey) -> bytes | None:
        """The cached engine for ``key`` after checking it; None (and the entry removed) otherwise."""
        engine, sidecar = self.engine_path(key), self.sidecar_path(key)
        if not engine.exists() and not sidecar.exists():
            return None
        problem = self._check(key, engine, sidecar)
        if isinstance(problem, bytes):
            return problem
        log.warning("engine cache %s is %s: rebuilding", engine.name, problem)
        self.discard(key)
        return None

    def _check(self, key: EngineKey, engine: Path, sidecar: Path) -> bytes | str:
        try:
            meta = json.loads(sidecar.read_text(encoding="utf-8"))
        except FileNotFoundError:
            return "missing its checksum sidecar (interrupted write?)"
        except (OSError, ValueError) as exc:
            return f"unreadable ({exc})"
        if not isinstance(meta, dict) or meta.get("key") != key.as_json():
            return "stale (its sidecar is for another key)"
        try:
            data = engine.read_bytes()
        except OSError as exc:
            return f"unreadable ({exc})"
        if len(data) != meta.get("size") or hashlib.sha256(data).hexdigest() != meta.get("sha256"):
            return "corrupt (size or SHA-256 differs from its sidecar)"
        return data

    def store(self, key: EngineKey, data: bytes) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        write_atomic(self.engine_path(key), data, 0o600)
        meta = {"key": key.as_json(), "sha256": hashlib.sha256(data).hexdigest(), "size": len(data)}
        write_atomic(self.sidecar_path(key), json.dumps(meta, indent=2, sort_keys=True).encode(), 0o600)

    def discard(self, key: EngineKey) -> None:
        """Removes the entry (sidecar first, so a half-removed entry never looks valid)."""
        self.sidecar_path(key).unlink(missing_ok=True)
        self.engine_path(key).unlink(missing_ok=True)

    def get_or_build(self, key: EngineKey, build: Callable[[], bytes]) -> tuple[bytes, bool]:
        """The engine bytes and whether they came from the cache; builds and stores on a miss."""
        cached = self.load(key)
        if cached is not None:
            return cached, True
        data = build()
        try:
            self.store(key, data)
        except OSError as exc:  # a full or read-only disk costs the next start a build, no more
            log.warning("cannot cache the built engine in %s: %s", self.root, exc)
        return data, False
