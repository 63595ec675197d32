"""Table III analogue: every optimizer trained on the data at hand, plus the paper's cost model.

Measured per optimizer: test accuracy, training loss (mean ± sd over the last
epoch's loss-curve windows), processing time (wall seconds of the training
loop on this machine) and compression ratio (dense fp32 bytes / bytes sent).

Modeled (eqs. 1-2 of the paper) for a cluster of Raspberry Pi 3B+ nodes:

    T_comm = α + β·n/b        per step, per node
    E      = P·T

with n = bits a node must move per step for the collective it uses (ring
all-reduce: 2(N-1)/N · dense; the adlcodec hook all-gathers: (N-1) · payload),
α = (messages per step) × one-way latency, β = framing overhead, b = link rate,
T = steps × (measured compute per step + T_comm) and P = N × node power.
Parameters and their sources: :class:`PiCluster` and docs/PAPER.md.
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from .train import OPTIMIZERS, TrainConfig, plot_curves, run

__all__ = ["PiCluster", "PAPER_TABLE_III", "comm_time_per_step", "cost_model", "summarize", "format_table",
           "run_table", "print_comparison", "add_arguments", "main", "tail_points", "tail_accuracy"]

def _paper_accuracies() -> dict:
    """The paper's Table III accuracy per dataset and optimizer (our optimizer names), from the shipped CSV."""
    from .paper_tables import load_paper_table

    names = {"ADL": "adl", "ADADelta": "adadelta", "ADAGrad": "adagrad", "Adam": "adam", "ADAMax": "adamax",
             "RMSprop": "rmsprop", "SGD": "sgd"}
    table: dict = {}
    for row in load_paper_table("III"):
        if row["algorithm"] in names:
            table.setdefault(row["dataset"], {})[names[row["algorithm"]]] = {"accuracy": row["accuracy_pct"]}
    return table


# The paper's Table III accuracies (adlcodec/paper_data/table3_simulation.csv).  Its abstract's 99.09 % is in
# neither table (Table III's MNIST ADL row says 98.97, Table II's best 98.99): docs/PAPER.md, "Claims".
PAPER_TABLE_III = _paper_accuracies()
_PAPER_SOURCE = "the paper's Table III (adlcodec/paper_data/table3_simulation.csv; one laptop, 100 epochs)"


