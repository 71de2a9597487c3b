"""Unpacking archives safely: deploy packages (``install.py update NAME PACKAGE.tar.gz``) and
uploaded datasets (a .tar.gz or .zip body).

Nothing is written until the whole member list has been read and found sane: relative POSIX
names only (no absolute path, ``..``, backslash or control character), no duplicate, regular
files and folders only (no symlink, hard link, device, fifo or sparse member), a bounded member
count and total size that also fits the free disk space. Then the members are written by this
code (not ``TarFile.extract``/``ZipFile.extract``) into a fresh ``mkdtemp`` folder, each file
created with ``O_EXCL | O_NOFOLLOW`` and mode 0644 or 0755 whatever the archive says (no setuid,
no owner from the archive). A package is then verified (``verify_package``: the signature and
every hash); on any failure the fresh folder is removed and PackageError raised.
"""

from __future__ import annotations

import contextlib
import gzip
import os
import shutil
import stat
import tarfile
import tempfile
import zipfile
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, NamedTuple, TypeVar

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
_ZIP_KINDS = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFIFO: "a fifo",
    stat.S_IFSOCK: "a socket",
}
_CHUNK = 1 << 20
T = TypeVar("T")


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = MAX_MEMBERS
    max_total_bytes: int = MAX_TOTAL_BYTES
    what: str = "package"  # how messages name the archive


@dataclass(frozen=True)
class _Member:
    name: str  # without a folder's trailing "/"
    kind: str | None  # "file", "folder", or None: refused (``refusal`` says what it is)
    refusal: str
    size: int
    executable: bool
    open: Callable[[], IO[bytes] | None]


class ExtractedPackage(NamedTuple):
    root: Path  # the fresh folder holding the verified package
    manifest: Manifest  # model dir: manifest.model_dir(root); image: manifest.image.tag / .id


def extract_package(tarball: Path, dest_parent: Path, *, pinned_key: Path | None) -> ExtractedPackage:
    """Extracts and verifies ``tarball`` into a new folder under ``dest_parent``.

    ``pinned_key``: the vendor key installed with the service (ServiceLayout.vendor_key); the
    package must be signed by it. The caller owns the returned folder (renames it into place, or
    removes it). On PackageError nothing is left under ``dest_parent``.
    """
    return unpack_archive(
        tarball, dest_parent, ArchiveLimits(), verify=lambda fresh: _verified(fresh, pinned_key)
    )


def _verified(fresh: Path, pinned_key: Path | None) -> ExtractedPackage:
    return ExtractedPackage(fresh, verify_package(fresh, pinned_key=pinned_key))


def unpack_archive(
    archive: Path, dest_parent: Path, limits: ArchiveLimits, *, verify: Callable[[Path], T]
) -> T:
    """Unpacks a .tar.gz or .zip into a fresh folder under ``dest_parent``, then returns
    ``verify(folder)``; on PackageError (from the checks or ``verify``) nothing is left."""
    if not dest_parent.is_dir():
        raise PackageError(f"{dest_parent} is not a folder")
    if not archive.is_file():
        raise PackageError(f"{archive} is not a file")
    try:
        with _members_of(archive) as members_iter:
            members = _checked_members(members_iter, dest_parent, limits)
            fresh = Path(tempfile.mkdtemp(prefix=f".inferpack-{limits.what}-", dir=dest_parent))
            try:
                _write(members, fresh)
                result = verify(fresh)
            except BaseException:
                shutil.rmtree(fresh, ignore_errors=True)
                raise
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, zlib.error, gzip.BadGzipFile) as exc:
        raise PackageError(f"{archive} is not a readable .tar.gz or .zip: {exc}") from None
    fresh.chmod(0o755)  # mkdtemp's 0700 kept the half-written folder private until now
    return result


@contextlib.contextmanager
def _members_of(archive: Path) -> Iterator[Iterator[_Member]]:
    """The archive's members, in order, read lazily (a tar's headers one by one)."""
    if zipfile.is_zipfile(archive):
        with zipfile.ZipFile(archive) as zipped:
            yield (_zip_member(zipped, info) for info in zipped.infolist())
        return
    with tarfile.open(archive, "r:gz") as tar:
        yield (_tar_member(tar, info) for info in tar)


def _relative(name: str) -> str:
    """``tar -C DIR .`` writes ``./a/b``: the same relative name as ``a/b`` (and ``.`` is the root)."""
    while name.startswith("./"):
        name = name[2:]
    return name


