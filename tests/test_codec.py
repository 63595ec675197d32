"""Behaviour of compress/decompress against the independent numpy model in reference.py."""

import threading
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import adlcodec
from examples_budget import examples
from reference import reference_step

ALL_BITS = (1, 2, 4, 8, 16, 32)


def step(grad, residual, bin_size, bits):
    before = residual.copy()
    payload = adlcodec.compress(grad, residual, bin_size=bin_size, bits=bits)
    ref = reference_step(grad, before, bin_size, bits)
    return payload, ref


@pytest.mark.parametrize("bits", ALL_BITS)
@pytest.mark.parametrize("n,bin_size", [(1, 50), (7, 3), (1000, 50), (1001, 50), (5000, 500), (4097, 1), (333, 1000)])
def test_matches_reference_model(kernel, rng, n, bin_size, bits):
    grad = rng.standard_normal(n, dtype=np.float32)
    residual = rng.standard_normal(n, dtype=np.float32) * np.float32(0.5)
    payload, ref = step(grad, residual, bin_size, bits)
    info = adlcodec.inspect(payload)
    assert info["selected"] == ref.selected.size > 0
    assert np.float32(info["scale"]) == (ref.scale if bits <= 8 else 0)
    np.testing.assert_array_equal(residual, ref.residual)
    np.testing.assert_array_equal(adlcodec.decompress(payload), ref.dense)


@pytest.mark.parametrize("bits", ALL_BITS)
def test_error_feedback_loses_nothing(kernel, rng, bits):
    n = 20000
    residual = np.zeros(n, np.float32)
    sent_total = np.zeros(n, np.float64)
    grad_total = np.zeros(n, np.float64)
    for _ in range(10):
        grad = rng.standard_normal(n, dtype=np.float32)
        before = residual.copy()
        dense = adlcodec.decompress(adlcodec.compress(grad, residual, bin_size=50, bits=bits))
        G = before + grad
        # Per step: sent + r_new == r_old + g, to the rounding of one float32 subtraction.
        np.testing.assert_allclose(dense.astype(np.float64) + residual, G, rtol=0, atol=float(np.abs(G).max()) * 2**-23)
        sent_total += dense
        grad_total += grad
    # Over many steps everything not sent is still in the residual.
    np.testing.assert_allclose(sent_total + residual, grad_total, rtol=0, atol=1e-3)


def test_selection_rule_by_hand():
    grad = np.array([0.5, -2.0, 0.25, 4.0, 0.0, 0.0], np.float32)
    residual = np.array([0, 0, 0, 0, 1.0, -1.0], np.float32)
    payload = adlcodec.compress(grad, residual, bin_size=2, bits=32)
    # bin 0: max|G| = 2, |H| = (1, 4) -> index 1; bin 1: max 4, |H| = (0.5, 8) -> index 3;
    # bin 2: G = (1, -1), H = G: both reach the max 1.
    np.testing.assert_array_equal(adlcodec.decompress(payload), [0, -2, 0, 4, 1, -1])
    np.testing.assert_array_equal(residual, [0.5, 0, 0.25, 0, 0, 0])


def test_zero_elements_are_never_selected(kernel):
    grad = np.zeros(1000, np.float32)
    residual = np.zeros(1000, np.float32)
    info = adlcodec.inspect(adlcodec.compress(grad, residual))
    assert info["selected"] == 0 and info["scale"] == 0
    assert not residual.any()


@pytest.mark.parametrize("bits", (2, 4, 8))
def test_quantizer_error_bound(kernel, rng, bits):
    grad = rng.standard_normal(50000, dtype=np.float32) * np.float32(3)
    residual = np.zeros_like(grad)
    G = residual + grad
    payload = adlcodec.compress(grad, residual, bin_size=50, bits=bits)
    s = np.float32(adlcodec.inspect(payload)["scale"])
    dense = adlcodec.decompress(payload)
    sel = dense != 0
    error = np.abs(dense[sel].astype(np.float64) - G[sel])
    assert error.max() <= s / 2 ** (bits - 1) * (1 + 1e-6)
    assert np.all(np.sign(dense[sel]) == np.sign(G[sel]))
    levels = np.unique(np.abs(dense[sel]))
    assert levels.size <= 2 ** (bits - 1) and np.float32(levels.max()) == s


def test_one_bit_scale_is_mean_of_selected(rng):
    grad = rng.standard_normal(10000, dtype=np.float32)
    residual = np.zeros_like(grad)
    payload = adlcodec.compress(grad, residual, bin_size=50, bits=1)
    dense = adlcodec.decompress(payload)
    sel = dense != 0
    assert np.float32(adlcodec.inspect(payload)["scale"]) == pytest.approx(np.abs(grad[sel]).mean(), rel=1e-6)
    assert set(np.abs(dense[sel]).tolist()) == {adlcodec.inspect(payload)["scale"]}


