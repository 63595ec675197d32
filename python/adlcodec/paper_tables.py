"""The paper's Tables II and III as data, and our figures for the same rows beside them.

The paper's cells ship as CSV in ``adlcodec/paper_data`` (its published figures, copied cell for cell).
Ours come from a results JSON (``adlcodec_results.json`` in the same folder is what this project measured;
``bench/paper/table2.py collect`` writes it), in which every cell says whether it was *measured* or
*modeled*, or is ``n/a`` with the reason::

    {"tables": {"II": [{"row": {"batch_size": 32, "learning_rate": 0.005},
                        "cells": {"accuracy_pct": {"value": 85.1, "kind": "measured", "note": "..."}}}],
                "III": [{"row": {"dataset": "MNIST", "algorithm": "ADL"}, "na_reason": "...", "cells": {}}]}}

Values are in the paper's unit of the column (Table II: seconds; Table III: minutes).  A row or cell the
results do not have is printed ``n/a`` with the row's ``na_reason`` or a default reason.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

__all__ = ["TABLES", "METRICS", "KINDS", "Cell", "load_paper_table", "paper_row", "row_key", "load_results",
           "compare", "format_comparison", "packaged_results_path", "results_from_measurements",
           "table3_rows_from_run_table"]

TABLES = {"II": "table2_testbed.csv", "III": "table3_simulation.csv"}
KEY_COLUMNS = {"II": ("batch_size", "learning_rate"), "III": ("dataset", "algorithm")}
# Our metric names -> the column of each table holding the paper's figure.  Order = printed order.
METRICS = ("accuracy_pct", "avg_loss", "processing_time", "compression_ratio", "energy_J", "delay", "ssim_pct")
_COLUMNS = {
    "II": dict(accuracy_pct="accuracy_pct", avg_loss="avg_loss", processing_time="processing_time_s",
               compression_ratio="avg_compression_ratio", energy_J="avg_energy_J", delay="delay_s",
               ssim_pct="ssim_pct"),
    "III": dict(accuracy_pct="accuracy_pct", avg_loss="avg_loss", processing_time="processing_time_min",
                compression_ratio="compression_ratio", energy_J="avg_energy_J", delay="delay_min",
                ssim_pct="ssim_pct"),
}
_LABELS = {"II": dict(accuracy_pct="accuracy %", avg_loss="avg loss", processing_time="processing s",
                      compression_ratio="ratio", energy_J="energy J", delay="delay s", ssim_pct="SSIM %"),
           "III": dict(accuracy_pct="accuracy %", avg_loss="avg loss", processing_time="processing min",
                       compression_ratio="ratio", energy_J="energy J", delay="delay min", ssim_pct="SSIM %")}
KINDS = ("measured", "modeled", "n/a")
_PAPER = "Singh, Singh, Rathore, Nema, IEEE Trans. Consumer Electronics 2026"
PAPER_SOURCE = {"II": f"{_PAPER}, Table II: 32 Raspberry Pi 3B+, MNIST, 100 epochs",
                "III": f"{_PAPER}, Table III: one laptop (i5-1145G7), 100 epochs, batch 32, initial LR 0.005"}


@dataclass(frozen=True)
class Cell:
    """One of our figures: a value and how we got it, or n/a and why."""

    value: float | None
    kind: str
    note: str = ""

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ValueError(f"cell kind must be one of {KINDS}, got {self.kind!r}")
        if self.kind == "n/a":
            if self.value is not None or not self.note:
                raise ValueError("an n/a cell has no value and must give its reason in 'note'")
        elif not isinstance(self.value, (int, float)) or isinstance(self.value, bool):
            raise ValueError(f"a {self.kind} cell needs a numeric value, got {self.value!r}")

    def render(self, metric: str) -> str:
        return "n/a" if self.value is None else f"{_format_number(self.value, metric)} ({self.kind})"


def _check_table(table: str) -> str:
    if table not in TABLES:
        raise ValueError(f"unknown table {table!r}; the paper's tables here are {sorted(TABLES)}")
    return table


def _number(text: str) -> float | None:
    return float(text) if text.strip() else None


def load_paper_table(table: str) -> list[dict]:
    """The paper's rows of ``table`` ("II" or "III"), numbers as float (None for the paper's empty cells)."""
    source = resources.files("adlcodec").joinpath("paper_data", TABLES[_check_table(table)])
    rows = []
    with source.open(newline="") as f:
        for raw in csv.DictReader(f):
            row = {k: (v if k == "dataset" or k == "algorithm" else _number(v)) for k, v in raw.items()}
            if table == "II":
                row["batch_size"] = int(row["batch_size"])
            rows.append(row)
    return rows


def row_key(table: str, row: dict) -> tuple:
    """The identity of a row: (batch size, learning rate) in Table II, (dataset, algorithm) in Table III."""
    _check_table(table)
    try:
        if table == "II":
            return int(row["batch_size"]), float(row["learning_rate"])
        return str(row["dataset"]), str(row["algorithm"])
    except KeyError as exc:
        raise ValueError(f"a Table {table} row is named by {KEY_COLUMNS[table]}, missing {exc}") from None


def paper_row(table: str, **key) -> dict:
    """The paper's row of ``table`` named by its key columns, e.g. ``paper_row("II", batch_size=32,
    learning_rate=0.005)``; ValueError if the paper has no such row."""
    wanted = row_key(table, key)
    for row in load_paper_table(table):
        if row_key(table, row) == wanted:
            return row
    raise ValueError(f"the paper's Table {table} has no row {dict(zip(KEY_COLUMNS[table], wanted))}")


def packaged_results_path() -> Path:
    return Path(str(resources.files("adlcodec").joinpath("paper_data", "adlcodec_results.json")))


def load_results(path: str | Path | None = None) -> dict:
    """A results JSON (ours by default); run_table's ``table.json`` (``paper-table --out``) is accepted too
    and read as Table III's MNIST rows."""
    path = Path(path) if path is not None else packaged_results_path()
    try:
        data = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{path} is not JSON: {exc}") from None
    if isinstance(data, dict) and "rows" in data and "cluster" in data and "tables" not in data:
        data = dict(source=f"paper-table run {path}", tables={"III": table3_rows_from_run_table(data)})
    if not isinstance(data, dict) or not isinstance(data.get("tables"), dict):
        raise ValueError(f"{path}: expected an object with 'tables' (see adlcodec.paper_tables) or a "
                         "paper-table table.json")
    for table in data["tables"]:
        _check_table(table)
    return data


