"""install.py checks wheels/ against manifest.json before pip (or anything else) runs."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.packages import flip_byte


def bootstrap(root: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "INFERPACK_VENV": str(root.parent / "venv")}
    return subprocess.run(
        [sys.executable, str(root / "install.py"), "--version"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def assert_refused(root: Path, message: str) -> None:
    result = bootstrap(root)
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1].startswith(f"install.py: {message}")
    assert not (root.parent / "venv").exists()  # refused before the venv, so before pip


def test_a_tampered_wheel_is_refused(unpacked: Path) -> None:
    flip_byte(unpacked / "wheels" / "inferpack-0.1.0-py3-none-any.whl")
    assert_refused(
        unpacked, "wheels/inferpack-0.1.0-py3-none-any.whl does not match its SHA-256 in manifest.json"
    )


@pytest.mark.parametrize("added", ["inferpack-9.9.tar.gz", "evil-1.0-py3-none-any.whl"])
def test_an_added_wheel_or_sdist_is_refused(unpacked: Path, added: str) -> None:
    (unpacked / "wheels" / added).write_bytes(b"from setuptools import setup")
    assert_refused(unpacked, f"wheels/{added} is not listed in manifest.json")


def test_a_missing_wheel_is_refused(unpacked: Path) -> None:
    (unpacked / "wheels" / "pip-1.0-py3-none-any.whl").unlink()
    assert_refused(unpacked, "wheels/pip-1.0-py3-none-any.whl, listed in manifest.json, is missing")


def test_an_unreadable_manifest_is_refused(unpacked: Path) -> None:
    (unpacked / "manifest.json").write_text("[]")
    assert_refused(unpacked, f"{unpacked / 'manifest.json'} is unreadable")


def test_wheels_for_another_python_are_refused_plainly(unpacked: Path) -> None:
    other = "cp39" if sys.version_info[:2] != (3, 9) else "cp312"
    (unpacked / "wheels" / f"numpy-2.0-{other}-{other}-manylinux_2_17_x86_64.whl").write_bytes(b"x")
    result = bootstrap(unpacked)
    assert result.returncode == 1
    assert f"wheels are for CPython {other[2]}.{other[3:]}" in result.stderr
    assert not (unpacked.parent / "venv").exists()
