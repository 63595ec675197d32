#!/usr/bin/env python3
"""Bytes per rank per step against the rank count, for both of the hook's exchanges.

Counting bytes needs no throttle and no shaped link (the bytes a step sends do not depend on how fast it
runs), so every rank count runs as local ranks on one private loopback (scripts/cluster/hermetic.sh), where
32 ranks start in a minute instead of the testbed's many.  Per run it keeps

* ``wire``: what crossed ``lo`` during the timed steps, TCP/IP headers and acknowledgements included, divided by
  the rank count (the trainer's ``wire_bytes_per_rank_step``);
* ``to_peers``: what the hook's collectives sent to other ranks during the same steps, per rank (its
  ``peer_bytes``: control vectors, sizes and messages, each as often as it is sent);
* ``payload``: the size of the rank's own messages (its ``compressed_payload_bytes``: a message counted once,
  however many ranks receive it; what the compression ratio is computed from);
* ``transport``: ``wire - to_peers``, what TCP/IP and the collectives' transport (gloo, or Open MPI) add
  (headers, acknowledgements).

``--probe`` also measures that transport cost directly: an all-to-all of 8 and 336 bytes per peer (a size
message; a control vector at 32 ranks), 100 times, at the largest rank count, on the same loopback, as bytes
per peer per collective beyond the data (gloo's ``all_to_all_single``; with ``--transport mpi`` Open MPI's
``Ialltoall`` over its TCP transport).

``--transport mpi`` starts the ranks with ``mpirun`` and the hook exchanges over MPI (``--transport mpi`` of
``adlcodec train``), Open MPI's TCP transport on the private loopback, so that both transports' costs per
transfer are measured the same way.

    python bench/cluster/bytes_scaling.py --ranks 4,8,16,32 --probe     # ~15 min on 2 cores
    python bench/cluster/bytes_scaling.py --ranks 4,32 --exchanges reduce-scatter --bucket-cap-mb 16 \
        --out bench/cluster/results/bytes_scaling-one-bucket           # one bucket per step
    python bench/cluster/bytes_scaling.py --ranks 4,32 --transport mpi --probe \
        --out bench/cluster/results/bytes_scaling-mpi                  # the hook over Open MPI
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_bench import HERMETIC  # noqa: E402

DEFAULT_OUT = HERE / "results" / "bytes_scaling"
EXCHANGES = ("reduce-scatter", "allgather")


def lo_tx_bytes() -> int:
    for line in open("/proc/net/dev"):
        name, _, rest = line.partition(":")
        if name.strip() == "lo":
            return int(rest.split()[8])
    raise RuntimeError("no lo in /proc/net/dev")


PROBE_SIZES = (8, 336)  # bytes per peer: a size message; a control vector at 32 ranks
PROBE_REPS = 100


def probe_rank(rank: int, world: int, port: int) -> None:
    """One rank of the gloo probe: prints, on rank 0, the bytes per peer and collective beyond the data for
    each of ``PROBE_SIZES``."""
    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    for per_peer in PROBE_SIZES:
        send = torch.zeros(per_peer * world, dtype=torch.uint8)
        recv = torch.empty_like(send)
        _print_overhead(rank == 0, world, per_peer, lambda: dist.all_to_all_single(recv, send), dist.barrier)
    dist.destroy_process_group()


def mpi_probe_rank() -> None:
    """One rank of the Open MPI probe, as ``probe_rank``, with the non-blocking call the hook makes."""
    import numpy as np
    from mpi4py import MPI

    comm = MPI.COMM_WORLD
    world = comm.Get_size()
    for per_peer in PROBE_SIZES:
        send = np.zeros(per_peer * world, np.uint8)
        recv = np.empty_like(send)
        _print_overhead(comm.Get_rank() == 0, world, per_peer, lambda: comm.Ialltoall(send, recv).Wait(),
                        comm.Barrier)


def _print_overhead(report: bool, world: int, per_peer: int, alltoall, barrier) -> None:
    for _ in range(5):
        alltoall()
    barrier()
    before = lo_tx_bytes()
    for _ in range(PROBE_REPS):
        alltoall()
    after = lo_tx_bytes()
    barrier()
    if report:  # lo is shared: every rank's traffic, so divide by the ranks
        print(per_peer, (after - before) / world / PROBE_REPS / (world - 1) - per_peer, flush=True)


def mpirun(ranks: int) -> list[str]:
    """Open MPI's launcher for ``ranks`` local ranks, its TCP transport (not shared memory) on loopback only."""
    return ["mpirun", "--allow-run-as-root", "--oversubscribe", "-np", str(ranks), "-x", "OMP_NUM_THREADS=1",
            "-x", "GLOO_SOCKET_IFNAME=lo", "-x", "PYTHONPATH", "--mca", "btl", "self,tcp", "--mca",
            "btl_tcp_if_include", "lo", "--mca", "oob_tcp_if_include", "lo"]


