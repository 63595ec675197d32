"""A second, pure-Python decoder written from docs/FORMAT.md alone. Slow; used to check the spec is complete."""

from __future__ import annotations

import math
import struct

import numpy as np


class SpecError(ValueError):
    pass


def _crc32c_table() -> list[int]:
    table = []
    for i in range(256):
        c = i
        for _ in range(8):
            c = (c >> 1) ^ (0x82F63B78 if c & 1 else 0)
        table.append(c)
    return table


_TABLE = _crc32c_table()


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for b in data:
        crc = (crc >> 8) ^ _TABLE[(crc ^ b) & 0xFF]
    return crc ^ 0xFFFFFFFF


class Bits:
    def __init__(self, data: bytes):
        self.value = int.from_bytes(data, "little")
        self.nbits = 8 * len(data)
        self.pos = 0

    def read(self, width: int) -> int:
        if self.pos + width > self.nbits:
            raise SpecError("bit stream overrun")
        v = (self.value >> self.pos) & ((1 << width) - 1)
        self.pos += width
        return v


def _positions(data: bytes, count: int, prev: int, numel: int) -> tuple[list[int], int]:
    """One position stream (section 4) of `count` gaps after position `prev`."""
    stream = Bits(data)
    positions = []
    for j in range(count):
        if j % 128 == 0:
            rice = stream.read(5)
        ones = 0
        while ones < 24 and stream.read(1) == 1:
            ones += 1
        gap = stream.read(32) if ones == 24 else (ones << rice) | stream.read(rice)
        prev = prev + 1 + gap
        if prev >= numel:
            raise SpecError("position")
        positions.append(prev)
    if (stream.pos + 7) // 8 != len(data) or (stream.value >> stream.pos) != 0:
        raise SpecError("position padding")
    return positions, prev


def decode(payload: bytes, max_numel: int | None = None) -> tuple[tuple[int, ...], np.ndarray]:
    b = bytes(payload)
    if len(b) < 28 or b[:4] != b"ADLC" or b[4] not in (1, 2):
        raise SpecError("header")
    if crc32c(b[:-4]) != struct.unpack_from("<I", b, len(b) - 4)[0]:
        raise SpecError("crc")
    dtype, bits, ndim = b[5], b[6], b[7]
    bin_size, k, scale_u32, P = struct.unpack_from("<IIII", b, 8)
    if dtype != 1 or bits not in (1, 2, 4, 8, 16, 32) or ndim > 32 or bin_size == 0:
        raise SpecError("fields")
    if len(b) < 24 + 8 * ndim + 4:
        raise SpecError("truncated shape")
    shape = struct.unpack_from(f"<{ndim}Q", b, 24)
    numel = math.prod(shape)  # exact integers: extents up to 2^64 - 1 must not overflow
    if max_numel is not None and numel > max_numel:
        raise SpecError("larger than max_numel")
    if any(extent > 2**32 - 1 for extent in shape) or numel > 2**32 - 1 or k > numel or k > 8 * P or (k == 0) != (P == 0):
        raise SpecError("counts")
    V = (k * bits + 7) // 8
    header = 24 + 8 * ndim
    if len(b) != header + P + V + 4:
        raise SpecError("size")
    scale = struct.unpack("<f", struct.pack("<I", scale_u32))[0]
    if k > 0 and bits <= 8:
        if not (0 < scale_u32 < 0x7F800000):
            raise SpecError("scale")
    elif scale_u32 != 0:
        raise SpecError("scale")

    section = b[header : header + P]
    if b[4] == 1 or k == 0:
        positions, _ = _positions(section, k, -1, numel)
    else:  # version 2: two streams behind the first's byte count, split after ceil(chunks / 2) chunks
        if P < 4:
            raise SpecError("position split")
        (first_nbytes,) = struct.unpack_from("<I", section, 0)
        first_count = min(k, (math.ceil(k / 128) + 1) // 2 * 128)
        if first_nbytes > P - 4 or (k == first_count) != (P - 4 - first_nbytes == 0):
            raise SpecError("position split")
        positions, prev = _positions(section[4 : 4 + first_nbytes], first_count, -1, numel)
        rest, _ = _positions(section[4 + first_nbytes :], k - first_count, prev, numel)
        positions += rest

    vb = b[header + P : header + P + V]
    values = np.zeros(k, np.float32)
    if bits == 16:
        values = np.frombuffer(vb, "<f2").astype(np.float32)
    elif bits == 32:
        values = np.frombuffer(vb, "<f4").astype(np.float32)
    else:
        vs = Bits(vb)
        L = 2 ** (bits - 1)
        for j in range(k):
            code = vs.read(bits)
            negative = code >> (bits - 1)
            if bits == 1:
                magnitude = np.float32(scale)
            else:
                magnitude = np.float32(scale) * (np.float32((code & (L - 1)) + 1) / np.float32(L))
            values[j] = -magnitude if negative else magnitude
        if vs.value >> vs.pos:
            raise SpecError("value padding")
    if not np.all(np.isfinite(values)):
        raise SpecError("non-finite value")
    dense = np.zeros(numel, np.float32)
    dense[np.asarray(positions, dtype=np.int64)] = values
    return tuple(shape), dense
