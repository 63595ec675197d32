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
* **Two exchanges, rank-ordered sums.** ``exchange="allgather"``: each rank sends one message per bucket; the
  sizes are all-gathered first (never an empty collective: a message always has a header), then the
  messages, each at its own length (an all-to-all of the same message to every rank: gloo's all-gather needs
  equal sizes), or, where more than ``_INCAST_BYTES`` would arrive at each rank at once, round gloo's ring,
  padded to the longest.  Every rank decodes all messages and sums them *in rank order* (its own payload is decoded too,
  not taken from the raw gradient), then divides by world size.  Traffic per rank grows with the rank count:
  every rank receives N-1 payloads.  ``exchange="reduce_scatter"``: every rank owns a slice of each tensor
  (cut at bin boundaries), sends each slice's payload to its owner, the owner decodes and sums the N payloads
  of its slice in rank order and re-compresses the sum with an error-feedback residual of its own
  (``owner_residuals``), and the owners' payloads are all-gathered: about 2(N-1)/N payloads per rank
  whatever N.  ``exchange="auto"`` (default) picks per bucket with :func:`choose_exchange`.  Either way every
  rank decodes the same bytes in the same order, so every rank computes the bit-identical bucket and
  replicas cannot drift.
* **Overlapped.** With ``overlap=True`` (default) the hook hands the bucket to a communication thread of the
  state (one worker, so buckets go out in DDP's order, the same on every rank) and returns a future that the
  thread completes: backward computes the next buckets while this one is encoded and on the wire, as DDP's
  own allreduce does.  The thread uses a process group of its own (an MPI communicator of its own with
  ``transport="mpi"``), made at the first compressed call: collectives DDP or the training loop issue on the
  main group from the main thread can then never interleave differently on different ranks.  The thread
  starts no collective from a future's callback (chained callbacks waiting on collectives deadlock gloo's
  worker threads, as ``powerSGD_hook`` does with 3+ buckets).  ``overlap=False`` exchanges inside the hook
  call.  ``stats()["exposed_s"]`` is the exchange time backward could not hide: from the hand-over of a
  step's last bucket to the end of its exchange.
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
* **Timeouts.** Every collective of the hook waits at most ``timeout`` seconds (gloo: ``work.wait`` with a
  deadline; MPI: nonblocking collectives polled against it).  Then every live rank reports in the job's
  rendezvous store and :class:`CollectiveTimeoutError` names the ranks that did not (:func:`unresponsive_ranks`).
* **Checkpoints.** :meth:`AdaCompState.attach` gives the state the parameter names; ``state_dict()`` /
  ``load_state_dict()`` keep residuals by name in plain tensors (``weights_only``-loadable), and
  :func:`redistribute` re-cuts them for another world size without losing residual mass.  A parameter without
  a gradient in a step (attached state) sends nothing and keeps its residual.
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
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta
from typing import Any

import numpy as np

from . import FORMAT_VERSION, compress, decompress, inspect
from .budget import BandwidthBudget, _payload_model

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
    "CollectiveTimeoutError",
    "DEFAULT_TIMEOUT_S",
    "unresponsive_ranks",
    "collective_failure",
    "NonFiniteGradientError",
    "DEFAULT_CONV_BIN",
    "DEFAULT_FC_BIN",
    "EXCHANGES",
    "choose_exchange",
    "estimated_payload_bytes",
    "slice_bounds",
    "inherited_ranks",
    "redistribute",
]

DEFAULT_CONV_BIN = 50
DEFAULT_FC_BIN = 500

_MAGIC = b"ADLX"
# magic, codec format version, bits, flags, conv bin, fc bin, bucket index, tensor count, layout digest
# (covers every tensor's bin size and bits), and the sender's exchange time of an earlier step: its
# iteration (or -1) and microseconds
_HEADER = struct.Struct("<4sHBBIIIIQqI")
_FLAG_NONFINITE = 1
_EMPTY = np.zeros(0, np.uint8)  # the part of a tensor that got no gradient on the sending rank
_PARKED = -1  # residuals key for parameters whose new bucket has not been seen yet
_POLICIES = ("skip", "raise")
_EXCHANGE_LOG_LIMIT = 100_000
_TRANSPORTS = ("torch", "mpi")
EXCHANGES = ("auto", "allgather", "reduce_scatter")
# choose_exchange's rule: per-hop latency of one message on Pi-class Ethernet (kernel, TCP, waking the
# receiving process), the longest all-gather transfer it accepts, the link rate assumed without a bandwidth
# budget, and AdaComp's selected elements per bin for predicting a payload before encoding it
MESSAGE_LATENCY_S = 0.25e-3
MAX_ALLGATHER_S = 0.25  # all-gather transfer per bucket beyond which choose_exchange takes the reduce-scatter
DEFAULT_LINK_MBPS = 100.0
SELECTED_PER_BIN = 6.0


class AdaCompConfigError(ValueError):
    """Ranks disagree on codec configuration or bucket layout."""


class NonFiniteGradientError(ValueError):
    """A rank produced a non-finite gradient and ``on_nonfinite='raise'``."""


class CollectiveTimeoutError(TimeoutError):
    """A collective of the hook did not complete within ``AdaCompState.timeout``; ``missing`` lists the
    ranks that did not answer (``None`` when that could not be found out)."""

    def __init__(self, message: str, missing: list[int] | None):
        super().__init__(message)
        self.missing = missing

    def __reduce__(self):
        # Launchers carry a rank's exception to the driver pickled (Ray Train, multiprocessing); the default
        # reduction would call __init__ with the message alone and fail there, hiding the timeout.
        return type(self), (self.args[0], self.missing)


