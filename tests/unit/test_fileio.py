"""The one crash-safe writer: whole or nothing, for bytes and for streams (tarballs)."""

from __future__ import annotations

import tarfile
from pathlib import Path

import pytest

from inferpack.fileio import open_atomic, write_atomic, write_new


def test_a_stream_that_fails_half_way_leaves_the_old_file_and_no_temp(tmp_path: Path) -> None:
    target = tmp_path / "bundle.tar.gz"
    write_atomic(target, b"old")
    with pytest.raises(RuntimeError, match="disk gone"), open_atomic(target) as stream:
        stream.write(b"half a tarball")
        raise RuntimeError("disk gone")
    assert target.read_bytes() == b"old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bundle.tar.gz"]


def test_a_streamed_tarball_appears_whole_with_its_mode(tmp_path: Path) -> None:
    target = tmp_path / "out.tar.gz"
    (tmp_path / "member.txt").write_text("hello")
    with open_atomic(target, 0o640) as stream, tarfile.open(fileobj=stream, mode="w:gz") as tar:
        tar.add(tmp_path / "member.txt", arcname="member.txt")
    with tarfile.open(target) as tar:
        assert tar.getnames() == ["member.txt"]
    assert target.stat().st_mode & 0o777 == 0o640


def test_write_new_refuses_an_existing_file_and_a_missing_folder_is_named(tmp_path: Path) -> None:
    target = tmp_path / "x.lic"
    write_new(target, b"first", 0o644)
    with pytest.raises(FileExistsError) as exists:
        write_new(target, b"second", 0o644)
    assert exists.value.filename == str(target) and target.read_bytes() == b"first"
    with pytest.raises(FileNotFoundError) as missing:
        write_atomic(tmp_path / "no" / "x", b"")
    assert missing.value.filename == str(tmp_path / "no")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.lic"]
