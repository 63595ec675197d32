"""adacomp_hook on real gloo process groups (spawned ranks on loopback).

As root (CI) the ranks of every multi-rank test run in a network namespace the
test creates for them (unshare(CLONE_NEWNET) in a parent process, only ``lo``
inside), so their traffic cannot go anywhere but a loopback that exists only
for them; the namespace disappears with that process.  Without root they fall
back to the host's 127.0.0.1.
"""

from __future__ import annotations

import ctypes
import gc
import os
import pickle
import socket
import subprocess
import tempfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")
import torch.distributed as dist  # noqa: E402
import torch.multiprocessing as mp  # noqa: E402
from torch import nn  # noqa: E402
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402

import adlcodec  # noqa: E402
from adlcodec.ddp import AdaCompConfigError, AdaCompState, NonFiniteGradientError, adacomp_hook  # noqa: E402

os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
os.environ.setdefault("OMP_NUM_THREADS", "1")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _entry(rank, world, port, fn, args, outdir):
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        result = fn(rank, world, *args)
    finally:
        # DDP's reducer sits in reference cycles; freeing it while gloo is still up avoids an abort at exit.
        gc.collect()
        dist.destroy_process_group()
    with open(os.path.join(outdir, f"{rank}.pkl"), "wb") as f:
        pickle.dump(result, f)


_CLONE_NEWNET = 0x40000000
ISOLATED = os.geteuid() == 0


def _start_ranks(world, fn, args, outdir, isolate):
    if isolate:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.unshare(_CLONE_NEWNET) != 0:
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
        # the ranks inherit this namespace: record what they could reach
        with open("/proc/net/dev") as f:
            ifaces = sorted(line.split(":")[0].strip() for line in f.readlines()[2:])
        with open(os.path.join(outdir, "ifaces.pkl"), "wb") as f:
            pickle.dump(ifaces, f)
    # One fresh interpreter imports torch and the rank function's module, then forks every rank from that
    # clean state: `import torch` alone is ~3 s of CPU, paid once per test instead of once per rank. It is
    # started here, after unshare, so the ranks it forks share this private namespace.
    mp.set_forkserver_preload(["torch", "torch.distributed", "torch.nn.parallel", "adlcodec.ddp", __name__,
                               fn.__module__])
    mp.start_processes(_entry, args=(world, _free_port(), fn, args, outdir), nprocs=world, join=True,
                       start_method="forkserver")


def run_ranks(fn, world, *args, isolate=ISOLATED):
    """Run ``fn(rank, world, *args)`` on ``world`` gloo ranks; return their results in rank order."""
    with tempfile.TemporaryDirectory() as outdir:
        # A separate process owns the private namespace, so pytest itself never leaves the host's.
        # fork is cheap, and the child only sets up the namespace and starts the ranks' fork server
        parent = mp.get_context("fork").Process(target=_start_ranks, args=(world, fn, args, outdir, isolate))
        parent.start()
        parent.join()
        if parent.exitcode != 0:
            raise RuntimeError(f"ranks of {fn.__name__} failed (exit code {parent.exitcode}); see captured stderr")
        results = []
        for r in range(world):
            with open(os.path.join(outdir, f"{r}.pkl"), "rb") as f:
                results.append(pickle.load(f))
        return results