def test_half_saturates_instead_of_overflowing():
    grad = np.array([1e6, -7e4, 1.0], np.float32)
    residual = np.zeros(3, np.float32)
    dense = adlcodec.decompress(adlcodec.compress(grad, residual, bin_size=1, bits=16))
    np.testing.assert_array_equal(dense, [65504, -65504, 1])
    np.testing.assert_array_equal(residual, [1e6 - 65504, -7e4 + 65504, 0])


@pytest.mark.parametrize(
    "shape", [(), (1,), (0,), (3, 0, 2), (2, 3, 4), (7, 1, 1, 5), (1,) * 32, (101,)]
)
def test_shapes_round_trip(kernel, rng, shape):
    grad = rng.standard_normal(shape, dtype=np.float32) if shape else np.array(1.5, np.float32)
    residual = np.zeros_like(grad)
    payload = adlcodec.compress(grad, residual, bin_size=4, bits=32)
    dense = adlcodec.decompress(payload)
    assert dense.shape == grad.shape and dense.dtype == np.float32
    np.testing.assert_array_equal(dense + residual, grad)
    info = adlcodec.inspect(payload)
    assert info["shape"] == shape and info["numel"] == grad.size


def test_out_and_accumulate(rng):
    grad = rng.standard_normal((40, 30), dtype=np.float32)
    payload = adlcodec.compress(grad, np.zeros_like(grad), bits=8)
    dense = adlcodec.decompress(payload)
    out = np.full(1200, 7.0, np.float32)
    assert adlcodec.decompress(payload, out) is out
    np.testing.assert_array_equal(out, dense.reshape(-1))
    out = np.full((40, 30), 1.0, np.float32)
    adlcodec.decompress(payload, out, accumulate=True)
    adlcodec.decompress(payload, out, accumulate=True)
    np.testing.assert_array_equal(out, np.float32(1) + dense + dense)


@pytest.mark.parametrize("bits", [1, 32])
def test_large_outputs_decode_like_small_ones(bits):
    """A 2^24-element output, aligned or not, holds exactly what accumulating onto zeros gives, whatever
    `out` held before."""
    n = 1 << 24
    rng = np.random.default_rng(3)
    grad = np.zeros(n, np.float32)
    hot = rng.choice(n, 20000, replace=False)
    grad[hot] = rng.standard_normal(hot.size, dtype=np.float32)
    grad[-3:] = [1.0, -2.0, 3.0]  # the last chunk, and the very last element
    payload = adlcodec.compress(grad, np.zeros(n, np.float32), bin_size=50, bits=bits)
    streamed = np.full(n, np.nan, np.float32)
    assert streamed.ctypes.data % 16 == 0
    adlcodec.decompress(payload, streamed)
    unaligned = np.full(n + 1, np.nan, np.float32)[1:]
    adlcodec.decompress(payload, unaligned)
    accumulated = np.zeros(n, np.float32)
    adlcodec.decompress(payload, accumulated, accumulate=True)
    assert streamed.tobytes() == unaligned.tobytes() == accumulated.tobytes()
    assert np.count_nonzero(streamed) == adlcodec.inspect(payload)["selected"] > 0


def test_torch_tensors_are_used_without_copies(rng):
    torch = pytest.importorskip("torch")
    grad = torch.randn(3000)
    residual = torch.zeros(3000)
    address = residual.data_ptr()
    expected_residual = np.zeros(3000, np.float32)
    expected = adlcodec.compress(grad.numpy().copy(), expected_residual, bits=4)
    payload = adlcodec.compress(grad, residual, bits=4)
    assert payload.tobytes() == expected.tobytes()
    assert residual.data_ptr() == address
    np.testing.assert_array_equal(residual.numpy(), expected_residual)
    out = torch.zeros(3000)
    assert adlcodec.decompress(torch.from_numpy(payload), out) is out
    np.testing.assert_array_equal(out.numpy(), adlcodec.decompress(payload))
    with pytest.raises(TypeError, match="float32"):
        adlcodec.compress(grad.double(), residual)
    with pytest.raises(ValueError, match="contiguous"):
        adlcodec.compress(torch.randn(100, 60).t(), torch.zeros(6000))


def test_numpy_inputs_are_not_copied(rng):
    grad = rng.standard_normal(100, dtype=np.float32)
    backing = np.zeros(200, np.float32)
    residual = backing[50:150]  # a view: updated in place means the backing array changes
    adlcodec.compress(grad, residual, bin_size=10, bits=32)
    assert backing[50:150].any() or not grad.any()
    np.testing.assert_array_equal(backing[:50], 0)
    np.testing.assert_array_equal(backing[150:], 0)


