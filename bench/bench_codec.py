"""Codec speed and size, each next to its baseline in the same run.

    pytest bench/bench_codec.py --benchmark-json=bench/results/codec.json
    python bench/report.py bench/results/codec.json > bench/results/codec.md

Groups put adlcodec beside: encode vs `np.add(r, g, out=r)` (the memory traffic floor: read g and r,
write r) and vs a torch-vectorized implementation of the same algorithm; decode vs `out.fill(0)`.
Everything runs on one thread (torch.set_num_threads(1)), as the codec does.
ADLCODEC_BENCH_SIZES (default "1M,16M") picks the tensor sizes.
"""

import os
import time

import numpy as np
import pytest

import adlcodec
import spec_decoder  # tests/spec_decoder.py
from reference import information_bound_bits  # tests/reference.py

SIZES = {"1M": 1 << 20, "16M": 1 << 24, "64K": 1 << 16}
SIZE_NAMES = os.environ.get("ADLCODEC_BENCH_SIZES", "1M,16M").split(",")
BINS = (50, 500)
BITS = (1, 8, 32)
STEADY_STATE_STEPS = 30


def steady_state(n, bin_size, bits, seed=0, steps=STEADY_STATE_STEPS):
    """A gradient and a residual as they look after some steps of training with N(0,1) gradients."""
    rng = np.random.default_rng(seed)
    residual = np.zeros(n, np.float32)
    for _ in range(steps):
        adlcodec.compress(rng.standard_normal(n, dtype=np.float32), residual, bin_size=bin_size, bits=bits)
    return rng.standard_normal(n, dtype=np.float32), residual


_cache = {}


def case(size_name, bin_size, bits):
    key = (size_name, bin_size, bits)
    if key not in _cache:
        _cache.clear()  # keep one 16M case alive at a time
        _cache[key] = steady_state(SIZES[size_name], bin_size, bits)
    return _cache[key]


params = pytest.mark.parametrize(
    "size_name,bin_size,bits",
    [(s, b, q) for s in SIZE_NAMES for b in BINS for q in BITS],
)


def group(kind, size_name, bin_size, bits):
    return f"{kind} n={size_name} bin={bin_size} bits={bits}"


def rounds_for(n):
    return 5 if n > (1 << 22) else 30


@params
@pytest.mark.parametrize(
    "impl", ["np.add"] + [f"adlcodec-{k}" for k in adlcodec.available_kernels()] + ["adlcodec-nocheck", "adlcodec-out", "torch"]
)
def test_encode(benchmark, impl, size_name, bin_size, bits):
    """Every round starts from the same steady-state residual (a fresh copy, not timed). "nocheck" is the
    in-place call with check_finite=False, "out" the checked call with residual_out, as the DDP hook makes it
    (into the same spare buffer every round): both write the residual in the selection pass."""
    grad, residual0 = case(size_name, bin_size, bits)
    benchmark.group = group("encode", size_name, bin_size, bits)
    benchmark.extra_info.update(n=grad.size, bin_size=bin_size, bits=bits, impl=impl)

    def run(target, convert=lambda r: r, **kwargs):
        return benchmark.pedantic(
            target, setup=lambda: ((convert(grad), convert(residual0.copy())), kwargs), rounds=rounds_for(grad.size)
        )

    if impl == "np.add":
        run(lambda g, r: np.add(r, g, out=r))
    elif impl == "torch":
        torch = pytest.importorskip("torch")
        torch.set_num_threads(1)
        from torch_reference import torch_adacomp_step

        run(torch_adacomp_step, convert=torch.from_numpy, bin_size=bin_size, bits=bits)
    else:
        name = impl.split("-", 1)[1]
        kernel = adlcodec.available_kernels()[-1] if name in ("nocheck", "out") else name
        options = dict(bin_size=bin_size, bits=bits, check_finite=name != "nocheck")
        if name == "out":
            options["residual_out"] = np.empty_like(residual0)
        with adlcodec.use_kernel(kernel):
            payload = run(adlcodec.compress, **options)
        info = adlcodec.inspect(payload)
        benchmark.extra_info.update(selected=info["selected"], density=info["selected"] / grad.size, nbytes=int(payload.size))


@params
@pytest.mark.parametrize("impl", ["fill", "adlcodec"])
def test_decode(benchmark, impl, size_name, bin_size, bits):
    grad, residual = case(size_name, bin_size, bits)
    payload = adlcodec.compress(grad, residual.copy(), bin_size=bin_size, bits=bits)
    out = np.empty(grad.size, np.float32)
    benchmark.group = group("decode", size_name, bin_size, bits)
    density = adlcodec.inspect(payload)["selected"] / grad.size
    benchmark.extra_info.update(n=grad.size, bin_size=bin_size, bits=bits, impl=impl, nbytes=int(payload.size), density=density)
    if impl == "fill":
        benchmark(out.fill, 0)
    else:
        benchmark(adlcodec.decompress, payload, out)


def paired_rounds(n):
    return 11 if n > (1 << 22) else 41


@params
@pytest.mark.parametrize("pair", ["encode/np.add", "unchecked/np.add", "decode/fill", "torch/encode"])
def test_paired_ratio(benchmark, pair, size_name, bin_size, bits):
    """The ratios of the targets, each measured round by round: every round times the two sides back to
    back, the order swapping from one round to the next, and keeps their quotient. This VM's memory
    bandwidth drifts over minutes (np.add at 16M: 4.6-8.3 ms), which skews a quotient of two medians
    taken at different times; the median of paired quotients is not skewed by drift slower than a round.
    "encode" is the default, checked, in-place call with the best kernel, as in test_encode; "unchecked"
    the same call with check_finite=False."""
    paired_ratio(benchmark, pair, size_name, bin_size, bits)


