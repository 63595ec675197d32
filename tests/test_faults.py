"""Checkpointing the hook state, resuming with other settings or at another world size, parameters without
a gradient: on real gloo ranks in a private network namespace (``run_ranks`` of test_ddp)."""

from __future__ import annotations

import ctypes
import io
import os
import pickle
import subprocess
import sys
import tempfile

import numpy as np
import pytest

torch = pytest.importorskip("torch")
from torch import nn  # noqa: E402
from torch.nn.parallel import DistributedDataParallel as DDP  # noqa: E402

from adlcodec.ddp import AdaCompState, adacomp_hook, inherited_ranks, redistribute  # noqa: E402
from test_ddp import ISOLATED, _batch, _param_digest, run_ranks  # noqa: E402


def _netns_child(fn, args, path):
    if ISOLATED:
        if ctypes.CDLL(None, use_errno=True).unshare(0x40000000) != 0:  # CLONE_NEWNET
            raise OSError(ctypes.get_errno(), "unshare(CLONE_NEWNET) failed")
        subprocess.run(["ip", "link", "set", "lo", "up"], check=True)
    try:
        result = ("ok", fn(*args))
    except BaseException as exc:  # handed to the parent, which raises it there
        result = ("error", f"{type(exc).__name__}: {exc}")
    with open(path, "wb") as f:
        pickle.dump(result, f)


def in_netns(fn, *args):
    """``fn(*args)`` in a forked child inside a network namespace of its own with only ``lo`` (as root), so
    the ranks it starts can reach nothing but each other; the namespace goes with the child."""
    import multiprocessing

    with tempfile.TemporaryDirectory() as tmp:
        path = os.path.join(tmp, "result.pkl")
        child = multiprocessing.get_context("fork").Process(target=_netns_child, args=(fn, args, path))
        child.start()
        child.join()
        with open(path, "rb") as f:
            kind, value = pickle.load(f)
    if kind == "error":
        raise RuntimeError(value)
    return value


def train(**cfg):
    from adlcodec.train import TrainConfig, run

    return in_netns(run, TrainConfig(**cfg))


class BranchNet(nn.Module):
    """Conv + matrices + a norm, and an auxiliary head that only some steps (or ranks) use."""

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 8, 3, padding=1)
        self.norm = nn.BatchNorm2d(8)
        self.fc1 = nn.Linear(8 * 8 * 8, 64)
        self.fc2 = nn.Linear(64, 10)
        self.aux = nn.Linear(64, 10)

    def forward(self, x, use_aux):
        h = torch.relu(self.fc1(torch.relu(self.norm(self.conv(x))).flatten(1)))
        return self.fc2(h) + self.aux(h) if use_aux else self.fc2(h)


def _uses_aux(rank, step):
    # both ranks, then no rank, then rank 0 alone, then no rank again
    return {2: True, 3: True, 4: False, 5: rank == 0}.get(step, step % 3 == 0)


def _save(obj) -> bytes:
    buf = io.BytesIO()
    torch.save(obj, buf)
    return buf.getvalue()


def _load(data: bytes):
    return torch.load(io.BytesIO(data))  # torch's default: weights_only=True


def _held(sd):
    """Residual mass a state dict holds per parameter: its residual plus its owner residuals' slices."""
    out = {n: t.double().reshape(-1).clone() for n, t in sd["residuals"].items()}
    for n, e in sd["owner_residuals"].items():
        out[n][e["lo"]:e["hi"]] += e["residual"].double()
    return out


# ------------------------------------------------------------------ workers (run in spawned ranks)

def _train(rank, world, steps, options, cap, resume=None, save_at=None, start=0):
    """BranchNet with ``find_unused_parameters``; ``resume`` = (model, optimizer, hook state dict) bytes."""
    torch.manual_seed(0)
    model = BranchNet()
    ddp = DDP(model, bucket_cap_mb=cap, find_unused_parameters=True)
    state = AdaCompState(bits=1, start_iter=2, **options).attach(ddp)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
    changes = None
    if resume is not None:
        model.load_state_dict(_load(resume[0]))
        opt.load_state_dict(_load(resume[1]))
        changes = state.load_state_dict(_load(resume[2]))
    saved = None
    for step in range(start, steps):
        x, y = _batch(rank, step)
        opt.zero_grad()
        nn.functional.cross_entropy(ddp(x, _uses_aux(rank, step)), y).backward()
        opt.step()
        if step + 1 == save_at:
            saved = (_save(model.state_dict()), _save(opt.state_dict()), _save(state.state_dict()))
    return dict(params=_param_digest(model), saved=saved, changes=changes, final=_save(state.state_dict()))


