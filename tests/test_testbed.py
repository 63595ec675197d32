"""The emulated Pi 3B+ testbed (bench/cluster/testbed.py) on real namespaces, cgroups, tc and torch.

Needs root (CI runs the suite as root): every test builds real cgroup v1 groups and most build network
namespaces; each checks that what it built is gone afterwards.  About 2.5 minutes on the shared 2-core box.
"""

from __future__ import annotations

import json
import os
import platform
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

if platform.machine().lower() in ("aarch64", "arm64"):
    # The testbed is a host harness: it emulates Pis on the x86-64 box with torch ranks, and qemu-user cannot
    # enter the network namespaces it makes (setns is not emulated for the guest).
    pytest.skip("host test: the testbed emulates Pi 3B+ nodes on the x86-64 host", allow_module_level=True)
REPO = Path(__file__).resolve().parents[1]
TESTBED = REPO / "bench" / "cluster" / "testbed.py"
sys.path.insert(0, str(TESTBED.parent))
import testbed  # noqa: E402

pytestmark = pytest.mark.slow
MIB = 1 << 20


def _namespaces() -> set[str]:
    out = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True, check=True).stdout
    return {line.split()[0] for line in out.splitlines() if line.strip()}


def _left_behind(pid: int) -> list[str]:
    """Namespaces and cgroups of the testbed process ``pid`` that still exist (names carry the pid)."""
    left = sorted(n for n in _namespaces() if n.startswith(f"adltb{pid % 100000}-"))
    left += [str(d) for c in ("cpu", "memory") if (d := Path("/sys/fs/cgroup") / c / f"adlcodec-{pid}").exists()]
    return left


def _testbed(args: list[str], timeout: float) -> tuple[subprocess.CompletedProcess, int]:
    proc = subprocess.Popen([sys.executable, str(TESTBED), *args], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        stdout, stderr = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGTERM)  # the harness tears down on SIGTERM; give it the chance
        stdout, stderr = proc.communicate(timeout=60)
    return subprocess.CompletedProcess(proc.args, proc.returncode, stdout, stderr), proc.pid


