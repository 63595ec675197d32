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
    """A bit stream (section 3): bit j is bit j % 8 of byte j // 8."""

    def __init__(self, data: bytes):
        self.bits = "".join(f"{byte:08b}"[::-1] for byte in data)  # LSB first: O(width) per read
        self.nbits = len(self.bits)
        self.pos = 0

    def read(self, width: int) -> int:
        if self.pos + width > self.nbits:
            raise SpecError("bit stream overrun")
        v = int(self.bits[self.pos : self.pos + width][::-1] or "0", 2)
        self.pos += width
        return v

    def rest_is_zero(self) -> bool:
        return "1" not in self.bits[self.pos :]


def first_stream_gaps(k: int) -> int:
    """Version 2: the gaps of a section of k in its first stream, K1 = min(K, 128 * ceil(C / 2))."""
    return min(k, (math.ceil(k / 128) + 1) // 2 * 128)


def _positions(data: bytes, count: int, prev: int, numel: int) -> tuple[list[int], int, int]:
    """One position stream (section 4) of `count` gaps after position `prev`: the positions, the last
    one, and the bits the codes take."""
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
    if (stream.pos + 7) // 8 != len(data) or not stream.rest_is_zero():
        raise SpecError("position padding")
    return positions, prev, stream.pos


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
    nonzero = math.prod(extent for extent in shape if extent)  # the rule holds wherever a 0 extent sits
    if any(extent > 2**32 - 1 for extent in shape) or nonzero > 2**32 - 1 or k > numel or k > 8 * P or (k == 0) != (P == 0):
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
        positions, _, _ = _positions(section, k, -1, numel)
    else:  # version 2: two streams behind the first's byte count, split after ceil(chunks / 2) chunks
        if P < 4:
            raise SpecError("position split")
        (first_nbytes,) = struct.unpack_from("<I", section, 0)
        first_count = first_stream_gaps(k)
        if first_nbytes > P - 4 or (k == first_count) != (P - 4 - first_nbytes == 0):
            raise SpecError("position split")
        positions, prev, _ = _positions(section[4 : 4 + first_nbytes], first_count, -1, numel)
        rest, _, _ = _positions(section[4 + first_nbytes :], k - first_count, prev, numel)
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
        if not vs.rest_is_zero():
            raise SpecError("value padding")
    if not np.all(np.isfinite(values)):
        raise SpecError("non-finite value")
    dense = np.zeros(numel, np.float32)
    dense[np.asarray(positions, dtype=np.int64)] = values
    return tuple(shape), dense


def to_version_1(payload: bytes) -> bytes:
    """The version-1 payload of the same tensor: a valid version-2 payload's two position streams joined
    into one (section 4 says how they differ), the version byte, P and the CRC rewritten."""
    b = bytes(payload)
    if b[4] != 2:
        raise SpecError("not a version-2 payload")
    ndim, (k,), (P,) = b[7], struct.unpack_from("<I", b, 12), struct.unpack_from("<I", b, 20)
    header = 24 + 8 * ndim
    section = b[header : header + P]
    joined = b""
    if k:
        (first_nbytes,) = struct.unpack_from("<I", section, 0)
        first, second = section[4 : 4 + first_nbytes], section[4 + first_nbytes :]
        first_count = first_stream_gaps(k)
        numel = math.prod(struct.unpack_from(f"<{ndim}Q", b, 24))
        _, prev, first_bits = _positions(first, first_count, -1, numel)
        _, _, second_bits = _positions(second, k - first_count, prev, numel)
        value = int.from_bytes(first, "little") | (int.from_bytes(second, "little") << first_bits)
        joined = value.to_bytes((first_bits + second_bits + 7) // 8, "little")
    body = bytearray(b[:header] + joined + b[header + P : -4])
    body[4] = 1
    body[20:24] = struct.pack("<I", len(joined))
    return bytes(body) + struct.pack("<I", crc32c(bytes(body)))
