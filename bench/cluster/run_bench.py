#!/usr/bin/env python3
"""Emulated Raspberry Pi cluster benchmark.

Every rank runs in its own network namespace, linked to a bridge by a veth
pair shaped with ``tbf`` on both ends (scripts/cluster/netns.sh), so a rank sees
a full-duplex Pi-class Ethernet link.  For each DDP communication method we
measure time per step and bytes each rank really sent (its eth0 tx counter),
then train for a fixed number of epochs on a private loopback to compare
accuracy (accuracy does not depend on link speed).  Results go to
``OUT/results.json``, ``OUT/results.md`` and ``OUT/step_time_vs_rate.png``.

Needs root (ip netns, tc).  Nothing leaves the machine: the 10.77.0.0/24
addresses exist only inside namespaces created here, and they are deleted on
exit, on error and on SIGINT/SIGTERM.

    python bench/cluster/run_bench.py                 # full sweep (~15 min on 2 cores)
    python bench/cluster/run_bench.py --quick --out /tmp/q   # smoke version used by the tests
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

from adlcodec.paper import tail_accuracy

REPO = Path(__file__).resolve().parents[2]
NETNS = REPO / "scripts" / "cluster" / "netns.sh"
HERMETIC = REPO / "scripts" / "cluster" / "hermetic.sh"
COMPUTE_ONLY = Path(__file__).resolve().parent / "compute_only.py"

METHODS = {
    "allreduce-fp32": ["--hook", "allreduce"],
    "fp16_compress_hook": ["--hook", "fp16"],
    "powerSGD-rank1": ["--hook", "powersgd", "--powersgd-rank", "1"],
    "powerSGD-rank2": ["--hook", "powersgd", "--powersgd-rank", "2"],
    "adlcodec-1bit": ["--hook", "adacomp", "--bits", "1"],
    "adlcodec-8bit": ["--hook", "adacomp", "--bits", "8"],
    "adlcodec-32bit": ["--hook", "adacomp", "--bits", "32"],
}
SWEEP_METHODS = ["allreduce-fp32", "fp16_compress_hook", "powerSGD-rank1", "adlcodec-1bit"]

_live_clusters: list[tuple[str, int]] = []


def _teardown_all(*_):
    while _live_clusters:
        prefix, n = _live_clusters.pop()
        subprocess.run([str(NETNS), "down", prefix, str(n)], check=False)


def _on_signal(signum, _frame):
    _teardown_all()
    sys.exit(128 + signum)


class Cluster:
    """Context manager: namespaces up on enter, always down on exit."""

    def __init__(self, prefix: str, ranks: int, rate: str):
        self.prefix, self.ranks, self.rate = prefix, ranks, rate

    def __enter__(self):
        _live_clusters.append((self.prefix, self.ranks))
        subprocess.run([str(NETNS), "up", self.prefix, str(self.ranks), self.rate], check=True)
        return self

    def __exit__(self, *exc):
        subprocess.run([str(NETNS), "down", self.prefix, str(self.ranks)], check=False)
        if (self.prefix, self.ranks) in _live_clusters:
            _live_clusters.remove((self.prefix, self.ranks))


def train_in_cluster(cluster: Cluster, train_args: list[str], out_json: Path, timeout: float) -> dict:
    """``python -m adlcodec.train TRAIN_ARGS`` with one rank per namespace; returns rank 0's result."""
    env_common = [
        f"WORLD_SIZE={cluster.ranks}", "MASTER_ADDR=10.77.0.1", "MASTER_PORT=29531", "GLOO_SOCKET_IFNAME=eth0",
        "OMP_NUM_THREADS=1", "LOCAL_RANK=0",
    ]
    train = [sys.executable, "-m", "adlcodec.train", *train_args, "--no-progress", "--iface", "eth0",
             "--out", str(out_json)]
    procs = []
    logs = []
    for k in range(cluster.ranks):
        log = open(out_json.with_suffix(f".rank{k}.log"), "w")
        logs.append(log)
        cmd = [str(NETNS), "exec", cluster.prefix, str(k), "env", f"RANK={k}", *env_common, *train]
        procs.append(subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT))
    deadline = time.monotonic() + timeout
    failed = None
    for k, p in enumerate(procs):
        try:
            rc = p.wait(timeout=max(1.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            rc = "timeout"
        if rc != 0 and failed is None:
            failed = (k, rc)
            for q in procs:  # one rank down: the others would wait on it forever
                if q.poll() is None:
                    q.kill()
    for log in logs:
        log.close()
    if failed:
        raise RuntimeError(f"{' '.join(train_args)} on {cluster.ranks} ranks @ {cluster.rate}: rank {failed[0]} "
                           f"exited {failed[1]}; see {out_json.with_suffix(f'.rank{failed[0]}.log')}")
    return json.loads(out_json.read_text())


def timed_run(cluster: Cluster, method: str, args, out_json: Path) -> dict:
    """One short training run of ``method``, timed; returns rank 0's result."""
    return train_in_cluster(cluster, [
        *METHODS[method], "--max-steps", str(args.steps), "--batch-size", str(args.batch_size),
        "--seed", str(args.seed), "--eval-subset", "1000", "--hidden", str(args.hidden), "--timing-warmup", "3",
        "--lr", str(args.lr), "--momentum", str(args.momentum),
    ], out_json, args.run_timeout)


def accuracy_run(method: str, args, out_json: Path, seed: int) -> dict:
    cmd = [
        str(HERMETIC), "--", sys.executable, "-m", "adlcodec.train", *METHODS[method], "--ranks", str(args.acc_ranks),
        "--epochs", str(args.epochs), "--batch-size", str(args.batch_size), "--seed", str(seed),
        "--hidden", str(args.hidden), "--no-progress", "--out", str(out_json),
        "--lr", str(args.lr), "--momentum", str(args.momentum),
    ]
    if args.acc_eval_every:
        cmd += ["--eval-every", str(args.acc_eval_every), "--eval-last", str(args.acc_eval_last)]
    if args.acc_train_subset:
        cmd += ["--train-subset", str(args.acc_train_subset)]
    if args.acc_max_steps:
        cmd += ["--max-steps", str(args.acc_max_steps)]
    env = dict(os.environ, OMP_NUM_THREADS="1")  # the installed adlcodec: the source tree has no _core
    with open(out_json.with_suffix(".log"), "w") as log:
        subprocess.run(cmd, check=True, stdout=log, stderr=subprocess.STDOUT, env=env, timeout=args.run_timeout * 4)
    return json.loads(out_json.read_text())


def compute_baseline(ranks: int, args, out_dir: Path) -> float:
    """Mean time per step of forward+backward+optimizer with no communication, ``ranks`` processes at once."""
    env = dict(os.environ, OMP_NUM_THREADS="1")  # the installed adlcodec: the source tree has no _core
    outs = [out_dir / f"compute-only-{ranks}r.rank{k}.json" for k in range(ranks)]
    with tempfile.TemporaryDirectory() as barrier:
        procs = [subprocess.Popen([sys.executable, str(COMPUTE_ONLY), "--hidden", str(args.hidden), "--batch-size",
                                   str(args.batch_size), "--steps", str(args.steps), "--out", str(o),
                                   "--barrier-dir", barrier, "--ranks", str(ranks)], env=env)
                 for o in outs]
        for proc in procs:
            if proc.wait(timeout=args.run_timeout) != 0:
                raise RuntimeError(f"compute-only baseline for {ranks} ranks failed")
    return sum(json.loads(o.read_text())["step_time_s"] for o in outs) / ranks


def _row(method, ranks, rate, r):
    row = dict(
        method=method, ranks=ranks, rate=rate, step_time_s=r["step_time_s"], step_time_median_s=r["step_time_median_s"],
        wire_bytes_per_rank_step=r["wire_bytes_per_rank_step"], payload_bytes_per_step=r["payload_bytes_per_step"],
        dense_bytes_per_step=r["dense_bytes_per_step"], compression_ratio=r["compression_ratio"],
        replicas_identical=r["replicas_identical"], encode_s=None, allgather_s=None, decode_s=None,
    )
    stats = r.get("hook_stats")
    if stats and stats.get("compressed_steps"):
        # rank 0's seconds inside the hook, per compressed iteration
        n = stats["compressed_steps"]
        row.update(encode_s=stats["encode_s"] / n, allgather_s=stats["comm_s"] / n, decode_s=stats["decode_s"] / n)
    return row


def write_markdown(results: dict, path: Path) -> None:
    timing = results["timing"]
    acc = {a["method"]: a["accuracy"] for a in results["accuracy"]}
    lines = [f"Paper CNN, hidden {results['hidden']} ({results['params']:,} parameters, "
             f"{4 * results['params'] / 1e6:.2f} MB fp32 gradient), Fashion-MNIST, batch {results['batch_size']} "
             f"per rank, SGD lr {results.get('lr', 0.02)} momentum {results.get('momentum', 0.9)}, "
             f"{results['steps']} steps per timing run (first 3 not timed); accuracy after "
             f"{results['epochs']} epoch(s) on {results['acc_ranks']} ranks, mean over seeds "
             f"{results.get('acc_seeds', '0')}. Wall time {results['wall_s']:.0f} s.", ""]
    for ranks in sorted({t["ranks"] for t in timing}):
        for rate in results["rates_main"]:
            rows = [t for t in timing if t["ranks"] == ranks and t["rate"] == rate]
            if not rows:
                continue
            base = next((t["step_time_s"] for t in rows if t["method"] == "allreduce-fp32"), None)
            lines += [f"### {ranks} ranks, {rate} per link", "",
                      "| method | time/step (ms) | speed-up vs fp32 | wire MB/rank/step | payload MB/rank/step "
                      "| compression ratio | accuracy (%) |",
                      "|---|---:|---:|---:|---:|---:|---:|"]
            for t in rows:
                speed = f"{base / t['step_time_s']:.1f}x" if base else "-"
                wire = "-" if t["wire_bytes_per_rank_step"] is None else f"{t['wire_bytes_per_rank_step'] / 1e6:.3f}"
                a = acc.get(t["method"])
                lines.append(
                    f"| {t['method']} | {1000 * t['step_time_s']:.0f} | {speed} | {wire} | "
                    f"{t['payload_bytes_per_step'] / 1e6:.3f} | {t['compression_ratio']:.1f} | "
                    f"{'-' if a is None else f'{a:.2f}'} |")
            lines.append("")
    if results["accuracy"]:
        base = acc.get("allreduce-fp32")
        base_tail = next((a.get("tail_accuracy") for a in results["accuracy"] if a["method"] == "allreduce-fp32"), None)
        lines += [f"### Test accuracy after {results['epochs']} epoch(s), {results['acc_ranks']} ranks", "",
                  "Tail: the mean of each run's evaluations within its last "
                  f"{results.get('acc_eval_last', '-')} steps (every {results.get('acc_eval_every', '-')}, and the "
                  "final one), averaged over the seeds.", "",
                  "| method | accuracy (%), mean | vs fp32 allreduce (points) | tail (%) | tail vs fp32 | per seed | "
                  "steps | replicas identical |",
                  "|---|---:|---:|---:|---:|---|---:|---|"]
        for a in results["accuracy"]:
            delta = "-" if base is None else f"{a['accuracy'] - base:+.2f}"
            tail = a.get("tail_accuracy")
            tail_delta = "-" if tail is None or base_tail is None else f"{tail - base_tail:+.2f}"
            seeds = " / ".join(f"{s['accuracy']:.2f}" for s in a.get("seeds", [a]))
            lines.append(f"| {a['method']} | {a['accuracy']:.2f} | {delta} | {'-' if tail is None else f'{tail:.2f}'} | "
                         f"{tail_delta} | {seeds} | {a['steps']} | {a['replicas_identical']} |")
        lines.append("")
    for ranks in sorted({t["ranks"] for t in timing}):
        compute = results["compute_only_s"].get(str(ranks))
        for rate in results["rates_main"]:
            rows = [t for t in timing if t["ranks"] == ranks and t["rate"] == rate]
            if not rows or compute is None:
                continue
            lines += [f"### Where a step goes: {ranks} ranks, {rate} per link (ms per step)", "",
                      f"compute = forward + backward + optimizer of {ranks} processes sharing the cores with no "
                      f"communication ({1000 * compute:.0f} ms); encode / all-gather / decode = rank 0's time inside "
                      "the adlcodec hook; exchange + rest = step - compute - encode - decode (for the built-in hooks "
                      "this is the collective plus their own compression).", "",
                      "| method | step | compute | encode | all-gather | decode | exchange + rest |",
                      "|---|---:|---:|---:|---:|---:|---:|"]
            for t in rows:
                enc, ag, dec = (t.get(k) for k in ("encode_s", "allgather_s", "decode_s"))
                rest = t["step_time_s"] - compute - (enc or 0) - (dec or 0)

                def ms(v):
                    return "-" if v is None else f"{1000 * v:.0f}"

                lines.append(f"| {t['method']} | {ms(t['step_time_s'])} | {ms(compute)} | {ms(enc)} | {ms(ag)} | "
                             f"{ms(dec)} | {ms(rest)} |")
            lines.append("")
    sweep = results["sweep"]
    if sweep:
        rates = results["rates_sweep"]
        lines += [f"### Time per step (ms) vs link rate, {results['sweep_ranks']} ranks", "",
                  "| method | " + " | ".join(rates) + " |", "|---|" + "---:|" * len(rates)]
        for m in dict.fromkeys(t["method"] for t in sweep):
            cells = []
            for rate in rates:
                t = next((t for t in sweep if t["method"] == m and t["rate"] == rate), None)
                cells.append("-" if t is None else f"{1000 * t['step_time_s']:.0f}")
            lines.append(f"| {m} | " + " | ".join(cells) + " |")
        lines.append("")
    path.write_text("\n".join(lines))


def plot(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sweep = results["sweep"]
    fig, ax = plt.subplots(figsize=(7, 4.5))
    for m in dict.fromkeys(t["method"] for t in sweep):
        pts = sorted((_mbit(t["rate"]), t["step_time_s"]) for t in sweep if t["method"] == m)
        ax.plot([p[0] for p in pts], [1000 * p[1] for p in pts], marker="o", label=m)
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("link rate per rank (Mbit/s)")
    ax.set_ylabel("time per step (ms)")
    ax.set_title(f"Emulated Pi cluster, {results['sweep_ranks']} ranks, paper CNN on Fashion-MNIST")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend()
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)


def _mbit(rate: str) -> float:
    r = rate.lower()
    for suffix, mult in (("gbit", 1000.0), ("mbit", 1.0), ("kbit", 0.001)):
        if r.endswith(suffix):
            return float(r[: -len(suffix)]) * mult
    raise ValueError(f"rate must look like 100mbit, got {rate!r}")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(REPO / "bench" / "cluster" / "results"))
    p.add_argument("--ranks", default="4,8", help="comma list of rank counts for the main table")
    p.add_argument("--rates-main", default="100mbit")
    p.add_argument("--rates-sweep", default="25mbit,100mbit,300mbit,1000mbit")
    p.add_argument("--sweep-ranks", type=int, default=4)
    p.add_argument("--methods", default=",".join(METHODS))
    p.add_argument("--sweep-methods", default=",".join(SWEEP_METHODS))
    p.add_argument("--steps", type=int, default=20)
    p.add_argument("--hidden", type=int, default=1024,
                   help="units of the CNN's first linear layer (1024: 3.28 M parameters, see docs/CLUSTER.md)")
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--acc-ranks", type=int, default=4)
    p.add_argument("--acc-train-subset", type=int, default=None)
    p.add_argument("--acc-max-steps", type=int, default=None)
    p.add_argument("--seed", type=int, default=0, help="seed of the timing runs")
    p.add_argument("--acc-seeds", default="0,1,2", help="seeds of the accuracy runs (the table gives their mean)")
    p.add_argument("--acc-eval-every", type=int, default=25,
                   help="accuracy runs also evaluate every N steps within the last --acc-eval-last steps; "
                        "the mean of those evaluations is the tail accuracy (0: final evaluation only)")
    p.add_argument("--acc-eval-last", type=int, default=75)
    # SGD, momentum 0.9, lr 0.002: the better of 0.02 and 0.002 for fp32 allreduce on this budget (docs/CLUSTER.md,
    # "Learning rate"); at 0.02 the effective step lr/(1 - momentum) = 0.2 is past what error feedback with exact
    # magnitudes (8 and 32 bits) tolerates, and fp32 itself loses ~3 points.
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--run-timeout", type=float, default=240.0)
    p.add_argument("--skip-accuracy", action="store_true")
    p.add_argument("--rebaseline", action="store_true",
                   help="only re-measure the compute-only baselines of OUT/results.json and rewrite the reports")
    p.add_argument("--quick", action="store_true",
                   help="smoke test: 4 ranks, 100mbit, fp32 vs adlcodec-1bit, few steps, tiny accuracy run")
    args = p.parse_args(argv)
    if args.quick:
        args.ranks, args.rates_main, args.rates_sweep = "4", "100mbit", "100mbit"
        args.methods = args.sweep_methods = "allreduce-fp32,adlcodec-1bit"
        args.steps, args.acc_train_subset, args.acc_max_steps, args.epochs = 6, 2048, 8, 1.0
        args.acc_ranks, args.acc_seeds = 2, "0"
    methods = [m for m in args.methods.split(",") if m]
    unknown = [m for m in methods + args.sweep_methods.split(",") if m not in METHODS]
    if unknown:
        p.error(f"unknown methods {unknown}; choose from {list(METHODS)}")
    if os.geteuid() != 0:
        p.error("needs root for ip netns / tc")
    for r in args.rates_main.split(",") + args.rates_sweep.split(","):
        _mbit(r)
    out = Path(args.out)
    (out / "runs").mkdir(parents=True, exist_ok=True)
    if args.rebaseline:
        results = json.loads((out / "results.json").read_text())
        args.hidden, args.batch_size, args.steps = results["hidden"], results["batch_size"], results["steps"]
        for ranks in results["compute_only_s"]:
            results["compute_only_s"][ranks] = compute_baseline(int(ranks), args, out / "runs")
            print(f"compute-only, {ranks} ranks: {1000 * results['compute_only_s'][ranks]:.0f} ms/step", flush=True)
        (out / "results.json").write_text(json.dumps(results, indent=2))
        write_markdown(results, out / "results.md")
        print((out / "results.md").read_text())
        return 0
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    prefix = f"adlb{os.getpid() % 100000}"
    rates_main = args.rates_main.split(",")
    rates_sweep = args.rates_sweep.split(",")
    results = dict(steps=args.steps, batch_size=args.batch_size, epochs=args.epochs, acc_ranks=args.acc_ranks,
                   lr=args.lr, momentum=args.momentum, acc_seeds=args.acc_seeds, acc_eval_every=args.acc_eval_every,
                   acc_eval_last=args.acc_eval_last,
                   hidden=args.hidden, compute_only_s={},
                   rates_main=rates_main, rates_sweep=rates_sweep, sweep_ranks=args.sweep_ranks,
                   timing=[], sweep=[], accuracy=[], errors=[], params=None)
    t_start = time.time()
    plan = []  # (ranks, rate, method)
    for ranks in (int(x) for x in args.ranks.split(",")):
        for rate in rates_main:
            plan += [(ranks, rate, m) for m in methods]
    for rate in rates_sweep:
        plan += [(args.sweep_ranks, rate, m) for m in args.sweep_methods.split(",")
                 if (args.sweep_ranks, rate, m) not in plan]
    try:
        for ranks in dict.fromkeys(r for r, _, _ in plan):
            print(f"[{time.time() - t_start:6.0f}s] compute-only baseline, {ranks} ranks", flush=True)
            results["compute_only_s"][str(ranks)] = compute_baseline(ranks, args, out / "runs")
            print(f"  {1000 * results['compute_only_s'][str(ranks)]:.0f} ms/step", flush=True)
        for ranks, rate in dict.fromkeys((r, rt) for r, rt, _ in plan):
            with Cluster(prefix, ranks, rate) as cluster:
                for _, _, m in [x for x in plan if x[:2] == (ranks, rate)]:
                    tag = f"{m}-{ranks}r-{rate}"
                    print(f"[{time.time() - t_start:6.0f}s] timing {tag}", flush=True)
                    try:
                        r = timed_run(cluster, m, args, out / "runs" / f"{tag}.json")
                    except (RuntimeError, json.JSONDecodeError, FileNotFoundError) as exc:
                        results["errors"].append(str(exc))
                        print(f"  FAILED: {exc}", flush=True)
                        continue
                    results["params"] = r["params"]
                    row = _row(m, ranks, rate, r)
                    print(f"  {1000 * row['step_time_s']:.0f} ms/step, wire "
                          f"{(row['wire_bytes_per_rank_step'] or 0) / 1e6:.3f} MB/rank/step", flush=True)
                    if rate in rates_main:
                        results["timing"].append(row)
                    if ranks == args.sweep_ranks and rate in rates_sweep and m in args.sweep_methods.split(","):
                        results["sweep"].append(row)
        if not args.skip_accuracy:
            for m in methods:
                per_seed = []
                for seed in (int(x) for x in args.acc_seeds.split(",")):
                    print(f"[{time.time() - t_start:6.0f}s] accuracy {m} seed {seed}", flush=True)
                    try:
                        r = accuracy_run(m, args, out / "runs" / f"{m}-accuracy-seed{seed}.json", seed)
                    except (subprocess.SubprocessError, json.JSONDecodeError, FileNotFoundError) as exc:
                        results["errors"].append(f"accuracy {m} seed {seed}: {exc}")
                        continue
                    per_seed.append(dict(seed=seed, accuracy=r["accuracy"], tail_accuracy=tail_accuracy(r),
                                         steps=r["steps"], replicas_identical=r["replicas_identical"]))
                    print(f"  {r['accuracy']:.2f} %", flush=True)
                if per_seed:
                    tails = [a["tail_accuracy"] for a in per_seed]
                    results["accuracy"].append(dict(
                        method=m, accuracy=float(np.mean([a["accuracy"] for a in per_seed])), seeds=per_seed,
                        tail_accuracy=None if None in tails else float(np.mean(tails)),
                        steps=per_seed[0]["steps"], replicas_identical=all(a["replicas_identical"] for a in per_seed)))
    finally:
        _teardown_all()
    results["wall_s"] = time.time() - t_start
    (out / "results.json").write_text(json.dumps(results, indent=2))
    write_markdown(results, out / "results.md")
    if results["sweep"]:
        plot(results, out / "step_time_vs_rate.png")
    print((out / "results.md").read_text())
    print(f"wrote {out}/results.json, results.md, step_time_vs_rate.png in {results['wall_s']:.0f} s")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
