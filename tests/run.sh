#!/usr/bin/env bash
# The one test command (README, .ci/run): makes the dev environment in .venv from the pinned
# requirements, then lints, type-checks and runs the whole suite (unit, HTTP integration, and
# end-to-end on the real Docker Engine; GPU tests skip on hosts without an NVIDIA GPU).
# Extra arguments go to pytest, e.g. `bash tests/run.sh tests/unit -x`.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# The web console's tests drive Debian's Chromium through chromedriver; a CI machine (fresh, root)
# gets them here, non-interactively. Elsewhere, install them yourself: apt-get install chromium chromium-driver
if ! command -v chromedriver >/dev/null && { [ "${CI:-}" = true ] || [ "$(id -u)" = 0 ]; }; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends chromium chromium-driver >/dev/null
fi

python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
    "$python" -m venv .venv
fi
.venv/bin/python -m pip install --disable-pip-version-check -q -r package/requirements-dev.txt
.venv/bin/python -m pip install --disable-pip-version-check -q --no-deps -e .
# The training extra (PyTorch's Linux wheels are ~3 GB with their CUDA libraries): pip skips the
# download when the installed versions satisfy it, so only a fresh .venv pays for it.
if ! .venv/bin/python -c "import torch, torchvision" 2>/dev/null; then
    .venv/bin/python -m pip install --disable-pip-version-check -q "torch==2.15.0" "torchvision==0.29.2"
fi

.venv/bin/ruff check package tests bench install.py
.venv/bin/mypy
exec .venv/bin/python -m pytest "$@"
