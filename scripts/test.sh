#!/usr/bin/env bash
# Sets up a fresh machine (scripts/setup.sh) and runs the whole test suite: the pytest suite (codec,
# format, kernels, fuzzing under ASan/UBSan, DDP over gloo and MPI, emulated cluster), the benchmarks
# once each as tests, and the aarch64 wheel built here and tested under an emulated Cortex-A53.
# A skipped test fails the run: every part must really run here.
#
# The host suite runs on TEST_WORKERS pytest-xdist workers, longest modules first (tests/conftest.py; default
# 3 on 2 cores: multi-rank tests spend part of their time waiting on sockets, throttled ranks or timeouts),
# handed out one test at a time (xdist's default first hands each worker a quarter of its share in a row,
# which put every long module on the first worker), and the aarch64 build and emulated run go on beside it,
# logged to build/aarch64.log. Arguments are passed to the host pytest.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
cd "$ROOT"
bash scripts/setup.sh --all

mkdir -p build
export OMP_NUM_THREADS=1
start=$SECONDS

# Its own TMPDIR: two pytest sessions at once must not share (or clean up) each other's basetemp.
# A session of its own, so that an interrupted run takes the emulator down with it.
mkdir -p build/tmp-aarch64
TMPDIR=$ROOT/build/tmp-aarch64 setsid bash -c 'bash scripts/aarch64.sh build && bash scripts/aarch64.sh test' \
  > build/aarch64.log 2>&1 &
aarch64_pid=$!
trap 'kill -- -$aarch64_pid 2>/dev/null || true' EXIT

host=0
ADLCODEC_BENCH_SIZES=${ADLCODEC_BENCH_SIZES:-64K,1M} \
  "$PYTHON" -m pytest tests bench -p no:cacheprovider --benchmark-disable -ra --junitxml=build/junit.xml \
  -n "${TEST_WORKERS:-3}" --dist load --maxschedchunk 1 "$@" || host=$?
echo "test.sh: host suite done after $((SECONDS - start)) s (exit $host)"
"$PYTHON" - <<'PY' || host=1
import xml.etree.ElementTree as ET
suite = ET.parse("build/junit.xml").getroot()
suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
tests, skipped = int(suite.get("tests")), int(suite.get("skipped"))
print(f"test.sh: {tests} tests, {skipped} skipped")
if tests == 0 or skipped:
    raise SystemExit("test.sh: skipped tests do not count as passes here; install what they need")
PY

aarch64=0
wait $aarch64_pid || aarch64=$?
trap - EXIT
echo "----- aarch64 (build/aarch64.log) -----"
cat build/aarch64.log
echo "test.sh: aarch64 done after $((SECONDS - start)) s (exit $aarch64)"
if (( host != 0 || aarch64 != 0 )); then
  echo "test.sh: FAILED (host suite exit $host, aarch64 exit $aarch64)"
  exit 1
fi
echo "test.sh: all parts passed"
