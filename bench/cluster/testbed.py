#!/usr/bin/env python3
"""Emulated Raspberry Pi 3B+ testbed: up to 32 throttled, memory-capped ranks on shaped links, on one box.

Each rank is one emulated Pi: its own network namespace with a tbf-shaped link through one bridge
(scripts/cluster/netns.sh, reused through run_bench.Cluster), its own cgroup v1 ``cpu`` group with
``cpu.cfs_quota_us = period / factor`` (1/factor of one x86 core) and ``memory`` group with
``memory.limit_in_bytes`` = 1 GiB, one torch thread.  For every method x rank count x slowdown factor x
link rate it measures the step time, the compute-only step time under the same throttle (no
communication), the bytes each rank put on its wire per step and each rank's peak memory; with
``--eval-every`` also the accuracy curve and the time to reach fp32's final accuracy.  A rank the kernel
kills at the memory cap fails its run with "rank k exceeded the 1 GiB memory cap (peak ...)".

Calibration of the factor and how to read the results: docs/TESTBED.md.  Needs root.  Traffic stays in
the namespaces this run creates (10.77.0.x exists only there); namespaces, cgroups and processes are
removed after every run, also on failure, SIGINT and SIGTERM.

    python bench/cluster/testbed.py --methods allreduce-fp32,adlcodec-1bit --ranks 4,8 --factors 10
    python bench/cluster/testbed.py --quick --out /tmp/tb        # 2 ranks, few steps (CI, ~2 min)
"""

from __future__ import annotations

import argparse
import ctypes
import json
import math
import os
import signal
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
from run_bench import COMPUTE_ONLY, METHODS as RUN_BENCH_METHODS, NETNS, REPO, Cluster, _mbit  # noqa: E402

RANK_ENTRY = HERE / "rank_entry.py"
CGROUP_ROOT = Path("/sys/fs/cgroup")
GIB = 1 << 30
MIB = 1 << 20
# A Pi 3B+ has four Cortex-A53 cores.  The training thread (one torch thread, as the issue prescribes) gets
# one of them; every other thread of the rank (gloo's workers, the adlcodec hook's communication thread,
# the store's client) runs on the other three, each as slow as the first: a group of its own with three
# times the quota.  --other-cores 0 puts every thread on the one core instead (a single-core node).
PI_OTHER_CORES = 3
TESTBED_CPU_SHARES = 262144  # the kernel's largest cgroup v1 weight (a nice-0 process weighs 1024)
DEFAULT_OUT = HERE / "results" / "testbed"

# The methods of run_bench.py plus the adlcodec exchanges that `adlcodec train --exchange` is gaining
# (all-gather and reduce-scatter of the compressed payloads).  A method is only the training flags it
# adds; check_methods() refuses, before anything is built, a method whose flags the installed
# `adlcodec train` does not have.  --methods-json adds or overrides entries without editing this file.
METHODS: dict[str, list[str]] = {
    **RUN_BENCH_METHODS,
    "adlcodec-1bit-allgather": ["--hook", "adacomp", "--bits", "1", "--exchange", "allgather"],
    "adlcodec-1bit-reduce-scatter": ["--hook", "adacomp", "--bits", "1", "--exchange", "reduce-scatter"],
    "adlcodec-8bit-allgather": ["--hook", "adacomp", "--bits", "8", "--exchange", "allgather"],
    "adlcodec-8bit-reduce-scatter": ["--hook", "adacomp", "--bits", "8", "--exchange", "reduce-scatter"],
    # one DDP bucket a step instead of two: half the collectives (and per-peer transfers), nothing overlapped
    "adlcodec-1bit-reduce-scatter-1bucket": ["--hook", "adacomp", "--bits", "1", "--exchange", "reduce-scatter",
                                             "--bucket-cap-mb", "16"],
    # not a method: the ranks wait for each other once per bucket and send nothing, so its step is the least
    # any synchronous exchange can take on the testbed (the slowest rank's compute each step, plus a latency)
    "sync-floor": ["--hook", "barrier"],
}
# What issue 18 measures once the exchanges exist (docs/TESTBED.md); the defaults run what exists today.
ISSUE_METHODS = ["allreduce-fp32", "fp16_compress_hook", "powerSGD-rank1", "powerSGD-rank2",
                 "adlcodec-1bit-allgather", "adlcodec-1bit-reduce-scatter",
                 "adlcodec-8bit-allgather", "adlcodec-8bit-reduce-scatter"]
DEFAULT_METHODS = ["allreduce-fp32", "adlcodec-1bit"]


class TestbedError(RuntimeError):
    """A run that did not produce a measurement; the message says which rank and why."""


class RankOutOfMemory(TestbedError):
    pass


class RankFailed(TestbedError):
    pass


class OverSubscribed(ValueError):
    pass


# ---------------------------------------------------------------- capacity


def available_cores() -> int:
    return len(os.sched_getaffinity(0))


def cpu_demand(ranks: int, factor: float) -> float:
    """Cores the ranks may use together when every one of them runs its full quota (1/factor core each)."""
    return ranks / factor


