"""DDP communication hook that exchanges adlcodec (AdaComp) payloads.

Usage::

    from adlcodec.ddp import AdaCompState, adacomp_hook
    state = AdaCompState(process_group=None, bin_size=None, bits=1, start_iter=2)
    ddp_model.register_comm_hook(state, adacomp_hook)
    ...
    state.stats()  # cumulative bytes / timings

Structure follows PyTorch's ``powerSGD_hook``: a picklable state object keyed by
bucket index plus a stateless hook function.

Design decisions (documented here because they are part of the contract):

* **Per-tensor compression.** Every gradient in a bucket is compressed on its
  own, with its own residual, so the bin size can follow the layer kind.  With
  ``bin_size=None`` convolution kernels (ndim >= 3) use 50 and fully connected /
  recurrent weights (ndim == 2) use 500, the values of the AdaComp paper.
* **Small tensors go dense.** Tensors with ``ndim <= 1`` (biases, norm scales
  and shifts) or fewer elements than one bin are sent as raw float32.  They are
  a tiny share of the bytes, and sparsifying a BatchNorm scale makes training
  unstable, so there is nothing to win.  They have no residual.
* **All-gather, rank-ordered sum.** Each rank sends one message per bucket; the
  sizes are all-gathered first (never an empty collective: a message always has
  a header), then the padded messages.  Every rank decodes all messages and
  sums them *in rank order* (its own payload is decoded too, not taken from the
  raw gradient), then divides by world size.  Hence every rank computes the
  bit-identical bucket and replicas cannot drift.
* **Synchronous.** The collectives run inside the hook and a completed future
  is returned.  Chaining callbacks that wait on further collectives can
  deadlock gloo's worker threads (as ``powerSGD_hook`` does with 3+ buckets).
* **Warm-up.** Before ``start_iter`` the hook does a plain allreduce (DDP
  rebuilds its buckets after the first iteration, so residuals allocated then
  would be thrown away).  Residuals are re-created when a bucket's layout
  changes.
* **Configuration agreement.** On its first call the hook all-gathers a
  fingerprint (format version, bits, bin sizes, start_iter, policy, iteration)
  and every message repeats format version, bits, bin sizes and bucket layout.
  Any disagreement raises :class:`AdaCompConfigError` on *every* rank.
* **Bandwidth budget.** With ``link_mbps`` and ``max_comm_ms`` the hook adjusts bin size and bits per layer
  every ``budget_interval`` steps so a step's exchange fits the deadline (:mod:`adlcodec.budget`).  The
  controller reads only figures every rank holds identically: payload sizes and selected counts from the
  all-gathered messages, and each rank's measured exchange time of the previous step, which it repeats in
  its next message.  So all ranks choose the same plan, and the plan's digest is checked in every message.
* **Exchange time.** Each bucket first all-gathers the message sizes, which also waits for the slowest rank
  to finish its backward pass (``sync_s``), then the messages themselves (``exchange_s``).  The deadline is
  about ``exchange_s``: no codec setting can shorten the wait for another rank's computation.
* **Non-finite gradients.** Each rank checks its bucket before compressing and
  flags it in its message, so all ranks learn the same fact at the same time.
  Residuals are only committed after the exchange, and never when any rank
  flagged.  With ``on_nonfinite="skip"`` (default) every rank gets an all-zero
  bucket, residuals stay as they were and ``state.last_step_nonfinite`` is true
  until the next iteration starts, so the training loop can skip
  ``optimizer.step()``.  With ``on_nonfinite="raise"`` every rank raises
  :class:`NonFiniteGradientError` from ``backward()``.  During warm-up a
  non-finite value simply propagates through the allreduce, as with plain DDP.
"""

from __future__ import annotations

import hashlib
import logging
import struct
import time
from typing import Any

import numpy as np

from . import FORMAT_VERSION, compress, decompress, inspect
from .budget import BandwidthBudget

try:  # torch is an optional dependency of the package
    import torch
    import torch.distributed as dist
