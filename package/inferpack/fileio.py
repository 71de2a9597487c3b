"""Crash-safe file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import errno
import hashlib
import os
import tempfile
from pathlib import Path


def _write_temp(directory: Path, name: str, data: bytes, mode: int) -> Path:
    # The temp file lives in the target's folder so the final rename/link never crosses filesystems.
    if not directory.is_dir():  # say so for the folder, not for a temp file name nobody chose
        raise FileNotFoundError(errno.ENOENT, "no such folder (create it first)", str(directory))
    fd, tmp = tempfile.mkstemp(dir=directory, prefix=f".{name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)  # exact mode, whatever the umask
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return Path(tmp)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)  # makes the rename itself survive a power cut
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace (or create) ``path`` with ``data`` in one rename."""
    tmp = _write_temp(path.parent, path.name, data, mode)
    try:
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(path.parent)


def write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``data``; ``FileExistsError`` when it exists, which is left untouched.

    A hard link, unlike a rename, refuses an existing target, so the check and the creation are
    one atomic step and no partly written file is ever visible under ``path``.
    """
    tmp = _write_temp(path.parent, path.name, data, mode)
    try:
        os.link(tmp, path)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None  # name the target
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(path.parent)


def sha256_file(path: Path) -> str:
    """The SHA-256 hex digest of a file's contents, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