def run_training(ranks: int, exchange: str, args, out: Path) -> dict:
    path = out / "runs" / f"{exchange}-{ranks}r.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    train = [sys.executable, "-m", "adlcodec.train", "--hook", "adacomp", "--bits", str(args.bits),
             "--exchange", exchange, "--hidden", str(args.hidden), "--batch-size", str(args.batch_size),
             "--max-steps", str(args.steps), "--timing-warmup", str(args.warmup), "--no-progress", "--out", str(path)]
    if args.transport == "mpi":
        cmd = [str(HERMETIC), "--", *mpirun(ranks), *train, "--transport", "mpi"]
    else:
        cmd = [str(HERMETIC), "--", *train, "--ranks", str(ranks)]
    if args.bucket_cap_mb is not None:
        cmd += ["--bucket-cap-mb", str(args.bucket_cap_mb)]
    with open(path.with_suffix(".log"), "w") as log:
        proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=args.run_timeout,
                              env=dict(os.environ, OMP_NUM_THREADS="1"))
    if proc.returncode != 0:
        raise SystemExit(f"{exchange} at {ranks} ranks failed (exit {proc.returncode}): see {path.with_suffix('.log')}")
    r = json.loads(path.read_text())
    stats = r["hook_stats"]
    payload = stats["compressed_payload_bytes"] / stats["compressed_steps"]
    to_peers = r["peer_bytes_per_rank_step"]  # over the same timed steps as the wire counter
    return dict(exchange=exchange, ranks=ranks, wire=r["wire_bytes_per_rank_step"], payload=payload,
                to_peers=to_peers, transport=r["wire_bytes_per_rank_step"] - to_peers,
                replicas_identical=r["replicas_identical"], hook_peer_bytes=stats["peer_bytes"],
                hook_payload_bytes=stats["compressed_payload_bytes"],
                buckets_per_step=(stats["allgather_buckets"] + stats["reduce_scatter_buckets"])
                / stats["compressed_steps"])


def probe(ranks: int, transport: str) -> dict[int, float]:
    """Bytes per peer and collective beyond the data, for each of ``PROBE_SIZES``, at ``ranks`` ranks."""
    if transport == "mpi":
        cmd = [str(HERMETIC), "--", *mpirun(ranks), sys.executable, __file__, "--mpi-probe-rank"]
    else:
        cmd = [str(HERMETIC), "--", sys.executable, __file__, "--probe-rank", str(ranks), "29611"]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    if proc.returncode != 0:
        raise SystemExit(f"probe failed: {proc.stderr[-2000:]}")
    lines = proc.stdout.strip().splitlines()[-len(PROBE_SIZES):]
    return {int(size): float(overhead) for size, overhead in (line.split() for line in lines)}


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--ranks", default="4,8,16,32")
    p.add_argument("--bits", type=int, default=1)
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=10)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--exchanges", default=",".join(EXCHANGES))
    p.add_argument("--bucket-cap-mb", type=float, default=None,
                   help="DDP's bucket size (default: DDP's own, two buckets on the paper CNN; 16 gives one)")
    p.add_argument("--transport", choices=("torch", "mpi"), default="torch",
                   help="the hook's transport: gloo (local ranks) or Open MPI (ranks started by mpirun)")
    p.add_argument("--probe", action="store_true", help="also measure the transport's cost per peer and collective")
    p.add_argument("--run-timeout", type=float, default=900)
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--probe-rank", nargs=2, type=int, default=None, help=argparse.SUPPRESS)
    p.add_argument("--mpi-probe-rank", action="store_true", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.mpi_probe_rank:  # one of the probe's MPI ranks
        mpi_probe_rank()
        return 0
    if args.probe_rank:  # inside the private namespace: spawn the probe's ranks
        import torch.multiprocessing as mp

        world, port = args.probe_rank
        mp.spawn(probe_rank, args=(world, port), nprocs=world)
        return 0
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rank_counts = [int(r) for r in args.ranks.split(",")]
    start = time.time()
    rows = []
    for ranks in rank_counts:
        for exchange in args.exchanges.split(","):
            rows.append(run_training(ranks, exchange, args, out))
            r = rows[-1]
            print(f"[{time.time() - start:5.0f}s] {exchange:14s} {ranks:2d} ranks: wire {r['wire'] / 1e6:.3f} MB, "
                  f"to peers {r['to_peers'] / 1e6:.3f} MB per rank per step", flush=True)
    probes = []
    if args.probe:
        ranks = max(rank_counts)
        probes = [dict(ranks=ranks, per_peer=size, overhead=overhead)
                  for size, overhead in probe(ranks, args.transport).items()]
    from adlcodec.ddp import _CONTROL_FIELDS

    # the reduce-scatter's control row per peer and bucket: its fields, the bytes addressed to that peer and
    # the sender's total (no bandwidth budget here); scaling_model.py subtracts it to fit the slices' headers
    result = dict(config=vars(args), rows=rows, probes=probes, wall_s=time.time() - start,
                  control_int64_per_peer=len(_CONTROL_FIELDS) + 2)
    (out / "results.json").write_text(json.dumps(result, indent=1))
    via = "Open MPI (mpirun, TCP transport)" if args.transport == "mpi" else "gloo (local ranks)"
    lines = [f"Paper CNN (hidden {args.hidden}), batch {args.batch_size}, {args.bits} bit, steps {args.warmup + 1}-"
             f"{args.steps} of {args.steps}, the hook over {via} on one private loopback. MB per rank per step.", "",
             "| exchange | ranks | wire | hook to peers | transport (wire - to peers) | own payload | wire / wire at "
             f"{rank_counts[0]} ranks | buckets per step | replicas identical |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        base = next(b["wire"] for b in rows if b["exchange"] == r["exchange"] and b["ranks"] == rank_counts[0])
        lines.append(f"| {r['exchange']} | {r['ranks']} | {r['wire'] / 1e6:.3f} | {r['to_peers'] / 1e6:.3f} | "
                     f"{r['transport'] / 1e6:.3f} | {r['payload'] / 1e6:.3f} | {r['wire'] / base:.2f} | "
                     f"{r['buckets_per_step']:.0f} | {r['replicas_identical']} |")
    if probes:
        call = "Open MPI `Ialltoall`" if args.transport == "mpi" else "gloo `all_to_all_single`"
        lines += ["", f"{call} on loopback, bytes per peer and collective beyond the data:", "",
                  "| ranks | data per peer (B) | transport per peer (B) |", "|---:|---:|---:|"]
        lines += [f"| {q['ranks']} | {q['per_peer']} | {q['overhead']:.0f} |" for q in probes]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
