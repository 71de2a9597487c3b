#!/usr/bin/env bash
# Verifies this deploy package and loads its server image into the local Docker Engine, offline.
# Usage, in the unpacked package: bash original/download.sh
#
# 1. install.py prepares its private Python environment from wheels/, checking each wheel
#    against manifest.json's SHA-256 before pip sees it;
# 2. `package verify`: the vendor's Ed25519 signature over manifest.json, then every file
#    against its SHA-256: nothing changed, missing or added, no links or devices;
# 3. `package load-images`: verifies again, then `docker load`s original/images/*.tar and checks
#    the loaded image id against the manifest (an update package: checks its image is present).
# Any failure stops here with a FAIL line and a non-zero exit, before anything is loaded.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

[ -f manifest.json ] && [ -f install.py ] || fail "$(pwd) is not an unpacked inferpack deploy package"
command -v python3 >/dev/null || fail "python3 is not installed"

python3 install.py package verify . || fail "the package did not verify: nothing was loaded"
python3 install.py package load-images . || fail "the image was not loaded"
echo "PASS: package verified and its image is in Docker; next: python3 install.py install NAME (see README.txt)"
