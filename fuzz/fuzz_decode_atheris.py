"""Atheris fuzzing of the Python-facing decoder: python fuzz/fuzz_decode_atheris.py -runs=N [corpus]."""

import struct
import sys

import atheris

with atheris.instrument_imports():
    import numpy as np

    import adlcodec


def test_one_input(data: bytes) -> None:
    if not data:
        return
    payload = data[1:]
    if data[0] & 1 and len(payload) >= 4:
        payload = payload[:-4] + struct.pack("<I", adlcodec._core.crc32c(payload[:-4]))
    try:
        dense = adlcodec.decompress(payload, max_numel=1 << 20)
    except adlcodec.FormatError:
        return
    if not np.all(np.isfinite(dense)):
        raise AssertionError("decoded a non-finite value")
    info = adlcodec.inspect(payload)
    if dense.size != info["numel"] or dense.shape != info["shape"]:
        raise AssertionError("shape disagrees with inspect()")


if __name__ == "__main__":
    atheris.Setup(sys.argv, test_one_input)
    atheris.Fuzz()