@dataclass
class PiCluster:
    """Raspberry Pi 3B+ cluster parameters of the cost model (see docs/PAPER.md for sources).

    link_mbit: the 3B+'s gigabit Ethernet sits behind USB 2.0, which caps it at roughly 300 Mbit/s.
    latency_ms: one-way per-message latency on a switched LAN with the Pi's USB NIC (assumed ~0.3 ms,
        i.e. a ping RTT of ~0.6 ms).
    overhead: β, bytes on the wire per payload byte (Ethernet + IP + TCP headers: 1538 / 1448 ≈ 1.06).
    node_watts: power of one node under full CPU load (a 3B+ draws about 5 W loaded, ~2 W idle).
    nodes: N, cluster size.
    """

    link_mbit: float = 300.0
    latency_ms: float = 0.3
    overhead: float = 1.06
    node_watts: float = 5.0
    nodes: int = 4

    def __post_init__(self):
        for name in ("link_mbit", "node_watts"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0, got {getattr(self, name)}")
        if self.latency_ms < 0 or self.overhead < 1:
            raise ValueError(f"need latency_ms >= 0 and overhead >= 1, got {self.latency_ms}, {self.overhead}")
        if isinstance(self.nodes, bool) or not isinstance(self.nodes, int) or self.nodes < 1:
            raise ValueError(f"nodes must be an int >= 1, got {self.nodes!r}")


def comm_time_per_step(hook: str, dense_bytes: float, payload_bytes: float, cluster: PiCluster) -> float:
    """Eq. 1, T_comm = α + β·n/b, for one step of one node (seconds)."""
    n_nodes = cluster.nodes
    if n_nodes == 1:
        return 0.0
    if hook == "adacomp":
        # all-gather: each node receives every other node's payload
        traffic, messages = (n_nodes - 1) * payload_bytes, n_nodes - 1
    else:
        # ring all-reduce of what the hook puts on the wire (fp32, fp16 or PowerSGD factors)
        traffic, messages = 2 * (n_nodes - 1) / n_nodes * payload_bytes, 2 * (n_nodes - 1)
    alpha = messages * cluster.latency_ms * 1e-3
    return alpha + cluster.overhead * 8 * traffic / (cluster.link_mbit * 1e6)


def cost_model(result: dict, cluster: PiCluster) -> dict:
    """Modeled end-to-end delay (s) and energy (J) of one training run on the Pi cluster (eqs. 1-2)."""
    hook = result["config"]["hook"]
    t_comm = comm_time_per_step(hook, result["dense_bytes_per_step"], result["payload_bytes_per_step"], cluster)
    compute = result["step_time_s"] if result["step_time_s"] is not None else result["seconds"] / result["steps"]
    delay = result["steps"] * (compute + t_comm)
    return dict(comm_s_per_step=t_comm, compute_s_per_step=compute, delay_s=delay,
                energy_j=cluster.nodes * cluster.node_watts * delay)


def summarize(result: dict, cluster: PiCluster) -> dict:
    spe = result["steps_per_epoch"]
    curve = result["loss_curve"]
    last_epoch = [v for s, v in curve if s > result["steps"] - spe] or [v for _, v in curve]
    row = dict(
        optimizer=result["config"]["optimizer"], hook=result["config"]["hook"], lr=result["config"]["lr"],
        accuracy=result["accuracy"], test_loss=result["loss"], loss_mean=float(np.mean(last_epoch)),
        loss_sd=float(np.std(last_epoch, ddof=1)) if len(last_epoch) > 1 else 0.0,
        seconds=result["seconds"], ratio=result["ratio"], final_lr=result["lr_curve"][-1][1], steps=result["steps"],
        tail_accuracy=tail_accuracy(result),
    )
    row.update(cost_model(result, cluster))
    return row


def tail_points(result: dict, last: int | None = None) -> list[float]:
    """Test accuracies of a run's evaluations within its last ``last`` steps (default: the run's own
    ``eval_last``, or the whole run), the final evaluation included."""
    last = last or result["config"].get("eval_last") or result["steps"]
    return [acc for step, acc in result["accuracy_curve"] if step > result["steps"] - last]


def tail_accuracy(result: dict) -> float | None:
    """Mean test accuracy over the evaluations of the last ``eval_last`` steps (the final one included), or
    ``None`` when the run evaluated only at the end. One evaluation of a run at a high rate swings by points
    from one snapshot to the next; the mean of several is what a 0.5-point comparison can rest on."""
    if not result["config"].get("eval_every"):
        return None
    points = tail_points(result)
    return float(np.mean(points)) if len(points) > 1 else None


def _paper_accuracy(dataset: str, optimizer: str):
    return PAPER_TABLE_III.get(dataset, {}).get(optimizer, {}).get("accuracy")


def format_table(rows: list[dict], cluster: PiCluster, dataset_label: str, paper_dataset: str = "MNIST") -> str:
    def fmt(v, spec):
        return "n/a" if v is None else format(v, spec)

    with_tail = any(r.get("tail_accuracy") is not None for r in rows)
    lines = [
        f"Table III analogue on {dataset_label}; delay and energy are *modeled* for {cluster.nodes} Pi 3B+ nodes "
        f"({cluster.link_mbit:g} Mbit/s, {cluster.latency_ms:g} ms, β={cluster.overhead:g}, "
        f"{cluster.node_watts:g} W/node)",
        "",
        f"| optimizer | hook | lr | accuracy % |{' tail accuracy % |' if with_tail else ''} train loss (last epoch) | "
        f"processing s | ratio | modeled delay s | modeled energy J | paper accuracy % ({paper_dataset}) |",
        "|---|---|---:|---:|" + ("---:|" if with_tail else "") + "---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        tail = f" {fmt(r.get('tail_accuracy'), '.2f')} |" if with_tail else ""
        lines.append(
            f"| {r['optimizer']} | {r['hook']} | {r['lr']:g} | {r['accuracy']:.2f} |{tail} "
            f"{r['loss_mean']:.3f} ± {r['loss_sd']:.3f} | "
            f"{r['seconds']:.1f} | {r['ratio']:.1f} | {r['delay_s']:.1f} | {r['energy_j']:.0f} | "
            f"{fmt(_paper_accuracy(paper_dataset, r['optimizer']), '.2f')} |"
        )
    lines += ["", f"paper values: {_PAPER_SOURCE}"]
    return "\n".join(lines)


def run_table(args: argparse.Namespace) -> list[dict]:
    optimizers = [o.strip() for o in args.optimizers.split(",") if o.strip()]
    unknown = [o for o in optimizers if o not in OPTIMIZERS]
    if unknown or not optimizers:
        raise ValueError(f"optimizers must be a comma list drawn from {OPTIMIZERS}, got {args.optimizers!r}")
    cluster = PiCluster(link_mbit=args.link_mbit, latency_ms=args.latency_ms, overhead=args.overhead,
                        node_watts=args.node_watts, nodes=args.nodes)
    results, rows = [], []
    for name in optimizers:
        config = TrainConfig(
            ranks=args.ranks, epochs=args.epochs, batch_size=args.batch_size, seed=args.seed, optimizer=name,
            data=args.data, train_subset=args.train_subset or None, eval_subset=args.eval_subset or None,
            lr_interval=args.lr_interval, bits=args.bits, progress=not args.no_progress, lr=args.lr,
            momentum=args.momentum, eval_every=args.eval_every, eval_last=args.eval_last,
        )
        print(f"[paper-table] {name}: lr {config.lr:g}, hook {config.hook}", file=sys.stderr, flush=True)
        result = run(config)
        results.append(result)
        rows.append(summarize(result, cluster))
    label = results[0]["dataset"]
    table = format_table(rows, cluster, label, args.paper_dataset)
    print(table)
    table_json = dict(cluster=asdict(cluster), rows=rows, runs=results)
    from .paper_tables import format_comparison, table3_rows_from_run_table

    comparison = format_comparison("III", dict(source="this run", tables={"III": table3_rows_from_run_table(
        table_json, args.paper_dataset)}), only={"dataset": args.paper_dataset})
    print("\n" + comparison)
    table += "\n\n" + comparison
    if args.out:
        out = Path(args.out)
        out.mkdir(parents=True, exist_ok=True)
        (out / "table.md").write_text(table + "\n")
        (out / "table.json").write_text(json.dumps(table_json, indent=2))
        plot_curves(results, out / "curves.png")
        print(f"saved table.md, table.json and curves.png to {out}")
    return rows


def print_comparison(args: argparse.Namespace) -> str:
    """``--compare`` / ``--from FILE``: the paper's tables beside stored results, no training."""
    from .paper_tables import format_comparison, load_results

    results = load_results(args.from_json)
    tables = ["II", "III"] if args.table == "all" else [args.table]
    only = None
    if args.row:
        only = {}
        for item in args.row.split(","):
            name, sep, value = item.partition("=")
            if not sep:
                raise ValueError(f"--row takes name=value pairs, e.g. dataset=MNIST, got {item!r}")
            only[name.strip()] = value.strip()
    text = "\n\n".join(format_comparison(t, results, only) for t in tables)
    print(text)
    if args.markdown_out:
        Path(args.markdown_out).write_text(text + "\n")
        print(f"saved {args.markdown_out}", file=sys.stderr)
    return text


def add_arguments(p: argparse.ArgumentParser) -> None:
    c = PiCluster()
    g = p.add_argument_group("printing stored results beside the paper's Tables II and III (no training)")
    g.add_argument("--compare", action="store_true",
                   help="print the paper's figures beside ours from the results shipped with adlcodec")
    g.add_argument("--from", dest="from_json", default=None, metavar="FILE",
                   help="like --compare, from FILE: a results JSON (adlcodec.paper_tables) or a table.json that "
                        "paper-table --out wrote")
    g.add_argument("--table", choices=("II", "III", "all"), default="all", help="with --compare/--from")
    g.add_argument("--row", default=None, metavar="NAME=VALUE,...",
                   help="with --compare/--from: only the rows matching, e.g. dataset=MNIST or batch_size=32")
    g.add_argument("--markdown-out", default=None, metavar="PATH", help="with --compare/--from: also write here")
    p.add_argument("--data", default=None, help="IDX or CIFAR folder (default: Debian's Fashion-MNIST)")
    p.add_argument("--optimizers", default=",".join(OPTIMIZERS), help="comma list (default: all)")
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--train-subset", type=int, default=6000, help="first N training images (0 = all)")
    p.add_argument("--eval-subset", type=int, default=2000, help="first N test images (0 = all)")
    p.add_argument("--batch-size", type=int, default=32, help="per rank")
    p.add_argument("--ranks", type=int, default=2)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--bits", type=int, default=1, help="codec bits for adl")
    p.add_argument("--lr", type=float, default=None,
                   help="initial rate of every optimizer in the list (default: each optimizer's own, "
                        "train.DEFAULT_LR); sgd and adl share the SGD rate, so compare them at one value")
    p.add_argument("--momentum", type=float, default=TrainConfig.momentum, help="SGD momentum (sgd and adl)")
    p.add_argument("--eval-every", type=int, default=0,
                   help="also evaluate every N steps, for the tail-accuracy column (0: only at the end)")
    p.add_argument("--eval-last", type=int, default=None,
                   help="with --eval-every: evaluate within the last N steps only; tail accuracy is their mean")
    p.add_argument("--lr-interval", type=int, default=20, help="steps per adaptive-LR evaluation / curve point")
    p.add_argument("--paper-dataset", choices=sorted(PAPER_TABLE_III), default="MNIST",
                   help="which of the paper's tables to print beside ours")
    p.add_argument("--link-mbit", type=float, default=c.link_mbit)
    p.add_argument("--latency-ms", type=float, default=c.latency_ms)
    p.add_argument("--overhead", type=float, default=c.overhead, help="β: wire bytes per payload byte")
    p.add_argument("--node-watts", type=float, default=c.node_watts)
    p.add_argument("--nodes", type=int, default=c.nodes, help="modeled cluster size N")
    p.add_argument("--out", default=None, help="directory for table.md, table.json, curves.png")
    p.add_argument("--no-progress", action="store_true")


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m adlcodec.paper", description=__doc__.splitlines()[0])
    add_arguments(p)
    args = p.parse_args(argv)
    if args.compare or args.from_json:
        print_comparison(args)
    else:
        run_table(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
