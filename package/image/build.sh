#!/bin/sh
# Builds (or reuses) the inferpack base and server images with no registry: a thin wrapper over
# inferpack.deploy.image (see its docstring; `--help` for options). The base build needs root.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
export PYTHONPATH="$root/package${PYTHONPATH:+:$PYTHONPATH}"
exec "${PYTHON:-$root/.venv/bin/python}" -m inferpack.deploy.image "$@"
