import numpy as np
import pytest

numcodecs = pytest.importorskip("numcodecs")

import adlcodec  # noqa: E402
from adlcodec.codec import AdaCompCodec  # noqa: E402


def test_registered_and_configurable():
    codec = numcodecs.get_codec({"id": "adlcodec", "bin_size": 20, "bits": 8})
    assert isinstance(codec, AdaCompCodec) and codec is not None
    assert codec.get_config() == {"id": "adlcodec", "bin_size": 20, "bits": 8}
    assert numcodecs.get_codec(codec.get_config()) == codec
    assert AdaCompCodec.from_config({"bin_size": 20, "bits": 8}) == codec
    assert adlcodec.AdaCompCodec is AdaCompCodec


def test_entry_point_is_declared():
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="numcodecs.codecs")}
    assert names.get("adlcodec") == "adlcodec.codec:AdaCompCodec"


@pytest.mark.parametrize("bits", [1, 8, 32])
def test_encode_decode_matches_compress_with_zero_residual(bits):
    data = np.random.default_rng(3).standard_normal((50, 40)).astype(np.float32)
    codec = AdaCompCodec(bin_size=50, bits=bits)
    encoded = codec.encode(data)
    assert bytes(encoded) == adlcodec.compress(data, np.zeros_like(data), bin_size=50, bits=bits).tobytes()
    assert bytes(codec.encode(data)) == bytes(encoded), "each call starts from a zero residual"
    decoded = codec.decode(encoded)
    np.testing.assert_array_equal(decoded, adlcodec.decompress(encoded))
    out = np.empty((50, 40), np.float32)
    assert codec.decode(bytes(encoded), out=out) is out
    np.testing.assert_array_equal(out, decoded)
    raw = bytearray(50 * 40 * 4)
    codec.decode(encoded, out=raw)
    np.testing.assert_array_equal(np.frombuffer(raw, np.float32).reshape(50, 40), decoded)


def test_errors():
    codec = AdaCompCodec()
    with pytest.raises(TypeError, match="float32"):
        codec.encode(np.ones(10, np.float64))
    with pytest.raises(adlcodec.FormatError):
        codec.decode(b"not a payload at all, not at all")
    encoded = codec.encode(np.ones(10, np.float32))
    with pytest.raises(ValueError, match="out has 11 elements, the payload holds 10"):
        codec.decode(encoded, out=np.empty(11, np.float32))
    with pytest.raises(ValueError):
        AdaCompCodec(bits=7)


# --- numcodecs' own helpers, where they apply to a lossy codec ------------------------------------------
# bin_size=1 with 32 bits sends every nonzero element exactly (a lossless configuration), 16 bits
# rounds each to binary16: the helpers that compare with the input apply to those two.

import struct  # noqa: E402
from pathlib import Path  # noqa: E402

from numcodecs.tests import common  # noqa: E402

LOSSLESS = AdaCompCodec(bin_size=1, bits=32)
HALF = AdaCompCodec(bin_size=1, bits=16)


def layouts():
    a = np.random.default_rng(7).standard_normal((20, 50)).astype(np.float32)
    b = np.random.default_rng(8).standard_normal((6, 7, 8)).astype(np.float32)
    return {
        "c2d": a,
        "f2d": np.asfortranarray(a),
        "f3d": np.asfortranarray(b),
        "strided": a[:, ::3],
        "transposed": a.T,
        "1d": a[3],
        "0d": np.array(2.5, np.float32),
        "empty": np.zeros((0, 4), np.float32, order="F"),
    }


@pytest.mark.parametrize("name", list(layouts()))
def test_numcodecs_check_encode_decode(name):
    arr = layouts()[name]
    common.check_encode_decode(arr, LOSSLESS)
    common.check_encode_decode(arr, HALF, precision=2)
    common.check_encode_decode_array(arr, LOSSLESS)


def test_numcodecs_check_config_and_repr(monkeypatch):
    for codec in (LOSSLESS, AdaCompCodec(bin_size=50, bits=1), AdaCompCodec(bits=8, max_numel=1000)):
        common.check_config(codec)
    # check_repr evaluates the repr in the helpers' module, which knows numcodecs' own codecs only.
    monkeypatch.setattr(common, "AdaCompCodec", AdaCompCodec, raising=False)
    common.check_repr("AdaCompCodec(bin_size=50, bits=1)")
    common.check_repr("AdaCompCodec(bin_size=3, bits=16, max_numel=1000)")


def test_numcodecs_check_err_encode_object_buffer():
    common.check_err_encode_object_buffer(LOSSLESS)