except ImportError:  # pragma: no cover - exercised only without torch
    torch = None
    dist = None

logger = logging.getLogger(__name__)

__all__ = [
    "AdaCompState",
    "adacomp_hook",
    "AdaCompConfigError",
    "NonFiniteGradientError",
    "DEFAULT_CONV_BIN",
    "DEFAULT_FC_BIN",
]

DEFAULT_CONV_BIN = 50
DEFAULT_FC_BIN = 500

_MAGIC = b"ADLX"
# magic, codec format version, bits, flags, conv bin, fc bin, bucket index, tensor count, layout digest
# (covers every tensor's bin size and bits), and the sender's exchange time of an earlier step: its
# iteration (or -1) and microseconds
_HEADER = struct.Struct("<4sHBBIIIIQqI")
_FLAG_NONFINITE = 1
_PARKED = -1  # residuals key for parameters whose new bucket has not been seen yet
_POLICIES = ("skip", "raise")
_EXCHANGE_LOG_LIMIT = 100_000
_TRANSPORTS = ("torch", "mpi")


class AdaCompConfigError(ValueError):
    """Ranks disagree on codec configuration or bucket layout."""


class NonFiniteGradientError(ValueError):
    """A rank produced a non-finite gradient and ``on_nonfinite='raise'``."""


def _layout_digest(layout) -> int:
    return int.from_bytes(hashlib.blake2b(repr(layout).encode(), digest_size=8).digest(), "little")


