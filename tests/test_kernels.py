"""Every kernel against the scalar reference in one run, and ADLCODEC_KERNEL forcing (as simdjson does)."""

import os
import subprocess
import sys

import numpy as np
import pytest

import adlcodec
from host_cpu import cpu_flags  # tests/host_cpu.py

CASES = [(n, bin_size) for n in (0, 1, 7, 8, 9, 63, 64, 65, 1000, 100003) for bin_size in (1, 3, 8, 50, 500, 4096)]


def all_kernel_outputs(grad, residual, bin_size, bits, check_finite=True):
    results = {}
    for name in adlcodec.available_kernels():
        r = residual.copy()
        with adlcodec.use_kernel(name):
            payload = adlcodec.compress(grad, r, bin_size=bin_size, bits=bits, check_finite=check_finite)
        results[name] = (payload.tobytes(), r.tobytes())
    return results


@pytest.mark.parametrize("n,bin_size", CASES)
@pytest.mark.parametrize("bits", [1, 8])
def test_kernels_byte_identical(n, bin_size, bits):
    rng = np.random.default_rng(n * 7919 + bin_size)
    grad = rng.standard_normal(n).astype(np.float32)
    residual = (rng.standard_normal(n) * rng.choice([0, 1e-3, 1, 1e3], n)).astype(np.float32)
    grad[rng.random(n) < 0.1] = 0  # exact zeros and ties with the bin maximum
    outputs = all_kernel_outputs(grad, residual, bin_size, bits)
    reference = outputs.pop("scalar")
    for name, result in outputs.items():
        assert result == reference, f"{name} differs from scalar"


def test_kernels_agree_even_on_non_finite_input_when_unchecked():
    rng = np.random.default_rng(5)
    grad = rng.standard_normal(10000).astype(np.float32)
    grad[rng.integers(0, 10000, 50)] = np.nan
    grad[rng.integers(0, 10000, 50)] = np.inf
    outputs = all_kernel_outputs(grad, np.zeros(10000, np.float32), 50, 32, check_finite=False)
    reference = outputs.pop("scalar")
    for name, result in outputs.items():
        assert result == reference, f"{name} differs from scalar on NaN/Inf"


def test_kernels_find_the_same_non_finite_values():
    grad = np.ones(100000, np.float32)
    grad[[70000, 2049, 99999]] = [np.nan, -np.inf, np.nan]
    messages = set()
    for name in adlcodec.available_kernels():
        with adlcodec.use_kernel(name), pytest.raises(ValueError) as err:
            adlcodec.compress(grad, np.zeros_like(grad))
        messages.add(str(err.value))
    assert messages == {"grad has 3 non-finite values (first at index 2049); the residual was left unchanged"}


def test_the_best_kernel_is_the_default():
    import platform

    machine = platform.machine().lower()
    expected = {"x86_64": "avx2", "amd64": "avx2", "aarch64": "neon", "arm64": "neon"}.get(machine, "scalar")
    if expected == "avx2":
        flags = cpu_flags()
        if not {"avx2", "bmi1", "bmi2"} <= flags:
            expected = "scalar"
        elif {"avx512f", "popcnt"} <= flags:
            expected = "avx512"
    assert adlcodec.available_kernels()[-1] == expected
    assert "scalar" in adlcodec.available_kernels()


def run_python(code, **env):
    return subprocess.run(
        [sys.executable, "-c", code], env={**os.environ, **env}, capture_output=True, text=True, timeout=120
    )


@pytest.mark.parametrize("name", adlcodec.available_kernels())
def test_env_var_forces_kernel(name):
    result = run_python("import adlcodec; print(adlcodec.kernel())", ADLCODEC_KERNEL=name)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == name


@pytest.mark.parametrize("name", ["neon" if "avx2" in adlcodec.available_kernels() else "avx2", "sse9"])
def test_env_var_with_unavailable_kernel_is_an_error(name):
    result = run_python("import adlcodec", ADLCODEC_KERNEL=name)
    assert result.returncode != 0
    assert f"kernel '{name}' is not available on this CPU/build" in result.stderr


def test_set_unknown_kernel_raises():
    with pytest.raises(ValueError, match="not available"):
        with adlcodec.use_kernel("nope"):
            pass