def compare(table: str, results: dict) -> list[dict]:
    """Every row of the paper's ``table`` with, per metric, the paper's figure and our :class:`Cell`.

    ValueError for a results row the paper does not have, an unknown metric, or a malformed cell."""
    ours = {}
    for entry in results.get("tables", {}).get(_check_table(table), []):
        key = row_key(table, entry.get("row", {}))
        paper_row(table, **dict(zip(KEY_COLUMNS[table], key)))  # raises for a row the paper does not have
        unknown = set(entry.get("cells", {})) - set(METRICS)
        if unknown:
            raise ValueError(f"Table {table} row {key}: unknown metrics {sorted(unknown)}; known: {METRICS}")
        ours[key] = entry
    out = []
    for row in load_paper_table(table):
        key = row_key(table, row)
        entry = ours.get(key, {})
        reason = entry.get("na_reason") or "no result for this row"
        cells = {}
        for metric in METRICS:
            spec = entry.get("cells", {}).get(metric)
            cells[metric] = Cell(**spec) if spec else Cell(None, "n/a", reason)
        out.append(dict(key=key, paper={m: row[_COLUMNS[table][m]] for m in METRICS}, ours=cells))
    return out


def _format_number(value: float, metric: str) -> str:
    if metric in ("accuracy_pct", "ssim_pct"):
        return f"{value:.2f}"
    if metric == "avg_loss":
        return f"{value:.3f}"
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _same(key_value, wanted) -> bool:
    """A row's key value against a selector given as text: numbers compare as numbers ("1" matches 1.0)."""
    if isinstance(key_value, (int, float)):
        try:
            return float(wanted) == key_value
        except ValueError:
            return False
    return str(wanted) == key_value


