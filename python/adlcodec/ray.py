"""``adlcodec train`` under Ray Train: a ``TorchTrainer`` whose workers run the training (adlcodec hook
included), checkpointing to a directory every worker sees, and restarting from the latest checkpoint under
Ray's ``FailureConfig``.

Usage::

    import ray
    from adlcodec.ray import train_on_ray
    from adlcodec.train import TrainConfig

    ray.init()                                          # or ray.init(address="auto") on a cluster
    result = train_on_ray(TrainConfig(ranks=4, optimizer="adl", checkpoint_dir="/shared/ck",
                                      checkpoint_every=50, timeout=60), max_failures=3)

Ray Train makes the gloo process group (``TorchConfig(backend="gloo")``, ``config.timeout`` from the first step on); every
worker then runs :func:`adlcodec.train` 's loop as a rank, and rank 0 reports the results.  When a worker
fails — an exception, a collective that timed out because a rank froze, a worker that died — Ray Train
stops the whole worker group and, up to ``max_failures`` times, starts it again; each rank then resumes from
the latest complete adlcodec checkpoint (files per rank, residuals included), so a run that failed ends
bit-identical to one that did not.  ``transport="mpi"`` is refused: Ray workers are not an MPI world.
"""

from __future__ import annotations

import json
import tempfile
from pathlib import Path

__all__ = ["train_on_ray", "train_loop_per_worker"]


def train_loop_per_worker(loop_config: dict) -> None:
    """Ray Train's per-worker function: one rank of ``loop_config["config"]`` (a ``TrainConfig``)."""
    import ray.train

    from .train import _worker

    config = loop_config["config"]
    context = ray.train.get_context()
    result = _worker(context.get_world_rank(), context.get_world_size(), None, config, "ray")
    if result is None:
        ray.train.report({})
        return
    # rank 0's results travel as a Ray checkpoint: Ray Train keeps reported metrics with checkpoints
    with tempfile.TemporaryDirectory() as tmp:
        Path(tmp, "result.json").write_text(json.dumps(result))
        ray.train.report({"steps": result["steps"]}, checkpoint=ray.train.Checkpoint.from_directory(tmp))


def train_on_ray(config, max_failures: int = 0, storage_path: str | None = None) -> dict:
    """Train ``config`` on ``config.ranks`` Ray Train workers (one CPU each); returns rank 0's results.
    ``max_failures``: restarts of the worker group (Ray's ``FailureConfig``), each from the latest checkpoint
    in ``config.checkpoint_dir``.  ``storage_path``: Ray Train's own run directory (default: Ray's)."""
    from ray.train import FailureConfig, RunConfig, ScalingConfig
    from ray.train.torch import TorchConfig, TorchTrainer

    from .train import startup_timeout_s

    config.validate()
    if isinstance(max_failures, bool) or not isinstance(max_failures, int) or max_failures < 0:
        raise ValueError(f"max_failures must be an int >= 0, got {max_failures!r}")
    if config.transport == "mpi":
        raise ValueError("transport='mpi' needs ranks started by mpirun, not Ray workers")
    if max_failures and not config.checkpoint_dir:
        raise ValueError("restarts resume from the latest checkpoint: set checkpoint_dir (and checkpoint_every)")
    trainer = TorchTrainer(
        train_loop_per_worker,
        train_loop_config={"config": config},
        # start-up gets STARTUP_TIMEOUT_S (workers start seconds apart); the training loop tightens it to config.timeout
        torch_config=TorchConfig(backend="gloo", timeout_s=int(startup_timeout_s(config) or 1800)),
        scaling_config=ScalingConfig(num_workers=config.ranks, use_gpu=False, resources_per_worker={"CPU": 1}),
        run_config=RunConfig(name="adlcodec-train", storage_path=storage_path,
                             failure_config=FailureConfig(max_failures=max_failures)),
    )
    result = trainer.fit()
    if result.error is not None:
        raise result.error
    with result.checkpoint.as_directory() as directory:
        return json.loads(Path(directory, "result.json").read_text())
