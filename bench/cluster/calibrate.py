#!/usr/bin/env python3
"""Calibration of the testbed's slowdown factor (docs/TESTBED.md): this core's figures against a Pi 3B+ core.

Measures here, one process, one thread: the FLOPs of one step of the paper CNN (torch's flop counter), its
time per step, and the rate of a 1024^3 fp32 matrix product; runs llvm-mca-19's Cortex-A53 model on one
k-step of an 8x8 fp32 SGEMM register block for the Pi core's ideal GEMM
rate at 1.4 GHz; and derives factor = (GEMM rate here) / (GEMM rate of the Pi core) for that rate and for
the published ones given in docs/TESTBED.md.  Writes OUT/calibration.json and OUT/calibration.md.

    python bench/cluster/calibrate.py [--out bench/cluster/results/testbed]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

PI_CLOCK_HZ = 1.4e9  # Raspberry Pi 3B+: BCM2837B0, 4x Cortex-A53 at 1.4 GHz
# one k-step of an 8x8 fp32 SGEMM micro-kernel: 8 rows of A and 8 columns of B in four q registers,
# 16 multiply-accumulates by element into 16 accumulators = 8 x 8 x 2 = 128 flops
A53_SGEMM_KSTEP = "\n".join(
    ["ldr q0, [x0], #16", "ldr q1, [x0], #16", "ldr q2, [x1], #16", "ldr q3, [x1], #16"]
    + [f"fmla v{16 + 2 * i + j}.4s, v{2 + j}.4s, v{i // 4}.s[{i % 4}]" for i in range(8) for j in range(2)]) + "\n"
A53_SGEMM_KSTEP_FLOPS = 128
# published per-core GEMM rates of a Pi 3 / 3B+ (sources in docs/TESTBED.md), scaled to 1.4 GHz
PUBLISHED = [
    dict(gflops=3.0 * 1.4 / 1.2, what="hand-written NEON GEMM, small matrices, Pi 3 at 1.2 GHz (qkou.info part 3)"),
    dict(gflops=2.0 * 1.4 / 1.2, what="hand-written NEON GEMM, cache-blocked, Pi 3 at 1.2 GHz (qkou.info part 4)"),
]


def a53_sgemm_gflops() -> dict:
    mca = shutil.which("llvm-mca-19") or shutil.which("llvm-mca")
    if mca is None:
        raise SystemExit("llvm-mca-19 not found (apt-get install llvm-19)")
    out = subprocess.run([mca, "-mtriple=aarch64", "-mcpu=cortex-a53", "-iterations=1000"], input=A53_SGEMM_KSTEP,
                         capture_output=True, text=True, check=True).stdout
    cycles = int(re.search(r"Total Cycles:\s+(\d+)", out).group(1)) / 1000
    return dict(cycles_per_kstep=cycles, flops_per_cycle=A53_SGEMM_KSTEP_FLOPS / cycles,
                gflops=A53_SGEMM_KSTEP_FLOPS / cycles * PI_CLOCK_HZ / 1e9, tool=os.path.basename(mca))


def x86_figures(hidden: int, batch: int, steps: int) -> dict:
    os.environ["OMP_NUM_THREADS"] = "1"
    import torch
    import torch.nn.functional as F
    from torch.utils.flop_counter import FlopCounterMode

    from adlcodec.models import build_model

    torch.set_num_threads(1)
    torch.manual_seed(0)
    model = build_model(hidden=hidden)
    opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    x, y = torch.randn(batch, 1, 28, 28), torch.randint(0, 10, (batch,))

    def step():
        opt.zero_grad(set_to_none=False)
        F.cross_entropy(model(x), y).backward()
        opt.step()

    with FlopCounterMode(display=False) as fc:
        step()
    flops = fc.get_total_flops()
    for _ in range(5):
        step()
    # CPU time of this thread (torch runs one thread, in the caller): what a step costs on a core of its own,
    # whatever else the shared box runs meanwhile; the fastest wall time is reported beside it
    times, cpu = [], []
    for _ in range(steps):
        t, c = time.perf_counter(), time.thread_time()
        step()
        cpu.append(time.thread_time() - c)
        times.append(time.perf_counter() - t)
    a, b = torch.randn(1024, 1024), torch.randn(1024, 1024)
    for _ in range(3):
        a @ b
    gemm = []
    for _ in range(10):
        c = time.thread_time()
        a @ b
        gemm.append(time.thread_time() - c)
    step_cpu = sorted(cpu)[len(cpu) // 2]
    return dict(step_flops=flops, step_cpu_s=step_cpu, step_wall_min_s=min(times),
                step_wall_median_s=sorted(times)[len(times) // 2], step_gflops=flops / step_cpu / 1e9,
                load_average=os.getloadavg(),
                sgemm_1024_gflops=2 * 1024 ** 3 / sorted(gemm)[len(gemm) // 2] / 1e9, torch=torch.__version__,
                params=sum(p.numel() for p in model.parameters()))


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(Path(__file__).resolve().parent / "results" / "testbed"))
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--steps", type=int, default=40)
    args = p.parse_args(argv)
    here = x86_figures(args.hidden, args.batch_size, args.steps)
    model = a53_sgemm_gflops()
    rates = [dict(gflops=model["gflops"], what="llvm-mca Cortex-A53 model, 8x8 SGEMM k-step, ideal (L1, no packing)")]
    rates += PUBLISHED
    for r in rates:
        r["factor"] = here["sgemm_1024_gflops"] / r["gflops"]
        r["pi_step_s"] = here["step_cpu_s"] * r["factor"]
    res = dict(x86=here, a53_model=model, a53_sgemm_kstep_asm=A53_SGEMM_KSTEP, pi_clock_hz=PI_CLOCK_HZ, rates=rates)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "calibration.json").write_text(json.dumps(res, indent=2))
    lines = [f"Paper CNN hidden {args.hidden}, batch {args.batch_size}, one thread, torch {here['torch']}: "
             f"{here['step_flops'] / 1e9:.3f} GFLOP per step, {1000 * here['step_cpu_s']:.1f} ms of CPU per step "
             f"(median of {args.steps}; wall: fastest {1000 * here['step_wall_min_s']:.1f}, median "
             f"{1000 * here['step_wall_median_s']:.1f}), {here['step_gflops']:.1f} GFLOP/s; 1024^3 SGEMM "
             f"{here['sgemm_1024_gflops']:.1f} GFLOP/s (CPU time, median of 10); load average "
             f"{here['load_average'][0]:.2f} when measured.", "",
             f"Cortex-A53 model ({model['tool']} -mcpu=cortex-a53): {model['cycles_per_kstep']:.1f} cycles per 8x8 "
             f"SGEMM k-step ({model['flops_per_cycle']:.2f} flop/cycle, {model['gflops']:.2f} GFLOP/s at 1.4 GHz):",
             "", "```", A53_SGEMM_KSTEP.rstrip(), "```", "",
             "| Pi 3B+ core GEMM rate | from | factor | emulated Pi step |", "|---:|---|---:|---:|"]
    lines += [f"| {r['gflops']:.2f} GFLOP/s | {r['what']} | {r['factor']:.0f}x | {r['pi_step_s']:.2f} s |" for r in rates]
    (out / "calibration.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
