"""Crash-safe file writes: a reader sees the old file or the new one, never half of either."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO


@contextlib.contextmanager
def open_atomic(path: Path, mode: int = 0o644, *, overwrite: bool = True) -> Iterator[BinaryIO]:
    """A file to write (or stream, e.g. a tarball) into; it appears at ``path`` whole, in one
    step, when the block ends, and nothing appears if the block fails. ``overwrite=False``:
    FileExistsError when ``path`` exists, which is left untouched (a hard link, unlike a rename,
    refuses an existing target, so the check and the creation are one atomic step)."""
    directory = path.parent
    if not directory.is_dir():  # say so for the folder, not for a temp file name nobody chose
        raise FileNotFoundError(errno.ENOENT, "no such folder (create it first)", str(directory))
    # The temp file lives in the target's folder so the final rename/link never crosses filesystems.
    fd, name = tempfile.mkstemp(dir=directory, prefix=f".{path.name}.", suffix=".tmp")
    tmp = Path(name)
    try:
        with os.fdopen(fd, "wb") as out:
            os.fchmod(out.fileno(), mode)  # exact mode, whatever the umask
            yield out
            out.flush()
            os.fsync(out.fileno())
        if overwrite:
            os.replace(tmp, path)
        else:
            try:
                os.link(tmp, path)
            except FileExistsError:
                raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(path)) from None
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(directory)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)  # makes the rename itself survive a power cut
    finally:
        os.close(fd)


def write_atomic(path: Path, data: bytes, mode: int = 0o644) -> None:
    """Replace (or create) ``path`` with ``data`` in one rename."""
    with open_atomic(path, mode) as out:
        out.write(data)


def write_new(path: Path, data: bytes, mode: int) -> None:
    """Create ``path`` with ``data``; ``FileExistsError`` when it exists, which is left untouched."""
    with open_atomic(path, mode, overwrite=False) as out:
        out.write(data)


def sha256_file(path: Path) -> str:
    """The SHA-256 hex digest of a file's contents, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
    return digest.hexdigest()
