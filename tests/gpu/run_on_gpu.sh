#!/bin/sh
# Sets up what the GPU tests need on a machine with an NVIDIA GPU, then runs them.
#
#   sh tests/gpu/run_on_gpu.sh            # engines, cache, HTTP server (and the container test
#                                         # when Docker with the NVIDIA container toolkit is there)
#
# Needs: the NVIDIA driver (nvidia-smi), Python 3.11, network access to PyPI. TensorRT's
# libraries (libnvinfer.so.11 and its ONNX parser) must be loadable: from NVIDIA's apt repository
# (libnvinfer11 libnvonnxparsers11 libnvinfer-plugin11), from an NVIDIA TensorRT container, or
# from the tensorrt-cu13-libs wheel where NVIDIA's Python index is configured for pip
# (PIP_EXTRA_INDEX_URL); this script installs that wheel when pip can get it.
# Environment: VENV (default .venv-gpu), SKIP_IMAGE=1 to skip building the GPU image.
set -eu
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
venv=${VENV:-.venv-gpu}

nvidia-smi -L
python3.11 -m venv "$venv"
"$venv/bin/python" -m pip install -q --upgrade pip
# The dev tools and everything else pinned, then the GPU runtime in place of the CPU one.
grep -v '^onnxruntime==' package/requirements.txt > "$venv/requirements-cpu-less.txt"
"$venv/bin/python" -m pip install -q -r "$venv/requirements-cpu-less.txt" \
    $(grep -v -e '^#' -e '^-r' -e '^$' package/requirements-dev.txt)
"$venv/bin/python" -m pip uninstall -q -y onnxruntime 2>/dev/null || true
"$venv/bin/python" -m pip install -q -r package/requirements-gpu.txt
"$venv/bin/python" -m pip install -q --no-deps -e .
if ! "$venv/bin/python" -c 'import ctypes; ctypes.CDLL("libnvinfer.so.11")' 2>/dev/null; then
    echo "libnvinfer.so.11 is not on the loader path: trying the tensorrt-cu13-libs wheel"
    "$venv/bin/python" -m pip install -q tensorrt-cu13-libs==11.4.0.106 tensorrt-cu13==11.4.0.106 || {
        echo "cannot get TensorRT's libraries: install libnvinfer11 libnvonnxparsers11 (NVIDIA apt)" >&2
        exit 1
    }
fi
"$venv/bin/python" - <<'PY'
import onnxruntime
from inferpack.runtime.gpu import list_gpus
from inferpack.runtime.tensorrt import import_tensorrt
print("GPUs:", [g.describe() for g in list_gpus()])
print("TensorRT:", import_tensorrt().__version__)
print("onnxruntime:", onnxruntime.__version__, onnxruntime.get_available_providers())
PY

if [ "${SKIP_IMAGE:-0}" != 1 ] && docker info >/dev/null 2>&1; then
    # The GPU image FROM an NVIDIA CUDA base: pull it first where a registry is reachable.
    base=$("$venv/bin/python" -c 'from inferpack.deploy.image import GPU_BASE_IMAGE; print(GPU_BASE_IMAGE)')
    docker image inspect "$base" >/dev/null 2>&1 || docker pull "$base"
    INFERPACK_GPU_IMAGE=$(PYTHON="$venv/bin/python" sh package/image/build.sh --gpu --tag inferpack-server:gpu-test)
    export INFERPACK_GPU_IMAGE
else
    echo "no Docker Engine (or SKIP_IMAGE=1): the container test will fail, the others run"
fi

exec "$venv/bin/python" -m pytest tests/gpu -m gpu -v -rs -p no:cacheprovider "$@"