@pytest.mark.parametrize("size_name", SIZE_NAMES)
def test_paired_read_floor(benchmark, size_name):
    """One read of g and r (their maxima), paired with np.add. The checked in-place encode may write
    nothing until it has read all of g and r (a non-finite value leaves the residual as it was), and then
    writes r + g: at least this read plus an np.add, before any selection, coding or error feedback."""
    paired_ratio(benchmark, "read/np.add", size_name, 50, 1)


def paired_ratio(benchmark, pair, size_name, bin_size, bits):
    grad, residual0 = case(size_name, bin_size, bits)
    numer_name, denom_name = pair.split("/")
    if "torch" in pair:
        torch = pytest.importorskip("torch")
        torch.set_num_threads(1)
        from torch_reference import torch_adacomp_step
    if "decode" in pair:
        out = np.empty(grad.size, np.float32)
        payload = adlcodec.compress(grad, residual0.copy(), bin_size=bin_size, bits=bits)

    def prepared(name):
        """A call of `name` with no arguments, its inputs made fresh (untimed)."""
        if name in ("encode", "unchecked"):
            r = residual0.copy()
            return lambda: adlcodec.compress(grad, r, bin_size=bin_size, bits=bits, check_finite=name == "encode")
        if name == "read":
            r = residual0.copy()
            return lambda: (grad.max(), r.max())
        if name == "np.add":
            r = residual0.copy()
            return lambda: np.add(r, grad, out=r)
        if name == "torch":
            g, r = torch.from_numpy(grad), torch.from_numpy(residual0.copy())
            return lambda: torch_adacomp_step(g, r, bin_size=bin_size, bits=bits)
        if name == "decode":
            return lambda: adlcodec.decompress(payload, out)
        return lambda: out.fill(0)

    def timed(name):
        call = prepared(name)
        start = time.perf_counter()
        call()
        return time.perf_counter() - start

    numer, denom = [], []

    def one_round():
        sides = [(numer, numer_name), (denom, denom_name)]
        for samples, name in sides if len(numer) % 2 == 0 else sides[::-1]:
            samples.append(timed(name))

    timed(numer_name), timed(denom_name)  # warm-up: scratch buffers, torch's first call
    benchmark.pedantic(one_round, rounds=paired_rounds(grad.size))
    ratios = np.array(numer) / np.array(denom)
    benchmark.group = f"paired {pair} n={size_name} bin={bin_size} bits={bits}"
    benchmark.extra_info.update(
        n=grad.size, bin_size=bin_size, bits=bits, impl=f"paired {pair}", rounds=len(ratios),
        ratio_median=float(np.median(ratios)), ratio_q1=float(np.percentile(ratios, 25)),
        ratio_q3=float(np.percentile(ratios, 75)),
        numer_ms_median=1e3 * float(np.median(numer)), denom_ms_median=1e3 * float(np.median(denom)),
    )


@pytest.mark.parametrize("size_name", SIZE_NAMES)
@pytest.mark.parametrize("version", [1, 2])
def test_decode_format_versions(benchmark, version, size_name):
    """The same tensor's payload in format version 1 (one position stream) and 2 (two, which x86-64
    decodes together), bin 50, 1 bit: what the second stream buys the decoder."""
    grad, residual = case(size_name, 50, 1)
    payload = adlcodec.compress(grad, residual.copy(), bin_size=50, bits=1)
    if version == 1:
        payload = np.frombuffer(spec_decoder.to_version_1(payload.tobytes()), np.uint8)
    assert adlcodec.inspect(payload)["version"] == version
    out = np.empty(grad.size, np.float32)
    benchmark.group = f"decode by format version n={size_name} bin=50 bits=1"
    benchmark.extra_info.update(n=grad.size, bin_size=50, bits=1, impl=f"v{version}", nbytes=int(payload.size))
    benchmark(adlcodec.decompress, payload, out)


@pytest.mark.parametrize("bin_size", BINS)
@pytest.mark.parametrize("bits", BITS)
def test_payload_size_vs_information_bound(benchmark, bin_size, bits):
    """30 steps of fresh N(0,1) gradients into one residual, n = 10^6: payload bytes / bound."""
    n = 10**6
    rng = np.random.default_rng(7)
    residual = np.zeros(n, np.float32)
    ratios = []
    for _ in range(STEADY_STATE_STEPS):
        payload = adlcodec.compress(rng.standard_normal(n, dtype=np.float32), residual, bin_size=bin_size, bits=bits)
        info = adlcodec.inspect(payload)
        ratios.append(8 * info["nbytes"] / information_bound_bits(n, info["selected"], bits))
    grad = rng.standard_normal(n, dtype=np.float32)
    payload = benchmark.pedantic(
        adlcodec.compress, args=(grad, residual.copy()), kwargs=dict(bin_size=bin_size, bits=bits), rounds=1
    )
    info = adlcodec.inspect(payload)
    final = 8 * info["nbytes"] / information_bound_bits(n, info["selected"], bits)
    benchmark.group = "payload size vs information bound (n=1e6, step 31)"
    benchmark.extra_info.update(
        bin_size=bin_size,
        bits=bits,
        density=info["selected"] / n,
        nbytes=info["nbytes"],
        ratio_to_bound=final,
        worst_ratio_over_steps=max(ratios),
        compression_ratio=info["ratio"],
    )
    assert final <= 1.10 and max(ratios) <= 1.10
