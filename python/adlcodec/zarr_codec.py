"""A zarr (format 3) array-to-bytes codec: ``{"name": "adlcodec", "configuration": {"bin_size", "bits"}}``.

Installed with adlcodec, it is registered through the ``zarr.codecs`` entry point, so a process that
never imports adlcodec still reads arrays written with it. Like the numcodecs codec, each chunk
starts from a zero residual: a lossy sparsifying codec (``bin_size=1, bits=32`` keeps every value
exactly). It takes the place of zarr's ``bytes`` serializer::

    zarr.create_array(store, shape=..., chunks=..., dtype="float32",
                      serializer=AdaCompZarrCodec(bin_size=50, bits=8))

A chunk is encoded in its logical C order with its shape, whatever the array's memory ``order``; a
payload whose shape is not the chunk's is rejected before anything is allocated for it. Zarr format 2
arrays use the numcodecs codec (:class:`adlcodec.codec.AdaCompCodec`) as their compressor instead.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from zarr.abc.codec import ArrayBytesCodec
from zarr.core.common import parse_named_configuration
from zarr.registry import register_codec

from ._api import FormatError, check_bin_size, check_bits, compress, decompress, inspect

if TYPE_CHECKING:
    from typing import Any, Self

    from zarr.core.array_spec import ArraySpec
    from zarr.core.buffer import Buffer, NDBuffer

CODEC_NAME = "adlcodec"


@dataclass(frozen=True)
class AdaCompZarrCodec(ArrayBytesCodec):
    bin_size: int = 50
    bits: int = 1

    is_fixed_size = False

    def __init__(self, *, bin_size: int = 50, bits: int = 1) -> None:
        object.__setattr__(self, "bin_size", check_bin_size(bin_size))
        object.__setattr__(self, "bits", check_bits(bits))

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Self:
        _, configuration = parse_named_configuration(data, CODEC_NAME, require_configuration=False)
        configuration = dict(configuration or {})
        unknown = set(configuration) - {"bin_size", "bits"}
        if unknown:
            raise ValueError(f"unknown adlcodec configuration keys: {sorted(unknown)}")
        return cls(**configuration)

    def to_dict(self) -> dict[str, Any]:
        return {"name": CODEC_NAME, "configuration": {"bin_size": self.bin_size, "bits": self.bits}}

    def validate(self, *, shape, dtype, chunk_grid) -> None:
        native = dtype.to_native_dtype()
        if native != np.dtype(np.float32):
            raise ValueError(f"the adlcodec codec encodes native float32 arrays, got {native}")

    def compute_encoded_size(self, input_byte_length: int, chunk_spec: ArraySpec) -> int:
        raise NotImplementedError("adlcodec payloads are variable-sized")

    def _encode_sync(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        # ascontiguousarray: an F-ordered chunk (order="F") is copied to its logical C order, which is
        # what the payload's shape describes.
        array = np.ascontiguousarray(chunk_array.as_numpy_array())
        if array.dtype != np.float32:
            raise TypeError(f"the adlcodec codec encodes float32 chunks, got {array.dtype}")
        payload = compress(array, np.zeros(array.shape, np.float32), bin_size=self.bin_size, bits=self.bits)
        return chunk_spec.prototype.buffer.from_array_like(payload)

    def _decode_sync(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        payload = chunk_bytes.as_numpy_array()
        shape = tuple(inspect(payload)["shape"])
        if shape != tuple(chunk_spec.shape):
            raise FormatError(f"adlcodec payload holds shape {shape}, the array's chunks have {tuple(chunk_spec.shape)}")
        out = np.empty(shape, np.float32)
        decompress(payload, out=out)
        return chunk_spec.prototype.nd_buffer.from_numpy_array(out)

    # The native core releases the GIL: chunks on worker threads encode and decode in parallel.
    async def _encode_single(self, chunk_array: NDBuffer, chunk_spec: ArraySpec) -> Buffer | None:
        return await asyncio.to_thread(self._encode_sync, chunk_array, chunk_spec)

    async def _decode_single(self, chunk_bytes: Buffer, chunk_spec: ArraySpec) -> NDBuffer:
        return await asyncio.to_thread(self._decode_sync, chunk_bytes, chunk_spec)


# Also when the class is imported from a source tree that was never installed (no entry point).
register_codec(CODEC_NAME, AdaCompZarrCodec)