def _track_aux(rank, world, steps, exchange):
    """Per step: this rank's local aux.weight gradient (before the exchange), the applied average, and
    the aux.weight residual after the step."""
    torch.manual_seed(0)
    model = BranchNet()
    ddp = DDP(model, bucket_cap_mb=100, find_unused_parameters=True)
    state = AdaCompState(bits=1, start_iter=2, exchange=exchange).attach(ddp, register=False)
    local = []

    def keep_local(st, bucket):
        for p, g in zip(bucket.parameters(), bucket.gradients()):
            if p is model.aux.weight:
                local.append(g.detach().clone().reshape(-1).double())
        return adacomp_hook(st, bucket)

    ddp.register_comm_hook(state, keep_local)
    applied, held, stage1 = [], [], []
    for step in range(steps):
        x, y = _batch(rank, step)
        ddp.zero_grad()  # set_to_none: a parameter DDP leaves alone has no gradient
        nn.functional.cross_entropy(ddp(x, _uses_aux(rank, step)), y).backward()
        g = model.aux.weight.grad
        applied.append(torch.zeros(640, dtype=torch.float64) if g is None else g.reshape(-1).double().clone())
        sd = state.state_dict()
        held.append(_held(sd).get("aux.weight", torch.zeros(640, dtype=torch.float64)))
        stage1.append(sd["residuals"].get("aux.weight", torch.zeros(10, 64)).clone())
    return dict(local=local, applied=applied, held=held, stage1=stage1)


def _load_refusals(rank, world, sd_bytes):
    torch.manual_seed(0)
    out = {}
    sd = _load(sd_bytes)
    cases = {
        "world": dict(sd, world_size=4),
        "rank": dict(sd, rank=1 - rank),
        "unknown": dict(sd, residuals=dict(sd["residuals"], **{"head.weight": torch.zeros(3)})),
        "shape": dict(sd, residuals=dict(sd["residuals"], **{"fc1.weight": torch.zeros(64, 2, 256)})),
        "not a state dict": {"residuals": {}},
    }
    for name, case in cases.items():
        state = AdaCompState(bits=1, start_iter=2).attach(DDP(BranchNet(), find_unused_parameters=True))
        try:
            state.load_state_dict(case)
            out[name] = "loaded"
        except (ValueError, TypeError) as exc:
            out[name] = f"{type(exc).__name__}: {exc}"
        out[name + " untouched"] = state.iter == 0 and not state.residuals
    dense = AdaCompState(bits=1, start_iter=2, bin_size=1000).attach(DDP(BranchNet(), find_unused_parameters=True))
    try:
        dense.load_state_dict(sd)
        out["dense"] = "loaded"
    except ValueError as exc:
        out["dense"] = str(exc)
    unattached = AdaCompState()
    try:
        unattached.state_dict()
    except ValueError as exc:
        out["unattached"] = str(exc)
    return out


# ------------------------------------------------------------------ tests

@pytest.mark.parametrize("world, exchange", [(2, "allgather"), (3, "reduce_scatter")])
def test_state_dict_resume_with_other_buckets_is_bit_exact(world, exchange):
    # checkpoint at step 5 (weights_only-loadable), resume with other DDP buckets and other settings that
    # do not change the arithmetic (overlap): the end is bit-identical to the uninterrupted run
    options = dict(exchange=exchange)
    whole = run_ranks(_train, world, 10, options, 0.0001, None, 5)
    resumed = run_ranks(_resume_from, world, whole, dict(options, overlap=False), 100.0)
    for r in range(world):
        assert resumed[r]["params"] == whole[r]["params"] == whole[0]["params"]
    assert resumed[0]["changes"] == ["overlap: checkpoint True, using False"]
    held = _held(_load(whole[0]["saved"][2]))
    assert np.abs(held["aux.weight"].numpy()).sum() > 0 and "fc2.bias" not in held  # biases go dense
    if exchange == "reduce_scatter":
        assert _load(whole[0]["saved"][2])["owner_residuals"]


def _resume_from(rank, world, whole, options, cap):
    return _train(rank, world, 10, options, cap, whole[rank]["saved"], start=5)


@pytest.mark.parametrize("exchange", ["allgather", "reduce_scatter"])
def test_a_parameter_without_gradient_keeps_its_residual_and_no_mass_is_lost(exchange):
    world, steps = 3 if exchange == "reduce_scatter" else 2, 8
    results = run_ranks(_track_aux, world, steps, exchange)
    for r, res in enumerate(results):
        # steps 4 and 7: no rank used the head; its residual (and owner residual) stays bit for bit
        assert torch.equal(res["held"][4], res["held"][3]) and torch.equal(res["held"][7], res["held"][6])
        assert torch.count_nonzero(res["held"][3]) > 0
    # step 5: rank 0 alone used it; the others sent nothing of it, their residuals wait for a later step (an
    # owner's residual takes part: the owned slice's sum holds rank 0's gradient)
    for r in range(1, world):
        assert torch.equal(results[r]["stage1"][5], results[r]["stage1"][4])
    assert not torch.equal(results[0]["stage1"][5], results[0]["stage1"][4])
    sent = sum(sum(res["local"]) for res in results)
    applied = world * sum(results[0]["applied"])
    held = sum(res["held"][-1] for res in results)
    np.testing.assert_allclose((applied + held).numpy(), sent.numpy(), rtol=1e-4, atol=1e-5)


