"""Hostile and careless arguments: each either gives the right result or a clear error that leaves
every buffer as it was (issue 20)."""

import os
import struct
import subprocess
import sys
import textwrap
import threading
import time

import numpy as np
import pytest

import adlcodec
from adlcodec import _core
from examples_budget import examples


def forged(shape, bits=1):
    body = b"ADLC" + bytes([2, 1, bits, len(shape)]) + struct.pack("<IIfI", 50, 0, 0.0, 0)
    body += struct.pack(f"<{len(shape)}Q", *shape)
    return body + struct.pack("<I", _core.crc32c(body))


# --- aliasing and alignment -----------------------------------------------------------------------


def test_decompress_into_memory_that_holds_the_payload_is_rejected(rng):
    grad = rng.standard_normal(1000, dtype=np.float32)
    payload = adlcodec.compress(grad, np.zeros_like(grad), bin_size=10, bits=32)
    want = adlcodec.decompress(payload)
    arena = np.zeros(payload.size + 4000 + 8, np.uint8)
    arena[: payload.size] = payload
    in_arena = arena[: payload.size]
    before = arena.copy()
    for start in (0, 8, (payload.size - 8) // 4 * 4):  # out over the payload's start, middle, tail
        out = arena[start : start + 4000].view(np.float32)
        with pytest.raises(ValueError, match="out must not share memory with the payload"):
            adlcodec.decompress(in_arena, out)
        with pytest.raises(ValueError, match="share memory"):
            adlcodec.decompress(in_arena, out, accumulate=True)
        assert arena.tobytes() == before.tobytes()
    # Right after it is fine, and correct.
    start = -(-payload.size // 4) * 4
    out = arena[start : start + 4000].view(np.float32)
    adlcodec.decompress(in_arena, out)
    np.testing.assert_array_equal(out, want)


def misaligned(n):
    raw = np.zeros(4 * n + 4, np.uint8)
    view = raw[1 : 1 + 4 * n].view(np.float32)
    assert view.ctypes.data % 4 == 1
    return view


@pytest.mark.parametrize("which", ["grad", "residual", "residual_out"])
def test_misaligned_float32_arrays_are_rejected_for_compress(rng, which):
    n = 300
    args = {"grad": rng.standard_normal(n, dtype=np.float32), "residual": rng.standard_normal(n, dtype=np.float32),
            "residual_out": np.zeros(n, np.float32)}
    bad = misaligned(n)
    bad[...] = args[which]
    args[which] = bad
    before = {k: v.copy() for k, v in args.items()}
    with pytest.raises(ValueError, match=f"{which} is not aligned to 4 bytes"):
        adlcodec.compress(args["grad"], args["residual"], residual_out=args["residual_out"], bin_size=10)
    for k in args:
        assert args[k].tobytes() == before[k].tobytes()


def test_misaligned_out_is_rejected_for_decompress(rng):
    grad = rng.standard_normal(300, dtype=np.float32)
    payload = adlcodec.compress(grad, np.zeros_like(grad), bin_size=10)
    out = misaligned(300)
    out[...] = 7.0
    with pytest.raises(ValueError, match="out is not aligned to 4 bytes"):
        adlcodec.decompress(payload, out)
    assert np.all(out == 7.0)


# --- Compressor from several threads ------------------------------------------------------------


def _sequential(state, key, grads, orders):
    """The residual of `key` after compressing `grads` in each of `orders`, from `state`."""
    results = []
    for order in orders:
        c = adlcodec.Compressor(bin_size=50, bits=1)
        c.load_state_dict(state)
        for i in order:
            c.compress(key, grads[i])
        results.append(c.residual(key).copy())
    return results


@pytest.mark.parametrize("fresh_key", [False, True])
def test_compressor_one_key_from_two_threads_equals_a_sequential_order(rng, fresh_key):
    n, trials = 400_000, examples(30)
    for trial in range(trials):
        grads = [rng.standard_normal(n, dtype=np.float32) for _ in range(2)]
        c = adlcodec.Compressor(bin_size=50, bits=1)
        if not fresh_key:
            c.compress("w", rng.standard_normal(n, dtype=np.float32))
        state = c.state_dict()
        start = threading.Barrier(2)
        payloads = [None, None]

        def work(i):
            start.wait()
            payloads[i] = c.compress("w", grads[i])

        threads = [threading.Thread(target=work, args=(i,)) for i in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        got = c.residual("w")
        orders = _sequential(state, "w", grads, [(0, 1), (1, 0)])
        assert any(got.tobytes() == r.tobytes() for r in orders), f"trial {trial}: no sequential order gives it"


def test_compressor_different_keys_in_parallel_keep_their_own_feedback(rng):
    n = 200_000
    grads = {k: [rng.standard_normal(n, dtype=np.float32) for _ in range(5)] for k in "abcd"}
    c = adlcodec.Compressor(bin_size=50, bits=8)
    start = threading.Barrier(4)

    def work(key):
        start.wait()
        for g in grads[key]:
            c.compress(key, g)

    threads = [threading.Thread(target=work, args=(k,)) for k in "abcd"]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for key in "abcd":
        alone = adlcodec.Compressor(bin_size=50, bits=8)
        for g in grads[key]:
            alone.compress(key, g)
        assert c.residual(key).tobytes() == alone.residual(key).tobytes()


def test_compressor_state_dict_while_compressing_is_a_consistent_snapshot(rng):
    n = 300_000
    grads = [rng.standard_normal(n, dtype=np.float32) for _ in range(6)]
    c = adlcodec.Compressor(bin_size=50, bits=1)
    snapshots = []
    done = threading.Event()

    def work():
        for g in grads:
            c.compress("w", g)
        done.set()

    t = threading.Thread(target=work)
    t.start()
    while not done.is_set():
        snapshots.append(c.state_dict())
        time.sleep(0.001)  # locks are not fair: leave the worker room to take the key's lock
    t.join()
    assert snapshots
    # Every snapshot is the residual after some whole number of steps.
    states, ref = [b""], adlcodec.Compressor(bin_size=50, bits=1)
    for g in grads:
        ref.compress("w", g)
        states.append(ref.residual("w").tobytes())
    for snap in snapshots:
        assert snap["residuals"].get("w", np.empty(0, np.float32)).tobytes() in states


def test_compressor_pickles_and_copies_without_its_locks(rng):
    import copy
    import pickle

    c = adlcodec.Compressor(bin_size=20, bits=4, check_finite=False)
    c.compress("w", rng.standard_normal(100, dtype=np.float32))
    for other in (pickle.loads(pickle.dumps(c)), copy.deepcopy(c)):
        assert other.residual("w").tobytes() == c.residual("w").tobytes()
        assert (other.bin_size, other.bits, other.check_finite) == (20, 4, False)
        g = rng.standard_normal(100, dtype=np.float32)
        assert other.compress("w", g).tobytes() == copy.deepcopy(c).compress("w", g).tobytes()


def test_load_state_dict_with_missing_entries_names_them():
    c = adlcodec.Compressor()
    c.compress("w", np.ones(10, np.float32))
    kept = c.residual("w").copy()
    with pytest.raises(TypeError, match="state lacks bits"):
        c.load_state_dict({"bin_size": 50, "residuals": {}})
    with pytest.raises(TypeError, match="state lacks bin_size, bits, residuals"):
        c.load_state_dict({})
    with pytest.raises(TypeError, match="residuals.*must be a dict"):
        c.load_state_dict({"bin_size": 50, "bits": 1, "residuals": [np.zeros(3, np.float32)]})
    assert c.residual("w").tobytes() == kept.tobytes()


# --- torch autograd ---------------------------------------------------------------------------------

INPLACE = "modified by an inplace operation"


@pytest.fixture
def torch():
    return pytest.importorskip("torch")  # absent only in the emulated aarch64 run


def _saved_by_autograd(torch, n=64):
    """A leaf that requires grad and a tensor that autograd saves to compute its gradient."""
    w = torch.randn(n, requires_grad=True)
    saved = torch.randn(n)
    loss = (w * saved).sum()  # d loss / d w = saved, kept for backward
    return w, saved, loss


def test_torch_own_inplace_write_is_caught_by_backward(torch):
    # The behaviour adlcodec must match: torch's own in-place op on a saved tensor.
    _, saved, loss = _saved_by_autograd(torch)
    saved.add_(1.0)
    with pytest.raises(RuntimeError, match=INPLACE):
        loss.backward()


@pytest.mark.parametrize("how", ["residual", "residual_out", "decompress_out", "accumulate"])
def test_writes_into_a_tensor_saved_for_backward_are_caught(torch, how):
    w, saved, loss = _saved_by_autograd(torch)
    g = torch.randn(64)
    version = saved._version
    if how == "residual":
        adlcodec.compress(g, saved, bin_size=8)
    elif how == "residual_out":
        adlcodec.compress(g, torch.zeros(64), residual_out=saved, bin_size=8)
    else:
        payload = adlcodec.compress(g, torch.zeros(64), bin_size=8)
        adlcodec.decompress(payload, saved, accumulate=how == "accumulate")
    assert saved._version > version
    with pytest.raises(RuntimeError, match=INPLACE):
        loss.backward()


def test_untouched_tensors_keep_their_version_and_backward_works(torch):
    w, saved, loss = _saved_by_autograd(torch)
    residual = torch.zeros(64)
    payload = adlcodec.compress(saved, residual, bin_size=8)  # saved is only read, as grad
    adlcodec.decompress(payload)
    assert saved._version == 0
    loss.backward()
    torch.testing.assert_close(w.grad, saved)


def test_views_share_the_version_counter_of_their_base(torch):
    w = torch.randn(2, 32, requires_grad=True)
    base = torch.randn(2, 32)
    loss = (w * base).sum()
    adlcodec.compress(torch.randn(32), base[1], bin_size=8)  # a view: its base was saved
    with pytest.raises(RuntimeError, match=INPLACE):
        loss.backward()


def test_a_tensor_that_requires_grad_is_not_written_with_grad_mode_on(torch):
    leaf = torch.zeros(64, requires_grad=True)
    g = torch.randn(64)
    payload = adlcodec.compress(g, torch.zeros(64), bin_size=8)
    for call in (lambda: adlcodec.compress(g, leaf, bin_size=8),
                 lambda: adlcodec.compress(g, torch.zeros(64), residual_out=leaf, bin_size=8),
                 lambda: adlcodec.decompress(payload, leaf)):
        with pytest.raises(ValueError, match="requires grad.*torch.no_grad"):
            call()
    assert torch.count_nonzero(leaf) == 0 and leaf._version == 0
    # As torch allows for its own in-place ops (an optimizer step), under no_grad it is written.
    with torch.no_grad():
        adlcodec.decompress(payload, leaf)
    assert leaf._version > 0
    np.testing.assert_array_equal(leaf.detach().numpy(), adlcodec.decompress(payload))
    # Reading one (grad) is always fine.
    adlcodec.compress(leaf, torch.zeros(64), bin_size=8)


# --- MemoryError, check_finite=False in place --------------------------------------------------------

_OOM_SCRIPT = textwrap.dedent("""
    import resource, sys
    import numpy as np, adlcodec
    n, bits = int(sys.argv[1]), int(sys.argv[2])
    rng = np.random.default_rng(1)
    grad = rng.standard_normal(n, dtype=np.float32)
    residual = rng.standard_normal(n, dtype=np.float32)
    original = residual.copy()
    ref = residual.copy()
    want = adlcodec.compress(grad, ref, bin_size=50, bits=bits, check_finite=False).tobytes()
    # Fresh thread-local scratch, as in a process that never encoded before: on a worker thread.
    import threading
    outcome = []
    def attempt(limit):
        soft, hard = resource.getrlimit(resource.RLIMIT_AS)
        resource.setrlimit(resource.RLIMIT_AS, (limit, hard))
        payload = None
        try:
            payload = adlcodec.compress(grad, residual, bin_size=50, bits=bits, check_finite=False)
        except MemoryError:
            pass
        finally:
            resource.setrlimit(resource.RLIMIT_AS, (soft, hard))
        # Compared with the limit lifted: only the encoder ran under it.
        if payload is None:
            outcome.append(("oom", None, residual.tobytes() == original.tobytes()))
        else:
            outcome.append(("ok", payload.tobytes() == want, residual.tobytes() == ref.tobytes()))
    extra = 1 << 12
    while not outcome or outcome[-1][0] == "oom":
        # Measured on this thread, after its stack is mapped: the limit leaves `extra` to the encoder.
        t = threading.Thread(target=lambda: attempt(
            int(open("/proc/self/statm").read().split()[0]) * resource.getpagesize() + extra))
        t.start(); t.join()
        extra = extra * 5 // 4
    print(" ".join(f"{kind}:{same}:{untouched}" for kind, same, untouched in outcome))
""")


@pytest.mark.parametrize("bits", [1, 4, 32])
def test_memory_error_unchecked_in_place_leaves_the_residual_as_it_was(bits):
    if os.environ.get("QEMU_LD_PREFIX"):
        pytest.skip("under qemu-user RLIMIT_AS limits the emulator's own mappings, not the program's")
    # One malloc arena, large blocks mapped on their own and freed memory returned at once: each
    # allocation then needs new address space, which the limit controls (a thread's own arena would
    # otherwise serve tens of MB from address space reserved before the limit).
    env = dict(os.environ, GLIBC_TUNABLES="glibc.malloc.arena_max=1:glibc.malloc.mmap_threshold=65536:"
               "glibc.malloc.trim_threshold=0")
    done = subprocess.run([sys.executable, "-c", _OOM_SCRIPT, str(1 << 22), str(bits)], capture_output=True,
                          text=True, timeout=300, env=env)
    assert done.returncode == 0, done.stderr
    outcome = [item.split(":") for item in done.stdout.split()]
    kinds = [kind for kind, _, _ in outcome]
    assert kinds.count("oom") >= 3, f"the limits never made encoding fail: {outcome}"
    assert kinds[-1] == "ok"
    for kind, same, untouched in outcome:
        assert untouched == "True", f"a MemoryError left the residual changed: {outcome}"
        if kind == "ok":
            assert same == "True"


# --- shapes, max_numel, -0.0 -----------------------------------------------------------------------


@pytest.mark.parametrize("shape", [(2**32 - 1, 2**32 - 1, 0), (0, 2**32 - 1, 2**32 - 1), (2**16, 0, 2**16),
                                   (0, 2**20, 2**12)])
def test_shapes_whose_nonzero_extents_overflow_are_format_errors_wherever_the_zero_is(shape):
    payload = forged(shape)
    for call in (lambda: adlcodec.inspect(payload), lambda: adlcodec.decompress(payload),
                 lambda: adlcodec.decompress(payload, np.empty(0, np.float32))):
        with pytest.raises(adlcodec.FormatError, match="nonzero extents multiply to more than 2\\^32-1"):
            call()


def test_zero_numel_shapes_within_the_limit_decode_to_that_shape():
    for shape in [(0, 65535, 65537), (65535, 65537, 0), (3, 0)]:
        out = adlcodec.decompress(forged(shape))
        assert out.shape == shape and out.dtype == np.float32
        assert adlcodec.inspect(forged(shape))["numel"] == 0


def test_the_spec_decoder_agrees_on_the_shape_rule():
    import spec_decoder

    with pytest.raises(spec_decoder.SpecError):
        spec_decoder.decode(forged((0, 2**32 - 1, 2**32 - 1)))
    shape, dense = spec_decoder.decode(forged((0, 65535, 65537)))
    assert shape == (0, 65535, 65537) and dense.size == 0


@pytest.mark.parametrize("bad,error", [(-1, ValueError), (-(2**40), ValueError), ("10", TypeError),
                                       (1.5, TypeError), (True, TypeError)])
def test_max_numel_is_validated(bad, error):
    payload = adlcodec.compress(np.ones(4, np.float32), np.zeros(4, np.float32))
    with pytest.raises(error, match="max_numel"):
        adlcodec.decompress(payload, max_numel=bad)
    with pytest.raises(error, match="max_numel"):
        adlcodec.decompress(payload, np.empty(4, np.float32), max_numel=bad)


def test_max_numel_bounds_and_admits():
    payload = adlcodec.compress(np.ones(4, np.float32), np.zeros(4, np.float32))
    assert adlcodec.decompress(payload, max_numel=4).shape == (4,)
    with pytest.raises(adlcodec.FormatError, match="4 elements exceed max_numel=3"):
        adlcodec.decompress(payload, max_numel=3)
    assert adlcodec.decompress(forged((0,)), max_numel=0).shape == (0,)


def test_a_sent_negative_zero_decodes_as_positive_zero():
    # binary16 has no value near -1e-10: the sent value is -0.0 (FORMAT.md section 1).
    grad = np.array([-1e-10, 3.0], np.float32)
    residual = np.zeros(2, np.float32)
    payload = adlcodec.compress(grad, residual, bin_size=1, bits=16)
    assert adlcodec.inspect(payload)["selected"] == 2
    assert payload[-8:-6].tobytes() == struct.pack("<H", 0x8000)  # the value field: binary16 -0.0
    dense = adlcodec.decompress(payload)
    assert dense[0] == 0.0 and not np.signbit(dense[0])
    assert residual[0] == np.float32(-1e-10)  # nothing lost: G - (-0.0) = G
    out = np.full(2, -0.0, np.float32)
    adlcodec.decompress(payload, out, accumulate=True)
    assert np.signbit(out[0])  # -0.0 + -0.0: accumulating adds the sent value itself
