"""Training the image model on an IDX (MNIST / Fashion-MNIST) or CIFAR (binary version) folder.

Loss: ``(1 − SSIM) + MSE`` on [0, 1] pixels, with SSIM computed as scikit-image does by default (7×7
uniform window, sample covariance, K1 = 0.01, K2 = 0.03), because SSIM is what the codec is judged on.
Two things make one model serve the whole rate–distortion curve:

* nested latent: each batch keeps only a random prefix ``k`` of the code (the rest is zeroed), so a
  truncated code still decodes well;
* quantization-aware: each batch quantizes the code exactly as adlcodec does for a random bit width
  (``±s·(m+1)/L`` with ``s`` the largest magnitude), with a straight-through gradient.
"""

from __future__ import annotations

import math
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..data import read_idx
from .model import ModelSpec, build_network, save_model

__all__ = ["TrainImageConfig", "load_image_folder", "train_image_model", "adlcodec_quantize_torch", "ssim_torch"]

_CIFAR_RECORD = {3073: 1, 3074: 2}  # record bytes -> label bytes (CIFAR-10, CIFAR-100 binary versions)


def _idx_files(folder: Path, split: str) -> list[Path]:
    files = sorted(p for p in folder.iterdir() if "images-idx3-ubyte" in p.name)
    prefix = {"train": "train", "test": "t10k"}[split]
    chosen = [p for p in files if p.name.startswith(prefix)]
    return chosen or files


def _cifar_files(folder: Path, split: str) -> list[Path]:
    files = sorted(p for p in folder.rglob("*.bin") if p.is_file())
    if split == "train":
        chosen = [p for p in files if p.name.startswith(("data_batch", "train"))]
    else:
        chosen = [p for p in files if p.name.startswith("test")]
    return chosen or files


def _read_cifar_bin(path: Path) -> np.ndarray:
    raw = np.fromfile(path, np.uint8)
    for record, label_bytes in _CIFAR_RECORD.items():
        if raw.size and raw.size % record == 0:
            return raw.reshape(-1, record)[:, label_bytes:].reshape(-1, 3, 32, 32)
    raise ValueError(f"{path}: size {raw.size} is not a whole number of CIFAR records (3073 or 3074 bytes)")


def load_image_folder(folder: str | os.PathLike, split: str = "train") -> np.ndarray:
    """uint8 images ``(N, C, H, W)`` from IDX ``*images-idx3-ubyte[.gz]`` or CIFAR ``*.bin`` files."""
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = Path(folder)
    if not folder.is_dir():
        raise FileNotFoundError(f"data directory {folder} does not exist")
    idx = _idx_files(folder, split)
    if idx:
        arrays = [read_idx(p) for p in idx]
        for p, a in zip(idx, arrays):
            if a.ndim != 3 or a.dtype != np.uint8:
                raise ValueError(f"{p}: expected uint8 images (N, H, W), got {a.dtype} {a.shape}")
        return np.concatenate(arrays)[:, None]
    cifar = _cifar_files(folder, split)
    if cifar:
        return np.concatenate([_read_cifar_bin(p) for p in cifar])
    raise FileNotFoundError(
        f"no IDX (*images-idx3-ubyte[.gz]) or CIFAR binary (*.bin) image files in {folder}"
    )


def adlcodec_quantize_torch(z, bits: int):
    """adlcodec's value quantizer (docs/FORMAT.md §5) per row, with a straight-through gradient."""
    import torch

    if bits == 1:
        s = z.abs().mean(dim=1, keepdim=True).clamp_min(1e-12)
        q = torch.where(z < 0, -s, s)
    else:
        levels = float(1 << (bits - 1))
        s = z.abs().amax(dim=1, keepdim=True).clamp_min(1e-12)
        m = torch.clamp(torch.floor(z.abs() / s * levels + 0.5), 1.0, levels)
        q = torch.sign(z) * s * m / levels
    return z + (q - z).detach()


