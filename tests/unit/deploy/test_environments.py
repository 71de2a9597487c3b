"""install.py's Python environments: one per distinct set of wheels (by content), and `gc`."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
import zipfile
from pathlib import Path
from types import ModuleType

from inferpack.deploy.environments import environments, remove_unused
from inferpack.deploy.layout import ServiceLayout
from inferpack.deploy.settings import ServiceSettings, save_settings

INSTALL_PY = Path(__file__).resolve().parents[3] / "install.py"


def install_py() -> ModuleType:
    spec = importlib.util.spec_from_file_location("install_py", INSTALL_PY)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def wheel(path: Path, files: dict[str, bytes], year: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in files.items():
            archive.writestr(zipfile.ZipInfo(name, date_time=(year, 1, 2, 3, 4, 5)), data)
    return path


def test_the_same_wheels_built_at_another_time_share_one_environment(tmp_path: Path) -> None:
    digest = install_py()._digest
    files = {"demo/__init__.py": b"x = 1\n", "demo-1.0.dist-info/METADATA": b"Name: demo\n"}
    first = wheel(tmp_path / "a" / "demo-1.0-py3-none-any.whl", files, 2030)
    rebuilt = wheel(tmp_path / "b" / "demo-1.0-py3-none-any.whl", files, 2031)
    assert first.read_bytes() != rebuilt.read_bytes()  # zip times differ
    assert digest([first]) == digest([rebuilt])
    changed = wheel(
        tmp_path / "c" / "demo-1.0-py3-none-any.whl", {**files, "demo/__init__.py": b"x = 2\n"}, 2030
    )
    assert digest([changed]) != digest([first])


def test_install_py_runs_on_the_standard_library_alone() -> None:
    """Isolated, without site (-I -S: no site-packages at all): importing it loads the stdlib only."""
    probe = (
        "import importlib.util, sys; "
        f"spec = importlib.util.spec_from_file_location('install_py', {str(INSTALL_PY)!r}); "
        "spec.loader.exec_module(importlib.util.module_from_spec(spec)); "
        "print('\\n'.join(sorted({m.split('.')[0] for m in sys.modules})))"
    )
    done = subprocess.run(
        [sys.executable, "-I", "-S", "-c", probe], capture_output=True, text=True, check=True
    )
    loaded = set(done.stdout.split())
    assert "zipfile" in loaded and "venv" in loaded
    assert loaded - set(sys.stdlib_module_names) - {"__main__", "install_py"} == set()
    assert install_py().MIN_PYTHON == (3, 11)


def test_gc_removes_the_environments_no_installed_service_uses(tmp_path: Path) -> None:
    root = tmp_path / "work"
    used, unused = root / ".inferpack" / "venv-used", root / ".inferpack" / "venv-unused"
    for env in (used, unused):
        (env / "bin").mkdir(parents=True)
        (env / "bin" / "python").write_bytes(b"\0" * 4096)
    layout = ServiceLayout(root, "cats")
    save_settings(layout, ServiceSettings(name="cats", runtime="process", port=8080))
    layout.start_script.parent.mkdir(parents=True)
    layout.start_script.write_text(f'#!/usr/bin/env bash\nexec "{used}/bin/python" -m inferpack start cats\n')
    # A copy of the service folder runs nothing: it keeps no environment alive.
    copy = ServiceLayout(root, "cats_V1")
    copy.start_script.parent.mkdir(parents=True)
    copy.start_script.write_text(f'exec "{unused}/bin/python" -m inferpack start cats\n')

    lines: list[str] = []
    assert remove_unused(root, lines.append) == [unused]
    assert environments(root) == [used]
    assert lines == [f"removed the unused Python environment {unused} (0 MiB)"]
    assert remove_unused(root, lines.append) == []
