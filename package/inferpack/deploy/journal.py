"""One installer at a time per work root (a lock), and a journal of the operation in progress.

The journal is written before each step, so an installer killed half-way leaves a record of
what it was doing; the next run reads it and brings the service back to a consistent state
(one version serving) before doing anything else.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

from inferpack.deploy.layout import ServiceLayout
from inferpack.fileio import write_atomic

LOCK_NAME = ".inferpack.lock"


class InstallerBusy(RuntimeError):
    """Another installer holds the work root."""


@contextmanager
def work_root_lock(root: Path) -> Iterator[None]:
    """Held for a whole command; refused at once (never waited on) when another run holds it.
    The kernel releases a flock when its holder dies, so a killed installer never blocks the next."""
    root.mkdir(parents=True, exist_ok=True)
    path = root / LOCK_NAME
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            holder = handle.read().strip() or "unknown"
            raise InstallerBusy(
                f"another installer (pid {holder}) is working on {root}; wait for it to finish"
            ) from None
        handle.seek(0)
        handle.truncate()
        handle.write(str(os.getpid()))
        handle.flush()
        try:
            yield
        finally:
            handle.truncate(0)


@dataclass(frozen=True)
class Journal:
    operation: str  # "install", "update" or "rollback"
    target: str  # the version being brought into service
    previous: str | None  # the version serving before, if any
    step: str  # the last step started
    started: str
    pid: int

    @staticmethod
    def begin(operation: str, target: str, previous: str | None) -> Journal:
        now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        return Journal(operation, target, previous, "begin", now, os.getpid())


def journal_path(layout: ServiceLayout) -> Path:
    return layout.home / "journal.json"


def record(layout: ServiceLayout, journal: Journal, step: str) -> Journal:
    """Writes the journal saying ``step`` is about to run, and returns it."""
    journal = replace(journal, step=step)
    layout.home.mkdir(parents=True, exist_ok=True)
    write_atomic(journal_path(layout), (json.dumps(asdict(journal), indent=2) + "\n").encode())
    return journal


def read_journal(layout: ServiceLayout) -> Journal | None:
    path = journal_path(layout)
    if not path.is_file():
        return None
    return Journal(**json.loads(path.read_text(encoding="utf-8")))


def finish(layout: ServiceLayout) -> None:
    journal_path(layout).unlink(missing_ok=True)
