"""numcodecs-compatible codec (``codec_id = "adlcodec"``).

Each ``encode`` starts from a zero residual, so it is a lossy sparsifying codec on its own: what it
drops is not carried to a next call. Use :class:`adlcodec.Compressor` for error feedback across calls.
With ``bin_size=1, bits=32`` every nonzero element is sent exactly, and the codec is lossless.

Memory order, as numcodecs codecs and zarr (format 2) expect it: a codec sees a buffer, and what
``decode`` returns, flattened in its own memory order (``reshape(-1, order="A")``), is what ``encode``
was given, flattened the same way. So:

- a C-contiguous float32 array is encoded with its shape (a 0-d array keeps shape ``()``), and
  ``decode`` returns a C-contiguous array of that shape;
- an F-contiguous array (not also C-contiguous) is encoded as its buffer: 1-d, in memory order. The
  client that wrote it knows its shape and order (zarr reshapes with the array's ``order``);
- another strided array is copied to C order first; raw bytes (``bytes``, ``bytearray``, 1-byte
  arrays) are read as native float32.

``decode(buf, out=...)``: an ``out`` array with exactly the payload's shape receives the decoded array
element by element, whatever its memory order; any other ``out`` is a buffer of the right size, which
receives the elements in its memory order.
"""

from __future__ import annotations

import numpy as np
from numcodecs.abc import Codec
from numcodecs.compat import ensure_contiguous_ndarray, ensure_ndarray_like
from numcodecs.registry import register_codec

from ._api import _as_int, check_bin_size, check_bits, compress, decompress, inspect


def _as_float32_buffer(buf) -> np.ndarray:
    """What encode compresses: a C-contiguous float32 array, in the buffer's memory order."""
    array = ensure_ndarray_like(buf)
    if array.dtype.itemsize == 1 and array.dtype.kind in "uiV":
        # Raw bytes: numcodecs hands codecs plain buffers (bytes, bytearray, array.array('b')).
        flat = np.ascontiguousarray(array).reshape(-1)
        if flat.nbytes % 4:
            raise ValueError(f"AdaCompCodec encodes float32 data; a buffer of {flat.nbytes} bytes is not a whole number")
        if flat.ctypes.data % 4:
            flat = flat.copy()  # bytes at an odd offset (a slice of a larger message): floats need 4
        return flat.view(np.float32)
    if array.dtype != np.float32:
        raise TypeError(f"AdaCompCodec encodes float32 data, got {array.dtype}")
    if array.flags.c_contiguous:
        return array
    if array.flags.f_contiguous:
        return array.reshape(-1, order="A")  # a view: the buffer in memory order
    return np.ascontiguousarray(array)


class AdaCompCodec(Codec):
    """Binned residual sparsification of float32 data (see the module docstring for memory order).

    ``max_numel`` bounds what ``decode`` allocates without ``out``: a payload of a few dozen bytes may
    describe a 16 GiB all-zero array. ``None`` (the default) allows any payload.
    """

    codec_id = "adlcodec"

    def __init__(self, bin_size: int = 50, bits: int = 1, max_numel: int | None = None):
        self.bin_size = check_bin_size(bin_size)
        self.bits = check_bits(bits)
        if max_numel is not None:
            max_numel = _as_int(max_numel, "max_numel")
            if max_numel < 0:
                raise ValueError(f"max_numel must be >= 0, got {max_numel}")
        self.max_numel = max_numel

    def get_config(self) -> dict:
        config = {"id": self.codec_id, "bin_size": self.bin_size, "bits": self.bits}
        if self.max_numel is not None:  # configurations written before max_numel stay the same
            config["max_numel"] = self.max_numel
        return config

    def encode(self, buf):
        array = _as_float32_buffer(buf)
        residual = np.zeros(array.shape, dtype=np.float32)
        return compress(array, residual, bin_size=self.bin_size, bits=self.bits)

    def decode(self, buf, out=None):
        payload = ensure_contiguous_ndarray(buf)
        if out is None:
            return decompress(payload, max_numel=self.max_numel)
        if isinstance(out, np.ndarray) and out.dtype == np.float32 and not out.flags.c_contiguous:
            if out.shape == tuple(inspect(payload)["shape"]):
                # The same shape in another memory order: element by element, through a temporary
                # (no larger than out).
                out[...] = decompress(payload)
                return out
        target = ensure_contiguous_ndarray(out)
        if target.dtype != np.float32:
            if target.nbytes % 4:
                raise ValueError(f"out has {target.nbytes} bytes, not a whole number of float32")
            target = target.view(np.float32)  # numcodecs may hand over a raw byte buffer
        # decompress checks the size itself ("out has N elements, the payload holds M").
        decompress(payload, out=target.reshape(-1))
        return out

    def __repr__(self) -> str:
        extra = "" if self.max_numel is None else f", max_numel={self.max_numel}"
        return f"AdaCompCodec(bin_size={self.bin_size}, bits={self.bits}{extra})"


register_codec(AdaCompCodec)