def check_capacity(plan: list[tuple[int, float]], cores: int, allow_oversubscribed: bool,
                   other_cores: int = 0) -> list[dict]:
    """One entry per (ranks, factor); raises OverSubscribed for any whose quota sum exceeds ``cores``.

    An over-subscribed configuration does not emulate Pis any more: the ranks would get less than their
    quota, and by how much depends on the other load, so its step times mean nothing.  With
    ``allow_oversubscribed`` it runs anyway and every result row carries ``oversubscribed: true``.

    The helper threads' groups (``other_cores`` x the quota each) are not refused, only flagged
    (``helpers_may_oversubscribe``): they are busy only while a rank encodes or decodes, but when every rank
    does so at once they take CPU from other ranks' training threads (32 ranks at 40x with 3 other cores:
    3.2 cores promised on a 2-core box, docs/TESTBED.md).
    """
    out, bad = [], []
    for ranks, factor in plan:
        demand = cpu_demand(ranks, factor)
        with_helpers = cpu_demand(ranks * (1 + other_cores), factor)
        entry = dict(ranks=ranks, factor=factor, cores_needed=demand, cores=cores, oversubscribed=demand > cores,
                     max_ranks_that_fit=math.floor(cores * factor + 1e-9),
                     cores_needed_helpers_busy=with_helpers, helpers_may_oversubscribe=with_helpers > cores)
        out.append(entry)
        if entry["oversubscribed"]:
            bad.append(entry)
    if bad and not allow_oversubscribed:
        raise OverSubscribed(
            "over-subscribed: " + "; ".join(
                f"{b['ranks']} ranks at {b['factor']:g}x need {b['cores_needed']:.2f} cores, {cores} available "
                f"(at most {b['max_ranks_that_fit']} ranks fit)" for b in bad)
            + " -- drop them or pass --allow-oversubscribed (results are then flagged)")
    return out


def memory_available() -> int:
    """MemAvailable of /proc/meminfo, bytes: what the box can give new processes without swapping (it has none)."""
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemAvailable:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError("no MemAvailable in /proc/meminfo")


def check_memory(rank_counts: list[int], per_rank: int, available: int, allow_oversubscribed: bool) -> dict:
    """Refuse rank counts whose expected resident memory exceeds what the machine has available.

    Each rank is capped at 1 GiB, but 32 ranks x the ~0.6 GiB a training rank really uses is ~20 GiB: on a
    24 GiB box shared with other jobs the *machine* would run out first, and its OOM killer would pick any
    process, not only ours.  ``per_rank`` is the expected private memory of one rank (--rank-memory-mib).
    """
    worst = max(rank_counts)
    entry = dict(ranks=worst, per_rank_bytes=per_rank, needed_bytes=worst * per_rank, available_bytes=available,
                 oversubscribed=worst * per_rank > available)
    if entry["oversubscribed"] and not allow_oversubscribed:
        raise OverSubscribed(
            f"memory over-subscribed: {worst} ranks x {per_rank / MIB:.0f} MiB = {worst * per_rank / GIB:.1f} GiB, "
            f"{available / GIB:.1f} GiB available now (at most {available // per_rank} ranks) -- wait for a quieter "
            "machine, lower --rank-memory-mib if a smaller model needs less, or pass --allow-oversubscribed")
    return entry


# ---------------------------------------------------------------- cgroups


def cfs_period_us(factor: float) -> int:
    """The CFS period for a 1/factor quota: 10 ms, longer only where the quota would drop below 1 ms.

    A throttled rank cannot run at all for the rest of its period, including answering the network, so a
    short period is closer to a core that is uniformly slower; 1 ms is the smallest quota the kernel takes.
    """
    return max(10_000, int(math.ceil(1000 * factor)))


def _write(path: Path, value) -> None:
    with open(path, "w") as f:
        f.write(str(value))


def _read_kv(path: Path) -> dict[str, int]:
    out = {}
    for line in path.read_text().splitlines():
        k, _, v = line.partition(" ")
        if v.strip().lstrip("-").isdigit():
            out[k] = int(v)
    return out


_live_cgroups: list["RankCgroups"] = []