# --- bad arguments -------------------------------------------------------------------------------


def test_bad_arguments_raise_clear_errors():
    g = np.ones(10, np.float32)
    r = np.zeros(10, np.float32)
    with pytest.raises(TypeError, match="grad must be float32"):
        adlcodec.compress(g.astype(np.float64), r)
    with pytest.raises(TypeError, match="residual must be float32"):
        adlcodec.compress(g, r.astype(np.float16))
    with pytest.raises(TypeError, match="numpy array or a CPU torch tensor"):
        adlcodec.compress([1.0, 2.0], r)
    with pytest.raises(ValueError, match="11 elements"):
        adlcodec.compress(g, np.zeros(11, np.float32))
    with pytest.raises(ValueError, match="C-contiguous"):
        adlcodec.compress(np.ones(20, np.float32)[::2], r)
    with pytest.raises(ValueError, match="bin_size"):
        adlcodec.compress(g, r, bin_size=0)
    with pytest.raises(ValueError, match="bits must be one of"):
        adlcodec.compress(g, r, bits=3)
    with pytest.raises(TypeError, match="bits must be an int"):
        adlcodec.compress(g, r, bits=True)
    with pytest.raises(TypeError, match="bin_size must be an int"):
        adlcodec.compress(g, r, bin_size=2.5)
    with pytest.raises(ValueError, match="writeable"):
        r_ro = np.zeros(10, np.float32)
        r_ro.flags.writeable = False
        adlcodec.compress(g, r_ro)
    shared = np.ones(20, np.float32)
    with pytest.raises(ValueError, match="share memory"):
        adlcodec.compress(shared[:10], shared[5:15])
    with pytest.raises(TypeError, match="grad must be float32, got >f4"):
        adlcodec.compress(g.astype(">f4"), r)
    assert not r.any(), "a rejected call must not touch the residual"

    payload = adlcodec.compress(g, r)
    with pytest.raises(ValueError, match="out has 9 elements"):
        adlcodec.decompress(payload, np.zeros(9, np.float32))
    with pytest.raises(TypeError, match="out must be float32"):
        adlcodec.decompress(payload, np.zeros(10, np.float64))
    with pytest.raises(ValueError, match="accumulate=True needs an out"):
        adlcodec.decompress(payload, accumulate=True)
    with pytest.raises(TypeError, match="bytes-like"):
        adlcodec.decompress(12345)


@pytest.mark.parametrize("where", ["grad", "residual"])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_non_finite_input_is_rejected_and_residual_untouched(kernel, rng, where, bad):
    n = 5000
    grad = rng.standard_normal(n, dtype=np.float32)
    residual = rng.standard_normal(n, dtype=np.float32)
    target = grad if where == "grad" else residual
    target[[1234, 4321, 4999]] = bad
    before = residual.copy()
    with pytest.raises(ValueError, match=rf"{where} has 3 non-finite values \(first at index 1234\)"):
        adlcodec.compress(grad, residual)
    np.testing.assert_array_equal(residual, before)


@pytest.mark.parametrize("bits", [1, 2, 4, 8, 16, 32])
def test_residual_out_is_the_in_place_update_elsewhere(kernel, rng, bits):
    """residual_out receives exactly what the in-place call leaves in the residual, which stays as it was;
    residual_out=residual is the in-place call itself."""
    grad = rng.standard_normal((61, 53), dtype=np.float32)
    residual = rng.standard_normal((61, 53), dtype=np.float32)
    in_place = residual.copy()
    expected = adlcodec.compress(grad, in_place, bin_size=37, bits=bits)
    before = residual.copy()
    out = np.full(residual.size, np.nan, np.float32)  # another shape, same number of elements
    payload = adlcodec.compress(grad, residual, bin_size=37, bits=bits, residual_out=out)
    assert payload.tobytes() == expected.tobytes()
    assert residual.tobytes() == before.tobytes()
    assert out.tobytes() == in_place.tobytes()
    same = residual.copy()
    assert adlcodec.compress(grad, same, bin_size=37, bits=bits, residual_out=same).tobytes() == expected.tobytes()
    assert same.tobytes() == in_place.tobytes()


