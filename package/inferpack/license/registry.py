"""Licensed instances counted host-wide: every licensed server registers in one folder per host.

A server whose license verifies holds a shared ``flock`` on ``<issue id>.<service>.lock`` in
``REGISTRY`` for as long as it runs (the kernel drops it when the process dies, however it dies),
so any process on the host can count the services serving one license: a file someone holds is
live, one no one holds is stale. ``<service>`` is the device and inode of the server's state
folder, the one thing every backend of a service shares (both versions during an update) and
two services (two work roots, a hand-run ``serve``) never do. The docker runtime mounts the
host's folder into each container.

``max_instances`` refuses a service beyond the licensed count; ``max_qps`` is shared out: each
server takes ``max_qps / live services`` of the licence's rate.

Limits, honestly: root can delete the folder's files or run a server in a private mount
namespace; this counts what runs normally, it does not stop a determined administrator.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

RUN_REGISTRY = Path("/run/inferpack/instances")
TMP_REGISTRY_NAME = "inferpack-instances"


def registry_dir() -> Path:
    """``/run/inferpack/instances``, or where the host cannot offer it (a non-root user), a folder
    in the system temp dir: host-wide either way. Created world-writable and sticky, as servers
    run under several users (root, the container's uid 10001)."""
    for folder in (RUN_REGISTRY, None):
        with contextlib.suppress(OSError):
            # Looked up only when needed: a read-only container may have no temp dir at all, and
            # importing this module (the front, the CLI) must not fail there.
            folder = folder or Path(tempfile.gettempdir()) / TMP_REGISTRY_NAME
            folder.mkdir(parents=True, exist_ok=True)
            if os.stat(folder).st_uid == os.geteuid():
                os.chmod(folder, 0o1777)
            if os.access(folder, os.W_OK | os.X_OK):
                return folder
    raise OSError(f"neither {RUN_REGISTRY} nor {TMP_REGISTRY_NAME} in a temp dir can be written")


def service_id(state_dir: Path) -> str:
    stat = os.stat(state_dir)
    return f"{stat.st_dev:x}-{stat.st_ino:x}"


def _open(path: Path) -> int:
    # Read-only is enough for flock, and works on a file another user (root, uid 10001) made.
    return os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)


def _held(path: Path) -> bool:
    """Whether some process holds a lock on ``path`` (tried without waiting, then let go)."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    finally:
        os.close(fd)  # closing drops the lock this took, if it took one
    return False


def live_services(folder: Path, issue_id: str, *, prune: bool = False) -> set[str]:
    """The services that hold a registration for ``issue_id`` now. ``prune``: delete the stale
    files (only under the registry lock: a joiner opens its file before it locks it)."""
    found = set()
    for path in folder.glob(f"{issue_id}.*.lock"):
        if _held(path):
            found.add(path.name.removeprefix(f"{issue_id}.").removesuffix(".lock"))
        elif prune:
            with contextlib.suppress(OSError):  # another user's file in the sticky folder
                path.unlink()
    return found


def live_elsewhere(issue_id: str, here: set[str]) -> int:
    """For the installer: services serving ``issue_id`` on this host other than ``here``."""
    try:
        return len(live_services(registry_dir(), issue_id) - here)
    except OSError:
        return 0


class Registration:
    """This server's place in the registry for one license (at most one at a time)."""

    def __init__(self, folder: Path, service: str) -> None:
        self.folder = folder
        self.service = service
        self.issue_id: str | None = None
        self._fd: int | None = None

    def claim(self, issue_id: str, max_instances: int | None) -> str | None:
        """Registers under ``issue_id`` (keeping a registration already held); returns why not
        when ``max_instances`` other services already serve that license on this host."""
        if self.issue_id == issue_id:
            return None
        self.release()
        with self._registry_lock():
            others = live_services(self.folder, issue_id, prune=True) - {self.service}
            if max_instances is not None and len(others) >= max_instances:
                return (
                    f"max_instances reached: {len(others)} other service(s) on this host serve "
                    f"license {issue_id}, which allows {max_instances}"
                )
            fd = _open(self.folder / f"{issue_id}.{self.service}.lock")
            fcntl.flock(fd, fcntl.LOCK_SH)  # shared: the other backend of this service holds it too
        self._fd, self.issue_id = fd, issue_id
        return None

    def live_count(self) -> int:
        """Services serving this registration's license on the host, this one included."""
        if self.issue_id is None:
            return 1
        return len(live_services(self.folder, self.issue_id) | {self.service})

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)
        self._fd, self.issue_id = None, None

    @contextlib.contextmanager
    def _registry_lock(self) -> Iterator[None]:
        """Serialises joins, so two servers starting at once cannot both take the last place."""
        fd = _open(self.folder / ".lock")
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            yield
        finally:
            os.close(fd)
