"""The wire format: golden files, the spec's own example, a second decoder, and hostile payloads."""

import collections
import json
import pathlib
import struct

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import adlcodec
import spec_decoder
from examples_budget import examples

GOLDEN = pathlib.Path(__file__).parent / "golden"
# Every version's golden set: version 1 beside the inputs, each later one in v<N>/. All of them must
# decode forever; the encoder must reproduce the set of the version it writes.
GOLDEN_SETS = {1: GOLDEN, **{int(d.name[1:]): d for d in GOLDEN.glob("v[0-9]*") if d.is_dir()}}
CASES = [(version, case) for version, d in sorted(GOLDEN_SETS.items())
         for case in json.loads((d / "manifest.json").read_text())]
CASE_IDS = [f"v{version}-{case['name']}" for version, case in CASES]
CURRENT = [case for version, case in CASES if version == adlcodec.FORMAT_VERSION]


def test_there_is_a_golden_set_for_the_version_written_and_for_version_1():
    assert {1, adlcodec.FORMAT_VERSION} <= set(GOLDEN_SETS)
    assert len(CURRENT) >= 12


@pytest.mark.parametrize("version,case", CASES, ids=CASE_IDS)
def test_golden_payloads_decode_exactly(version, case):
    payload = (GOLDEN_SETS[version] / f"{case['name']}.adl").read_bytes()
    expected = np.load(GOLDEN / f"{case['name']}.npz")["decoded"]
    decoded = adlcodec.decompress(payload)
    assert decoded.shape == tuple(case["shape"])
    assert decoded.tobytes() == expected.tobytes()
    info = adlcodec.inspect(payload)
    assert (info["bits"], info["bin_size"], info["version"]) == (case["bits"], case["bin_size"], version)


@pytest.mark.parametrize("case", CURRENT, ids=[c["name"] for c in CURRENT])
def test_golden_inputs_encode_to_the_same_bytes(kernel, case):
    # Encoder stability: any change here is a format decision and needs a new golden set.
    data = np.load(GOLDEN / f"{case['name']}.npz")
    residual = data["residual_before"].copy()
    payload = adlcodec.compress(data["grad"], residual, bin_size=case["bin_size"], bits=case["bits"])
    assert payload.tobytes() == (GOLDEN_SETS[adlcodec.FORMAT_VERSION] / f"{case['name']}.adl").read_bytes()
    assert residual.tobytes() == data["residual_after"].tobytes()


@pytest.mark.parametrize("version,case", CASES, ids=CASE_IDS)
def test_spec_decoder_agrees_on_golden_files(version, case):
    payload = (GOLDEN_SETS[version] / f"{case['name']}.adl").read_bytes()
    shape, dense = spec_decoder.decode(payload)
    assert shape == tuple(case["shape"])
    assert dense.tobytes() == adlcodec.decompress(payload).reshape(-1).tobytes()


@pytest.mark.parametrize("case", [c for c in CURRENT if (GOLDEN / f"{c['name']}.adl").exists()],
                         ids=lambda c: c["name"])
def test_version_2_golden_payloads_are_version_1_with_the_section_split(case):
    """Joining a version-2 payload's two position streams (spec_decoder.to_version_1) gives back the
    version-1 golden bytes of the same input: nothing but the position section's layout changed."""
    v2 = (GOLDEN_SETS[2] / f"{case['name']}.adl").read_bytes()
    assert spec_decoder.to_version_1(v2) == (GOLDEN / f"{case['name']}.adl").read_bytes()


@settings(max_examples=examples(60), deadline=None)
@given(
    n=st.integers(0, 3000),
    bin_size=st.sampled_from([1, 2, 7, 50, 500]),
    bits=st.sampled_from([1, 2, 4, 8, 16, 32]),
    density=st.sampled_from([0.0, 0.01, 0.3, 1.0]),
    seed=st.integers(0, 2**32 - 1),
)
def test_spec_decoder_agrees_on_random_payloads(n, bin_size, bits, density, seed):
    rng = np.random.default_rng(seed)
    grad = (rng.standard_normal(n) * (rng.random(n) < density)).astype(np.float32)
    payload = adlcodec.compress(grad, np.zeros(n, np.float32), bin_size=bin_size, bits=bits).tobytes()
    shape, dense = spec_decoder.decode(payload)
    assert dense.tobytes() == adlcodec.decompress(payload).reshape(-1).tobytes()


