#!/usr/bin/env bash
# The main job: sets up a fresh machine (scripts/setup.sh --run), then trains the paper's CNN on
# Fashion-MNIST with 2 local data-parallel ranks exchanging adlcodec-compressed gradients, and prints
# accuracy, bytes sent, compression ratio and time per step. Extra arguments go to `adlcodec train`.
# As root the ranks run in a private network namespace with only loopback: nothing leaves the machine.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
cd "$ROOT"
bash scripts/setup.sh --run
args=(train --ranks 2 --epochs 1 --max-steps 150 --optimizer sgd --hook adacomp --bits 1 --out runs/quickstart "$@")
export OMP_NUM_THREADS=1
if [[ $(id -u) == 0 ]]; then
  exec bash scripts/cluster/hermetic.sh -- adlcodec "${args[@]}"
fi
exec adlcodec "${args[@]}"