class RankCgroups:
    """One cgroup v1 ``cpu`` group and one ``memory`` group per rank, removed again on exit.

    Layout: /sys/fs/cgroup/{cpu,memory}/adlcodec-<harness pid>/<run>/r<k>.  The quota starts unlimited
    (start-up runs at full speed, see rank_entry.py) and ``throttle()`` sets it; the memory cap holds
    from the start.
    """

    def __init__(self, run: str, ranks: int, memory_limit: int = GIB, root: Path = CGROUP_ROOT,
                 other_cores: int = PI_OTHER_CORES):
        self.ranks, self.memory_limit, self.other_cores = ranks, memory_limit, other_cores
        self.top = f"adlcodec-{os.getpid()}"
        self.base = {c: root / c / self.top / run for c in ("cpu", "memory")}
        self.factor: float | None = None

    def path(self, controller: str, k: int) -> Path:
        return self.base[controller] / f"r{k}"

    def other_cores_path(self, k: int) -> Path:
        """The cpu group of rank k's threads other than its main (training) thread: the Pi's other cores."""
        return self.base["cpu"] / f"r{k}-other"

    def _dirs(self, k: int) -> list[Path]:
        return [self.path("cpu", k), self.path("memory", k)] + ([self.other_cores_path(k)] if self.other_cores else [])

    def __enter__(self):
        _live_cgroups.append(self)
        try:
            for k in range(self.ranks):
                for d in self._dirs(k):
                    d.mkdir(parents=True, exist_ok=True)
            # CFS weighs a group against its siblings: at the root the whole testbed would count as one
            # process, and any other busy process on the machine would take half the CPU the quotas grant.
            # The quotas, not the weight, are what must limit a rank.
            for d in (self.base["cpu"].parent, self.base["cpu"]):
                _write(d / "cpu.shares", TESTBED_CPU_SHARES)
                mem = self.path("memory", k)
                _write(mem / "memory.limit_in_bytes", self.memory_limit)
                # no swap here; the memsw cap makes that explicit should the machine ever get some
                if (mem / "memory.memsw.limit_in_bytes").exists():
                    _write(mem / "memory.memsw.limit_in_bytes", self.memory_limit)
        except BaseException:
            self.destroy()
            raise
        return self

    def __exit__(self, *exc):
        self.destroy()

    def throttle(self, factor: float) -> None:
        period = cfs_period_us(factor)
        for k in range(self.ranks):
            cpu = self.path("cpu", k)
            _write(cpu / "cpu.cfs_period_us", period)
            _write(cpu / "cpu.cfs_quota_us", max(1000, int(round(period / factor))))
            if self.other_cores:
                other = self.other_cores_path(k)
                _write(other / "cpu.cfs_period_us", period)
                _write(other / "cpu.cfs_quota_us", max(1000, int(round(self.other_cores * period / factor))))
        self.factor = factor

    def move_helper_threads(self) -> int:
        """Put every thread of every rank but its main one into the rank's other-cores group; returns how many
        moved.  Threads inherit their creator's group, and new ones appear during training (gloo's workers,
        the hook's communication thread), so the harness calls this every time it polls."""
        moved = 0
        for k in range(self.ranks if self.other_cores else 0):
            tasks = self.other_cores_path(k) / "tasks"
            for pid in (self.path("cpu", k) / "cgroup.procs").read_text().split():
                try:
                    threads = os.listdir(f"/proc/{pid}/task")
                except FileNotFoundError:
                    continue
                main_tasks = set((self.path("cpu", k) / "tasks").read_text().split())
                for tid in threads:
                    if tid != pid and tid in main_tasks:
                        try:
                            _write(tasks, tid)
                            moved += 1
                        except (ProcessLookupError, OSError):
                            pass  # the thread ended meanwhile
        return moved

    def joiner(self, k: int):
        """preexec_fn for Popen: move the child into rank k's groups before it execs anything."""
        targets = [str(self.path(c, k) / "cgroup.procs") for c in ("cpu", "memory")]

        def join():
            # die with the harness even if it is SIGKILLed (PR_SET_PDEATHSIG = 1); survives exec
            ctypes.CDLL(None, use_errno=True).prctl(1, int(signal.SIGKILL))
            for t in targets:
                with open(t, "w") as f:
                    f.write(str(os.getpid()))
        return join

    def stats(self, k: int) -> dict:
        mem, cpu = self.path("memory", k), self.path("cpu", k)
        oom = _read_kv(mem / "memory.oom_control")
        cpu_stat = _read_kv(cpu / "cpu.stat")
        return dict(
            cgroup_peak_bytes=int((mem / "memory.max_usage_in_bytes").read_text()),
            memory_failcnt=int((mem / "memory.failcnt").read_text()),
            oom_kills=oom.get("oom_kill", 0),
            cfs_period_us=int((cpu / "cpu.cfs_period_us").read_text()),
            cfs_quota_us=int((cpu / "cpu.cfs_quota_us").read_text()),
            nr_periods=cpu_stat.get("nr_periods", 0), nr_throttled=cpu_stat.get("nr_throttled", 0),
            throttled_time_s=cpu_stat.get("throttled_time", 0) / 1e9,
        )

    def procs(self) -> set[int]:
        pids = set()
        for k in range(self.ranks):
            for d in self._dirs(k):
                f = d / "cgroup.procs"
                if f.exists():
                    pids |= {int(p) for p in f.read_text().split()}
        return pids

    def destroy(self, timeout: float = 20.0) -> None:
        """Kill whatever still runs in the groups, wait for it to go, remove the groups and empty parents."""
        deadline = time.monotonic() + timeout
        while (pids := self.procs()) and time.monotonic() < deadline:
            for pid in pids:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.05)
        for k in range(self.ranks):
            for d in self._dirs(k):
                while d.exists():
                    try:
                        d.rmdir()
                    except OSError:  # EBUSY for a moment while the killed tasks are reaped
                        if time.monotonic() > deadline:
                            raise
                        time.sleep(0.05)
        for c in ("cpu", "memory"):
            for d in (self.base[c], self.base[c].parent):
                try:
                    d.rmdir()
                except OSError:
                    pass  # not empty (another run of this harness still uses the parent) or already gone
        if self in _live_cgroups:
            _live_cgroups.remove(self)


# ---------------------------------------------------------------- running ranks


@dataclass
class RankResult:
    rank: int
    exit_code: int | None = None  # negative: killed by that signal
    max_rss_bytes: int | None = None  # the process's own peak resident set (getrusage, incl. shared libraries)
    cpu_s: float | None = None
    cgroup: dict = field(default_factory=dict)

    def as_dict(self):
        return dict(rank=self.rank, exit_code=self.exit_code, max_rss_bytes=self.max_rss_bytes, cpu_s=self.cpu_s,
                    **self.cgroup)


def _mib(b: float | None) -> str:
    return "-" if b is None else f"{b / MIB:.0f} MiB"


def gated(ready_dir: Path, k: int, python_args: list[str]) -> list[str]:
    """``python ARGS`` behind rank_entry.py's start-up gate (ready file for rank k, shared go file)."""
    return [sys.executable, str(RANK_ENTRY), "--ready", str(ready_dir / f"ready.{k}"),
            "--go", str(ready_dir / "go"), *python_args]


