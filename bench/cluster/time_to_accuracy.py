#!/usr/bin/env python3
"""Time to reach fp32 DDP's final accuracy on the emulated Pi testbed.

Training on CPU is deterministic and none of the hooks' arithmetic depends on timing, so a run's accuracy
after step s is the same on a throttled, shaped testbed as on an unthrottled private loopback (tested:
tests/test_testbed.py compares the state digests).  So this script

1. ``curves``: trains every method for ``--epochs`` on a private loopback (scripts/cluster/hermetic.sh) with
   an evaluation every ``--eval-every`` steps, per rank count and seed, and keeps the accuracy curves;
2. ``report``: takes each method's step time measured on the testbed (bench/cluster/testbed.py's
   results.json, at one slowdown factor and link rate) and turns the curves into accuracy against emulated
   wall time: time to reach ``target = fp32's final accuracy (mean over seeds) - tolerance`` is the first
   evaluation step where the mean curve over seeds reaches it, times the method's testbed step time.
   Evaluation time is not counted (it is the same for every method).

    python bench/cluster/time_to_accuracy.py curves --ranks 8,32 --seeds 0,1,2
    python bench/cluster/time_to_accuracy.py report --factor 20 --rate 100mbit
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_bench import HERMETIC  # noqa: E402
from testbed import ISSUE_METHODS, METHODS  # noqa: E402

DEFAULT_DIR = HERE / "results" / "testbed"
TRAIN_IMAGES = 60_000  # Fashion-MNIST's training set
BUILT_IN = ("allreduce-fp32", "fp16_compress_hook", "powerSGD-rank1", "powerSGD-rank2")


def curve_path(out: Path, method: str, ranks: int, seed: int) -> Path:
    return out / "curves" / f"{method}-{ranks}r-seed{seed}.json"


def run_curves(args) -> int:
    out = Path(args.out)
    (out / "curves").mkdir(parents=True, exist_ok=True)
    methods = ISSUE_METHODS if args.methods == "issue" else args.methods.split(",")
    start = time.time()
    failures = []
    # seed-major: a partial run still has every method at every rank count
    for seed in (int(s) for s in args.seeds.split(",")):
        for ranks in (int(r) for r in args.ranks.split(",")):
            steps = int(args.epochs * ((TRAIN_IMAGES // ranks) // args.batch_size))
            eval_every = args.eval_every or max(1, steps // args.evaluations)
            for method in methods:
                path = curve_path(out, method, ranks, seed)
                if path.exists() and not args.force:
                    continue
                cmd = [str(HERMETIC), "--", sys.executable, "-m", "adlcodec.train", *METHODS[method],
                       "--ranks", str(ranks), "--epochs", str(args.epochs), "--batch-size", str(args.batch_size),
                       "--seed", str(seed), "--hidden", str(args.hidden), "--lr", str(args.lr), "--momentum",
                       str(args.momentum), "--eval-every", str(eval_every), "--no-progress", "--out", str(path)]
                print(f"[{time.time() - start:6.0f}s] {method}, {ranks} ranks, seed {seed}", flush=True)
                with open(path.with_suffix(".log"), "w") as log:
                    proc = subprocess.run(cmd, stdout=log, stderr=subprocess.STDOUT, timeout=args.run_timeout,
                                          env=dict(os.environ, OMP_NUM_THREADS="1"))
                if proc.returncode != 0:
                    failures.append(f"{method} {ranks} ranks seed {seed}: exit {proc.returncode}, see {path}.log")
                    print("  FAILED", flush=True)
                    continue
                r = json.loads(path.read_text())
                print(f"  {r['accuracy']:.2f} % after {r['steps']} steps, replicas identical "
                      f"{r['replicas_identical']}", flush=True)
    print("\n".join(failures))
    return 1 if failures else 0


def load_curves(out: Path, ranks: int, seeds: set[int] | None = None) -> dict[str, list[dict]]:
    """method -> the seeds' results at ``ranks`` (only ``seeds`` when given)."""
    found: dict[str, list[dict]] = {}
    for path in sorted((out / "curves").glob(f"*-{ranks}r-seed*.json")):
        method, _, seed = path.stem.rpartition(f"-{ranks}r-seed")
        if seeds is None or int(seed) in seeds:
            found.setdefault(method, []).append(json.loads(path.read_text()))
    return found


