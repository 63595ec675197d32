#!/usr/bin/env bash
# Sets up a fresh machine (scripts/setup.sh) and runs the whole test suite: the pytest suite (codec,
# format, kernels, fuzzing under ASan/UBSan, DDP over gloo and MPI, emulated cluster), the benchmarks
# once each as tests, and the aarch64 wheel built here and tested under an emulated Cortex-A53.
# A skipped test fails the run: every part must really run here.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
PYTHON=${PYTHON:-python3}
cd "$ROOT"
bash scripts/setup.sh --all

mkdir -p build
export OMP_NUM_THREADS=1
ADLCODEC_BENCH_SIZES=${ADLCODEC_BENCH_SIZES:-64K,1M} \
  "$PYTHON" -m pytest tests bench -p no:cacheprovider --benchmark-disable -ra --junitxml=build/junit.xml "$@"
"$PYTHON" - <<'PY'
import xml.etree.ElementTree as ET
suite = ET.parse("build/junit.xml").getroot()
suite = suite if suite.tag == "testsuite" else suite.find("testsuite")
tests, skipped = int(suite.get("tests")), int(suite.get("skipped"))
print(f"test.sh: {tests} tests, {skipped} skipped")
if tests == 0 or skipped:
    raise SystemExit("test.sh: skipped tests do not count as passes here; install what they need")
PY

bash scripts/aarch64.sh build
bash scripts/aarch64.sh test
echo "test.sh: all parts passed"
