"""The paper's Tables II and III as shipped data, and `adlcodec paper-table --compare/--from` beside them."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from adlcodec.paper_tables import (METRICS, Cell, compare, format_comparison, load_paper_table, load_results,
                                   packaged_results_path, paper_row, results_from_measurements)

ENV = dict(os.environ, OMP_NUM_THREADS="1")


def test_table_ii_loads_cell_for_cell():
    rows = load_paper_table("II")
    assert len(rows) == 9
    assert [(r["batch_size"], r["learning_rate"]) for r in rows] == [
        (32, 0.003), (32, 0.005), (32, 0.01), (32, 0.05), (32, 0.5), (32, 1.0), (64, 0.005), (128, 0.005),
        (256, 0.005)]
    row = paper_row("II", batch_size=32, learning_rate=0.005)
    assert row["accuracy_pct"] == 98.99 and row["processing_time_s"] == 3.56 and row["avg_energy_J"] == 12.67
    assert row["delay_s"] == 5.99 and row["ssim_pct"] == 96.47 and row["avg_compression_ratio"] == 5.60
    assert paper_row("II", batch_size=256, learning_rate=0.005)["processing_time_s"] == 7.03


def test_table_iii_loads_cell_for_cell():
    rows = load_paper_table("III")
    assert len(rows) == 30
    assert {r["dataset"] for r in rows} == {"CIFAR-10", "CIFAR-100", "MNIST"}
    adl = paper_row("III", dataset="MNIST", algorithm="ADL")
    assert (adl["accuracy_pct"], adl["compression_ratio"], adl["ssim_pct"], adl["avg_energy_J"]) == (
        98.97, 4.86, 97.64, 2247)
    assert paper_row("III", dataset="MNIST", algorithm="SGD")["compression_ratio"] is None  # empty in the paper
    assert paper_row("III", dataset="CIFAR-100", algorithm="FeCarNet")["accuracy_pct"] == 56.43


@pytest.mark.parametrize("call, match", [
    (lambda: load_paper_table("IV"), "unknown table 'IV'"),
    (lambda: paper_row("II", batch_size=32, learning_rate=0.7), "has no row"),
    (lambda: paper_row("III", dataset="ImageNet", algorithm="ADL"), "has no row"),
    (lambda: paper_row("II", batch_size=32), "missing"),
])
def test_unknown_table_or_row_is_a_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def _results(cells_32_0005: dict, extra_rows=()):
    return dict(source="test", tables={"II": [dict(row=dict(batch_size=32, learning_rate=0.005),
                                                   cells=cells_32_0005, na_reason="no SSIM for gradients"),
                                              *extra_rows]})


def test_comparison_marks_measured_modeled_and_na():
    results = _results(dict(accuracy_pct=dict(value=85.25, kind="measured", note="Fashion-MNIST"),
                            energy_J=dict(value=1234.5, kind="modeled", note="E = P*T")))
    rows = {r["key"]: r for r in compare("II", results)}
    assert len(rows) == 9
    row = rows[(32, 0.005)]
    assert row["paper"]["accuracy_pct"] == 98.99
    assert row["ours"]["accuracy_pct"] == Cell(85.25, "measured", "Fashion-MNIST")
    assert row["ours"]["energy_J"].kind == "modeled"
    assert row["ours"]["ssim_pct"] == Cell(None, "n/a", "no SSIM for gradients")  # the row's own reason
    assert rows[(64, 0.005)]["ours"]["accuracy_pct"].note == "no result for this row"

    text = format_comparison("II", results)
    line = next(l for l in text.splitlines() if l.startswith("| 32 | 0.005 |"))
    notes = dict(l[1:].split("] ", 1) for l in text.splitlines() if l.startswith("["))
    number = {note: n for n, note in notes.items()}
    assert f"| 98.99 | 85.25 (measured) [{number['Fashion-MNIST']}] |" in line
    assert f"| 12.67 | 1,234 (modeled) [{number['E = P*T']}] |" in line
    assert f"| 96.47 | n/a [{number['no SSIM for gradients']}] |" in line
    assert line.count("n/a") == 5 and "no result for this row" in number  # the other rows' default reason
    header = text.splitlines()[2]
    for label in ("accuracy %", "avg loss", "processing s", "ratio", "energy J", "delay s", "SSIM %"):
        assert f"| paper {label} | ours {label} |" in header
    assert header.count("|") - 1 == 2 + 2 * len(METRICS)
    assert text.count("\n| ") == 10  # header + 9 rows


def test_comparison_rows_can_be_selected():
    text = format_comparison("III", dict(tables={}), only={"dataset": "MNIST"})
    assert text.count("\n| MNIST |") == 10 and "CIFAR" not in text.split("\n\n")[1]
    assert "| SGD | 98.76 | n/a [1] | 0.070 | n/a [1] | 2.51 | n/a [1] | – |" in text  # the paper's empty ratio
    rate_one = format_comparison("II", dict(tables={}), only={"learning_rate": "1", "batch_size": "32"})
    assert rate_one.count("\n| 32 | 1 |") == 1 and "| 98.79 |" in rate_one  # "1" selects the rate 1.0
    with pytest.raises(ValueError, match="no row matching"):
        format_comparison("III", dict(tables={}), only={"dataset": "SVHN"})
    with pytest.raises(ValueError, match="no row matching"):
        format_comparison("II", dict(tables={}), only={"batch_size": "thirty-two"})
    with pytest.raises(ValueError, match="selected by"):
        format_comparison("III", dict(tables={}), only={"optimizer": "adl"})


@pytest.mark.parametrize("bad, match", [
    (dict(accuracy_pct=dict(value=85.0, kind="guessed")), "cell kind"),
    (dict(accuracy_pct=dict(value=None, kind="measured")), "numeric value"),
    (dict(accuracy_pct=dict(value=1.0, kind="n/a", note="x")), "n/a cell"),
    (dict(accuracy_pct=dict(value=None, kind="n/a")), "n/a cell"),
    (dict(top1=dict(value=1.0, kind="measured")), "unknown metrics"),
])
def test_malformed_results_are_refused(bad, match):
    with pytest.raises(ValueError, match=match):
        compare("II", _results(bad))


def test_results_row_the_paper_does_not_have_is_refused():
    extra = dict(row=dict(batch_size=512, learning_rate=0.005), cells={})
    with pytest.raises(ValueError, match="has no row"):
        compare("II", _results({}, [extra]))


def test_results_from_measurements_cover_every_paper_row():
    table2 = dict(setup=dict(ranks=8, factor=40, rate="100mbit", steps=6, timing_warmup=2, paper_nodes=32,
                             node_watts=5.0, accuracy=dict(ranks=2, train_subset=12000, eval_images=10000, seed=0)),
                  rows=[dict(batch_size=32, learning_rate=0.005,
                             testbed=dict(paper_steps=5900, processing_time_s=12000.0, compression_ratio=210.0,
                                          energy_J=1.92e6, delay_s=3000.0),
                             accuracy_run=dict(accuracy_pct=85.0, avg_train_loss=0.5))])
    results = results_from_measurements(table2)
    rows = {r["key"]: r["ours"] for r in compare("II", results)}
    ours = rows[(32, 0.005)]
    assert ours["energy_J"].kind == "modeled" and ours["energy_J"].value == pytest.approx(1.92e6)
    assert ours["processing_time"].kind == "measured" and ours["delay"].kind == "measured"
    assert ours["ssim_pct"].kind == "n/a"
    cifar = {r["key"]: r["ours"] for r in compare("III", results)}[("CIFAR-10", "ADL")]
    assert all(c.kind == "n/a" and "no CIFAR data" in c.note for c in cifar.values())


def test_packaged_results_are_valid_and_mark_every_cell():
    results = load_results(packaged_results_path())
    for table in ("II", "III"):
        for row in compare(table, results):
            assert set(row["ours"]) == set(METRICS)
            assert all(c.kind in ("measured", "modeled", "n/a") and (c.kind != "n/a" or c.note)
                       for c in row["ours"].values())
    ii = {r["key"]: r["ours"] for r in compare("II", results)}
    assert all(ii[k]["processing_time"].kind == "measured" for k in ii)  # every Table II row timed on the testbed
    assert all(ii[k]["energy_J"].kind == "modeled" for k in ii)
    mnist_adl = {r["key"]: r["ours"] for r in compare("III", results)}[("MNIST", "ADL")]
    assert mnist_adl["compression_ratio"].value > 40  # gradients, not images


def test_cli_compare_prints_both_tables_from_packaged_results(tmp_path):
    md = tmp_path / "cmp.md"
    proc = subprocess.run([sys.executable, "-m", "adlcodec", "paper-table", "--compare", "--markdown-out", str(md)],
                          env=ENV, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Table II: the paper's figures beside ours" in proc.stdout
    assert "Table III: the paper's figures beside ours" in proc.stdout
    assert "| 32 | 0.005 | 98.99 |" in proc.stdout and "(measured)" in proc.stdout and "(modeled)" in proc.stdout
    assert md.read_text().strip() == proc.stdout.strip()


def test_cli_from_file_and_its_errors(tmp_path):
    good = tmp_path / "r.json"
    good.write_text(json.dumps(_results(dict(accuracy_pct=dict(value=77.5, kind="measured", note="n")))))
    run = lambda *a: subprocess.run([sys.executable, "-m", "adlcodec", "paper-table", *a], env=ENV,
                                    capture_output=True, text=True, timeout=120)
    proc = run("--from", str(good), "--table", "II", "--row", "batch_size=32")
    assert proc.returncode == 0, proc.stderr
    assert "77.50 (measured)" in proc.stdout and proc.stdout.count("\n| 32 |") == 6 and "Table III" not in proc.stdout
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(dict(tables={"IV": []})))
    proc = run("--from", str(bad))
    assert proc.returncode == 2 and "unknown table 'IV'" in proc.stderr
    bad.write_text("{not json")
    proc = run("--from", str(bad))
    assert proc.returncode == 2 and "is not JSON" in proc.stderr
    proc = run("--from", str(tmp_path / "missing.json"))
    assert proc.returncode == 2 and "missing.json" in proc.stderr
    proc = run("--from", str(good), "--row", "batch_size")
    assert proc.returncode == 2 and "name=value" in proc.stderr