def run_ranks(cgroups: RankCgroups, commands: list[list[str]], factor: float, timeout: float,
              logs: list[Path], ready_dir: Path | None = None, env: dict | None = None) -> list[RankResult]:
    """Run one command per rank inside its cgroups; return per-rank exit, peak RSS and cgroup figures.

    With ``ready_dir`` the commands are gated (see gated()): they start unthrottled and the quota of 1/factor
    core is applied once every rank has written its ready file, then the go file releases them together.
    Without it the quota applies from the first instruction.  If a rank fails every other rank is killed
    (the rest would wait on it in a collective forever).  Raises RankOutOfMemory if the kernel killed a
    rank at the memory cap, RankFailed for any other non-zero exit or the timeout.
    """
    if ready_dir is None:
        cgroups.throttle(factor)
    procs, files = [], []
    results = [RankResult(k) for k in range(len(commands))]
    try:
        for k, cmd in enumerate(commands):
            f = open(logs[k], "w")
            files.append(f)
            procs.append(subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, env=env,
                                          preexec_fn=cgroups.joiner(k)))
        deadline = time.monotonic() + timeout
        released = ready_dir is None
        # every rank that failed on its own, before the harness killed the rest (a crash is often followed
        # within one poll by its peers' connection errors: all of them are named, in rank order)
        failed: list[str] = []
        while True:
            for k, p in enumerate(procs):
                if results[k].exit_code is None:
                    pid, status, ru = os.wait4(p.pid, os.WNOHANG)
                    if pid:
                        code = os.waitstatus_to_exitcode(status)
                        p.returncode = code  # reaped here: keep Popen from waiting on it again
                        results[k].exit_code = code
                        results[k].max_rss_bytes = ru.ru_maxrss * 1024
                        results[k].cpu_s = ru.ru_utime + ru.ru_stime
                        if code != 0:
                            failed.append(f"rank {k} exited {code}; see {logs[k]}")
            if failed or all(r.exit_code is not None for r in results):
                break
            if not released and all((ready_dir / f"ready.{k}").exists() for k in range(len(procs))):
                cgroups.throttle(factor)
                cgroups.move_helper_threads()
                (ready_dir / "go").touch()
                released = True
            elif released:
                cgroups.move_helper_threads()
            if time.monotonic() > deadline:
                failed = [f"timed out after {timeout:.0f} s (rank {k} still running; see {logs[k]})"
                          for k, r in enumerate(results) if r.exit_code is None][:1]
                break
            time.sleep(0.05)
        for k, p in enumerate(procs):
            if results[k].exit_code is None:
                p.kill()
                _, status, ru = os.wait4(p.pid, 0)
                p.returncode = results[k].exit_code = os.waitstatus_to_exitcode(status)
                results[k].max_rss_bytes, results[k].cpu_s = ru.ru_maxrss * 1024, ru.ru_utime + ru.ru_stime
        for k in range(len(procs)):
            results[k].cgroup = cgroups.stats(k)
    finally:
        for p in procs:
            if p.returncode is None:
                p.kill()
                p.wait()
        for f in files:
            f.close()
    # a rank the OOM killer took shows as SIGKILL, like the ranks killed above: the cgroup's counter decides
    oom = [r for r in results if r.cgroup.get("oom_kills", 0) > 0]
    if oom:
        r = oom[0]
        peak = max(r.cgroup["cgroup_peak_bytes"], r.max_rss_bytes or 0)
        raise RankOutOfMemory(f"rank {r.rank} exceeded the {_cap(cgroups.memory_limit)} memory cap "
                              f"(peak {_mib(peak)}, killed by the kernel's OOM killer); see {logs[r.rank]}")
    if failed:
        raise RankFailed("; ".join(failed))
    return results


def _cap(limit: int) -> str:
    return f"{limit / GIB:g} GiB" if limit % GIB == 0 else f"{limit / MIB:g} MiB"


# ---------------------------------------------------------------- one configuration


def check_methods(names: list[str], methods: dict[str, list[str]]) -> None:
    """Refuse unknown methods and methods whose flags the installed `adlcodec train` lacks."""
    unknown = [m for m in names if m not in methods]
    if unknown:
        raise ValueError(f"unknown methods {unknown}; known: {sorted(methods)}")
    import adlcodec.train

    p = argparse.ArgumentParser()
    adlcodec.train.add_arguments(p)
    have = set(p._option_string_actions)
    for m in names:
        missing = [a for a in methods[m] if a.startswith("--") and a not in have]
        if missing:
            raise ValueError(f"method {m} needs {missing}, which the installed adlcodec train "
                             f"({adlcodec.train.__file__}) does not have")


def train_args(method_args: list[str], args, out_json: Path) -> list[str]:
    cmd = [*method_args, "--batch-size", str(args.batch_size), "--seed", str(args.seed), "--hidden",
           str(args.hidden), "--timing-warmup", str(args.timing_warmup), "--lr", str(args.lr), "--momentum",
           str(args.momentum), "--no-progress", "--iface", "eth0", "--out", str(out_json)]
    if args.eval_every:
        # accuracy mode: whole epochs (or --max-steps) with evaluations along the way
        cmd += ["--epochs", str(args.epochs), "--eval-every", str(args.eval_every)]
        if args.eval_last:
            cmd += ["--eval-last", str(args.eval_last)]
        if args.train_subset:
            cmd += ["--train-subset", str(args.train_subset)]
        if args.max_steps:
            cmd += ["--max-steps", str(args.max_steps)]
        if args.eval_subset:
            cmd += ["--eval-subset", str(args.eval_subset)]
    else:
        # a timing run's one evaluation only has to exist, not be precise
        cmd += ["--max-steps", str(args.steps), "--eval-subset", str(args.eval_subset or 1000)]
    return cmd


def run_training(cluster: Cluster, method: str, methods: dict, factor: float, args, run_dir: Path) -> dict:
    """One training run of ``method`` on the cluster's ranks, throttled to 1/factor core and capped in memory."""
    tag = f"{method}-{cluster.ranks}r-{factor:g}x-{cluster.rate}"
    out_json = run_dir / f"{tag}.json"
    out_json.unlink(missing_ok=True)
    env_common = [f"WORLD_SIZE={cluster.ranks}", "MASTER_ADDR=10.77.0.1", "MASTER_PORT=29531",
                  "GLOO_SOCKET_IFNAME=eth0", "OMP_NUM_THREADS=1", "LOCAL_RANK=0"]
    with tempfile.TemporaryDirectory(prefix="adltb-ready-") as ready, \
            RankCgroups(tag, cluster.ranks, args.memory_limit, other_cores=args.other_cores) as cg:
        commands = [[str(NETNS), "exec", cluster.prefix, str(k), "env", f"RANK={k}", *env_common,
                     *gated(Path(ready), k, ["-m", "adlcodec.train", *train_args(methods[method], args, out_json)])]
                    for k in range(cluster.ranks)]
        t0 = time.monotonic()
        ranks = run_ranks(cg, commands, factor, args.run_timeout, [out_json.with_suffix(f".rank{k}.log")
                                                                   for k in range(cluster.ranks)], Path(ready))
        wall = time.monotonic() - t0
    r = json.loads(out_json.read_text())
    return dict(r=r, ranks=[x.as_dict() for x in ranks], wall_s=wall)


