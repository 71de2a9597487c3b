"""Cold start: ``inferpack serve`` process start → ``/readyz`` 200, without and with the cached
optimised ONNX Runtime graph (inferpack.runtime.ort_cache).

For each model, ``--runs`` starts of each kind, in alternating order: "no cache" (an empty
state dir: ORT optimises the graph, as every start did before the cache, and writes it) and
"cached" (a state dir whose cache a first, unrecorded start filled). ``/readyz`` is polled
every 10 ms.

    .venv/bin/python -m bench.coldstart [--models resnet50,resnet50-int8,demo] [--runs 3]
"""

from __future__ import annotations

import argparse
import contextlib
import os
import signal
import statistics
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Sequence
from pathlib import Path

from bench.int8_models import resnet50_int8_bundle
from bench.models import REPO, BenchModel, demo_bundles, resnet50_bundle
from bench.servers import INFERPACK, LOGS, free_port

NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def time_to_ready(model: BenchModel, state_dir: Path, timeout_s: float = 120.0) -> float:
    """Seconds from starting the server process to its first /readyz 200."""
    port = free_port()
    command = [*INFERPACK, "serve", str(model.directory), "--name", "bench"]
    command += ["--port", str(port), "--no-license", "--state-dir", str(state_dir)]
    state_dir.mkdir(parents=True, exist_ok=True)
    LOGS.mkdir(parents=True, exist_ok=True)
    with (LOGS / f"coldstart-{model.name}.log").open("wb") as log:
        started = time.perf_counter()
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, cwd=REPO, start_new_session=True
        )
    try:
        while time.perf_counter() - started < timeout_s:
            if process.poll() is not None:
                raise RuntimeError(f"server exited with {process.returncode}; see {log.name}")
            with (
                contextlib.suppress(urllib.error.URLError, ConnectionError, TimeoutError),
                NO_PROXY.open(f"http://127.0.0.1:{port}/readyz", timeout=1) as response,
            ):
                if response.status == 200:
                    return time.perf_counter() - started
            time.sleep(0.01)
        raise RuntimeError(f"{model.name} not ready after {timeout_s:.0f}s")
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=30)


def models(names: str) -> list[BenchModel]:
    chosen = []
    for name in names.split(","):
        if name == "resnet50":
            chosen.append(resnet50_bundle())
        elif name == "resnet50-int8":
            chosen.append(resnet50_int8_bundle())
        elif name == "demo":
            chosen += demo_bundles()
        else:
            raise SystemExit(f"unknown model {name!r}: resnet50, resnet50-int8, demo")
    return chosen


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--models", default="resnet50,resnet50-int8,demo")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args(argv)
    print(f"{'model':<24} {'no cache, s':>12} {'cached, s':>10} {'saved':>7}   (median of {args.runs})")
    for model in models(args.models):
        with tempfile.TemporaryDirectory(prefix="coldstart-") as tmp:
            filled = Path(tmp) / "filled"
            time_to_ready(model, filled)  # fills the cache
            cold, warm = [], []
            for run in range(args.runs):
                empty = Path(tmp) / f"empty-{run}"
                if run % 2:
                    warm.append(time_to_ready(model, filled))
                cold.append(time_to_ready(model, empty))
                if not run % 2:
                    warm.append(time_to_ready(model, filled))
        before, after = statistics.median(cold), statistics.median(warm)
        print(f"{model.name:<24} {before:>12.2f} {after:>10.2f} {before - after:>6.2f}s", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
