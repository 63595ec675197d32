"""Data-parallel training of the paper CNN with a choice of optimizers and DDP hooks.

``--optimizer adl`` is the paper's method: SGD (with momentum) + the adaptive
learning rate of :mod:`adlcodec.lr` + the adlcodec (AdaComp) DDP hook.  The
other optimizers default to plain fp32 allreduce (``--hook`` overrides).
Data: an MNIST-format IDX folder or CIFAR-10/100 pickles (:mod:`adlcodec.data`).

One entry point for three ways of starting ranks:

* ``torchrun --nproc-per-node N -m adlcodec.train ...`` (or any launcher that
  sets ``RANK``/``WORLD_SIZE``/``MASTER_ADDR``/``MASTER_PORT``): ``env://``;
* ``mpirun -np N python -m adlcodec.train ...``: rank and size from MPI; rank 0
  picks a free port and broadcasts it, gloo is initialised over TCP;
* no launcher (``adlcodec train --ranks N``): N local processes are spawned and
  meet on 127.0.0.1.

Everything is deterministic for a given seed on CPU, so a run that is
checkpointed, killed and resumed ends bit-identical to an uninterrupted one.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import gc
import hashlib
import io
import json
import math
import os
import pickle
import signal
import socket
import sys
import time
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import numpy as np

# "barrier" is an instrument, not a way to train: see barrier_hook
HOOKS = ("allreduce", "fp16", "powersgd", "adacomp", "barrier")
OPTIMIZERS = ("sgd", "adam", "adamax", "adagrad", "adadelta", "rmsprop", "adl")
# torch's documented defaults, except SGD/ADL: 0.002 with momentum 0.9 for this CNN at batch 32 per rank.
# At 0.02 (an effective step of 0.2) one evaluation swings by points from snapshot to snapshot, and
# error feedback's delayed residual makes it worse (docs/PAPER.md, "Learning rate").
DEFAULT_LR = dict(sgd=0.002, adl=0.002, adam=1e-3, adamax=2e-3, adagrad=1e-2, adadelta=1.0, rmsprop=1e-3)
FAIL_EXIT_CODE = 17
FAIL_MODES = ("exit", "kill", "stop")


@dataclass
class TrainConfig:
    ranks: int = 2
    epochs: float = 1.0
    batch_size: int = 32
    lr: float | None = None  # None: DEFAULT_LR[optimizer]
    momentum: float = 0.9
    seed: int = 0
    optimizer: str = "sgd"
    hook: str | None = None  # None: "adacomp" for adl, else "allreduce"
    lr_interval: int = 50  # steps per adaptive-LR evaluation (and per loss-curve point)
    min_lr: float | None = None
    max_lr: float | None = None
    bits: int = 1
    bin_size: int | None = None
    start_iter: int = 2
    on_nonfinite: str = "skip"
    powersgd_rank: int = 1
    transport: str = "torch"
    exchange: str = "auto"  # adacomp hook: "auto", "allgather" or "reduce_scatter"
    overlap: bool = True  # adacomp hook: exchange on a communication thread while backward goes on
    link_mbps: float | None = None  # with max_comm_ms: the adacomp hook's bandwidth budget
    max_comm_ms: float | None = None
    budget_interval: int = 10
    budget_first_window: int | None = None  # None: the controller's default
    data: str | None = None
    max_steps: int | None = None
    train_subset: int | None = None
    eval_subset: int | None = None
    eval_every: int = 0  # also evaluate every this many steps (0: only at epoch ends) ...
    eval_last: int | None = None  # ... within the last this many steps (None: the whole run)
    out: str | None = None
    checkpoint_dir: str | None = None
    checkpoint_every: int = 0
    fail_at_step: int | None = None
    fail_rank: int = 1
    fail_mode: str = "exit"  # how the failing rank fails: "exit" (code 17), "kill" (SIGKILL), "stop" (SIGSTOP)
    timeout: float | None = None  # seconds any collective may take (None: the hook's default, gloo's own)
    dask_scheduler: str | None = None  # run the ranks as tasks on this Dask cluster (adlcodec.dask)
    max_restarts: int = 0  # with dask_scheduler: restarts of every rank from the latest checkpoint
    bucket_cap_mb: float | None = None
    hidden: int | None = None  # units of the first linear layer (None: the model's default)
    timing_warmup: int = 3
    iface: str | None = None
    progress: bool = True
    master_addr: str = "127.0.0.1"

    def __post_init__(self):
        if self.optimizer in DEFAULT_LR:
            if self.lr is None:
                self.lr = DEFAULT_LR[self.optimizer]
            if self.hook is None:
                self.hook = "adacomp" if self.optimizer == "adl" else "allreduce"

    def validate(self) -> None:
        def positive_int(name, value, allow_none=False):
            if value is None and allow_none:
                return
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")

        positive_int("ranks", self.ranks)
        positive_int("batch_size", self.batch_size)
        positive_int("max_steps", self.max_steps, allow_none=True)
        positive_int("train_subset", self.train_subset, allow_none=True)
        positive_int("eval_subset", self.eval_subset, allow_none=True)
        positive_int("powersgd_rank", self.powersgd_rank)
        positive_int("lr_interval", self.lr_interval)
        positive_int("eval_last", self.eval_last, allow_none=True)
        if isinstance(self.eval_every, bool) or not isinstance(self.eval_every, int):
            raise TypeError(f"eval_every must be an int, got {type(self.eval_every).__name__}")
        if self.eval_every < 0:
            raise ValueError(f"eval_every must be >= 0, got {self.eval_every}")
        if self.optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {self.optimizer!r}")
        for name in ("min_lr", "max_lr"):
            value = getattr(self, name)
            if value is not None and not value > 0:
                raise ValueError(f"{name} must be > 0, got {value}")
        if not self.epochs > 0:
            raise ValueError(f"epochs must be > 0, got {self.epochs}")
        if self.lr is None or not self.lr > 0:
            raise ValueError(f"lr must be > 0, got {self.lr}")
        if self.hook not in HOOKS:
            raise ValueError(f"hook must be one of {HOOKS}, got {self.hook!r}")
        if self.exchange not in ("auto", "allgather", "reduce_scatter"):
            raise ValueError(f"exchange must be 'auto', 'allgather' or 'reduce_scatter', got {self.exchange!r}")
        if self.transport not in ("torch", "mpi"):
            raise ValueError(f"transport must be 'torch' or 'mpi', got {self.transport!r}")
        if (self.link_mbps is None) != (self.max_comm_ms is None):
            raise ValueError("link_mbps and max_comm_ms go together")
        if self.link_mbps is not None and self.hook != "adacomp":
            raise ValueError(f"a bandwidth budget needs the adacomp hook, not {self.hook!r}")
        positive_int("budget_interval", self.budget_interval)
        positive_int("budget_first_window", self.budget_first_window, allow_none=True)
        if self.checkpoint_every < 0:
            raise ValueError(f"checkpoint_every must be >= 0, got {self.checkpoint_every}")
        if self.checkpoint_every and not self.checkpoint_dir:
            raise ValueError("checkpoint_every needs checkpoint_dir")
        if self.fail_mode not in FAIL_MODES:
            raise ValueError(f"fail_mode must be one of {FAIL_MODES}, got {self.fail_mode!r}")
        if self.timeout is not None and not (isinstance(self.timeout, (int, float)) and not isinstance(
                self.timeout, bool) and math.isfinite(self.timeout) and self.timeout > 0):
            raise ValueError(f"timeout must be a positive number of seconds, got {self.timeout!r}")
        if self.fail_at_step is not None and not self.checkpoint_dir:
            raise ValueError("fail_at_step needs checkpoint_dir (it records that the failure already happened)")


# --------------------------------------------------------------------------- launch

def detect_launcher() -> str:
    if "OMPI_COMM_WORLD_SIZE" in os.environ or "PMI_SIZE" in os.environ:
        return "mpi"
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:
        return "env"
    return "spawn"


def _free_port(addr: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((addr, 0))
        return s.getsockname()[1]


def run(config: TrainConfig) -> dict | None:
    """Train under whichever launcher started us; returns rank 0's results (else None)."""
    config.validate()
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    if config.dask_scheduler:
        from distributed import Client

        from .dask import train_on_dask

        with Client(config.dask_scheduler) as client:
            return train_on_dask(client, config, max_restarts=config.max_restarts)
    launcher = detect_launcher()
    if launcher == "spawn":
        return _spawn(config)
    if launcher == "mpi":
        from mpi4py import MPI

        comm = MPI.COMM_WORLD
        rank, world = comm.Get_rank(), comm.Get_size()
        addr = os.environ.get("MASTER_ADDR", config.master_addr)
        port = comm.bcast(_free_port(addr) if rank == 0 else None, root=0)
        try:
            return _worker(rank, world, f"tcp://{addr}:{port}", config, launcher)
        except BaseException:
            # Left alone, the other ranks would wait in MPI forever (and a frozen one stays frozen): as
            # ``python -m mpi4py`` does, report and abort the whole job.
            import traceback

            traceback.print_exc()
            sys.stderr.flush()
            comm.Abort(1)
    rank, world = int(os.environ["RANK"]), int(os.environ["WORLD_SIZE"])
    if config.transport == "mpi":
        raise ValueError(f"transport='mpi' needs ranks started by mpirun, not by {launcher!r}: each process would "
                         "be an MPI world of its own and the ranks would train apart")
    return _worker(rank, world, "env://", config, launcher)


