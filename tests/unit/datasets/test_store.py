"""The dataset store: archives and folders arrive whole or not at all; hostile ones change nothing."""

from __future__ import annotations

import io
import os
import stat
import tarfile
import zipfile
from pathlib import Path

import pytest
from tests.conftest import encode, solid
from tests.unit.datasets.test_validate import CLASSES, GOOD

from inferpack.datasets.store import DatasetLimits, DatasetStore
from inferpack.datasets.writers import write_yolo
from inferpack.errors import Conflict, InvalidArgument, NotFound, PayloadTooLarge


def yolo_folder(root: Path, count: int = 3) -> Path:
    write_yolo(root, CLASSES, [(f"i{n}.jpg", encode(solid((n, 0, 0))), GOOD) for n in range(count)])
    return root


def zipped(folder: Path, archive: Path, prefix: str = "") -> Path:
    with zipfile.ZipFile(archive, "w") as out:
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                out.write(path, prefix + path.relative_to(folder).as_posix())
    return archive


def tarred(members: list[tuple[tarfile.TarInfo, bytes | None]], archive: Path) -> Path:
    with tarfile.open(archive, "w:gz") as out:
        for info, data in members:
            if data is not None:
                info.size = len(data)
            out.addfile(info, io.BytesIO(data) if data is not None else None)
    return archive


def member(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.linkname = kind, linkname
    return info


@pytest.fixture
def store(tmp_path: Path) -> DatasetStore:
    return DatasetStore(tmp_path / "data")


def test_zip_with_a_top_folder_is_unwrapped_and_listed(store: DatasetStore, tmp_path: Path) -> None:
    archive = zipped(yolo_folder(tmp_path / "src"), tmp_path / "ds.zip", prefix="my-dataset/")
    info = store.import_archive(archive, "cars")
    assert (info.format, info.task, info.classes, info.images) == ("yolo", "detection", CLASSES, 3)
    assert [d.id for d in store.all()] == ["cars"]
    assert store.open("cars").items[0].path == "data/i0.jpg"
    with pytest.raises(Conflict):
        store.import_archive(archive, "cars")
    store.delete("cars")
    assert store.all() == [] and sorted(os.listdir(store.folder)) == []
    with pytest.raises(NotFound):
        store.info("cars")


def test_folder_import_copies_regular_files_and_refuses_links(store: DatasetStore, tmp_path: Path) -> None:
    source = yolo_folder(tmp_path / "src")
    info = store.import_folder(source, "copy")
    assert info.images == 3 and info.bytes > 0
    (source / "data" / "evil.jpg").symlink_to("/etc/passwd")
    with pytest.raises(InvalidArgument, match="is a symbolic link"):
        store.import_folder(source, "linked")
    assert [d.id for d in store.all()] == ["copy"]


HOSTILE = {
    "traversal": ([(member("../evil.jpg"), b"x")], "has a '..' path component"),
    "absolute": ([(member("/tmp/evil.jpg"), b"x")], "is an absolute path"),
    "symlink": ([(member("data/a.jpg", tarfile.SYMTYPE, "/etc/passwd"), None)], "is a symbolic link"),
    "hard link": ([(member("data/a.jpg", tarfile.LNKTYPE, "property.json"), None)], "is a hard link"),
    "device": ([(member("data/null", tarfile.CHRTYPE), None)], "is a character device"),
}


@pytest.mark.parametrize("case", list(HOSTILE))
def test_hostile_tarballs_change_nothing(case: str, store: DatasetStore, tmp_path: Path) -> None:
    extra, reason = HOSTILE[case]
    archive = tarred([(member("property.json"), b"{}"), *extra], tmp_path / "evil.tar.gz")
    with pytest.raises(InvalidArgument, match=reason):
        store.import_archive(archive, "evil")
    assert os.listdir(store.folder) == []


def test_zip_symlink_and_junk_are_refused(store: DatasetStore, tmp_path: Path) -> None:
    archive = tmp_path / "link.zip"
    with zipfile.ZipFile(archive, "w") as out:
        link = zipfile.ZipInfo("data/a.jpg")
        link.external_attr = (stat.S_IFLNK | 0o777) << 16
        out.writestr(link, "/etc/passwd")
    with pytest.raises(InvalidArgument, match="is a symbolic link"):
        store.import_archive(archive, "link")
    junk = tmp_path / "junk.zip"
    junk.write_bytes(b"PK\x03\x04 not a zip at all")
    with pytest.raises(InvalidArgument, match=r"is not a readable \.tar\.gz or \.zip"):
        store.import_archive(junk, "junk")
    assert os.listdir(store.folder) == []


def test_size_limits(tmp_path: Path) -> None:
    small = DatasetStore(tmp_path / "data", DatasetLimits(max_bytes=2000, max_images=2))
    source = yolo_folder(tmp_path / "src")
    with pytest.raises(PayloadTooLarge):
        small.import_folder(source, "big")
    with pytest.raises(InvalidArgument, match="unpacks to more than"):
        small.import_archive(zipped(source, tmp_path / "big.zip"), "big")
    assert small.all() == []


def test_ids_are_checked(store: DatasetStore) -> None:
    for bad in ("../x", "", ".hidden", "a/b", "x" * 65):
        with pytest.raises(InvalidArgument, match="dataset id must be"):
            store.info(bad)
