"""Training entry: data loader, model, launchers (spawn, torchrun, mpirun), exact resume.

Multi-rank runs use loopback only; CI runs this file inside scripts/cluster/hermetic.sh.
"""

from __future__ import annotations

import gzip
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from adlcodec.data import DEFAULT_DATA_DIR, load_fashion_mnist, read_idx  # noqa: E402
from adlcodec.models import PaperCNN  # noqa: E402
from adlcodec.train import TrainConfig, run  # noqa: E402

ENV = dict(os.environ, OMP_NUM_THREADS="1", GLOO_SOCKET_IFNAME="lo")
# adl = SGD + adaptive LR (stepped every 4 steps, so the checkpoint at step 5 cuts a loss window) + adacomp hook
SMALL = dict(ranks=2, max_steps=12, train_subset=2048, eval_subset=300, batch_size=16, progress=False, seed=3,
             optimizer="adl", lr_interval=4)
SMALL_ARGS = ["--optimizer", "adl", "--lr-interval", "4", "--max-steps", "12", "--train-subset", "2048",
              "--eval-subset", "300", "--batch-size", "16",
              "--seed", "3", "--no-progress"]


def _mpirun(ranks: int, *train_args: str) -> list[str]:
    """``python -m adlcodec.train TRAIN_ARGS`` on ``ranks`` MPI ranks, Open MPI kept on loopback."""
    return ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(ranks), "-x", "OMP_NUM_THREADS=1",
            "-x", "GLOO_SOCKET_IFNAME=lo", "-x", "PYTHONPATH", "--mca", "btl", "self,tcp", "--mca",
            "btl_tcp_if_include", "lo", "--mca", "oob_tcp_if_include", "lo",
            sys.executable, "-m", "adlcodec.train", *train_args]


# ------------------------------------------------------------------ data and model

def test_fashion_mnist_loads_from_debian_package():
    x, y = load_fashion_mnist(split="test")
    assert x.shape == (10000, 1, 28, 28) and x.dtype == np.float32
    assert y.shape == (10000,) and set(np.unique(y)) == set(range(10))
    assert abs(float(x.mean())) < 0.1  # normalised


def test_plain_and_gz_idx_files_read_the_same(tmp_path):
    gz = Path(DEFAULT_DATA_DIR) / "t10k-labels-idx1-ubyte.gz"
    plain = tmp_path / "t10k-labels-idx1-ubyte"
    plain.write_bytes(gzip.decompress(gz.read_bytes()))
    np.testing.assert_array_equal(read_idx(plain), read_idx(gz))


def test_corrupt_idx_files_are_rejected(tmp_path):
    bad_magic = tmp_path / "bad"
    bad_magic.write_bytes(b"\x01\x02\x08\x01" + b"\x00" * 8)
    with pytest.raises(ValueError, match="not an IDX file"):
        read_idx(bad_magic)
    truncated = tmp_path / "short"
    truncated.write_bytes(b"\x00\x00\x08\x01\x00\x00\x00\x0a" + b"\x00" * 3)
    with pytest.raises(ValueError, match="needs 10"):
        read_idx(truncated)
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        load_fashion_mnist(tmp_path)


def test_model_shape_and_input_check():
    model = PaperCNN()
    assert model(torch.zeros(3, 1, 28, 28)).shape == (3, 10)
    assert 100_000 < sum(p.numel() for p in model.parameters()) < 1_000_000
    with pytest.raises(ValueError, match="28, 28"):
        model(torch.zeros(3, 1, 32, 32))


@pytest.mark.parametrize("field, value, exc", [("ranks", 0, ValueError), ("batch_size", 2.5, TypeError),
                                                ("hook", "nccl", ValueError), ("lr", -1.0, ValueError)])
def test_bad_train_config_is_rejected(field, value, exc):
    with pytest.raises(exc, match=field):
        TrainConfig(**{field: value}).validate()


# ------------------------------------------------------------------ launchers and resume

@pytest.fixture(scope="module")
def uninterrupted():
    return run(TrainConfig(**SMALL))