def _spawn_entry(rank, world, init_method, config, result_path):
    result = _worker(rank, world, init_method, config, "spawn")
    if rank == 0:
        Path(result_path).write_text(json.dumps(result))


# What the fork server imports once for every local rank (`import torch` alone is ~3 s of CPU here, more on a Pi).
_RANK_PRELOAD = ["torch", "torch.distributed", "torch.nn.functional", "torch.nn.parallel", "adlcodec.train",
                 "adlcodec.ddp", "adlcodec.data", "adlcodec.models"]


def _spawn(config: TrainConfig) -> dict:
    import tempfile

    import torch.multiprocessing as mp

    if config.transport == "mpi":
        raise ValueError("transport='mpi' needs ranks started by mpirun")
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    init = f"tcp://{config.master_addr}:{_free_port(config.master_addr)}"
    with tempfile.TemporaryDirectory() as tmp, _rank_fork_server() as start_method:
        result_path = os.path.join(tmp, "result.json")
        context = mp.start_processes(
            _spawn_entry, args=(config.ranks, init, config, result_path), nprocs=config.ranks,
            join=False, start_method=start_method,
        )
        # when a rank fails the others are terminated; a frozen one ignores SIGTERM, so SIGKILL follows soon
        while not context.join(grace_period=5):
            pass
        return json.loads(Path(result_path).read_text())


@contextlib.contextmanager
def _rank_fork_server():
    """A fork server of this run's own: one fresh interpreter imports torch and adlcodec, and every local rank
    is forked from it, instead of N interpreters importing them each. It starts now, so the ranks get this
    moment's environment and network namespace, and it stops with the run. If the process already has a fork
    server (its owner's, with its own preloads and environment), the ranks are spawned as before."""
    import multiprocessing
    from multiprocessing import forkserver

    server = getattr(forkserver, "_forkserver", None)
    if (server is None or getattr(server, "_forkserver_pid", 1) is not None or not hasattr(server, "_stop")
            or "forkserver" not in multiprocessing.get_all_start_methods()):
        yield "spawn"
        return
    preload = server._preload_modules
    server.set_forkserver_preload(_RANK_PRELOAD)
    try:
        yield "forkserver"
    finally:
        server._stop()
        server._preload_modules = preload


# --------------------------------------------------------------------------- helpers

def _net_tx_bytes(iface: str | None) -> int | None:
    """Bytes sent so far on ``iface`` in this network namespace (/proc/net/dev)."""
    if not iface:
        return None
    try:
        with open("/proc/net/dev") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name.strip() == iface:
                    return int(rest.split()[8])
    except OSError:
        return None
    return None


def _peer_bytes(hook_state) -> int | None:
    """What adlcodec's hook has sent to other ranks so far (its ``peer_bytes``), for the same window as
    the wire counter, so that the two can be compared: the transport's share is their difference."""
    if hook_state is None or not hasattr(hook_state, "stats"):
        return None
    return hook_state.stats().get("peer_bytes")


def _shard(n: int, rank: int, world: int, epoch: int, seed: int) -> np.ndarray:
    """Indices of this rank's samples for ``epoch``; equal length on every rank."""
    order = np.random.default_rng([seed, epoch]).permutation(n)
    per_rank = n // world
    return order[rank * per_rank : (rank + 1) * per_rank]


