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
    epochs: float = 3.0
    batch_size: int = 128
    lr: float = 2e-3
    seed: int = 0
    threads: int = 2
    train_subset: int | None = None
    prefixes: tuple = field(default=(16, 24, 32, 48, 64))
    quant_bits: tuple = field(default=(0, 2, 4, 8))  # 0 = unquantized


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


def train_image_model(config: TrainImageConfig, progress: bool = True, images: np.ndarray | None = None) -> dict:
    """Trains and writes ``config.out``; returns a summary (model id, size, losses, seconds)."""
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
    spec = ModelSpec(channels=channels, tile=tile, latent_dim=config.latent_dim, width=config.width)
    spec.validate()
    prefixes = sorted({min(k, spec.latent_dim) for k in config.prefixes} | {spec.latent_dim})
    encoder, decoder = build_network(spec)
    params = list(encoder.parameters()) + list(decoder.parameters())
    steps_per_epoch = max(1, len(images) // config.batch_size)
    total_steps = max(1, int(round(config.epochs * steps_per_epoch)))
    optimizer = torch.optim.Adam(params, lr=config.lr)
    schedule = torch.optim.lr_scheduler.OneCycleLR(optimizer, max_lr=config.lr, total_steps=total_steps)
    encoder.train()
    decoder.train()
    start = time.perf_counter()
    step, losses = 0, []
    bar = tqdm(total=total_steps, desc="image train", disable=not progress, unit="step")
    while step < total_steps:
        order = rng.permutation(len(images))
        for b in range(steps_per_epoch):
            if step >= total_steps:
                break
            batch_idx = order[b * config.batch_size : (b + 1) * config.batch_size]
            x = torch.from_numpy(_tiles_for_training(images[batch_idx], tile, rng).astype(np.float32) / 255.0)
            z = encoder(x)
            k = int(rng.choice(prefixes))
            if k < spec.latent_dim:
                z = torch.cat([z[:, :k], torch.zeros_like(z[:, k:])], dim=1)
            bits = int(rng.choice(config.quant_bits))
            if bits:
                z = torch.cat([adlcodec_quantize_torch(z[:, :k], bits), z[:, k:]], dim=1)
            y = decoder(z)
            loss = (1.0 - ssim_torch(y, x)) + torch.mean((y - x) ** 2)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            schedule.step()
            losses.append(loss.item())
            step += 1
            bar.update(1)
            if step % 50 == 0:
                bar.set_postfix(loss=f"{np.mean(losses[-50:]):.4f}")
    bar.close()
    seconds = time.perf_counter() - start
    info = {
        "trained_on": source,
        "images": int(len(images)),
        "steps": step,
        "epochs": config.epochs,
        "seed": config.seed,
        "prefixes": prefixes,
        "final_loss": float(np.mean(losses[-50:])),
    }
    model_id = save_model(config.out, spec, encoder, decoder, info)
    return {
        "model_id": f"{model_id:08x}",
        "path": str(config.out),
        "bytes": Path(config.out).stat().st_size,
        "parameters": sum(p.numel() for p in params),
        "seconds": seconds,
        **info,
    }