def mean_curve(results: list[dict]) -> tuple[np.ndarray, np.ndarray]:
    """Steps and the mean accuracy over seeds at each evaluation every seed made."""
    curves = [dict((int(s), a) for s, a in r["accuracy_curve"]) for r in results]
    steps = sorted(set.intersection(*(set(c) for c in curves)))
    return np.array(steps), np.array([np.mean([c[s] for c in curves]) for s in steps])


def report(args) -> int:
    out = Path(args.out)
    timing = json.loads(Path(args.timing).read_text())
    step_time = {(r["method"], r["ranks"]): r["step_time_s"] for r in timing["runs"]
                 if r.get("status") == "ok" and r["factor"] == args.factor and r["rate"] == args.rate}
    compute_only = {r["ranks"]: r["step_time_s"] for r in timing.get("compute_only", [])
                    if r.get("factor") == args.factor and r.get("step_time_s")}
    summary = dict(factor=args.factor, rate=args.rate, tolerance=args.tolerance, by_ranks={})
    lines = [f"Time to reach fp32 DDP's final accuracy (mean of seeds) minus {args.tolerance} points, Fashion-MNIST, "
             f"testbed step times at {args.factor}x, {args.rate}; accuracy curves from deterministic loopback "
             "runs of the same training (bench/cluster/time_to_accuracy.py).", ""]
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rank_counts = [int(r) for r in args.ranks.split(",")]
    fig, axes = plt.subplots(1, len(rank_counts), figsize=(6.5 * len(rank_counts), 4.5), squeeze=False)
    for ax, ranks in zip(axes[0], rank_counts):
        curves = load_curves(out, ranks, None if args.seeds is None else {int(x) for x in args.seeds.split(",")})
        if "allreduce-fp32" not in curves:
            continue
        fp32 = curves["allreduce-fp32"]
        target = float(np.mean([r["accuracy"] for r in fp32])) - args.tolerance
        fp32_steps = fp32[0]["steps"]
        fp32_wall = fp32_steps * step_time.get(("allreduce-fp32", ranks), float("nan"))
        rows = []
        for method, results in curves.items():
            steps, acc = mean_curve(results)
            st = step_time.get((method, ranks))
            reached = np.nonzero(acc >= target)[0]
            first = int(steps[reached[0]]) if reached.size else None
            rows.append(dict(method=method, seeds=len(results), final=float(np.mean([r["accuracy"] for r in results])),
                             step_time_s=st, steps_to_target=first,
                             time_to_target_s=None if first is None or st is None else first * st,
                             wall_s=None if st is None else results[0]["steps"] * st,
                             replicas_identical=all(r["replicas_identical"] for r in results)))
            if st is not None:
                ax.plot(steps * st, acc, marker=".", label=method)
        built_in = [r["time_to_target_s"] for r in rows if r["method"] in BUILT_IN]
        best_built_in = min((t for t in built_in if t is not None), default=None)
        for r in rows:
            t = r["time_to_target_s"]
            r["vs_fp32_wall"] = None if t is None else t / fp32_wall
            r["faster_than_every_built_in"] = (None if t is None or r["method"] in BUILT_IN
                                               else best_built_in is None or t < best_built_in)
        # No method can beat computing fp32's own steps to the target with no communication at all: a
        # compressed method needs at least as many steps (it does not learn faster per step), each at least
        # the compute-only step.  When this floor is above 1/3, the issue's "1/3 of fp32's wall" is out of
        # reach for every method at this factor, whatever its exchange.
        fp32_first = next((r["steps_to_target"] for r in rows if r["method"] == "allreduce-fp32"), None)
        co = compute_only.get(ranks)
        floor = None if fp32_first is None or co is None else fp32_first * co / fp32_wall
        summary["by_ranks"][str(ranks)] = dict(target=target, fp32_wall_s=fp32_wall, steps=fp32_steps, rows=rows,
                                               compute_only_s=co, floor_vs_fp32_wall=floor)
        lines += [f"### {ranks} ranks: target {target:.2f} % (fp32 final {target + args.tolerance:.2f} % after "
                  f"{fp32_steps} steps, {fp32_wall:.0f} s)", "",
                  "| method | seeds | final % (mean) | step s | steps to target | time to target s | ÷ fp32 wall | "
                  "faster than every built-in hook |", "|---|---:|---:|---:|---:|---:|---:|---|"]
        for r in sorted(rows, key=lambda r: (r["time_to_target_s"] is None, r["time_to_target_s"] or 0)):
            def f(v, spec):
                return "-" if v is None else format(v, spec)
            lines.append(f"| {r['method']} | {r['seeds']} | {r['final']:.2f} | {f(r['step_time_s'], '.3f')} | "
                         f"{f(r['steps_to_target'], 'd')} | {f(r['time_to_target_s'], '.0f')} | "
                         f"{f(r['vs_fp32_wall'], '.2f')} | {f(r['faster_than_every_built_in'], '')} |")
        if floor is not None:
            lines += ["", f"Floor: fp32's {fp32_first} steps to the target at the compute-only step ({co:.3f} s, no "
                      f"communication) take {fp32_first * co:.0f} s, {floor:.2f} of fp32's wall: no method reaches the "
                      f"target in less unless it needs fewer steps than fp32."]
        lines.append("")
        ax.axhline(target, color="grey", ls="--", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel(f"emulated wall time (s), {args.factor}x, {args.rate}")
        ax.set_ylabel("test accuracy (%), mean of seeds")
        ax.set_title(f"{ranks} ranks")
        ax.grid(True, which="both", alpha=0.3)
        ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "accuracy_vs_time.png", dpi=110)
    (out / "time_to_accuracy.json").write_text(json.dumps(summary, indent=2))
    (out / "time_to_accuracy.md").write_text("\n".join(lines))
    print("\n".join(lines))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("curves", help="train every method on a private loopback and keep its accuracy curve")
    c.add_argument("--methods", default="issue")
    c.add_argument("--ranks", default="8,32")
    c.add_argument("--seeds", default="0,1,2")
    c.add_argument("--epochs", type=float, default=1.0)
    c.add_argument("--eval-every", type=int, default=0, help="0: --evaluations per run")
    c.add_argument("--evaluations", type=int, default=30, help="evaluations per run when --eval-every is 0")
    c.add_argument("--batch-size", type=int, default=32)
    c.add_argument("--hidden", type=int, default=1024)
    c.add_argument("--lr", type=float, default=0.002)
    c.add_argument("--momentum", type=float, default=0.9)
    c.add_argument("--run-timeout", type=float, default=1800)
    c.add_argument("--force", action="store_true", help="run again what already has a curve")
    c.add_argument("--out", default=str(DEFAULT_DIR))
    r = sub.add_parser("report", help="curves x testbed step times -> time to fp32's final accuracy")
    r.add_argument("--timing", default=str(DEFAULT_DIR / "results.json"))
    r.add_argument("--factor", type=float, required=True)
    r.add_argument("--rate", default="100mbit")
    r.add_argument("--ranks", default="8,32")
    r.add_argument("--tolerance", type=float, default=0.3, help="points below fp32's final accuracy that count")
    r.add_argument("--seeds", default=None, help="comma list: only these seeds' curves (default: all there are)")
    r.add_argument("--out", default=str(DEFAULT_DIR))
    args = p.parse_args(argv)
    return run_curves(args) if args.cmd == "curves" else report(args)


if __name__ == "__main__":
    sys.exit(main())
