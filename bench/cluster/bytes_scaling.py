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
* ``transport``: ``wire - to_peers``, what TCP/IP and gloo add (headers, acknowledgements).

``--probe`` also measures that transport cost directly: gloo's ``all_to_all_single`` of 8 and 336 bytes per
peer (a size message; a control vector at 32 ranks), 100 times, at the largest rank count, on the same
loopback, as bytes per peer per collective beyond the data.

    python bench/cluster/bytes_scaling.py --ranks 4,8,16,32 --probe     # ~15 min on 2 cores
    python bench/cluster/bytes_scaling.py --ranks 4,32 --exchanges reduce-scatter --bucket-cap-mb 16 \
        --out bench/cluster/results/bytes_scaling-one-bucket           # one bucket per step
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


def probe_rank(rank: int, world: int, per_peer: int, reps: int, port: int) -> None:
    import torch
    import torch.distributed as dist

    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=world)
    send = torch.zeros(per_peer * world, dtype=torch.uint8)
    recv = torch.empty_like(send)
    for _ in range(5):
        dist.all_to_all_single(recv, send)
    dist.barrier()
    before = lo_tx_bytes()
    for _ in range(reps):
        dist.all_to_all_single(recv, send)
    after = lo_tx_bytes()
    dist.barrier()
    if rank == 0:
        per_op = (after - before) / world / reps  # lo is shared: every rank's traffic, so per rank
        print(per_op / (world - 1) - per_peer)
    dist.destroy_process_group()


def run_training(ranks: int, exchange: str, args, out: Path) -> dict:
    path = out / "runs" / f"{exchange}-{ranks}r.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    cmd = [str(HERMETIC), "--", sys.executable, "-m", "adlcodec.train", "--hook", "adacomp", "--bits", str(args.bits),
           "--exchange", exchange, "--ranks", str(ranks), "--hidden", str(args.hidden), "--batch-size",
           str(args.batch_size), "--max-steps", str(args.steps), "--timing-warmup", str(args.warmup),
           "--no-progress", "--out", str(path)]
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


def probe(ranks: int, per_peer: int, port: int) -> float:
    cmd = [str(HERMETIC), "--", sys.executable, __file__, "--probe-rank", str(ranks), str(per_peer), "100", str(port)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    if proc.returncode != 0:
        raise SystemExit(f"probe failed: {proc.stderr[-2000:]}")
    return float(proc.stdout.strip().splitlines()[-1])


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
    p.add_argument("--probe", action="store_true", help="also measure gloo's cost per peer and collective")
    p.add_argument("--run-timeout", type=float, default=900)
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--probe-rank", nargs=4, type=int, default=None, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.probe_rank:  # inside the private namespace: spawn the probe's ranks
        import torch.multiprocessing as mp

        world, per_peer, reps, port = args.probe_rank
        mp.spawn(probe_rank, args=(world, per_peer, reps, port), nprocs=world)
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
        for ranks in (max(rank_counts),):
            for per_peer in (8, 336):
                probes.append(dict(ranks=ranks, per_peer=per_peer, overhead=probe(ranks, per_peer, 29611)))
    from adlcodec.ddp import _CONTROL_FIELDS

    # the reduce-scatter's control row per peer and bucket: its fields, the bytes addressed to that peer and
    # the sender's total (no bandwidth budget here); scaling_model.py subtracts it to fit the slices' headers
    result = dict(config=vars(args), rows=rows, probes=probes, wall_s=time.time() - start,
                  control_int64_per_peer=len(_CONTROL_FIELDS) + 2)
    (out / "results.json").write_text(json.dumps(result, indent=1))
    lines = [f"Paper CNN (hidden {args.hidden}), batch {args.batch_size}, {args.bits} bit, steps {args.warmup + 1}-"
             f"{args.steps} of {args.steps}, local ranks on one private loopback. MB per rank per step.", "",
             "| exchange | ranks | wire | hook to peers | transport (wire - to peers) | own payload | wire / wire at "
             f"{rank_counts[0]} ranks | buckets per step | replicas identical |", "|---|---:|---:|---:|---:|---:|---:|---:|---|"]
    for r in rows:
        base = next(b["wire"] for b in rows if b["exchange"] == r["exchange"] and b["ranks"] == rank_counts[0])
        lines.append(f"| {r['exchange']} | {r['ranks']} | {r['wire'] / 1e6:.3f} | {r['to_peers'] / 1e6:.3f} | "
                     f"{r['transport'] / 1e6:.3f} | {r['payload'] / 1e6:.3f} | {r['wire'] / base:.2f} | "
                     f"{r['buckets_per_step']:.0f} | {r['replicas_identical']} |")
    if probes:
        lines += ["", "gloo `all_to_all_single` on loopback, bytes per peer and collective beyond the data:", "",
                  "| ranks | data per peer (B) | transport per peer (B) |", "|---:|---:|---:|"]
        lines += [f"| {q['ranks']} | {q['per_peer']} | {q['overhead']:.0f} |" for q in probes]
    (out / "results.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