def state_digest(module) -> str:
    """SHA-256 over the parameters: equal digests = bit-identical replicas.

    Buffers are left out on purpose: BatchNorm running statistics are local
    between DDP's per-forward broadcasts from rank 0.
    """
    h = hashlib.sha256()
    for name, t in module.named_parameters():
        h.update(name.encode())
        h.update(t.detach().cpu().contiguous().numpy().tobytes())
    return h.hexdigest()


def _payload_bytes_per_step(hook: str, model, powersgd_rank: int) -> int:
    """Bytes each rank puts into the collective per step for the built-in hooks."""
    if hook == "barrier":
        return 4  # one float32 a bucket, counted once
    total = 0
    for p in model.parameters():
        n = p.numel()
        if hook == "allreduce":
            total += 4 * n
        elif hook == "fp16":
            total += 2 * n
        elif hook == "powersgd":
            if p.dim() > 1:
                rows, cols = p.shape[0], n // p.shape[0]
                lowrank = powersgd_rank * (rows + cols)
                # PowerSGD leaves a matrix uncompressed unless it saves >= 2x (min_compression_rate)
                total += 4 * (lowrank if rows * cols >= 2 * lowrank else n)
            else:
                total += 4 * n
    return total


def _boot_id() -> str | None:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return None


def _waiting(everyone: list[dict]) -> dict:
    """Where a synchronous step's time beyond a rank's own computation goes, means over ranks and timed steps:
    ``fwd_bwd_s``, a rank's own forward and backward computation; ``wait_for_slowest_s``, from there to the
    end of the slowest rank's backward computation in the same step (no exchange can finish sooner);
    ``after_slowest_s``, from there to the end of ``backward()`` (the exchange that nothing hid).

    The ranks' clocks must be one clock: only when every rank ran under the same kernel (same boot id, so
    one CLOCK_MONOTONIC, which ``perf_counter`` reads on Linux), e.g. the emulated testbed; else ``None``."""
    none = dict(fwd_bwd_s=None, wait_for_slowest_s=None, after_slowest_s=None)
    if len({m["boot_id"] for m in everyone}) != 1 or everyone[0]["boot_id"] is None:
        return none
    if len({len(m["marks"]) for m in everyone}) != 1 or not everyone[0]["marks"]:
        return none
    t = np.array([m["marks"] for m in everyone])  # rank x step x (start, computed, backward returned)
    slowest = t[:, :, 1].max(axis=0)
    return dict(fwd_bwd_s=float((t[:, :, 1] - t[:, :, 0]).mean()),
                wait_for_slowest_s=float((slowest - t[:, :, 1]).mean()),
                after_slowest_s=float((t[:, :, 2] - slowest).mean()))


def barrier_hook(_, bucket):
    """A DDP hook that makes the ranks wait for each other as any exchange does, but sends one number per
    bucket and leaves each rank its own gradient.

    Its step time is the floor of every synchronous exchange on a cluster: the compute of the slowest rank
    in each step (ranks whose speed jitters finish their backward at different times) plus one message
    latency, with no bytes and no codec work.  Replicas drift apart, so it measures and does not train."""
    import torch
    import torch.distributed as dist

    token = torch.zeros(1)
    buffer = bucket.buffer()
    return dist.all_reduce(token, async_op=True).get_future().then(lambda _: buffer)


# --------------------------------------------------------------------------- checkpoints

# What a resume may change.  Codec, exchange and budget settings only decide how residual mass is sent later
# (the hook state uses the new ones, AdaCompState.load_state_dict); length, evaluation, logging and launch
# settings do not touch the training state; the world size is handled by redistributing the residuals.
# Everything else is baked into the checkpointed state (model shape, optimizer and scheduler state, data order)
# and cannot follow a new value, so a resume that changes it is refused.
RESUME_SAFE = frozenset({
    "ranks", "epochs", "bits", "bin_size", "start_iter", "on_nonfinite", "transport", "exchange", "overlap",
    "link_mbps", "max_comm_ms", "budget_interval", "budget_first_window", "max_steps", "eval_subset", "eval_every",
    "eval_last", "out", "checkpoint_dir", "checkpoint_every", "fail_at_step", "fail_rank", "bucket_cap_mb",
    "fail_mode", "timing_warmup", "iface", "progress", "master_addr", "timeout", "dask_scheduler", "max_restarts",
})


def _ckpt_path(directory: str, step: int, rank: int) -> Path:
    return Path(directory) / f"step{step:08d}-rank{rank}.pt"


def _save_checkpoint(config, rank, world, step, model, optimizer, hook_state, extra):
    import torch
    import torch.distributed as dist

    if hook_state is None:
        hook = None
    elif hasattr(hook_state, "state_dict"):  # adlcodec's: plain tensors and numbers, residuals by name
        hook = hook_state.state_dict()
    else:  # PowerSGD's state pickles; its bytes load with weights_only too
        hook = pickle.dumps(hook_state)
    buf = io.BytesIO()
    torch.save(
        {
            "step": step,
            "world_size": world,
            "config": dataclasses.asdict(config),
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "hook_state": hook,
            "torch_rng": torch.get_rng_state(),
            "extra": extra,  # scheduler, partial loss window, curves
        },
        buf,
    )
    path = _ckpt_path(config.checkpoint_dir, step, rank)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(buf.getvalue())
    os.replace(tmp, path)
    # "latest" is only advanced once every rank has its file on disk
    dist.barrier()
    if rank == 0:
        latest = Path(config.checkpoint_dir) / "latest"
        previous = int(latest.read_text()) if latest.is_file() else step
        latest.with_suffix(".tmp").write_text(str(step))
        os.replace(latest.with_suffix(".tmp"), latest)
        _prune_checkpoints(config.checkpoint_dir, keep_from=min(previous, step))
    dist.barrier()


def _prune_checkpoints(directory: str, keep_from: int) -> None:
    """Delete the files of checkpoints older than ``keep_from``: the latest and the one before it stay (a
    fallback a user can point "latest" at), the rest would fill a Pi's SD card at about 10 MB per rank per
    checkpoint of the paper's CNN."""
    for path in Path(directory).glob("step*-rank*.pt"):
        try:
            old = int(path.name[4:12]) < keep_from
        except ValueError:  # not one of ours
            continue
        if old:
            path.unlink(missing_ok=True)