def test_numcodecs_check_backwards_compatibility(monkeypatch):
    # The fixtures (arrays, configurations, payloads) are committed: the helper only writes missing ones.
    monkeypatch.chdir(Path(__file__).parent / "golden" / "numcodecs")
    arrays = [layouts()[name] for name in ("c2d", "f2d", "f3d", "1d", "0d")]
    for i, arr in enumerate(arrays):
        path = Path("fixture", "adlcodec", f"array.{i:02d}.npy")
        assert path.exists(), f"{path} is missing: the helper would write it instead of checking it"
        assert np.load(path).flags.f_contiguous == arr.flags.f_contiguous
    common.check_backwards_compatibility("adlcodec", arrays, [LOSSLESS, HALF], precision=[None, 2])


def test_fortran_order_round_trips_through_memory_order():
    arr = layouts()["f2d"]
    encoded = LOSSLESS.encode(arr)
    assert adlcodec.inspect(encoded)["shape"] == (1000,)  # the buffer, in memory order
    assert bytes(encoded) == bytes(LOSSLESS.encode(arr.tobytes(order="A")))
    # zarr format 2 reads a chunk back like this:
    back = np.asarray(LOSSLESS.decode(encoded)).reshape(-1, order="A").reshape(arr.shape, order="F")
    np.testing.assert_array_equal(back, arr)
    # Lossy: the bins run along memory order, as in the buffer.
    lossy = AdaCompCodec(bin_size=20, bits=2)
    flat = np.ascontiguousarray(arr.ravel(order="F"))
    np.testing.assert_array_equal(lossy.decode(lossy.encode(arr)), adlcodec.decompress(
        adlcodec.compress(flat, np.zeros_like(flat), bin_size=20, bits=2)))


def test_decode_into_out_of_the_payload_shape_is_logical_in_any_memory_order():
    a = layouts()["c2d"]
    encoded = LOSSLESS.encode(a)  # shape (20, 50)
    for out in (np.empty((20, 50), np.float32, order="F"), np.empty((20, 100), np.float32)[:, ::2]):
        assert LOSSLESS.decode(encoded, out=out) is out
        np.testing.assert_array_equal(out, a)
    # Another shape is a buffer, filled in its memory order (numcodecs' convention).
    out = np.empty((50, 20), np.float32, order="F")
    LOSSLESS.decode(encoded, out=out)
    np.testing.assert_array_equal(out.ravel(order="F"), a.ravel())


def test_zero_d_keeps_its_shape():
    codec = AdaCompCodec(bin_size=1, bits=32)
    decoded = codec.decode(codec.encode(np.array(-3.25, np.float32)))
    assert decoded.shape == () and decoded == np.float32(-3.25)
    assert adlcodec.inspect(codec.encode(np.array(1.0, np.float32)))["shape"] == ()


def test_max_numel_bounds_what_decode_allocates():
    # 36 honest bytes for 2^32-1 zeros (16 GiB of float32).
    body = b"ADLC" + bytes([2, 1, 1, 1]) + struct.pack("<IIfI", 50, 0, 0.0, 0) + struct.pack("<Q", 2**32 - 1)
    payload = body + struct.pack("<I", adlcodec._core.crc32c(body))
    assert len(payload) == 36
    codec = numcodecs.get_codec({"id": "adlcodec", "bin_size": 50, "bits": 1, "max_numel": 1 << 20})
    assert codec.max_numel == 1 << 20
    with pytest.raises(adlcodec.FormatError, match="4294967295 elements exceed max_numel=1048576"):
        codec.decode(payload)
    small = codec.encode(np.ones(1 << 20, np.float32))
    assert codec.decode(small).shape == (1 << 20,)
    assert AdaCompCodec().get_config() == {"id": "adlcodec", "bin_size": 50, "bits": 1}
    for bad, error in ((-1, ValueError), ("5", TypeError), (2.0, TypeError)):
        with pytest.raises(error, match="max_numel"):
            AdaCompCodec(max_numel=bad)


def test_raw_buffers_are_native_float32():
    a = np.arange(12, dtype=np.float32)
    for buf in (a.tobytes(), bytearray(a.tobytes()), a.view(np.uint8), a.view(np.int8)):
        np.testing.assert_array_equal(LOSSLESS.decode(LOSSLESS.encode(buf)), a)
    with pytest.raises(ValueError, match="13 bytes"):
        LOSSLESS.encode(b"x" * 13)
    with pytest.raises(TypeError, match="float32"):
        LOSSLESS.encode(np.arange(3, dtype=np.int32))


def test_raw_bytes_at_an_odd_offset_are_copied_not_rejected():
    a = np.arange(12, dtype=np.float32)
    message = bytearray(1) + bytearray(a.tobytes())
    at_odd = memoryview(message)[1:]
    np.testing.assert_array_equal(LOSSLESS.decode(LOSSLESS.encode(at_odd)), a)