class AdaCompState:
    """State of :func:`adacomp_hook`: configuration, residuals and statistics.

    Args:
        process_group: torch process group (``None`` = default group).
        bin_size: int for every compressed tensor, or ``None`` to choose by layer
            kind (``DEFAULT_CONV_BIN`` for conv kernels, ``DEFAULT_FC_BIN`` for
            matrices).
        bits: codec quantisation bits, passed to :func:`adlcodec.compress`.
        start_iter: iterations of plain allreduce before compression starts.
        transport: ``"torch"`` (torch.distributed all_gather) or ``"mpi"``
            (mpi4py ``Allgatherv``; ranks started by ``mpirun``).
        on_nonfinite: ``"skip"`` or ``"raise"`` (see module docstring).
        mpi_comm: communicator for ``transport="mpi"`` (default COMM_WORLD).
        link_mbps: each rank's link rate in Mbit/s; with ``max_comm_ms`` it turns on the bandwidth budget.
        max_comm_ms: deadline for one step's exchange in milliseconds.
        budget_interval: compressed steps between budget decisions.
        budget_options: further :class:`adlcodec.budget.BandwidthBudget` keywords (``margin``,
            ``conv_floor``, ``fc_floor``, ``feedback``, ``first_window``, ``relax_after``).
    """

    __slots__ = [
        "process_group",
        "mpi_comm",
        "bin_size",
        "bits",
        "start_iter",
        "transport",
        "on_nonfinite",
        "iter",
        "residuals",
        "_totals",
        "_config_checked",
        "_nonfinite_this_iter",
        "_iter_open",
        "_param_ordinals",
        "_spare",
        "link_mbps",
        "max_comm_ms",
        "budget_interval",
        "budget_options",
        "budget",
        "_exchange_s_this_iter",
        "_last_exchange",
        "exchange_log",
        "_last_pressure",
    ]

    def __init__(
        self,
        process_group=None,
        bin_size: int | None = None,
        bits: int = 1,
        start_iter: int = 2,
        transport: str = "torch",
        on_nonfinite: str = "skip",
        mpi_comm=None,
        link_mbps: float | None = None,
        max_comm_ms: float | None = None,
        budget_interval: int = 10,
        budget_options: dict | None = None,
    ):
        if torch is None:
            raise ImportError("adlcodec.ddp needs torch: pip install 'adlcodec[torch]'")
        if bin_size is not None:
            if isinstance(bin_size, bool) or not isinstance(bin_size, (int, np.integer)):
                raise TypeError(f"bin_size must be an int or None, got {type(bin_size).__name__}")
            if bin_size < 1:
                raise ValueError(f"bin_size must be >= 1, got {bin_size}")
            bin_size = int(bin_size)
        if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
            raise TypeError(f"bits must be an int, got {type(bits).__name__}")
        if isinstance(start_iter, bool) or not isinstance(start_iter, (int, np.integer)):
            raise TypeError(f"start_iter must be an int, got {type(start_iter).__name__}")
        if start_iter < 1:
            # DDP rebuilds buckets after iteration 0; compressing then would
            # allocate residuals for a layout about to disappear.
            raise ValueError(f"start_iter must be >= 1, got {start_iter}")
        if transport not in _TRANSPORTS:
            raise ValueError(f"transport must be one of {_TRANSPORTS}, got {transport!r}")
        if on_nonfinite not in _POLICIES:
            raise ValueError(f"on_nonfinite must be one of {_POLICIES}, got {on_nonfinite!r}")
        # Let the codec itself reject an unsupported bits / bin_size now rather
        # than in the middle of a backward pass.
        probe_bin = bin_size or DEFAULT_CONV_BIN
        compress(np.ones(probe_bin, np.float32), np.zeros(probe_bin, np.float32), bin_size=probe_bin, bits=int(bits))
        if (link_mbps is None) != (max_comm_ms is None):
            raise ValueError("link_mbps and max_comm_ms go together: give both for a bandwidth budget, or neither")
        budget_options = dict(budget_options or {})
        if link_mbps is not None:
            # validates every argument now, not in the middle of a backward pass
            BandwidthBudget(link_mbps, max_comm_ms, 2, interval=budget_interval, **budget_options)
        if transport == "mpi" and mpi_comm is None:
            from mpi4py import MPI

            mpi_comm = MPI.COMM_WORLD
        self.process_group = process_group
        self.mpi_comm = mpi_comm
        self.bin_size = bin_size
        self.bits = int(bits)
        self.start_iter = int(start_iter)
        self.transport = transport
        self.on_nonfinite = on_nonfinite
        self.iter = 0
        # bucket index -> (layout, [residual ndarray or None per tensor])
        self.residuals: dict[int, tuple[tuple, list]] = {}
        self._totals = dict(
            steps=0, compressed_steps=0, nonfinite_steps=0, dense_bytes=0, payload_bytes=0,
            compressed_dense_bytes=0, compressed_payload_bytes=0,
            warmup_s=0.0, encode_s=0.0, comm_s=0.0, sync_s=0.0, exchange_s=0.0, decode_s=0.0,
        )
        self.link_mbps = None if link_mbps is None else float(link_mbps)
        self.max_comm_ms = None if max_comm_ms is None else float(max_comm_ms)
        self.budget_interval = int(budget_interval)
        self.budget_options = budget_options
        self.budget: BandwidthBudget | None = None  # created at the first compressed step, when the world is known
        self._exchange_s_this_iter = 0.0
        self._last_exchange = (-1, 0)  # (iteration, microseconds) of this rank's latest complete exchange
        # (iteration, slowest rank's exchange ms, budget pressure or None), learnt one step later from the messages
        self.exchange_log: list[tuple[int, float, float | None]] = []
        self._last_pressure: float | None = None
        self._config_checked = False
        self._nonfinite_this_iter = False
        self._iter_open = False
        self._param_ordinals: dict[int, tuple[int, Any]] = {}
        # parameter ordinal -> spare residual buffer the next trial encode writes into (double buffering)
        self._spare: dict[int, np.ndarray] = {}

    # -- pickling (checkpoints), as PowerSGDState does -------------------------
    def __getstate__(self):
        logger.info("adlcodec: process group / MPI communicator are not pickled")
        return {s: getattr(self, s) for s in self.__slots__ if s not in ("process_group", "mpi_comm", "_param_ordinals", "_spare")}

    def __setstate__(self, state):
        self.process_group = None  # the default group of the restoring job
        self.mpi_comm = None
        for slot, value in state.items():
            setattr(self, slot, value)
        for slot, default in (("link_mbps", None), ("max_comm_ms", None), ("budget_interval", 10),
                              ("budget_options", {}), ("budget", None), ("_exchange_s_this_iter", 0.0),
                              ("_last_exchange", (-1, 0)), ("exchange_log", []),
                              ("_last_pressure", None)):
            if slot not in state:  # a checkpoint written before the bandwidth budget existed
                setattr(self, slot, default)
        self._totals.setdefault("sync_s", 0.0)
        self._totals.setdefault("exchange_s", 0.0)
        # the new job's ranks must prove again that they agree
        self._config_checked = False
        self._param_ordinals = {}
        self._spare = {}
        if self.transport == "mpi":
            from mpi4py import MPI

            self.mpi_comm = MPI.COMM_WORLD

    # -- public helpers ---------------------------------------------------------
    def bin_for(self, shape) -> int | None:
        """Configured bin size for a gradient of ``shape``; ``None`` means sent dense.

        With a bandwidth budget this is the finest bin the controller uses for that layer."""
        ndim = len(shape)
        numel = int(np.prod(shape)) if ndim else 1
        if ndim <= 1:
            return None
        size = self.bin_size if self.bin_size is not None else (DEFAULT_CONV_BIN if ndim >= 3 else DEFAULT_FC_BIN)
        return None if numel < size else size

    @property
    def last_step_nonfinite(self) -> bool:
        """True if some rank had a non-finite gradient in the latest iteration."""
        return self._nonfinite_this_iter

    def stats(self) -> dict[str, Any]:
        """Cumulative statistics of this rank.

        ``dense_bytes`` is what fp32 allreduce would have carried as input,
        ``payload_bytes`` the size of this rank's messages (warm-up iterations
        count the dense size for both), ``ratio`` their quotient.  The
        ``compressed_*`` counters and ``compressed_ratio`` cover only the
        iterations after warm-up, i.e. the steady state.  Seconds spent in the
        hook: ``warmup_s`` (plain allreduce before ``start_iter``), and for
        compressed iterations ``encode_s`` (finite check, layout, encode,
        message assembly), ``comm_s`` (the all-gathers) and ``decode_s``
        (decode, rank-ordered sum, residual commit); ``comm_s`` is ``sync_s`` (the
        size all-gather, which waits for the slowest rank) plus ``exchange_s`` (the
        messages themselves).  ``exchange_log`` lists, per compressed iteration, the
        largest exchange time of any rank in milliseconds (every rank reports its own
        in its next message, so the log ends one iteration early) and the budget
        pressure then in force.  With a bandwidth budget, ``budget`` holds the
        controller's report: the current plan per layer, pressure, predicted and
        measured exchange milliseconds, and the history of its decisions.
        """
        s = dict(self._totals)
        s["ratio"] = s["dense_bytes"] / s["payload_bytes"] if s["payload_bytes"] else float("nan")
        s["compressed_ratio"] = (
            s["compressed_dense_bytes"] / s["compressed_payload_bytes"] if s["compressed_payload_bytes"] else float("nan")
        )
        s["exchange_log"] = list(self.exchange_log)
        if self.link_mbps is not None:
            s["budget"] = self.budget.report() if self.budget is not None else dict(
                link_mbps=self.link_mbps, max_comm_ms=self.max_comm_ms, decisions=0, plan=[], history=[])
        return s

    # -- internals --------------------------------------------------------------
    def _world(self) -> tuple[int, int]:
        if self.transport == "mpi":
            return self.mpi_comm.Get_rank(), self.mpi_comm.Get_size()
        return dist.get_rank(self.process_group), dist.get_world_size(self.process_group)

    def _fingerprint(self) -> list[int]:
        return [
            FORMAT_VERSION, self.bits, self.bin_size or 0, DEFAULT_CONV_BIN if self.bin_size is None else 0,
            DEFAULT_FC_BIN if self.bin_size is None else 0, self.start_iter, _POLICIES.index(self.on_nonfinite),
            self.iter, _TRANSPORTS.index(self.transport),
            -1 if self.link_mbps is None else round(self.link_mbps * 1000),
            -1 if self.max_comm_ms is None else round(self.max_comm_ms * 1000),
            self.budget_interval, _layout_digest(sorted(self.budget_options.items())) & 0x7FFFFFFFFFFFFFFF,
        ]

    def _bins_header(self) -> tuple[int, int]:
        if self.bin_size is None:
            return DEFAULT_CONV_BIN, DEFAULT_FC_BIN
        return self.bin_size, self.bin_size