def resume_changes(saved: dict, config) -> tuple[list[str], list[str]]:
    """(settings a resume may change and does, settings it may not change but does), one line each."""
    now = dataclasses.asdict(config)
    safe, unsafe = [], []
    for name, value in now.items():
        if name in saved and saved[name] != value:
            (safe if name in RESUME_SAFE else unsafe).append(f"{name}: checkpoint {saved[name]!r}, now {value!r}")
    return safe, unsafe


def _load_checkpoint(config, rank, world):
    """This rank's checkpoint (``None`` without one), after checking that the job may resume from it; at
    another world size its hook state is this rank's share of every old rank's residuals."""
    import torch

    if not config.checkpoint_dir:
        return None
    latest = Path(config.checkpoint_dir) / "latest"
    if not latest.is_file():
        return None
    step = int(latest.read_text())
    first = torch.load(_ckpt_path(config.checkpoint_dir, step, 0), weights_only=True)
    old_world = first.get("world_size")
    if old_world is None:  # written before checkpoints recorded world size and configuration
        return torch.load(_ckpt_path(config.checkpoint_dir, step, rank), weights_only=False)
    safe, unsafe = resume_changes(first["config"], config)
    if unsafe:
        raise ValueError(f"cannot resume from {config.checkpoint_dir} (step {step}): these settings are part of "
                         "the checkpointed training state and must stay as they were: " + "; ".join(unsafe))
    if old_world != world and config.hook == "powersgd":
        raise ValueError(f"cannot resume a {old_world}-rank PowerSGD run with {world} ranks: its error-feedback "
                         "state is per rank and cannot be redistributed (the adacomp hook's can)")
    own = _ckpt_path(config.checkpoint_dir, step, rank)
    ckpt = first if rank == 0 else torch.load(own if rank < old_world else _ckpt_path(
        config.checkpoint_dir, step, 0), weights_only=True)
    notes = [f"{line} (the new value is used)" for line in safe if not line.startswith("ranks:")]
    if old_world != world:
        if rank >= old_world:
            ckpt = dict(ckpt, torch_rng=None)  # a new rank: its own random stream, seeded from its rank
        if config.hook == "adacomp":
            from .ddp import inherited_ranks, redistribute

            hooks = [first["hook_state"]] + [torch.load(_ckpt_path(config.checkpoint_dir, step, r),
                                                        weights_only=True)["hook_state"] for r in range(1, old_world)]
            ckpt = dict(ckpt, hook_state=redistribute(hooks, world)[rank])
            notes.append(f"world size {old_world} -> {world}: rank {rank} takes the residuals of old rank(s) "
                         f"{inherited_ranks(old_world, world, rank) or 'none (starts at zero)'}")
        else:
            notes.append(f"world size {old_world} -> {world}")
    if rank == 0:
        for line in notes:
            print(f"adlcodec train: resuming at step {step}: {line}", flush=True)
    return dict(ckpt, world_size=old_world)


# --------------------------------------------------------------------------- the worker

def _worker(rank: int, world: int, init_method: str, config: TrainConfig, launcher: str) -> dict | None:
    import torch
    import torch.distributed as dist
    import torch.nn.functional as F
    from torch.nn.parallel import DistributedDataParallel as DDP

    from .data import load_dataset
    from .models import build_model

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    torch.use_deterministic_algorithms(True)
    os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    restart = os.environ.get("TORCHELASTIC_RESTART_COUNT")
    # Every collective of the training steps (DDP's, the loop's, the hook's) fails within the timeout. Before
    # the first step, ranks that start, import and load data or a checkpoint at their own pace (one Pi a few
    # seconds behind another) are not frozen: start-up has STARTUP_TIMEOUT_S, and _train tightens the limit.
    limit = {} if config.timeout is None else dict(timeout=timedelta(seconds=startup_timeout_s(config)))
    if init_method is None:  # the launcher (Ray Train) has made the process group and will destroy it
        pass
    elif init_method == "env://" and restart is not None:
        # torchrun keeps its store across restarts: without a per-attempt prefix a restarted rank can
        # read the dead rank's gloo address from the previous attempt and fail with "connection refused".
        agent_hosts_store = os.environ.get("TORCHELASTIC_USE_AGENT_STORE") == "True"
        store = dist.TCPStore(os.environ["MASTER_ADDR"], int(os.environ["MASTER_PORT"]), world,
                              is_master=rank == 0 and not agent_hosts_store, timeout=timedelta(minutes=5))
        dist.init_process_group("gloo", store=dist.PrefixStore(f"adlcodec/attempt-{restart}", store),
                                rank=rank, world_size=world, **limit)
    else:
        dist.init_process_group("gloo", init_method=init_method, rank=rank, world_size=world, **limit)
    try:
        return _train(rank, world, config, launcher, torch, dist, F, DDP, load_dataset, build_model)
    except RuntimeError as exc:
        _name_the_silent(exc, config)
        raise
    finally:
        # Dropping DDP objects before tearing down gloo avoids a rare abort at exit.
        gc.collect()
        if init_method is not None:
            dist.destroy_process_group()


_PROGRESS: dict = {"step": None}
# The limit on collectives before the first step (when TrainConfig.timeout is shorter): ranks import torch,
# load data and read checkpoints at their own pace.
STARTUP_TIMEOUT_S = 300.0


def startup_timeout_s(config: TrainConfig) -> float | None:
    """The process group's limit until the first step (None: the launcher's or gloo's default)."""
    return None if config.timeout is None else max(config.timeout, STARTUP_TIMEOUT_S)


def _name_the_silent(exc: RuntimeError, config) -> None:
    """A collective outside the hook (DDP's buffer broadcast, the loss allreduce, a checkpoint barrier)
    timed out: find the ranks that did not answer, as the hook does for its own, and say so."""
    import re

    from .ddp import CollectiveTimeoutError, collective_failure, unresponsive_ranks

    if isinstance(exc, CollectiveTimeoutError):
        return
    named = re.search(r"adlcodec: the hook's .*? sets the limit", str(exc))
    if named:  # the hook's own error, handed on by DDP's future inside a RuntimeError ("Unable to cast ...")
        raise CollectiveTimeoutError(named.group(0), None) from exc
    failure = collective_failure(str(exc))
    if _PROGRESS["step"] is None or failure is None:
        return
    missing = unresponsive_ranks(_PROGRESS["step"], min(max(config.timeout or 10.0, 5.0), 10.0))
    if missing:
        import torch.distributed as dist

        raise CollectiveTimeoutError(
            f"adlcodec train: a collective of step {_PROGRESS['step']} "
            f"{failure} on rank {dist.get_rank()}: "
            f"rank(s) {missing} did not answer (frozen, dead or cut off); --timeout sets the limit", missing) from exc


