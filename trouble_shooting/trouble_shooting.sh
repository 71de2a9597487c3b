#!/usr/bin/env bash
# What is wrong with the inferpack services on this machine, and what to do about it.
# Runs from anywhere (as root, like the install):
#   bash trouble_shooting/trouble_shooting.sh        from the unpacked deploy package
#   tar vxf trouble_shooting.tar; bash trouble_shooting.sh     the seed's steps, in any folder
#   bash trouble_shooting.sh NAME                    check one service (default: every one)
#   bash trouble_shooting.sh --bundle support.tar.gz also write a support bundle for the vendor
#        (check results, versions, manifest, container inspect, recent logs, fingerprint
#        request; never keys, license files or model weights)
# Other options: --json, --work-root DIR, --disk-threshold PCT (python3 install.py doctor --help).
# The work root is --work-root DIR, else $INFERPACK_WORK_ROOT, else /opt/inferpack/work.
# Prints one line per check: PASS / WARN / FAIL, what was found, and under each WARN or FAIL
# the next step. Exit status 0 when nothing FAILed, 1 otherwise.
set -uo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

fail() {
    echo "FAIL: $*" >&2
    exit 1
}

# In the unpacked package (install.py beside this folder), install.py runs the doctor.
package="$(dirname "$here")"
if [ -f "$package/install.py" ]; then
    # The package's wheels are built for one CPython (e.g. 3.11): prefer that python3.X, then python3.
    wanted="$(ls "$package"/wheels/ 2>/dev/null | sed -n 's/.*-cp3\([0-9][0-9]*\)-.*/3.\1/p' | sort -u | head -n 1)"
    for candidate in ${wanted:+"python$wanted"} python3; do
        if command -v "$candidate" >/dev/null 2>&1 &&
            "$candidate" -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then
            # No cd: a relative --bundle FILE stays relative to where the operator stands.
            exec "$candidate" "$package/install.py" doctor "$@"
        fi
    done
    fail "python3 (3.11 or newer${wanted:+, best $wanted}) is not installed: install it with your \
system's package manager (apt-get install python3 / yum install python3), then run this again"
fi

# Anywhere else: the Python environment the installer made in the work root runs the doctor.
work_root="${INFERPACK_WORK_ROOT:-/opt/inferpack/work}"
previous=""
for arg in "$@"; do
    [ "$previous" = "--work-root" ] && work_root="$arg"
    case "$arg" in --work-root=*) work_root="${arg#--work-root=}" ;; esac
    previous="$arg"
done
[ -d "$work_root" ] || fail "no work root at $work_root: pass --work-root DIR (where install put the services)"
python=""
for candidate in "$work_root"/.inferpack/venv-*/bin/python; do
    [ -x "$candidate" ] && "$candidate" -c 'import inferpack' 2>/dev/null && python="$candidate" && break
done
[ -n "$python" ] || fail "no inferpack environment under $work_root/.inferpack: run this from the \
unpacked deploy package (bash trouble_shooting/trouble_shooting.sh)"
exec "$python" -m inferpack doctor --work-root "$work_root" "$@"