_FINGERPRINT_NAMES = (
    "format_version", "bits", "bin_size", "conv_bin", "fc_bin", "start_iter", "on_nonfinite", "iter", "transport",
    "link_kbps", "max_comm_us", "budget_interval", "budget_options",
)


def _allgather_bytes(state: AdaCompState, message: np.ndarray) -> tuple[list[np.ndarray], float]:
    """All-gather variable-length uint8 messages; returns them in rank order, and the
    ``perf_counter`` time at which the sizes were known (every rank had arrived)."""
    if state.transport == "mpi":
        from mpi4py import MPI

        comm = state.mpi_comm
        sizes = np.zeros(comm.Get_size(), np.int64)
        comm.Allgather(np.array([message.size], np.int64), sizes)
        synced = time.perf_counter()
        displs = np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)
        recv = np.empty(int(sizes.sum()), np.uint8)
        comm.Allgatherv(message, [recv, sizes, displs, MPI.BYTE])
        return [recv[d : d + n] for d, n in zip(displs, sizes)], synced
    group = state.process_group
    world = dist.get_world_size(group)
    size = torch.tensor([message.size], dtype=torch.int64)
    sizes = [torch.zeros(1, dtype=torch.int64) for _ in range(world)]
    dist.all_gather(sizes, size, group=group)
    sizes = [int(s.item()) for s in sizes]
    synced = time.perf_counter()
    longest = max(sizes)  # > 0: every message carries a header
    padded = torch.zeros(longest, dtype=torch.uint8)
    padded[: message.size] = torch.from_numpy(message)
    received = [torch.empty(longest, dtype=torch.uint8) for _ in range(world)]
    dist.all_gather(received, padded, group=group)
    return [r.numpy()[:n] for r, n in zip(received, sizes)], synced