def ssim_torch(x, y, window: int = 7):
    """Mean SSIM of [0, 1] images, as ``skimage.metrics.structural_similarity(data_range=1)``."""
    import torch.nn.functional as F

    c1, c2 = 0.01**2, 0.03**2
    cov_norm = window * window / (window * window - 1.0)
    pool = lambda t: F.avg_pool2d(t, window, stride=1)  # noqa: E731 - valid window = skimage's crop
    mx, my = pool(x), pool(y)
    vx = cov_norm * (pool(x * x) - mx * mx)
    vy = cov_norm * (pool(y * y) - my * my)
    vxy = cov_norm * (pool(x * y) - mx * my)
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return s.mean()


@dataclass
class TrainImageConfig:
    data: str = "/usr/share/datasets/fashion-mnist"
    out: str = "image_model.npz"
    channels: int | None = None  # default: the data's
    tile: int | None = None  # default: 28 for 28×28 data, else 32
    latent_dim: int = 64
    width: int = 32
    depth: int = 1
    bottleneck: int = 0
    epochs: float = 5.0
    init: str | None = None  # continue training this model file (fine-tuning) instead of a fresh network
    max_minutes: float | None = None  # wall-clock budget; the schedule ends at whichever limit comes first
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0
    threads: int = 2
    train_subset: int | None = None
    prefixes: tuple = field(default=(16, 24, 32, 48, 64, 96, 128))
    quant_bits: tuple = field(default=(0, 2, 4, 8))  # 0 = unquantized; 1 is not trained (its scale is a mean)


def _tiles_for_training(images: np.ndarray, tile: int, rng: np.random.Generator) -> np.ndarray:
    """One random tile×tile crop per image (edge-padded when the image is smaller)."""
    n, c, h, w = images.shape
    if h < tile or w < tile:
        images = np.pad(images, ((0, 0), (0, 0), (0, max(0, tile - h)), (0, max(0, tile - w))), mode="edge")
        h, w = images.shape[2:]
    if h == tile and w == tile:
        return images
    ys = rng.integers(0, h - tile + 1, n)
    xs = rng.integers(0, w - tile + 1, n)
    return np.stack([images[i, :, y : y + tile, x : x + tile] for i, (y, x) in enumerate(zip(ys, xs))])


def _nested_quantized(z, prefixes, quant_bits, rng: np.random.Generator):
    """Each row keeps its own random prefix of the code, quantized at its own random bit width.

    Per-row (not per-batch) choices mean every batch trains every rate, and the decoder's batch-norm
    statistics in training are the same mixture of rates as its running statistics used at inference.
    """
    import torch

    n, dim = z.shape
    k = torch.from_numpy(rng.choice(np.asarray(prefixes), n))
    keep = (torch.arange(dim)[None, :] < k[:, None]).to(z.dtype)
    z = z * keep
    bits = rng.choice(np.asarray(quant_bits), n)
    out = z
    for b in sorted(set(int(v) for v in bits) - {0}):
        rows = torch.from_numpy(bits == b)[:, None]
        # zeros beyond the prefix quantize to zero, and the scale (the largest magnitude) is the prefix's
        out = torch.where(rows, adlcodec_quantize_torch(z, b) * keep, out)
    return out


def _flushes_subnormals(torch) -> bool:
    return torch.tensor([1e-40]).mul(1.0).item() == 0.0


def train_image_model(config: TrainImageConfig, progress: bool = True, images: np.ndarray | None = None) -> dict:
    """Trains and writes ``config.out``; returns a summary (model id, size, losses, seconds)."""
    import torch

    # Weights and activations drift into subnormal floats late in training; on x86 each subnormal operation
    # costs ~100 cycles, which slowed steps by an order of magnitude in practice. The flush mode belongs to
    # the calling thread (MXCSR), so the caller gets its own back: left on, it silently zeroes its tiny floats.
    flushing = _flushes_subnormals(torch)
    torch.set_flush_denormal(True)
    try:
        return _train_image_model(config, progress, images)
    finally:
        torch.set_flush_denormal(flushing)