def format_comparison(table: str, results: dict, only: dict | None = None) -> str:
    """A markdown table: per row of the paper's ``table``, the paper's figure and ours for every metric,
    ours marked (measured) or (modeled), or n/a with a numbered reason below the table.  ``only`` restricts
    the rows, e.g. ``{"dataset": "MNIST"}``."""
    rows = compare(table, results)
    if only:
        unknown = set(only) - set(KEY_COLUMNS[table])
        if unknown:
            raise ValueError(f"Table {table} rows are selected by {KEY_COLUMNS[table]}, not {sorted(unknown)}")
        rows = [r for r in rows if all(_same(dict(zip(KEY_COLUMNS[table], r["key"]))[k], v) for k, v in only.items())]
        if not rows:
            raise ValueError(f"the paper's Table {table} has no row matching {only}")
    labels = _LABELS[table]
    head = " | ".join(KEY_COLUMNS[table])
    cols = " | ".join(f"paper {labels[m]} | ours {labels[m]}" for m in METRICS)
    lines = [f"Table {table}: the paper's figures beside ours ({results.get('source', 'results')})", "",
             f"| {head} | {cols} |", "|" + "---|" * len(KEY_COLUMNS[table]) + "---:|" * (2 * len(METRICS))]
    notes: list[str] = []

    def ours_text(cell: Cell, metric: str) -> str:
        text = cell.render(metric)
        if cell.note:
            if cell.note not in notes:
                notes.append(cell.note)
            text += f" [{notes.index(cell.note) + 1}]"
        return text

    for r in rows:
        key = " | ".join(f"{k:g}" if isinstance(k, float) else str(k) for k in r["key"])
        cells = " | ".join(
            f"{'–' if r['paper'][m] is None else _format_number(r['paper'][m], m)} | {ours_text(r['ours'][m], m)}"
            for m in METRICS)
        lines.append(f"| {key} | {cells} |")
    lines += [""] + [f"[{i}] {note}" for i, note in enumerate(notes, 1)]
    lines += ["", f"paper: {PAPER_SOURCE[table]}; – = the paper leaves the cell empty."]
    return "\n".join(lines)


# --- building results from our measurements -------------------------------------------------------------

_RUN_TABLE_NAMES = {"adl": "ADL", "adadelta": "ADADelta", "adagrad": "ADAGrad", "adam": "Adam",
                    "adamax": "ADAMax", "rmsprop": "RMSprop", "sgd": "SGD"}


def table3_rows_from_run_table(table_json: dict, dataset: str = "MNIST", ssim_cell: dict | None = None) -> list[dict]:
    """Table III rows of ``dataset`` from ``paper-table --out``'s table.json, one per optimizer: our run on
    whatever data it had (Fashion-MNIST here, where MNIST is not installed) beside the paper's row."""
    cluster = table_json["cluster"]
    runs = {r["config"]["optimizer"]: r for r in table_json.get("runs", [])}
    out = []
    for row in table_json["rows"]:
        name = _RUN_TABLE_NAMES.get(row["optimizer"])
        if name is None:
            raise ValueError(f"optimizer {row['optimizer']!r} has no row in the paper's Table III")
        run = runs.get(row["optimizer"], {})
        data = run.get("dataset", "our data")
        budget = (f"{data}{'' if data == dataset else f' (not {dataset})'}, {run.get('steps', row['steps'])} steps, "
                  f"{run.get('config', {}).get('ranks', '?')} ranks x batch "
                  f"{run.get('config', {}).get('batch_size', '?')}, seed {run.get('config', {}).get('seed', '?')}, "
                  f"lr {row['lr']:g}")
        model = (f"modeled: eqs. 1-2 for {cluster['nodes']} Pi 3B+ nodes at {cluster['link_mbit']:g} Mbit/s, "
                 f"{cluster['node_watts']:g} W/node, compute per step measured on this x86 box (the paper's "
                 "Table III is one laptop)")
        cells = dict(
            accuracy_pct=dict(value=row["accuracy"], kind="measured", note=budget),
            avg_loss=dict(value=row["loss_mean"], kind="measured",
                          note="mean of the all-rank training-loss windows of the last epoch"),
            processing_time=dict(value=row["seconds"] / 60, kind="measured",
                                 note="training wall time on this shared 2-core x86 box, same short budget"),
            compression_ratio=(dict(value=row["ratio"], kind="measured",
                                    note="gradients: dense fp32 bytes / bytes sent per step")
                               if row["ratio"] > 1 else
                               dict(value=row["ratio"], kind="measured", note="uncompressed fp32 all-reduce")),
            energy_J=dict(value=row["energy_j"], kind="modeled", note=model),
            delay=dict(value=row["delay_s"] / 60, kind="modeled", note=model),
        )
        if name == "ADL" and ssim_cell:
            cells["ssim_pct"] = ssim_cell
        out.append(dict(row=dict(dataset=dataset, algorithm=name), cells=cells,
                        na_reason="SSIM is a property of an image codec; these are gradient runs"))
    return out