def test_spec_example():
    payload = adlcodec.compress(np.array([0.5, -2.0, 0.25, 4.0], np.float32), np.zeros(4, np.float32), bin_size=2, bits=1)
    assert payload.tobytes().hex(" ") == (
        "41 44 4c 43 02 01 01 01 02 00 00 00 02 00 00 00 00 00 40 40 06 00 00 00 "
        "04 00 00 00 00 00 00 00 02 00 00 00 a0 00 01 40 61 cd fa"
    )


def _spec_rice_parameter(chunk):
    """The reference encoder's k for a chunk of gaps (docs/FORMAT.md section 4)."""
    total, largest = sum(chunk), max(chunk)
    log2 = lambda x: x.bit_length() - 1 if x > 0 else 0
    a = log2(total // len(chunk))
    b = log2((total - largest) // (len(chunk) - 1)) if len(chunk) > 1 else a
    cost = lambda k: sum((g >> k) + 1 + k if (g >> k) < 24 else 24 + 32 for g in chunk)
    return min(range(max(0, min(a, b) - 1), min(31, max(a, b) + 1) + 1), key=lambda k: (cost(k), k))


def _spec_position_stream(gaps):
    """One stream of docs/FORMAT.md section 4 with the reference encoder's choice of k, one code at a
    time, LSB first."""
    out_bits = []

    def put(value, width):
        out_bits.extend((value >> i) & 1 for i in range(width))

    for start in range(0, len(gaps), 128):
        chunk = [int(g) for g in gaps[start:start + 128]]
        k = _spec_rice_parameter(chunk)
        put(k, 5)
        for g in chunk:
            if g >> k < 24:
                put((1 << (g >> k)) - 1, g >> k)
                put(0, 1)
                put(g & ((1 << k) - 1), k)
            else:
                put((1 << 24) - 1, 24)
                put(g, 32)
    out_bits.extend([0] * (-len(out_bits) % 8))
    return bytes(int("".join(map(str, reversed(out_bits[i:i + 8]))), 2) for i in range(0, len(out_bits), 8))


def _spec_position_section(positions):
    """A version-2 section: the first stream's byte count, then the first ceil(chunks / 2) chunks, then
    the rest, the gaps running on from one stream to the next."""
    gaps = np.diff(np.concatenate([[-1], np.asarray(positions, np.int64)])) - 1
    split = spec_decoder.first_stream_gaps(len(gaps))
    first, second = _spec_position_stream(gaps[:split]), _spec_position_stream(gaps[split:])
    return struct.pack("<I", len(first)) + first + second


@pytest.mark.parametrize("escape_gap", [100, 5000])  # just past the escape threshold at k = 1 or 2, and far
@pytest.mark.parametrize("escape_at", [0, 1, 2, 63, 126, 127, 128, 129, 200, 255, 256, 257, 299])
def test_position_section_matches_the_spec_around_escapes(kernel, escape_at, escape_gap):
    # Dense selections take small Rice parameters, whose codes the encoder stores two per put until a
    # pair holds an escape; one escape at each offset of a pair and of a chunk, in a run of small gaps.
    # With bin size 1 and a zero residual, exactly the nonzero gradient elements are selected.
    rng = np.random.default_rng(escape_at)
    gaps = rng.geometric(0.3, size=300) - 1  # three chunks: two in the first stream, one in the second
    gaps[escape_at] = escape_gap
    positions = np.cumsum(gaps + 1) - 1
    grad = np.zeros(int(positions[-1]) + 10, np.float32)
    grad[positions] = rng.choice([-1.0, 1.0], size=len(positions)).astype(np.float32)
    payload = adlcodec.compress(grad, np.zeros_like(grad), bin_size=1, bits=1).tobytes()
    info = adlcodec.inspect(payload)
    assert info["selected"] == len(positions)
    (positions_nbytes,) = struct.unpack_from("<I", payload, 20)
    start = 24 + 8  # fixed header, one dimension
    assert payload[start:start + positions_nbytes] == _spec_position_section(positions)
    _, dense = spec_decoder.decode(payload)
    assert np.flatnonzero(dense).tolist() == positions.tolist()


def _groups_of_eight(gaps):
    """How x86-64's AVX-512 coder stores the codes of chunks with k <= 4, eight at a time until a group
    holds an escape: "eight" in one put (at most 56 bits), else each four in one put or by pairs; and the
    lengths of the fours so stored."""
    kinds, four_lengths = collections.Counter(), set()
    for start in range(0, len(gaps), 128):
        chunk = [int(g) for g in gaps[start:start + 128]]
        k = _spec_rice_parameter(chunk)
        if k > 4:
            continue
        for group in range(0, len(chunk) - 7, 8):
            q = [g >> k for g in chunk[group:group + 8]]
            if max(q) >= 24:
                break
            lengths = [x + k + 1 for x in q]
            if sum(lengths) <= 56:
                kinds["eight"] += 1
            else:
                for half in ("first", "last"):
                    part = lengths[:4] if half == "first" else lengths[4:]
                    kinds[f"{half} four" if sum(part) <= 56 else f"{half} by pairs"] += 1
                    four_lengths.add(sum(part))
    return kinds, four_lengths


def test_position_section_matches_the_spec_in_groups_of_eight(kernel):
    # Chunks with k = 0 .. 4, whose codes x86-64's AVX-512 coder builds eight to a vector and stores in
    # as few puts of at most 56 bits as they fit: long codes (quotients up to 23, one short of an escape)
    # scattered among short ones make groups of every kind, and a chunk of 101 gaps leaves a tail of five.
    # The kinds are counted, so that the test covers what it says.
    rng = np.random.default_rng(11)
    chunks = []
    for c in range(20):
        k = c % 5
        gaps = rng.geometric(1 / (1.5 * 2**k), size=101 if c == 19 else 128) - 1
        long = rng.random(len(gaps)) < [0.02, 0.06, 0.12, 0.2][c // 5 % 4]
        gaps[long] = (rng.integers(4, 24, long.sum()) << k) + rng.integers(0, 2**k, long.sum())
        if k <= 2:  # four codes of over 14 bits side by side, in the first and in the last four of a group
            for half, group in enumerate(rng.choice(len(gaps) // 8, 2, replace=False)):
                gaps[8 * group + 4 * half:][:4] = (rng.integers(14, 24, 4) << k) + rng.integers(0, 2**k, 4)
        if c in (5, 10):  # fours of 55 to 60 bits, around the 56 a put takes, at several bit offsets
            groups = rng.choice(len(gaps) // 8, 6, replace=False)
            lanes = [8 * group + 4 * (j % 2) for j, group in enumerate(groups)]
            chosen = -1
            while chosen != (chosen := _spec_rice_parameter(gaps.tolist())):  # the k these gaps then take
                for j, lane in enumerate(lanes):
                    quotient_sum = 55 + j - 4 * (chosen + 1)
                    gaps[lane:lane + 4] = [(quotient_sum // 4 + (m < quotient_sum % 4)) << chosen for m in range(4)]
        chunks.append(gaps)
    gaps = np.concatenate(chunks)
    kinds, four_lengths = _groups_of_eight(gaps)
    assert set(kinds) == {"eight", "first four", "first by pairs", "last four", "last by pairs"}, kinds
    assert set(range(55, 61)) <= four_lengths
    positions = np.cumsum(gaps + 1) - 1
    grad = np.zeros(int(positions[-1]) + 3, np.float32)
    grad[positions] = rng.choice([-1.0, 1.0], size=len(positions)).astype(np.float32)
    payload = adlcodec.compress(grad, np.zeros_like(grad), bin_size=1, bits=1).tobytes()
    (positions_nbytes,) = struct.unpack_from("<I", payload, 20)
    assert payload[32:32 + positions_nbytes] == _spec_position_section(positions)
    _, dense = spec_decoder.decode(payload)
    assert np.flatnonzero(dense).tolist() == positions.tolist()


def test_crc32c_check_value():
    assert adlcodec._core.crc32c(b"123456789") == 0xE3069283 == spec_decoder.crc32c(b"123456789")
    data = np.random.default_rng(1).integers(0, 256, 1000, dtype=np.uint8).tobytes()
    for cut in (0, 1, 7, 8, 9, 15, 16, 17, 999, 1000):
        expected = spec_decoder.crc32c(data[:cut])
        assert adlcodec._core.crc32c(data[:cut]) == expected  # the CPU's instruction where it has one
        assert adlcodec._core.crc32c(data[:cut], portable=True) == expected
    # Long inputs run as three interleaved chains joined by the zero-append tables (blocks of 8192 and
    # 256 bytes): lengths around whole and partial triples of both.
    data = np.random.default_rng(2).integers(0, 256, 3 * 8192 * 2 + 3 * 256 + 100, dtype=np.uint8).tobytes()
    for cut in (767, 768, 769, 3 * 256 + 8, 24575, 24576, 24577, 24576 + 768 + 5, 2 * 24576, len(data)):
        expected = adlcodec._core.crc32c(data[:cut], portable=True)
        assert adlcodec._core.crc32c(data[:cut]) == expected, cut
    assert adlcodec._core.crc32c(data) == spec_decoder.crc32c(data)  # and the spec's own, once, for a long one


# --- hostile and corrupted payloads ----------------------------------------------------------------


def sample_payload(n=3000, bits=1, seed=0):
    grad = np.random.default_rng(seed).standard_normal(n).astype(np.float32)
    return adlcodec.compress(grad, np.zeros(n, np.float32), bin_size=50, bits=bits).tobytes()


def assert_rejected_untouched(payload, match=None):
    out = np.full(3000, 42.0, np.float32)
    with pytest.raises(adlcodec.FormatError, match=match):
        adlcodec.decompress(payload, out, accumulate=True)
    assert np.all(out == 42.0), "a rejected payload must not write anything"
    with pytest.raises(adlcodec.FormatError):
        adlcodec.decompress(payload)


@pytest.mark.parametrize("bits", [1, 8, 16, 32])
def test_every_single_bit_flip_is_rejected(bits):
    payload = bytearray(sample_payload(n=300, bits=bits))
    out = np.full(300, 42.0, np.float32)
    for bit in range(8 * len(payload)):
        payload[bit // 8] ^= 1 << (bit % 8)
        with pytest.raises(adlcodec.FormatError):
            adlcodec.decompress(bytes(payload), out, accumulate=True)
        payload[bit // 8] ^= 1 << (bit % 8)
    assert np.all(out == 42.0)
    adlcodec.decompress(bytes(payload))  # restored: valid again


def test_every_truncation_and_extension_is_rejected():
    payload = sample_payload()
    for cut in range(len(payload)):
        with pytest.raises(adlcodec.FormatError):
            adlcodec.decompress(payload[:cut])
    with pytest.raises(adlcodec.FormatError):
        adlcodec.decompress(payload + b"\0")


def test_max_numel_bounds_allocation_for_untrusted_payloads():
    huge = reseal(header(ndim=2, shape=(2**16, 2**15)))  # 28 bytes describing 2^31 zeros
    assert adlcodec.inspect(huge)["numel"] == 2**31
    with pytest.raises(adlcodec.FormatError, match="exceed max_numel"):
        adlcodec.decompress(huge, max_numel=10**6)
    small = sample_payload()
    assert adlcodec.decompress(small, max_numel=3000).size == 3000


def test_inspect_rejects_what_decompress_rejects():
    payload = bytearray(sample_payload())
    payload[-1] ^= 0x80
    with pytest.raises(adlcodec.FormatError, match="checksum"):
        adlcodec.inspect(bytes(payload))
    with pytest.raises(adlcodec.FormatError, match="magic"):
        adlcodec.inspect(b"PK\x03\x04" + bytes(40))


def reseal(body: bytes) -> bytes:
    """A forged payload: arbitrary header and sections, with a correct checksum."""
    return body + struct.pack("<I", adlcodec._core.crc32c(body))


def header(bits=1, ndim=1, bin_size=50, selected=0, scale=0.0, positions=0, shape=(3000,), version=1, dtype=1):
    return (
        b"ADLC"
        + bytes([version, dtype, bits, ndim])
        + struct.pack("<IIfI", bin_size, selected, scale, positions)
        + struct.pack(f"<{len(shape)}Q", *shape)
    )


@pytest.mark.parametrize(
    "body,match",
    [
        (header(version=0), "unsupported format version 0"),
        (header(version=3), "unsupported format version 3"),
        (header(dtype=3), "unknown dtype"),
        (header(bits=3), "invalid bit width"),
        (header(ndim=33, shape=(1,) * 33), "too many dimensions"),
        (header(bin_size=0), "bin size 0"),
        (header(ndim=2, shape=(2**32, 2**32)), "2\\^32-1"),
        (header(ndim=2, shape=(2**31, 4)), "2\\^32-1"),
        (header(ndim=2, shape=(0, 2**40)), "extent larger than 2\\^32-1"),
        (header(selected=3001, positions=400) + bytes(400 + 376), "selected count exceeds the number"),
        (header(selected=100, positions=1, scale=1.0) + bytes(1 + 13), "position section can hold"),
        (header(selected=0, positions=4) + bytes(4), "does not match the selected count"),
        (header(selected=2, positions=1, scale=1.0) + bytes(1), "size mismatch"),
        (header(selected=1, positions=1, scale=0.0) + bytes(2), "scale must be positive"),
        (header(selected=1, positions=1, scale=float("nan")) + bytes(2), "scale must be positive"),
        (header(selected=1, positions=1, scale=-1.0) + bytes(2), "scale must be positive"),
        (header(scale=1.0), "scale must be 0"),
        (header(bits=32, selected=1, positions=1, scale=2.0) + bytes(5), "scale must be 0"),
        # positions: k=0 then 24 ones -> escape with a raw gap far past the end
        (header(selected=1, positions=8, scale=1.0) + (((1 << 56) - 1) << 5).to_bytes(8, "little") + bytes(1), "outside the tensor"),
        # one gap of 0 needs 6 bits, but 2 bytes are declared: a whole unused byte
        (header(selected=1, positions=2, scale=1.0) + bytes(3), "trailing bytes"),
        # position padding bits set
        (header(selected=1, positions=1, scale=1.0) + b"\x80" + b"\x00", "padding is not zero"),
        # value padding bits set (one sign bit used, bit 7 set)
        (header(selected=1, positions=1, scale=1.0) + b"\x00" + b"\x80", "value section padding"),
        # k=31 with a 2-bit unary prefix runs past the section
        (header(selected=1, positions=1, scale=1.0) + b"\x1f" + b"\x00", "truncated"),
        (header(bits=16, selected=1, positions=1) + b"\x00" + struct.pack("<H", 0x7C00), "non-finite half"),
        (header(bits=32, selected=1, positions=1) + b"\x00" + struct.pack("<f", float("inf")), "non-finite value"),
    ],
)
def test_forged_payloads_with_valid_checksums_are_rejected(body, match):
    assert_rejected_untouched(reseal(body), match)


def _v2_section(first: bytes, second: bytes = b"") -> bytes:
    return struct.pack("<I", len(first)) + first + second


# One chunk of 128 zero gaps at k = 0: five zero bits, then 128 zero bits (17 bytes).
_ZERO_GAP_CHUNK = bytes(17)


@pytest.mark.parametrize(
    "body,match",
    [
        # fewer bytes than the first stream's byte count takes
        (header(version=2, selected=1, positions=3, scale=1.0) + bytes(3) + bytes(1), "truncated"),
        # the first stream's byte count reaches past the section
        (header(version=2, selected=1, positions=5, scale=1.0) + _v2_section(b"\x00")[:4].replace(b"\x01", b"\x02") + b"\x00" + bytes(1), "do not match"),
        # one chunk of gaps, yet a second stream
        (header(version=2, selected=1, positions=6, scale=1.0) + _v2_section(b"\x00", b"\x00") + bytes(1), "do not match"),
        # two chunks, yet no second stream
        (header(version=2, selected=129, positions=4 + 18, scale=1.0) + _v2_section(_ZERO_GAP_CHUNK + bytes(1)) + bytes(17), "do not match"),
        # the first stream ends early: a whole byte of it unused
        (header(version=2, selected=129, positions=4 + 18 + 1, scale=1.0) + _v2_section(_ZERO_GAP_CHUNK + bytes(1), b"\x00") + bytes(17), "trailing bytes"),
        # the second stream's position past the end: k = 0, then an escape with a raw gap of 2^32 - 1
        (header(version=2, selected=129, positions=4 + 17 + 8, scale=1.0)
         + _v2_section(_ZERO_GAP_CHUNK, (((1 << 56) - 1) << 5).to_bytes(8, "little")) + bytes(17), "outside the tensor"),
    ],
)
def test_forged_version_2_payloads_are_rejected(body, match):
    assert_rejected_untouched(reseal(body), match)


def test_forged_version_2_minimal_payloads_decode():
    one = reseal(header(version=2, selected=1, positions=5, scale=1.5, shape=(3,)) + _v2_section(b"\x00") + b"\x01")
    assert adlcodec.decompress(one).tolist() == [-1.5, 0.0, 0.0]
    # 129 zero gaps: positions 0 .. 128, the 129th in the second stream (k = 0, one zero bit)
    two = reseal(header(version=2, selected=129, positions=4 + 17 + 1, scale=1.0, shape=(200,))
                 + _v2_section(_ZERO_GAP_CHUNK, b"\x00") + bytes(17))
    assert np.flatnonzero(adlcodec.decompress(two)).tolist() == list(range(129))
    assert spec_decoder.decode(two)[1].tobytes() == adlcodec.decompress(two).tobytes()


def _sparse_gradient(rng, n, density, escapes):
    grad = np.where(rng.random(n) < density, rng.standard_normal(n), 0.0).astype(np.float32)  # no -0.0
    for start, length in escapes:  # runs of zeros: gaps that only an escape code holds
        grad[start:start + length] = 0
    return grad


@pytest.mark.parametrize("density", [0.002, 0.05, 0.3, 0.95])
def test_long_two_stream_sections_decode_every_position(kernel, density):
    """Both streams long, so most chunk pairs go through the interleaved fast path; with bin size 1 and a
    zero residual exactly the nonzero elements are selected, so the decoded positions are known."""
    rng = np.random.default_rng(int(density * 1000))
    n = 400_000
    grad = _sparse_gradient(rng, n, density, [(50_000, 30_000), (300_000, 40_000)])
    payload = adlcodec.compress(grad, np.zeros(n, np.float32), bin_size=1, bits=32)
    info = adlcodec.inspect(payload)
    assert info["version"] == 2 and info["selected"] == np.count_nonzero(grad)
    positions_nbytes, first_nbytes = struct.unpack_from("<I", payload.tobytes(), 20)[0], struct.unpack_from("<I", payload.tobytes(), 24 + 8)[0]
    assert min(first_nbytes, positions_nbytes - 4 - first_nbytes) > (1000 if density > 0.01 else 100)
    assert adlcodec.decompress(payload).tobytes() == grad.tobytes()
    out = np.ones(n, np.float32)
    adlcodec.decompress(payload, out, accumulate=True)
    assert out.tobytes() == (grad + np.float32(1)).tobytes()
    # The same section as one stream (version 1): the single-stream fast path over long sections.
    v1 = spec_decoder.to_version_1(payload.tobytes())
    assert adlcodec.inspect(v1)["version"] == 1
    assert adlcodec.decompress(v1).tobytes() == grad.tobytes()


@pytest.mark.parametrize("stream", [0, 1])
@pytest.mark.parametrize("at", [0.1, 0.5, 0.97])
def test_positions_past_a_shortened_shape_are_named(kernel, stream, at):
    """A forged shape cuts the tensor short inside the first or the second stream's positions, early
    (interleaved fast path), midway or near the end (careful path): the first position past it is named."""
    rng = np.random.default_rng(5)
    n = 400_000
    grad = _sparse_gradient(rng, n, 0.3, [(0, n // 2)])  # every position >= n/2 > K: any may end the shape
    payload = bytearray(adlcodec.compress(grad, np.zeros(n, np.float32), bin_size=1, bits=1).tobytes())
    positions = np.flatnonzero(grad)
    first_count = spec_decoder.first_stream_gaps(len(positions))
    k = first_count * stream + int(at * (first_count if stream == 0 else len(positions) - first_count))
    numel = int(positions[k])  # positions[k] is the first one at or past the new end
    payload[24:32] = struct.pack("<Q", numel)
    forged = bytes(payload[:-4])
    out = np.full(numel, 42.0, np.float32)
    with pytest.raises(adlcodec.FormatError, match=f"position {numel} is outside the tensor \\({numel} elements\\)"):
        adlcodec.decompress(reseal(forged), out, accumulate=True)
    assert np.all(out == 42.0)
    with pytest.raises(spec_decoder.SpecError):
        spec_decoder.decode(reseal(forged))


@pytest.mark.parametrize("bits, bad, largest_finite",
                         [(16, [0xFE01, 0xFC00, 0x7C01, 0x7C00, 0xFFFF], [0x7BFF, 0xFBFF]),
                          (32, [0xFFC01234, 0xFF800000, 0x7F800001, 0x7F800000, 0xFFFFFFFF], [0x7F7FFFFF, 0xFF7FFFFF])])
def test_non_finite_values_anywhere_in_a_long_section_are_rejected(rng, bits, bad, largest_finite):
    """The scan reads every field of the section with no early exit: a NaN or infinity of either sign
    at the first, last, middle or any other position is found, and the largest finite magnitudes of
    either sign still pass."""
    grad = rng.standard_normal(3000, dtype=np.float32)  # assert_rejected_untouched decodes into 3000
    payload = adlcodec.compress(grad, np.zeros_like(grad), bin_size=50, bits=bits)
    selected = adlcodec.inspect(payload)["selected"]
    width, fmt = (2, "<H") if bits == 16 else (4, "<I")
    start = payload.size - 4 - width * selected  # the value section ends right before the checksum
    body = payload[:-4].tobytes()
    for k, pattern in [(selected - 1, largest_finite[0]), (selected // 2, largest_finite[1])]:
        edited = body[: start + width * k] + struct.pack(fmt, pattern) + body[start + width * (k + 1):]
        assert np.isfinite(adlcodec.decompress(reseal(edited))).all()
    for k, pattern in zip([selected - 1, selected // 2, 17, 0, selected - 2], bad):
        edited = body[: start + width * k] + struct.pack(fmt, pattern) + body[start + width * (k + 1):]
        assert_rejected_untouched(reseal(edited), "non-finite")


@settings(max_examples=examples(300), deadline=None)
@given(data=st.binary(max_size=200))
def test_random_bytes_never_crash(data):
    for candidate in (data, reseal(data), reseal(b"ADLC\x01\x01" + data), reseal(b"ADLC\x02\x01" + data)):
        try:
            dense = adlcodec.decompress(candidate, max_numel=1 << 20)
        except adlcodec.FormatError:
            continue
        assert np.all(np.isfinite(dense))


@settings(max_examples=examples(200), deadline=None)
@given(seed=st.integers(0, 2**32 - 1), edits=st.lists(st.tuples(st.integers(0, 10**6), st.integers(0, 255)), min_size=1, max_size=4))
def test_resealed_mutations_decode_or_fail_cleanly(seed, edits):
    payload = bytearray(sample_payload(n=500, bits=[1, 4, 16][seed % 3], seed=seed))
    for offset, value in edits:
        payload[offset % (len(payload) - 4)] = value
    forged = reseal(bytes(payload[:-4]))
    try:
        ours = adlcodec.decompress(forged, max_numel=1 << 20)
    except adlcodec.FormatError:
        with pytest.raises(spec_decoder.SpecError):
            spec_decoder.decode(forged, max_numel=1 << 20)
        return
    # Whatever one decoder accepts, the other accepts with the same floats.
    shape, theirs = spec_decoder.decode(forged, max_numel=1 << 20)
    assert ours.reshape(-1).tobytes() == theirs.tobytes()


@settings(max_examples=examples(150), deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    edits=st.lists(st.tuples(st.floats(0, 1), st.integers(0, 255)), min_size=1, max_size=3),
    truncate=st.booleans(),
    version=st.sampled_from([1, 2]),
)
def test_long_position_sections_mutated_decode_like_the_spec(seed, edits, truncate, version):
    """Position sections of several kilobytes, in either format version: all but their last kilobyte or
    so go through the decoder's fast path (8-byte loads with no per-code bounds check), which short payloads never reach.
    Bytes of the position section are overwritten (optionally the section is cut short and the
    header's P follows), the payload resealed; both decoders must agree on rejection and on floats."""
    n = 40000
    rng = np.random.default_rng(seed)
    grad = (rng.standard_normal(n) * (rng.random(n) < 0.5)).astype(np.float32)
    payload = adlcodec.compress(grad, np.zeros(n, np.float32), bin_size=2, bits=[1, 8][seed % 2]).tobytes()
    payload = bytearray(spec_decoder.to_version_1(payload) if version == 1 else payload)
    start = 24 + 8
    nbytes = int.from_bytes(payload[20:24], "little")
    assert nbytes > 2000  # long enough for the fast path
    for where, value in edits:
        payload[start + min(int(where * nbytes), nbytes - 1)] = value
    if truncate:
        cut = int(rng.integers(1, 64))
        del payload[start + nbytes - cut : start + nbytes]
        payload[20:24] = (nbytes - cut).to_bytes(4, "little")
    forged = reseal(bytes(payload[:-4]))
    try:
        ours = adlcodec.decompress(forged)
    except adlcodec.FormatError:
        with pytest.raises(spec_decoder.SpecError):
            spec_decoder.decode(forged)
        return
    shape, theirs = spec_decoder.decode(forged)
    assert ours.reshape(-1).tobytes() == theirs.tobytes()
