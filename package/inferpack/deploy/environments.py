"""The Python environments install.py makes in ``<work root>/.inferpack/venv-<key>``: one per
distinct set of wheels (keyed by their content), shared by every package that has that set.

An environment is in use while an installed service runs with it (its ``start/start-1.sh``
names the Python), or while it runs this very command. ``gc`` (and ``remove --purge``) delete
the others: each is hundreds of MB.
"""

from __future__ import annotations

import re
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from inferpack.deploy.inventory import installed_services

ENVIRONMENTS = ".inferpack"
# start-1.sh: exec "<env>/bin/python" -m inferpack start NAME ...
_START_PYTHON = re.compile(r'^exec "([^"]+)" -m inferpack ', re.MULTILINE)


def environments(root: Path) -> list[Path]:
    folder = root / ENVIRONMENTS
    return sorted(p for p in folder.glob("venv-*") if p.is_dir()) if folder.is_dir() else []


def in_use(root: Path) -> set[Path]:
    used = {Path(sys.prefix).resolve()}
    for layout in installed_services(root):
        try:
            script = layout.start_script.read_text(encoding="utf-8")
        except OSError:
            continue
        used |= {Path(python).parent.parent.resolve() for python in _START_PYTHON.findall(script)}
    return used


def remove_unused(root: Path, out: Callable[[str], None] = print) -> list[Path]:
    """Deletes the environments no installed service uses; returns them."""
    used = in_use(root)
    removed = [env for env in environments(root) if env.resolve() not in used]
    for env in removed:
        size = sum(p.stat().st_size for p in env.rglob("*") if p.is_file() and not p.is_symlink())
        shutil.rmtree(env)
        out(f"removed the unused Python environment {env} ({size / 2**20:.0f} MiB)")
    return removed