def run_compute_only(ranks: int, factor: float, args, run_dir: Path) -> dict:
    """compute_only.py in ``ranks`` processes, each in its own throttled, capped cgroups; no network at all."""
    tag = f"compute-only-{ranks}r-{factor:g}x"
    outs = [run_dir / f"{tag}.rank{k}.json" for k in range(ranks)]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    with tempfile.TemporaryDirectory(prefix="adltb-ready-") as ready, \
            tempfile.TemporaryDirectory(prefix="adltb-barrier-") as barrier, \
            RankCgroups(tag, ranks, args.memory_limit, other_cores=args.other_cores) as cg:
        commands = [gated(Path(ready), k, [str(COMPUTE_ONLY), "--hidden", str(args.hidden), "--batch-size",
                                            str(args.batch_size), "--steps", str(args.compute_steps), "--warmup", "2",
                                            "--out", str(outs[k]), "--barrier-dir", barrier, "--ranks", str(ranks)])
                    for k in range(ranks)]
        res = run_ranks(cg, commands, factor, args.run_timeout, [o.with_suffix(".log") for o in outs], Path(ready),
                        env=env)
    per_rank = [json.loads(o.read_text()) for o in outs]
    return dict(step_time_s=sum(p["step_time_s"] for p in per_rank) / ranks,
                step_time_median_s=sorted(p["step_time_median_s"] for p in per_rank)[ranks // 2],
                per_rank=[x.as_dict() for x in res])


def check_throttle(factors: list[float], args, run_dir: Path, log) -> list[dict]:
    """One compute-only rank at 1x (quota = one whole core) and at each factor: measured slowdown vs intended."""
    base = run_compute_only(1, 1.0, args, run_dir)["step_time_s"]
    log(f"throttle check: 1 rank at 1x {1000 * base:.1f} ms/step")
    out = []
    for f in factors:
        t = run_compute_only(1, f, args, run_dir)["step_time_s"]
        out.append(dict(factor=f, unthrottled_step_s=base, throttled_step_s=t, measured_slowdown=t / base))
        log(f"throttle check: 1 rank at {f:g}x {1000 * t:.0f} ms/step = {t / base:.2f}x slower")
    return out


# ---------------------------------------------------------------- results


def time_to_accuracy(curve: list, target: float, step_time_s: float | None) -> dict | None:
    """First evaluation at or above ``target``: its step and that many steps at the measured step time.

    The evaluations themselves are excluded (they are the instrument, not training); None if never reached.
    """
    if not curve or step_time_s is None:
        return None
    for step, acc in curve:
        if acc >= target:
            return dict(step=step, seconds=step * step_time_s)
    return None


def summarize(method, ranks, factor, rate, out, compute, capacity, memory_limit) -> dict:
    r = out["r"]
    per_rank = out["ranks"]
    return dict(
        method=method, ranks=ranks, factor=factor, rate=rate, status="ok", error=None,
        oversubscribed=capacity["oversubscribed"], cores_needed=capacity["cores_needed"],
        helpers_may_oversubscribe=capacity["helpers_may_oversubscribe"],
        step_time_s=r["step_time_s"], step_time_median_s=r["step_time_median_s"],
        compute_only_step_time_s=None if compute is None else compute["step_time_s"],
        wire_bytes_per_rank_step=r["wire_bytes_per_rank_step"], payload_bytes_per_step=r["payload_bytes_per_step"],
        compression_ratio=r["compression_ratio"], replicas_identical=r["replicas_identical"],
        fwd_bwd_s=r.get("fwd_bwd_s"), wait_for_slowest_s=r.get("wait_for_slowest_s"),
        after_slowest_s=r.get("after_slowest_s"), steps=r["steps"], accuracy=r["accuracy"],
        accuracy_curve=r["accuracy_curve"], train_seconds=r["seconds"],
        wall_s=out["wall_s"], memory_limit_bytes=memory_limit,
        peak_rss_bytes_per_rank=[x["max_rss_bytes"] for x in per_rank],
        cgroup_peak_bytes_per_rank=[x["cgroup_peak_bytes"] for x in per_rank],
        memory_failcnt_per_rank=[x["memory_failcnt"] for x in per_rank],
        cpu_s_per_rank=[x["cpu_s"] for x in per_rank],
        nr_throttled_per_rank=[x["nr_throttled"] for x in per_rank],
        # share of the rank's CFS periods that ended with its quota used up: near 1 while it computes means it
        # got its full quota; well below means something else (other load on the box) kept it from its share
        throttled_fraction_per_rank=[x["nr_throttled"] / x["nr_periods"] if x["nr_periods"] else None
                                     for x in per_rank],
        cfs_quota_us=per_rank[0]["cfs_quota_us"], cfs_period_us=per_rank[0]["cfs_period_us"],
    )


def add_time_to_fp32(rows: list[dict]) -> None:
    """For accuracy runs: when each method first reached fp32's final accuracy of the same configuration."""
    for row in rows:
        row["time_to_fp32_final"] = None
        if row["status"] != "ok" or len(row.get("accuracy_curve") or []) < 2:
            continue
        base = next((b for b in rows if b["method"] == "allreduce-fp32" and b["status"] == "ok" and
                     (b["ranks"], b["factor"], b["rate"]) == (row["ranks"], row["factor"], row["rate"])), None)
        if base is not None:
            row["fp32_final_accuracy"] = base["accuracy"]
            row["time_to_fp32_final"] = time_to_accuracy(row["accuracy_curve"], base["accuracy"], row["step_time_s"])


def write_markdown(results: dict, path: Path) -> None:
    def ms(v):
        return "-" if v is None else f"{1000 * v:.0f}"

    rows = results["runs"]
    floors = {(r["factor"], r["rate"], r["ranks"]): r["step_time_s"] for r in rows
              if r["method"] == "sync-floor" and r["status"] == "ok"}
    lines = [f"Testbed run at commit {results['commit']}, {results['started_utc']} UTC, wall {results['wall_s']:.0f} s. "
             f"Paper CNN hidden {results['hidden']}, batch {results['batch_size']} per rank, one torch thread per "
             f"rank, memory cap {_cap(results['memory_limit'])} per rank, {results['cores']} cores available. "
             + ("" if results.get("complete", True) else "**Incomplete: the sweep stopped part-way.** ")
             + ("Accuracy mode: evaluations every "
                f"{results['eval_every']} steps." if results["eval_every"] else
                f"{results['steps']} steps per run, the first {results['timing_warmup']} not timed."), ""]
    for factor in sorted({r["factor"] for r in rows}):
        for rate in dict.fromkeys(r["rate"] for r in rows):
            sel = [r for r in rows if r["factor"] == factor and r["rate"] == rate]
            if not sel:
                continue
            lines += [f"### {factor:g}x slower than one x86 core, {rate} per link", "",
                      "| method | ranks | step (ms) | compute-only (ms) | step - compute (ms) | wire MB/rank/step "
                      "| peak RSS MiB/rank (max) | cgroup peak MiB/rank (max) | time to fp32 final "
                      "| step - sync floor (ms) | own fwd+bwd (ms) | waiting for the slowest rank (ms) "
                      "| after the slowest rank's backward (ms) | status |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|---|"]
            for r in sorted(sel, key=lambda r: (r["ranks"], r["method"])):
                if r["status"] != "ok":
                    lines.append(f"| {r['method']} | {r['ranks']} | - | {ms(r.get('compute_only_step_time_s'))} | - | - "
                                 f"| - | - | - | - | - | - | - | FAILED: {r['error']} |")
                    continue
                comp = r["compute_only_step_time_s"]
                rest = None if comp is None else r["step_time_s"] - comp
                wire = "-" if r["wire_bytes_per_rank_step"] is None else f"{r['wire_bytes_per_rank_step'] / 1e6:.3f}"
                ttf = r.get("time_to_fp32_final")
                ttf_s = "-" if not ttf else f"{ttf['seconds']:.0f} s (step {ttf['step']})"
                flag = " (over-subscribed)" if r["oversubscribed"] else ""
                flag += " (helpers may over-subscribe)" if r.get("helpers_may_oversubscribe") else ""
                floor = floors.get((factor, rate, r["ranks"]))
                lines.append(
                    f"| {r['method']} | {r['ranks']} | {ms(r['step_time_s'])} | {ms(comp)} | {ms(rest)} | {wire} | "
                    f"{max(r['peak_rss_bytes_per_rank']) / MIB:.0f} | {max(r['cgroup_peak_bytes_per_rank']) / MIB:.0f} "
                    f"| {ttf_s} | {ms(None if floor is None else r['step_time_s'] - floor)} | {ms(r.get('fwd_bwd_s'))} "
                    f"| {ms(r.get('wait_for_slowest_s'))} | {ms(r.get('after_slowest_s'))} | ok{flag} |")
            lines.append("")
    lines += ["Peak RSS: the rank process's own peak resident set (getrusage, shared libraries included, as a "
              "Pi would hold them); cgroup peak: memory.max_usage_in_bytes of the rank's memory cgroup (what "
              "the cap is enforced on: anonymous memory plus page cache charged to it). compute-only: "
              "bench/cluster/compute_only.py in the same number of processes under the same quota and cap, "
              "no communication. sync floor: the method sync-floor in the same run (ranks wait for each "
              "other once per bucket and send nothing: what any synchronous exchange costs at least, measured "
              "minutes apart from the others). The last three columns split each run's own step, within the run (means over ranks and timed steps, one "
              "clock for all ranks): a rank's forward and backward computation, then the wait until the slowest "
              "rank's backward computation in that step ended, then what remained of backward() after that: the "
              "exchange no computation hid.", ""]
    if any(r.get("helpers_may_oversubscribe") for r in rows):
        lines += ["(helpers may over-subscribe): the rank count's training quotas fit the cores, but with every "
                  "rank's helper threads busy at once (--other-cores groups) they would not; such rows can "
                  "include waiting for CPU that a real Pi's own cores would have given.", ""]
    if results.get("throttle_check"):
        lines += ["Throttle check (compute_only.py, one rank alone):", "",
                  "| factor | unthrottled (ms/step) | throttled (ms/step) | measured slowdown |", "|---:|---:|---:|---:|"]
        lines += [f"| {t['factor']:g} | {1000 * t['unthrottled_step_s']:.1f} | {1000 * t['throttled_step_s']:.0f} | "
                  f"{t['measured_slowdown']:.2f} |" for t in results["throttle_check"]]
        lines.append("")
    if results["errors"]:
        lines += ["Errors:", ""] + [f"- {e}" for e in results["errors"]] + [""]
    path.write_text("\n".join(lines))


def plot(results: dict, out: Path) -> list[str]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    made = []
    rows = [r for r in results["runs"] if r["status"] == "ok"]
    combos = list(dict.fromkeys((r["factor"], r["rate"]) for r in rows))
    if combos:
        fig, axes = plt.subplots(1, len(combos), figsize=(6 * len(combos), 4.5), squeeze=False)
        for ax, (factor, rate) in zip(axes[0], combos):
            sel = [r for r in rows if (r["factor"], r["rate"]) == (factor, rate)]
            for m in dict.fromkeys(r["method"] for r in sel):
                pts = sorted((r["ranks"], r["step_time_s"]) for r in sel if r["method"] == m)
                ax.plot([p[0] for p in pts], [1000 * p[1] for p in pts], marker="o", label=m)
            comp = sorted({(r["ranks"], r["compute_only_step_time_s"]) for r in sel if r["compute_only_step_time_s"]})
            if comp:
                ax.plot([c[0] for c in comp], [1000 * c[1] for c in comp], "k--", marker="x", label="compute only")
            ax.set_xscale("log", base=2)
            ticks = sorted({r["ranks"] for r in sel})
            ax.set_xticks(ticks, [str(t) for t in ticks])
            ax.set_yscale("log")
            ax.set_xlabel("ranks (emulated Pi 3B+ nodes)")
            ax.set_ylabel("time per step (ms)")
            ax.set_title(f"{factor:g}x throttle, {rate} per link")
            ax.grid(True, which="both", alpha=0.3)
            ax.legend(fontsize=8)
        fig.tight_layout()
        fig.savefig(out / "step_time_vs_ranks.png", dpi=110)
        plt.close(fig)
        made.append("step_time_vs_ranks.png")
    curves = [r for r in rows if len(r.get("accuracy_curve") or []) >= 2]
    if curves:
        fig, ax = plt.subplots(figsize=(7, 4.5))
        for r in curves:
            ax.plot([s * r["step_time_s"] for s, _ in r["accuracy_curve"]], [a for _, a in r["accuracy_curve"]],
                    marker=".", label=f"{r['method']} {r['ranks']}r {r['factor']:g}x {r['rate']}")
        ax.set_xlabel("training time (s; steps x measured step time)")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7)
        fig.tight_layout()
        fig.savefig(out / "accuracy_vs_time.png", dpi=110)
        plt.close(fig)
        made.append("accuracy_vs_time.png")
    return made


