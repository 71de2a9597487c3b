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
import re
import subprocess
import sys
import venv
import zipfile
from pathlib import Path
from typing import NoReturn

HERE = Path(__file__).resolve().parent
MIN_PYTHON = (3, 11)  # as README.md and the package's wheels
DEFAULT_WORK_ROOT = "/opt/inferpack/work"  # as inferpack.deploy.layout


def _fail(message: str) -> NoReturn:
    print(f"install.py: {message}", file=sys.stderr)
    sys.exit(1)


def _content(path: Path) -> bytes:
    """What a file holds, for the environment's key. A wheel (a zip) by its members' names, CRCs
    and sizes, not its bytes: the same wheels built at another time differ only in zip times,
    and must share one environment (each is hundreds of MB)."""
    if not path.is_file():
        return b""
    try:
        with zipfile.ZipFile(path) as archive:
            members = sorted(archive.infolist(), key=lambda member: member.filename)
            return "\n".join(f"{m.filename} {m.CRC:08x} {m.file_size}" for m in members).encode()
    except zipfile.BadZipFile:
        return path.read_bytes()


def _digest(paths: list[Path]) -> str:
    digest = hashlib.sha256()
    for path in sorted(paths):
        digest.update(path.name.encode())
        digest.update(hashlib.sha256(_content(path)).digest())
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


def _check_python(wheels: Path) -> None:
    """The bundled binary wheels are built for one CPython: say so plainly, not with pip's error."""
    tags = {m.group(1) for w in wheels.glob("*.whl") if (m := re.search(r"-cp(3\d+)-", w.name))}
    here = f"{sys.version_info[0]}{sys.version_info[1]}"
    if tags and here not in tags:
        wanted = ", ".join(f"{t[0]}.{t[1:]}" for t in sorted(tags))
        _fail(
            f"this package's Python wheels are for CPython {wanted}, and python3 here is "
            f"{sys.version.split()[0]}: run install.py with python{wanted}"
        )


def _work_root() -> Path:
    """The --work-root the command names, else $INFERPACK_WORK_ROOT, else the default."""
    args = sys.argv[1:]
    for index, arg in enumerate(args):
        if arg == "--work-root" and index + 1 < len(args):
            return Path(args[index + 1])
        if arg.startswith("--work-root="):
            return Path(arg.split("=", 1)[1])
    return Path(os.environ.get("INFERPACK_WORK_ROOT", DEFAULT_WORK_ROOT))


def _environment_dir(digest: str, packaged: bool) -> Path:
    if "INFERPACK_VENV" in os.environ:
        return Path(os.environ["INFERPACK_VENV"])
    if not packaged:
        return HERE / ".venv"
    # A package's environment lives in the work root, one per set of wheels: it outlives the
    # package folder (start-1.sh and the process runtime run from it), and an update with new
    # wheels gets a new one instead of changing files under running servers.
    root = _work_root()
    try:
        (root / ".inferpack").mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        _fail(f"cannot write the work root {root} ({exc.strerror}): run as root or pass --work-root DIR")
    return root / ".inferpack" / f"venv-{digest}"


def _prepare_environment() -> Path:
    wheels: Path | None = HERE / "wheels"
    if wheels is not None and wheels.is_dir():
        sources = list(wheels.glob("*.whl"))
        install = ["install", "--no-index", "--find-links", str(wheels), "inferpack"]
    elif (HERE / "pyproject.toml").is_file():
        requirements = HERE / "package" / "requirements.txt"
        sources = [requirements, HERE / "pyproject.toml"]
        install = ["install", "-r", str(requirements), "--no-deps", "-e", str(HERE)]
        wheels = None
    else:
        _fail(f"neither a wheels/ folder nor a source checkout beside {__file__}")
    digest = _digest(sources)
    env_dir = _environment_dir(digest, packaged=wheels is not None)
    python = env_dir / "bin" / "python"
    stamp = env_dir / f".inferpack-{digest}"
    if stamp.is_file() and python.is_file():
        return python
    print(f"install.py: preparing the Python environment in {env_dir} (once)", file=sys.stderr)
    if wheels is not None:
        _check_python(wheels)
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
