#!/usr/bin/env python3
"""The α + β·n/b model of docs/CLUSTER.md, fitted to the emulated Pi testbed and extended to 1024 ranks.

For every method the exchange time a step could not hide behind computation, ``E(N) = step(N) -
compute_only(N)``, is modelled as

    E(N) = c + α · hops(N) + wire(N) / b

* ``wire(N)``: bytes each rank puts on its link per step.  Its shape in N follows the method's algorithm
  (``shape`` below: ring all-reduce 2(N-1)/N, the hook's all-gather N-1, its reduce-scatter 2(N-1)/N plus
  a per-rank control vector that grows with N); its scale is fitted to the wire bytes the testbed measured
  (each rank's eth0 tx counter, TCP/IP framing included).
* ``hops(N)``: messages on the critical path per step: ``N - 1`` per round of a ring or pairwise
  collective (a ring all-reduce has two rounds), times the rounds per bucket, times the buckets.
* ``b``: the link rate of the runs; ``α`` (latency per hop: kernel, TCP, waking a throttled process) and
  ``c`` (what overlap hides, or adds: codec work after backward) are fitted per method by least squares
  on the measured rank counts (exactly determined with two).

Compute per rank does not change with N, so ``step(N) = compute + E(N)``, with the compute-only time of
the largest measured N.

    python bench/cluster/scaling_model.py --results bench/cluster/results/testbed/results.json --factor 40
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
DEFAULT = HERE / "results" / "testbed"
MODEL_RANKS = [4, 8, 16, 32, 64, 128, 256, 512, 1024]

# how a rank's bytes grow with N, and the rounds of N - 1 messages per bucket on the critical path
ALGORITHMS = {
    "allreduce-fp32": ("ring", 2),  # a ring all-reduce: reduce-scatter then all-gather, N - 1 steps each
    "fp16_compress_hook": ("ring", 2),
    "powerSGD-rank1": ("ring", 4),  # P and Q all-reduced one after the other
    "powerSGD-rank2": ("ring", 4),
    "adlcodec-1bit-allgather": ("allgather", 2),  # sizes, then messages
    "adlcodec-8bit-allgather": ("allgather", 2),
    "adlcodec-1bit-reduce-scatter": ("reduce_scatter", 4),  # control, slices to owners, sizes, owners' payloads
    "adlcodec-8bit-reduce-scatter": ("reduce_scatter", 4),
}


def shape(kind: str, n: np.ndarray) -> np.ndarray:
    if kind == "allgather":
        return n - 1.0
    return 2.0 * (n - 1.0) / n


def load_runs(paths: list[Path], factor: float, rate: str) -> tuple[list[dict], dict[int, float], int]:
    runs, compute = [], {}
    buckets = 2
    for p in paths:
        r = json.loads(p.read_text())
        for c in r["compute_only"]:
            if c["factor"] == factor:
                compute[c["ranks"]] = c["step_time_s"]
        runs += [x for x in r["runs"] if x["status"] == "ok" and x["factor"] == factor and x["rate"] == rate]
    return runs, compute, buckets


def fit(method: str, points: list[dict], compute: dict[int, float], link_bytes_s: float, buckets: int) -> dict:
    kind, collectives = ALGORITHMS[method]
    n = np.array([p["ranks"] for p in points], float)
    wire = np.array([p["wire_bytes_per_rank_step"] for p in points], float)
    exposed = np.array([p["step_time_s"] - compute[p["ranks"]] for p in points], float)
    # wire(N) = scale * shape(N) (+ the control vectors' 8 bytes per rank and collective for reduce-scatter)
    scale = float(np.linalg.lstsq(shape(kind, n)[:, None], wire, rcond=None)[0][0])
    hops = collectives * buckets * (n - 1.0)
    design = np.stack([np.ones_like(n), hops], axis=1)
    c, alpha = np.linalg.lstsq(design, exposed - wire / link_bytes_s, rcond=None)[0]
    return dict(method=method, kind=kind, collectives=collectives, scale=scale, c=float(c), alpha=float(alpha),
                measured={int(k): dict(exposed_s=float(e), wire=float(w)) for k, e, w in zip(n, exposed, wire)})


def predict(m: dict, n: float, link_bytes_s: float, buckets: int) -> float:
    return m["c"] + m["alpha"] * m["collectives"] * buckets * (n - 1) + m["scale"] * float(
        shape(m["kind"], np.array([n]))[0]) / link_bytes_s


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", nargs="+", default=[str(DEFAULT / "results.json")])
    p.add_argument("--factor", type=float, required=True)
    p.add_argument("--rate", default="100mbit")
    p.add_argument("--buckets", type=int, default=2, help="DDP buckets per step (paper CNN, default caps: 2)")
    p.add_argument("--out", default=str(DEFAULT))
    args = p.parse_args(argv)
    runs, compute, _ = load_runs([Path(x) for x in args.results], args.factor, args.rate)
    mbit = float(args.rate.lower().removesuffix("mbit"))
    link_bytes_s = mbit * 1e6 / 8
    compute_s = compute[max(compute)]
    models = []
    for method in ALGORITHMS:
        points = [r for r in runs if r["method"] == method and r["ranks"] in compute]
        if len({r["ranks"] for r in points}) >= 2:
            models.append(fit(method, points, compute, link_bytes_s, args.buckets))
    by_name = {m["method"]: m for m in models}
    lines = [f"Fitted on the testbed at {args.factor:g}x, {args.rate} (compute-only {1000 * compute_s:.0f} ms at "
             f"{max(compute)} ranks); step = compute + c + α·hops(N) + wire(N)/b.", "",
             "| method | c (ms) | α per hop (ms) | wire(N) scale (kB) | " +
             " | ".join(f"{n} ranks (s)" for n in MODEL_RANKS) + " |",
             "|---|---:|---:|---:|" + "---:|" * len(MODEL_RANKS)]
    table = {}
    for m in models:
        steps = [compute_s + max(0.0, predict(m, n, link_bytes_s, args.buckets)) for n in MODEL_RANKS]
        table[m["method"]] = steps
        lines.append(f"| {m['method']} | {1000 * m['c']:.0f} | {1000 * m['alpha']:.2f} | {m['scale'] / 1e3:.1f} | "
                     + " | ".join(f"{s:.2f}" for s in steps) + " |")
    adl = [k for k in table if k.startswith("adlcodec-1bit")]
    if "allreduce-fp32" in table and adl:
        best = [min(table[k][i] for k in adl) for i in range(len(MODEL_RANKS))]
        faster = all(b < f for b, f in zip(best, table["allreduce-fp32"]))
        lines += ["", f"adlcodec 1 bit (the better exchange at each N) faster than fp32 ring all-reduce at every N "
                      f"from {MODEL_RANKS[0]} to {MODEL_RANKS[-1]}: {faster}"]
    (Path(args.out) / "scaling_model.md").write_text("\n".join(lines) + "\n")
    (Path(args.out) / "scaling_model.json").write_text(json.dumps(dict(
        factor=args.factor, rate=args.rate, compute_s=compute_s, ranks=MODEL_RANKS, models=models,
        step_s=table), indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for i, (name, steps) in enumerate(table.items()):
        line, = ax.plot(MODEL_RANKS, steps, ls="--", lw=1)
        pts = sorted((r["ranks"], r["step_time_s"]) for r in runs if r["method"] == name)
        ax.plot([a for a, _ in pts], [b for _, b in pts], "o", color=line.get_color(), label=name)
    ax.axhline(compute_s, color="grey", lw=0.8, label="compute only")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("ranks")
    ax.set_ylabel("step time (s)")
    ax.set_title(f"Emulated Pi 3B+ testbed ({args.factor:g}x, {args.rate}): measured (dots), fitted model (dashes)")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(Path(args.out) / "scaling_model.png", dpi=110)
    print("\n".join(lines))
    return 0 if by_name else 1


if __name__ == "__main__":
    sys.exit(main())
