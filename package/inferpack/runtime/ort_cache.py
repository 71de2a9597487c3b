"""ONNX Runtime's optimised CPU graph, kept between starts so a service does not re-optimise its
model every time it starts (ResNet-50: 0.84 s of session creation → 0.32 s, bench/README.md).

On a miss the session is created as usual, at ``ORT_ENABLE_ALL``, with ORT writing the graph it
optimised (``SessionOptions.optimized_model_filepath``); those bytes go into the ``EngineCache``
(``state_dir/engines/onnxruntime``) under an ``EngineKey``: the model's SHA-256, the CPU model and
a digest of its instruction-set flags (ENABLE_ALL's NCHWc layouts are specific to the CPU), and
the ONNX Runtime version. On a hit the cached graph is loaded with optimisations off, since
it already has them. A cached graph whose checksum does not match its sidecar, or that ORT
refuses to load, is discarded and rebuilt: nothing from the cache is trusted unchecked.
"""

from __future__ import annotations

import hashlib
import logging
import platform
import tempfile
from functools import cache
from pathlib import Path
from typing import Any, Literal

from inferpack.fileio import sha256_file
from inferpack.runtime.engine_cache import EngineCache, EngineKey

log = logging.getLogger("inferpack.runtime")

GraphSource = Literal["cached", "optimised and cached", "optimised (not cached)"]


@cache
def cpu_identity() -> tuple[str, str]:
    """(model name, SHA-256 of the sorted instruction-set flags) of this machine's CPU."""
    name, flags = "", ""
    try:
        for line in Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace").splitlines():
            key, _, value = (part.strip() for part in line.partition(":"))
            if key == "model name" and not name:
                name = " ".join(value.split())
            elif key in ("flags", "Features") and not flags:  # x86, Arm
                flags = " ".join(sorted(value.split()))
    except OSError:  # not Linux: the model name alone
        pass
    name = name or platform.processor() or platform.machine()
    return name, hashlib.sha256(flags.encode()).hexdigest()[:16]


def graph_key(model_path: Path, ort_version: str) -> EngineKey:
    device, capability = cpu_identity()
    return EngineKey(
        model_sha256=sha256_file(model_path),
        device=device,
        capability=capability,
        builder=f"onnxruntime {ort_version} ORT_ENABLE_ALL",
        precision="model",  # the graph keeps the model's own types (FP32 or INT8 QDQ)
        profiles=(),
        workspace_mb=0,
    )


def cached_session(
    ort: Any, model_path: Path, options: Any, providers: list[Any], folder: Path | None
) -> tuple[Any, GraphSource]:
    """An ``InferenceSession`` for ``model_path`` on the CPU, its optimised graph from (or into) the
    cache in ``folder``; where the graph came from. ``options`` is consumed (its level changes)."""
    if folder is None:
        return ort.InferenceSession(str(model_path), sess_options=options, providers=providers), (
            "optimised (not cached)"
        )
    store = EngineCache(folder)
    key = graph_key(model_path, ort.__version__)
    data = store.load(key)
    if data is not None:
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
        try:
            return ort.InferenceSession(data, sess_options=options, providers=providers), "cached"
        except Exception as exc:  # checksum fine, yet ORT refuses it (written by a broken build?)
            log.warning("onnxruntime cannot load the cached graph %s (%s): rebuilding", key.stem, exc)
            store.discard(key)
            options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    try:
        scratch = tempfile.TemporaryDirectory(prefix=".optimising-", dir=folder)
    except OSError as exc:  # an unwritable state dir costs each start the optimisation, no more
        log.warning("cannot cache the optimised graph in %s: %s", folder, exc)
        return ort.InferenceSession(str(model_path), sess_options=options, providers=providers), (
            "optimised (not cached)"
        )
    with scratch:
        optimised = Path(scratch.name) / "optimised.onnx"
        options.optimized_model_filepath = str(optimised)
        session = ort.InferenceSession(str(model_path), sess_options=options, providers=providers)
        try:
            store.store(key, optimised.read_bytes())
        except OSError as exc:
            log.warning("cannot cache the optimised graph in %s: %s", folder, exc)
            return session, "optimised (not cached)"
    return session, "optimised and cached"
