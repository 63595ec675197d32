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
