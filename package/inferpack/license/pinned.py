"""The vendor key this build trusts: pinned inside the shipped code, not read from the work root.

``inferpack pack`` writes the vendor's public key into the inferpack wheel it ships
(``inferpack/license/pinned_vendor.pub``) and into the server image at the same place, and
signs both into the package. A build that pins a key checks licenses and packages against it
alone; swapping it means rebuilding the wheel or the image. A source checkout pins nothing and
takes the key it is given (tests, a vendor trying a model): that is development, not a product.
"""

from __future__ import annotations

from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from inferpack.license.errors import LicenseError
from inferpack.license.keys import load_public_key

PINNED_KEY_NAME = "pinned_vendor.pub"
PINNED_KEY_FILE = Path(__file__).with_name(PINNED_KEY_NAME)
SOURCE_PATH = f"package/inferpack/license/{PINNED_KEY_NAME}"  # in a source tree (the wheel's)
IMAGE_PATH = f"/opt/inferpack/app/inferpack/license/{PINNED_KEY_NAME}"  # in the server image
IMAGE_LABEL = "io.inferpack.vendor-key-id"  # the pinned key's id, for the installer to compare


def pinned_key() -> Ed25519PublicKey | None:
    """The key this build pins, or None in a source checkout."""
    return load_public_key(PINNED_KEY_FILE) if PINNED_KEY_FILE.is_file() else None


def trusted_key(given: Path | None) -> Ed25519PublicKey:
    """The pinned key where this build has one (``given`` is then ignored), else ``given``."""
    pinned = pinned_key()
    if pinned is not None:
        return pinned
    if given is None:
        raise LicenseError("no vendor key: this build pins none and none was given (--vendor-key)")
    return load_public_key(given)
