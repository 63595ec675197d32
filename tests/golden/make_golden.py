"""Writes the golden files of the format version this build writes. Run once per format version; never
regenerate existing ones: every later version must decode these payloads to exactly these floats.

The inputs (``<name>.npz``: gradient, residual before and after, decoded floats) were made once, with
version 1, whose payloads are the ``<name>.adl`` beside them. Each later version N encodes the same
inputs into ``v<N>/<name>.adl``; the residual update and the decoded floats must not change with the
format, and this script refuses to write a set where they do."""

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
# Added with version 2: more than one chunk of positions, so the section has two streams.
CASES_SINCE_V2 = [
    ("bits1_two_streams", (40000,), 50, 1, 2),  # streams over 1 KiB: chunk pairs on the fast path
    ("bits8_two_streams_escape", (300000,), 1, 8, 0),
]


def make_inputs(name, shape, bin_size, bits, warmup, rng):
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
    if name == "bits8_two_streams_escape":
        grad[(np.arange(grad.size) % 997) > 2] = 0  # three in every 997,
        grad[150000:250000] = 0  # and a gap that only an escape code holds, in the second stream
    residual_before = residual.copy()
    payload = adlcodec.compress(grad, residual, bin_size=bin_size, bits=bits)
    np.savez_compressed(
        HERE / f"{name}.npz",
        grad=grad,
        residual_before=residual_before,
        residual_after=residual,
        decoded=adlcodec.decompress(payload),
    )


def make_payload(name, shape, bin_size, bits, out_dir):
    data = np.load(HERE / f"{name}.npz")
    residual = data["residual_before"].copy()
    payload = adlcodec.compress(data["grad"], residual, bin_size=bin_size, bits=bits)
    if residual.tobytes() != data["residual_after"].tobytes():
        raise SystemExit(f"{name}: the residual update changed; that is not a format change")
    if adlcodec.decompress(payload).tobytes() != data["decoded"].tobytes():
        raise SystemExit(f"{name}: the decoded floats changed; that is not a format change")
    (out_dir / f"{name}.adl").write_bytes(payload.tobytes())
    return {"name": name, "shape": list(shape), "bin_size": bin_size, "bits": bits,
            "format_version": adlcodec.FORMAT_VERSION}


def main():
    rng = np.random.default_rng(2026)
    for case in CASES:  # the same generator sequence as when version 1 made them
        if not (HERE / f"{case[0]}.npz").exists():
            make_inputs(*case, rng)
    rng = np.random.default_rng(2027)
    for case in CASES_SINCE_V2:
        if not (HERE / f"{case[0]}.npz").exists():
            make_inputs(*case, rng)
    out_dir = HERE / f"v{adlcodec.FORMAT_VERSION}"
    if out_dir.exists():
        raise SystemExit(f"{out_dir} exists: golden files are never regenerated")
    out_dir.mkdir()
    manifest = [make_payload(*case[:4], out_dir) for case in CASES + CASES_SINCE_V2]
    (out_dir / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