def _check_config(state: AdaCompState) -> None:
    mine = np.array(state._fingerprint(), np.int64)
    if state.transport == "mpi":
        everyone = state.mpi_comm.allgather(mine.tolist())
    else:
        t = torch.from_numpy(mine)
        out = [torch.zeros_like(t) for _ in range(dist.get_world_size(state.process_group))]
        dist.all_gather(out, t, group=state.process_group)
        everyone = [o.tolist() for o in out]
    bad = [
        f"{name}: " + ", ".join(f"rank {r}={fp[i]}" for r, fp in enumerate(everyone))
        for i, name in enumerate(_FINGERPRINT_NAMES)
        if len({fp[i] for fp in everyone}) > 1
    ]
    if bad:
        raise AdaCompConfigError("adlcodec ranks disagree on configuration: " + "; ".join(bad))
    state._config_checked = True


def _finish(result: "torch.Tensor") -> "torch.futures.Future":
    fut = torch.futures.Future()
    fut.set_result(result)
    return fut


def _ordinals(state: AdaCompState, bucket) -> list[int]:
    """Stable per-parameter numbers, independent of DDP's current bucket layout.

    A parameter is numbered when the hook first sees it.  A fresh DDP model's
    first iteration always uses the initial, deterministic bucket layout
    (derived from parameter order, not from timing), so the numbers are the
    same on every rank and in a job resumed from a checkpoint: residuals can
    follow their parameter when DDP rebuilds its buckets after iteration 0.
    """
    table = state._param_ordinals
    out = []
    for p in bucket.parameters():
        key = id(p)
        if key not in table:
            table[key] = (len(table), p)  # keep p alive so its id is never reused
        out.append(table[key][0])
    return out


