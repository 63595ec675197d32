"""bench/cluster/time_to_accuracy.py's report: accuracy curves times testbed step times, the target, and the
floor below which no method can reach it.  Synthetic curves and timings: no training, no timing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench" / "cluster"))
import time_to_accuracy as tta  # noqa: E402

FP32, ADL, FP16 = "allreduce-fp32", "adlcodec-1bit-allgather", "fp16_compress_hook"


def _curve(path: Path, points: list[tuple[int, float]]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dict(accuracy_curve=points, accuracy=points[-1][1], steps=points[-1][0],
                                    replicas_identical=True)))


def _timing(path: Path, step_times: dict[str, float], compute_only: float) -> Path:
    runs = [dict(method=m, ranks=8, factor=40.0, rate="100mbit", status="ok", step_time_s=t)
            for m, t in step_times.items()]
    path.write_text(json.dumps(dict(runs=runs, compute_only=[dict(ranks=8, factor=40.0, step_time_s=compute_only)])))
    return path


@pytest.mark.parametrize("compute_only, reachable", [(2.5, False), (0.5, True)])
def test_the_floor_is_fp32s_steps_to_target_at_the_compute_only_step(tmp_path, compute_only, reachable):
    pytest.importorskip("matplotlib")
    for seed, final in ((0, 88.0), (1, 87.8)):
        _curve(tta.curve_path(tmp_path, FP32, 8, seed), [(50, 80.0), (100, 87.7), (200, final)])
    for seed in (0, 1):
        _curve(tta.curve_path(tmp_path, ADL, 8, seed), [(50, 79.0), (100, 86.0), (200, 87.7)])
    _curve(tta.curve_path(tmp_path, FP16, 8, 0), [(50, 87.9), (100, 88.0), (200, 88.1)])
    timing = _timing(tmp_path / "results.json", {FP32: 3.0, ADL: 1.2, FP16: 2.5}, compute_only)
    assert tta.main(["report", "--timing", str(timing), "--factor", "40", "--ranks", "8",
                     "--out", str(tmp_path)]) == 0
    summary = json.loads((tmp_path / "time_to_accuracy.json").read_text())["by_ranks"]["8"]
    assert summary["target"] == pytest.approx(87.6)
    assert summary["fp32_wall_s"] == pytest.approx(600.0)
    rows = {r["method"]: r for r in summary["rows"]}
    assert rows[FP32]["steps_to_target"] == 100 and rows[ADL]["steps_to_target"] == 200
    assert rows[ADL]["time_to_target_s"] == pytest.approx(240.0)
    assert rows[ADL]["faster_than_every_built_in"] is False  # fp16 reached it at step 50: 125 s
    # fp32 needs 100 steps; at the compute-only step that is the least any method needs
    assert summary["floor_vs_fp32_wall"] == pytest.approx(100 * compute_only / 600.0)
    assert (summary["floor_vs_fp32_wall"] <= 1 / 3) is reachable
    assert "Floor: fp32's 100 steps" in (tmp_path / "time_to_accuracy.md").read_text()
