"""bench/cluster/scaling_model.py: the shapes of hops, transfers and wire bytes follow the hook's collectives
(all-to-all since d1efebf, the incast rule of b305d61), the fit reproduces what it was fitted on, and the
loader pairs each run with its own compute-only step and keeps the newest run.  No timing."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "bench" / "cluster"))
import scaling_model as sm  # noqa: E402

RS, AG, FP32 = "adlcodec-1bit-reduce-scatter", "adlcodec-1bit-allgather", "allreduce-fp32"
LINK = 100e6 / 8


def _model(method, scale=90e3, c=0.0, alpha=0.0, gamma=0.0, header=0.0):
    return dict(method=method, kind=sm.ALGORITHMS[method][0], bucket_shares=list(sm.BUCKET_SHARES),
                transport_per_peer=340.0, header_per_peer=header, scale=scale, c=c, alpha=alpha, gamma=gamma)


def test_the_incast_threshold_is_the_hooks():
    ddp = pytest.importorskip("adlcodec.ddp")
    assert sm.INCAST_BYTES == ddp._INCAST_BYTES


def test_hops_of_the_reduce_scatters_all_to_alls_do_not_grow_with_the_ranks():
    # 4 all-to-alls per bucket, 2 buckets: 8 hops at any N (an owner's message stays below the incast rule)
    assert [sm.hops(RS, n, 100e3) for n in (4, 32, 1024)] == [8.0, 8.0, 8.0]
    # a ring all-reduce: two rounds of N - 1 per bucket
    assert sm.hops(FP32, 32, 13e6) == 2 * 2 * 31
    assert sm.hops(FP32, 1024, 13e6) == 2 * 2 * 1023


def test_the_all_gather_goes_round_the_ring_where_more_than_1_MiB_arrives():
    scale = 90e3
    big = scale * sm.BUCKET_SHARES[0]
    n_ring = next(n for n in range(2, 2000) if (n - 1) * big > sm.INCAST_BYTES)
    below, above = n_ring - 1, n_ring
    # sizes (1 hop) and messages (1 hop) per bucket while all-to-all
    assert sm.hops(AG, 8, scale) == 4
    assert sm.hops(AG, below, scale) == 4
    # the large bucket's messages round the ring: N - 1 hops; the small one still all at once
    assert sm.hops(AG, above, scale) == 1 + (above - 1) + 1 + 1
    assert sm.collectives(AG, above, scale) == ["a2a", "ring", "a2a", "a2a"]
    assert sm.collectives(AG, 1024, scale) == ["a2a", "ring", "a2a", "ring"]
    # padded to the longest round the ring: more bytes per peer than all at once
    assert sm.payload_shape(AG, above, scale) / (above - 1) > sm.payload_shape(AG, below, scale) / (below - 1)


def test_transfers_and_the_transport_term_grow_linearly_with_n_minus_1():
    for method, k in ((RS, 8), (AG, 4), (FP32, 4)):
        assert [sm.transfers(method, n) for n in (2, 33, 1025)] == [k * 1.0, k * 32.0, k * 1024.0]
    m = _model(RS, scale=0.0)  # no payload: control, sizes and transport only
    transport = [sm.wire(m, n) - sm.control_bytes(RS, n) for n in (5, 9, 17)]
    assert transport == pytest.approx([8 * 4 * 340, 8 * 8 * 340, 8 * 16 * 340])


def test_the_control_vector_is_modelled_fixed_length_per_peer():
    # modelled: 12 int64 + one size per peer and bucket, so per peer it does not grow with N
    per_peer = [sm.control_bytes(RS, n) / (n - 1) for n in (8, 1024)]
    assert per_peer == [2 * (12 * 8 + 8)] * 2
    # the measured runs sent 10 fields + one int64 per rank to every peer
    assert sm.control_bytes(RS, 32, measured=True) == 2 * 31 * ((10 + 32) * 8 + 8)
    assert sm.control_bytes(FP32, 32) == 0.0


def test_the_reduce_scatters_payload_term_stays_bounded_the_all_gathers_grows():
    rs, ag = _model(RS, scale=100e3), _model(AG, scale=90e3)
    transport = lambda m, n: sm.transfers(m["method"], n) * 340.0 + sm.control_bytes(m["method"], n)
    assert sm.wire(rs, 1024) - transport(rs, 1024) < 2 * 100e3 + 1
    assert sm.wire(ag, 1024) - transport(ag, 1024) > 1000 * 90e3


@pytest.mark.parametrize("method,params", [(RS, dict(c=-0.2, alpha=0.0, gamma=0.004)),
                                           (FP32, dict(c=-0.8, alpha=0.027, gamma=0.0))])
def test_the_fit_recovers_the_parameters_of_synthetic_points(method, params):
    truth = _model(method, scale=120e3 if method == RS else 13e6, header=250.0, **params)
    points = [dict(ranks=n, exposed_s=sm.exposed(truth, n, LINK, measured=True),
                   wire_bytes_per_rank_step=sm.wire(truth, n, measured=True), compute_only_s=1.7) for n in (8, 32)]
    m = sm.fit(method, points, LINK, transport=340.0, header_per_peer=250.0)
    assert m["scale"] == pytest.approx(truth["scale"])
    for p in params:
        assert m[p] == pytest.approx(truth[p], abs=1e-9)
    assert sm.exposed(m, 1024, LINK) == pytest.approx(sm.exposed(truth, 1024, LINK))
    assert m["determination"] == "exactly determined"


def test_the_all_gather_takes_gamma_from_the_reduce_scatter_and_fits_alpha():
    truth = _model(AG, scale=90e3, c=-0.1, alpha=0.028, gamma=0.0043)
    points = [dict(ranks=n, exposed_s=sm.exposed(truth, n, LINK, measured=True),
                   wire_bytes_per_rank_step=sm.wire(truth, n, measured=True), compute_only_s=1.7) for n in (8, 32)]
    m = sm.fit(AG, points, LINK, transport=340.0, gamma=0.0043)
    assert (m["c"], m["alpha"], m["gamma"]) == pytest.approx((-0.1, 0.028, 0.0043))
    # all-to-all only at both rank counts' sizes would leave alpha unidentifiable: hops 4 and 4
    assert [q["hops"] for q in m["points"]] == [4, 34]


def _results(path, started, compute, runs):
    path.write_text(json.dumps(dict(started_utc=started, commit="x", compute_only=[
        dict(ranks=n, factor=40.0, step_time_s=s) for n, s in compute.items()], runs=[
        dict(method=m, ranks=n, factor=40.0, rate="100mbit", status="ok", step_time_s=s, wire_bytes_per_rank_step=w)
        for m, n, s, w in runs])))
    return path


def test_each_run_is_taken_against_its_own_compute_only_step_and_the_newest_run_wins(tmp_path):
    old = _results(tmp_path / "old.json", "2026-12-05 08:01", {8: 1.6, 32: 1.6},
                   [(RS, 8, 1.9, 2e5), (RS, 32, 2.6, 4e5), (FP32, 8, 3.5, 2.4e7)])
    new = _results(tmp_path / "new.json", "2026-12-06 02:43", {8: 2.0, 32: 1.9}, [(RS, 8, 2.05, 1.8e5)])
    runs, compute = sm.load_runs([new, old], 40.0, "100mbit")
    by = {(r["method"], r["ranks"]): r for r in runs}
    assert by[(RS, 8)]["exposed_s"] == pytest.approx(0.05)  # the newer file's run, against its compute-only
    assert by[(RS, 32)]["exposed_s"] == pytest.approx(1.0)
    assert by[(FP32, 8)]["exposed_s"] == pytest.approx(1.9)
    assert compute == {8: 2.0, 32: 1.9}


def test_the_committed_results_answer_the_target_and_the_model_passes_through_its_points(tmp_path):
    if not all(p.exists() for p in sm.DEFAULT_RESULTS):
        pytest.skip("testbed results not in this checkout")
    pytest.importorskip("matplotlib")
    assert sm.main(["--factor", "40", "--out", str(tmp_path)]) == 0
    out = json.loads((tmp_path / "scaling_model.json").read_text())
    models = {m["method"]: m for m in out["models"]}
    for m in models.values():
        for q in m["points"]:
            assert q["modelled_exposed_s"] == pytest.approx(q["exposed_s"], abs=1e-9)
    # fitted on the runs after the all-to-all collectives, not on the ring-era adlcodec runs
    assert {Path(q["source"]).parent.name for q in models[RS]["points"]} == {"testbed-a2a"}
    assert {Path(q["source"]).parent.name for q in models[AG]["points"]} == {"testbed-a2a", "testbed-a2a-ring32"}
    assert out["target"]["faster_than_fp32_every_n"] is (not out["target"]["not_faster_at"])