_FORK_SERVER_PROBE = r"""
import json, multiprocessing, os, sys
from multiprocessing import forkserver
import torch.multiprocessing as mp
from adlcodec.train import _rank_fork_server

def report(rank, out):
    with open(f"{out}/{rank}.json", "w") as f:
        json.dump(dict(ppid=os.getppid(), mark=os.environ.get("ADLCODEC_PROBE_MARK"),
                       preloaded="adlcodec.ddp" in sys.modules), f)

def ranks(method, out, mark):
    os.environ["ADLCODEC_PROBE_MARK"] = mark  # set after import: the ranks must see it all the same
    mp.start_processes(report, args=(out,), nprocs=3, join=True, start_method=method)
    return [json.load(open(f"{out}/{r}.json")) for r in range(3)]

if __name__ == "__main__":
    out = sys.argv[1]
    server = forkserver._forkserver
    before = list(server._preload_modules)
    with _rank_fork_server() as method:
        ours = dict(method=method, ranks=ranks(method, out, "first"))
    ours["stopped"] = server._forkserver_pid is None and server._preload_modules == before
    # a fork server the program already runs (its own preloads, its own environment) is left alone
    ctx = multiprocessing.get_context("forkserver")
    p = ctx.Process(target=print); p.start(); p.join()
    theirs = server._forkserver_pid
    with _rank_fork_server() as method:
        other = dict(method=method, ranks=ranks(method, out, "second"))
    other["left_running"] = server._forkserver_pid == theirs
    print(json.dumps(dict(pid=os.getpid(), ours=ours, other=other)))
"""