def _residuals_for(state: AdaCompState, index: int, layout) -> list:
    """Residuals of bucket ``index``; re-created when the layout changed.

    Re-creating keeps the residual of every parameter that was already known
    (in whichever bucket it lived) and starts new ones at zero, so a bucket
    rebuild or a resume does not throw accumulated error away.
    """
    entry = state.residuals.get(index)
    if entry is not None and entry[0] == layout:
        return entry[1]
    pool = {}
    for lay, res in state.residuals.values():
        for (ordinal, shape, _), r in zip(lay, res):
            if r is not None:
                pool[ordinal] = (shape, r)
    fresh = []
    for ordinal, shape, bin_size in layout:
        if bin_size is None:
            fresh.append(None)
            continue
        old = pool.get(ordinal)
        fresh.append(old[1] if old is not None and old[0] == shape else np.zeros(int(np.prod(shape)), np.float32))
    taken = {o for o, _, b in layout if b is not None}
    # A residual must never live in two buckets, and one whose parameter moved
    # to a bucket not seen yet this iteration is parked under key -1 until then.
    parked_lay, parked_res = [], []
    for other in list(state.residuals):
        lay, res = state.residuals.pop(other)
        kept = [(l, r) for l, r in zip(lay, res) if l[0] not in taken]
        if other == index or other == _PARKED:
            parked_lay += [l for l, _ in kept]
            parked_res += [r for _, r in kept]
        else:
            state.residuals[other] = (tuple(l for l, _ in kept), [r for _, r in kept])
    if parked_lay:
        state.residuals[_PARKED] = (tuple(parked_lay), parked_res)
    state.residuals[index] = (layout, fresh)
    return fresh


def _grad_slots(bucket, buffer):
    """(offset, shape) of each gradient inside the flat bucket buffer."""
    base = buffer.storage_offset()
    slots = []
    for g in bucket.gradients():
        off = g.storage_offset() - base
        if not g.is_contiguous() or off < 0 or off + g.numel() > buffer.numel():
            raise RuntimeError("adlcodec: unexpected DDP bucket layout (gradient is not a contiguous view)")
        slots.append((off, tuple(g.shape)))
    return slots


def adacomp_hook(state: AdaCompState, bucket) -> "torch.futures.Future[torch.Tensor]":
    """DDP communication hook: AdaComp-compressed, rank-ordered all-gather average."""
    if not state._iter_open:
        state._iter_open = True
        state._nonfinite_this_iter = False
    if not state._config_checked:
        _check_config(state)
    _ordinals(state, bucket)  # number parameters while DDP still uses its initial layout
    buffer = bucket.buffer()
    if buffer.dtype != torch.float32 or buffer.device.type != "cpu":
        raise TypeError(f"adacomp_hook needs float32 CPU gradients, got {buffer.dtype} on {buffer.device}")
    rank, world = state._world()
    totals = state._totals
    numel = buffer.numel()
    try:
        if state.iter < state.start_iter:
            t0 = time.perf_counter()
            dist.all_reduce(buffer, group=state.process_group)  # in place, as DDP's default hook
            buffer.div_(world)
            totals["warmup_s"] += time.perf_counter() - t0
            totals["dense_bytes"] += 4 * numel
            totals["payload_bytes"] += 4 * numel
            return _finish(buffer)
        return _finish(_compressed_exchange(state, bucket, buffer, rank, world))
    finally:
        if bucket.is_last():
            if state.iter >= state.start_iter and not state._nonfinite_this_iter:
                state._last_exchange = (state.iter, round(state._exchange_s_this_iter * 1e6))
                state._last_pressure = None if state.budget is None else state.budget.pressure
                if state.budget is not None and state.budget.step_bytes > 0:
                    state.budget.end_step(state.iter)
            state._exchange_s_this_iter = 0.0
            state.iter += 1
            totals["steps"] += 1
            state._iter_open = False


