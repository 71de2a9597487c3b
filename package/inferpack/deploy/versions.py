"""Model versions side by side under ``versions/``, and the ``current`` pointer between them.

A version is copied in under a temporary name and renamed into place, so ``versions/<V>`` is
either complete or absent; switching ``current`` is one symlink rename. Neither ever writes
over files a running server has open.
"""

from __future__ import annotations

import filecmp
import os
import re
import shutil
import tempfile
from pathlib import Path

from inferpack.bundle import read_bundle
from inferpack.deploy.layout import ServiceLayout


class VersionConflict(RuntimeError):
    """A version of that name is installed with different content."""


def slot_for(version: str) -> str:
    """A name for the backend serving ``version``, usable in container names."""
    return "v" + re.sub(r"[^A-Za-z0-9_.-]", "-", version)


def installed_versions(layout: ServiceLayout) -> list[str]:
    if not layout.versions.is_dir():
        return []
    return sorted(p.name for p in layout.versions.iterdir() if p.is_dir() and not p.name.startswith("."))


def current_version(layout: ServiceLayout) -> str | None:
    try:
        return Path(os.readlink(layout.current)).name
    except OSError:
        return None


def _same_tree(a: Path, b: Path) -> bool:
    comparison = filecmp.dircmp(a, b)
    if comparison.left_only or comparison.right_only or comparison.funny_files:
        return False
    _, mismatch, errors = filecmp.cmpfiles(a, b, comparison.common_files, shallow=False)
    return not mismatch and not errors and all(_same_tree(a / d, b / d) for d in comparison.common_dirs)


def install_version(layout: ServiceLayout, version: str, model_dir: Path) -> Path:
    """Copies the bundle in as ``versions/<version>``; idempotent for identical content."""
    read_bundle(model_dir)  # refuse a broken bundle before it is installed
    target = layout.versions / version
    if target.is_dir():
        if _same_tree(model_dir, target):
            return target
        raise VersionConflict(
            f"version {version} is already installed with different content; "
            "give the new model its own version number"
        )
    layout.versions.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{version}.", dir=layout.versions))
    try:
        shutil.copytree(model_dir, staging, dirs_exist_ok=True)
        for path in (staging, *staging.rglob("*")):
            path.chmod(0o755 if path.is_dir() else 0o644)  # readable by the container's user
        staging.rename(target)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return target


def remove_version(layout: ServiceLayout, version: str) -> None:
    if version == current_version(layout):
        raise VersionConflict(f"version {version} is the current one")
    shutil.rmtree(layout.versions / version, ignore_errors=True)


def switch_current(layout: ServiceLayout, version: str) -> None:
    """Points ``current`` at ``versions/<version>`` in one rename."""
    if not (layout.versions / version).is_dir():
        raise VersionConflict(f"version {version} is not installed")
    temporary = layout.home / ".current.tmp"
    temporary.unlink(missing_ok=True)
    temporary.symlink_to(Path("versions") / version)
    os.replace(temporary, layout.current)