def test_local_ranks_fork_from_one_server_of_the_run_that_sees_its_environment(tmp_path):
    script = tmp_path / "probe.py"
    script.write_text(_FORK_SERVER_PROBE)
    proc = subprocess.run([sys.executable, str(script), str(tmp_path)], env=ENV, capture_output=True, text=True,
                          timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(proc.stdout.splitlines()[-1])
    ours = r["ours"]
    assert ours["method"] == "forkserver" and ours["stopped"]
    # every rank forked by one fork server (not by the launcher), torch and adlcodec already imported there
    parents = {rank["ppid"] for rank in ours["ranks"]}
    assert len(parents) == 1 and r["pid"] not in parents
    assert all(rank["preloaded"] and rank["mark"] == "first" for rank in ours["ranks"])
    other = r["other"]
    assert other["method"] == "spawn" and other["left_running"]
    assert all(rank["ppid"] == r["pid"] and rank["mark"] == "second" for rank in other["ranks"])


def test_spawned_ranks_train_and_agree(uninterrupted):
    r = uninterrupted
    assert r["launcher"] == "spawn" and r["world_size"] == 2 and r["steps"] == 12
    assert r["replicas_identical"]
    assert r["accuracy"] > 30.0  # 12 steps from 10 % chance level
    assert r["compression_ratio"] > 20 and r["ratio"] == r["compression_ratio"]
    assert r["config"]["hook"] == "adacomp"
    # the adaptive rate was evaluated at steps 4, 8, 12: first call records, then it climbs to the 2x clamp
    assert [s for s, _ in r["lr_curve"]] == [4, 8, 12]
    assert r["lr_curve"][0][1] == 0.002 and r["lr_curve"][-1][1] == pytest.approx(0.004)


def test_tail_evaluations_do_not_change_training(uninterrupted):
    r = run(TrainConfig(**SMALL, eval_every=3, eval_last=7))
    assert [s for s, _ in r["accuracy_curve"]] == [6, 9, 12]  # 3 is not within the last 7 steps; 12 is the final
    assert r["accuracy_curve"][-1][1] == r["accuracy"]
    assert r["state_digest"] == uninterrupted["state_digest"]  # evaluation draws no random numbers, moves no weights


def test_checkpoint_kill_and_resume_is_bit_exact(uninterrupted, tmp_path):
    cfg = dict(SMALL, checkpoint_dir=str(tmp_path), checkpoint_every=3, fail_at_step=7)
    with pytest.raises(Exception):  # rank 1 dies hard at step 7
        run(TrainConfig(**cfg))
    assert (tmp_path / "latest").read_text() == "6"
    resumed = run(TrainConfig(**cfg))
    assert resumed["resumed_from"] == 6
    assert resumed["state_digest"] == uninterrupted["state_digest"]
    # the latest checkpoint and the one before it stay: step 3's files went when step 9's were written (the
    # last step, 12, ends the run without one)
    assert sorted(p.name for p in tmp_path.glob("*.pt")) == [f"step{s:08d}-rank{r}.pt" for s in (6, 9) for r in (0, 1)]


def test_overlap_and_bucketing_do_not_change_a_bit(uninterrupted):
    # overlapped with DDP's default buckets (the default) against one bucket exchanged inside the hook call
    assert uninterrupted["config"]["overlap"] and uninterrupted["hook_stats"]["allgather_buckets"] > 0
    in_call = run(TrainConfig(**SMALL, overlap=False))
    assert in_call["state_digest"] == uninterrupted["state_digest"]


def test_step_beyond_compute_is_split_at_the_slowest_ranks_backward():
    from adlcodec.train import _waiting

    # rank x step x (start, own backward computed, backward() returned)
    a = dict(boot_id="b", marks=[(0.0, 1.0, 2.5), (10.0, 12.0, 12.5)])
    b = dict(boot_id="b", marks=[(0.0, 2.0, 2.5), (10.0, 11.0, 12.4)])
    w = _waiting([a, b])
    assert w["fwd_bwd_s"] == pytest.approx((1 + 2 + 2 + 1) / 4)
    assert w["wait_for_slowest_s"] == pytest.approx((1 + 0 + 0 + 1) / 4)
    assert w["after_slowest_s"] == pytest.approx((0.5 + 0.5 + 0.5 + 0.4) / 4)
    # two kernels, two clocks: no split
    assert _waiting([a, dict(b, boot_id="c")])["wait_for_slowest_s"] is None
    assert _waiting([a, dict(b, marks=b["marks"][:1])])["after_slowest_s"] is None


def test_barrier_hook_waits_for_every_rank_but_averages_nothing(uninterrupted):
    # the testbed's floor of a synchronous step: the ranks meet once per bucket, each keeps its own gradient
    r = run(TrainConfig(**dict(SMALL, optimizer="sgd", hook="barrier")))
    assert r["steps"] == 12 and r["config"]["hook"] == "barrier"
    assert not r["replicas_identical"]  # averaged gradients would have kept them identical
    assert r["payload_bytes_per_step"] == 4
    # one clock for both ranks: no rank's backward() can return before the slowest rank handed over its last
    # bucket, since the last bucket's allreduce needs every rank
    assert r["fwd_bwd_s"] > 0 and r["wait_for_slowest_s"] >= 0 and r["after_slowest_s"] >= 0
    # the same shards with gradients averaged (the adacomp hook) kept the replicas identical
    assert uninterrupted["replicas_identical"]


# reduce-scatter on 3 ranks: each rank owns a slice, so a resume must restore the owners' residuals too
SMALL_RS = dict(SMALL, ranks=3, exchange="reduce_scatter")


@pytest.fixture(scope="module")
def uninterrupted_rs():
    return run(TrainConfig(**SMALL_RS))


def test_reduce_scatter_checkpoint_kill_and_resume_is_bit_exact(uninterrupted_rs, tmp_path):
    assert uninterrupted_rs["replicas_identical"] and uninterrupted_rs["hook_stats"]["reduce_scatter_buckets"] > 0
    cfg = dict(SMALL_RS, checkpoint_dir=str(tmp_path), checkpoint_every=5, fail_at_step=7)
    with pytest.raises(Exception):
        run(TrainConfig(**cfg))
    resumed = run(TrainConfig(**cfg))
    assert resumed["resumed_from"] == 5
    assert resumed["state_digest"] == uninterrupted_rs["state_digest"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mpirun") is None, reason="Open MPI not installed")
def test_mpirun_reduce_scatter_overlapped_matches_torch_transport(uninterrupted_rs, tmp_path):
    pytest.importorskip("mpi4py")
    out = tmp_path / "m.json"
    cmd = _mpirun(3, *SMALL_ARGS, "--transport", "mpi", "--exchange", "reduce-scatter",
           "--out", str(out))
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["launcher"] == "mpi" and r["replicas_identical"] and r["config"]["overlap"]
    assert r["hook_stats"]["reduce_scatter_buckets"] > 0
    assert r["state_digest"] == uninterrupted_rs["state_digest"]
    assert "reduce-scatter buckets, overlapped" in proc.stdout


@pytest.mark.slow
def test_torchrun_restart_after_killed_rank_matches_uninterrupted(uninterrupted, tmp_path):
    out = tmp_path / "r.json"
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
           "--max-restarts", "1", "-m", "adlcodec.train", *SMALL_ARGS, "--checkpoint-dir", str(tmp_path / "ck"),
           "--checkpoint-every", "5", "--fail-at-step", "7", "--out", str(out)]
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert (tmp_path / "ck" / "failed-once").exists(), "the rank was never killed"
    assert r["launcher"] == "env" and r["resumed_from"] == 5
    assert r["state_digest"] == uninterrupted["state_digest"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mpirun") is None, reason="Open MPI not installed")
def test_mpirun_with_mpi_transport_matches_torch_transport(uninterrupted, tmp_path):
    pytest.importorskip("mpi4py")
    out = tmp_path / "m.json"
    cmd = _mpirun(2, *SMALL_ARGS, "--transport", "mpi", "--out", str(out))
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["launcher"] == "mpi" and r["replicas_identical"]
    # same arithmetic in the same order: the transport must not change a single bit
    assert r["state_digest"] == uninterrupted["state_digest"]


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("mpirun") is None, reason="Open MPI not installed")
def test_mpirun_with_bandwidth_budget_takes_identical_decisions(tmp_path):
    pytest.importorskip("mpi4py")
    out = tmp_path / "b.json"
    cmd = _mpirun(3, *SMALL_ARGS[:4], "--max-steps", "30", *SMALL_ARGS[6:],
           "--transport", "mpi", "--link-mbps", "0.05", "--max-comm-ms", "300", "--budget-interval", "3",
           "--budget-first-window", "3",
           "--out", str(out))
    proc = subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    r = json.loads(out.read_text())
    assert r["launcher"] == "mpi" and r["world_size"] == 3 and r["steps"] == 30
    assert r["replicas_identical"] and r["budget_decisions_identical"]
    budget = r["hook_stats"]["budget"]
    assert budget["decisions"] >= 8 and len(budget["history"]) == budget["decisions"]
    assert len(r["hook_stats"]["exchange_log"]) == 27  # compressed iterations 2..28; 29's time never travels
    assert "bandwidth budget     300 ms at 0.05 Mbit/s" in proc.stdout


def test_cli_train_prints_summary_and_saves_metrics_and_curves(tmp_path):
    out = tmp_path / "run"
    proc = subprocess.run([sys.executable, "-m", "adlcodec", "train", "--optimizer", "adl", "--ranks", "2", "--max-steps", "5",
                           "--train-subset", "1024", "--eval-subset", "200", "--out", str(out)],
                          env=ENV, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for text in ("test accuracy", "test loss", "time per step", "compression ratio", "bytes on the wire",
                 f"saved results to {out}"):
        assert text in proc.stdout
    assert "train[adacomp] adl" in proc.stderr  # tqdm progress bar on rank 0
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["steps"] == 5 and metrics["config"]["optimizer"] == "adl"
    assert 0 <= metrics["accuracy"] <= 100 and metrics["loss"] > 0 and metrics["seconds"] > 0
    assert metrics["ratio"] > 40
    png = (out / "curves.png").read_bytes()
    assert png[:8] == b"\x89PNG\r\n\x1a\n" and len(png) > 10_000


def test_cli_rejects_bad_arguments():
    proc = subprocess.run([sys.executable, "-m", "adlcodec", "train", "--ranks", "0"], env=ENV, capture_output=True, text=True, timeout=60)
    assert proc.returncode == 2 and "ranks must be >= 1" in proc.stderr
    proc = subprocess.run([sys.executable, "-m", "adlcodec", "train", "--optimizer", "lbfgs"], env=ENV, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 2 and "invalid choice: 'lbfgs'" in proc.stderr


@pytest.mark.parametrize("optimizer, lr, hook", [("sgd", 0.002, "allreduce"), ("adam", 1e-3, "allreduce"),
                                                  ("adadelta", 1.0, "allreduce"), ("adl", 0.002, "adacomp")])
def test_optimizer_defaults(optimizer, lr, hook):
    cfg = TrainConfig(optimizer=optimizer)
    cfg.validate()
    assert (cfg.lr, cfg.hook) == (lr, hook)
    assert TrainConfig(optimizer=optimizer, hook="fp16", lr=0.5).hook == "fp16"  # explicit choices win


def test_unknown_optimizer_is_rejected():
    with pytest.raises(ValueError, match="optimizer must be one of"):
        TrainConfig(optimizer="lbfgs").validate()


@pytest.mark.parametrize("field,value,error,match", [
    ("eval_every", 2.5, TypeError, "eval_every must be an int, got float"),
    ("eval_every", True, TypeError, "eval_every must be an int, got bool"),
    ("eval_every", -1, ValueError, "eval_every must be >= 0, got -1"),
    ("eval_last", "3", TypeError, "eval_last must be an int, got str"),
    ("eval_last", 0, ValueError, "eval_last must be >= 1, got 0"),
    ("batch_size", 0, ValueError, "batch_size must be >= 1"),
])
def test_bad_config_values_name_the_field(field, value, error, match):
    with pytest.raises(error, match=match):
        TrainConfig(**{field: value}).validate()
    TrainConfig(eval_every=0).validate()  # 0: evaluate only at epoch ends
