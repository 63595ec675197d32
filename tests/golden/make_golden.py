"""Writes the version-1 golden files. Run once per format version; never regenerate existing ones:
later versions must decode these payloads to exactly these floats."""

import json
import pathlib

import numpy as np

import adlcodec

HERE = pathlib.Path(__file__).parent

CASES = [
    # name, shape, bin_size, bits, warm-up steps (a nonzero residual, as in training)
    ("bits1_conv", (8, 4, 3, 3), 50, 1, 3),
    ("bits2_vector", (1000,), 50, 2, 1),
    ("bits4_matrix", (64, 33), 500, 4, 2),
    ("bits8_odd_bins", (997,), 7, 8, 0),
    ("bits16_saturating", (300,), 25, 16, 0),
    ("bits32_sparsify", (10, 10), 10, 32, 5),
    ("scalar_0d", (), 50, 1, 0),
    ("empty", (0, 3), 50, 8, 0),
    ("all_zero", (128,), 50, 1, 0),
    ("large_gaps_escape", (200000,), 1, 1, 0),
]


def make(name, shape, bin_size, bits, warmup, rng):
    residual = np.zeros(shape, np.float32)
    for _ in range(warmup):
        adlcodec.compress(rng.standard_normal(shape, dtype=np.float32), residual, bin_size=bin_size, bits=bits)
    grad = rng.standard_normal(shape, dtype=np.float32)
    if name == "bits16_saturating":
        grad[:5] = [1e5, -7e4, 65519, 65520, -1e-30]
    if name == "all_zero":
        grad[:] = 0
    if name == "large_gaps_escape":
        grad[:] = 0
        grad[:127] = np.arange(1, 128, dtype=np.float32)  # a chunk of zero gaps, then one gap > 2^(k+4)
        grad[199999] = -5.0
    residual_before = residual.copy()
    payload = adlcodec.compress(grad, residual, bin_size=bin_size, bits=bits)
    np.savez_compressed(
        HERE / f"{name}.npz",
        grad=grad,
        residual_before=residual_before,
        residual_after=residual,
        decoded=adlcodec.decompress(payload),
    )
    (HERE / f"{name}.adl").write_bytes(payload.tobytes())
    return {"name": name, "shape": list(shape), "bin_size": bin_size, "bits": bits, "format_version": 1}


def main():
    rng = np.random.default_rng(2026)
    manifest = [make(*case, rng) for case in CASES]
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
