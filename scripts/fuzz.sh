#!/usr/bin/env bash
# Bounded fuzzing: libFuzzer harnesses of the C++ core under AddressSanitizer + UBSan, then atheris
# on the Python decoder. Usage: scripts/fuzz.sh [RUNS]   (default 200000 decoder inputs)
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
RUNS=${1:-200000}
OUT=${FUZZ_OUT:-$ROOT/build/fuzz}
mkdir -p "$OUT"/corpus_decode "$OUT"/corpus_encode
CXX=${CXX_FUZZ:-clang++}
FLAGS=(-std=c++17 -O1 -g -fno-omit-frame-pointer -ffp-contract=off -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=all -I"$ROOT/csrc")
SOURCES=(crc32c dispatch format kernel_scalar)
DEFS=()
if [[ $(uname -m) == x86_64 ]]; then SOURCES+=(kernel_avx2 kernel_avx512); DEFS+=(-DADLCODEC_HAVE_AVX2=1); fi
if [[ $(uname -m) == aarch64 ]]; then SOURCES+=(kernel_neon); DEFS+=(-DADLCODEC_HAVE_NEON=1); fi

objects=()
for s in "${SOURCES[@]}"; do
  extra=(); [[ $s == kernel_avx2 ]] && extra=(-mavx2)
  [[ $s == kernel_avx512 ]] && extra=(-mavx512f -mpopcnt -mbmi -mbmi2)
  # Library objects get coverage + sanitizers but no libFuzzer main.
  "$CXX" "${FLAGS[@]/-fsanitize=fuzzer,/-fsanitize=fuzzer-no-link,}" "${DEFS[@]}" "${extra[@]}" \
    -c "$ROOT/csrc/$s.cpp" -o "$OUT/$s.o"
  objects+=("$OUT/$s.o")
done
for h in fuzz_decode fuzz_encode; do
  "$CXX" "${FLAGS[@]}" "${DEFS[@]}" "$ROOT/fuzz/$h.cpp" "${objects[@]}" -o "$OUT/$h"
done

# Seeds: the golden payloads, in both modes (raw, and resealed with a valid checksum).
for f in "$ROOT"/tests/golden/*.adl "$ROOT"/tests/golden/v*/*.adl; do
  name=$(basename "$(dirname "$f")")_$(basename "$f" .adl)
  { printf '\x00'; cat "$f"; } > "$OUT/corpus_decode/${name}_raw"
  { printf '\x01'; cat "$f"; } > "$OUT/corpus_decode/${name}_resealed"
done
head -c 4099 /dev/zero > "$OUT/corpus_encode/zeros"

export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
echo "== libFuzzer decode (ASan+UBSan): $RUNS inputs"
"$OUT/fuzz_decode" -runs="$RUNS" -max_len=4096 -seed=1 -print_final_stats=1 "$OUT/corpus_decode" 2>&1 | tail -n 4
echo "== libFuzzer encode, every kernel compared (ASan+UBSan): $((RUNS / 4)) inputs"
"$OUT/fuzz_encode" -runs=$((RUNS / 4)) -max_len=8192 -seed=1 -print_final_stats=1 "$OUT/corpus_encode" 2>&1 | tail -n 4
echo "== atheris decode (Python API): $((RUNS / 10)) inputs"
python "$ROOT/fuzz/fuzz_decode_atheris.py" -runs=$((RUNS / 10)) -seed=1 -max_len=4096 "$OUT/corpus_decode" 2>&1 | tail -n 3
echo "fuzz: all harnesses finished without a finding"