# ---------------------------------------------------------------- main


def _on_signal(signum, _frame):
    # SystemExit unwinds through every `with` block: cgroups and namespaces are removed on the way out
    raise SystemExit(128 + signum)


def _commit() -> str:
    try:
        return subprocess.run(["git", "-C", str(REPO), "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", default=str(DEFAULT_OUT))
    p.add_argument("--methods", default=",".join(DEFAULT_METHODS),
                   help=f"comma list from the method table ({', '.join(METHODS)}); 'issue' = {','.join(ISSUE_METHODS)}")
    p.add_argument("--methods-json", default=None,
                   help='JSON object {"name": ["--train", "flags", ...]} added to (or overriding) the table')
    p.add_argument("--ranks", default="4,8", help="comma list of rank counts (1..32)")
    p.add_argument("--factors", default="10",
                   help="comma list of slowdown factors: each rank gets 1/factor of one x86 core (docs/TESTBED.md)")
    p.add_argument("--rates", default="100mbit", help="comma list of per-link rates, e.g. 100mbit,300mbit")
    p.add_argument("--steps", type=int, default=12, help="training steps per timing run")
    p.add_argument("--timing-warmup", type=int, default=3, help="first steps not timed")
    p.add_argument("--compute-steps", type=int, default=8, help="steps of the compute-only baseline (2 not timed)")
    p.add_argument("--hidden", type=int, default=1024)
    p.add_argument("--batch-size", type=int, default=32)
    p.add_argument("--lr", type=float, default=0.002)
    p.add_argument("--momentum", type=float, default=0.9)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--eval-subset", type=int, default=0,
                   help="test images per evaluation (default: 1000 in timing runs, all 10,000 in accuracy runs)")
    p.add_argument("--eval-every", type=int, default=0,
                   help="accuracy mode: train --epochs with an evaluation every N steps; reports time to reach "
                        "fp32's final accuracy")
    p.add_argument("--eval-last", type=int, default=0)
    p.add_argument("--epochs", type=float, default=1.0)
    p.add_argument("--train-subset", type=int, default=0)
    p.add_argument("--max-steps", type=int, default=0)
    p.add_argument("--memory-limit-mib", type=int, default=1024, help="per-rank memory cap (a Pi 3B+ has 1 GB)")
    p.add_argument("--other-cores", type=int, default=PI_OTHER_CORES,
                   help="cores of the emulated node besides the training thread's, for every other thread of the "
                        "rank (a Pi 3B+ has 4 in all); 0: every thread shares the one core")
    p.add_argument("--rank-memory-mib", type=int, default=650,
                   help="expected private memory of one training rank, for the machine-memory check (measured: "
                        "~620 MiB cgroup peak for the paper CNN with hidden 1024, docs/TESTBED.md)")
    p.add_argument("--run-timeout", type=float, default=900.0, help="seconds per run, start-up included")
    p.add_argument("--no-compute-only", action="store_true")
    p.add_argument("--check-throttle", action="store_true",
                   help="also time compute_only.py as one rank at 1x (a whole core) and at each factor: the "
                        "measured slowdown should be the factor")
    p.add_argument("--allow-oversubscribed", action="store_true",
                   help="run configurations whose quotas add up to more than the available cores (flagged)")
    p.add_argument("--quick", action="store_true",
                   help="CI smoke run: 2 ranks, 10x, 100mbit, allreduce-fp32 and adlcodec-1bit, 6 steps on 2,048 "
                        "images with an evaluation (500 test images) every 2")
    args = p.parse_args(argv)
    if args.quick:
        args.ranks, args.factors, args.rates, args.methods = "2", "10", "100mbit", "allreduce-fp32,adlcodec-1bit"
        args.steps, args.timing_warmup, args.compute_steps = 6, 2, 5
        # accuracy mode in miniature, so that the smoke run also covers the accuracy curve and time-to-accuracy
        args.eval_every, args.max_steps, args.train_subset, args.eval_subset = 2, 6, 2048, 500
    args.memory_limit = args.memory_limit_mib * MIB
    return p, args


