"""Reading license-related files with failures that name the file and the cause."""

from __future__ import annotations

from pathlib import Path

from inferpack.license.errors import LicenseError


def read_text(path: Path, what: str) -> str:
    """The UTF-8 text of ``path``; LicenseError naming ``what`` and the cause when it cannot be read."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise LicenseError(f"no {what} at {path}") from None
    except OSError as exc:
        raise LicenseError(f"cannot read the {what} {path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise LicenseError(f"the {what} {path} is not a text file") from None