def results_from_measurements(table2: dict, table3_run_table: dict | None = None,
                              image_ssim: dict | None = None) -> dict:
    """Our results JSON from bench/paper/table2.py's table2.json and a ``paper-table --out`` table.json."""
    setup = table2["setup"]
    acc = setup["accuracy"]
    acc_note = (f"Fashion-MNIST (not MNIST): adl, {acc['ranks']} ranks on loopback, 1 epoch of the first "
                f"{acc['train_subset']:,} training images, {acc['eval_images']:,} test images, seed {acc['seed']}; "
                "the paper: 100 epochs of MNIST on 32 nodes")
    tb_note = (f"measured on the emulated testbed: {setup['ranks']} Pi 3B+ ranks at {setup['factor']}x, "
               f"{setup['rate']} links, {setup['steps'] - setup['timing_warmup']} timed steps")
    rows = []
    for r in table2["rows"]:
        cells = {}
        a = r.get("accuracy_run")
        if a:
            cells["accuracy_pct"] = dict(value=a["accuracy_pct"], kind="measured", note=acc_note)
            if a["avg_train_loss"] is not None:
                cells["avg_loss"] = dict(value=a["avg_train_loss"], kind="measured",
                                         note="mean of the finite training-loss windows of the same run")
        t = r.get("testbed")
        if t:
            scaled = (f"measured step time x {t['paper_steps']:,} steps (100 epochs of 60,000 images over "
                      f"{setup['paper_nodes']} nodes at this batch): {tb_note}; step measured at "
                      f"{setup['ranks']} nodes, a 32-node step is longer")
            cells["processing_time"] = dict(value=t["processing_time_s"], kind="measured", note=scaled)
            cells["compression_ratio"] = dict(value=t["compression_ratio"], kind="measured",
                                              note="gradients: dense fp32 bytes / adlcodec payload bytes per step")
            cells["energy_J"] = dict(value=t["energy_J"], kind="modeled",
                                     note=f"E = P*T with T the processing time above and P = {setup['paper_nodes']} "
                                          f"nodes x {setup['node_watts']:g} W (a loaded Pi 3B+)")
            if t.get("delay_s") is not None:
                cells["delay"] = dict(value=t["delay_s"], kind="measured",
                                      note="delay = (step time - compute-only step time, both measured on the "
                                           "testbed) x the same steps: the exchange's share of the run")
        rows.append(dict(row=dict(batch_size=r["batch_size"], learning_rate=r["learning_rate"]), cells=cells,
                         na_reason="SSIM is a property of an image codec; Table II rows are gradient runs"))
    tables = {"II": rows}
    cifar = ("no CIFAR data on this machine and nothing can be downloaded; adlcodec.data reads CIFAR-10/100 "
             "pickles (paper-table --data DIR)")
    image_methods = ("an image-compression method the paper compares with; how its rows were trained is not "
                     "stated. JPEG's rate-distortion on Fashion-MNIST is in bench/image (docs/IMAGE.md)")
    t3 = [dict(row=dict(dataset=d, algorithm=a), na_reason=cifar, cells={})
          for d in ("CIFAR-10", "CIFAR-100") for a in ("ADL", "ADADelta", "ADAGrad", "Adam", "ADAMax", "RMSprop",
                                                       "SGD", "JPEG", "AWC", "FeCarNet")]
    t3 += [dict(row=dict(dataset="MNIST", algorithm=a), na_reason=image_methods, cells={})
           for a in ("JPEG", "AWC", "FeCarNet")]
    if table3_run_table:
        t3 += table3_rows_from_run_table(table3_run_table, "MNIST", image_ssim)
    tables["III"] = t3
    return dict(source="adlcodec's measurements, bench/paper/results (bench/paper/table2.py)", tables=tables)