def test_resume_at_a_smaller_and_a_larger_world_redistributes_the_residual_mass():
    four = run_ranks(_train, 4, 6, dict(exchange="reduce_scatter"), 100.0, None, 6)
    old = [_load(r["saved"][2]) for r in four]
    assert any(sd["owner_residuals"] for sd in old)
    before = {n: sum(_held(sd)[n] for sd in old) for n in old[0]["residuals"]}
    for world in (2, 3, 5):
        new = redistribute(old, world)
        assert [sd["rank"] for sd in new] == list(range(world))
        assert all(sd["world_size"] == world and sd["redistributed_from"] == 4 for sd in new)
        for n, total in before.items():
            after = sum(_held(sd).get(n, torch.zeros_like(total)) for sd in new)
            np.testing.assert_allclose(after.numpy(), total.numpy(), rtol=1e-6, atol=1e-6)
        if world == 5:
            assert new[4]["residuals"] == {}  # a rank that did not exist holds nothing yet
    assert inherited_ranks(4, 2, 1) == [1, 3] and inherited_ranks(4, 3, 0) == [0, 3] and inherited_ranks(2, 3, 2) == []
    # the smaller job really trains from it: every rank loads its entry, replicas stay identical
    shrunk = [_save(sd) for sd in redistribute(old, 2)]
    two = run_ranks(_continue_at, 2, four[0]["saved"][:2], shrunk)
    assert two[0]["params"] == two[1]["params"]
    first_loaded = [_load(t["loaded"]) for t in two]
    for n, total in before.items():
        np.testing.assert_allclose(sum(_held(sd)[n] for sd in first_loaded).numpy(), total.numpy(), rtol=1e-6,
                                   atol=1e-6)
    with pytest.raises(ValueError, match="one state dict of each rank 0..3"):
        redistribute(old[:3], 2)


def _continue_at(rank, world, model_opt, hook_sds):
    torch.manual_seed(0)
    model = BranchNet()
    ddp = DDP(model, find_unused_parameters=True)
    state = AdaCompState(bits=1, start_iter=2, exchange="reduce_scatter").attach(ddp)
    opt = torch.optim.SGD(ddp.parameters(), lr=0.05, momentum=0.9)
    model.load_state_dict(_load(model_opt[0]))
    opt.load_state_dict(_load(model_opt[1]))
    state.load_state_dict(_load(hook_sds[rank]))
    loaded = _save(state.state_dict())
    for step in range(6, 9):
        x, y = _batch(rank, step)
        opt.zero_grad()
        nn.functional.cross_entropy(ddp(x, _uses_aux(rank, step)), y).backward()
        opt.step()
    return dict(params=_param_digest(model), loaded=loaded)


def test_unsafe_loads_are_refused_with_the_reason_and_change_nothing():
    saved = run_ranks(_train, 2, 4, {}, 100.0, None, 4)
    out = run_ranks(_load_refusals, 2, saved[0]["saved"][2])[0]
    assert "saved by a job of 4 ranks and this one has 2" in out["world"] and "redistribute" in out["world"]
    assert "this is rank 0, but the hook state was saved by rank 1" in out["rank"]
    assert "ValueError" in out["unknown"] and "'head.weight'" in out["unknown"]
    assert "ValueError" in out["shape"] and "fc1.weight: (64, 2, 256) saved, (64, 512) now" in out["shape"]
    assert out["not a state dict"].startswith("TypeError")
    assert "would travel dense" in out["dense"] and "fc2.weight" in out["dense"]
    assert "call state.attach(ddp_model)" in out["unattached"]
    assert all(v for k, v in out.items() if k.endswith("untouched"))


# ------------------------------------------------------------------ adlcodec train: checkpoints and resume

# adl = SGD + adaptive LR + adacomp hook; a checkpoint at step 4, rank 1 dies at step 6
SMALL = dict(max_steps=8, train_subset=1536, eval_subset=200, batch_size=16, progress=False, seed=3,
             optimizer="adl", lr_interval=4, checkpoint_every=4, fail_at_step=6)


