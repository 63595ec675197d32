"""Bandwidth budget for the DDP hook: pick bin size and bits per layer so a step's exchange meets a deadline.

The controller is pure Python and sees only figures that every rank holds identically (payload sizes and
selected counts read from the all-gathered messages, and every rank's measured exchange time, which each rank
repeats in its next message), so every rank computes the same plan from the same numbers and replicas stay
bit-identical.  ``adlcodec.ddp.AdaCompState(link_mbps=..., max_comm_ms=...)`` drives it; nothing here talks
to the network.

How it decides (the documentation of record is docs/CLUSTER.md, "Bandwidth budget"):

* **Ceiling.** The configured setting (``bin_size`` / the per-kind defaults, and ``bits``) is the finest the
  controller ever uses: it trades fidelity away only when the deadline needs it, and wins it back when the
  link allows.
* **One pressure knob.** A single number ``pressure >= 0`` maps to every layer's setting.  Fully connected
  layers move first: their bits step down (8 -> 4 -> 2 -> 1, one unit each) and then their bin grows by a
  factor of two per unit, up to their floor; only then do convolution layers do the same.  Large FC
  matrices tolerate sparsity (AdaComp's own choice of bin 500 vs 50), small conv kernels do not.
* **Floor.** A bin never grows beyond ``fc_floor`` (default 4) times the configured FC bin, or
  ``conv_floor`` (default 2) times the configured conv bin, and bits never below 1.  At that floor a layer
  still sends about one value per 2000 (FC) or 100 (conv) elements each step, and error feedback keeps
  whatever it does not send; bench/cluster/budget_bench.py measures the accuracy of training at the
  floor.  If even the floor misses the deadline the controller stays there and reports
  ``feasible: False``.
* **Model.** A step's exchange costs a fixed overhead plus ``(ranks - 1) * message_bytes * 8 / link_rate``
  summed over its buckets (every rank receives every other rank's message; gloo's ring all-gather and MPI's
  Allgatherv both move that much over each link), with TCP/IP/Ethernet framing on top (1514 bytes on the
  wire per 1448 of data).  A layer's payload at bin ``S`` and ``b`` bits is predicted from its measured selected count per
  bin and the position code's cost, ``k * (value_bits + log2(e * n / k))`` bits, scaled by the ratio of
  measured to modelled bytes at the current setting.  The selected count per bin is measured at the
  current bin size and scaled to others as ``(S / S_now) ** 0.15``: AdaComp selects a few elements per bin
  whatever its size, slowly more in larger bins (30 steps of N(0,1) gradients: 5.3 per bin at S = 50, 7.2 at
  500, 9.9 at 4000).  Anchoring on the latest measurement follows the density as training settles.
* **Feedback.** The fixed overhead (latency, waking the processes of every hop, the collectives' own work)
  is what the link rate does not explain: the mean of measured minus modelled time over the last window,
  smoothed (negative when the link is faster than stated).  The link rate itself is trusted, so a plan that
  sends fewer bytes is predicted to save exactly their transfer time; if the true rate is anywhere above
  half the stated one, re-estimating the overhead at each new plan still converges onto the deadline.
  ``feedback=False`` uses the bare model.
* **Warm-up.** The first decision comes after ``first_window`` compressed steps (default 30); until then the
  configured setting runs and the deadline is not enforced.  Early gradients are large and dense, and
  training is most sensitive to how they are sent (DGC's sparsity warm-up makes the same choice); on the
  emulated cluster a controller that tightened from step 3 cost 1.5 points of accuracy after one epoch, one
  that waited 30 steps none (bench/cluster/results/).
* **Cadence and hysteresis.** After the first decision, one every ``interval`` steps.  The plan aims at 90 %
  of the deadline and is left alone while the prediction stays within 80-97 % of it.  A decision tightens
  by at most ``max_step`` units (default 1, one doubling of a bin) as soon as the prediction is above the
  band.  Relaxing is slower and needs a lasting margin: only after ``relax_after`` decisions in a row
  (default 3) predicted below the band, by at most a quarter of ``max_step``, and the relaxed plan must
  still meet the target with the largest overhead observed over those decisions.  Then the count starts
  again.  A shared machine's load comes and goes; a controller that relaxed on every lull tightened again
  at the next burst, and each change of plan perturbs training for nothing
  (bench/cluster/results/budget/README.md).
"""

from __future__ import annotations

import math
import statistics
from typing import Any

__all__ = ["BandwidthBudget", "bits_ladder", "VALID_BITS"]

