"""Every SIMD kernel must produce the scalar kernel's payload bytes and residual bits exactly.

Runs on every target: on x86-64 it compares AVX2 and AVX-512 (where the CPU has it) with scalar, on aarch64 (natively or under
qemu-aarch64 with QEMU_CPU=cortex-a53, see scripts/aarch64.sh) NEON with scalar.
"""

from __future__ import annotations

import os
import platform

import numpy as np
import pytest

import adlcodec
from host_cpu import cpu_flags  # tests/host_cpu.py

SIMD_KERNELS = [name for name in adlcodec.available_kernels() if name != "scalar"]
EXPECTED_SIMD = {"aarch64": "neon", "arm64": "neon", "x86_64": "avx2", "AMD64": "avx2"}

# Sizes around the kernels' 8-element blocks and 1024-element scan blocks, and across the encoder's
# 65536-element chunks; bin sizes that do and do not divide them.
SIZES = [1, 7, 8, 9, 31, 64, 1000, 1024, 1031, 4096 + 3, 65536 + 77, 200_003]
# 17, 33, 64 and 65: the AVX-512 kernel holds bins of up to 16, 32, 48 and 64 elements in 1-4 registers and
# takes its two-loop path above 64.
BIN_SIZES = [1, 3, 8, 16, 17, 33, 50, 64, 65, 512, 100_000]
BITS = [1, 2, 4, 8, 16, 32]


def test_the_simd_kernel_of_this_architecture_is_built_and_available():
    machine = platform.machine()
    expected = EXPECTED_SIMD.get(machine)
    flags = cpu_flags()
    if expected == "avx2" and "avx2" not in flags:
        expected = None
    kernels = adlcodec.available_kernels()
    assert kernels[0] == "scalar"
    if expected is not None:
        assert expected in kernels, f"{machine} build lacks the {expected} kernel: {kernels}"
    if expected == "avx2" and "avx512f" in flags:
        assert "avx512" in kernels, f"this CPU has AVX-512 but the build lacks its kernel: {kernels}"


def test_forced_kernel_is_the_active_one():
    forced = os.environ.get("ADLCODEC_KERNEL")
    if forced:
        assert adlcodec.kernel() == forced
    else:
        assert adlcodec.kernel() == adlcodec.available_kernels()[-1]


def test_use_kernel_switches_and_restores():
    before = adlcodec.kernel()
    for name in adlcodec.available_kernels():
        with adlcodec.use_kernel(name):
            assert adlcodec.kernel() == name
        assert adlcodec.kernel() == before


def _gradient(rng: np.random.Generator, n: int, flavour: str) -> tuple[np.ndarray, np.ndarray]:
    if flavour == "normal":
        grad = rng.standard_normal(n).astype(np.float32)
        residual = (rng.standard_normal(n) * 0.5).astype(np.float32)
    elif flavour == "sparse":
        # Many exact zeros (G == 0 must never be selected) and ties at the bin maximum.
        grad = rng.choice(np.array([0.0, 0.0, 0.0, 1.0, -1.0, 0.5], np.float32), n)
        residual = rng.choice(np.array([0.0, 0.0, -1.0, 0.25], np.float32), n)
    elif flavour == "wide":
        # Magnitudes from subnormal to near overflow of r + 2g, and signed zeros.
        exponents = rng.uniform(-44, 36, n)
        grad = (rng.choice([-1.0, 1.0], n) * 10.0**exponents).astype(np.float32)
        residual = (rng.choice([-1.0, 1.0, 0.0], n) * 10.0 ** rng.uniform(-44, 36, n)).astype(np.float32)
        residual[rng.random(n) < 0.05] = np.float32(-0.0)
    else:
        raise ValueError(flavour)
    return grad, residual


# How the residual update is written: in place after a read-only pass (the checked default), or in the
# selection pass itself (one pass: into residual_out, or in place unchecked).
MODES = ["in place", "residual_out", "unchecked"]


def _compress_with(kernel: str, grad, residual, mode="in place", **options):
    before = residual.copy()
    residual = residual.copy()
    with adlcodec.use_kernel(kernel):
        if mode == "residual_out":
            out = np.full(residual.size, np.nan, np.float32)
            payload = adlcodec.compress(grad, residual, residual_out=out, **options)
            assert residual.tobytes() == before.tobytes()
            residual = out
        else:
            if mode == "unchecked":
                options["check_finite"] = False
            payload = adlcodec.compress(grad, residual, **options)
    return payload.tobytes(), residual.view(np.uint32)


def _assert_same_as_scalar(kernel, grad, residual, mode="in place", **options):
    """The scalar kernel's checked in-place call is the reference for every kernel and mode."""
    want_payload, want_residual = _compress_with("scalar", grad, residual, **options)
    got_payload, got_residual = _compress_with(kernel, grad, residual, mode, **options)
    assert got_payload == want_payload
    np.testing.assert_array_equal(got_residual, want_residual)
    return want_payload


@pytest.fixture(params=SIMD_KERNELS or [pytest.param(None, marks=pytest.mark.skip("scalar-only build"))])
def simd_kernel(request):
    return request.param