def _crash_then(tmp_path, **first):
    cfg = dict(SMALL, checkpoint_dir=str(tmp_path), **first)
    with pytest.raises(RuntimeError, match="exit code 17"):
        train(**cfg)
    assert (tmp_path / "latest").read_text() == "4"
    return cfg


def _files_residual_sum(directory, world):
    total = 0.0
    for r in range(world):
        sd = torch.load(directory / f"step00000004-rank{r}.pt")["hook_state"]  # weights_only
        total += float(sum(_held(sd)[n].sum() for n in _held(sd)))
    return total


def test_train_resume_at_another_world_size_keeps_the_residual_mass(tmp_path, capfd):
    cfg = _crash_then(tmp_path, ranks=3, exchange="reduce_scatter")
    mass = _files_residual_sum(tmp_path, 3)
    assert mass != 0.0
    after = dict(cfg, checkpoint_every=0, fail_at_step=None)  # both safe to change; "latest" stays at 4
    for world in (2, 4):
        r = train(**dict(after, ranks=world))
        assert r["resumed_from"] == 4 and r["resumed_world_size"] == 3 and r["world_size"] == world
        assert r["replicas_identical"] and r["steps"] == 8
        assert r["resumed_residual_sum"] == pytest.approx(mass, rel=1e-6, abs=1e-6)
    out = capfd.readouterr().out
    assert "world size 3 -> 2: rank 0 takes the residuals of old rank(s) [0, 2]" in out
    assert "world size 3 -> 4: rank 0 takes the residuals of old rank(s) [0]" in out


def test_train_resume_uses_safe_new_settings_and_refuses_unsafe_ones(tmp_path, capfd, reference):
    cfg = _crash_then(tmp_path, ranks=2)
    with pytest.raises(RuntimeError, match=r"batch_size: checkpoint 16, now 8.*lr: checkpoint 0\.002, now 0\.01"):
        train(**dict(cfg, batch_size=8, lr=0.01))
    assert (tmp_path / "latest").read_text() == "4"  # the refused run changed nothing
    eight = train(**dict(cfg, bits=8))
    assert eight["resumed_from"] == 4 and eight["config"]["bits"] == 8
    one = reference  # the same run, 1-bit throughout and never interrupted
    # 8-bit payloads after step 4 are larger than the 1-bit ones of the uninterrupted run
    assert eight["payload_bytes_per_step"] > 1.3 * one["payload_bytes_per_step"]
    assert "resuming at step 4: bits: checkpoint 1, now 8 (the new value is used)" in capfd.readouterr().out


# ------------------------------------------------------------------ a frozen or killed rank

FAULT = dict(SMALL, ranks=3, checkpoint_every=0, timeout=3.0)


def test_a_frozen_rank_fails_every_live_rank_within_the_timeout_naming_it(tmp_path):
    import random
    import time

    exchange = "reduce_scatter"
    step = random.Random(0).randint(3, 6)  # after the warm-up: inside the compressed exchange
    t0 = time.monotonic()
    with pytest.raises(RuntimeError) as err:
        train(**dict(FAULT, checkpoint_dir=str(tmp_path), fail_at_step=step, fail_rank=2, fail_mode="stop",
                     exchange=exchange))
    elapsed = time.monotonic() - t0
    message = str(err.value)
    # rank 0 or 1 reports it, from the hook or from DDP's buffer broadcast before the forward pass
    assert "CollectiveTimeoutError" in message and "rank(s) [2] did not answer" in message, message[-2000:]
    assert "Unable to cast" not in message.splitlines()[-1]  # the hook's error, not DDP's wrapping of it
    assert (tmp_path / "failed-once").read_text().startswith(f"{step} ")
    assert elapsed < 120, elapsed  # start-up and 8 steps on a loaded 2-core box; without a timeout: 30 min


def test_a_killed_rank_fails_the_job_at_once(tmp_path):
    import time

    t0 = time.monotonic()
    with pytest.raises(RuntimeError, match=r"process 1 terminated with signal SIGKILL|rank\(s\) \[1\] did not answer"):
        train(**dict(FAULT, ranks=2, checkpoint_dir=str(tmp_path), fail_at_step=4, fail_mode="kill"))
    assert time.monotonic() - t0 < 120


# ------------------------------------------------------------------ the same under torchrun and mpirun

HERMETIC = [os.path.join(os.path.dirname(__file__), os.pardir, "scripts", "cluster", "hermetic.sh"), "--"]
ENV = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
ARGS = ["--optimizer", "adl", "--lr-interval", "4", "--max-steps", "8", "--train-subset", "1536",
        "--eval-subset", "200", "--batch-size", "16", "--seed", "3", "--no-progress"]