VALID_BITS = (1, 2, 4, 8, 16, 32)
_WIRE_BYTES_PER_DATA_BYTE = 1514 / 1448  # full-size Ethernet frame per TCP payload (IPv4, timestamps)
_PRESSURE_GRID = 8  # pressure is chosen on a 1/8 grid: fine enough, and comparable across ranks exactly
_PER_BIN_GROWTH = 0.15  # selected elements per bin grow as bin_size ** 0.15 (see the module docstring)
_HISTORY_LIMIT = 10_000


def bits_ladder(bits: int) -> list[int]:
    """Bit widths from ``bits`` down to 1, one step per unit of pressure."""
    return [b for b in VALID_BITS if b <= bits][::-1]


def _payload_model(numel: int, selected: float, bits: int) -> float:
    """Modelled bits of a payload's positions and values, without its fixed header."""
    if selected <= 0:
        return 0.0
    gap = max(numel / selected, 1.0)
    return selected * (bits + math.log2(math.e * gap))


class _Layer:
    __slots__ = ("ordinal", "numel", "kind", "base_bin", "base_bits", "header_bytes", "measured_bin", "per_bin",
                 "calibration")

    def __init__(self, ordinal: int, numel: int, kind: str, base_bin: int, base_bits: int, header_bytes: int):
        self.ordinal, self.numel, self.kind = ordinal, numel, kind
        self.base_bin, self.base_bits, self.header_bytes = base_bin, base_bits, header_bytes
        self.measured_bin = 0  # bin size of the latest measurement (0: none yet)
        self.per_bin = 1.0  # selected elements per bin measured there (smoothed)
        self.calibration = 1.0  # measured / modelled payload bits at the latest setting

    def selected_per_bin(self, bin_size: int) -> float:
        if not self.measured_bin:
            return self.per_bin
        return self.per_bin * (bin_size / self.measured_bin) ** _PER_BIN_GROWTH

    def predict_bytes(self, bin_size: int, bits: int) -> float:
        bins = self.numel / bin_size  # not rounded up: the prediction must fall steadily as bins grow
        selected = min(float(self.numel), self.selected_per_bin(bin_size) * bins)
        return self.header_bytes + self.calibration * _payload_model(self.numel, selected, bits) / 8.0


