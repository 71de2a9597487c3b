"""Datasets kept in a service's data folder, so they survive restarts, ``update`` and ``rollback``.

<data>/datasets/<ID>/dataset.json   what it is (format, classes, image count, bytes, when added)
<data>/datasets/<ID>/content/       the files, as imported (a single top folder unwrapped)

A dataset arrives whole or not at all: it is assembled in a hidden folder beside the others
and renamed into place once read; deleting renames it away first. Size limits (bytes unpacked,
images) are checked before anything is written where they can be (an archive's headers, a
folder's listing), and again once read.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from inferpack.datasets.items import Dataset, Format
from inferpack.datasets.readers import files_under, read_dataset
from inferpack.deploy.extract import ArchiveLimits, unpack_archive
from inferpack.deploy.manifest import PackageError
from inferpack.errors import Conflict, InvalidArgument, NotFound, PayloadTooLarge
from inferpack.fileio import write_atomic

ID_RULE = "1-64 letters, digits, '_', '.' or '-', starting with a letter or digit"
_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
META_FILE = "dataset.json"
CONTENT = "content"


def check_id(value: Any, what: str = "dataset id") -> str:
    if not isinstance(value, str) or not _ID.fullmatch(value) or ".." in value:
        raise InvalidArgument(f"{what} must be {ID_RULE}, got {value!r}")
    return value


@dataclass(frozen=True)
class DatasetLimits:
    max_bytes: int = 2 << 30  # unpacked; an upload's body is held to the same
    max_images: int = 100_000


@dataclass(frozen=True)
class DatasetInfo:
    id: str
    format: Format
    task: str | None
    classes: tuple[str, ...]
    images: int
    bytes: int
    created: float

    def to_json(self) -> dict[str, Any]:
        return {**asdict(self), "classes": list(self.classes)}


class DatasetStore:
    def __init__(self, data_dir: Path, limits: DatasetLimits = DatasetLimits()) -> None:
        self.folder = data_dir / "datasets"
        self.limits = limits

    def _home(self, dataset_id: str) -> Path:
        return self.folder / check_id(dataset_id)

    def _staging(self) -> Path:
        self.folder.mkdir(parents=True, exist_ok=True)
        return Path(tempfile.mkdtemp(prefix=".incoming-", dir=self.folder))

    def all(self) -> list[DatasetInfo]:
        if not self.folder.is_dir():
            return []
        return [self.info(p.name) for p in sorted(self.folder.iterdir()) if (p / META_FILE).is_file()]

    def info(self, dataset_id: str) -> DatasetInfo:
        meta = self._home(dataset_id) / META_FILE
        if not meta.is_file():
            raise NotFound(f"no dataset {dataset_id!r} on this service")
        raw = json.loads(meta.read_text(encoding="utf-8"))
        return DatasetInfo(**{**raw, "classes": tuple(raw["classes"])})

    def open(self, dataset_id: str) -> Dataset:
        info = self.info(dataset_id)
        return read_dataset(self._home(dataset_id) / CONTENT, info.format)

    def delete(self, dataset_id: str) -> None:
        home = self._home(dataset_id)
        self.info(dataset_id)
        gone = self.folder / f".deleting-{dataset_id}-{os.getpid()}-{time.monotonic_ns()}"
        home.rename(gone)  # disappears at once; the files go after
        shutil.rmtree(gone, ignore_errors=True)

    def import_folder(self, source: Path, dataset_id: str) -> DatasetInfo:
        """Copies a folder's regular files (links are refused: a dataset is what is inside it)."""
        self._check_free(dataset_id)
        if not source.is_dir():
            raise InvalidArgument(f"{source} is not a folder")
        links = [p for p in source.rglob("*") if p.is_symlink()]
        if links:
            raise InvalidArgument(f"{links[0]} is a symbolic link: copy the real files into the dataset")
        files = files_under(source)
        total = sum((source / f).stat().st_size for f in files)
        self._check_size(total, len(files))
        staging = self._staging()
        try:
            content = staging / CONTENT
            for file in files:
                (content / file).parent.mkdir(parents=True, exist_ok=True)
                shutil.copyfile(source / file, content / file, follow_symlinks=False)
            return self._finish(staging, dataset_id)
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def import_archive(self, archive: Path, dataset_id: str) -> DatasetInfo:
        """Unpacks a .zip or .tar.gz with the deploy package's member checks."""
        self._check_free(dataset_id)
        staging = self._staging()
        limits = ArchiveLimits(
            max_members=self.limits.max_images * 3 + 1000,  # images, labels, folders
            max_total_bytes=self.limits.max_bytes,
            what="dataset",
        )
        try:
            unpacked = unpack_archive(archive, staging, limits, verify=lambda fresh: fresh)
            unpacked.rename(staging / CONTENT)
            return self._finish(staging, dataset_id)
        except PackageError as exc:
            raise InvalidArgument(exc.reason) from None
        finally:
            shutil.rmtree(staging, ignore_errors=True)

    def _check_free(self, dataset_id: str) -> None:
        if self._home(dataset_id).exists():
            raise Conflict(f"dataset {dataset_id!r} exists: delete it first or choose another id")

    def _check_size(self, total: int, images: int) -> None:
        if total > self.limits.max_bytes:
            raise PayloadTooLarge(f"the dataset is {total} bytes; the limit is {self.limits.max_bytes}")
        if images > self.limits.max_images:
            raise PayloadTooLarge(
                f"the dataset has {images} files; the limit is {self.limits.max_images} images"
            )

    def _finish(self, staging: Path, dataset_id: str) -> DatasetInfo:
        content = _unwrapped(staging / CONTENT)
        if content != staging / CONTENT:
            content.rename(staging / ".unwrapped")
            shutil.rmtree(staging / CONTENT)
            (staging / ".unwrapped").rename(staging / CONTENT)
        dataset = read_dataset(staging / CONTENT)
        total = sum(p.stat().st_size for p in (staging / CONTENT).rglob("*") if p.is_file())
        self._check_size(total, len(dataset.items))
        if not dataset.items:
            raise InvalidArgument("the dataset holds no images (.jpg, .jpeg, .png, .bmp)")
        info = DatasetInfo(
            id=dataset_id,
            format=dataset.format,
            task=dataset.task,
            classes=dataset.classes,
            images=len(dataset.items),
            bytes=total,
            created=round(time.time(), 3),
        )
        write_atomic(staging / META_FILE, json.dumps(info.to_json(), indent=2).encode())
        staging.chmod(0o755)
        try:
            staging.rename(self._home(dataset_id))  # fails if the id was taken meanwhile
        except OSError:
            raise Conflict(f"dataset {dataset_id!r} exists: delete it first or choose another id") from None
        return info


def _unwrapped(content: Path) -> Path:
    """An archive of one top folder (``zip -r ds.zip ds/``) holds the dataset inside it."""
    entries = [p for p in content.iterdir() if not p.name.startswith(".") and p.name != "__MACOSX"]
    if len(entries) == 1 and entries[0].is_dir() and entries[0].name not in ("data", "images"):
        return entries[0]
    return content