MPIRUN = ["mpirun", "--allow-run-as-root", "--oversubscribe", "-x", "OMP_NUM_THREADS=1", "-x", "GLOO_SOCKET_IFNAME=lo",
          "-x", "PYTHONPATH", "--mca", "btl", "self,tcp", "--mca", "btl_tcp_if_include", "lo", "--mca",
          "oob_tcp_if_include", "lo"]


def _hermetic(cmd, timeout=300):
    """``cmd`` in a private network namespace with only ``lo`` (scripts/cluster/hermetic.sh)."""
    if not ISOLATED:
        pytest.fail("the multi-rank launcher tests need root for their private network namespace")
    return subprocess.run(["bash", *HERMETIC, *cmd], env=ENV, capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    """The 2-rank run of SMALL that never fails; under pytest-xdist run once for all the workers."""
    import fcntl
    import json

    cfg = dict(SMALL, ranks=2, checkpoint_every=0, fail_at_step=None)
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        return train(**cfg)
    shared = tmp_path_factory.getbasetemp().parent / "test_faults-reference.json"  # this session's, every worker's
    with open(f"{shared}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if not shared.exists():
            shared.write_text(json.dumps(train(**cfg)))
        return json.loads(shared.read_text())


@pytest.mark.parametrize("mode", ["stop", "kill"])
def test_torchrun_restarts_after_a_failed_rank_and_ends_bit_identical(tmp_path, reference, mode):
    import json
    import random

    step = random.Random(mode).randint(5, 7)  # after the checkpoint at step 4
    out = tmp_path / "r.json"
    proc = _hermetic([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                      "--max-restarts", "1", "-m", "adlcodec.train", *ARGS, "--checkpoint-dir", str(tmp_path / "ck"),
                      "--checkpoint-every", "4", "--fail-at-step", str(step), "--fail-mode", mode, "--timeout", "3",
                      "--out", str(out)])
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert (tmp_path / "ck" / "failed-once").read_text().startswith(f"{step} ")
    r = json.loads(out.read_text())
    assert r["launcher"] == "env" and r["resumed_from"] == 4
    assert r["state_digest"] == reference["state_digest"]


# Two ranks launched by hand (env://, as on two Pis), the second 8 s after the first, with --timeout 2.
LATE_START = r"""
set -u
cd "$1"; py=$2; shift 2
export MASTER_ADDR=127.0.0.1 MASTER_PORT=29547 WORLD_SIZE=2
RANK=0 LOCAL_RANK=0 "$py" -m adlcodec.train "$@" --out r.json > r0.log 2>&1 & first=$!
sleep 8
RANK=1 LOCAL_RANK=1 "$py" -m adlcodec.train "$@" > r1.log 2>&1; second=$?
wait $first; echo "exit $? $second"
"""


def test_a_rank_that_starts_late_is_not_taken_for_a_frozen_one(tmp_path, reference):
    # --timeout bounds the collectives of the training steps. Ranks that start seconds apart (one Pi slower
    # to import torch or read the data) must still meet: before the first step the limit is start-up's.
    import json

    proc = _hermetic(["bash", "-c", LATE_START, "late", str(tmp_path), sys.executable, *ARGS, "--timeout", "2"])
    logs = "".join((tmp_path / f"r{r}.log").read_text()[-2000:] for r in (0, 1) if (tmp_path / f"r{r}.log").exists())
    assert proc.stdout.strip() == "exit 0 0", proc.stdout + proc.stderr[-2000:] + logs
    r = json.loads((tmp_path / "r.json").read_text())
    assert r["launcher"] == "env" and r["state_digest"] == reference["state_digest"]


# Node A starts alone; node B joins (1 -> 2 ranks); B's agent and rank are killed once the pair has
# checkpointed, the residuals on disk are copied, and A goes on alone (2 -> 1).  torch 2.13's shared rendezvous
# store does not publish its address again when a node joins a running job, so the joiner waits forever for
# MASTER_ADDR: TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1 is what docs/CLUSTER.md tells torchrun users to set.
ELASTIC = r"""
set -u
cd "$1"
export TORCH_DISABLE_SHARE_RDZV_TCP_STORE=1
RUN=("$2" -m torch.distributed.run --nnodes 1:2 --nproc-per-node 1 --rdzv-backend c10d
     --rdzv-endpoint 127.0.0.1:29533 --rdzv-id elastic --max-restarts 3 --monitor-interval 0.5 --local-addr 127.0.0.1)
shift 2
latest() { [[ -f ck/latest ]] && cat ck/latest || echo 0; }
"${RUN[@]}" --rdzv-conf is_host=1,last_call_timeout=2,join_timeout=120 "$@" --out a.json > a.log 2>&1 &
a=$!
t0=$SECONDS
until (( $(latest) >= 10 )); do sleep 0.2; (( SECONDS - t0 < 150 )) || exit 3; done
"${RUN[@]}" --rdzv-conf is_host=0,last_call_timeout=2,join_timeout=120 "$@" --out b.json > b.log 2>&1 &
b=$!
# a committed two-rank checkpoint: "latest" names a step whose rank-1 file exists (a rank-1 file alone may
# belong to a step that B wrote and that rank 0 never committed)
two_ranks() { [[ -f ck/step$(printf %08d $(latest))-rank1.pt ]]; }
until two_ranks; do sleep 0.2; (( SECONDS - t0 < 300 )) || exit 4; done
kill -9 $b $(pgrep -P $b)
# B's rank can no longer pass a checkpoint barrier, so what is on disk now is what A resumes from (a commit
# already past the barrier can still move "latest", to another two-rank step)
sleep 0.5
two_ranks || exit 5
cp -r ck departed
wait $a
"""


def test_torchrun_elastic_membership_changes_redistribute_the_residual_mass(tmp_path):
    import json

    # enough steps to outlast B's start-up (torch's import and the rendezvous, seconds on a loaded box)
    args = [*ARGS, "--max-steps", "2000", "--train-subset", "60000", "--epochs", "2", "--checkpoint-dir", "ck",
            "--checkpoint-every", "10", "--timeout", "5"]
    proc = _hermetic(["bash", "-c", ELASTIC, "elastic", str(tmp_path), sys.executable, "-m", "adlcodec.train", *args],
                     timeout=500)
    log = (tmp_path / "a.log").read_text()
    assert proc.returncode == 0, (proc.returncode, log[-3000:])
    assert "world size 1 -> 2: rank 0 takes the residuals of old rank(s) [0]" in log, log[-3000:]
    assert "world size 2 -> 1: rank 0 takes the residuals of old rank(s) [0, 1]" in log, log[-3000:]
    r = json.loads((tmp_path / "a.json").read_text())
    step = int((tmp_path / "departed" / "latest").read_text())
    assert r["world_size"] == 1 and r["resumed_world_size"] == 2 and r["resumed_from"] == step
    assert r["steps"] == 2000 and r["replicas_identical"]
    mass = sum(float(sum(v.sum() for v in _held(torch.load(tmp_path / "departed" / f"step{step:08d}-rank{k}.pt")
                                                 ["hook_state"]).values())) for k in (0, 1))
    assert mass != 0.0
    assert r["resumed_residual_sum"] == pytest.approx(mass, rel=1e-6, abs=1e-6)  # the departed rank's share is in


@pytest.mark.parametrize("mode", ["stop", "kill"])
def test_mpirun_failed_rank_with_mpi_transport_fails_every_rank_naming_it(tmp_path, mode):
    import random
    import time

    step = random.Random(mode).randint(3, 7)
    t0 = time.monotonic()
    proc = _hermetic([*MPIRUN, "-np", "3", sys.executable, "-m", "adlcodec.train", *ARGS, "--transport", "mpi",
                      "--checkpoint-dir", str(tmp_path), "--fail-at-step", str(step), "--fail-rank", "2",
                      "--fail-mode", mode, "--timeout", "3"], timeout=240)
    assert proc.returncode != 0
    if mode == "stop":
        assert "rank(s) [2] did not answer" in proc.stderr, proc.stderr[-3000:]
    else:  # a live rank names it, or mpirun noticed first and ended the job
        assert "rank(s) [2] did not answer" in proc.stderr or "exited on signal 9" in proc.stderr, proc.stderr[-3000:]
    assert time.monotonic() - t0 < 200


def test_mpi_transport_outside_mpirun_is_refused():
    proc = _hermetic([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                      "-m", "adlcodec.train", *ARGS, "--transport", "mpi"])
    assert proc.returncode != 0
    assert "transport='mpi' needs ranks started by mpirun, not by 'env'" in proc.stderr, proc.stderr[-3000:]
    # the hook itself: ranks started by torch each find a one-process MPI world
    for message in run_ranks(_mpi_outside_mpirun, 2):
        assert "AdaCompConfigError" in message and "the MPI communicator has 1 process(es)" in message, message
        assert "torch.distributed has 2 ranks" in message


def _mpi_outside_mpirun(rank, world):
    ddp = DDP(nn.Linear(600, 4))
    AdaCompState(start_iter=1, transport="mpi").attach(ddp)
    try:
        ddp(torch.randn(2, 600)).sum().backward()
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return "no error"


_MPI_HOOK_SCRIPT = r'''
import os, signal, sys, time
import torch, torch.distributed as dist
from mpi4py import MPI
from torch import nn
from torch.nn.parallel import DistributedDataParallel as DDP
from adlcodec.ddp import AdaCompState

comm = MPI.COMM_WORLD
rank, world = comm.Get_rank(), comm.Get_size()
port = comm.bcast(int(sys.argv[1]) if rank == 0 else None, root=0)
dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
torch.manual_seed(0)
ddp = DDP(nn.Linear(600, 4))  # no buffers: nothing but the hook talks after the first step
state = AdaCompState(start_iter=1, transport="mpi", timeout=2.0, overlap=sys.argv[2] == "1").attach(ddp)
for step in range(6):
    if step == 3 and rank == 2:
        os.kill(os.getpid(), signal.SIGSTOP)
    t0 = time.monotonic()
    try:
        ddp(torch.randn(4, 600)).sum().backward()
    except Exception as exc:  # DDP hands a hook's error on as RuntimeError when it came through a future
        # a file per rank: mpirun interleaves the ranks' output and can split a line between two of them
        with open(os.path.join(sys.argv[3], f"rank{rank}.txt"), "w") as f:
            f.write(f"{time.monotonic() - t0:.1f} {exc}")
        time.sleep(2)  # let the other live rank report too
        comm.Abort(3)
'''


def test_gloo_timeouts_are_recognised_on_both_ends_of_a_pair():
    # On a loaded box the rank that gives up first closes its pairs; its peers then fail with a different
    # message (seen on CI: rank 0 read "pair closure" while rank 1 had timed out), which must still lead to
    # naming the silent rank rather than to a bare RuntimeError.
    from adlcodec.ddp import collective_failure

    gave_up = "[gloo/transport/tcp/unbound_buffer.cc:81] Timed out waiting 3000ms for recv operation to complete"
    assert collective_failure(gave_up) == "timed out"
    assert collective_failure("Application timeout caused pair closure") == "timed out"
    assert collective_failure("[gloo/transport/tcp/pair.cc:534] Connection closed by peer [127.0.0.1]:20581") \
        == "lost its connection"
    assert collective_failure("Connection reset by peer") == "lost its connection"
    assert collective_failure("a collective timed out: rank(s) [2] did not answer (frozen, dead or cut off)") is None
    assert collective_failure("Unable to cast Python instance of type <class 'list'>") is None


def test_hook_errors_survive_the_pickling_launchers_do_with_their_fields():
    # Ray Train and multiprocessing hand a failed rank's exception to the driver pickled; one that cannot be
    # rebuilt there turns "rank 2 did not answer" into a TypeError about __init__
    from adlcodec.ddp import AdaCompConfigError, CollectiveTimeoutError, NonFiniteGradientError

    timeout = pickle.loads(pickle.dumps(CollectiveTimeoutError("allgather timed out", [2, 3])))
    assert type(timeout) is CollectiveTimeoutError and str(timeout) == "allgather timed out"
    assert timeout.missing == [2, 3] and isinstance(timeout, TimeoutError)
    assert pickle.loads(pickle.dumps(CollectiveTimeoutError("x", None))).missing is None
    for exc in (AdaCompConfigError("bits differ"), NonFiniteGradientError("nan in bucket 0")):
        back = pickle.loads(pickle.dumps(exc))
        assert type(back) is type(exc) and str(back) == str(exc)


@pytest.mark.parametrize("overlap", [True, False])
def test_mpi_hook_times_out_on_a_frozen_rank_naming_it(tmp_path, overlap):
    script = tmp_path / "hook.py"
    script.write_text(_MPI_HOOK_SCRIPT)
    proc = _hermetic([*MPIRUN, "-np", "3", sys.executable, str(script), "29500", str(int(overlap)), str(tmp_path)],
                     timeout=200)
    assert proc.returncode != 0
    for rank in (0, 1):
        report = tmp_path / f"rank{rank}.txt"
        assert report.exists(), proc.stdout[-3000:] + proc.stderr[-3000:]
        elapsed, message = report.read_text().split(" ", 1)
        assert "did not complete within 2 s" in message and "rank(s) [2] did not answer" in message, message
        assert float(elapsed) < 2 + 10 + 5  # the timeout, the heartbeat's grace, slack for load


# ------------------------------------------------------------------ Dask

def _dask_job(cfg, max_restarts):
    from distributed import Client, LocalCluster

    from adlcodec.dask import train_on_dask
    from adlcodec.train import TrainConfig, run

    # inside the private namespace: scheduler, nannies and workers on its loopback, no dashboards
    with LocalCluster(n_workers=cfg["ranks"], threads_per_worker=1, processes=True, host="127.0.0.1",
                      dashboard_address=None, worker_dashboard_address=None) as cluster:
        if max_restarts is None:  # as `adlcodec train --dask-scheduler ADDRESS --max-restarts 1` does
            return run(TrainConfig(**cfg, dask_scheduler=cluster.scheduler_address, max_restarts=1))
        with Client(cluster) as client:
            return train_on_dask(client, TrainConfig(**cfg), max_restarts=max_restarts)


def test_dask_restarts_after_a_killed_rank_and_ends_bit_identical(tmp_path, reference, capfd):
    cfg = dict(SMALL, ranks=2, checkpoint_dir=str(tmp_path), fail_mode="kill", timeout=5.0)
    r = in_netns(_dask_job, cfg, None)
    assert (tmp_path / "failed-once").read_text().startswith("6 ")
    assert r["launcher"] == "dask" and r["resumed_from"] == 4 and r["replicas_identical"]
    assert r["state_digest"] == reference["state_digest"]
    # the live rank failed first, naming the dead one; then every worker restarted
    out = capfd.readouterr().out
    assert "rank(s) [1] did not answer" in out and "restart 1 of 1 from the latest checkpoint" in out
    with pytest.raises(ValueError, match="restarts resume from the latest checkpoint"):
        _dask_job(dict(SMALL, ranks=2, checkpoint_dir=None, checkpoint_every=0, fail_at_step=None), 1)


# ------------------------------------------------------------------ Ray Train

def _ray_job(cfg, max_failures, storage):
    import ray

    from adlcodec.ray import train_on_ray
    from adlcodec.train import TrainConfig

    # inside the private namespace: every Ray process on its loopback, no dashboard, 2 CPUs (one per rank)
    ray.init(num_cpus=2, include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    try:
        return train_on_ray(TrainConfig(**cfg), max_failures=max_failures, storage_path=storage)
    finally:
        ray.shutdown()


def test_ray_torch_trainer_restarts_after_a_frozen_rank_and_ends_bit_identical(tmp_path, reference):
    # A frozen rank: the live one gives up after the hook's timeout, and the error it raises must reach
    # Ray's driver intact for the restart to happen. (A killed rank is Ray's own machinery on top of what
    # the torchrun and Dask tests check; a Ray cluster under a loaded CI costs 4-7 minutes a test.)
    import random

    step = random.Random("stop").randint(5, 7)  # after the checkpoint at step 4
    # 20 s, not less: under load a restarted rank can fall seconds behind its peer before it is frozen
    cfg = dict(SMALL, ranks=2, checkpoint_dir=str(tmp_path / "ck"), fail_at_step=step, fail_mode="stop", timeout=20.0)
    r = in_netns(_ray_job, cfg, 1, str(tmp_path / "ray"))
    assert (tmp_path / "ck" / "failed-once").read_text().startswith(f"{step} ")
    assert r["launcher"] == "ray" and r["resumed_from"] == 4 and r["replicas_identical"]
    assert r["state_digest"] == reference["state_digest"]


def _owner_slices_move(rank, world, steps, switch_at):
    """Reduce-scatter on a Linear layer; at ``switch_at`` the bin size changes, so every owned slice moves."""
    torch.manual_seed(0)
    model = nn.Linear(700, 4)
    ddp = DDP(model)
    state = AdaCompState(bits=1, start_iter=1, exchange="reduce_scatter").attach(ddp, register=False)
    local = []

    def keep_local(st, bucket):
        for p, g in zip(bucket.parameters(), bucket.gradients()):
            if p is model.weight:
                local.append(g.detach().clone().reshape(-1).double())
        return adacomp_hook(st, bucket)

    ddp.register_comm_hook(state, keep_local)
    applied = []
    for step in range(steps):
        if step == switch_at:
            state.bin_size = 100  # the budget changes bin sizes the same way, on every rank at once
        ddp.zero_grad()
        g = torch.Generator().manual_seed(77 + 10 * rank + step)
        nn.functional.mse_loss(ddp(torch.randn(8, 700, generator=g)), torch.ones(8, 4)).backward()
        applied.append(model.weight.grad.reshape(-1).double().clone())
    sd = state.state_dict()
    return dict(local=local, applied=applied, held=_held(sd)["weight"],
                slices=[(e["lo"], e["hi"]) for e in sd["owner_residuals"].values()])


def test_an_owner_residual_whose_slice_moves_is_folded_not_dropped():
    world = 3
    results = run_ranks(_owner_slices_move, world, 6, 3)
    assert results[0]["slices"] != [(0, 1000)] and all(lo % 100 == 0 for r in results for lo, _ in r["slices"])
    sent = sum(sum(r["local"]) for r in results)
    applied = world * sum(results[0]["applied"][1:]) + results[0]["applied"][0] * world  # step 0: warm-up
    held = sum(r["held"] for r in results)
    np.testing.assert_allclose((applied + held).numpy(), sent.numpy(), rtol=1e-4, atol=1e-5)