@pytest.mark.parametrize("mode", MODES)
@pytest.mark.parametrize("n", SIZES)
@pytest.mark.parametrize("flavour", ["normal", "sparse", "wide"])
def test_simd_kernel_matches_scalar_bytes(simd_kernel, n, flavour, mode):
    rng = np.random.default_rng([n, len(flavour)])
    grad, residual = _gradient(rng, n, flavour)
    for bin_size in BIN_SIZES:
        bits = BITS[(n + bin_size) % len(BITS)]
        options = dict(bin_size=bin_size, bits=bits)
        payload = _assert_same_as_scalar(simd_kernel, grad, residual, mode, **options)
        # The payload must carry a selection, or the comparison would hold vacuously.
        if n >= bin_size and flavour != "sparse":
            assert adlcodec.inspect(payload)["selected"] > 0


@pytest.mark.parametrize("bits", BITS)
def test_simd_kernel_matches_scalar_over_error_feedback_steps(simd_kernel, bits):
    rng = np.random.default_rng(bits)
    n = 10_007
    residual_scalar = np.zeros(n, np.float32)
    residual_simd = np.zeros(n, np.float32)
    for _ in range(5):
        grad = rng.standard_normal(n).astype(np.float32)
        with adlcodec.use_kernel("scalar"):
            want = adlcodec.compress(grad, residual_scalar, bin_size=50, bits=bits)
        with adlcodec.use_kernel(simd_kernel):
            got = adlcodec.compress(grad, residual_simd, bin_size=50, bits=bits)
        assert got.tobytes() == want.tobytes()
        np.testing.assert_array_equal(residual_simd.view(np.uint32), residual_scalar.view(np.uint32))


def test_simd_kernel_selects_ties_at_the_bin_maximum_and_never_zero(simd_kernel):
    # Bins of 8 with max |G| = 1 at lanes 2 and 5 (a tie); lane 7 has G = 0.5, so |H| = |G + g| = 1
    # reaches the maximum too; G = 0 lanes are never sent, even in the all-zero tail bin.
    grad = np.array([0, 0, 1, 0.25, 0, -1, 0, 0.5] * 3 + [0.0] * 5, np.float32)
    residual = np.zeros_like(grad)
    payload = _assert_same_as_scalar(simd_kernel, grad, residual, bin_size=8, bits=32)
    selected = adlcodec.inspect(payload)["selected"]
    assert selected == 9


@pytest.mark.parametrize("where", [0, 5, 1023, 1024, 3000])
@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf, "overflow"])
def test_simd_kernel_finds_the_same_first_non_finite(simd_kernel, where, bad):
    n = 4099
    grad = np.ones(n, np.float32)
    residual = np.zeros(n, np.float32)
    # finite, but r + 2g overflows float32
    value = np.float32(2.0e38) if bad == "overflow" else bad
    grad[where] = value
    grad[-1] = value  # a second one: the message must count both and name the first
    messages = []
    for kernel in ("scalar", simd_kernel):
        r = residual.copy()
        with adlcodec.use_kernel(kernel), pytest.raises(ValueError) as caught:
            adlcodec.compress(grad, r, bin_size=50, bits=1)
        assert not r.any(), "the residual must be left unchanged"
        messages.append(str(caught.value))
    assert messages[0] == messages[1]
    assert f"2 non-finite values (first at index {where})" in messages[0] or (
        bad == "overflow" and f"overflows float32 at 2 elements (first at index {where})" in messages[0]
    ), messages[0]


@pytest.mark.parametrize("mode", MODES)
def test_every_kernel_writes_the_scalar_update_in_each_mode(mode):
    """The scalar kernel's own one-pass variant too: every mode of every kernel against the checked
    in-place scalar call, on bins whose tails end inside SIMD vectors."""
    rng = np.random.default_rng(7)
    grad, residual = _gradient(rng, 4099, "normal")
    for kernel in adlcodec.available_kernels():
        for bin_size in (1, 3, 5, 50, 4099):
            _assert_same_as_scalar(kernel, grad, residual, mode, bin_size=bin_size, bits=8)


@pytest.mark.parametrize("out_of_place", [False, True])
def test_unchecked_non_finite_inputs_give_the_scalar_bytes(simd_kernel, out_of_place):
    """check_finite=False: selection is defined for NaN and infinities too, and every kernel agrees, on
    the payload byte for byte and on the residual bit for bit except for the payload bits of a NaN made
    from two NaNs (which one r + g propagates is the compiler's and the hardware's choice)."""
    rng = np.random.default_rng(11)
    grad, residual = _gradient(rng, 3001, "normal")
    grad[[5, 77, 1500, 3000]] = [np.nan, np.inf, -np.inf, np.nan]
    residual[[6, 78, 2999]] = [np.inf, np.nan, -np.inf]
    results = []
    for kernel in ("scalar", simd_kernel):
        r = residual.copy()
        out = np.empty_like(r) if out_of_place else r
        with adlcodec.use_kernel(kernel):
            payload = adlcodec.compress(grad, r, bin_size=50, bits=32, check_finite=False, residual_out=out)
        results.append((payload.tobytes(), out.view(np.uint32).copy()))
    assert results[0][0] == results[1][0]
    want, got = results[0][1], results[1][1]
    want_nan, got_nan = np.isnan(want.view(np.float32)), np.isnan(got.view(np.float32))
    np.testing.assert_array_equal(want_nan, got_nan)
    np.testing.assert_array_equal(want[~want_nan], got[~want_nan])
    assert want_nan[[5, 78, 3000]].all()  # a NaN in g or r stays NaN in the residual