# A stalled peer must not stall the job for gloo's 30 minutes or MPI's forever; 5 minutes is far above any
# exchange of this hook, even at Pi speeds with large models, and still short next to a training run.
DEFAULT_TIMEOUT_S = 300.0


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
        exchange: ``"allgather"``, ``"reduce_scatter"`` or ``"auto"`` (per bucket by
            :func:`choose_exchange`: the all-gather until its traffic, which grows with the world size,
            would take longer than ``MAX_ALLGATHER_S`` per bucket; then the reduce-scatter, whose bytes per
            rank do not grow, but whose second lossy stage costs accuracy).
        overlap: run each bucket's exchange on a communication thread of its own (with its own process
            group, or a duplicate of the MPI communicator) so backward goes on meanwhile.  ``False``
            exchanges inside the hook call.
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
        "exchange",
        "overlap",
        "owner_residuals",
        "_owner_spare",
        "_executor",
        "_comm_group",
        "_comm_mpi",
        "_names",
        "_used",
        "_grad_hooks",
        "timeout",
        "_seq",
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
        exchange: str = "auto",
        overlap: bool = True,
        timeout: float | timedelta = DEFAULT_TIMEOUT_S,
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
        if exchange not in EXCHANGES:
            raise ValueError(f"exchange must be one of {EXCHANGES}, got {exchange!r}")
        if not isinstance(overlap, bool):
            raise TypeError(f"overlap must be a bool, got {type(overlap).__name__}")
        if isinstance(timeout, timedelta):
            timeout = timeout.total_seconds()
        if isinstance(timeout, bool) or not isinstance(timeout, (int, float)):
            raise TypeError(f"timeout must be seconds (a number) or a timedelta, got {type(timeout).__name__}")
        if not (np.isfinite(timeout) and timeout > 0):
            raise ValueError(f"timeout must be a positive finite number of seconds, got {timeout}")
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
            exposed_s=0.0, a2a_s=0.0, allgather_buckets=0, reduce_scatter_buckets=0, peer_bytes=0,
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
        self.exchange = exchange
        self.overlap = overlap
        # reduce-scatter: parameter ordinal -> (world, rank, lo, hi, residual of the owned slice's sum)
        self.owner_residuals: dict[int, tuple] = {}
        self._owner_spare: dict[int, np.ndarray] = {}
        self._executor = None
        self._comm_group = None
        self._comm_mpi = None
        # parameter names in the model's order (ordinal = position), set by attach(); None: not attached
        self._names: list[str] | None = None
        # ids of the parameters whose gradient autograd accumulated in the current iteration (attached only)
        self._used: set[int] = set()
        self._grad_hooks: list = []
        self.timeout = float(timeout)
        self._seq = 0  # collectives this state has started: the same count on every rank

    # -- pickling (checkpoints), as PowerSGDState does -------------------------
    def __getstate__(self):
        logger.info("adlcodec: process group / MPI communicator are not pickled")
        return {s: getattr(self, s) for s in self.__slots__ if s not in _UNPICKLED}

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
        for slot, default in (("exchange", "allgather"), ("overlap", False), ("owner_residuals", {})):
            if slot not in state:  # a checkpoint written before the overlapped and reduce-scatter exchanges
                setattr(self, slot, default)
        for key, zero in (("sync_s", 0.0), ("exchange_s", 0.0), ("exposed_s", 0.0), ("a2a_s", 0.0),
                          ("allgather_buckets", 0), ("reduce_scatter_buckets", 0), ("peer_bytes", 0)):
            self._totals.setdefault(key, zero)
        self._owner_spare = {}
        self._executor = None
        self._comm_group = None
        self._comm_mpi = None
        self._names = state.get("_names")
        self._used = set()
        self._grad_hooks = []
        self.timeout = state.get("timeout", DEFAULT_TIMEOUT_S)
        self._seq = 0
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
        pressure then in force.  ``exposed_s`` is the part of the exchanges backward
        could not hide (see the module docstring; with ``overlap=False``, all of
        every bucket's exchange), ``allgather_buckets`` and ``reduce_scatter_buckets`` count
        the buckets each exchange carried, and ``a2a_s`` is the reduce-scatter's
        slices-to-owners step (part of ``exchange_s``, which for that exchange also
        holds the owners' re-compression).  ``peer_bytes`` counts every byte the compressed exchanges sent
        to other ranks (control vectors, sizes and messages, each as often as it is sent, before the
        transport's own headers): what this rank's link carries, unlike ``payload_bytes``, which counts a
        message once however many ranks receive it.  With a bandwidth budget, ``budget`` holds the
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

    # -- model, checkpoints -----------------------------------------------------
    def attach(self, model, register: bool = True) -> "AdaCompState":
        """Bind the state to ``model`` (a ``DistributedDataParallel`` model or its module) before training.

        The state learns the parameters' names, so :meth:`state_dict` can key residuals by name and
        :meth:`load_state_dict` can put them back whatever DDP's bucket layout (``bucket_cap_mb``) is; the
        parameters are numbered in the module's order, not in the order of DDP's first buckets.  It also
        watches which parameters get a gradient in each iteration: with ``find_unused_parameters=True`` a
        parameter without one keeps its residual (it sends nothing) instead of draining it into a result
        DDP throws away.  With a DDP model and ``register=True`` it registers :func:`adacomp_hook` too.
        """
        from torch.nn.parallel import DistributedDataParallel

        if not isinstance(model, torch.nn.Module):
            raise TypeError(f"attach() needs a torch.nn.Module (or its DDP wrapper), got {type(model).__name__}")
        if self._names is not None:
            raise ValueError("attach() was already called for this state")
        if self._param_ordinals:
            raise ValueError("attach() must come before the first backward pass: the hook has already numbered "
                             "the parameters")
        is_ddp = isinstance(model, DistributedDataParallel)
        named = list((model.module if is_ddp else model).named_parameters())
        self._names = [name for name, _ in named]
        for ordinal, (_, p) in enumerate(named):
            self._param_ordinals[id(p)] = (ordinal, p)
            if p.requires_grad:
                self._grad_hooks.append(p.register_post_accumulate_grad_hook(self._mark_used))
        if register and is_ddp:
            model.register_comm_hook(self, adacomp_hook)
        return self

    def _mark_used(self, param) -> None:
        # autograd runs this when it has accumulated the gradient, before DDP's own hook marks it ready
        self._used.add(id(param))

    def config(self) -> dict[str, Any]:
        """The settings of this state as plain values (what :meth:`state_dict` records)."""
        return dict(bits=self.bits, bin_size=self.bin_size, start_iter=self.start_iter, transport=self.transport,
                    on_nonfinite=self.on_nonfinite, exchange=self.exchange, overlap=self.overlap,
                    link_mbps=self.link_mbps, max_comm_ms=self.max_comm_ms, budget_interval=self.budget_interval,
                    budget_options=dict(self.budget_options), timeout=self.timeout)

    def state_dict(self) -> dict[str, Any]:
        """This rank's state as plain tensors, numbers, strings, lists and dicts (``torch.load`` reads it with
        ``weights_only=True``): world size and rank, configuration, iteration, residuals by parameter name,
        the reduce-scatter's owner residuals, statistics and the bandwidth budget's controller.  Needs
        :meth:`attach`.  Every rank saves its own: residuals differ from rank to rank."""
        names = self._require_names("state_dict")
        rank, world = self._world_if_known()
        residuals = {}
        for lay, res in self.residuals.values():
            for (ordinal, shape, _), r in zip(lay, res):
                if r is not None:
                    residuals[names[ordinal]] = torch.from_numpy(r.copy()).reshape(shape)
        owners = {names[o]: dict(world=e[0], rank=e[1], lo=e[2], hi=e[3], residual=torch.from_numpy(e[4].copy()))
                  for o, e in self.owner_residuals.items()}
        return dict(
            kind=_STATE_DICT_KIND, version=_STATE_DICT_VERSION, format_version=FORMAT_VERSION, world_size=world,
            rank=rank, iter=self.iter, config=self.config(), parameter_names=list(names), residuals=residuals,
            owner_residuals=owners, totals=dict(self._totals), last_exchange=list(self._last_exchange),
            exchange_log=[list(e) for e in self.exchange_log], last_pressure=self._last_pressure,
            budget=None if self.budget is None else _budget_state(self.budget),
        )

    def load_state_dict(self, state_dict: dict) -> list[str]:
        """Restore a :meth:`state_dict` of the same rank of a job of the same world size (for another
        world size, pass each rank its entry of :func:`redistribute`).  Call after :meth:`attach` and
        before training.  Residuals are matched to parameters by name.

        This state's own settings (bits, bin size, exchange, transport, budget, ...) stay in force: a
        residual holds gradient mass element by element, whatever codec setting sends it later, so each of
        them is safe to change.  What is not safe is refused with a ``ValueError`` before anything changes:
        another world size or rank, a residual of a parameter the model does not have or of another shape,
        and a residual of a parameter that the new settings send dense (dense tensors keep no residual, so its
        mass would be lost).  The reduce-scatter's owner residuals are kept when the world size and the
        parameters are unchanged and the exchange can still be a reduce-scatter; otherwise each is folded
        into this rank's residual of its parameter, so no mass is lost.  The bandwidth budget's controller
        is restored when the budget settings are unchanged and dropped (it starts afresh) otherwise.

        Returns one line per setting that differs from the checkpoint's, saying that the new one is used.
        """
        names = self._require_names("load_state_dict")
        if not isinstance(state_dict, dict) or state_dict.get("kind") != _STATE_DICT_KIND:
            raise TypeError("load_state_dict() needs a dict made by AdaCompState.state_dict()")
        if state_dict.get("version") != _STATE_DICT_VERSION:
            raise ValueError(f"state dict version {state_dict.get('version')} is not {_STATE_DICT_VERSION}")
        if self.iter or any(res for _, res in self.residuals.values()):
            raise ValueError("load_state_dict() must come before training starts (this state has run "
                             f"{self.iter} iterations)")
        rank, world = self._world_if_known()
        old_world, old_rank = state_dict["world_size"], state_dict["rank"]
        if world is not None and old_world is not None and old_world != world:
            raise ValueError(
                f"adlcodec: the hook state was saved by a job of {old_world} ranks and this one has {world}; "
                f"each rank's residuals hold gradient mass not yet applied, so load every old rank's state dict "
                f"and give rank r the entry r of adlcodec.ddp.redistribute(state_dicts, {world})")
        if rank is not None and old_rank is not None and old_rank != rank:
            raise ValueError(f"adlcodec: this is rank {rank}, but the hook state was saved by rank {old_rank}")
        index = {n: i for i, n in enumerate(names)}
        unknown = [n for n in state_dict["residuals"] if n not in index]
        unknown += [n for n in state_dict["owner_residuals"] if n not in index and n not in unknown]
        if unknown:
            raise ValueError(f"adlcodec: the checkpoint holds residuals of parameters this model does not have: "
                             f"{unknown}; their gradient mass has nowhere to go")
        shapes = {n: tuple(p.shape) for n, (_, p) in zip(names, sorted(
            self._param_ordinals.values(), key=lambda e: e[0]))}
        wrong = [f"{n}: {tuple(t.shape)} saved, {shapes[n]} now" for n, t in state_dict["residuals"].items()
                 if tuple(t.shape) != shapes[n]]
        if wrong:
            raise ValueError("adlcodec: residual shapes differ from the model's: " + "; ".join(wrong))
        keep_owners = (old_world == world and self.exchange != "allgather"
                       and list(state_dict["parameter_names"]) == names)
        residuals = {n: t.detach().reshape(-1).numpy().astype(np.float32, copy=True)
                     for n, t in state_dict["residuals"].items()}
        owners = {}
        for n, e in state_dict["owner_residuals"].items():
            own = e["residual"].detach().reshape(-1).numpy().astype(np.float32, copy=True)
            if keep_owners:
                owners[index[n]] = (int(e["world"]), int(e["rank"]), int(e["lo"]), int(e["hi"]), own)
            else:
                _fold(residuals, n, shapes[n], int(e["lo"]), int(e["hi"]), own)
        dense = [n for n, r in residuals.items() if self.bin_for(shapes[n]) is None and np.any(r)]
        if dense:
            raise ValueError(f"adlcodec: with bin_size={self.bin_size} the parameters {dense} would travel dense, "
                             "which keeps no residual: the mass their residuals hold would be lost; resume with a "
                             "bin size no larger than these tensors")
        changes = [f"{k}: checkpoint {v!r}, using {self.config()[k]!r}" for k, v in state_dict["config"].items()
                   if k in self.config() and self.config()[k] != v]
        layout = tuple((index[n], shapes[n], self.bin_for(shapes[n])) for n in residuals)
        self.residuals = {_PARKED: (layout, list(residuals.values()))} if residuals else {}
        self.owner_residuals = owners
        self.iter = int(state_dict["iter"])
        self._totals.update(state_dict["totals"])
        self._last_exchange = tuple(state_dict["last_exchange"])
        self.exchange_log = [tuple(e) for e in state_dict["exchange_log"]]
        self._last_pressure = state_dict["last_pressure"]
        budget_keys = ("link_mbps", "max_comm_ms", "budget_interval", "budget_options")
        same_budget = all(state_dict["config"].get(k) == self.config()[k] for k in budget_keys)
        self.budget = None
        if state_dict["budget"] is not None:
            if same_budget and old_world == world and list(state_dict["parameter_names"]) == names:
                self.budget = _budget_from_state(state_dict["budget"])
            else:
                changes.append("budget: the controller starts afresh (other budget settings, world size or model)")
        self._config_checked = False
        for line in changes:
            logger.warning("adlcodec: resuming with %s", line)
        return changes

    def _require_names(self, what: str) -> list[str]:
        if self._names is None:
            raise ValueError(f"{what}() keys residuals by parameter name: call state.attach(ddp_model) before "
                             "training")
        return self._names

    def _world_if_known(self) -> tuple[int | None, int | None]:
        if self.transport == "torch" and not dist.is_initialized():
            return None, None
        return self._world()

    # -- internals --------------------------------------------------------------
    def _overlapping(self) -> bool:
        if not self.overlap:
            return False
        if self.transport == "mpi":
            from mpi4py import MPI

            # the communication thread is the only one calling MPI while it works; SERIALIZED suffices
            if MPI.Query_thread() < MPI.THREAD_SERIALIZED:
                logger.warning("adlcodec: MPI gives no thread support; exchanging inside the hook call")
                self.overlap = False
                return False
        return True

    def _comm_thread(self) -> ThreadPoolExecutor:
        if self._executor is None:
            # one worker: buckets are exchanged in the order DDP hands them over, the same on every rank
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="adlcodec-comm",
                                                initializer=_name_os_thread)
        return self._executor

    def _channel(self):
        """The process group (or MPI communicator) the compressed exchanges use.

        Overlapped, that is a group of its own, made on the first call (every rank makes its first hook call
        at the same point): DDP and the training loop issue collectives on the main group from the main
        thread, and two threads feeding one gloo group could order their collectives differently on
        different ranks."""
        if self.transport == "mpi":
            if not self.overlap:
                return self.mpi_comm
            if self._comm_mpi is None:
                self._comm_mpi = self.mpi_comm.Dup()
            return self._comm_mpi
        if not self.overlap:
            return self.process_group
        if self._comm_group is None:
            if dist.get_world_size(self.process_group) != dist.get_world_size():
                raise ValueError("adlcodec: overlap=True needs a process group spanning every rank (it makes a "
                                 "group of its own for the exchange thread); pass overlap=False")
            self._comm_group = dist.new_group(backend=dist.get_backend(self.process_group),
                                              timeout=timedelta(seconds=self.timeout))
        return self._comm_group

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
            EXCHANGES.index(self.exchange), int(self.overlap),
        ]

    def _bins_header(self) -> tuple[int, int]:
        if self.bin_size is None:
            return DEFAULT_CONV_BIN, DEFAULT_FC_BIN
        return self.bin_size, self.bin_size


_FINGERPRINT_NAMES = (
    "format_version", "bits", "bin_size", "conv_bin", "fc_bin", "start_iter", "on_nonfinite", "iter", "transport",
    "link_kbps", "max_comm_us", "budget_interval", "budget_options", "exchange", "overlap",
)
_UNPICKLED = ("process_group", "mpi_comm", "_param_ordinals", "_spare", "_owner_spare", "_executor", "_comm_group",
              "_comm_mpi", "_used", "_grad_hooks")


_STATE_DICT_KIND = "adlcodec.AdaCompState"
_STATE_DICT_VERSION = 1


def _fold(residuals: dict, name: str, shape, lo: int, hi: int, values: np.ndarray) -> None:
    """Add ``values`` to elements ``[lo, hi)`` of the residual of ``name`` (created at zero if absent)."""
    target = residuals.get(name)
    if target is None:
        target = residuals[name] = np.zeros(int(np.prod(shape)), np.float32)
    target[lo:hi] += values


def _budget_state(budget: BandwidthBudget) -> dict:
    state = {k: v for k, v in vars(budget).items() if k != "layers"}
    state["layers"] = {o: dict(vars(layer)) for o, layer in budget.layers.items()}
    return state


def _budget_from_state(state: dict) -> BandwidthBudget:
    from .budget import _Layer

    budget = BandwidthBudget.__new__(BandwidthBudget)
    budget.__setstate__({k: v for k, v in state.items() if k != "layers"})
    budget.layers = {}
    for o, fields in state["layers"].items():
        layer = _Layer.__new__(_Layer)
        vars(layer).update(fields)
        budget.layers[o] = layer
    return budget


def inherited_ranks(old_world: int, world: int, rank: int) -> list[int]:
    """The ranks of a job of ``old_world`` ranks whose residuals rank ``rank`` of a job of ``world`` ranks
    takes over in :func:`redistribute`: ``rank``, ``rank + world``, ``rank + 2·world``, ..."""
    return list(range(rank, old_world, world))


def redistribute(state_dicts: list[dict], world: int) -> list[dict]:
    """The state dicts of every rank of a job, re-cut for a job of ``world`` ranks (entry r for rank r).

    The rule, so that no gradient is lost: first each old rank's reduce-scatter owner residuals are
    folded into its own residual of the same parameter (an owner residual holds mass of the rank-summed
    gradient, the same unit as a rank's residual); then new rank ``r`` takes the sum, in rank order, of the
    residuals of old ranks :func:`inherited_ranks` ``(old_world, world, r)``: when shrinking, the departed
    ranks' residuals are folded into the survivors, when growing, the new ranks start at zero.  The sum of
    all residuals over ranks is unchanged (up to float32 rounding).  Iteration, configuration, statistics
    and the exchange log come from old rank 0; the bandwidth budget's controller modelled the old world
    and starts afresh."""
    if isinstance(world, bool) or not isinstance(world, int) or world < 1:
        raise ValueError(f"world must be an int >= 1, got {world!r}")
    if not isinstance(state_dicts, (list, tuple)) or not state_dicts:
        raise ValueError("redistribute() needs the list of every old rank's state dict")
    for sd in state_dicts:
        if not isinstance(sd, dict) or sd.get("kind") != _STATE_DICT_KIND:
            raise TypeError("redistribute() needs dicts made by AdaCompState.state_dict()")
    old_world = state_dicts[0]["world_size"]
    ranks = sorted(sd["rank"] for sd in state_dicts)
    if old_world is None or ranks != list(range(old_world)) or any(sd["world_size"] != old_world
                                                                   for sd in state_dicts):
        raise ValueError(f"redistribute() needs one state dict of each rank 0..{old_world - 1 if old_world else '?'}"
                         f" of one job; got ranks {ranks} of world sizes "
                         f"{sorted({sd['world_size'] for sd in state_dicts}, key=str)}")
    by_rank = sorted(state_dicts, key=lambda sd: sd["rank"])
    if len({sd["iter"] for sd in by_rank}) != 1 or len({tuple(sd["parameter_names"]) for sd in by_rank}) != 1:
        raise ValueError("redistribute(): the state dicts come from different iterations or models")
    folded = []
    for sd in by_rank:
        res = {n: t.detach().reshape(-1).numpy().astype(np.float32, copy=True) for n, t in sd["residuals"].items()}
        shapes = {n: tuple(t.shape) for n, t in sd["residuals"].items()}
        for n, e in sd["owner_residuals"].items():
            if n not in res:  # the exchange always keeps a rank's residual beside an owner residual
                raise ValueError(f"redistribute(): rank {sd['rank']} has an owner residual of {n} but no residual")
            _fold(res, n, shapes[n], int(e["lo"]), int(e["hi"]), e["residual"].detach().reshape(-1).numpy())
        folded.append((res, shapes))
    out = []
    for r in range(world):
        total: dict[str, np.ndarray] = {}
        shapes: dict[str, tuple] = {}
        for old in inherited_ranks(old_world, world, r):
            res, old_shapes = folded[old]
            for n, v in res.items():
                shapes[n] = old_shapes[n]
                total[n] = total[n] + v if n in total else v.copy()
        base = by_rank[0]
        out.append(dict(
            base, world_size=world, rank=r, redistributed_from=old_world,
            residuals={n: torch.from_numpy(v).reshape(shapes[n]) for n, v in total.items()},
            owner_residuals={}, totals=dict(by_rank[r]["totals"] if r < old_world else base["totals"]),
            last_exchange=[-1, 0], budget=None if old_world != world else base["budget"],
        ))
    return out


COMM_THREAD_NAME = "adlcodec-comm"


def _name_os_thread() -> None:
    """Give the communication thread its name in the OS too (``top -H``, ``/proc/PID/task/TID/comm``), so
    tools can find it: the emulated Pi testbed (bench/cluster/testbed.py) runs it on a CPU quota of its own."""
    try:
        import ctypes

        ctypes.CDLL(None).prctl(15, COMM_THREAD_NAME.encode(), 0, 0, 0)  # PR_SET_NAME; Linux only
    except (OSError, AttributeError):
        pass


# Above this many bytes arriving at each rank, the messages of an all-gather go round gloo's ring instead of
# all at once.  All at once, N-1 senders converge on one receiver's link (incast): on the emulated Pi testbed
# (100 Mbit/s, a 50 ms queue per port) the all-gather of 1-bit payloads measured 1.08x the compute-only step
# at 8 ranks (0.63 MB arriving) against 1.21x round the ring, but 2.09x at 32 ranks (2.8 MB) against 1.79x,
# where TCP loses packets to the full queue and waits for retransmissions.  The ring pads every message to
# the longest (~7 % more bytes, measured) and waits N-1 hops.
_INCAST_BYTES = 1 << 20


def _allgather_bytes(state: AdaCompState, message: np.ndarray) -> tuple[list[np.ndarray], float]:
    """All-gather variable-length uint8 messages; returns them in rank order, and the
    ``perf_counter`` time at which the sizes were known (every rank had arrived)."""
    if state.transport == "mpi":
        from mpi4py import MPI

        comm = state._channel()
        _count_peer_bytes(state, comm.Get_size(), 8 + message.size)
        sizes = np.zeros(comm.Get_size(), np.int64)
        mine = np.array([message.size], np.int64)
        _mpi_wait(state, comm.Iallgather(mine, sizes), "message sizes")
        synced = time.perf_counter()
        recv = np.empty(int(sizes.sum()), np.uint8)
        _mpi_wait(state, comm.Iallgatherv(message, [recv, sizes, _displacements(sizes), MPI.BYTE]), "messages")
        return _split(recv, sizes), synced
    group = state._channel()
    world = dist.get_world_size(group)
    sizes = [int(s[0]) for s in _torch_allgather_int64(state, np.array([message.size], np.int64), "message sizes")]
    synced = time.perf_counter()
    if sum(sizes) - message.size > _INCAST_BYTES:  # every rank sees the same sizes: they all take this branch
        # gloo's ring all-gather, every message padded to the longest
        longest = max(sizes)
        _count_peer_bytes(state, world, longest)
        padded = torch.zeros(longest, dtype=torch.uint8)
        padded[: message.size] = torch.from_numpy(message)
        received = [torch.empty(longest, dtype=torch.uint8) for _ in range(world)]
        _torch_wait(state, dist.all_gather(received, padded, group=group, async_op=True), "messages", group)
        return [r.numpy()[:n] for r, n in zip(received, sizes)], synced
    # an all-to-all of the same message to every rank: exactly (N-1) x its size, all at once
    _count_peer_bytes(state, world, message.size)
    send = torch.from_numpy(np.tile(message, world))
    recv = torch.empty(sum(sizes), dtype=torch.uint8)
    _torch_wait(state, dist.all_to_all_single(recv, send, sizes, [message.size] * world, group=group,
                                              async_op=True), "messages", group)
    return _split(recv.numpy(), sizes), synced


def _alltoall_control(state: AdaCompState, rows: np.ndarray) -> list[np.ndarray]:
    """Send int64 row ``rows[j]`` to rank ``j`` (all rows of one length); returns the row each rank sent
    here, in rank order.  Per peer it is one fixed-length row, so a rank's control bytes grow as N - 1, not
    as N (N - 1) as a vector holding every rank's byte count would."""
    rows = np.ascontiguousarray(rows, np.int64)
    world, length = rows.shape
    _count_peer_bytes(state, world, 8 * length)
    if state.transport == "mpi":
        out = np.empty_like(rows)
        _mpi_wait(state, state._channel().Ialltoall(rows, out), "control vectors")
        return list(out)
    group = state._channel()
    recv = torch.empty(world * length, dtype=torch.int64)
    _torch_wait(state, dist.all_to_all_single(recv, torch.from_numpy(rows.reshape(-1)), group=group, async_op=True),
                "control vectors", group)
    return list(recv.numpy().reshape(world, length))


def _torch_allgather_int64(state: AdaCompState, values: np.ndarray, what: str) -> list[np.ndarray]:
    """All-gather a short int64 vector over the communication group, as an all-to-all of it to every rank.

    gloo's all_gather is a ring: N-1 transfers one after the other, each waiting for the next process to be
    scheduled, which on throttled Pi-class nodes cost 4-8 ms a hop (31 hops at 32 ranks, several times per
    bucket).  gloo's all-to-all posts all N-1 transfers at once, so the exchange waits about one hop."""
    group = state._channel()
    world = dist.get_world_size(group)
    values = np.ascontiguousarray(values, np.int64)
    _count_peer_bytes(state, world, values.nbytes)
    recv = torch.empty(world * values.size, dtype=torch.int64)
    _torch_wait(state, dist.all_to_all_single(recv, torch.from_numpy(np.tile(values, world)), group=group,
                                              async_op=True), what, group)
    return list(recv.numpy().reshape(world, values.size))


def _alltoall_bytes(state: AdaCompState, messages: list[np.ndarray], incoming: list[int]) -> list[np.ndarray]:
    """Send ``messages[j]`` to rank ``j``; returns what each rank sent here (``incoming[r]`` bytes from r)."""
    send = np.concatenate(messages) if messages else np.zeros(0, np.uint8)
    recv = np.empty(sum(incoming), np.uint8)
    out_sizes = [m.size for m in messages]
    state._totals["peer_bytes"] += send.size - _own_part(state, out_sizes)
    if state.transport == "mpi":
        from mpi4py import MPI

        _mpi_wait(state, state._channel().Ialltoallv([send, out_sizes, _displacements(out_sizes), MPI.BYTE],
                                                     [recv, incoming, _displacements(incoming), MPI.BYTE]),
                  "slices to owners")
    else:
        group = state._channel()
        _torch_wait(state, dist.all_to_all_single(torch.from_numpy(recv), torch.from_numpy(send), incoming, out_sizes,
                                                  group=group, async_op=True), "slices to owners", group)
    return _split(recv, incoming)


def _displacements(sizes) -> np.ndarray:
    """Where each of the concatenated parts of these sizes starts."""
    return np.concatenate(([0], np.cumsum(sizes)[:-1])).astype(np.int64)


def _split(buffer: np.ndarray, sizes) -> list[np.ndarray]:
    """``buffer`` cut into consecutive views of these sizes (one per rank, in rank order)."""
    return [buffer[d : d + int(n)] for d, n in zip(_displacements(sizes), sizes)]


def _count_peer_bytes(state: AdaCompState, world: int, nbytes: int) -> None:
    """One all-gathered item of ``nbytes`` goes to each of the other ``world - 1`` ranks."""
    state._totals["peer_bytes"] += (world - 1) * nbytes


def _own_part(state: AdaCompState, out_sizes: list[int]) -> int:
    """Bytes of an all-to-all that this rank addresses to itself (they never reach a link)."""
    rank = state._channel().Get_rank() if state.transport == "mpi" else dist.get_rank(state._channel())
    return out_sizes[rank] if out_sizes else 0


def collective_failure(message: str) -> str | None:
    """What a gloo error says happened to a collective: "timed out", "lost its connection", or None for
    anything else (and for errors that already name the silent ranks)."""
    text = message.lower()
    if "did not answer" in text:
        return None
    if "connection reset" in text or "connection closed" in text:  # a peer died
        return "lost its connection"
    # "Timed out waiting ..." on the rank that gave up first; its peers then read
    # "Application timeout caused pair closure"
    if "timed out" in text or "timeout caused pair closure" in text:
        return "timed out"
    return None


def _torch_wait(state: AdaCompState, work, what: str, group) -> None:
    """Wait for a torch.distributed collective at most ``state.timeout`` seconds."""
    state._seq += 1
    try:
        work.wait(timeout=timedelta(seconds=state.timeout))
    except RuntimeError as exc:  # gloo: "Operation timed out!", or its own timeout on the group
        if collective_failure(str(exc)) != "timed out":
            raise
        _raise_timeout(state, what, unresponsive_ranks(state.iter, _probe_grace(state), group), exc)


# Busy-polling a request costs a core (MPI's blocking calls spin too), so after a short spin poll at this
# interval: two ranks share two cores here, and a Pi has four.
_MPI_SPIN_S = 2e-3
_MPI_POLL_S = 2e-4


def _mpi_wait(state: AdaCompState, request, what: str, comm=None) -> None:
    """Complete a nonblocking MPI collective, polling against ``state.timeout``."""
    state._seq += 1
    start = time.perf_counter()
    deadline = start + state.timeout
    while not request.Test():
        now = time.perf_counter()
        if now > deadline:
            # the request never completes now; cancelling a collective is not allowed, so it is left behind
            # the rendezvous store of torch.distributed (DDP needs it) is where every live rank reports, whichever
            # collective, the hook's or DDP's, it gave up in; without one, a point-to-point heartbeat over MPI
            missing = unresponsive_ranks(state.iter, _probe_grace(state), state.process_group)
            if missing is None:
                missing = _mpi_probe(state, comm or state._channel())
            _raise_timeout(state, what, missing, None)
        if now - start > _MPI_SPIN_S:
            time.sleep(_MPI_POLL_S)


def _probe_grace(state) -> float:
    # the other live ranks time out a little later if they entered the collective later: wait for them
    return min(max(state.timeout, 5.0), 10.0)


def unresponsive_ranks(iteration: int, grace: float = 10.0, group=None) -> list[int] | None:
    """After a collective of ``iteration`` timed out: the ranks (global numbers) of ``group`` that do not
    report within ``grace`` seconds that they are still alive.  Every live rank that gives up in the same
    iteration calls this (the hook does; so does ``adlcodec train`` for a collective outside the hook, such
    as DDP's buffer broadcast), and sets a key in the job's rendezvous store; the ranks whose key does not
    appear are the frozen, dead or cut-off ones.  ``None`` when there is no store to ask."""
    try:
        store = dist.distributed_c10d._get_default_store()
        ranks = dist.get_process_group_ranks(group) if group is not None else list(range(dist.get_world_size()))
        me = dist.get_rank()
    except (RuntimeError, ValueError, AttributeError):
        return None
    prefix = f"adlcodec/alive/{iteration}"
    result: list = []

    def probe():
        store.set(f"{prefix}/{me}", "1")
        deadline = time.monotonic() + grace
        while True:
            missing = [r for r in ranks if not store.check([f"{prefix}/{r}"])]
            if not missing or time.monotonic() > deadline:
                result.append(missing)
                return
            time.sleep(0.05)

    # the store lives in one of the processes (rank 0's, unless torchrun's agent hosts it): if that one is
    # frozen, store calls block too, so the probe runs on a thread that is given up on
    thread = threading.Thread(target=probe, daemon=True, name="adlcodec-probe")
    thread.start()
    thread.join(grace + 5.0)
    if not result:
        return [ranks[0]]  # the store did not answer: its host, rank 0 of the job, is the one frozen
    return result[0]


_PROBE_TAG = 0x5AD0


def _mpi_probe(state, comm) -> list[int]:
    """Ranks of ``comm`` whose point-to-point heartbeat does not arrive within a grace period (a rank that
    waits in the same collective sends one to every other rank when its own wait times out)."""
    me, world = comm.Get_rank(), comm.Get_size()
    tag = _PROBE_TAG + state.iter % 1000
    beat = np.array([state.iter], np.int64)
    inbox = {r: np.zeros(1, np.int64) for r in range(world) if r != me}
    sends = [comm.Isend(beat, dest=r, tag=tag) for r in inbox]
    recvs = {r: comm.Irecv(buf, source=r, tag=tag) for r, buf in inbox.items()}
    deadline = time.monotonic() + _probe_grace(state)
    pending = set(recvs)
    while pending and time.monotonic() < deadline:
        pending = {r for r in pending if not recvs[r].Test()}
        time.sleep(0.01)
    del sends  # to a frozen rank they never complete; the job is about to fail anyway
    return sorted(pending)


def _raise_timeout(state, what: str, missing: list[int] | None, cause) -> None:
    rank = dist.get_rank() if state.transport == "torch" else state.mpi_comm.Get_rank()
    if missing:
        who = f"rank(s) {missing} did not answer"
    elif missing is None:
        who = "which rank did not answer could not be found out"
    else:
        who = "every rank answered the heartbeat afterwards: a rank was late rather than gone"
    raise CollectiveTimeoutError(
        f"adlcodec: the hook's {what} exchange (iteration {state.iter}) did not complete within "
        f"{state.timeout:g} s on rank {rank}: {who} (frozen, dead or cut off); AdaCompState(timeout=...) / "
        f"adlcodec train --timeout sets the limit", missing) from cause


def _check_mpi_world(state: AdaCompState) -> None:
    """MPI's world must be torch's: started outside mpirun (torchrun, Ray workers) every process is a
    one-process MPI world, and the ranks would train apart without a word."""
    mpi = (state.mpi_comm.Get_rank(), state.mpi_comm.Get_size())
    torch_ = (dist.get_rank(state.process_group), dist.get_world_size(state.process_group))
    if mpi != torch_:
        raise AdaCompConfigError(
            f"adlcodec: transport='mpi', but the MPI communicator has {mpi[1]} process(es) and this is its rank "
            f"{mpi[0]}, while torch.distributed has {torch_[1]} ranks and this is rank {torch_[0]}: start the "
            "ranks with mpirun (one MPI process per torch rank, in the same order), or use transport='torch'")


def _check_config(state: AdaCompState) -> None:
    if state.transport == "mpi":
        _check_mpi_world(state)
    mine = np.array(state._fingerprint(), np.int64)
    if state.transport == "mpi":
        gathered = np.empty((state.mpi_comm.Get_size(), mine.size), np.int64)
        _mpi_wait(state, state.mpi_comm.Iallgather(mine, gathered), "configuration", state.mpi_comm)
        everyone = gathered.tolist()
    else:
        t = torch.from_numpy(mine)
        out = [torch.zeros_like(t) for _ in range(dist.get_world_size(state.process_group))]
        _torch_wait(state, dist.all_gather(out, t, group=state.process_group, async_op=True), "configuration",
                    state.process_group)
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


class _Job:
    """What one bucket's exchange needs, read from the GradBucket while the hook runs (the bucket object
    itself is not used after the hook has returned)."""

    __slots__ = ("index", "is_last", "buffer", "slots", "ordinals", "called_at", "unused")

    def __init__(self, bucket, buffer, ordinals, unused=frozenset()):
        self.index = bucket.index()
        self.is_last = bucket.is_last()
        self.buffer = buffer
        self.slots = _grad_slots(bucket, buffer)
        self.ordinals = ordinals
        self.called_at = time.perf_counter()
        # positions of the tensors that got no gradient on this rank this iteration: they send an empty part
        # and keep their residual (DDP zero-fills their slot, and drops the result where no rank used them)
        self.unused = unused


def adacomp_hook(state: AdaCompState, bucket) -> "torch.futures.Future[torch.Tensor]":
    """DDP communication hook: AdaComp-compressed exchange (all-gather or reduce-scatter), rank-ordered sums.

    With ``state.overlap`` the exchange runs on the state's communication thread and the returned future
    completes later, so backward goes on computing the next buckets meanwhile."""
    if not state._iter_open:
        state._iter_open = True
        state._nonfinite_this_iter = False
    if not state._config_checked:
        _check_config(state)
    ordinals = _ordinals(state, bucket)  # number parameters while DDP still uses its initial layout
    buffer = bucket.buffer()
    if buffer.dtype != torch.float32 or buffer.device.type != "cpu":
        raise TypeError(f"adacomp_hook needs float32 CPU gradients, got {buffer.dtype} on {buffer.device}")
    rank, world = state._world()
    totals = state._totals
    if state.iter < state.start_iter:
        try:
            t0 = time.perf_counter()
            # in place, as DDP's default hook
            _torch_wait(state, dist.all_reduce(buffer, group=state.process_group, async_op=True),
                        "warm-up allreduce", state.process_group)
            buffer.div_(world)
            totals["warmup_s"] += time.perf_counter() - t0
            totals["dense_bytes"] += 4 * buffer.numel()
            totals["payload_bytes"] += 4 * buffer.numel()
            return _finish(buffer)
        finally:
            if bucket.is_last():
                _end_step(state, time.perf_counter())
    unused = frozenset()
    if state._names is not None:
        unused = frozenset(i for i, p in enumerate(bucket.parameters()) if id(p) not in state._used)
    job = _Job(bucket, buffer, ordinals, unused)
    overlapping = state._overlapping()
    if overlapping:
        state._channel()  # made here, on every rank at the same call, never from the communication thread
    if not overlapping:
        try:
            return _finish(_compressed_exchange(state, job, rank, world))
        finally:
            if job.is_last:
                _end_step(state, job.called_at)
            else:  # backward waited for all of it
                totals["exposed_s"] += time.perf_counter() - job.called_at
    fut = torch.futures.Future()
    state._comm_thread().submit(_run_on_comm_thread, state, job, rank, world, fut)
    return fut


def _run_on_comm_thread(state, job, rank, world, fut) -> None:
    try:
        result = _compressed_exchange(state, job, rank, world)
    except BaseException as exc:  # noqa: BLE001 - handed to DDP, which raises it from backward()
        if job.is_last:
            _end_step(state, job.called_at)
        fut.set_exception(exc)
        return
    if job.is_last:
        # Before the future completes: DDP finishes backward() once it does, and the next iteration's
        # hook calls must see this one closed.
        _end_step(state, job.called_at)
    fut.set_result(result)


def _end_step(state, backward_done: float) -> None:
    """Close an iteration after its last bucket; ``backward_done`` is when DDP handed over that bucket."""
    totals = state._totals
    if state.iter >= state.start_iter:
        # the exchange time the step could not hide behind backward: from the last bucket's hand-over
        # (the end of backward's computation) to the end of its exchange
        totals["exposed_s"] += time.perf_counter() - backward_done
        if not state._nonfinite_this_iter:
            state._last_exchange = (state.iter, round(state._exchange_s_this_iter * 1e6))
            state._last_pressure = None if state.budget is None else state.budget.pressure
            if state.budget is not None and state.budget.step_bytes > 0:
                state.budget.end_step(state.iter)
    state._exchange_s_this_iter = 0.0
    state._used.clear()  # DDP starts no backward of the next iteration before this one's last bucket is done
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


def estimated_payload_bytes(layout, settings) -> float:
    """A bucket's message size as every rank can predict it alike, before encoding: dense tensors at
    4 bytes per element, compressed ones at ``SELECTED_PER_BIN`` elements per bin (AdaComp keeps a few per
    bin whatever its size: 5.3 at bin 50, 7.2 at 500 on N(0,1) gradients, docs/CLUSTER.md)."""
    total = 0.0
    for (_, shape, _), setting in zip(layout, settings):
        numel = int(np.prod(shape))
        if setting is None:
            total += 4 * numel
            continue
        bin_size, bits = setting
        selected = min(float(numel), SELECTED_PER_BIN * numel / bin_size)
        total += 28 + 8 * len(shape) + _payload_model(numel, selected, bits) / 8.0
    return total


def choose_exchange(world: int, payload_bytes: float, link_mbps: float | None = None) -> str:
    """``"allgather"`` or ``"reduce_scatter"`` for a bucket whose message is ``payload_bytes``.

    Per rank, the all-gather sends ``(N-1)·p`` bytes (and decodes N payloads); the reduce-scatter about
    ``2·(N-1)/N·p``, whatever N, but in 4 collectives instead of 2 and through a second lossy stage: the
    owners re-compress the sums.  That stage costs accuracy (4 ranks, one epoch on 24,000 images:
    -2.8 points at 1 bit, -0.8 at 8 bits against the all-gather, docs/CLUSTER.md), and on the emulated Pi
    testbed the reduce-scatter's step was 7 % shorter at 8 ranks and 18 % at 32 (docs/TESTBED.md).  So the all-gather stays until its
    transfer alone, ``(N-1)·p/b``, would exceed ``MAX_ALLGATHER_S`` per bucket (at 100 Mbit/s and the
    paper CNN's 1-bit classifier payload, estimated at 55 kB: from 58 ranks on), and the reduce-scatter's saving
    also outweighs its extra messages, ``(1 - 2/N)·p/b > 2·α``.  ``α`` is ``MESSAGE_LATENCY_S`` per hop,
    ``b`` the link rate (``link_mbps``, else ``DEFAULT_LINK_MBPS``, a Pi 3B+'s Fast Ethernet).
    """
    if world < 3:
        return "allgather"
    rate = (DEFAULT_LINK_MBPS if link_mbps is None else link_mbps) * 1e6 / 8
    allgather_s = (world - 1) * payload_bytes / rate
    saved_s = (1 - 2 / world) * payload_bytes / rate
    return "reduce_scatter" if allgather_s > MAX_ALLGATHER_S and saved_s > 2 * MESSAGE_LATENCY_S else "allgather"


def _log_exchange(state, reports) -> None:
    """``reports``: every rank's (iteration, microseconds) of its latest complete exchange."""
    reported = {r[0] for r in reports}
    if len(reported) != 1 or -1 in reported:
        return  # not every rank has measured the same earlier iteration
    iteration = reported.pop()
    if state.exchange_log and state.exchange_log[-1][0] >= iteration:
        return  # already logged from an earlier bucket of this iteration
    slowest_ms = max(r[1] for r in reports) / 1000.0
    state.exchange_log.append((iteration, slowest_ms, state._last_pressure))
    del state.exchange_log[:-_EXCHANGE_LOG_LIMIT]
    if state.budget is not None:
        state.budget.observe_exchange(iteration, slowest_ms)


def _parts(message: np.ndarray, count: int, offset: int) -> list[np.ndarray]:
    """A message's ``count`` length-prefixed parts (uint32 lengths from ``offset``), in layout order."""
    lens = struct.unpack_from(f"<{count}I", message, offset)
    pos = offset + 4 * count
    parts = []
    for n in lens:
        parts.append(message[pos : pos + n])
        pos += n
    return parts


def _with_lengths(parts: list[np.ndarray]) -> bytes:
    return struct.pack(f"<{len(parts)}I", *(p.size for p in parts))


def _observe(state, index, layout, settings, figures, total_bytes, peers) -> None:
    """Feed the budget what every rank knows alike: ``figures[i] = (selected, bytes)`` of tensor ``i``
    summed over ranks, ``total_bytes`` of all messages, ``peers`` how many times a byte crosses a link."""
    world = state.budget.world
    compressed = sum(nbytes for _, nbytes in figures.values())
    state.budget.observe_bucket(
        index, (total_bytes - compressed) / world,
        [(layout[i][0], settings[i][0], settings[i][1], sel / world, nbytes / world)
         for i, (sel, nbytes) in figures.items()],
        total_bytes / world, peers=peers,
    )


def _spare_for(spares, ordinal, res) -> np.ndarray:
    """The buffer the next trial residual of ``ordinal`` goes to: the updated residual is committed (swapped
    in) only once no rank had a non-finite gradient, and the codec writes it directly (``residual_out``), so
    a residual is never copied."""
    trial = spares.get(ordinal)
    return trial if trial is not None and trial.shape == res.shape else np.empty_like(res)


def _encode(grad, res, setting, ordinal, spares):
    """``(payload, trial residual)``, or ``None`` for a non-finite input (see ``_spare_for``)."""
    trial = _spare_for(spares, ordinal, res)
    try:
        # the codec's fused finite check rejects NaN/Inf in grad or residual (and overflow) before writing
        return compress(grad, res, bin_size=setting[0], bits=setting[1], residual_out=trial), trial
    except ValueError:
        return None


def _compressed_exchange(state, job, rank, world):
    t0 = time.perf_counter()
    layout = tuple((o, shape, state.bin_for(shape)) for o, (_, shape) in zip(job.ordinals, job.slots))
    settings = _settings(state, layout, world)
    kind = state.exchange
    if kind == "auto":
        kind = choose_exchange(world, estimated_payload_bytes(layout, settings), state.link_mbps)
    residuals = _residuals_for(state, job.index, layout)
    exchange = _reduce_scatter if kind == "reduce_scatter" else _allgather
    out = exchange(state, job, layout, settings, residuals, rank, world, t0)
    state._totals["reduce_scatter_buckets" if kind == "reduce_scatter" else "allgather_buckets"] += 1
    return out


def _allgather(state, job, layout, settings, residuals, rank, world, t0):
    index, buffer = job.index, job.buffer
    digest = _layout_digest((layout, settings))
    flat = buffer.detach().numpy()
    conv_bin, fc_bin = state._bins_header()
    parts: list[np.ndarray] = []
    trials: list[np.ndarray | None] = []
    finite = True
    for i, ((off, shape), (ordinal, _, _), setting, res) in enumerate(zip(job.slots, layout, settings, residuals)):
        grad = flat[off : off + int(np.prod(shape))]
        if i in job.unused:
            parts.append(_EMPTY)
            trials.append(None)
            continue
        if setting is None:
            if not np.isfinite(grad).all():
                finite = False
                break
            parts.append(grad.view(np.uint8))
            trials.append(None)
            continue
        encoded = _encode(grad, res, setting, ordinal, state._spare)
        if encoded is None:
            finite = False
            break
        parts.append(encoded[0])
        trials.append(encoded[1])
    if not finite:
        parts, trials = [], []
    header = _HEADER.pack(
        _MAGIC, FORMAT_VERSION, state.bits, 0 if finite else _FLAG_NONFINITE, conv_bin, fc_bin, index,
        len(parts), digest, *state._last_exchange,
    )
    message = np.concatenate([np.frombuffer(header + _with_lengths(parts), np.uint8), *parts])
    t1 = time.perf_counter()
    messages, synced = _allgather_bytes(state, message)
    t2 = time.perf_counter()
    _count_exchange(state, t1, synced, t2)

    headers = [_HEADER.unpack_from(m, 0) for m in messages]
    _check_headers(headers, rank)
    nonfinite_ranks = [r for r, h in enumerate(headers) if h[3] & _FLAG_NONFINITE]
    _count_bytes(state, buffer.numel(), message.size)
    if nonfinite_ranks:
        return _skip(state, buffer, nonfinite_ranks, index, t0, t1, t2)

    # The average is written over the bucket's own buffer: the local gradient is no longer needed
    # (its dense parts were copied into ``message``), and a fresh 4-bytes-per-parameter array per
    # step would cost page faults on every call.
    out = flat
    out.fill(0)
    for m, h in zip(messages, headers):  # rank order: every rank sums in the same sequence
        for (off, shape), (_, _, bin_size), chunk in zip(job.slots, layout, _parts(m, h[7], _HEADER.size)):
            target = out[off : off + int(np.prod(shape))]
            if chunk.size == 0:  # the sender had no gradient for it
                continue
            if bin_size is None:
                target += chunk.view(np.float32)  # numpy copes with an unaligned view
            else:
                decompress(chunk, out=target, accumulate=True)
    out /= np.float32(world)
    _log_exchange(state, [h[9:11] for h in headers])
    if state.budget is not None:
        figures = {i: [0.0, 0.0] for i, s in enumerate(settings) if s is not None}
        for m, h in zip(messages, headers):
            for i, chunk in enumerate(_parts(m, h[7], _HEADER.size)):
                if i in figures and chunk.size:
                    figures[i][0] += inspect(chunk)["selected"]
                    figures[i][1] += chunk.size
        _observe(state, index, layout, settings, figures, float(sum(m.size for m in messages)), world - 1)
    _commit(state._spare, layout, residuals, trials)
    _count_times(state, job, t0, t1, t2)
    return buffer


def slice_bounds(numel: int, bin_size: int | None, world: int) -> list[int]:
    """Element bounds of the ``world`` slices of a tensor in the reduce-scatter exchange: rank ``j`` owns
    ``[b[j], b[j+1])``.  Compressed tensors are cut at bin boundaries, so a slice's bins are the tensor's
    bins; a tensor of fewer bins than ranks leaves some slices empty."""
    if bin_size is None:
        return [j * numel // world for j in range(world + 1)]
    bins = -(-numel // bin_size)
    return [min(numel, bin_size * (j * bins // world)) for j in range(world + 1)]


# control vector of the reduce-scatter exchange, one row per destination rank: these fields, then the byte
# count of the slices sent to that rank and of all slices the sender sends, then (selected, bytes) of each
# compressed tensor when a bandwidth budget needs them
_CONTROL_FIELDS = ("format_version", "bits", "flags", "conv_bin", "fc_bin", "bucket_index", "tensor_count",
                   "layout", "exchange_iter", "exchange_us")
_RS_HEADER = struct.Struct("<BI")  # flags, tensor count of an owner's message


def _reduce_scatter(state, job, layout, settings, residuals, rank, world, t0):
    """Slices to their owners, owners' re-compressed sums to everyone (see ``choose_exchange``).

    Each rank owns one slice of every tensor (``slice_bounds``).  Stage 1: each rank encodes every slice
    of its gradient with its residual, as the all-gather does for the whole tensor, and sends slice ``j``
    to rank ``j``.  Rank ``j`` decodes the ``world`` payloads of its slice and sums them in rank order,
    then encodes that sum with an error-feedback residual of its own for the slice (``owner_residuals``)
    and all-gathers the result; every rank decodes all owners' payloads, so replicas stay bit-identical.
    Every flag and configuration field travels first in a control vector that each rank sends every
    other rank (with the byte count addressed to that rank), so all ranks agree on skipping a bucket
    before anything else moves.
    """
    totals = state._totals
    index, buffer = job.index, job.buffer
    flat = buffer.detach().numpy()
    bounds = [slice_bounds(int(np.prod(shape)), setting and setting[0], world)
              for (_, shape, _), setting in zip(layout, settings)]
    to_owner: list[list[np.ndarray]] = [[] for _ in range(world)]
    trials: list[np.ndarray | None] = []
    figures = {i: [0, 0] for i, s in enumerate(settings) if s is not None}
    finite = True
    for i, ((off, shape), (ordinal, _, _), setting, res) in enumerate(zip(job.slots, layout, settings, residuals)):
        grad = flat[off : off + int(np.prod(shape))]
        b = bounds[i]
        if i in job.unused:
            for j in range(world):
                to_owner[j].append(_EMPTY)
            trials.append(None)
            continue
        if setting is None:
            if not np.isfinite(grad).all():
                finite = False
                break
            for j in range(world):
                to_owner[j].append(grad[b[j] : b[j + 1]].view(np.uint8))
            trials.append(None)
            continue
        trial = _spare_for(state._spare, ordinal, res)
        try:
            for j in range(world):
                if b[j + 1] == b[j]:  # fewer bins than ranks: nothing of this tensor for rank j
                    to_owner[j].append(np.zeros(0, np.uint8))
                    continue
                payload = compress(grad[b[j] : b[j + 1]], res[b[j] : b[j + 1]], bin_size=setting[0],
                                   bits=setting[1], residual_out=trial[b[j] : b[j + 1]])
                to_owner[j].append(payload)
                if state.budget is not None:
                    figures[i][0] += inspect(payload)["selected"]
                    figures[i][1] += payload.size
        except ValueError:
            finite = False
            break
        trials.append(trial)
    if not finite:
        to_owner, trials = [[] for _ in range(world)], []
    messages = [np.concatenate([np.frombuffer(_with_lengths(p), np.uint8), *p]) if p else np.zeros(0, np.uint8)
                for p in to_owner]
    control = [FORMAT_VERSION, state.bits, 0 if finite else _FLAG_NONFINITE, *state._bins_header(), index,
               len(to_owner[0]), _signed64(_layout_digest((layout, settings))), *state._last_exchange,
               0, sum(m.size for m in messages)]
    if state.budget is not None:
        control += [v for i in sorted(figures) for v in figures[i]]
    nfields = len(_CONTROL_FIELDS)
    rows = np.tile(np.array(control, np.int64), (world, 1))
    rows[:, nfields] = [m.size for m in messages]
    t1 = time.perf_counter()
    controls = _alltoall_control(state, rows)
    synced = time.perf_counter()
    _check_headers([tuple(c[:nfields]) for c in controls], rank, _CONTROL_FIELDS)
    nonfinite_ranks = [r for r, c in enumerate(controls) if c[2] & _FLAG_NONFINITE]
    sent = sum(m.size for m in messages)
    if nonfinite_ranks:
        t2 = time.perf_counter()
        _count_exchange(state, t1, synced, t2)
        _count_bytes(state, buffer.numel(), sent)
        return _skip(state, buffer, nonfinite_ranks, index, t0, t1, t2)
    received = _alltoall_bytes(state, messages, [int(c[nfields]) for c in controls])
    t_a2a = time.perf_counter()

    # Stage 2, on the owner: the rank-ordered sum of its slices, re-compressed with its own residual.
    owned: list[np.ndarray] = []
    owner_trials: list[tuple | None] = []
    finite = True
    per_rank_parts = [_parts(m, len(layout), 0) for m in received]
    for i, ((_, shape), (ordinal, _, _), setting) in enumerate(zip(job.slots, layout, settings)):
        lo, hi = bounds[i][rank], bounds[i][rank + 1]
        total = np.zeros(hi - lo, np.float32)
        for parts in per_rank_parts:  # rank order
            if parts[i].size == 0:  # nothing of this slice, or the sender had no gradient for it
                continue
            if setting is None:
                total += parts[i].view(np.float32)
            else:
                decompress(parts[i], out=total, accumulate=True)
        if hi > lo and all(parts[i].size == 0 for parts in per_rank_parts):
            # no rank had a gradient for it: DDP drops the result, so the owner's residual stays as it is
            owned.append(_EMPTY)
            owner_trials.append(None)
            continue
        if setting is None or hi == lo:
            if not np.isfinite(total).all():
                finite = False
                break
            owned.append(total.view(np.uint8) if setting is None else np.zeros(0, np.uint8))
            owner_trials.append(None)
            continue
        res, stale = _owner_residual(state, ordinal, world, rank, lo, hi)
        encoded = _encode(total, res, setting, ordinal, state._owner_spare)
        if encoded is None:  # the sum overflowed
            finite = False
            break
        owned.append(encoded[0])
        owner_trials.append((i, ordinal, res, encoded[1], lo, hi, stale))
    if not finite:
        owned, owner_trials = [], []
    message = np.concatenate([np.frombuffer(_RS_HEADER.pack(0 if finite else _FLAG_NONFINITE, len(owned))
                                            + _with_lengths(owned), np.uint8), *owned])
    gathered, _ = _allgather_bytes(state, message)
    t2 = time.perf_counter()
    _count_exchange(state, t1, synced, t2)
    _count_bytes(state, buffer.numel(), sent + message.size)
    overflow_ranks = [r for r, m in enumerate(gathered) if _RS_HEADER.unpack_from(m, 0)[0] & _FLAG_NONFINITE]
    if overflow_ranks:
        return _skip(state, buffer, overflow_ranks, index, t0, t1, t2)

    out = flat
    out.fill(0)
    for j, m in enumerate(gathered):
        for (off, shape), setting, b, chunk in zip(job.slots, settings, bounds, _parts(m, len(layout),
                                                                                      _RS_HEADER.size)):
            target = out[off + b[j] : off + b[j + 1]]
            if chunk.size == 0:
                continue
            if setting is None:
                target += chunk.view(np.float32)
            else:
                decompress(chunk, out=target, accumulate=True)
    out /= np.float32(world)
    _log_exchange(state, [(int(c[8]), int(c[9])) for c in controls])
    if state.budget is not None:
        count = len(figures)
        summed = np.sum([c[nfields + 2 : nfields + 2 + 2 * count] for c in controls], axis=0)
        figs = {i: (float(summed[2 * k]), float(summed[2 * k + 1])) for k, i in enumerate(sorted(figures))}
        _observe(state, index, layout, settings, figs, float(sum(int(c[nfields + 1]) for c in controls)),
                 2 * (world - 1) / world)
    _commit(state._spare, layout, residuals, trials)
    for entry in owner_trials:
        if entry is not None:
            i, ordinal, res, trial, lo, hi, stale = entry
            state._owner_spare[ordinal] = res
            state.owner_residuals[ordinal] = (world, rank, lo, hi, trial)
            if stale is not None:
                # the owned slice moved (the bin size changed): the old owner residual holds mass of the
                # rank-summed gradient, as this rank's own residual does, so it goes there and is sent again
                residuals[i][stale[2] : stale[3]] += stale[4]
    totals["a2a_s"] += t_a2a - synced
    _count_times(state, job, t0, t1, t2)
    return buffer


def _owner_residual(state, ordinal, world, rank, lo, hi) -> tuple[np.ndarray, tuple | None]:
    """This rank's stage-2 residual of tensor ``ordinal``'s slice ``[lo, hi)`` and, when the slice changed
    (another bin size; a different world sums different slices), the old entry, whose mass the commit folds
    into this rank's own residual of the tensor; the new residual then starts at zero."""
    entry = state.owner_residuals.get(ordinal)
    if entry is not None and entry[:4] == (world, rank, lo, hi):
        return entry[4], None
    stale = entry if entry is not None and np.any(entry[4]) else None
    return np.zeros(hi - lo, np.float32), stale


def _signed64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def _commit(spares, layout, residuals, trials) -> None:
    for i, ((ordinal, _, _), trial) in enumerate(zip(layout, trials)):
        if trial is not None:
            # swap: the trial becomes the residual, the old residual the next spare
            spares[ordinal] = residuals[i]
            residuals[i] = trial


def _count_exchange(state, t1, synced, t2) -> None:
    state._totals["sync_s"] += synced - t1
    state._totals["exchange_s"] += t2 - synced
    state._exchange_s_this_iter += t2 - synced


def _count_bytes(state, numel, sent) -> None:
    totals = state._totals
    totals["dense_bytes"] += 4 * numel
    totals["payload_bytes"] += sent
    totals["compressed_dense_bytes"] += 4 * numel
    totals["compressed_payload_bytes"] += sent


def _count_times(state, job, t0, t1, t2) -> None:
    totals = state._totals
    totals["compressed_steps"] += 1 if job.is_last else 0
    totals["encode_s"] += t1 - t0
    totals["comm_s"] += t2 - t1
    totals["decode_s"] += time.perf_counter() - t2


def _skip(state, buffer, nonfinite_ranks, index, t0, t1, t2):
    totals = state._totals
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


if torch is not None:
    # DDP compares real annotation objects; ``from __future__ import annotations`` made them strings.
    adacomp_hook.__annotations__.update(bucket=dist.GradBucket, state=AdaCompState,
                                         **{"return": torch.futures.Future[torch.Tensor]})


_HEADER_FIELDS = ("magic", "format_version", "bits", None, "conv_bin", "fc_bin", "bucket_index", "tensor_count",
                  "layout", None, None)


def _check_headers(headers, rank, fields=_HEADER_FIELDS) -> None:
    """Raise on every rank alike when the ranks' headers disagree; ``None`` fields and the tensor count
    (it differs legitimately for a non-finite rank) are not compared."""
    bad = []
    for i, name in enumerate(fields):
        if name is None or name in ("tensor_count", "flags", "exchange_iter", "exchange_us"):
            continue
        values = [h[i] for h in headers]
        if len(set(values)) > 1:
            bad.append(f"{name}: " + ", ".join(f"rank {r}={v}" for r, v in enumerate(values)))
    if bad:
        raise AdaCompConfigError(f"adlcodec ranks disagree (seen on rank {rank}): " + "; ".join(bad))