def test_residual_out_arguments_and_non_finite_input(rng):
    torch = pytest.importorskip("torch")
    grad = rng.standard_normal(300, dtype=np.float32)
    residual = np.zeros(300, np.float32)
    out = torch.full((300,), 7.0)
    adlcodec.compress(grad, residual, residual_out=out)  # a CPU tensor, written without a copy
    assert not (out.numpy() == 7.0).any() and not residual.any()
    with pytest.raises(ValueError, match="residual_out has 299 elements"):
        adlcodec.compress(grad, residual, residual_out=np.zeros(299, np.float32))
    with pytest.raises(TypeError, match="residual_out must be float32"):
        adlcodec.compress(grad, residual, residual_out=np.zeros(300, np.float64))
    with pytest.raises(ValueError, match="grad and residual_out must not share memory"):
        adlcodec.compress(grad, residual, residual_out=grad)
    shared = np.zeros(400, np.float32)
    with pytest.raises(ValueError, match="residual itself or share no memory"):
        adlcodec.compress(grad, shared[:300], residual_out=shared[50:350])
    with pytest.raises(ValueError, match="writeable"):
        frozen = np.zeros(300, np.float32)
        frozen.flags.writeable = False
        adlcodec.compress(grad, residual, residual_out=frozen)
    grad[17] = np.nan
    scratch = np.full(300, 3.0, np.float32)
    with pytest.raises(ValueError, match="grad has 1 non-finite value"):
        adlcodec.compress(grad, residual, residual_out=scratch)
    assert not residual.any()  # residual_out is scratch after a failure (the one-pass encode wrote it)


def test_overflow_of_sums_is_rejected(kernel):
    grad = np.full(100, 2e38, np.float32)
    residual = np.zeros(100, np.float32)
    grad[:10] = 1.0
    with pytest.raises(ValueError, match=r"overflows float32 at 90 elements \(first at index 10\)"):
        adlcodec.compress(grad, residual)
    assert not residual.any()


def test_check_finite_off_is_memory_safe_and_decoder_rejects_result(kernel):
    grad = np.ones(100, np.float32)
    grad[3] = np.inf
    residual = np.zeros(100, np.float32)
    payload = adlcodec.compress(grad, residual, bits=32, check_finite=False)
    with pytest.raises(adlcodec.FormatError, match="non-finite"):
        adlcodec.decompress(payload)


# --- properties ----------------------------------------------------------------------------------

finite_f32 = st.floats(float(np.float32(-1e30)), float(np.float32(1e30)), width=32)


@settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    data=hnp.arrays(np.float32, st.integers(0, 400), elements=finite_f32),
    bin_size=st.integers(1, 70),
    bits=st.sampled_from(ALL_BITS),
    kernel_name=st.sampled_from(adlcodec.available_kernels()),
)
def test_property_matches_reference(data, bin_size, bits, kernel_name):
    half = data.size // 2
    grad, residual = data[:half].copy(), data[half : 2 * half].copy()
    with adlcodec.use_kernel(kernel_name):
        payload, ref = step(grad, residual, bin_size, bits)
    np.testing.assert_array_equal(residual, ref.residual)
    np.testing.assert_array_equal(adlcodec.decompress(payload), ref.dense)


# --- the GIL -------------------------------------------------------------------------------------


def _runs_python_during(call):
    """True if this thread ran Python bytecode strictly inside `call`, which runs in another thread."""
    window = {}

    def worker():
        window["start"] = time.perf_counter()
        call()
        window["end"] = time.perf_counter()

    thread = threading.Thread(target=worker)
    stamps = []
    thread.start()
    while thread.is_alive():
        stamps.append(time.perf_counter())
    thread.join()
    return any(window["start"] < t < window["end"] for t in stamps)


def test_kernels_release_the_gil():
    n = 1 << 24
    grad = np.ones(n, np.float32)
    residual = np.zeros(n, np.float32)
    assert _runs_python_during(lambda: adlcodec.compress(grad, residual, bits=32))
    payload = adlcodec.compress(grad, residual, bits=32, bin_size=1)
    out = np.empty(n, np.float32)
    assert _runs_python_during(lambda: adlcodec.decompress(payload, out))


def test_shape_extent_beyond_the_format_is_rejected():
    empty_but_wide = np.zeros((0, 2**33), np.float32)
    with pytest.raises(ValueError, match="extent is larger than 2\\^32-1"):
        adlcodec.compress(empty_but_wide, np.zeros((0, 2**33), np.float32))


@pytest.mark.parametrize("bits", [1, 16])
@pytest.mark.parametrize("n,bin_size", [(0, 5), (5000, 7), (100000, 50), (70000, 3000)])
def test_check_finite_off_is_the_same_codec_on_finite_input(kernel, rng, n, bin_size, bits):
    grad = rng.standard_normal(n, dtype=np.float32)
    residual = rng.standard_normal(n, dtype=np.float32)
    checked, streamed = residual.copy(), residual.copy()
    a = adlcodec.compress(grad, checked, bin_size=bin_size, bits=bits)
    b = adlcodec.compress(grad, streamed, bin_size=bin_size, bits=bits, check_finite=False)
    assert a.tobytes() == b.tobytes()
    assert checked.tobytes() == streamed.tobytes()
