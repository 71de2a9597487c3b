"""``inferpack supervise``: keeps one command running; the process runtime's restart policy.

    inferpack supervise --name LABEL --pidfile FILE --log FILE [--detach] -- COMMAND...

Restarts the command with backoff (0.5 s, doubling to 30 s; back to 0.5 s after a run of a
minute) when it exits non-zero or is killed, like Docker's ``unless-stopped``. SIGTERM (or
SIGINT) goes on to the command; the supervisor exits once it has. ``--detach`` forks into a
new session first and returns once the pidfile names the supervisor, so it outlives whoever
started it. The command dies with the supervisor (SIGTERM on the supervisor's death), and both
share one process group, so one ``killpg`` ends everything that is left.

The command's stderr and the supervisor's own lines go to ``--log`` (rotated at 5 MiB when the
command is (re)started); its stdout is discarded, as the commands run here (``inferpack serve``
and ``front``) write their log to files of their own. ``<pidfile minus .pid>.state.json`` says
what the runtime reports: the command's pid, restart count, last exit code, start time.
"""

from __future__ import annotations

import argparse
import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from types import FrameType
from typing import Any

from inferpack.fileio import write_atomic

FIRST_DELAY_S = 0.5
MAX_DELAY_S = 30.0
STABLE_AFTER_S = 60.0  # a run this long resets the backoff
LOG_ROTATE_BYTES = 5 * 1024 * 1024
PR_SET_PDEATHSIG = 1


def state_path(pidfile: Path) -> Path:
    return pidfile.with_name(pidfile.name.removesuffix(".pid") + ".state.json")


def read_state(pidfile: Path) -> dict[str, Any]:
    """The supervisor's last state, or {} when it has written none (yet)."""
    try:
        data = json.loads(state_path(pidfile).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return data if isinstance(data, dict) else {}


def _now() -> str:
    return datetime.now(UTC).isoformat()


def _exit_status(returncode: int) -> int:
    """Popen's -N for "killed by signal N" as a shell (and Docker) would say it: 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


class Supervisor:
    def __init__(self, name: str, command: Sequence[str], pidfile: Path, log_path: Path) -> None:
        self.name = name
        self.command = list(command)
        self.pidfile = pidfile
        self.log_path = log_path
        self.child: subprocess.Popen[bytes] | None = None
        self.stopping = False
        self.restarts = 0
        self.last_exit_code: int | None = None

    def run(self) -> int:
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, self._on_stop)
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
        quick_failures = 0
        while True:
            self._rotate_log()
            started = time.monotonic()
            returncode = self._run_child()
            status = _exit_status(returncode)
            self.last_exit_code = status
            if self.stopping or returncode == 0:
                self._log(f"command exited with {status}; supervisor exits")
                self._write_state("stopped")
                return 0 if self.stopping and returncode in (0, -signal.SIGTERM) else status
            quick_failures = 0 if time.monotonic() - started >= STABLE_AFTER_S else quick_failures + 1
            delay = min(FIRST_DELAY_S * 2 ** (quick_failures - 1), MAX_DELAY_S) if quick_failures else 0.0
            self._log(f"command exited with {status}; restarting in {delay:.1f}s")
            self._write_state("restarting")
            if not self._sleep(delay):
                self._write_state("stopped")
                return 0
            self.restarts += 1

    def _run_child(self) -> int:
        with open(self.log_path, "ab") as log:
            self.child = subprocess.Popen(
                self.command,
                stdin=subprocess.DEVNULL,
                stdout=subprocess.DEVNULL,
                stderr=log,
                preexec_fn=_die_with_parent(os.getpid()),
            )
        self._log(f"started {self.command[0]} as pid {self.child.pid} (restart {self.restarts})")
        self._write_state("running", child_started_at=_now())
        if self.stopping:  # SIGTERM came while starting: pass it on now
            self.child.terminate()
        returncode = self.child.wait()
        self.child = None
        return returncode

    def _on_stop(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        if self.child is not None and self.child.returncode is None:
            with contextlib.suppress(ProcessLookupError):
                self.child.send_signal(signal.SIGTERM)

    def _sleep(self, seconds: float) -> bool:
        """Sleeps unless told to stop meanwhile; False when told to stop."""
        deadline = time.monotonic() + seconds
        while not self.stopping and time.monotonic() < deadline:
            time.sleep(min(0.1, deadline - time.monotonic()))
        return not self.stopping

    def _write_state(self, state: str, **extra: str) -> None:
        previous = read_state(self.pidfile)
        data = {
            "name": self.name,
            "state": state,
            "supervisor_pid": os.getpid(),
            "child_pid": self.child.pid if self.child else None,
            "child_started_at": extra.get("child_started_at", previous.get("child_started_at")),
            "restarts": self.restarts,
            "last_exit_code": self.last_exit_code,
            "updated": _now(),
        }
        write_atomic(state_path(self.pidfile), (json.dumps(data) + "\n").encode())

    def _log(self, line: str) -> None:
        with open(self.log_path, "a", encoding="utf-8") as log:
            log.write(f"{_now()} supervise[{self.name}]: {line}\n")

    def _rotate_log(self) -> None:
        with contextlib.suppress(FileNotFoundError):
            if self.log_path.stat().st_size > LOG_ROTATE_BYTES:
                os.replace(self.log_path, self.log_path.with_name(self.log_path.name + ".1"))


def _die_with_parent(parent: int) -> Callable[[], None]:
    """A preexec_fn: the child gets SIGTERM when the supervisor dies (even by SIGKILL), so no
    server is left running unsupervised. Linux only; elsewhere a no-op."""

    def preexec() -> None:
        if sys.platform.startswith("linux"):
            ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the supervisor died before prctl took effect
            os.kill(os.getpid(), signal.SIGTERM)

    return preexec


def _detach(pidfile: Path) -> bool:
    """Forks; the parent writes the child's pid and returns True (it should exit), the child
    starts a new session (no SIGHUP from a closing terminal) and returns False."""
    pid = os.fork()
    if pid:
        write_atomic(pidfile, f"{pid}\n".encode())
        return True
    os.setsid()
    return False


def _supervise_command(args: argparse.Namespace) -> int:
    command = args.command_line[1:] if args.command_line[:1] == ["--"] else args.command_line
    if not command:
        raise ValueError("no command to supervise: put it after --")
    args.pidfile.parent.mkdir(parents=True, exist_ok=True)
    args.log.parent.mkdir(parents=True, exist_ok=True)
    if args.detach:
        if _detach(args.pidfile):
            return 0
    else:
        write_atomic(args.pidfile, f"{os.getpid()}\n".encode())
    return Supervisor(args.name, command, args.pidfile, args.log).run()


def add_supervise_command(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    supervise = subparsers.add_parser(
        "supervise", help="(runtime) run a command, restarting it when it fails"
    )
    supervise.add_argument("--name", required=True, help="label for the log lines")
    supervise.add_argument("--pidfile", type=Path, required=True)
    supervise.add_argument("--log", type=Path, required=True, help="the command's stderr and restarts")
    supervise.add_argument("--detach", action="store_true", help="fork into a new session first")
    supervise.add_argument("command_line", nargs=argparse.REMAINDER, metavar="-- COMMAND ...")
    supervise.set_defaults(handler=_supervise_command)
