"""Starting a server under test as a real subprocess and waiting until it answers."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from bench.models import REPO, BenchModel

# The server under test runs on this interpreter (the project's .venv when run as the README
# says), so the bench also runs where inferpack is importable without a console script.
INFERPACK = (sys.executable, "-m", "inferpack")
LOGS = REPO / ".cache" / "bench" / "logs"


@dataclass(frozen=True)
class Running:
    name: str
    pid: int
    url: str  # where predictions are posted
    log: Path


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _wait_ready(url: str, process: subprocess.Popen[bytes], log: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"server exited with {process.returncode}; see {log}:\n{log.read_text()[-3000:]}"
            )
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise RuntimeError(f"server not ready at {url} after {timeout_s:.0f}s; see {log}")


@contextlib.contextmanager
def launch(
    name: str,
    command: Sequence[str],
    *,
    ready_url: str,
    predict_url: str,
    env: Mapping[str, str] | None = None,
    timeout_s: float = 180.0,
) -> Iterator[Running]:
    """Runs ``command`` in its own process group until the block ends, then stops the group."""
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"{name}.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            list(command),
            stdout=sink,
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env={**os.environ, **(env or {})},
            start_new_session=True,
        )
    try:
        _wait_ready(ready_url, process, log, timeout_s)
        yield Running(name, process.pid, predict_url, log)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def inferpack(
    model: BenchModel, settings: Mapping[str, str] | None = None, cpus: str | None = None
) -> contextlib.AbstractContextManager[Running]:
    """``inferpack serve`` on ``model``; ``settings`` are INFERPACK_* overrides (e.g. DECODE_WORKERS);
    ``cpus`` a taskset CPU list to pin it to."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    route = "ImageClassification" if model.task == "classification" else "ObjectDetection"
    env = {f"INFERPACK_{key.upper()}": str(value) for key, value in (settings or {}).items()}
    return launch(
        "inferpack-" + model.name,
        [
            *(["taskset", "-c", cpus] if cpus else []),
            *INFERPACK,
            "serve",
            str(model.directory),
            "--name",
            "bench",
            "--port",
            str(port),
            "--no-license",  # development mode: without a license every prediction is 337000
        ],
        ready_url=base + "/readyz",
        predict_url=f"{base}/bench/{route}",
        env=env,
    )


def _peer_env(model: BenchModel) -> dict[str, str]:
    return {"BENCH_MODEL_DIR": str(model.directory)}


def mosec(model: BenchModel, python: Path) -> contextlib.AbstractContextManager[Running]:
    """mosec (bench/peer_apps/mosec_app.py); its 3 s default request timeout raised to 60 s,
    as inferpack has none."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    return launch(
        "mosec-" + model.name,
        [
            str(python),
            "-m",
            "bench.peer_apps.mosec_app",
            "--address",
            "127.0.0.1",
            "--port",
            str(port),
            "--timeout",
            "60000",
        ],
        ready_url=base + "/",
        predict_url=base + "/inference",
        env=_peer_env(model),
    )


def litserve(model: BenchModel, python: Path) -> contextlib.AbstractContextManager[Running]:
    """LitServe (bench/peer_apps/litserve_app.py)."""
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    return launch(
        "litserve-" + model.name,
        [str(python), "-m", "bench.peer_apps.litserve_app", str(port)],
        ready_url=base + "/health",
        predict_url=base + "/predict",
        env=_peer_env(model),
    )
