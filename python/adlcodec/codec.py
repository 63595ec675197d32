"""numcodecs-compatible codec (``codec_id = "adlcodec"``).

Each ``encode`` starts from a zero residual, so it is a lossy sparsifying codec on its own: what it
drops is not carried to a next call. Use :class:`adlcodec.Compressor` for error feedback across calls.
"""

from __future__ import annotations

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ensure_ndarray_like
from numcodecs.registry import register_codec

from ._api import check_bin_size, check_bits, compress, decompress


class AdaCompCodec(Codec):
    codec_id = "adlcodec"

    def __init__(self, bin_size: int = 50, bits: int = 1):
        self.bin_size = check_bin_size(bin_size)
        self.bits = check_bits(bits)

    def encode(self, buf):
        array = ensure_ndarray_like(buf)
        if array.dtype != np.float32:
            raise TypeError(f"AdaCompCodec encodes float32 data, got {array.dtype}")
        array = np.ascontiguousarray(array)
        residual = np.zeros(array.shape, dtype=np.float32)
        return compress(array, residual, bin_size=self.bin_size, bits=self.bits)

    def decode(self, buf, out=None):
        payload = ensure_contiguous_ndarray(buf)
        if out is None:
            return decompress(payload)
        target = ensure_contiguous_ndarray(out)
        if target.dtype != np.float32:
            target = target.view(np.float32)  # numcodecs may hand over a raw byte buffer
        # decompress checks the size itself ("out has N elements, the payload holds M"): no second
        # parse and checksum of the payload here.
        decompress(payload, out=target.reshape(-1))
        return out

    def __repr__(self) -> str:
        return f"AdaCompCodec(bin_size={self.bin_size}, bits={self.bits})"


register_codec(AdaCompCodec)