def _build_optimizer(config, params, torch):
    name, lr = config.optimizer, config.lr
    if name in ("sgd", "adl"):
        return torch.optim.SGD(params, lr=lr, momentum=config.momentum)
    cls = dict(adam=torch.optim.Adam, adamax=torch.optim.Adamax, adagrad=torch.optim.Adagrad,
               adadelta=torch.optim.Adadelta, rmsprop=torch.optim.RMSprop)[name]
    return cls(params, lr=lr)


def _train(rank, world, config, launcher, torch, dist, F, DDP, load_dataset, build_model):
    train_set = load_dataset(config.data, "train").subset(config.train_subset)
    test_set = load_dataset(config.data, "test", stats=(train_set.mean, train_set.std)).subset(config.eval_subset)
    steps_per_epoch = (len(train_set) // world) // config.batch_size
    if steps_per_epoch < 1:
        raise ValueError(f"{len(train_set)} samples are too few for {world} ranks x batch {config.batch_size}")
    total_steps = max(1, int(round(config.epochs * steps_per_epoch)))
    if config.max_steps:
        total_steps = min(total_steps, config.max_steps)

    torch.manual_seed(config.seed)
    channels, size, _ = train_set.input_shape
    model = build_model(in_channels=channels, image_size=size, num_classes=train_set.num_classes,
                        **({} if config.hidden is None else dict(hidden=config.hidden)))
    n_params = sum(p.numel() for p in model.parameters())
    cap = config.bucket_cap_mb
    if cap is None and (config.hook == "powersgd" or (config.hook == "adacomp" and not config.overlap)):
        # PowerSGD hangs on gloo with 3+ buckets.  The adacomp hook without overlap exchanges inside the hook
        # call, so extra buckets overlap nothing and each costs one more round of collectives.  Overlapped, it
        # keeps DDP's default buckets (the first closes after 1 MiB, the rest at 25 MiB): on the paper's CNN the
        # first holds the classifier, whose exchange then runs while backward computes the convolutions.  The
        # hook's arithmetic is per tensor, so the bucketing does not change a single bit of the result.
        cap = 4 * n_params / 2**20 + 1
    ddp = DDP(model, bucket_cap_mb=cap) if cap is not None else DDP(model)
    optimizer = _build_optimizer(config, ddp.parameters(), torch)
    scheduler = None
    if config.optimizer == "adl":
        from .lr import AdaptiveLR

        scheduler = AdaptiveLR(optimizer, min_lr=config.min_lr, max_lr=config.max_lr)

    hook_state = None
    if config.hook == "adacomp":
        from .ddp import AdaCompState

        hook_state = AdaCompState(
            bin_size=config.bin_size, bits=config.bits, start_iter=config.start_iter,
            transport=config.transport, on_nonfinite=config.on_nonfinite,
            link_mbps=config.link_mbps, max_comm_ms=config.max_comm_ms, budget_interval=config.budget_interval,
            budget_options={} if config.budget_first_window is None else dict(
                first_window=config.budget_first_window),
            exchange=config.exchange, overlap=config.overlap,
            **({} if config.timeout is None else dict(timeout=config.timeout)),
        )
        hook_state.attach(ddp)  # registers adacomp_hook; checkpoints key residuals by parameter name
    elif config.hook == "fp16":
        from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

        ddp.register_comm_hook(None, default_hooks.fp16_compress_hook)
    elif config.hook == "powersgd":
        from torch.distributed.algorithms.ddp_comm_hooks import powerSGD_hook

        hook_state = powerSGD_hook.PowerSGDState(
            process_group=None, matrix_approximation_rank=config.powersgd_rank,
            start_powerSGD_iter=config.start_iter, random_seed=config.seed,
        )
        ddp.register_comm_hook(hook_state, powerSGD_hook.powerSGD_hook)
    elif config.hook == "barrier":
        ddp.register_comm_hook(None, barrier_hook)

    start_step = 0
    resumed_world = None
    ckpt = _load_checkpoint(config, rank, world)
    if ckpt is not None:
        model.load_state_dict(ckpt["model"])
        optimizer.load_state_dict(ckpt["optimizer"])
        if ckpt["torch_rng"] is not None:
            torch.set_rng_state(ckpt["torch_rng"])
        else:
            torch.manual_seed(config.seed + 1000 * rank + ckpt["step"])
        if isinstance(ckpt["hook_state"], dict):
            hook_state.load_state_dict(ckpt["hook_state"])
        elif ckpt["hook_state"] is not None:  # PowerSGD, or an adacomp checkpoint of an earlier version
            restored = pickle.loads(ckpt["hook_state"])
            for slot in type(hook_state).__slots__:
                if slot != "process_group" and hasattr(restored, slot):
                    setattr(hook_state, slot, getattr(restored, slot))
        start_step = ckpt["step"]
        resumed_world = ckpt.get("world_size")
        extra = ckpt["extra"]
        if scheduler is not None:
            scheduler.load_state_dict(extra["scheduler"])
    else:
        extra = dict(scheduler=None, window=[], loss_curve=[], lr_curve=[], accuracy_curve=[])
        torch.manual_seed(config.seed + 1000 * rank)  # per-rank dropout masks

    resumed_residual_sum = None
    if ckpt is not None and config.hook == "adacomp":
        # the residual mass the job starts from, over all ranks: a resume at another world size must keep it
        mine = hook_state.state_dict()
        held = sum(float(t.double().sum()) for t in mine["residuals"].values()) + sum(
            float(e["residual"].double().sum()) for e in mine["owner_residuals"].values())
        total = torch.tensor([held], dtype=torch.float64)
        dist.all_reduce(total)
        resumed_residual_sum = total.item()
    iface = config.iface or os.environ.get("GLOO_SOCKET_IFNAME", "lo")
    bar = None
    if rank == 0 and config.progress:
        from tqdm import tqdm

        bar = tqdm(total=total_steps, initial=start_step, desc=f"train[{config.hook}] {config.optimizer}", unit="step",
                   file=sys.stderr)

    if config.timeout is not None:  # the process group was made with STARTUP_TIMEOUT_S (by Ray Train too)
        dist.barrier()  # every rank is ready to step: from here a silent rank is a fault
        # torch.distributed.set_timeout is the public name that later torch releases give _set_pg_timeout (2.2+)
        set_timeout = getattr(dist, "set_timeout", None) or dist.distributed_c10d._set_pg_timeout
        set_timeout(timedelta(seconds=config.timeout))

    step_times = []
    # per timed step: (start, end of this rank's backward computation, end of backward()), perf_counter
    # seconds; the middle one is when the last parameter's gradient was accumulated, i.e. when DDP handed the
    # last bucket to the hook, whatever the hook
    marks = []
    grads_done = [0.0]
    done_hooks = [p.register_post_accumulate_grad_hook(lambda _: grads_done.__setitem__(0, time.perf_counter()))
                  for p in model.parameters() if p.requires_grad]
    skipped = 0
    tx_start = peer_start = None
    timed_steps = 0
    t_run = time.perf_counter()
    ddp.train()
    epoch_cache = {}
    for step in range(start_step, total_steps):
        _PROGRESS["step"] = step  # the iteration a timed-out collective belongs to (see _name_the_silent)
        if config.fail_at_step is not None and step == config.fail_at_step and rank == config.fail_rank:
            marker = Path(config.checkpoint_dir) / "failed-once"
            marker.parent.mkdir(parents=True, exist_ok=True)
            if not marker.exists():
                marker.write_text(f"{step} {os.getpid()}")
                if config.fail_mode == "kill":
                    os.kill(os.getpid(), signal.SIGKILL)
                elif config.fail_mode == "stop":  # frozen: its sockets stay open, it answers nothing
                    os.kill(os.getpid(), signal.SIGSTOP)
                os._exit(FAIL_EXIT_CODE)  # a crash, not a clean exit: no cleanup runs
        epoch, within = divmod(step, steps_per_epoch)
        if epoch not in epoch_cache:
            epoch_cache = {epoch: _shard(len(train_set), rank, world, epoch, config.seed)}
        idx = epoch_cache[epoch][within * config.batch_size : (within + 1) * config.batch_size]
        xb, yb = map(torch.from_numpy, train_set.batch(idx))
        if step - start_step == config.timing_warmup:
            tx_start = _net_tx_bytes(iface)
            peer_start = _peer_bytes(hook_state)
        t0 = time.perf_counter()
        optimizer.zero_grad(set_to_none=False)
        loss = F.cross_entropy(ddp(xb), yb)
        loss.backward()
        backward_returned = time.perf_counter()
        if hook_state is not None and getattr(hook_state, "last_step_nonfinite", False):
            skipped += 1  # every rank saw the same flag: all skip together
        else:
            optimizer.step()
        dt = time.perf_counter() - t0
        if step - start_step >= config.timing_warmup:
            step_times.append(dt)
            marks.append((t0, grads_done[0], backward_returned))
            timed_steps += 1
        loss_value = loss.item()
        extra["window"].append(loss_value)
        done = step + 1
        if done % config.lr_interval == 0 or done == total_steps:
            # every rank must feed the scheduler the same number, or the replicas' rates would differ
            window_loss = torch.tensor([float(np.mean(extra["window"]))], dtype=torch.float64)
            dist.all_reduce(window_loss)
            window_loss = window_loss.item() / world
            extra["window"] = []
            extra["loss_curve"].append((done, window_loss))
            if scheduler is not None:
                scheduler.step(window_loss)
            extra["lr_curve"].append((done, optimizer.param_groups[0]["lr"]))
        tail = config.eval_last is None or done > total_steps - config.eval_last
        if done < total_steps and (done % steps_per_epoch == 0 or (
                config.eval_every and done % config.eval_every == 0 and tail)):
            extra["accuracy_curve"].append((done, _evaluate(model, rank, world, test_set, torch, dist, F)[0]))
        if bar is not None:
            bar.update(1)
            bar.set_postfix(loss=f"{loss_value:.3f}", lr=f"{optimizer.param_groups[0]['lr']:.4g}",
                            s_per_step=f"{dt:.3f}")
        if config.checkpoint_every and done % config.checkpoint_every == 0 and done < total_steps:
            if scheduler is not None:
                extra["scheduler"] = scheduler.state_dict()
            _save_checkpoint(config, rank, world, done, model, optimizer, hook_state, extra)
    for h in done_hooks:
        h.remove()
    tx_end = _net_tx_bytes(iface)
    peer_end = _peer_bytes(hook_state)
    wall = time.perf_counter() - t_run
    if bar is not None:
        bar.close()

    accuracy, test_loss = _evaluate(model, rank, world, test_set, torch, dist, F)
    extra["accuracy_curve"].append((total_steps, accuracy))
    digest = state_digest(model)
    digests = [None] * world
    dist.all_gather_object(digests, digest)

    if config.hook == "adacomp":
        stats = hook_state.stats()
        # steady state: the warm-up allreduce iterations are not what the codec sends
        steady = max(1, stats["compressed_steps"])
        payload_per_step = stats["compressed_payload_bytes"] / steady if stats["compressed_steps"] else 4 * n_params
        ratio = stats["compressed_ratio"] if stats["compressed_steps"] else 1.0
    else:
        stats = None
        payload_per_step = _payload_bytes_per_step(config.hook, model, config.powersgd_rank)
        ratio = 4 * n_params / payload_per_step
    wire = None
    if tx_start is not None and tx_end is not None and timed_steps:
        wire = (tx_end - tx_start) / timed_steps
        if iface == "lo":  # one loopback carries every rank's traffic
            wire /= world
    peer = None
    if peer_start is not None and peer_end is not None and timed_steps:
        peer = (peer_end - peer_start) / timed_steps
    budget = stats.get("budget") if stats else None
    mine = dict(peer_bytes_per_step=peer,
                step_time_mean=float(np.mean(step_times)) if step_times else None,
                step_time_median=float(np.median(step_times)) if step_times else None,
                wire_bytes_per_step=wire, marks=marks, boot_id=_boot_id(),
                # every rank must have taken the same decisions: compare a digest of them
                budget_decisions=None if budget is None else hashlib.sha256(json.dumps(
                    [budget["history"], budget["plan"]], sort_keys=True).encode()).hexdigest())
    everyone = [None] * world
    dist.all_gather_object(everyone, mine)
    del ddp, optimizer
    if rank != 0:
        return None
    times = [m["step_time_mean"] for m in everyone if m["step_time_mean"] is not None]
    wires = [m["wire_bytes_per_step"] for m in everyone if m["wire_bytes_per_step"] is not None]
    peers = [m["peer_bytes_per_step"] for m in everyone if m["peer_bytes_per_step"] is not None]
    result = dict(
        config=dataclasses.asdict(config), launcher=launcher, world_size=world, params=n_params,
        dataset=train_set.name, steps=total_steps, steps_per_epoch=steps_per_epoch, resumed_from=start_step,
        resumed_world_size=resumed_world, resumed_residual_sum=resumed_residual_sum,
        skipped_steps=skipped, accuracy=accuracy, loss=test_loss, ratio=ratio, seconds=wall,
        loss_curve=extra["loss_curve"], lr_curve=extra["lr_curve"], accuracy_curve=extra["accuracy_curve"],
        step_time_s=float(np.mean(times)) if times else None,
        step_time_median_s=float(np.median([m["step_time_median"] for m in everyone if m["step_time_median"]]))
        if times else None,
        dense_bytes_per_step=4 * n_params, payload_bytes_per_step=payload_per_step, compression_ratio=ratio,
        wire_bytes_per_rank_step=float(np.mean(wires)) if wires else None, wire_iface=iface,
        peer_bytes_per_rank_step=float(np.mean(peers)) if peers else None,
        wall_s=wall, state_digest=digest, replicas_identical=len(set(digests)) == 1, hook_stats=stats,
        budget_decisions_identical=None if budget is None else len({m["budget_decisions"] for m in everyone}) == 1,
        **_waiting(everyone),
    )
    _report(result)
    if config.out:
        saved = write_outputs(result, config.out)
        print(f"saved results to {saved}")
    return result


def write_outputs(result: dict, out: str) -> str:
    """``out`` ending in ``.json``: that one file.  Otherwise a directory with
    ``metrics.json`` and ``curves.png`` (training loss, learning rate, test accuracy)."""
    out_path = Path(out)
    if out_path.suffix == ".json":
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result, indent=2))
        return str(out_path)
    out_path.mkdir(parents=True, exist_ok=True)
    (out_path / "metrics.json").write_text(json.dumps(result, indent=2))
    plot_curves([result], out_path / "curves.png")
    return str(out_path)