def _train_image_model(config: TrainImageConfig, progress: bool, images: np.ndarray | None) -> dict:
    import torch

    from tqdm import tqdm

    torch.manual_seed(config.seed)
    torch.set_num_threads(max(1, config.threads))
    rng = np.random.default_rng(config.seed)
    source = "array"
    if images is None:
        images = load_image_folder(config.data, "train")
        source = Path(config.data).name
    if config.train_subset:
        images = images[: config.train_subset]
    channels = config.channels or images.shape[1]
    if images.shape[1] != channels:
        if images.shape[1] == 1 and channels == 3:
            images = np.repeat(images, 3, axis=1)
        else:
            raise ValueError(f"data has {images.shape[1]} channels, model wants {channels}")
    tile = config.tile or (28 if images.shape[2:] == (28, 28) else 32)
    init_id = None
    if config.init:
        # fine-tuning: the architecture is the given model's (its spec wins over the config's)
        from .model import load_model

        start_model = load_model(config.init)
        spec, init_id = start_model.spec, f"{start_model.model_id:08x}"
        if spec.channels != channels or spec.tile != tile:
            raise ValueError(f"--init model codes {spec.channels}-channel {spec.tile}px tiles, the data needs {channels}/{tile}")
    else:
        spec = ModelSpec(
            channels=channels, tile=tile, latent_dim=config.latent_dim, width=config.width, depth=config.depth,
            bottleneck=config.bottleneck,
        )
    spec.validate()
    prefixes = sorted({min(k, spec.latent_dim) for k in config.prefixes} | {spec.latent_dim})
    if not config.quant_bits or any(b not in (0, 2, 4, 8) for b in config.quant_bits):
        # 16/32-bit payloads are binary16/32, not the max-scaled levels modelled here (and nearly lossless)
        raise ValueError(f"quant_bits must be among 0 (none), 2, 4, 8, got {config.quant_bits}")
    if init_id is not None:
        encoder, decoder = start_model.encoder, start_model.decoder
    else:
        encoder, decoder = build_network(spec)
    params = list(encoder.parameters()) + list(decoder.parameters())
    steps_per_epoch = max(1, len(images) // config.batch_size)
    total_steps = max(1, int(round(config.epochs * steps_per_epoch)))
    optimizer = torch.optim.Adam(params, lr=config.lr)
    warmup = max(1, min(500, total_steps // 20))
    budget = None if not config.max_minutes else 60.0 * config.max_minutes
    encoder.train()
    decoder.train()
    start = time.perf_counter()
    step, losses = 0, []
    bar = tqdm(total=total_steps, desc="image train", disable=not progress, unit="step")
    done = 0.0
    while done < 1.0:
        order = rng.permutation(len(images))
        for b in range(steps_per_epoch):
            # Progress is the larger of the step and the time fraction, so a wall-clock budget on a shared
            # machine still gets a complete schedule (warm-up, then cosine decay to 1 % of the peak).
            done = step / total_steps
            if budget is not None:
                done = max(done, (time.perf_counter() - start) / budget)
            if done >= 1.0:
                break
            lr = config.lr * min(1.0, (step + 1) / warmup) * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * done)))
            for group in optimizer.param_groups:
                group["lr"] = lr
            batch_idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            x = torch.from_numpy(_tiles_for_training(images[batch_idx], tile, rng).astype(np.float32) / 255.0)
            z = _nested_quantized(encoder(x), prefixes, config.quant_bits, rng)
            y = decoder(z)
            loss = (1.0 - ssim_torch(y, x)) + torch.mean((y - x) ** 2)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            losses.append(loss.item())
            step += 1
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}", lr=f"{lr:.1e}")
    bar.close()
    seconds = time.perf_counter() - start
    info = {
        "trained_on": source,
        **({"init": init_id} if init_id is not None else {}),
        "images": int(len(images)),
        "steps": step,
        "epochs": round(step / steps_per_epoch, 2),
        "seed": config.seed,
        "prefixes": prefixes,
        "quant_bits": [int(b) for b in config.quant_bits],
        "batch_size": config.batch_size,
        "lr": config.lr,
        "schedule": f"linear warm-up {warmup} steps, cosine to 1 %" + (f", {config.max_minutes} min budget" if budget else ""),
        "seconds": round(time.perf_counter() - start, 1),
        "final_loss": float(np.mean(losses[-50:])),
        "loss_curve": [round(float(np.mean(losses[i : i + 100])), 4) for i in range(0, len(losses), 100)],
    }
    model_id = save_model(config.out, spec, encoder, decoder, info)
    return {
        "model_id": f"{model_id:08x}",
        "path": str(config.out),
        "bytes": Path(config.out).stat().st_size,
        "parameters": sum(p.numel() for p in params),
        **info,
        "seconds": seconds,
    }