class BandwidthBudget:
    """Chooses ``(bin_size, bits)`` per compressed layer so the exchange meets ``max_comm_ms``.

    Args:
        link_mbps: each rank's link rate in Mbit/s (both directions).
        max_comm_ms: deadline for one step's exchange (all buckets), in milliseconds.
        world: number of ranks.
        interval: compressed steps between decisions.
        first_window: compressed steps before the first decision.
        margin: the plan aims at ``(1 - margin) * max_comm_ms`` and is left alone while the prediction
            stays between ``1 - 2 * margin`` and ``1 - margin / 3`` of it.
        conv_floor, fc_floor: largest bin as a multiple of the configured bin, per layer kind.
        max_step: largest change of pressure in one decision.
        feedback: correct the link model with measured exchange times.
        relax_after: decisions in a row below the band before the plan may relax.
    """

    def __init__(self, link_mbps: float, max_comm_ms: float, world: int, *, interval: int = 10,
                 first_window: int = 30, margin: float = 0.1, conv_floor: float = 2.0, fc_floor: float = 4.0,
                 max_step: float = 1.0, feedback: bool = True, relax_after: int = 3):
        for name, value in (("link_mbps", link_mbps), ("max_comm_ms", max_comm_ms)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(f"{name} must be a number, got {type(value).__name__}")
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a positive finite number, got {value}")
        for name, value in (("interval", interval), ("first_window", first_window), ("world", world),
                            ("relax_after", relax_after)):
            if isinstance(value, bool) or not isinstance(value, int):
                raise TypeError(f"{name} must be an int, got {type(value).__name__}")
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        if not (isinstance(max_step, (int, float)) and max_step > 0):
            raise ValueError(f"max_step must be a number > 0, got {max_step!r}")
        if not 0 <= margin < 0.5:
            raise ValueError(f"margin must be in [0, 0.5), got {margin}")
        for name, value in (("conv_floor", conv_floor), ("fc_floor", fc_floor)):
            if not (isinstance(value, (int, float)) and math.isfinite(value) and value >= 1):
                raise ValueError(f"{name} must be a number >= 1, got {value!r}")
        self.link_mbps = float(link_mbps)
        self.max_comm_ms = float(max_comm_ms)
        self.world = world
        self.interval = interval
        self.first_window = first_window
        self.margin = float(margin)
        self.floors = {"conv": float(conv_floor), "fc": float(fc_floor)}
        self.feedback = bool(feedback)
        self.max_step = float(max_step)
        self.relax_after = relax_after
        self.slack: list[float] = []  # overhead seen at the latest decisions in a row below the band
        self.layers: dict[int, _Layer] = {}
        self.spans = {"fc": 0.0, "conv": 0.0}  # pressure units each kind can absorb (bit steps + doublings)
        self.buckets: dict[int, dict[str, Any]] = {}  # bucket index -> fixed bytes and its layers
        self.pressure = 0.0
        self.overhead_ms = 0.0  # measured minus modelled exchange time (smoothed)
        self.feasible = True
        self.decisions = 0
        self.steps_since_decision = 0
        self.predicted_ms_by_iter: dict[int, float] = {}
        self.step_bytes = 0.0
        self.window: list[tuple[float, float]] = []  # (measured ms, modelled ms) of recent steps
        self.history: list[dict[str, Any]] = []  # one entry per decision

    def __setstate__(self, state):
        # a controller pickled before relaxation waited for a lasting margin
        self.__dict__.update(dict(relax_after=3, slack=[]), **state)

    # -- layers and plan ----------------------------------------------------------------------------------
    def register(self, ordinal: int, numel: int, ndim: int, base_bin: int, base_bits: int, header_bytes: int) -> None:
        if ordinal in self.layers:
            return
        kind = "conv" if ndim >= 3 else "fc"
        self.layers[ordinal] = _Layer(ordinal, numel, kind, base_bin, base_bits, header_bytes)
        span = len(bits_ladder(base_bits)) - 1 + math.log2(self.floors[kind])
        self.spans[kind] = max(self.spans[kind], span)

    def setting_at(self, layer: _Layer, pressure: float) -> tuple[int, int]:
        own = pressure if layer.kind == "fc" else max(0.0, pressure - self.spans["fc"])
        ladder = bits_ladder(layer.base_bits)
        bit_steps = min(int(own), len(ladder) - 1)
        bits = ladder[bit_steps]
        doublings = min(max(0.0, own - (len(ladder) - 1)), math.log2(self.floors[layer.kind]))
        bin_size = int(round(layer.base_bin * 2.0 ** doublings))
        return max(1, min(bin_size, layer.numel)), bits

    def setting(self, ordinal: int) -> tuple[int, int]:
        return self.setting_at(self.layers[ordinal], self.pressure)

    def max_pressure(self) -> float:
        return self.spans["fc"] + self.spans["conv"]

    # -- observations -------------------------------------------------------------------------------------
    def observe_bucket(self, index: int, fixed_bytes: float, layer_figures: list[tuple[int, int, int, float, float]],
                       message_bytes: float, peers: float | None = None) -> None:
        """One bucket's exchange: ``layer_figures`` is ``(ordinal, bin, bits, mean selected, mean bytes)``;
        ``peers`` is how many links each message byte crosses per rank (``world - 1``, the default, for an
        all-gather; ``2 (world - 1) / world`` for the hook's reduce-scatter)."""
        peers = float(self.world - 1 if peers is None else peers)
        self.buckets[index] = dict(fixed=float(fixed_bytes), layers=[f[0] for f in layer_figures], peers=peers)
        for ordinal, bin_size, bits, selected, nbytes in layer_figures:
            layer = self.layers[ordinal]
            per_bin = selected * bin_size / layer.numel
            if layer.measured_bin == bin_size:
                layer.per_bin = 0.5 * layer.per_bin + 0.5 * per_bin
            else:
                layer.measured_bin, layer.per_bin = bin_size, per_bin
            modelled = _payload_model(layer.numel, selected, bits)
            if modelled > 0:
                measured = max(nbytes - layer.header_bytes, 0.0) * 8.0
                layer.calibration = 0.5 * layer.calibration + 0.5 * (measured / modelled)
        self.step_bytes += peers * message_bytes

    def observe_exchange(self, iteration: int, measured_ms: float) -> None:
        """Largest exchange time any rank measured for ``iteration`` (it arrives one step later)."""
        modelled = self.predicted_ms_by_iter.pop(iteration, None)
        if modelled is None:
            return
        self.window.append((measured_ms, modelled))
        del self.window[:-max(self.interval, self.first_window)]

    def _transfer_ms(self, link_bytes: float) -> float:
        """Milliseconds for ``link_bytes`` (message bytes times the links each crosses) at the link rate."""
        return link_bytes * _WIRE_BYTES_PER_DATA_BYTE * 8.0 / (self.link_mbps * 1e3)

    def predict_ms(self, pressure: float, overhead_ms: float | None = None) -> float:
        """Modelled exchange time of one step at ``pressure``, plus the measured overhead (or ``overhead_ms``)."""
        total = 0.0
        for bucket in self.buckets.values():
            nbytes = bucket["fixed"]
            for ordinal in bucket["layers"]:
                layer = self.layers[ordinal]
                nbytes += layer.predict_bytes(*self.setting_at(layer, pressure))
            total += bucket.get("peers", self.world - 1) * nbytes
        return (self.overhead_ms if overhead_ms is None else overhead_ms) + self._transfer_ms(total)

    # -- decisions ----------------------------------------------------------------------------------------
    def end_step(self, iteration: int) -> None:
        """Close a compressed step, and decide when one is due."""
        self.predicted_ms_by_iter[iteration] = self._transfer_ms(self.step_bytes)
        for old in [i for i in self.predicted_ms_by_iter if i < iteration - 4]:
            del self.predicted_ms_by_iter[old]  # a measurement that never came (e.g. a skipped step)
        self.step_bytes = 0.0
        self.steps_since_decision += 1
        due = self.first_window if self.decisions == 0 else self.interval
        if self.steps_since_decision < due:
            return
        self.steps_since_decision = 0
        observed = None
        if self.feedback and self.window:
            observed = statistics.fmean(m - p for m, p in self.window)
            self.overhead_ms = observed if self.decisions == 0 else 0.7 * self.overhead_ms + 0.3 * observed
        self.pressure = self._solve(self.pressure, observed)
        self.decisions += 1
        predicted = self.predict_ms(self.pressure)
        self.feasible = predicted <= self.max_comm_ms
        measured = statistics.fmean(m for m, _ in self.window) if self.window else None
        self.history.append(dict(iteration=iteration, pressure=self.pressure, predicted_ms=predicted,
                                 measured_ms=measured, overhead_ms=self.overhead_ms, feasible=self.feasible))
        del self.history[:-_HISTORY_LIMIT]
        self.window.clear()

    def _solve(self, current: float, observed: float | None = None) -> float:
        deadline = self.max_comm_ms
        now = self.predict_ms(current)
        if now > (1.0 - self.margin / 3) * deadline:
            self.slack.clear()
            return self._settle(current, current + self.max_step)
        if now >= (1.0 - 2 * self.margin) * deadline:
            self.slack.clear()
            return current  # inside the band: a change would only chase noise
        # Below the band.  Waiting until the margin has lasted ``relax_after`` decisions (30 steps by
        # default), and asking it to hold with the largest overhead seen meanwhile, keeps a lull in the
        # machine's other load from starting a relax/tighten cycle: each change of plan sends training down
        # another path for nothing.
        self.slack.append(self.overhead_ms if observed is None else max(observed, self.overhead_ms))
        del self.slack[:-self.relax_after]
        if current <= 0 or len(self.slack) < self.relax_after:
            return current
        chosen = self._settle(current - self.max_step / 4, current, overhead_ms=max(self.slack))
        self.slack.clear()
        return chosen

    def _settle(self, lowest: float, highest: float, overhead_ms: float | None = None) -> float:
        """Pressure in ``[lowest, highest]`` nearest to the one whose prediction (with ``overhead_ms``, by
        default the measured overhead) meets the target."""
        target = (1.0 - self.margin) * self.max_comm_ms
        top = self.max_pressure()
        lo, hi = 0, int(math.ceil(top * _PRESSURE_GRID))
        if self.predict_ms(0.0, overhead_ms) <= target:
            best = 0
        elif self.predict_ms(hi / _PRESSURE_GRID, overhead_ms) > target:
            best = hi
        else:
            while hi - lo > 1:  # predicted time falls as pressure rises
                mid = (lo + hi) // 2
                if self.predict_ms(mid / _PRESSURE_GRID, overhead_ms) <= target:
                    hi = mid
                else:
                    lo = mid
            best = hi
        chosen = min(best / _PRESSURE_GRID, top)
        return min(max(chosen, max(lowest, 0.0)), highest)

    # -- reporting ----------------------------------------------------------------------------------------
    def plan(self) -> list[dict[str, Any]]:
        out = []
        for ordinal in sorted(self.layers):
            layer = self.layers[ordinal]
            bin_size, bits = self.setting(ordinal)
            out.append(dict(ordinal=ordinal, kind=layer.kind, numel=layer.numel, bin_size=bin_size, bits=bits,
                            base_bin_size=layer.base_bin, base_bits=layer.base_bits))
        return out

    def report(self) -> dict[str, Any]:
        return dict(
            link_mbps=self.link_mbps, max_comm_ms=self.max_comm_ms, pressure=self.pressure,
            max_pressure=self.max_pressure(), overhead_ms=self.overhead_ms, feasible=self.feasible,
            decisions=self.decisions, predicted_ms=self.predict_ms(self.pressure) if self.buckets else None,
            plan=self.plan(), history=list(self.history),
        )
