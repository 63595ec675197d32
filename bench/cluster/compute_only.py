#!/usr/bin/env python3
"""Compute share of a DDP step: forward + backward + optimizer step with no communication at all.

run_bench.py starts one of these per rank, all at once, so they compete for the cores exactly as the
ranks of a timing run do; the median step time is what a step would cost on an infinitely fast link.
Inputs are random tensors of the real shape: dense convolutions cost the same whatever the values.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--hidden", type=int, default=None)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=15)
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--out", required=True)
    p.add_argument("--barrier-dir", default=None,
                   help="start timing only once --ranks processes have written their ready file here")
    p.add_argument("--ranks", type=int, default=1)
    args = p.parse_args(argv)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    import torch
    import torch.nn.functional as F

    from adlcodec.models import build_model

    torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))
    torch.manual_seed(0)
    model = build_model(**({} if args.hidden is None else dict(hidden=args.hidden)))
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x = torch.randn(args.batch_size, 1, 28, 28)
    y = torch.randint(0, 10, (args.batch_size,))
    if args.barrier_dir:
        # interpreter and torch start-up take seconds and vary: without a barrier the processes would
        # not overlap fully and the compute share would look smaller than in a real step
        open(os.path.join(args.barrier_dir, f"ready.{os.getpid()}"), "w").close()
        deadline = time.monotonic() + 120
        while sum(n.startswith("ready.") for n in os.listdir(args.barrier_dir)) < args.ranks:
            if time.monotonic() > deadline:
                raise TimeoutError("compute-only barrier: not every process started")
            time.sleep(0.01)
    times = []
    for step in range(args.steps):
        t0 = time.perf_counter()
        opt.zero_grad(set_to_none=False)
        F.cross_entropy(model(x), y).backward()
        opt.step()
        if step >= args.warmup:
            times.append(time.perf_counter() - t0)
    with open(args.out, "w") as f:
        json.dump(dict(step_time_median_s=float(np.median(times)), step_time_s=float(np.mean(times)),
                       params=sum(p.numel() for p in model.parameters())), f)
    return 0


if __name__ == "__main__":
    sys.exit(main())
