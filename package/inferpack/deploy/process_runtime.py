"""The process runtime, for hosts without Docker: the front and backends as local processes.

Each runs detached under ``inferpack supervise`` (restart on failure, SIGTERM passed on), with
the same Python as the installer. Its files are in ``<home>/state/processes/``:
``LABEL.json`` (how it was started: compared on the next start, to make starting idempotent),
``LABEL.pid`` (the supervisor) and ``LABEL.state.json`` (written by the supervisor). Logs go
to ``<home>/logs/<slot or front>/``: the process's own log and ``supervise.log``.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from inferpack.deploy import loopback
from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.routes import FRONT_HEALTH_PATH, routes_path
from inferpack.deploy.runtime import (
    DEFAULT_FRONT,
    FRONT,
    BackendSpec,
    FrontOptions,
    InstanceStatus,
    Runtime,
    full_instance_name,
    instance_name,
)
from inferpack.deploy.supervise import read_state

START_PERIOD = timedelta(seconds=120)  # as the image's HEALTHCHECK: not ready by then is "starting"


def _processes_dir(layout: ServiceLayout) -> Path:
    return layout.state_dir / "processes"


class ProcessRuntime(Runtime):
    name = "process"

    def __init__(self, python: str = sys.executable, probe_timeout_s: float = 1.0) -> None:
        self.python = python
        self.probe_timeout_s = probe_timeout_s

    def available(self) -> tuple[bool, str]:
        return True, f"local processes under `inferpack supervise` ({self.python})"

    def start_backend(self, layout: ServiceLayout, spec: BackendSpec) -> InstanceStatus:
        model = layout.versions / spec.version
        if not model.is_dir():
            raise FileNotFoundError(f"version {spec.version} is not installed: no {model}")
        log_dir = layout.logs_dir / spec.slot
        command = [
            *self._inferpack, "serve", str(model), "--name", layout.name,
            "--host", "127.0.0.1", "--port", str(spec.port),
            "--state-dir", str(layout.state_dir), "--log-dir", str(log_dir),
            *_license_args(layout), *spec.serve_args,
        ]  # fmt: skip
        # As the docker runtime's device request: the chosen GPU is the only one, device 0.
        env = {"CUDA_VISIBLE_DEVICES": str(spec.gpu)} if spec.gpu is not None else {}
        meta = {"role": "backend", "slot": spec.slot, "version": spec.version, "port": spec.port}
        return self._ensure(layout, instance_name(layout, spec.slot), meta, command, env, log_dir)

    def stop_backend(self, layout: ServiceLayout, slot: str, timeout_s: float = 30.0) -> None:
        self._stop(layout, instance_name(layout, slot), timeout_s)

    def ensure_front(
        self, layout: ServiceLayout, port: int, image: str | None, options: FrontOptions = DEFAULT_FRONT
    ) -> InstanceStatus:
        """Keeps a front that runs on ``port`` with these options, even started by another
        Python: replacing it would refuse clients' connections for a moment."""
        label = instance_name(layout)
        running = self._status(layout, label)
        started = _read_json(_processes_dir(layout) / f"{label}.json")
        if running.state == "running" and running.port == port and started.get("options") == asdict(options):
            return running
        log_dir = layout.logs_dir / FRONT
        command = [
            *self._inferpack, "front", "--port", str(port), "--routes", str(routes_path(layout)),
            "--log-dir", str(log_dir), *options.args(),
        ]  # fmt: skip
        meta = {"role": FRONT, "slot": None, "version": None, "port": port, "options": asdict(options)}
        return self._ensure(layout, instance_name(layout), meta, command, {}, log_dir)

    def stop_front(self, layout: ServiceLayout, timeout_s: float = 30.0) -> None:
        self._stop(layout, instance_name(layout), timeout_s)

    def instances(self, layout: ServiceLayout) -> list[InstanceStatus]:
        folder = _processes_dir(layout)
        specs = sorted(p for p in folder.glob("*.json") if not p.name.endswith(".state.json"))
        found = [self._status(layout, spec.stem) for spec in specs]
        return sorted(found, key=lambda s: (s.role != FRONT, s.name))

    def logs(self, layout: ServiceLayout, name: str, tail: int = 200) -> str:
        """The process's own log, then its supervisor's lines (restarts, crash output)."""
        meta = _read_json(_processes_dir(layout) / f"{full_instance_name(layout, name)}.json")
        log_dir = Path(meta.get("log_dir", layout.logs_dir / (meta.get("slot") or FRONT)))
        own = log_dir / ("front.log" if meta.get("role") == FRONT else "server.log")
        parts = [f"==> {path} <==\n{_tail(path, tail)}" for path in (own, log_dir / "supervise.log")]
        return "\n".join(parts)

    @property
    def _inferpack(self) -> list[str]:
        return [self.python, "-m", "inferpack"]

    def _ensure(
        self,
        layout: ServiceLayout,
        label: str,
        meta: dict[str, Any],
        command: list[str],
        env: dict[str, str],
        log_dir: Path,
    ) -> InstanceStatus:
        folder = _processes_dir(layout)
        wanted = {**meta, "command": command, "env": env, "log_dir": str(log_dir)}
        if _read_json(folder / f"{label}.json") == wanted and _supervisor(folder / f"{label}.pid"):
            return self._status(layout, label)
        self._stop(layout, label, timeout_s=30.0)
        folder.mkdir(parents=True, exist_ok=True)
        log_dir.mkdir(parents=True, exist_ok=True)
        (folder / f"{label}.json").write_text(json.dumps(wanted, indent=2) + "\n", encoding="utf-8")
        pidfile = folder / f"{label}.pid"
        supervise = [
            *self._inferpack, "supervise", "--name", label, "--pidfile", str(pidfile),
            "--log", str(log_dir / "supervise.log"), "--detach", "--", *command,
        ]  # fmt: skip
        # --detach returns once the supervisor runs in its own session, so nothing is left to reap.
        # Its stderr goes to the log, not a pipe: the supervisor keeps it open for good.
        with open(log_dir / "supervise.log", "ab") as log:
            done = subprocess.run(
                supervise,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                cwd=layout.home,
                env={**os.environ, **env},
                check=False,
                timeout=30,
            )
        if done.returncode != 0:
            tail = _tail(log_dir / "supervise.log", 10)
            raise ChildProcessError(f"inferpack supervise for {label} exited {done.returncode}:\n{tail}")
        _wait_started(pidfile)
        return self._status(layout, label)

    def _stop(self, layout: ServiceLayout, label: str, timeout_s: float) -> None:
        """SIGTERM to the supervisor (it passes it on), SIGKILL to the group after ``timeout_s``."""
        folder = _processes_dir(layout)
        pidfile = folder / f"{label}.pid"
        supervisor = _supervisor(pidfile)
        if supervisor is not None:
            pids = [p for p in (supervisor, _child(pidfile, supervisor)) if p is not None]
            with contextlib.suppress(ProcessLookupError):
                os.kill(supervisor, signal.SIGTERM)
            if not _wait_gone(pids, timeout_s):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(supervisor, signal.SIGKILL)  # --detach made it a group leader
                _wait_gone(pids, 5.0)
        for path in (folder / f"{label}.json", pidfile, folder / f"{label}.state.json"):
            path.unlink(missing_ok=True)

    def _status(self, layout: ServiceLayout, label: str) -> InstanceStatus:
        folder = _processes_dir(layout)
        meta = _read_json(folder / f"{label}.json")
        state = read_state(folder / f"{label}.pid")
        supervisor = _supervisor(folder / f"{label}.pid")
        child = _child(folder / f"{label}.pid", supervisor) if supervisor else None
        port = meta.get("port") if isinstance(meta.get("port"), int) else None
        started_at = state.get("child_started_at")
        if supervisor is None:
            run_state, health = "exited", "none"
        elif child is None:
            run_state, health = "restarting", "unhealthy"
        else:
            run_state, health = "running", self._health(meta.get("role") == FRONT, port, started_at)
        return InstanceStatus(
            name=label,
            role=str(meta.get("role", "backend")),
            slot=meta.get("slot"),
            state=run_state,
            health=health,
            port=port,
            restarts=int(state.get("restarts", 0)),
            exit_code=state.get("last_exit_code"),
            started_at=started_at,
            version=meta.get("version"),
            details={
                "pid": str(child or ""),
                "supervisor_pid": str(supervisor or ""),
                "log_dir": str(meta.get("log_dir", "")),
            },
        )

    def _health(self, front: bool, port: int | None, started_at: Any) -> str:
        if port is None:
            return "none"
        url = f"http://127.0.0.1:{port}{FRONT_HEALTH_PATH if front else '/readyz'}"
        try:
            with loopback.opener.open(url, timeout=self.probe_timeout_s) as response:
                if response.status == 200:
                    return "healthy"
        except OSError:  # URLError and HTTPError (a 503 while loading) included
            pass
        with contextlib.suppress(TypeError, ValueError):
            if datetime.now(UTC) - datetime.fromisoformat(started_at) < START_PERIOD:
                return "starting"
        return "unhealthy"


