"""End-to-end smoke run of the emulated Pi cluster benchmark (bench/cluster/run_bench.py --quick).

Needs root: it creates network namespaces, veth pairs and tbf qdiscs, all deleted afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]
pytestmark = pytest.mark.slow


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _quick_bench(script: str, out: Path, timeout: float) -> dict:
    """Run ``bench/cluster/SCRIPT --quick``; check it succeeded and removed every namespace it made."""
    proc = subprocess.Popen([sys.executable, str(REPO / "bench" / "cluster" / script), "--quick", "--out", str(out)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        stdout, stderr = proc.communicate()
    assert proc.returncode == 0, stdout[-3000:] + stderr[-3000:]
    # Only this run's namespaces (the benches name them adlb/adlq + their pid): another bench on the same
    # machine may create or delete its own meanwhile.
    mine = {n for n in _namespaces() if n.startswith((f"adlb{proc.pid % 100000}-", f"adlq{proc.pid % 100000}-"))}
    assert not mine, f"benchmark left network namespaces behind: {sorted(mine)}"
    return json.loads((out / "results.json").read_text())


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for ip netns / tc")
def test_quick_cluster_bench_runs_end_to_end_and_cleans_up(tmp_path):
    results = _quick_bench("run_bench.py", tmp_path, 420)
    rows = {r["method"]: r for r in results["timing"]}
    fp32, ada = rows["allreduce-fp32"], rows["adlcodec-1bit"]
    # bytes really sent on the shaped veth: ring allreduce moves ~2(N-1)/N of the gradient
    assert fp32["wire_bytes_per_rank_step"] > 1.2 * fp32["dense_bytes_per_step"]
    assert ada["wire_bytes_per_rank_step"] * 10 < fp32["wire_bytes_per_rank_step"]
    assert ada["compression_ratio"] > 20 and ada["replicas_identical"] and fp32["replicas_identical"]
    assert {a["method"] for a in results["accuracy"]} == {"allreduce-fp32", "adlcodec-1bit"}
    # the accuracy table is a mean over the seeds it lists, each run with the recorded optimizer settings
    for a in results["accuracy"]:
        assert [s["seed"] for s in a["seeds"]] == [0]
        assert a["accuracy"] == pytest.approx(np.mean([s["accuracy"] for s in a["seeds"]]))
    assert (results["lr"], results["momentum"]) == (0.002, 0.9)
    # step-time breakdown: a compute-only baseline and the hook's own encode / all-gather / decode times
    assert 0 < results["compute_only_s"]["4"] < fp32["step_time_s"]
    assert all(ada[k] > 0 for k in ("encode_s", "allgather_s", "decode_s"))
    assert fp32["encode_s"] is None
    report = (tmp_path / "results.md").read_text()
    assert "| adlcodec-1bit |" in report and "Where a step goes: 4 ranks" in report
    assert (tmp_path / "step_time_vs_rate.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for ip netns / tc")
def test_netns_script_tears_down_what_it_built():
    script = REPO / "scripts" / "cluster" / "netns.sh"
    prefix = f"adlt{os.getpid() % 100000}"
    try:
        subprocess.run([str(script), "up", prefix, "2", "25mbit"], check=True)
        assert {f"{prefix}-r0", f"{prefix}-r1", f"{prefix}-sw"} <= _namespaces()
        qdisc = subprocess.run(["ip", "netns", "exec", f"{prefix}-r0", "tc", "qdisc", "show", "dev", "eth0"],
                               capture_output=True, text=True, check=True).stdout
        assert "tbf" in qdisc and "25Mbit" in qdisc
    finally:
        subprocess.run([str(script), "down", prefix, "2"], check=True)
    assert not any(ns.startswith(prefix) for ns in _namespaces())


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for ip netns / tc")
def test_quick_budget_bench_meets_a_binding_deadline_on_a_shaped_link(tmp_path):
    results = _quick_bench("budget_bench.py", tmp_path, 600)
    deadline = results["deadlines"]["25mbit"]
    fixed = results["fixed_timing"]["25mbit"]
    budget = results["budget"]["25mbit"]["0"]
    assert fixed["exchange_ms_mean"] > deadline  # the deadline binds: the fixed configuration misses it
    assert budget["decisions_identical"] and budget["replicas_identical"]
    assert budget["pressure"] > 0 and any(p["bin_size"] > p["base_bin_size"] for p in budget["plan"])
    # the benchmark's own claim is "within 10 %" over full runs; a 40-step smoke run gets some slack
    assert budget["exchange_ms_mean"] < 1.3 * deadline
    assert budget["exchange_ms_mean"] < fixed["exchange_ms_mean"]
    # accuracy runs also evaluate at step 30 (every 10 within the last 20): the tail figure has two points
    assert budget["tail_points"] == 2 and results["fixed_accuracy"]["0"]["tail_points"] == 2
    assert [s for s, _ in budget["accuracy_curve"]] == [30, 40]
    assert "| 25mbit | 45 |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "exchange_vs_deadline.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def _bytes_scaling(out: Path, *args: str) -> tuple[dict, dict]:
    """Run bench/cluster/bytes_scaling.py small (hidden 256, 5 steps, with the probe) plus ARGS; returns its
    results and its probes as {(ranks, bytes per peer): transport bytes per peer}."""
    cmd = [sys.executable, str(REPO / "bench" / "cluster" / "bytes_scaling.py"), *args, "--hidden", "256",
           "--steps", "5", "--warmup", "2", "--probe", "--out", str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads((out / "results.json").read_text())
    return result, {(q["ranks"], q["per_peer"]): q["overhead"] for q in result["probes"]}


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for ip netns")
def test_bytes_scaling_bench_separates_payload_from_transport(tmp_path):
    """bench/cluster/bytes_scaling.py at 2 and 4 ranks: the all-gather's bytes grow with the ranks, the
    reduce-scatter's less, and what the transport adds is measured apart from the hook's payload."""
    result, probes = _bytes_scaling(tmp_path, "--ranks", "2,4")
    wire = {(r["exchange"], r["ranks"]): r for r in result["rows"]}
    assert all(r["replicas_identical"] and 0 < r["to_peers"] < r["wire"] for r in result["rows"])
    # the all-gather sends each message to each of the other ranks, after its 8-byte size
    for ranks in (2, 4):
        row = wire["allgather", ranks]
        buckets = round(row["buckets_per_step"] * 3)  # 3 compressed steps: 2..4
        assert row["hook_peer_bytes"] == (ranks - 1) * (row["hook_payload_bytes"] + 8 * buckets)
    ag_growth = wire["allgather", 4]["wire"] / wire["allgather", 2]["wire"]
    rs_growth = wire["reduce-scatter", 4]["wire"] / wire["reduce-scatter", 2]["wire"]
    assert ag_growth > 2.0  # one payload received at 2 ranks, three at 4
    assert rs_growth < ag_growth
    assert wire["reduce-scatter", 4]["buckets_per_step"] >= 1
    assert set(probes) == {(4, 8), (4, 336)}
    assert all(0 < v < 4096 for v in probes.values()), probes
    assert "| reduce-scatter | 4 |" in (tmp_path / "results.md").read_text()


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root for ip netns")
def test_bytes_scaling_bench_measures_the_hook_over_open_mpi(tmp_path):
    """The same bench with ``--transport mpi``: ranks started by mpirun, the hook's collectives over Open MPI's
    TCP transport on the private loopback, and the probe measuring Open MPI's own cost per transfer."""
    result, probes = _bytes_scaling(tmp_path, "--ranks", "2", "--exchanges", "reduce-scatter", "--transport", "mpi")
    (row,) = result["rows"]
    assert row["replicas_identical"] and 0 < row["to_peers"] < row["wire"]
    assert row["buckets_per_step"] >= 1
    run = json.loads((tmp_path / "runs" / "reduce-scatter-2r.json").read_text())
    assert run["launcher"] == "mpi" and run["config"]["transport"] == "mpi"
    assert set(probes) == {(2, 8), (2, 336)}
    assert all(0 < v < 4096 for v in probes.values()), probes
    assert "Open MPI" in (tmp_path / "results.md").read_text()
