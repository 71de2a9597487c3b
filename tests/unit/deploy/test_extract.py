"""extract_package: hostile tarballs are refused before anything is written; good ones verify."""

from __future__ import annotations

import os
import shutil
import stat
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support.packages import Vendor, tarball_of

from inferpack.deploy import extract
from inferpack.deploy.extract import MAX_MEMBERS, extract_package
from inferpack.deploy.manifest import PackageError

Member = tuple[tarfile.TarInfo, bytes | None]


def members_of(package: Path) -> list[Member]:
    with tarfile.open(package, "r:gz") as tar:
        out: list[Member] = []
        for info in tar.getmembers():
            source = tar.extractfile(info) if info.isfile() else None
            out.append((info, source.read() if source else None))
        return out


def member(name: str, kind: bytes = tarfile.REGTYPE, **fields: object) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    for key, value in fields.items():
        setattr(info, key, value)
    return info


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    """The destination parent, with something already in it that must stay as it is."""
    folder = tmp_path / "incoming"
    folder.mkdir()
    (folder / "keep.txt").write_text("untouched")
    return folder


def snapshot(folder: Path) -> list[tuple[str, int, float]]:
    return sorted((p.name, p.stat().st_size, p.stat().st_mtime) for p in folder.iterdir())


def assert_refused(tarball: Path, dest: Path, reason: str, pinned_key: Path | None = None) -> None:
    before = snapshot(dest)
    with pytest.raises(PackageError, match=reason) as caught:
        extract_package(tarball, dest, pinned_key=pinned_key)
    assert "\n" not in caught.value.reason
    assert snapshot(dest) == before  # nothing written, not even an empty folder


def test_a_good_package_is_extracted_and_verified(package: Path, dest: Path, vendor: Vendor) -> None:
    root, manifest = extract_package(package, dest, pinned_key=vendor.public)
    assert root.parent == dest and root.name.startswith(".inferpack-package-")
    assert manifest.deploy_name == "cats" and manifest.model_dir(root).joinpath("model.onnx").is_file()
    assert stat.S_IMODE(root.stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "install.py").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "original" / "download.sh").stat().st_mode) == 0o755
    assert stat.S_IMODE((root / "model" / "model.onnx").stat().st_mode) == 0o644
    assert stat.S_IMODE((root / "model").stat().st_mode) == 0o755


EVIL: dict[str, tuple[list[Member], str]] = {
    "symlink": (
        [(member("model/evil", tarfile.SYMTYPE, linkname="/etc/passwd"), None)],
        "is a symbolic link",
    ),
    "dotdot": ([(member("../evil"), b"x")], r"member '\.\./evil' has a '\.\.' path component"),
    "nested dotdot": ([(member("model/../../evil"), b"x")], "has a '..' path component"),
    "absolute": ([(member("/tmp/evil"), b"x")], "is an absolute path"),
    "hard link": ([(member("model/evil", tarfile.LNKTYPE, linkname="install.py"), None)], "is a hard link"),
    "char device": (
        [(member("model/null", tarfile.CHRTYPE, devmajor=1, devminor=3), None)],
        "is a character device",
    ),
    "block device": ([(member("model/sda", tarfile.BLKTYPE, devmajor=8), None)], "is a block device"),
    "fifo": ([(member("model/pipe", tarfile.FIFOTYPE), None)], "is a fifo"),
    "backslash": ([(member("..\\evil"), b"x")], "contains a backslash"),
    "newline": ([(member("model/a\nb"), b"x")], "contains a control character"),
    "duplicate": ([(member("install.py"), b"print('evil')")], "member install.py appears twice"),
    "file used as folder": ([(member("install.py/x"), b"x")], "member install.py is a file, and other"),
}


@pytest.mark.parametrize("case", list(EVIL))
def test_hostile_members_are_refused_before_writing(
    case: str, package: Path, dest: Path, tmp_path: Path
) -> None:
    """Each hostile member comes LAST, after a whole valid package: still nothing is written."""
    extra, reason = EVIL[case]
    tarball = tarball_of([*members_of(package), *extra], tmp_path / "evil.tar.gz")
    assert_refused(tarball, dest, reason)


def test_too_many_members_is_refused(dest: Path, tmp_path: Path) -> None:
    path = tmp_path / "many.tar.gz"
    with tarfile.open(path, "w:gz", format=tarfile.USTAR_FORMAT) as tar:
        for i in range(MAX_MEMBERS + 1):
            tar.addfile(member(f"f/{i}"))
    assert_refused(path, dest, f"more than {MAX_MEMBERS} members")


def test_huge_declared_size_is_refused_without_reading_it(dest: Path, tmp_path: Path) -> None:
    """A header claiming 100 GiB (the data is not even there): refused at the header, at once."""
    path = tmp_path / "bomb.tar.gz"
    with tarfile.open(path, "w:gz") as tar:
        tar.addfile(member("big", size=100 << 30))  # header only
    started = time.monotonic()
    assert_refused(path, dest, "unpacks to more than 64 GiB")
    assert time.monotonic() - started < 2


def test_more_than_the_free_space_is_refused(
    package: Path, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    usage = shutil.disk_usage(dest)
    monkeypatch.setattr(extract.shutil, "disk_usage", lambda _: usage._replace(free=1000))
    assert_refused(package, dest, r"^the package unpacks to \d+\.\d MiB, .* has 0\.0 MiB free$")


def rewritten(
    package: Path, tmp_path: Path, edit: Callable[[tarfile.TarInfo, bytes | None], bytes | None]
) -> Path:
    members = [(info, edit(info, data)) for info, data in members_of(package)]
    return tarball_of(members, tmp_path / "rewritten.tar.gz")


def test_modes_and_owners_from_the_archive_are_not_kept(package: Path, dest: Path, tmp_path: Path) -> None:
    def setuid(info: tarfile.TarInfo, data: bytes | None) -> bytes | None:
        info.mode = 0o6777 if info.isfile() else 0o777
        info.uid = info.gid = 4242
        return data

    root, _ = extract_package(rewritten(package, tmp_path, setuid), dest, pinned_key=None)
    for path in root.rglob("*"):
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode in (0o644, 0o755), (path, oct(mode))
        assert path.stat().st_uid == os.getuid()


def test_changed_content_is_refused_and_cleaned_up(package: Path, dest: Path, tmp_path: Path) -> None:
    def flip(info: tarfile.TarInfo, data: bytes | None) -> bytes | None:
        if info.name == "model/model.onnx" and data:
            return data[:-1] + bytes([data[-1] ^ 1])
        return data

    assert_refused(rewritten(package, tmp_path, flip), dest, "^model/model.onnx does not match its SHA-256")


def test_another_vendors_package_is_refused_with_the_pinned_key(
    package: Path, dest: Path, other_vendor: Vendor
) -> None:
    assert_refused(package, dest, "^package signed by another vendor key", pinned_key=other_vendor.public)


def test_not_a_tarball(dest: Path, tmp_path: Path) -> None:
    junk = tmp_path / "junk.tar.gz"
    junk.write_bytes(b"\x1f\x8b not really gzip")
    assert_refused(junk, dest, "is not a readable .tar.gz")
    assert_refused(tmp_path / "missing.tar.gz", dest, "is not a file")