def _settings(state, layout, world) -> list:
    """(bin size, bits) of every tensor of a bucket this step; ``None`` for a dense one."""
    if state.link_mbps is None:
        return [None if base is None else (base, state.bits) for _, _, base in layout]
    if state.budget is None:
        state.budget = BandwidthBudget(state.link_mbps, state.max_comm_ms, world, interval=state.budget_interval,
                                       **state.budget_options)
    out = []
    for ordinal, shape, base in layout:
        if base is None:
            out.append(None)
            continue
        numel = int(np.prod(shape))
        # payload header: 24 fixed bytes, 8 per dimension, 4 of CRC (docs/FORMAT.md section 2)
        state.budget.register(ordinal, numel, len(shape), base, state.bits, 28 + 8 * len(shape))
        out.append(state.budget.setting(ordinal))
    return out


def _log_exchange(state, headers) -> None:
    reported = {h[9] for h in headers}
    if len(reported) != 1 or -1 in reported:
        return  # not every rank has measured the same earlier iteration
    iteration = reported.pop()
    if state.exchange_log and state.exchange_log[-1][0] >= iteration:
        return  # already logged from an earlier bucket of this iteration
    slowest_ms = max(h[10] for h in headers) / 1000.0
    state.exchange_log.append((iteration, slowest_ms, state._last_pressure))
    del state.exchange_log[:-_EXCHANGE_LOG_LIMIT]
    if state.budget is not None:
        state.budget.observe_exchange(iteration, slowest_ms)


def _parts(message: np.ndarray, header) -> list[np.ndarray]:
    """One rank's message cut into its tensors' parts, in layout order."""
    count = header[7]
    lens = struct.unpack_from(f"<{count}I", message, _HEADER.size)
    pos = _HEADER.size + 4 * count
    parts = []
    for n in lens:
        parts.append(message[pos : pos + n])
        pos += n
    return parts


def _observe(state, index, layout, settings, messages, headers) -> None:
    """Feed the budget what every rank knows alike: all ranks' sizes and selected counts."""
    figures = {i: [0.0, 0.0] for i, s in enumerate(settings) if s is not None}
    total = 0.0
    for m, h in zip(messages, headers):
        total += m.size
        for i, chunk in enumerate(_parts(m, h)):
            if i in figures:
                figures[i][0] += inspect(chunk)["selected"]
                figures[i][1] += chunk.size
    world = len(messages)
    compressed = sum(nbytes for _, nbytes in figures.values())
    state.budget.observe_bucket(
        index, (total - compressed) / world,
        [(layout[i][0], settings[i][0], settings[i][1], sel / world, nbytes / world)
         for i, (sel, nbytes) in figures.items()],
        total / world,
    )