def test_quick_mode_measures_every_figure_and_leaves_nothing_behind(tmp_path):
    done, pid = _testbed(["--quick", "--out", str(tmp_path)], timeout=420)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert not _left_behind(pid)
    results = json.loads((tmp_path / "results.json").read_text())
    rows = {r["method"]: r for r in results["runs"]}
    assert set(rows) == {"allreduce-fp32", "adlcodec-1bit"}
    for r in rows.values():
        assert r["status"] == "ok" and r["ranks"] == 2 and r["factor"] == 10 and not r["oversubscribed"]
        assert r["step_time_s"] > 0 and r["compute_only_step_time_s"] > 0
        assert r["wire_bytes_per_rank_step"] > 0 and r["replicas_identical"]
        # one peak per rank, from the process (RSS) and from its memory cgroup; torch alone is > 100 MiB
        assert len(r["peak_rss_bytes_per_rank"]) == len(r["cgroup_peak_bytes_per_rank"]) == 2
        assert all(100 * MIB < b < r["memory_limit_bytes"] for b in r["peak_rss_bytes_per_rank"])
        assert all(0 < b <= r["memory_limit_bytes"] for b in r["cgroup_peak_bytes_per_rank"])
        # the quota was 1/10 of the period and the kernel did hold every rank back
        assert r["cfs_quota_us"] * 10 == r["cfs_period_us"]
        assert all(n > 0 for n in r["nr_throttled_per_rank"])
    # the miniature accuracy mode: evaluations at steps 2 and 4 and the final one at 6, and fp32 reaches its
    # own final accuracy by its last step at the latest (the time is steps x measured step time)
    for r in rows.values():
        assert [s for s, _ in r["accuracy_curve"]] == [2, 4, 6] and r["accuracy_curve"][-1][1] == r["accuracy"]
    fp32 = rows["allreduce-fp32"]
    assert fp32["time_to_fp32_final"]["step"] <= 6
    assert fp32["time_to_fp32_final"]["seconds"] == pytest.approx(fp32["time_to_fp32_final"]["step"] * fp32["step_time_s"])
    assert (tmp_path / "accuracy_vs_time.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    # the shaped eth0 counters see the compression: fp32 sends the dense 13 MB gradient, 1 bit ~1 % of it
    assert rows["adlcodec-1bit"]["wire_bytes_per_rank_step"] * 20 < rows["allreduce-fp32"]["wire_bytes_per_rank_step"]
    assert rows["allreduce-fp32"]["wire_bytes_per_rank_step"] > 0.9 * rows["allreduce-fp32"]["payload_bytes_per_step"]
    compute = results["compute_only"][0]
    assert compute["ranks"] == 2 and len(compute["per_rank"]) == 2
    assert all(x["nr_throttled"] > 0 for x in compute["per_rank"])
    report = (tmp_path / "results.md").read_text()
    assert "### 10x slower than one x86 core, 100mbit per link" in report and "| adlcodec-1bit | 2 |" in report
    assert (tmp_path / "step_time_vs_ranks.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_rank_over_its_memory_cap_fails_the_run_with_a_clear_message(tmp_path):
    cg = testbed.RankCgroups("oom", 1, memory_limit=100 * MIB)
    allocate = [sys.executable, "-c", "x = b'\\x01' * (300 << 20); print('survived', len(x))"]
    with cg, pytest.raises(testbed.RankOutOfMemory, match=r"rank 0 exceeded the 100 MiB memory cap \(peak \d+ MiB"):
        testbed.run_ranks(cg, [allocate], factor=1, timeout=60, logs=[tmp_path / "oom.log"])
    assert "survived" not in (tmp_path / "oom.log").read_text()
    assert not cg.base["memory"].exists() and not cg.base["cpu"].exists()
    assert not cg.procs()


def test_the_quota_throttles_a_busy_rank(tmp_path):
    busy = [sys.executable, "-c", "import time\nt = time.time()\nwhile time.time() - t < 1.0: pass"]
    with testbed.RankCgroups("busy", 1) as cg:
        t0 = time.monotonic()
        (rank,) = testbed.run_ranks(cg, [busy], factor=10, timeout=60, logs=[tmp_path / "busy.log"])
        wall = time.monotonic() - t0
    assert rank.exit_code == 0
    assert (rank.cgroup["cfs_period_us"], rank.cgroup["cfs_quota_us"]) == (10_000, 1_000)
    assert rank.cgroup["nr_throttled"] > 0
    # a busy loop unthrottled would use about its wall time in CPU; at 1/10 core it gets far less
    assert rank.cpu_s < 0.5 * wall
    assert not cg.base["cpu"].exists()


def test_helper_threads_run_on_the_emulated_pis_other_cores(tmp_path):
    # the main thread stays on the one-core quota; a thread started while the rank runs (as gloo's workers and
    # the hook's communication thread are) moves to the other-cores group with three times the quota
    ids, done = tmp_path / "ids", tmp_path / "done"
    script = tmp_path / "threads.py"
    script.write_text(
        "import os, threading, time\n"
        "stop = threading.Event()\n"
        "threads = [threading.Thread(target=stop.wait, args=(30,)) for _ in range(2)]\n"
        "[t.start() for t in threads]\n"
        f"open({str(ids)!r}, 'w').write(' '.join(map(str, [os.getpid()] + [t.native_id for t in threads])))\n"
        f"while not os.path.exists({str(done)!r}): time.sleep(0.05)\n"
        "stop.set()\n")
    placement = {}

    def check_placement():
        while not ids.exists() or len(ids.read_text().split()) < 3:
            time.sleep(0.05)
        time.sleep(0.3)  # a few more polls of the harness
        main, *helpers = ids.read_text().split()
        placement["main"] = (cg.path("cpu", 0) / "tasks").read_text().split()
        placement["other"] = (cg.other_cores_path(0) / "tasks").read_text().split()
        placement["ids"] = (main, helpers)
        placement["quotas"] = [int((d / "cpu.cfs_quota_us").read_text()) for d in (cg.path("cpu", 0),
                                                                                      cg.other_cores_path(0))]
        placement["shares"] = int((cg.base["cpu"].parent / "cpu.shares").read_text())
        done.touch()

    with testbed.RankCgroups("cores", 1) as cg:
        checker = threading.Thread(target=check_placement)
        checker.start()
        (rank,) = testbed.run_ranks(cg, [[sys.executable, str(script)]], factor=10, timeout=60,
                                    logs=[tmp_path / "threads.log"], ready_dir=None)
        checker.join()
    assert rank.exit_code == 0, (tmp_path / "threads.log").read_text()
    main, helpers = placement["ids"]
    assert placement["main"] == [main]
    assert sorted(placement["other"]) == sorted(helpers)
    assert placement["quotas"] == [1000, 3000]
    assert placement["shares"] == testbed.TESTBED_CPU_SHARES
    assert not cg.base["cpu"].exists()


def test_a_rank_failing_mid_run_fails_the_run_and_everything_is_torn_down(tmp_path):
    # rank 1 of a real 2-rank training dies at step 2 (os._exit, as a crash would); rank 0 is then stuck in
    # its allreduce and must be killed by the harness
    methods = tmp_path / "methods.json"
    methods.write_text(json.dumps({"crash-at-step-2": ["--hook", "allreduce", "--fail-at-step", "2", "--fail-rank",
                                                       "1", "--checkpoint-dir", str(tmp_path / "ckpt")]}))
    done, pid = _testbed(["--methods-json", str(methods), "--methods", "crash-at-step-2", "--ranks", "2", "--factors",
                          "10", "--steps", "5", "--no-compute-only", "--out", str(tmp_path / "out")], timeout=300)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    assert not _left_behind(pid)
    (run,) = json.loads((tmp_path / "out" / "results.json").read_text())["runs"]
    assert run["status"] == "failed" and run["error"].startswith("rank 1 exited 17")


def test_sigterm_during_a_run_tears_down_namespaces_cgroups_and_ranks(tmp_path):
    proc = subprocess.Popen([sys.executable, str(TESTBED), "--quick", "--no-compute-only", "--out", str(tmp_path)],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        # wait until the ranks are running inside their namespaces and cgroups
        deadline = time.monotonic() + 120
        cg = Path("/sys/fs/cgroup/memory") / f"adlcodec-{proc.pid}"
        while time.monotonic() < deadline:
            ranks = [p for p in cg.glob("*/r*/cgroup.procs") if p.read_text().split()] if cg.exists() else []
            if len(ranks) == 2 and any(n.startswith(f"adltb{proc.pid % 100000}-") for n in _namespaces()):
                break
            time.sleep(0.2)
        else:
            pytest.fail("the quick run never got its ranks going")
        rank_pids = [int(p.read_text().split()[0]) for p in ranks]
        proc.send_signal(signal.SIGTERM)
        proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 128 + signal.SIGTERM
    assert not _left_behind(proc.pid)
    assert not any(Path(f"/proc/{p}").exists() for p in rank_pids)


def test_the_capacity_check_refuses_an_over_subscribed_plan(monkeypatch, capsys, tmp_path):
    # 1/factor core per rank on 2 cores: 10 ranks fit at 5x, 20 at 10x, 40 at 20x
    assert [c["max_ranks_that_fit"] for c in testbed.check_capacity([(1, 5), (1, 10), (1, 20)], 2, False)] == [10, 20, 40]
    testbed.check_capacity([(10, 5), (20, 10), (32, 20)], 2, False)
    with pytest.raises(testbed.OverSubscribed, match=r"32 ranks at 10x need 3.20 cores, 2 available \(at most 20"):
        testbed.check_capacity([(4, 10), (32, 10)], 2, False)
    flagged = testbed.check_capacity([(32, 10)], 2, True)
    assert flagged[0]["oversubscribed"]
    # the helper threads' groups (3 other cores of quota each) are flagged, not refused: 32 ranks at 40x train
    # on 0.8 cores but promise 3.2 when every rank encodes at once; with one other core, 1.6 fits
    (busy,) = testbed.check_capacity([(32, 40)], 2, False, other_cores=3)
    assert not busy["oversubscribed"] and busy["cores_needed"] == pytest.approx(0.8)
    assert busy["cores_needed_helpers_busy"] == pytest.approx(3.2) and busy["helpers_may_oversubscribe"]
    (fits,) = testbed.check_capacity([(32, 40)], 2, False, other_cores=1)
    assert fits["cores_needed_helpers_busy"] == pytest.approx(1.6) and not fits["helpers_may_oversubscribe"]
    # the 32-rank run of results/testbed-wait32 was such a run: its report says so once the rows carry the flag
    results = json.loads((REPO / "bench/cluster/results/testbed-wait32/results.json").read_text())
    cap = testbed.check_capacity([(32, 40)], results["cores"], False, results["other_cores"])[0]
    for r in results["runs"]:
        r["helpers_may_oversubscribe"] = cap["helpers_may_oversubscribe"]
    testbed.write_markdown(results, tmp_path / "results.md")
    report = (tmp_path / "results.md").read_text()
    assert report.count("ok (helpers may over-subscribe) |") == 3 and "every rank's helper threads busy" in report
    # the CLI refuses before it builds anything
    monkeypatch.setattr(testbed, "available_cores", lambda: 2)
    assert testbed.main(["--ranks", "4,32", "--factors", "10", "--out", "/nonexistent/never-written"]) == 2
    assert "over-subscribed" in capsys.readouterr().err
    assert not _left_behind(os.getpid()) and not Path("/nonexistent/never-written").exists()


def test_the_memory_check_refuses_more_ranks_than_the_machine_can_hold():
    gib = 1 << 30
    assert not testbed.check_memory([4, 8], 650 * MIB, 18 * gib, False)["oversubscribed"]
    with pytest.raises(testbed.OverSubscribed, match=r"32 ranks x 650 MiB = 20.3 GiB, 18.0 GiB available now \(at most 28"):
        testbed.check_memory([4, 32], 650 * MIB, 18 * gib, False)
    assert testbed.check_memory([32], 650 * MIB, 18 * gib, True)["oversubscribed"]
    assert 0 < testbed.memory_available() < 1 << 50


def test_a_method_the_installed_trainer_cannot_run_is_refused_up_front():
    with pytest.raises(ValueError, match=r"method future needs \['--no-such-flag'\]"):
        testbed.check_methods(["future"], {"future": ["--hook", "adacomp", "--no-such-flag", "x"]})
    with pytest.raises(ValueError, match="unknown methods"):
        testbed.check_methods(["nope"], testbed.METHODS)
    testbed.check_methods(["allreduce-fp32", "adlcodec-1bit"], testbed.METHODS)