def _tar_member(tar: tarfile.TarFile, info: tarfile.TarInfo) -> _Member:
    kind = _ALLOWED.get(info.type)
    refusal = _KINDS.get(info.type, f"of tar type {info.type!r}")
    name = _relative(info.name.removesuffix("/") if info.isdir() else info.name)
    return _Member(name, kind, refusal, info.size, bool(info.mode & 0o100), lambda: tar.extractfile(info))


def _zip_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> _Member:
    mode = info.external_attr >> 16
    file_type = stat.S_IFMT(mode)
    refusal = _ZIP_KINDS.get(file_type, f"of zip file type {file_type:o}")
    if info.is_dir():
        kind: str | None = "folder"
    elif file_type in (0, stat.S_IFREG):  # 0: written without Unix attributes
        kind = "file"
    else:
        kind = None
    name = _relative(info.filename.removesuffix("/") if info.is_dir() else info.filename)
    return _Member(name, kind, refusal, info.file_size, bool(mode & 0o100), lambda: archive.open(info))


def _checked_members(
    members_iter: Iterator[_Member], dest_parent: Path, limits: ArchiveLimits
) -> list[_Member]:
    """All members, refusing the archive at the first bad one, and before reading past the
    header of an oversized one (a tar's data is skipped only when the next header is read)."""
    what = limits.what
    members: list[_Member] = []
    kinds: dict[str, str] = {}  # name -> "file" | "folder"
    total = 0
    for member in members_iter:
        if len(members) >= limits.max_members:
            raise PackageError(
                f"the {what} has more than {limits.max_members} members: refusing it (tar bomb?)"
            )
        name = member.name
        if name in (".", "") and member.kind == "folder":
            continue  # the archive's root folder itself
        if problem := unsafe_path_reason(name):
            raise PackageError(f"member {name!r} {problem}: refusing the {what}")
        if member.kind is None:
            raise PackageError(
                f"member {name} is {member.refusal}: a {what} holds regular files and folders only"
            )
        if name in kinds:
            raise PackageError(f"member {name} appears twice: refusing the {what}")
        kinds[name] = member.kind
        total += member.size
        if total > limits.max_total_bytes:
            raise PackageError(
                f"the {what} unpacks to more than {_size(limits.max_total_bytes)}: refusing it"
            )
        members.append(member)
    folders = {ancestor for name in kinds for ancestor in _ancestors(name)}
    clash = sorted(name for name in folders if kinds.get(name) == "file")
    if clash:
        raise PackageError(f"member {clash[0]} is a file, and other members are inside it")
    free = shutil.disk_usage(dest_parent).free
    if total > free:
        raise PackageError(
            f"the {what} unpacks to {total / 2**20:.1f} MiB, {dest_parent} has {free / 2**20:.1f} MiB free"
        )
    return members


def _size(limit: int) -> str:
    return f"{limit >> 30} GiB" if limit >= 1 << 30 else f"{limit / 2**20:.1f} MiB"


def _ancestors(name: str) -> list[str]:
    parts = name.split("/")
    return ["/".join(parts[:i]) for i in range(1, len(parts))]


def _write(members: list[_Member], fresh: Path) -> None:
    for member in members:
        if member.kind == "folder":
            _make_folders(fresh, member.name)
            continue
        folder, _, _ = member.name.rpartition("/")
        _make_folders(fresh, folder)
        mode = 0o755 if member.executable else 0o644
        flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
        with os.fdopen(os.open(fresh / member.name, flags, mode), "wb") as out:
            os.fchmod(out.fileno(), mode)  # exactly this, whatever the umask
            source = member.open()
            assert source is not None  # regular members always have data
            copied = 0
            with source:
                while chunk := source.read(_CHUNK):
                    copied += len(chunk)
                    if copied > member.size:
                        break
                    out.write(chunk)
            if copied != member.size:
                raise PackageError(f"member {member.name} does not hold the {member.size} bytes it declares")


def _make_folders(fresh: Path, relative: str) -> None:
    """Creates ``relative`` and its parents below ``fresh``, each mode 0755 whatever the umask."""
    for name in [*_ancestors(relative), relative] if relative else []:
        folder = fresh / name
        if not folder.is_dir():
            folder.mkdir()
            folder.chmod(0o755)
