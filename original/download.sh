#!/usr/bin/env bash
# Verifies this deploy package and loads its server image into the local Docker Engine, offline.
# Usage, in the unpacked package: bash original/download.sh [--work-root DIR]
#
# 1. install.py prepares its private Python environment from wheels/, checking each wheel
#    against manifest.json's SHA-256 before pip sees it; the environment goes to the work root
#    (--work-root DIR, else $INFERPACK_WORK_ROOT, else /opt/inferpack/work), where install
#    and every other verb will find it;
# 2. `package verify`: the vendor's Ed25519 signature over manifest.json, then every file
#    against its SHA-256: nothing changed, missing or added, no links or devices;
# 3. `package load-images`: verifies again, then `docker load`s original/images/*.tar and checks
#    the loaded image id against the manifest (an update package: checks its image is present).
# Any failure stops here with a FAIL line and a non-zero exit, before anything is loaded.
# Each step prints a line with the time it took (docker load of a large image takes minutes).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

while [ $# -gt 0 ]; do
    case "$1" in
        --work-root) [ $# -ge 2 ] || fail "--work-root needs a folder"; export INFERPACK_WORK_ROOT="$2"; shift 2 ;;
        --work-root=*) export INFERPACK_WORK_ROOT="${1#--work-root=}"; shift ;;
        *) fail "unknown argument $1 (usage: bash original/download.sh [--work-root DIR])" ;;
    esac
done

step() {
    local started=$SECONDS
    echo "... $1" >&2
    shift
    "$@" || return 1
    echo "    done in $((SECONDS - started))s" >&2
}

[ -f manifest.json ] && [ -f install.py ] || fail "$(pwd) is not an unpacked inferpack deploy package"
command -v python3 >/dev/null || fail "python3 is not installed"

step "verifying the package (and preparing the Python environment on the first run)" \
    python3 install.py package verify . || fail "the package did not verify: nothing was loaded"
step "loading the server image into Docker (docker load)" \
    python3 install.py package load-images . || fail "the image was not loaded"
echo "PASS: package verified and its image is in Docker; next: python3 install.py install NAME (see README.txt)"
