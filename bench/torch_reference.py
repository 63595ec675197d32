"""The same algorithm written as a plain torch-vectorized implementation: the baseline adlcodec must beat.

It stops at the selected indices and quantized values (no position coding, no payload), which favours it.
"""

import torch


def torch_adacomp_step(g: torch.Tensor, r: torch.Tensor, bin_size: int, bits: int):
    G = r + g
    H = G + g
    n = G.numel()
    nbins = -(-n // bin_size)
    padded = torch.zeros(nbins * bin_size, dtype=G.dtype)
    padded[:n] = G.abs()
    bin_max = padded.view(nbins, bin_size).amax(dim=1).repeat_interleave(bin_size)[:n]
    idx = ((H.abs() >= bin_max) & (G != 0)).nonzero().squeeze(1)
    Gs = G[idx]
    if bits == 1:
        scale = Gs.abs().double().mean().float() if idx.numel() else torch.tensor(0.0)
        sent = torch.where(Gs < 0, -scale, scale)
    elif bits <= 8:
        levels = float(2 ** (bits - 1))
        scale = Gs.abs().max() if idx.numel() else torch.tensor(0.0)
        m = ((Gs.abs() / scale) * levels + 0.5).clamp(1.0, levels).floor()
        sent = torch.sign(Gs) * scale * (m / levels)
    else:
        sent = Gs.clone()
    r.copy_(G)
    r[idx] = Gs - sent
    return idx, sent