def plot_curves(results: list[dict], path, labels: list[str] | None = None) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for i, r in enumerate(results):
        label = labels[i] if labels else f"{r['config']['optimizer']} ({r['config']['hook']})"
        spe = r["steps_per_epoch"]
        for ax, key in zip(axes, ("loss_curve", "lr_curve", "accuracy_curve")):
            pts = r[key]
            if pts:
                ax.plot([s / spe for s, _ in pts], [v for _, v in pts], marker="o" if len(pts) < 8 else None,
                        label=label)
    for ax, title in zip(axes, ("training loss (mean over window, all ranks)", "learning rate",
                                "test accuracy (%)")):
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
    axes[1].set_yscale("log")
    axes[2].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _evaluate(model, rank, world, test_set, torch, dist, F) -> tuple[float, float]:
    """Accuracy (percent) and mean cross-entropy on the test split, shared out over ranks."""
    mine = np.arange(rank, len(test_set), world)
    model.eval()
    correct, loss_sum = 0, 0.0
    with torch.no_grad():
        for i in range(0, len(mine), 500):
            xb, yb = map(torch.from_numpy, test_set.batch(mine[i : i + 500]))
            logits = model(xb)
            loss_sum += float(F.cross_entropy(logits, yb, reduction="sum"))
            correct += int((logits.argmax(1) == yb).sum())
    model.train()
    totals = torch.tensor([correct, len(mine), loss_sum], dtype=torch.float64)
    dist.all_reduce(totals)
    return 100.0 * totals[0].item() / totals[1].item(), totals[2].item() / totals[1].item()