class ConvNet(nn.Module):
    """Conv + matrices + biases + a norm: every kind of tensor the hook treats differently."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8)
        self.fc1 = nn.Linear(8 * 8 * 8, 64)
        self.fc2 = nn.Linear(64, 10)

    def forward(self, x):
        x = torch.relu(self.norm(self.conv(x)))
        return self.fc2(torch.relu(self.fc1(x.flatten(1))))


def _batch(rank, step, n=16):
    g = torch.Generator().manual_seed(1000 * rank + step)
    return torch.randn(n, 1, 8, 8, generator=g), torch.randint(0, 10, (n,), generator=g)


def _param_digest(model):
    return [p.detach().numpy().tobytes() for p in model.parameters()]


# ------------------------------------------------------------------ workers (run in spawned ranks)

def _train_many_buckets(rank, world, steps):
    torch.manual_seed(0)
    model = ConvNet()
    # a tiny bucket cap forces several buckets: the case where chained PowerSGD deadlocks gloo
    ddp = DDP(model, bucket_cap_mb=0.0001)
    state = AdaCompState(bits=1, start_iter=2)
    ddp.register_comm_hook(state, adacomp_hook)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
    torch.manual_seed(rank)
    before = _param_digest(model)
    for step in range(steps):
        x, y = _batch(rank, step)
        opt.zero_grad()
        nn.functional.cross_entropy(ddp(x), y).backward()
        opt.step()
    return dict(params=_param_digest(model), before=before, buckets=len(state.residuals), stats=state.stats(),
                finite=all(torch.isfinite(p).all().item() for p in model.parameters()))


def _one_compressed_step(rank, world):
    torch.manual_seed(0)
    model = nn.Linear(600, 4)
    ddp = DDP(model)
    state = AdaCompState(bits=1, start_iter=1)
    ddp.register_comm_hook(state, adacomp_hook)
    warmup = torch.Generator().manual_seed(5 + rank)
    nn.functional.mse_loss(ddp(torch.randn(8, 600, generator=warmup)), torch.zeros(8, 4)).backward()
    ddp.zero_grad()
    # iteration 1 is compressed; recompute every rank's local gradient independently
    weights = model.weight.detach().clone(), model.bias.detach().clone()
    local = []
    for r in range(world):
        ref = nn.Linear(600, 4)
        with torch.no_grad():
            ref.weight.copy_(weights[0])
            ref.bias.copy_(weights[1])
        g = torch.Generator().manual_seed(77 + r)
        x = torch.randn(8, 600, generator=g)
        nn.functional.mse_loss(ref(x), torch.ones(8, 4)).backward()
        local.append((ref.weight.grad.numpy().copy(), ref.bias.grad.numpy().copy()))
    g = torch.Generator().manual_seed(77 + rank)
    nn.functional.mse_loss(ddp(torch.randn(8, 600, generator=g)), torch.ones(8, 4)).backward()
    layout, residuals = next(iter(state.residuals.values()))
    return dict(weight_grad=model.weight.grad.numpy().copy(), bias_grad=model.bias.grad.numpy().copy(),
                local=local, residuals=[None if r is None else r.copy() for r in residuals],
                layout=layout)


def _mismatched_bits(rank, world):
    model = nn.Linear(600, 4)
    ddp = DDP(model)
    ddp.register_comm_hook(AdaCompState(bits=1 if rank == 0 else 8, start_iter=1), adacomp_hook)
    try:
        ddp(torch.randn(2, 600)).sum().backward()
    except Exception as exc:  # DDP re-raises hook errors from backward
        return f"{type(exc).__name__}: {exc}"
    return "no error"


def _nonfinite(rank, world, policy, options=None):
    torch.manual_seed(0)
    model = ConvNet()
    ddp = DDP(model)
    state = AdaCompState(bits=1, start_iter=2, on_nonfinite=policy, **(options or {}))
    ddp.register_comm_hook(state, adacomp_hook)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05)
    log = []
    for step in range(6):
        x, y = _batch(rank, step)
        if step == 4 and rank == 1:
            x[0, 0, 0, 0] = float("nan")
        before = pickle.dumps(state.residuals)
        opt.zero_grad()
        loss = nn.functional.cross_entropy(ddp(x), y)
        try:
            loss.backward()
        except Exception as exc:
            log.append(("raised", type(exc).__name__, str(exc), pickle.dumps(state.residuals) == before))
            break
        if state.last_step_nonfinite:
            grads_zero = all(bool((p.grad == 0).all()) for p in model.parameters())
            log.append(("skipped", grads_zero, pickle.dumps(state.residuals) == before))
            continue
        opt.step()
        log.append(("ok",))
    return dict(log=log, params=_param_digest(model), stats=state.stats())


def _train_with_budget(rank, world, steps, budget):
    """ConvNet training; ``budget`` is None or AdaCompState keywords for the bandwidth budget."""
    torch.manual_seed(0)
    model = ConvNet()
    ddp = DDP(model, bucket_cap_mb=0.01)  # two buckets: the budget sums its model over them
    state = AdaCompState(bits=1, start_iter=2, **(budget or {}))
    ddp.register_comm_hook(state, adacomp_hook)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
    mid_state = None
    for step in range(steps):
        x, y = _batch(rank, step)
        opt.zero_grad()
        nn.functional.cross_entropy(ddp(x), y).backward()
        opt.step()
        if step == steps // 2:
            mid_state = pickle.dumps(state)
    stats = state.stats()
    restored = pickle.loads(mid_state)
    return dict(params=_param_digest(model), stats=stats, buckets=len(state.residuals),
                restored_budget=None if restored.budget is None else restored.budget.report())


def _mismatched_deadline(rank, world):
    model = nn.Linear(600, 4)
    ddp = DDP(model)
    ddp.register_comm_hook(AdaCompState(start_iter=1, link_mbps=100, max_comm_ms=10 + rank), adacomp_hook)
    try:
        ddp(torch.randn(2, 600)).sum().backward()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


def _netns_facts(rank, world):
    with open("/proc/net/dev") as f:
        ifaces = sorted(line.split(":")[0].strip() for line in f.readlines()[2:])
    return dict(netns=os.readlink("/proc/self/ns/net"), ifaces=ifaces)


# ------------------------------------------------------------------ tests

def test_ranks_run_in_a_private_network_namespace_with_only_loopback():
    facts = run_ranks(_netns_facts, 2)
    assert facts[0]["netns"] == facts[1]["netns"], "ranks must share one namespace to meet"
    if ISOLATED:
        assert facts[0]["ifaces"] == ["lo"]
        assert facts[0]["netns"] != os.readlink("/proc/self/ns/net")
    else:  # without root: the host's loopback, as plain torch.distributed tests use
        assert facts[0]["netns"] == os.readlink("/proc/self/ns/net")


def test_replicas_bit_identical_after_many_steps_with_many_buckets():
    results = run_ranks(_train_many_buckets, 3, 25)
    assert results[0]["buckets"] >= 3
    assert all(r["finite"] for r in results)
    assert results[0]["params"] != results[0]["before"], "training did not move the parameters"
    for r in results[1:]:
        assert r["params"] == results[0]["params"]
    stats = results[0]["stats"]
    assert stats["steps"] == 25 and stats["compressed_steps"] == 23
    assert stats["compressed_payload_bytes"] * 4 < stats["compressed_dense_bytes"]
    assert stats["encode_s"] > 0 and stats["comm_s"] > 0 and stats["decode_s"] > 0


def test_hook_output_is_rank_ordered_sum_of_decoded_payloads():
    world = 2
    results = run_ranks(_one_compressed_step, world)
    local = results[0]["local"]
    # reference: each rank compresses with a zero residual, decode, sum in rank order, divide
    expected_w = np.zeros(600 * 4, np.float32)
    expected_res = []
    for gw, _ in local:
        residual = np.zeros(gw.size, np.float32)
        adlcodec.decompress(adlcodec.compress(gw.reshape(-1), residual, bin_size=500, bits=1),
                            out=expected_w, accumulate=True)
        expected_res.append(residual)
    expected_w /= np.float32(world)
    expected_b = (np.zeros(4, np.float32) + local[0][1] + local[1][1]) / np.float32(world)
    for rank, r in enumerate(results):
        np.testing.assert_array_equal(r["weight_grad"].reshape(-1), expected_w)
        np.testing.assert_array_equal(r["bias_grad"], expected_b)  # biases travel dense
        # the DDP bucket holds the bias first or second; find the weight residual by its shape
        weight_res = [res for res, (_, shape, b) in zip(r["residuals"], r["layout"]) if shape == (4, 600)]
        np.testing.assert_array_equal(weight_res[0], expected_res[rank])
        assert [b for _, shape, b in r["layout"] if shape == (4,)] == [None]
    # the compressed weight gradient is really sparse, not the dense average
    dense_avg = (local[0][0] + local[1][0]) / 2
    assert not np.array_equal(results[0]["weight_grad"], dense_avg)


def test_disagreeing_bits_fail_on_every_rank_with_clear_error():
    messages = run_ranks(_mismatched_bits, 2)
    for m in messages:
        assert "AdaCompConfigError" in m or "disagree" in m, m
        assert "bits: rank 0=1, rank 1=8" in m, m


def test_nonfinite_gradient_is_skipped_identically_on_every_rank():
    results = run_ranks(_nonfinite, 2, "skip")
    for r in results:
        kinds = [entry[0] for entry in r["log"]]
        assert kinds == ["ok", "ok", "ok", "ok", "skipped", "ok"], r["log"]
        _, grads_zero, residuals_unchanged = r["log"][4]
        assert grads_zero and residuals_unchanged
        assert r["stats"]["nonfinite_steps"] == 1
    assert results[0]["params"] == results[1]["params"]
    assert all(np.isfinite(np.frombuffer(b, np.float32)).all() for b in results[0]["params"])


def test_nonfinite_gradient_raises_on_every_rank_when_asked():
    results = run_ranks(_nonfinite, 2, "raise")
    for r in results:
        assert r["log"][-1][0] == "raised", r["log"]
        _, _, message, residuals_unchanged = r["log"][-1]
        assert "non-finite gradient on rank(s) [1]" in message
        assert residuals_unchanged


def test_state_pickles_without_process_group_and_keeps_residuals():
    state = AdaCompState(bits=8, bin_size=64, start_iter=3, on_nonfinite="raise")
    state.process_group = object()  # unpicklable stand-in for a real group
    state.iter = 17
    state.residuals[2] = (((0, (4, 600), 64),), [np.arange(2400, dtype=np.float32)])
    restored = pickle.loads(pickle.dumps(state))
    assert restored.process_group is None
    assert (restored.iter, restored.bits, restored.bin_size, restored.start_iter, restored.on_nonfinite) == (
        17, 8, 64, 3, "raise")
    np.testing.assert_array_equal(restored.residuals[2][1][0], np.arange(2400, dtype=np.float32))


def test_bin_size_follows_layer_kind():
    state = AdaCompState()
    assert state.bin_for((64, 32, 3, 3)) == 50
    assert state.bin_for((256, 3136)) == 500
    assert state.bin_for((256,)) is None  # biases / norms go dense
    assert state.bin_for((10, 20)) is None  # smaller than one bin
    assert AdaCompState(bin_size=100).bin_for((256, 3136)) == 100


@pytest.mark.parametrize(
    "kwargs, exc, text",
    [
        (dict(bits=3), ValueError, "bits"),
        (dict(bits=1.0), TypeError, "bits"),
        (dict(bin_size=0), ValueError, "bin_size"),
        (dict(bin_size="50"), TypeError, "bin_size"),
        (dict(start_iter=0), ValueError, "start_iter"),
        (dict(transport="nccl"), ValueError, "transport"),
        (dict(on_nonfinite="ignore"), ValueError, "on_nonfinite"),
    ],
)
def test_bad_arguments_are_rejected(kwargs, exc, text):
    with pytest.raises(exc, match=text):
        AdaCompState(**kwargs)


# ------------------------------------------------------------------ bandwidth budget

@pytest.mark.parametrize("feedback", [False, True])
def test_budget_decisions_are_identical_on_every_rank(feedback):
    # At a stated 0.05 Mbit/s the modelled bytes dominate, so the bare model (feedback=False) must coarsen the
    # plan.  With feedback the loopback's real, much faster exchange times (different on every rank) drive the
    # decisions: whatever they are, every rank must take the same ones.
    options = dict(feedback=feedback, first_window=3)
    results = run_ranks(_train_with_budget, 3, 40, dict(link_mbps=0.05, max_comm_ms=250, budget_interval=4,
                                                        budget_options=options))
    budget = results[0]["stats"]["budget"]
    assert results[0]["buckets"] >= 2
    for r in results[1:]:
        assert r["params"] == results[0]["params"]
        assert r["stats"]["budget"] == budget  # same history, same plan, same pressure, bit for bit
        assert r["stats"]["exchange_log"] == results[0]["stats"]["exchange_log"]
    assert budget["decisions"] >= 8
    if not feedback:
        assert budget["pressure"] > 0 and budget["overhead_ms"] == 0
        plan = {p["kind"]: p for p in budget["plan"]}
        assert plan["fc"]["bin_size"] > plan["fc"]["base_bin_size"]  # FC layers went sparser first
    else:
        # the loopback is far faster than 0.05 Mbit/s: the measured offset is negative
        assert budget["overhead_ms"] < 0
    # one entry per compressed iteration but the last (its time travels in the next step's messages)
    log = results[0]["stats"]["exchange_log"]
    assert [i for i, _, _ in log] == list(range(2, 39))
    assert all(ms > 0 for _, ms, _ in log)
    stats = results[0]["stats"]
    assert stats["comm_s"] == pytest.approx(stats["sync_s"] + stats["exchange_s"])
    # a checkpoint taken mid-run carries the controller with it
    restored = results[0]["restored_budget"]
    assert restored["decisions"] >= 4 and restored["history"] == budget["history"][: restored["decisions"]]


def test_budget_with_room_to_spare_is_bit_identical_to_the_fixed_configuration():
    fixed = run_ranks(_train_with_budget, 2, 20, None)
    roomy = run_ranks(_train_with_budget, 2, 20, dict(link_mbps=1000, max_comm_ms=1e6, budget_interval=3,
                                                          budget_options=dict(first_window=3)))
    assert roomy[0]["stats"]["budget"]["pressure"] == 0 and roomy[0]["stats"]["budget"]["decisions"] >= 5
    assert roomy[0]["params"] == fixed[0]["params"] == roomy[1]["params"]


def test_disagreeing_deadlines_fail_on_every_rank():
    for m in run_ranks(_mismatched_deadline, 2):
        assert "AdaCompConfigError" in m and "max_comm_us: rank 0=10000, rank 1=11000" in m, m


@pytest.mark.parametrize("kwargs, exc, text", [
    (dict(link_mbps=100), ValueError, "go together"),
    (dict(max_comm_ms=10), ValueError, "go together"),
    (dict(link_mbps=-1, max_comm_ms=10), ValueError, "link_mbps"),
    (dict(link_mbps=100, max_comm_ms=10, budget_interval=0), ValueError, "interval"),
    (dict(link_mbps=100, max_comm_ms=10, budget_options=dict(fc_floor=0)), ValueError, "fc_floor"),
    (dict(link_mbps=100, max_comm_ms=10, budget_options=dict(speed=2)), TypeError, "speed"),
])
def test_bad_budget_arguments_are_rejected(kwargs, exc, text):
    with pytest.raises(exc, match=text):
        AdaCompState(**kwargs)
