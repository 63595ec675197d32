import pickle

import numpy as np
import pytest

import adlcodec


def test_one_residual_per_key_created_on_first_use(rng):
    c = adlcodec.Compressor(bin_size=50, bits=8)
    a, b = rng.standard_normal((10, 10), dtype=np.float32), rng.standard_normal(77, dtype=np.float32)
    pa, pb = c.compress("a", a), c.compress(("layer", 2), b)
    assert sorted(map(str, c.keys())) == sorted(map(str, ["a", ("layer", 2)]))
    assert c.residual("a").shape == (10, 10)
    # Same as doing it by hand with a zero residual.
    r = np.zeros_like(a)
    assert pa.tobytes() == adlcodec.compress(a, r, bin_size=50, bits=8).tobytes()
    np.testing.assert_array_equal(c.residual("a"), r)
    assert adlcodec.inspect(pb)["numel"] == 77


def test_error_feedback_accumulates_across_calls(rng):
    c = adlcodec.Compressor(bin_size=20, bits=1)
    grads = [rng.standard_normal(400, dtype=np.float32) for _ in range(5)]
    sent = sum(adlcodec.decompress(c.compress("w", g)).astype(np.float64) for g in grads)
    np.testing.assert_allclose(sent + c.residual("w"), sum(g.astype(np.float64) for g in grads), atol=1e-4)


def test_state_dict_round_trip_continues_identically(rng):
    grads = [rng.standard_normal(500, dtype=np.float32) for _ in range(6)]
    straight = adlcodec.Compressor(bin_size=25, bits=4)
    expected = [straight.compress("k", g).tobytes() for g in grads]

    first = adlcodec.Compressor(bin_size=25, bits=4)
    got = [first.compress("k", g).tobytes() for g in grads[:3]]
    state = pickle.loads(pickle.dumps(first.state_dict()))
    first.compress("k", grads[3])  # the saved state must not see later updates
    resumed = adlcodec.Compressor()
    resumed.load_state_dict(state)
    assert (resumed.bin_size, resumed.bits) == (25, 4)
    got += [resumed.compress("k", g).tobytes() for g in grads[3:]]
    assert got == expected


def test_reset_and_mismatched_sizes(rng):
    c = adlcodec.Compressor()
    c.compress("w", rng.standard_normal(100, dtype=np.float32))
    with pytest.raises(ValueError, match="residual of 100 elements, grad has 50"):
        c.compress("w", rng.standard_normal(50, dtype=np.float32))
    c.reset()
    assert c.keys() == []
    c.compress("w", rng.standard_normal(50, dtype=np.float32))


def test_failed_compress_leaves_state_alone(rng):
    c = adlcodec.Compressor()
    grad = rng.standard_normal(100, dtype=np.float32)
    grad[5] = np.nan
    with pytest.raises(ValueError, match="non-finite"):
        c.compress("w", grad)
    assert c.keys() == []
    c.compress("w", np.ones(100, np.float32))
    before = c.residual("w").copy()
    with pytest.raises(ValueError):
        c.compress("w", grad)
    np.testing.assert_array_equal(c.residual("w"), before)


def test_bad_configuration_and_state():
    with pytest.raises(ValueError):
        adlcodec.Compressor(bin_size=0)
    with pytest.raises(ValueError):
        adlcodec.Compressor(bits=5)
    c = adlcodec.Compressor()
    with pytest.raises(TypeError):
        c.load_state_dict({"bin_size": 50})
    with pytest.raises(TypeError, match="float32"):
        c.load_state_dict({"bin_size": 50, "bits": 1, "residuals": {"w": np.zeros(3)}})
    with pytest.raises(ValueError, match="non-finite"):
        c.load_state_dict({"bin_size": 50, "bits": 1, "residuals": {"w": np.array([np.inf], np.float32)}})


def test_torch_gradients(rng):
    torch = pytest.importorskip("torch")
    c = adlcodec.Compressor(bits=2)
    g = torch.randn(3, 5)
    payload = c.compress("w", g)
    assert adlcodec.inspect(payload)["shape"] == (3, 5)
    assert isinstance(c.residual("w"), np.ndarray)
