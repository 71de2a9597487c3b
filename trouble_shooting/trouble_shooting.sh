#!/usr/bin/env bash
# What is wrong with the inferpack services on this machine, and what to do about it.
# Usage, from the unpacked deploy package (as root, like the install):
#   bash trouble_shooting/trouble_shooting.sh                  check every installed service
#   bash trouble_shooting/trouble_shooting.sh NAME             check one
#   bash trouble_shooting/trouble_shooting.sh --bundle support.tar.gz   also write a support
#        bundle for the vendor (check results, versions, manifest, container inspect, recent logs,
#        fingerprint request; never keys, license files or model weights)
# Other options: --json, --work-root DIR, --disk-threshold PCT (python3 install.py doctor --help).
# Prints one line per check: PASS / WARN / FAIL, what was found, and under each WARN or FAIL
# the next step. Exit status 0 when nothing FAILed, 1 otherwise.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
package="$(dirname "$here")"

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

[ -f "$package/install.py" ] || fail "no install.py beside $here: run this from the unpacked deploy package"

# The package's wheels are built for one CPython (e.g. 3.11): prefer that python3.X, then python3.
wanted="$(ls "$package"/wheels/ 2>/dev/null | sed -n 's/.*-cp3\([0-9][0-9]*\)-.*/3.\1/p' | sort -u | head -n 1)"
python=""
for candidate in ${wanted:+"python$wanted"} python3; do
    if command -v "$candidate" >/dev/null 2>&1 &&
        "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 9))' 2>/dev/null; then
        python="$candidate"
        break
    fi
done
[ -n "$python" ] || fail "python3 (3.9 or newer${wanted:+, best $wanted}) is not installed: install it with your \
system's package manager (apt-get install python3 / yum install python3), then run this again"

# No cd: a relative --bundle FILE stays relative to where the operator stands.
exec "$python" "$package/install.py" doctor "$@"
