#!/usr/bin/env python3
"""inferpack operator entry point. Standard library only: it prepares a private Python
environment, then hands over to the ``inferpack`` command line inside it.

    python3 install.py quickstart            serve the demo model and show a prediction
    python3 install.py <verb> [args...]      any inferpack verb (python3 install.py --help)

Where it runs decides where the dependencies come from:
- in a deploy package (a ``wheels/`` folder beside this file): offline, from those wheels only;
- in a source checkout (``pyproject.toml`` beside this file): from the package index, pinned by
  ``package/requirements.txt``.
The environment is made once and reused while its inputs stay the same.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import venv
from pathlib import Path

HERE = Path(__file__).resolve().parent
MIN_PYTHON = (3, 9)


def _fail(message: str) -> None:
    print(f"install.py: {message}", file=sys.stderr)
    sys.exit(1)


def _digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        digest.update(path.read_bytes() if path.is_file() else b"")
    return digest.hexdigest()[:16]


def _pip(python: Path, wheels: Path | None, args: list[str]) -> None:
    # A host python3 without ensurepip (Debian without python3-venv) gets a venv without pip;
    # pip then runs straight from its own wheel, which pip supports.
    pip_wheels = sorted(wheels.glob("pip-*.whl")) if wheels else []
    command = [str(python), "-m", "pip"] if not pip_wheels else [str(python), f"{pip_wheels[-1]}/pip"]
    result = subprocess.run([*command, "--disable-pip-version-check", "-q", *args], check=False)
    if result.returncode != 0:
        _fail(f"installing the Python dependencies failed (pip exit {result.returncode})")


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as stream:
        for chunk in iter(lambda: stream.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _check_wheels(wheels: Path) -> None:
    """In a deploy package, every file in wheels/ must match its SHA-256 in manifest.json before
    pip reads the folder: a changed or added wheel (or sdist, whose setup.py pip would run) is
    refused. The manifest's signature needs inferpack itself: `package verify` checks it next."""
    manifest = HERE / "manifest.json"
    if not manifest.is_file():
        return
    try:
        files = json.loads(manifest.read_text(encoding="utf-8"))["files"]
        if not isinstance(files, dict):
            raise TypeError("'files' is not an object")
    except (OSError, ValueError, KeyError, TypeError) as exc:
        _fail(f"{manifest} is unreadable ({exc}): refusing to install anything from wheels/")
    listed = {name for name in files if name.startswith("wheels/")}
    for path in sorted(wheels.iterdir()):
        name = f"wheels/{path.name}"
        if name not in listed:
            _fail(f"{name} is not listed in manifest.json: refusing to install it (tampered package?)")
        if path.is_symlink() or not path.is_file() or _sha256(path) != files[name]:
            _fail(f"{name} does not match its SHA-256 in manifest.json: refusing to install it")
        listed.discard(name)
    if listed:
        _fail(f"{min(listed)}, listed in manifest.json, is missing: refusing to install")


def _prepare_environment() -> Path:
    wheels = HERE / "wheels"
    if wheels.is_dir():
        sources = list(wheels.glob("*.whl"))
        install = ["install", "--no-index", "--find-links", str(wheels), "inferpack"]
    elif (HERE / "pyproject.toml").is_file():
        requirements = HERE / "package" / "requirements.txt"
        sources = [requirements, HERE / "pyproject.toml"]
        install = ["install", "-r", str(requirements), "--no-deps", "-e", str(HERE)]
        wheels = None
    else:
        _fail(f"neither a wheels/ folder nor a source checkout beside {__file__}")
    env_dir = Path(os.environ.get("INFERPACK_VENV", HERE / ".venv"))
    python = env_dir / "bin" / "python"
    stamp = env_dir / f".inferpack-{_digest(sources)}"
    if stamp.is_file() and python.is_file():
        return python
    print(f"install.py: preparing the Python environment in {env_dir} (once)", file=sys.stderr)
    if wheels is not None:
        _check_wheels(wheels)
    use_ensurepip = wheels is None
    try:
        venv.create(env_dir, with_pip=use_ensurepip, clear=False, symlinks=True)
    except subprocess.CalledProcessError:
        _fail("python3 cannot create a virtual environment with pip; install python3-venv")
    _pip(python, wheels, install)
    for old in env_dir.glob(".inferpack-*"):
        old.unlink()
    stamp.touch()
    return python


def main() -> None:
    if sys.version_info < MIN_PYTHON:
        _fail(f"Python {'.'.join(map(str, MIN_PYTHON))} or newer is needed, this is {sys.version.split()[0]}")
    python = _prepare_environment()
    os.environ["INFERPACK_PACKAGE_ROOT"] = str(HERE)  # where `lu` finds licenses/
    os.execv(str(python), [str(python), "-m", "inferpack", *sys.argv[1:]])


if __name__ == "__main__":
    main()
