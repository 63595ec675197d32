#!/usr/bin/env python3
"""The α + β·n/b model of docs/CLUSTER.md, fitted to the emulated Pi testbed and extended to 1024 ranks.

For every method the exchange time a step could not hide behind computation, ``E(N) = step(N) -
compute_only``, is modelled as

    E(N) = c + α · hops(N) + γ · transfers(N) + wire(N) / b

per step, summed over the collectives of every bucket (the paper CNN has 2 DDP buckets):

* ``hops(N)``: transfers one after the other on the critical path.  A ring round (torch's all-reduce, two
  rounds; gloo's ring all-gather) waits ``N - 1``; an all-to-all (``all_to_all_single``: all ``N - 1``
  transfers posted at once, the hook's collectives since d1efebf) waits 1.  The all-gather of the hook's
  messages goes round the ring where more than ``INCAST_BYTES`` (1 MiB, ``_INCAST_BYTES`` in
  python/adlcodec/ddp.py) would arrive at each rank, otherwise all-to-all (b305d61); which one is decided
  per bucket from the modelled bytes arriving per rank.
* ``transfers(N) = k · (N - 1)``: transfers each rank sends and receives per step, ``k`` collectives (or
  ring rounds) per step, ring or all-to-all alike.  On throttled ranks each costs CPU time of the
  process that handles it, so an all-to-all still takes longer at more ranks although its hops do not
  grow (measured: the reduce-scatter's exposed time grew by 0.83 s from 8 to 32 ranks at 8 hops a step
  both times, of which ``wire/b`` explains 11 ms).
* ``wire(N)``: bytes each rank puts on its link per step = payload term + transport term + control term.
  Payload: ring all-reduce ``s · 2(N-1)/N``; the hook's all-gather ``s · (N-1)`` (messages round the ring
  padded by ``RING_PAD``); its reduce-scatter ``s · 2(N-1)/N + h · (N-1)`` (``h``: each slice's own
  payload header and lengths, fitted on the hook's ``peer_bytes`` at 4-32 ranks in
  results/bytes_scaling).  Transport: ``k · (N-1) · t`` with ``t`` = gloo's TCP bytes per peer per
  collective beyond the data (the bytes_scaling probe: 340-343 B).  Control: the sizes all-to-all, 8 B per
  peer and bucket, and the reduce-scatter's control vector, modelled as a fixed-length per-peer vector of
  ``CONTROL_INT64_PER_PEER`` int64 per peer and bucket (the measured runs sent ``10 + N`` int64 to every
  peer; that is what is subtracted from their wire bytes before fitting ``s``).  ``s`` is fitted per
  method to the wire bytes the testbed measured (each rank's eth0 tx counter, TCP/IP framing included).
* ``b``: the link rate of the runs.  ``c`` (what overlap hides, or adds: codec work after backward) and
  the latencies are fitted per method on its measured rank counts; with two rank counts only two of
  ``c, α, γ`` can be determined, so: ring-only methods fit ``c, α`` (``γ = 0``: every transfer is a hop,
  ``α`` is the cost of both); the reduce-scatter fits ``c, γ`` (its hops are 8 a step at every N, so
  ``α`` is folded into ``c``); the all-gather takes ``γ`` from the reduce-scatter of the same bits (same
  gloo transport on the same throttled ranks) and fits ``c, α``.  Two points: exactly determined.

Each measured run is paired with the compute-only step of its own results file, and of several runs of a
(method, ranks) the newest results file (``started_utc``) is used.  Compute per rank does not change with
N, so ``step(N) = compute + max(0, E(N))``, with the compute-only step of the newest run at the largest
measured N.

    python bench/cluster/scaling_model.py --factor 40
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RESULTS = HERE / "results"
DEFAULT = RESULTS / "testbed"
DEFAULT_RESULTS = [RESULTS / d / "results.json" for d in ("testbed", "testbed-a2a", "testbed-a2a-ring32")]
DEFAULT_BYTES = RESULTS / "bytes_scaling" / "results.json"
MODEL_RANKS = [4, 8, 16, 32, 64, 128, 256, 512, 1024]

INCAST_BYTES = 1 << 20  # python/adlcodec/ddp.py _INCAST_BYTES (a test checks they agree)
RING_PAD = 1.07  # messages round the ring are padded to the longest: ~7 % more bytes (ddp.py, measured)
TRANSPORT_BYTES = 340.0  # gloo TCP bytes per peer per collective beyond the data, when no probe is given
CONTROL_FIELDS = 10  # fixed fields of the reduce-scatter's control vector in the measured runs (ddp.py)
CONTROL_INT64_PER_PEER = 12  # the control vector modelled: a fixed-length per-peer vector
SIZE_BYTES = 8  # one int64 message size to every peer, per bucket
# the paper CNN's two DDP buckets (classifier; convolutions), share of a rank's 1-bit message per step, from
# estimated_payload_bytes at the default bins: 55.1 kB and 6.7 kB
BUCKET_SHARES = (0.892, 0.108)

# payload shape, collectives of one bucket in order ("ring": a ring round of torch's; "a2a": all-to-all;
# "messages": the hook's all-gather of messages, ring or all-to-all by the incast rule), fitted latencies
ALGORITHMS = {
    "allreduce-fp32": ("ring_allreduce", ("ring", "ring"), "alpha"),  # reduce-scatter round, all-gather round
    "fp16_compress_hook": ("ring_allreduce", ("ring", "ring"), "alpha"),
    "powerSGD-rank1": ("ring_allreduce", ("ring",) * 4, "alpha"),  # P and Q all-reduced one after the other
    "powerSGD-rank2": ("ring_allreduce", ("ring",) * 4, "alpha"),
    "adlcodec-1bit-allgather": ("allgather", ("a2a", "messages"), "alpha"),  # sizes, then messages
    "adlcodec-8bit-allgather": ("allgather", ("a2a", "messages"), "alpha"),
    # control vectors, slices to owners, sizes, owners' payloads
    "adlcodec-1bit-reduce-scatter": ("reduce_scatter", ("a2a", "a2a", "a2a", "messages"), "gamma"),
    "adlcodec-8bit-reduce-scatter": ("reduce_scatter", ("a2a", "a2a", "a2a", "messages"), "gamma"),
}


def message_bytes_per_peer(kind: str, scale: float, n: float, share: float) -> float:
    """Bytes of one rank's message in a bucket's all-gather of messages (what every peer receives of it)."""
    if kind == "allgather":
        return scale * share
    return scale * share / n  # reduce-scatter: an owner's re-compressed slice


def ring_buckets(kind: str, scale: float, n: float, shares=BUCKET_SHARES) -> list[bool]:
    """Per bucket: does the all-gather of messages go round the ring (more than INCAST_BYTES arriving)?"""
    return [(n - 1) * message_bytes_per_peer(kind, scale, n, sh) > INCAST_BYTES for sh in shares]


def collectives(method: str, n: float, scale: float, shares=BUCKET_SHARES) -> list[str]:
    """Every collective of a step, as "ring" (a ring round, N - 1 hops) or "a2a" (one hop)."""
    kind, per_bucket, _ = ALGORITHMS[method]
    rings = ring_buckets(kind, scale, n, shares)
    return [("ring" if rings[b] else "a2a") if c == "messages" else c for b in range(len(shares)) for c in per_bucket]


def hops(method: str, n: float, scale: float, shares=BUCKET_SHARES) -> float:
    return float(sum(n - 1.0 if c == "ring" else 1.0 for c in collectives(method, n, scale, shares)))


def transfers(method: str, n: float, shares=BUCKET_SHARES) -> float:
    return len(ALGORITHMS[method][1]) * len(shares) * (n - 1.0)


def payload_shape(method: str, n: float, scale: float, shares=BUCKET_SHARES) -> float:
    """wire payload = scale * payload_shape (ring all-reduce, all-gather) [+ h·(N-1) for reduce-scatter]."""
    kind = ALGORITHMS[method][0]
    if kind == "allgather":
        return (n - 1.0) * sum(sh * (RING_PAD if ring else 1.0) for sh, ring in
                               zip(shares, ring_buckets(kind, scale, n, shares)))
    return 2.0 * (n - 1.0) / n


def control_bytes(method: str, n: float, measured: bool = False, shares=BUCKET_SHARES) -> float:
    """Sizes and control vectors per rank and step.  ``measured``: the control vector as the measured runs
    sent it (10 fields + one int64 per rank, to every peer); otherwise the fixed-length per-peer vector."""
    kind = ALGORITHMS[method][0]
    if kind == "ring_allreduce":
        return 0.0
    per_peer = SIZE_BYTES
    if kind == "reduce_scatter":
        per_peer += 8 * (CONTROL_FIELDS + n) if measured else 8 * CONTROL_INT64_PER_PEER
    return len(shares) * (n - 1.0) * per_peer


def wire(m: dict, n: float, measured: bool = False) -> float:
    """Modelled wire bytes per rank and step."""
    method, shares = m["method"], tuple(m["bucket_shares"])
    extra = m["header_per_peer"] * (n - 1.0) if ALGORITHMS[method][0] == "reduce_scatter" else 0.0
    return (m["scale"] * payload_shape(method, n, m["scale"], shares) + extra
            + transfers(method, n, shares) * m["transport_per_peer"] + control_bytes(method, n, measured, shares))


def exposed(m: dict, n: float, link_bytes_s: float, measured: bool = False) -> float:
    shares = tuple(m["bucket_shares"])
    return (m["c"] + m["alpha"] * hops(m["method"], n, m["scale"], shares)
            + m["gamma"] * transfers(m["method"], n, shares) + wire(m, n, measured) / link_bytes_s)


def load_runs(paths: list[Path], factor: float, rate: str) -> tuple[list[dict], dict[int, float]]:
    """The newest ok run per (method, ranks), each with ``exposed_s`` against its own file's compute-only step,
    and the compute-only step of the newest file per rank count."""
    best: dict[tuple[str, int], dict] = {}
    compute: dict[int, tuple[str, float]] = {}
    for p in paths:
        r = json.loads(Path(p).read_text())
        started = r.get("started_utc", "")
        own = {c["ranks"]: c["step_time_s"] for c in r.get("compute_only", []) if c["factor"] == factor}
        for k, v in own.items():
            if k not in compute or started >= compute[k][0]:
                compute[k] = (started, v)
        for x in r["runs"]:
            if x["status"] != "ok" or x["factor"] != factor or x["rate"] != rate:
                continue
            base = x.get("compute_only_step_time_s") or own.get(x["ranks"])
            if base is None:
                continue
            key = (x["method"], x["ranks"])
            if key in best and best[key]["started_utc"] > started:
                continue
            best[key] = dict(method=x["method"], ranks=x["ranks"], step_time_s=x["step_time_s"],
                             compute_only_s=base, exposed_s=x["step_time_s"] - base,
                             wire_bytes_per_rank_step=x["wire_bytes_per_rank_step"], started_utc=started,
                             commit=r.get("commit", ""), source=str(p))
    return sorted(best.values(), key=lambda x: (x["method"], x["ranks"])), {k: v for k, (_, v) in compute.items()}


def load_bytes(path: Path | None) -> tuple[float, float]:
    """(gloo transport bytes per peer and collective, reduce-scatter header bytes per peer and step) from a
    bytes_scaling results file: the probe's mean, and ``h`` of ``peer_bytes = s·2(N-1)/N + h·(N-1) +
    control`` fitted by least squares over its rank counts."""
    if path is None or not Path(path).exists():
        return TRANSPORT_BYTES, 0.0
    r = json.loads(Path(path).read_text())
    probes = [p["overhead"] for p in r.get("probes", [])]
    transport = float(np.mean(probes)) if probes else TRANSPORT_BYTES
    rows = [x for x in r["rows"] if x["exchange"] == "reduce-scatter"]
    if len(rows) < 2:
        return transport, 0.0
    n = np.array([x["ranks"] for x in rows], float)
    buckets = np.array([x.get("buckets_per_step", 2.0) for x in rows])
    # files written before the per-peer control row carry no "control_int64_per_peer": 10 fields + N sizes
    control = 8 * (r["control_int64_per_peer"] if "control_int64_per_peer" in r else CONTROL_FIELDS + n)
    peers = np.array([x["to_peers"] for x in rows]) - buckets * (n - 1) * (SIZE_BYTES + control)
    design = np.stack([2 * (n - 1) / n, n - 1], axis=1)
    return transport, float(np.linalg.lstsq(design, peers, rcond=None)[0][1])


def fit(method: str, points: list[dict], link_bytes_s: float, transport: float = TRANSPORT_BYTES,
        header_per_peer: float = 0.0, gamma: float | None = None, shares=BUCKET_SHARES) -> dict:
    """Fit ``scale`` to the points' wire bytes, then two of ``c, α, γ`` to their exposed time (see the module
    docstring); ``gamma``: the per-transfer cost to use for an "alpha" method that has all-to-alls."""
    kind, _, free = ALGORITHMS[method]
    m = dict(method=method, kind=kind, bucket_shares=list(shares), transport_per_peer=transport,
             header_per_peer=header_per_peer if kind == "reduce_scatter" else 0.0, scale=0.0, c=0.0, alpha=0.0,
             gamma=0.0)
    n = np.array([p["ranks"] for p in points], float)
    measured_wire = np.array([p["wire_bytes_per_rank_step"] for p in points], float)
    bare = dict(m, scale=0.0)  # wire without the payload term
    fixed = np.array([wire(bare, k, measured=True) for k in n])
    for _ in range(3):  # the incast rule (hence the padding) depends on the scale: iterate to a fixed point
        shp = np.array([payload_shape(method, k, m["scale"], shares) for k in n])
        m["scale"] = float(np.linalg.lstsq(shp[:, None], measured_wire - fixed, rcond=None)[0][0])
    # the modelled wire, not the measured: the model then reproduces the exposed time of the points it was fitted on
    y = np.array([p["exposed_s"] for p in points]) - np.array([wire(m, k, measured=True) for k in n]) / link_bytes_s
    h = np.array([hops(method, k, m["scale"], shares) for k in n])
    t = np.array([transfers(method, k, shares) for k in n])
    if free == "gamma":
        design, names = np.stack([np.ones_like(n), t], axis=1), ("c", "gamma")
    else:
        if gamma is not None and any(c == "a2a" for k in n for c in collectives(method, k, m["scale"], shares)):
            m["gamma"] = float(gamma)
            y = y - gamma * t
        design, names = np.stack([np.ones_like(n), h], axis=1), ("c", "alpha")
    values = np.linalg.lstsq(design, y, rcond=None)[0]
    m.update({k: float(v) for k, v in zip(names, values)})
    m["points"] = [dict(ranks=int(p["ranks"]), exposed_s=float(p["exposed_s"]), wire=float(p["wire_bytes_per_rank_step"]),
                        modelled_exposed_s=exposed(m, p["ranks"], link_bytes_s, measured=True),
                        modelled_wire=wire(m, p["ranks"], measured=True), hops=hops(method, p["ranks"], m["scale"], shares),
                        transfers=transfers(method, p["ranks"], shares), compute_only_s=float(p["compute_only_s"]),
                        source=p.get("source", ""), commit=p.get("commit", ""), started_utc=p.get("started_utc", ""))
                   for p in points]
    m["determination"] = ("exactly determined" if len(points) == 2 else
                          f"least squares over {len(points)} points" if len(points) > 2 else "underdetermined")
    return m


def step(m: dict, n: float, compute_s: float, link_bytes_s: float) -> float:
    return compute_s + max(0.0, exposed(m, n, link_bytes_s))


def first_above(m: dict, ratio: float, compute_s: float, link_bytes_s: float, top: int = 1024) -> int | None:
    """The smallest N in 2..top whose modelled step exceeds ``ratio`` × compute-only."""
    for n in range(2, top + 1):
        if step(m, n, compute_s, link_bytes_s) > ratio * compute_s:
            return n
    return None


def fit_all(runs: list[dict], link_bytes_s: float, transport: float, header: float, shares=BUCKET_SHARES) -> list[dict]:
    models = {}
    order = sorted(ALGORITHMS, key=lambda k: ALGORITHMS[k][2] != "gamma")  # γ of the reduce-scatters first
    for method in order:
        points = [r for r in runs if r["method"] == method]
        if len({r["ranks"] for r in points}) < 2:
            continue
        bits = method.split("-")[1] if method.startswith("adlcodec-") else None
        donor = models.get(f"adlcodec-{bits}-reduce-scatter") if bits else None
        models[method] = fit(method, points, link_bytes_s, transport, header,
                             gamma=donor["gamma"] if donor else None, shares=shares)
        if donor:
            models[method]["gamma_from"] = donor["method"]
    return [models[k] for k in ALGORITHMS if k in models]


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--results", nargs="+", default=[str(x) for x in DEFAULT_RESULTS],
                   help="testbed results files; of several runs of a (method, ranks) the newest file's is used")
    p.add_argument("--bytes", default=str(DEFAULT_BYTES), help="bench/cluster/bytes_scaling.py results ('' for none)")
    p.add_argument("--factor", type=float, required=True)
    p.add_argument("--rate", default="100mbit")
    p.add_argument("--bucket-shares", default=",".join(str(s) for s in BUCKET_SHARES),
                   help="share of a rank's message per DDP bucket (paper CNN: 2 buckets)")
    p.add_argument("--out", default=str(DEFAULT))
    args = p.parse_args(argv)
    shares = tuple(float(s) for s in args.bucket_shares.split(","))
    runs, compute = load_runs([Path(x) for x in args.results], args.factor, args.rate)
    transport, header = load_bytes(Path(args.bytes) if args.bytes else None)
    mbit = float(args.rate.lower().removesuffix("mbit"))
    link_bytes_s = mbit * 1e6 / 8
    compute_s = compute[max(compute)]
    models = fit_all(runs, link_bytes_s, transport, header, shares)
    measured_compute = sorted({r["compute_only_s"] for r in runs})
    lines = [f"Fitted on the testbed at {args.factor:g}x, {args.rate}; step = compute + max(0, E(N)), "
             f"E(N) = c + α·hops(N) + γ·transfers(N) + wire(N)/b (bench/cluster/scaling_model.py). Compute-only "
             f"{1000 * compute_s:.0f} ms (newest run at {max(compute)} ranks; the runs' own compute-only steps "
             f"{min(measured_compute):.3f}–{max(measured_compute):.3f} s, each run's exposed time is taken against "
             f"its own). gloo transport {transport:.1f} B per peer and collective; reduce-scatter slice headers "
             f"{header:.0f} B per peer and step; control vector modelled as {CONTROL_INT64_PER_PEER} int64 per "
             f"peer and bucket; {len(shares)} buckets, message shares {', '.join(f'{s:g}' for s in shares)}; "
             f"incast rule at {INCAST_BYTES} B arriving per rank.", "",
             "| method | fitted on (ranks: source) | c (ms) | α per hop (ms) | γ per transfer (ms) | scale (kB) | " +
             " | ".join(f"{n} ranks (s)" for n in MODEL_RANKS) + " |",
             "|---|---|---:|---:|---:|---:|" + "---:|" * len(MODEL_RANKS)]
    table = {}
    for m in models:
        steps = [step(m, n, compute_s, link_bytes_s) for n in MODEL_RANKS]
        table[m["method"]] = steps
        src = "; ".join(f"{q['ranks']}: {Path(q['source']).parent.name}" for q in m["points"])
        gamma = f"{1000 * m['gamma']:.2f}" + (" (from RS)" if m.get("gamma_from") else "")
        lines.append(f"| {m['method']} | {src} ({m['determination']}) | {1000 * m['c']:.0f} | {1000 * m['alpha']:.2f} | "
                     f"{gamma} | {m['scale'] / 1e3:.1f} | " + " | ".join(f"{s:.2f}" for s in steps) + " |")
    lines += ["", "Hops and transfers per step, and wire MB per rank and step (modelled, control vector fixed-length):", "",
              "| method | " + " | ".join(f"{n}" for n in MODEL_RANKS) + " |", "|---|" + "---:|" * len(MODEL_RANKS)]
    for m in models:
        sh = tuple(m["bucket_shares"])
        lines.append(f"| {m['method']} | " + " | ".join(
            f"{hops(m['method'], n, m['scale'], sh):.0f} / {transfers(m['method'], n, sh):.0f} / "
            f"{wire(m, n) / 1e6:.3g}" for n in MODEL_RANKS) + " |")
    answer = {}
    adl = [m for m in models if m["method"].startswith("adlcodec-1bit")]
    fp32 = next((m for m in models if m["method"] == "allreduce-fp32"), None)
    if fp32 and adl:
        every = range(MODEL_RANKS[0], MODEL_RANKS[-1] + 1)
        best = {n: min(step(m, n, compute_s, link_bytes_s) for m in adl) for n in every}
        slower = [n for n in every if best[n] >= step(fp32, n, compute_s, link_bytes_s)]
        answer["faster_than_fp32_every_n"] = not slower
        answer["not_faster_at"] = slower[:20]
        lines += ["", f"adlcodec 1 bit (the better exchange at each N) faster than fp32 ring all-reduce at every N "
                      f"from {MODEL_RANKS[0]} to {MODEL_RANKS[-1]} (every integer N): {not slower}"
                  + (f" (not at {slower[:5]}...)" if slower else "")]
        lines += ["", "| ranks | fp32 ring all-reduce (s) | adlcodec 1 bit, better exchange (s) | which | fp32 ÷ adlcodec |",
                  "|---:|---:|---:|---|---:|"]
        for n in MODEL_RANKS:
            which = min(adl, key=lambda m: step(m, n, compute_s, link_bytes_s))
            f = step(fp32, n, compute_s, link_bytes_s)
            lines.append(f"| {n} | {f:.2f} | {best[n]:.2f} | {which['method'].split('1bit-')[1]} | {f / best[n]:.2f} |")
    crossing = {}
    lines += ["", "First N at which the modelled step exceeds 1.15 × compute-only (at the compute-only of the table, "
                  f"and at the runs' lowest and highest, {min(measured_compute):.3f} and {max(measured_compute):.3f} s):", ""]
    for m in adl:
        c = {f"{cs:.3f}": first_above(m, 1.15, cs, link_bytes_s) for cs in (compute_s, min(measured_compute),
                                                                              max(measured_compute))}
        crossing[m["method"]] = c
        lines.append(f"* {m['method']}: " + ", ".join(f"N = {v} at {k} s" for k, v in c.items()))
    if adl:
        better = dict(method="better exchange at each N")
        c = {}
        for cs in (compute_s, min(measured_compute), max(measured_compute)):
            c[f"{cs:.3f}"] = next((n for n in range(2, 1025)
                                   if min(step(m, n, cs, link_bytes_s) for m in adl) > 1.15 * cs), None)
        crossing[better["method"]] = c
        lines.append(f"* adlcodec 1 bit, {better['method']}: " + ", ".join(f"N = {v} at {k} s" for k, v in c.items()))
    lines += ["", "Measured points against the model (exposed s, wire MB):", ""]
    for m in models:
        lines.append(f"* {m['method']}: " + "; ".join(
            f"{q['ranks']} ranks {q['exposed_s']:.3f} / {q['modelled_exposed_s']:.3f} s, {q['wire'] / 1e6:.3f} / "
            f"{q['modelled_wire'] / 1e6:.3f} MB ({q['hops']:.0f} hops, {q['transfers']:.0f} transfers)"
            for q in m["points"]))
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "scaling_model.md").write_text("\n".join(lines) + "\n")
    (out / "scaling_model.json").write_text(json.dumps(dict(
        factor=args.factor, rate=args.rate, compute_s=compute_s, link_bytes_s=link_bytes_s, ranks=MODEL_RANKS,
        transport_per_peer=transport, rs_header_per_peer=header, control_int64_per_peer=CONTROL_INT64_PER_PEER,
        incast_bytes=INCAST_BYTES, ring_pad=RING_PAD, bucket_shares=list(shares), models=models, step_s=table,
        target=answer, crosses_1_15=crossing), indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7.5, 4.8))
    for name, steps in table.items():
        line, = ax.plot(MODEL_RANKS, steps, ls="--", lw=1)
        pts = sorted((r["ranks"], compute_s + r["exposed_s"]) for r in runs if r["method"] == name)
        ax.plot([a for a, _ in pts], [b for _, b in pts], "o", color=line.get_color(), label=name)
    ax.axhline(compute_s, color="grey", lw=0.8, label="compute only")
    ax.axhline(1.15 * compute_s, color="grey", lw=0.8, ls=":", label="1.15 × compute only")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("ranks")
    ax.set_ylabel("step time (s)")
    ax.set_title(f"Emulated Pi 3B+ testbed ({args.factor:g}x, {args.rate}): measured (dots: exposed time\n"
                 f"over one compute-only step of {compute_s:.3f} s), fitted model (dashes)", fontsize=9)
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    fig.savefig(out / "scaling_model.png", dpi=110)
    print("\n".join(lines))
    return 0 if models else 1


if __name__ == "__main__":
    sys.exit(main())
