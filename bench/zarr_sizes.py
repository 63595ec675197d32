"""Stored size and error of a float32 array in zarr, adlcodec codecs against zarr's default compressor.

    python bench/zarr_sizes.py [--out bench/results/zarr_sizes.md]

Writes each array with zarr 3 (format 3; adlcodec as the serializer, zarr's default codecs otherwise)
and with format 2 (the numcodecs codec as the compressor), reads it back and reports the bytes stored
for the chunks (metadata excluded) and the error of what was read. Each chunk is coded on its own from
a zero residual: in a store there is no next step to carry the dropped part to.
"""

import argparse
import tempfile
from pathlib import Path

import numpy as np
import zarr

from adlcodec.codec import AdaCompCodec
from adlcodec.zarr_codec import AdaCompZarrCodec

SHAPE, CHUNKS = (1024, 1024), (256, 256)
SETTINGS = [(1, 32), (1, 16), (50, 8), (50, 1), (500, 1)]


def arrays():
    rng = np.random.default_rng(0)
    return {
        "N(0,1)": rng.standard_normal(SHAPE).astype(np.float32),
        "Student-t, 3 dof (heavy-tailed, like gradients)": rng.standard_t(3, SHAPE).astype(np.float32),
    }


def chunk_bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file() and not p.name.startswith((".z", "zarr.json")))


def measure(a, label, make, path):
    z = make(path)
    z[...] = a
    back = zarr.open_array(str(path), mode="r")[...]
    stored = chunk_bytes(path)
    err = back.astype(np.float64) - a
    return {
        "codec": label,
        "bytes": stored,
        "ratio": a.nbytes / stored,
        "rel_l2": float(np.linalg.norm(err) / np.linalg.norm(a)),
        "max_abs": float(np.abs(err).max()),
        "kept": float(np.count_nonzero(back) / back.size),
    }


def rows(a, tmp):
    def v3(serializer, compressors="auto"):
        return lambda p: zarr.create_array(str(p), shape=SHAPE, chunks=CHUNKS, dtype="float32",
                                           serializer=serializer, compressors=compressors)

    def v2(compressors):
        return lambda p: zarr.create_array(str(p), shape=SHAPE, chunks=CHUNKS, dtype="float32", zarr_format=2,
                                           filters=None, compressors=compressors)

    default = zarr.create_array(str(tmp / "probe"), shape=SHAPE, chunks=CHUNKS, dtype="float32")
    yield measure(a, f"zarr 3 default ({', '.join(type(c).__name__ for c in default.compressors)})",
                  v3("auto"), tmp / "default3")
    default2 = zarr.create_array(str(tmp / "probe2"), shape=SHAPE, chunks=CHUNKS, dtype="float32", zarr_format=2)
    yield measure(a, f"zarr format 2 default ({default2.metadata.compressor.codec_id})", v2("auto"), tmp / "default2")
    for bin_size, bits in SETTINGS:
        yield measure(a, f"adlcodec bin {bin_size}, {bits} bit{'s' if bits > 1 else ''} (format 3)",
                      v3(AdaCompZarrCodec(bin_size=bin_size, bits=bits), None), tmp / f"a3-{bin_size}-{bits}")
    yield measure(a, "adlcodec bin 50, 1 bit (format 2)", v2(AdaCompCodec(bin_size=50, bits=1)), tmp / "a2")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--out")
    args = parser.parse_args()
    lines = [f"zarr {zarr.__version__}, {SHAPE[0]}x{SHAPE[1]} float32 ({SHAPE[0] * SHAPE[1] * 4} bytes), "
             f"chunks {CHUNKS[0]}x{CHUNKS[1]}", ""]
    for name, a in arrays().items():
        lines += [f"**{name}**", "", "| codec | bytes stored | ratio | relative L2 error | max abs error | nonzero read |",
                  "|---|---:|---:|---:|---:|---:|"]
        with tempfile.TemporaryDirectory() as tmp:
            for r in rows(a, Path(tmp)):
                lines.append(f"| {r['codec']} | {r['bytes']} | {r['ratio']:.2f} | {r['rel_l2']:.3g} | "
                             f"{r['max_abs']:.3g} | {r['kept']:.3f} |")
        lines.append("")
    text = "\n".join(lines)
    print(text)
    if args.out:
        Path(args.out).write_text(text + "\n")


if __name__ == "__main__":
    main()