def main(argv=None) -> int:
    p, args = parse_args(argv)
    methods = dict(METHODS)
    if args.methods_json:
        methods.update(json.loads(Path(args.methods_json).read_text()))
    names = ISSUE_METHODS if args.methods == "issue" else [m for m in args.methods.split(",") if m]
    rank_counts = [int(x) for x in args.ranks.split(",")]
    factors = [float(x) for x in args.factors.split(",")]
    rates = [r for r in args.rates.split(",") if r]
    if any(not 1 <= n <= 32 for n in rank_counts):
        p.error("rank counts must be 1..32")
    if any(f < 1 for f in factors):
        p.error("factors must be >= 1 (1 = one whole x86 core per rank)")
    for r in rates:
        _mbit(r)
    try:
        check_methods(names, methods)
        capacity = check_capacity([(n, f) for n in rank_counts for f in factors], available_cores(),
                                  args.allow_oversubscribed, args.other_cores)
        memory = check_memory(rank_counts, args.rank_memory_mib * MIB, memory_available(), args.allow_oversubscribed)
    except (ValueError, OverSubscribed) as exc:
        print(f"testbed: {exc}", file=sys.stderr)
        return 2
    for c in capacity:
        if c["helpers_may_oversubscribe"]:
            print(f"testbed: warning: {c['ranks']} ranks at {c['factor']:g}x with --other-cores {args.other_cores} "
                  f"promise {c['cores_needed_helpers_busy']:.2f} cores when every helper thread is busy, "
                  f"{c['cores']} available: their rows are flagged", file=sys.stderr)
    if os.geteuid() != 0:
        p.error("needs root (ip netns, tc, cgroups)")
    out = Path(args.out)
    run_dir = out / "runs"
    run_dir.mkdir(parents=True, exist_ok=True)
    signal.signal(signal.SIGTERM, _on_signal)
    signal.signal(signal.SIGINT, _on_signal)
    prefix = f"adltb{os.getpid() % 100000}"
    results = dict(commit=_commit(), started_utc=time.strftime("%Y-%m-%d %H:%M", time.gmtime()), hidden=args.hidden,
                   batch_size=args.batch_size, steps=args.steps, timing_warmup=args.timing_warmup,
                   eval_every=args.eval_every, memory_limit=args.memory_limit, other_cores=args.other_cores,
                   cores=available_cores(), methods={m: methods[m] for m in names}, capacity=capacity,
                   memory_check=memory, compute_only=[], runs=[], errors=[])
    cap = {(c["ranks"], c["factor"]): c for c in capacity}
    t_start = time.time()

    def log(msg):
        print(f"[{time.time() - t_start:6.0f}s] {msg}", flush=True)

    def save(final: bool) -> None:
        # after every run, so that a sweep stopped part-way (SIGTERM, a crash) keeps what it measured
        add_time_to_fp32(results["runs"])
        results["wall_s"] = time.time() - t_start
        results["complete"] = final
        (out / "results.json").write_text(json.dumps(results, indent=2))
        write_markdown(results, out / "results.md")

    try:
        if args.check_throttle:
            results["throttle_check"] = check_throttle(factors, args, run_dir, log)
        compute: dict[tuple[int, float], dict | None] = {}
        for n in rank_counts:
            for f in factors:
                compute[(n, f)] = None
                if args.no_compute_only:
                    continue
                log(f"compute-only, {n} ranks at {f:g}x")
                try:
                    compute[(n, f)] = c = run_compute_only(n, f, args, run_dir)
                    results["compute_only"].append(dict(ranks=n, factor=f, **c))
                    log(f"  {1000 * c['step_time_s']:.0f} ms/step")
                except TestbedError as exc:
                    results["errors"].append(f"compute-only {n} ranks {f:g}x: {exc}")
                    log(f"  FAILED: {exc}")
        for rate in rates:
            for n in rank_counts:
                with Cluster(prefix, n, rate) as cluster:
                    for f in factors:
                        for m in names:
                            log(f"{m}, {n} ranks, {f:g}x, {rate}")
                            try:
                                o = run_training(cluster, m, methods, f, args, run_dir)
                            except (TestbedError, json.JSONDecodeError, FileNotFoundError) as exc:
                                results["errors"].append(f"{m} {n} ranks {f:g}x {rate}: {exc}")
                                results["runs"].append(dict(method=m, ranks=n, factor=f, rate=rate, status="failed",
                                                            error=str(exc), compute_only_step_time_s=None if
                                                            compute[(n, f)] is None else
                                                            compute[(n, f)]["step_time_s"]))
                                log(f"  FAILED: {exc}")
                                save(final=False)
                                continue
                            row = summarize(m, n, f, rate, o, compute[(n, f)], cap[(n, f)], args.memory_limit)
                            results["runs"].append(row)
                            save(final=False)
                            log(f"  {1000 * row['step_time_s']:.0f} ms/step, wire "
                                f"{(row['wire_bytes_per_rank_step'] or 0) / 1e6:.3f} MB/rank/step, peak RSS "
                                f"{max(row['peak_rss_bytes_per_rank']) / MIB:.0f} MiB")
    finally:
        for cg in list(_live_cgroups):
            cg.destroy()
    save(final=True)
    plots = plot(results, out)
    print((out / "results.md").read_text())
    print(f"wrote {out}/results.json, results.md{''.join(', ' + x for x in plots)} in {results['wall_s']:.0f} s")
    return 1 if results["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
