"""An independent numpy model of the algorithm in docs/FORMAT.md section 1 and 5 (not of the C++ code)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

F32 = np.float32


@dataclass
class Reference:
    selected: np.ndarray  # int64 indices
    sent: np.ndarray  # float32, one per selected index
    residual: np.ndarray  # float32, flat, after the step
    scale: np.float32
    dense: np.ndarray  # float32, flat: what a decoder must produce


def bin_maxima(G: np.ndarray, bin_size: int) -> np.ndarray:
    n = G.size
    nbins = -(-n // bin_size)
    padded = np.zeros(nbins * bin_size, F32)
    padded[:n] = np.abs(G)
    return np.repeat(padded.reshape(nbins, bin_size).max(axis=1), bin_size)[:n]


def half_saturating(x: np.ndarray) -> np.ndarray:
    with np.errstate(over="ignore"):
        h = x.astype(np.float16)
    h[np.isinf(h)] = np.copysign(np.float16(65504), x[np.isinf(h)])
    return h


def reference_step(grad: np.ndarray, residual: np.ndarray, bin_size: int, bits: int) -> Reference:
    g = np.asarray(grad, F32).reshape(-1)
    r = np.asarray(residual, F32).reshape(-1)
    G = r + g
    H = G + g
    selected = np.flatnonzero((np.abs(H) >= bin_maxima(G, bin_size)) & (G != 0))
    Gs = G[selected]
    a = np.abs(Gs)
    scale = F32(0)
    if bits == 1:
        if selected.size:
            # docs/FORMAT.md section 5: four interleaved partial sums in binary64, (P0 + P1) + (P2 + P3)
            a64 = a.astype(np.float64)
            P = [np.add.accumulate(a64[j::4])[-1] if a64[j::4].size else 0.0 for j in range(4)]
            total = (P[0] + P[1]) + (P[2] + P[3])
            scale = F32(total / selected.size)
        sent = np.where(Gs < 0, -scale, scale).astype(F32)
    elif bits <= 8:
        L = F32(2 ** (bits - 1))
        if selected.size:
            scale = a.max()
        with np.errstate(invalid="ignore", divide="ignore"):
            y = (a / scale) * L + F32(0.5)
        y = np.where(y >= F32(1), y, F32(1))
        y = np.minimum(y, L)
        m = np.floor(y).astype(np.int64) - 1
        magnitude = scale * ((m + 1).astype(F32) / L)
        sent = np.where(Gs < 0, -magnitude, magnitude).astype(F32)
    elif bits == 16:
        sent = half_saturating(Gs).astype(F32)
    else:
        sent = Gs.copy()
    new_residual = G.copy()
    new_residual[selected] = Gs - sent
    dense = np.zeros_like(G)
    dense[selected] = sent
    return Reference(selected, sent, new_residual, F32(scale), dense)


def information_bound_bits(n: int, k: int, value_bits: int) -> float:
    """n·H(k/n) bits to name the positions plus the value bits."""
    if k in (0, n):
        return float(k * value_bits)
    p = k / n
    entropy = -(p * np.log2(p) + (1 - p) * np.log2(1 - p))
    return float(n * entropy + k * value_bits)
