"""`lu`: replace a deployed service's license only with one that verifies here."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from inferpack.fileio import write_atomic
from inferpack.license.clock import ClockGuard
from inferpack.license.errors import LicenseError
from inferpack.license.fingerprint import Fingerprint
from inferpack.license.verify import LicenseState, verify_license


def replace_license(
    current_path: Path,
    new_license_path: Path,
    public_key: Ed25519PublicKey,
    deploy_name: str,
    fingerprint: Fingerprint,
    *,
    clock_guard: ClockGuard | None = None,
    now: datetime | None = None,
) -> LicenseState:
    """Verifies ``new_license_path`` for this machine and ``deploy_name``, then swaps it in.

    Nothing is touched unless it verifies: a bad file raises LicenseError with the reason and
    leaves ``current_path`` byte-identical. The swap is one rename in the same folder, so a server
    polling the file sees the old license or the new one, never a partial file. The exact bytes
    are copied (comments and all), so what the vendor sent is what is installed.
    """
    try:
        data = new_license_path.read_bytes()
        text = data.decode("utf-8")
    except OSError as exc:
        raise LicenseError(f"cannot read the new license {new_license_path}: {exc.strerror or exc}") from None
    except UnicodeDecodeError:
        raise LicenseError(f"malformed license: {new_license_path} is not a text file") from None
    state = verify_license(text, public_key, deploy_name, fingerprint, now, clock_guard)
    if not state.valid:
        raise LicenseError(f"{new_license_path}: {state.reason}; the current license is unchanged")
    try:
        current_path.parent.mkdir(parents=True, exist_ok=True)
        write_atomic(current_path, data)
    except OSError as exc:
        raise LicenseError(f"cannot install the license at {current_path}: {exc.strerror or exc}") from None
    return state