def _compressed_exchange(state, bucket, buffer, rank, world):
    totals = state._totals
    t0 = time.perf_counter()
    slots = _grad_slots(bucket, buffer)
    ordinals = _ordinals(state, bucket)
    layout = tuple((o, shape, state.bin_for(shape)) for o, (_, shape) in zip(ordinals, slots))
    settings = _settings(state, layout, world)
    digest = _layout_digest((layout, settings))
    index = bucket.index()
    residuals = _residuals_for(state, index, layout)
    flat = buffer.detach().numpy()
    conv_bin, fc_bin = state._bins_header()
    parts: list[np.ndarray] = []
    trials: list[np.ndarray | None] = []
    finite = True
    for (off, shape), (ordinal, _, _), setting, res in zip(slots, layout, settings, residuals):
        grad = flat[off : off + int(np.prod(shape))]
        if setting is None:
            if not np.isfinite(grad).all():
                finite = False
                break
            parts.append(grad.view(np.uint8))
            trials.append(None)
            continue
        # The updated residual goes to a spare buffer: it is committed (swapped in) only once we know
        # no rank had a non-finite gradient. The spare is reused across iterations, and the codec
        # writes it directly (residual_out), so the residual is never copied.
        trial = state._spare.get(ordinal)
        if trial is None or trial.shape != res.shape:
            trial = np.empty_like(res)
        try:
            # the codec's fused finite check rejects NaN/Inf in grad or residual (and overflow) before writing
            parts.append(compress(grad, res, bin_size=setting[0], bits=setting[1], residual_out=trial))
        except ValueError:
            finite = False
            break
        trials.append(trial)
    if not finite:
        parts, trials = [], []
    header = _HEADER.pack(
        _MAGIC, FORMAT_VERSION, state.bits, 0 if finite else _FLAG_NONFINITE, conv_bin, fc_bin, index,
        len(parts), digest, *state._last_exchange,
    )
    lengths = struct.pack(f"<{len(parts)}I", *(p.size for p in parts))
    message = np.concatenate([np.frombuffer(header + lengths, np.uint8), *parts])
    t1 = time.perf_counter()
    messages, synced = _allgather_bytes(state, message)
    t2 = time.perf_counter()
    totals["sync_s"] += synced - t1
    totals["exchange_s"] += t2 - synced
    state._exchange_s_this_iter += t2 - synced

    headers = [_HEADER.unpack_from(m, 0) for m in messages]
    _check_headers(headers, rank)
    nonfinite_ranks = [r for r, h in enumerate(headers) if h[3] & _FLAG_NONFINITE]
    totals["dense_bytes"] += 4 * buffer.numel()
    totals["payload_bytes"] += message.size
    totals["compressed_dense_bytes"] += 4 * buffer.numel()
    totals["compressed_payload_bytes"] += message.size
    if nonfinite_ranks:
        totals["nonfinite_steps"] += 1
        state._nonfinite_this_iter = True
        totals["encode_s"] += t1 - t0
        totals["comm_s"] += t2 - t1
        if state.on_nonfinite == "raise":
            raise NonFiniteGradientError(
                f"adlcodec: non-finite gradient on rank(s) {nonfinite_ranks} in bucket {index} at iteration "
                f"{state.iter}; residuals left unchanged"
            )
        return buffer.zero_()

    # The average is written over the bucket's own buffer: the local gradient is no longer needed
    # (its dense parts were copied into ``message``), and a fresh 4-bytes-per-parameter array per
    # step would cost page faults on every call.
    out = flat
    out.fill(0)
    for m, h in zip(messages, headers):  # rank order: every rank sums in the same sequence
        for (off, shape), (_, _, bin_size), chunk in zip(slots, layout, _parts(m, h)):
            target = out[off : off + int(np.prod(shape))]
            if bin_size is None:
                target += chunk.view(np.float32)  # numpy copes with an unaligned view
            else:
                decompress(chunk, out=target, accumulate=True)
    out /= np.float32(world)
    _log_exchange(state, headers)
    if state.budget is not None:
        _observe(state, index, layout, settings, messages, headers)
    for i, ((ordinal, _, _), trial) in enumerate(zip(layout, trials)):
        if trial is not None:
            # swap: the trial becomes the residual, the old residual the next spare
            state._spare[ordinal] = residuals[i]
            residuals[i] = trial
    t3 = time.perf_counter()
    totals["compressed_steps"] += 1 if bucket.is_last() else 0
    totals["encode_s"] += t1 - t0
    totals["comm_s"] += t2 - t1
    totals["decode_s"] += t3 - t2
    return buffer


if torch is not None:
    # DDP compares real annotation objects; ``from __future__ import annotations`` made them strings.
    adacomp_hook.__annotations__.update(bucket=dist.GradBucket, state=AdaCompState,
                                         **{"return": torch.futures.Future[torch.Tensor]})


def _check_headers(headers, rank) -> None:
    fields = ("magic", "format_version", "bits", None, "conv_bin", "fc_bin", "bucket_index", "tensor_count", "layout",
              None, None)
    bad = []
    for i, name in enumerate(fields):
        if name is None or name == "tensor_count":  # count differs legitimately for a non-finite rank
            continue
        values = [h[i] for h in headers]
        if len(set(values)) > 1:
            bad.append(f"{name}: " + ", ".join(f"rank {r}={v}" for r, v in enumerate(values)))
    if bad:
        raise AdaCompConfigError(f"adlcodec ranks disagree (seen on rank {rank}): " + "; ".join(bad))