def _license_args(layout: ServiceLayout) -> list[str]:
    """Always: with no license file yet the server answers 337000 until `lu` puts one there.
    The vendor key counts only where the build pins none (license/pinned.py)."""
    return ["--license", str(layout.license_file), "--vendor-key", str(layout.vendor_key)]


def _read_json(path: Path) -> dict[str, Any]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _proc_stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a live process; None when gone or a zombie (only waiting to be
    reaped). /proc rather than psutil: the installer's Python may have no third-party package."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    state, ppid = stat.rpartition(")")[2].split()[:2]  # the name in parentheses may hold spaces
    return None if state in ("Z", "X") else (state, int(ppid))


def _supervisor(pidfile: Path) -> int | None:
    """The pid of the supervisor ``pidfile`` names, if it still runs: its command line must name
    the same pidfile, so a recycled pid is not taken for it."""
    try:
        pid = int(pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    if _proc_stat(pid) is None or b"supervise" not in cmdline or os.fsencode(pidfile) not in cmdline:
        return None
    return pid


def _child(pidfile: Path, supervisor: int) -> int | None:
    """The supervised command's pid, if it runs (a child of the supervisor, not a recycled pid)."""
    pid = read_state(pidfile).get("child_pid")
    if not isinstance(pid, int):
        return None
    stat = _proc_stat(pid)
    return pid if stat is not None and stat[1] == supervisor else None


def _wait_started(pidfile: Path, timeout_s: float = 10.0) -> None:
    """Until the supervisor has started the command, so the status returned names its pid."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        supervisor = _supervisor(pidfile)
        if supervisor is None or _child(pidfile, supervisor) is not None:
            return  # started, or the supervisor is gone already: the status will say so
        time.sleep(0.02)


def _wait_gone(pids: list[int], timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while any(_proc_stat(pid) is not None for pid in pids):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.05)
    return True


def _tail(path: Path, lines: int) -> str:
    try:
        with open(path, "rb") as file:
            file.seek(0, os.SEEK_END)
            file.seek(max(0, file.tell() - 256 * lines))  # enough for `lines` typical log lines
            return "\n".join(file.read().decode(errors="replace").splitlines()[-lines:])
    except OSError as exc:
        return f"({exc.strerror})"