def _report(r: dict) -> None:
    def mb(x):
        return "n/a" if x is None else f"{x / 1e6:.3f} MB"

    st = "n/a" if r["step_time_s"] is None else f"{1000 * r['step_time_s']:.1f} ms"
    print(
        f"adlcodec train: optimizer={r['config']['optimizer']} hook={r['config']['hook']} bits={r['config']['bits']} "
        f"ranks={r['world_size']} launcher={r['launcher']} steps={r['steps']}\n"
        f"  test accuracy        {r['accuracy']:.2f} %\n"
        f"  test loss            {r['loss']:.4f}\n"
        f"  training time        {r['seconds']:.1f} s (final lr {r['lr_curve'][-1][1]:.4g})\n"
        f"  time per step        {st}\n"
        f"  dense grad / step    {mb(r['dense_bytes_per_step'])}\n"
        f"  payload sent / step  {mb(r['payload_bytes_per_step'])} per rank "
        f"(compression ratio {r['compression_ratio']:.1f}x)\n"
        f"  saved vs fp32        {mb(r['dense_bytes_per_step'] - r['payload_bytes_per_step'])} per rank per step "
        f"({100 * (1 - r['payload_bytes_per_step'] / r['dense_bytes_per_step']):.1f} % of the fp32 allreduce input)\n"
        f"  bytes on the wire    {mb(r['wire_bytes_per_rank_step'])} per rank per step ({r['wire_iface']})\n"
        f"  replicas identical   {r['replicas_identical']}"
        + ("" if r.get("wait_for_slowest_s") is None else
           f"\n  step beyond compute  {1000 * r['wait_for_slowest_s']:.1f} ms waiting for the slowest rank's "
           f"backward, {1000 * r['after_slowest_s']:.1f} ms after it"),
        flush=True,
    )
    stats = r.get("hook_stats") or {}
    if stats.get("compressed_steps"):
        n = stats["compressed_steps"]
        hook_ms = 1000 * (stats["encode_s"] + stats["comm_s"] + stats["decode_s"]) / n
        print(f"  exchange             {stats['allgather_buckets']} all-gather / {stats['reduce_scatter_buckets']} "
              f"reduce-scatter buckets, {'overlapped' if r['config']['overlap'] else 'in the hook call'}: "
              f"{hook_ms:.1f} ms/step of exchange work, {1000 * stats['exposed_s'] / n:.1f} ms/step after "
              f"backward", flush=True)
    budget = stats.get("budget")
    if budget:
        log = r["hook_stats"]["exchange_log"]
        steady = [ms for _, ms, _ in log[len(log) // 2:]]
        measured = f"{np.median(steady):.1f} ms (median, second half)" if steady else "n/a"
        layers = ", ".join(f"{p['kind']}#{p['ordinal']} bin {p['bin_size']} {p['bits']}b" for p in budget["plan"])
        print(f"  bandwidth budget     {budget['max_comm_ms']:g} ms at {budget['link_mbps']:g} Mbit/s: exchange "
              f"{measured}, pressure {budget['pressure']:g}/{budget['max_pressure']:g}, "
              f"{'feasible' if budget['feasible'] else 'NOT feasible at the floor'}, "
              f"decisions identical on all ranks: {r['budget_decisions_identical']}\n"
              f"  plan                 {layers}", flush=True)


# --------------------------------------------------------------------------- CLI glue

def add_arguments(p: argparse.ArgumentParser) -> None:
    d = TrainConfig()
    p.add_argument("--ranks", type=int, default=d.ranks, help="local ranks to spawn when no launcher is used")
    p.add_argument("--epochs", type=float, default=d.epochs)
    p.add_argument("--batch-size", type=int, default=d.batch_size, help="per rank")
    p.add_argument("--optimizer", choices=OPTIMIZERS, default=d.optimizer,
                   help="adl = SGD + the paper's adaptive learning rate + the adlcodec hook")
    p.add_argument("--lr", type=float, default=None, help="initial rate (default per optimizer: %s)" %
                   ", ".join(f"{k} {v:g}" for k, v in DEFAULT_LR.items()))
    p.add_argument("--lr-interval", type=int, default=d.lr_interval,
                   help="steps per adaptive-LR evaluation and loss-curve point")
    p.add_argument("--min-lr", type=float, default=None, help="adl clamp (default initial/10)")
    p.add_argument("--max-lr", type=float, default=None, help="adl clamp (default 2 x initial)")
    p.add_argument("--momentum", type=float, default=d.momentum)
    p.add_argument("--seed", type=int, default=d.seed)
    p.add_argument("--hook", choices=HOOKS, default=None,
                   help="default: adacomp for adl, allreduce otherwise; barrier: ranks wait for each other but "
                   "exchange nothing (the floor of any synchronous step; replicas drift apart)")
    p.add_argument("--bits", type=int, default=d.bits)
    p.add_argument("--bin-size", type=int, default=None, help="default: 50 for conv, 500 for linear")
    p.add_argument("--start-iter", type=int, default=d.start_iter)
    p.add_argument("--on-nonfinite", choices=("skip", "raise"), default=d.on_nonfinite)
    p.add_argument("--powersgd-rank", type=int, default=d.powersgd_rank)
    p.add_argument("--transport", choices=("torch", "mpi"), default=d.transport)
    p.add_argument("--exchange", choices=("auto", "allgather", "reduce-scatter"), default=d.exchange,
                   type=lambda v: v.replace("_", "-"),
                   help="adacomp hook: all-gather every payload, or reduce-scatter slices and all-gather their "
                        "re-compressed sums (bytes per rank independent of the rank count); auto picks per bucket")
    p.add_argument("--no-overlap", dest="overlap", action="store_false",
                   help="adacomp hook: exchange inside the hook call instead of on a communication thread")
    p.add_argument("--link-mbps", type=float, default=None,
                   help="each rank's link rate; with --max-comm-ms the hook adapts bin size and bits per layer")
    p.add_argument("--max-comm-ms", type=float, default=None, help="deadline for one step's exchange (ms)")
    p.add_argument("--budget-interval", type=int, default=d.budget_interval, help="steps between budget decisions")
    p.add_argument("--budget-first-window", type=int, default=None, help="compressed steps before the first decision")
    p.add_argument("--data", default=None, help="MNIST-format IDX folder (.gz or plain) or CIFAR-10/100 python "
                   "pickles; default Debian's Fashion-MNIST")
    p.add_argument("--max-steps", type=int, default=None)
    p.add_argument("--train-subset", type=int, default=None)
    p.add_argument("--eval-subset", type=int, default=None)
    p.add_argument("--eval-every", type=int, default=d.eval_every,
                   help="also evaluate every N steps (the accuracy curve; 0: only at epoch ends)")
    p.add_argument("--eval-last", type=int, default=None, help="with --eval-every: only within the last N steps")
    p.add_argument("--out", default=None, help="directory for metrics.json + curves.png (a *.json path: that "
                   "file only)")
    p.add_argument("--checkpoint-dir", default=None)
    p.add_argument("--checkpoint-every", type=int, default=0)
    p.add_argument("--fail-at-step", type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--fail-rank", type=int, default=1, help=argparse.SUPPRESS)
    p.add_argument("--fail-mode", choices=FAIL_MODES, default="exit", help=argparse.SUPPRESS)
    p.add_argument("--dask-scheduler", default=None, metavar="ADDRESS",
                   help="run one rank per worker of this Dask cluster (pip install 'adlcodec[dask]')")
    p.add_argument("--max-restarts", type=int, default=0,
                   help="with --dask-scheduler: restart every rank from the latest checkpoint up to N times")
    p.add_argument("--timeout", type=float, default=None,
                   help="seconds any collective may take before every live rank fails naming the rank(s) that did "
                        "not answer (default: 300 for the adacomp hook's collectives, gloo's 30 min for others)")
    p.add_argument("--bucket-cap-mb", type=float, default=None)
    p.add_argument("--hidden", type=int, default=None, help="units of the first linear layer (model default 256)")
    p.add_argument("--timing-warmup", type=int, default=d.timing_warmup)
    p.add_argument("--iface", default=None, help="interface whose tx counter measures bytes sent")
    p.add_argument("--no-progress", dest="progress", action="store_false")


def config_from_args(args: argparse.Namespace) -> TrainConfig:
    names = {f.name for f in dataclasses.fields(TrainConfig)}
    values = {k: v for k, v in vars(args).items() if k in names}
    if "exchange" in values:
        values["exchange"] = values["exchange"].replace("-", "_")
    return TrainConfig(**values)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m adlcodec.train", description=__doc__.splitlines()[0])
    add_arguments(p)
    run(config_from_args(p.parse_args(argv)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
