"""``adlcodec train`` on a Dask cluster: one rank per worker, restarted from the latest checkpoint when a
rank fails.

Usage::

    from distributed import Client
    from adlcodec.dask import train_on_dask
    from adlcodec.train import TrainConfig

    client = Client("tcp://scheduler:8786")             # or Client(LocalCluster(...)) on one machine
    result = train_on_dask(client, TrainConfig(ranks=4, optimizer="adl", checkpoint_dir="/shared/ck",
                                               checkpoint_every=50, timeout=60), max_restarts=3)

or ``adlcodec train --dask-scheduler tcp://scheduler:8786 --ranks 4 --max-restarts 3 ...``.

Each rank runs as a task pinned to its own worker (the first ``ranks`` workers by address); rank 0's worker
hosts the rendezvous (gloo over TCP on the address the worker has in the cluster).  When any rank fails —
an exception, a collective that timed out because a rank froze (``timeout``), a worker that died — the
attempt is over: a collective world cannot take a rank back in, so every worker is restarted
(``Client.restart``, which needs nannies, Dask's default) and all ranks start again from the latest
checkpoint, which every worker must see (a shared directory).  Dask's own task reassignment would restart the
failed rank alone; that cannot rejoin the others, so the tasks are pinned and the whole attempt restarts.
A job resumed with checkpoints ends bit-identical to one that never failed.
"""

from __future__ import annotations

import logging
import socket
import uuid

logger = logging.getLogger(__name__)

__all__ = ["train_on_dask"]

WORKERS_TIMEOUT_S = 120  # for a died worker's nanny to start a new one


def _free_port(host: str) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def _rank(rank: int, world: int, init_method: str, config):
    from .train import _worker

    return _worker(rank, world, init_method, config, "dask")


def train_on_dask(client, config, max_restarts: int = 0) -> dict:
    """Train ``config`` (an :class:`adlcodec.train.TrainConfig`) with one rank on each of ``config.ranks``
    workers of ``client``'s cluster; returns rank 0's results.  Up to ``max_restarts`` times, a failed
    attempt restarts every worker and resumes from ``config.checkpoint_dir``."""
    from distributed import wait

    config.validate()
    if isinstance(max_restarts, bool) or not isinstance(max_restarts, int) or max_restarts < 0:
        raise ValueError(f"max_restarts must be an int >= 0, got {max_restarts!r}")
    if config.transport == "mpi":
        raise ValueError("transport='mpi' needs ranks started by mpirun, not Dask tasks")
    if max_restarts and not config.checkpoint_dir:
        raise ValueError("restarts resume from the latest checkpoint: set checkpoint_dir (and checkpoint_every)")
    world = config.ranks
    for attempt in range(max_restarts + 1):
        workers = sorted(client.scheduler_info()["workers"])
        if len(workers) < world:
            raise ValueError(f"{world} ranks need {world} Dask workers; the cluster has {len(workers)}")
        chosen = workers[:world]
        host = chosen[0].split("://", 1)[-1].rsplit(":", 1)[0]
        port = client.submit(_free_port, host, workers=[chosen[0]], pure=False).result()
        tag = uuid.uuid4().hex[:8]
        futures = [client.submit(_rank, r, world, f"tcp://{host}:{port}", config, workers=[w],
                                 allow_other_workers=False, pure=False, key=f"adlcodec-rank{r}-{tag}")
                   for r, w in enumerate(chosen)]
        pending = set(futures)
        while pending:  # until all ranks are done or one has failed
            done, pending = wait(pending, return_when="FIRST_COMPLETED")
            if any(f.status == "error" for f in done):
                break
        failed = [(r, f) for r, f in enumerate(futures) if f.status == "error"]
        if not failed:
            return futures[0].result()
        rank, future = failed[0]
        error = future.exception()
        if attempt == max_restarts:
            raise RuntimeError(f"adlcodec train on Dask: rank {rank} failed in attempt {attempt + 1} of "
                               f"{max_restarts + 1}: {type(error).__name__}: {error}") from error
        logger.warning("adlcodec train on Dask: rank %d failed (%s: %s); restarting every worker from the "
                       "latest checkpoint", rank, type(error).__name__, error)
        print(f"adlcodec train on Dask: rank {rank} failed ({type(error).__name__}: {error}); restart "
              f"{attempt + 1} of {max_restarts} from the latest checkpoint", flush=True)
        client.cancel(futures, force=True)
        client.restart()
        # restart() waits for the workers it restarted; one that died is brought back by its nanny later
        client.wait_for_workers(world, timeout=WORKERS_TIMEOUT_S)
    raise AssertionError("unreachable")
