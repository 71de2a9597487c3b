"""Unpacking a deploy package tarball safely (``install.py update NAME PACKAGE.tar.gz``).

Nothing is written until the whole member list has been read and found sane: relative POSIX
names only (no absolute path, ``..``, backslash or control character), no duplicate, regular
files and folders only (no symlink, hard link, device, fifo or sparse member), a bounded member
count and total size that also fits the free disk space. Then the members are written by this
code (not ``TarFile.extract``) into a fresh ``mkdtemp`` folder, each file created with
``O_EXCL | O_NOFOLLOW`` and mode 0644 or 0755 whatever the archive says (no setuid, no owner
from the archive). Finally ``verify_package`` checks the signature and every hash; on any
failure the fresh folder is removed and PackageError raised.
"""

from __future__ import annotations

import gzip
import os
import shutil
import tarfile
import tempfile
import zlib
from pathlib import Path
from typing import NamedTuple

from inferpack.deploy.manifest import Manifest, PackageError, unsafe_path_reason
from inferpack.deploy.verify import verify_package

MAX_MEMBERS = 10_000  # a package has a few dozen files; this only stops a header bomb
MAX_TOTAL_BYTES = 64 << 30  # GPU images are large, but not this large
_ALLOWED = {tarfile.REGTYPE: "file", tarfile.AREGTYPE: "file", tarfile.DIRTYPE: "folder"}
_KINDS = {
    tarfile.SYMTYPE: "a symbolic link",
    tarfile.LNKTYPE: "a hard link",
    tarfile.CHRTYPE: "a character device",
    tarfile.BLKTYPE: "a block device",
    tarfile.FIFOTYPE: "a fifo",
    tarfile.CONTTYPE: "a contiguous file",
    tarfile.GNUTYPE_SPARSE: "a sparse file",
}
_CHUNK = 1 << 20


class ExtractedPackage(NamedTuple):
    root: Path  # the fresh folder holding the verified package
    manifest: Manifest  # model dir: manifest.model_dir(root); image: manifest.image.tag / .id


def extract_package(tarball: Path, dest_parent: Path, *, pinned_key: Path | None) -> ExtractedPackage:
    """Extracts and verifies ``tarball`` into a new folder under ``dest_parent``.

    ``pinned_key``: the vendor key installed with the service (ServiceLayout.vendor_key); the
    package must be signed by it. The caller owns the returned folder (renames it into place, or
    removes it). On PackageError nothing is left under ``dest_parent``.
    """
    if not dest_parent.is_dir():
        raise PackageError(f"{dest_parent} is not a folder")
    if not tarball.is_file():
        raise PackageError(f"{tarball} is not a file")
    try:
        with tarfile.open(tarball, "r:gz") as tar:
            members = _checked_members(tar, dest_parent)
            fresh = Path(tempfile.mkdtemp(prefix=".inferpack-package-", dir=dest_parent))
            try:
                _write(tar, members, fresh)
                manifest = verify_package(fresh, pinned_key=pinned_key)
            except BaseException:
                shutil.rmtree(fresh, ignore_errors=True)
                raise
    except (tarfile.TarError, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise PackageError(f"{tarball} is not a readable .tar.gz: {exc}") from None
    fresh.chmod(0o755)  # mkdtemp's 0700 kept the half-written folder private until now
    return ExtractedPackage(fresh, manifest)


def _checked_members(tar: tarfile.TarFile, dest_parent: Path) -> list[tarfile.TarInfo]:
    """All members, refusing the archive at the first bad one, and before reading past the
    header of an oversized one (the data is skipped only when the next header is read)."""
    members: list[tarfile.TarInfo] = []
    kinds: dict[str, str] = {}  # name -> "file" | "folder"
    total = 0
    for member in tar:
        if len(members) >= MAX_MEMBERS:
            raise PackageError(f"the package has more than {MAX_MEMBERS} members: refusing it (tar bomb?)")
        name = member.name.removesuffix("/") if member.isdir() else member.name
        if problem := unsafe_path_reason(name):
            raise PackageError(f"member {name!r} {problem}: refusing the package")
        kind = _ALLOWED.get(member.type)
        if kind is None:
            what = _KINDS.get(member.type, f"of tar type {member.type!r}")
            raise PackageError(f"member {name} is {what}: a package holds regular files and folders only")
        if name in kinds:
            raise PackageError(f"member {name} appears twice: refusing the package")
        kinds[name] = kind
        total += member.size
        if total > MAX_TOTAL_BYTES:
            raise PackageError(f"the package unpacks to more than {MAX_TOTAL_BYTES >> 30} GiB: refusing it")
        members.append(member)
    folders = {ancestor for name in kinds for ancestor in _ancestors(name)}
    clash = sorted(name for name in folders if kinds.get(name) == "file")
    if clash:
        raise PackageError(f"member {clash[0]} is a file, and other members are inside it")
    free = shutil.disk_usage(dest_parent).free
    if total > free:
        raise PackageError(
            f"the package unpacks to {total / 2**20:.1f} MiB, {dest_parent} has {free / 2**20:.1f} MiB free"
        )
    return members


def _ancestors(name: str) -> list[str]:
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _write(tar: tarfile.TarFile, members: list[tarfile.TarInfo], fresh: Path) -> None:
    for member in members:
        if member.isdir():
            _make_folders(fresh, member.name.removesuffix("/"))
            continue
        folder, _, _ = member.name.rpartition("/")
        _make_folders(fresh, folder)
        mode = 0o755 if member.mode & 0o100 else 0o644
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(fresh / member.name, flags, mode), "wb") as out:
            os.fchmod(out.fileno(), mode)  # exactly this, whatever the umask
            source = tar.extractfile(member)
            assert source is not None  # regular members always have data
            copied = 0
            while chunk := source.read(_CHUNK):
                out.write(chunk)
                copied += len(chunk)
            if copied != member.size:
                raise PackageError(f"member {member.name} is truncated")


def _make_folders(fresh: Path, relative: str) -> None:
    """Creates ``relative`` and its parents below ``fresh``, each mode 0755 whatever the umask."""
    for name in [*_ancestors(relative), relative] if relative else []:
        folder = fresh / name
        if not folder.is_dir():
            folder.mkdir()
            folder.chmod(0o755)
