"""``lu``: put a new license in place for an installed service, only if it verifies here.

The running server watches the license folder and picks the new file up within a second:
no restart. A license that does not verify for this machine and deploy name changes nothing.
"""

from __future__ import annotations

import os
from pathlib import Path

from inferpack.deploy.layout import ServiceLayout
from inferpack.license._io import read_text
from inferpack.license.errors import LicenseError
from inferpack.license.fingerprint import collect, write_request
from inferpack.license.install import replace_license
from inferpack.license.pinned import trusted_key
from inferpack.license.verify import LicenseState, verify_license

LICENSE_SUFFIXES = (".lic", ".license")


def package_licenses_dir() -> Path:
    """The ``licenses/`` folder beside install.py, where an operator drops a new license."""
    return Path(os.environ.get("INFERPACK_PACKAGE_ROOT", ".")) / "licenses"


def dropped_license(name: str, folder: Path) -> Path:
    """``licenses/NAME.lic``, else the only license file in ``licenses/``."""
    for suffix in LICENSE_SUFFIXES:
        if (folder / f"{name}{suffix}").is_file():
            return folder / f"{name}{suffix}"
    found = sorted(p for p in folder.glob("*") if p.suffix in LICENSE_SUFFIXES and p.is_file())
    if len(found) == 1:
        return found[0]
    if not found:
        raise LicenseError(f"no license file given and none in {folder}/ (expected {name}.lic)")
    raise LicenseError(f"several licenses in {folder}/: name one, or call it {name}.lic")


def update_license(layout: ServiceLayout, new_license: Path, host_root: Path = Path("/")) -> LicenseState:
    if not layout.home.is_dir():
        raise LicenseError(f"service {layout.name} is not installed under {layout.root}")
    fingerprint = collect(host_root)
    state = replace_license(
        layout.license_file, new_license, trusted_key(layout.vendor_key), layout.name, fingerprint
    )
    # The request the license answers, for the doctor and the next renewal (no server reads it).
    write_request(layout.fingerprint_snapshot, fingerprint)
    return state


def verify_installed(layout: ServiceLayout) -> LicenseState:
    """The installed license as this host sees it, against the vendor key this build trusts."""
    try:
        text = read_text(layout.license_file, "license file")
        public_key = trusted_key(layout.vendor_key)
    except LicenseError as exc:
        return LicenseState(False, exc.reason)
    return verify_license(text, public_key, layout.name, collect(Path("/")))
