"""The learned image encoder/decoder pair and its model file.

Architecture (after the paper's multimedia path): the encoder is a stack of compression layers
(conv + BN + ReLU, two of them stride 2) followed by a fully connected layer that produces a compact
code; the decoder is a fully connected layer back to a feature map and stride-2 transposed convolutions
("deconvolutions") up to the tile size. The code is bounded by tanh so adlcodec's max-scaled quantizer
(levels ``±s·(m+1)/L``) sees a stable range.

The latent is *nested*: training randomly keeps only a prefix of the code, so the first ``k`` of
``latent_dim`` values already decode to a useful image and one model file serves several rates.

Model file: a ``.npz`` (no pickles) holding ``meta`` (UTF-8 JSON) and ``param/<name>`` float16 arrays.
The model id written into every .adl is the first 4 bytes of SHA-256 over the canonical content (meta,
then each array's name, shape and bytes in sorted order), so it does not depend on zip timestamps.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["ModelSpec", "ImageModel", "DEFAULT_MODEL_PATH", "EARLIER_MODELS_DIR", "build_network", "save_model",
           "load_model", "shipped_model"]

DEFAULT_MODEL_PATH = Path(__file__).with_name("default_fmnist.npz")
# Every model an earlier release shipped as its default, as <model id>.npz: .adl files name the model
# they were made with, and a new default must not orphan them.
EARLIER_MODELS_DIR = Path(__file__).with_name("earlier_models")
MODEL_FILE_VERSION = 1
SUPPORTED_TILES = (28, 32)
SUPPORTED_CHANNELS = (1, 3)


@dataclass(frozen=True)
class ModelSpec:
    channels: int = 1
    tile: int = 28
    latent_dim: int = 64
    width: int = 32  # feature maps of the conv stacks
    # Fields added with the second shipped model; their defaults rebuild the first model's layers exactly, so
    # model files written before they existed (meta without them) still load.
    depth: int = 1  # 3×3 conv blocks at the T/4 resolution, on each side of the fully connected layers
    bottleneck: int = 0  # feature maps entering/leaving the fully connected layers (0 = width)

    @property
    def fc_channels(self) -> int:
        return self.bottleneck or self.width

    def validate(self) -> None:
        if self.channels not in SUPPORTED_CHANNELS:
            raise ValueError(f"channels must be one of {SUPPORTED_CHANNELS}, got {self.channels}")
        if self.tile not in SUPPORTED_TILES:
            raise ValueError(f"tile must be one of {SUPPORTED_TILES}, got {self.tile}")
        if not 1 <= self.latent_dim <= 4096:
            raise ValueError(f"latent_dim must be in 1..4096, got {self.latent_dim}")
        if not 1 <= self.width <= 512:
            raise ValueError(f"width must be in 1..512, got {self.width}")
        if not 1 <= self.depth <= 8:
            raise ValueError(f"depth must be in 1..8, got {self.depth}")
        if not 0 <= self.bottleneck <= 512:
            raise ValueError(f"bottleneck must be in 0..512 (0 = width), got {self.bottleneck}")


def build_network(spec: ModelSpec):
    """Returns ``(encoder, decoder)`` torch modules for ``spec`` (torch is imported only here)."""
    import torch.nn as nn

    spec.validate()
    c, w, q = spec.channels, spec.width, spec.tile // 4

    def block(conv):
        return [conv, nn.BatchNorm2d(conv.out_channels), nn.ReLU(inplace=True)]

    f, d = spec.fc_channels, spec.depth
    encoder = nn.Sequential(
        *block(nn.Conv2d(c, w, 4, stride=2, padding=1)),
        *block(nn.Conv2d(w, w, 4, stride=2, padding=1)),
        *[m for i in range(d) for m in block(nn.Conv2d(w, f if i == d - 1 else w, 3, padding=1))],
        nn.Flatten(),
        nn.Linear(f * q * q, spec.latent_dim),
        nn.Tanh(),
    )
    decoder = nn.Sequential(
        nn.Linear(spec.latent_dim, f * q * q),
        nn.Unflatten(1, (f, q, q)),
        nn.BatchNorm2d(f),
        nn.ReLU(inplace=True),
        *[m for i in range(d) for m in block(nn.Conv2d(f if i == 0 else w, w, 3, padding=1))],
        *block(nn.ConvTranspose2d(w, w, 4, stride=2, padding=1)),
        *block(nn.ConvTranspose2d(w, w // 2, 4, stride=2, padding=1)),
        nn.Conv2d(w // 2, c, 3, padding=1),
        nn.Sigmoid(),
    )
    return encoder, decoder


def _canonical_digest(meta_json: bytes, params: dict[str, np.ndarray]) -> bytes:
    h = hashlib.sha256(meta_json)
    for name in sorted(params):
        a = np.ascontiguousarray(params[name])
        h.update(name.encode())
        h.update(json.dumps([a.dtype.str, list(a.shape)]).encode())
        h.update(a.tobytes())
    return h.digest()


class ImageModel:
    """A loaded model: spec, id, and eval-mode torch encoder/decoder (float32 from float16 weights)."""

    def __init__(self, spec: ModelSpec, encoder, decoder, model_id: int, info: dict | None = None):
        self.spec = spec
        self.encoder = encoder.eval()
        self.decoder = decoder.eval()
        self.model_id = model_id
        self.info = info or {}

    def encode_tiles(self, tiles: np.ndarray) -> np.ndarray:
        """float32 ``(N, C, T, T)`` in [0, 1] -> float32 latent ``(N, latent_dim)`` in (-1, 1)."""
        import torch

        with torch.inference_mode():
            return self.encoder(torch.from_numpy(np.ascontiguousarray(tiles, np.float32))).numpy()

    def decode_tiles(self, latent: np.ndarray) -> np.ndarray:
        """float32 latent ``(N, k)`` with ``k <= latent_dim`` (missing trailing values are zero)."""
        import torch

        full = np.zeros((latent.shape[0], self.spec.latent_dim), np.float32)
        full[:, : latent.shape[1]] = latent
        with torch.inference_mode():
            return self.decoder(torch.from_numpy(full)).numpy()


def _state_arrays(encoder, decoder) -> dict[str, np.ndarray]:
    params = {}
    for prefix, module in (("encoder", encoder), ("decoder", decoder)):
        for name, tensor in module.state_dict().items():
            if name.endswith("num_batches_tracked"):
                continue  # training bookkeeping, not needed to run the model
            params[f"param/{prefix}.{name}"] = tensor.detach().cpu().numpy().astype(np.float16)
    return params


def save_model(path: str | os.PathLike, spec: ModelSpec, encoder, decoder, info: dict | None = None) -> int:
    """Writes the model file; returns its model id."""
    meta = {"format": "adlcodec-image-model", "version": MODEL_FILE_VERSION, "spec": spec.__dict__, "info": info or {}}
    meta_json = json.dumps(meta, sort_keys=True).encode()
    params = _state_arrays(encoder, decoder)
    with open(path, "wb") as f:
        np.savez_compressed(f, meta=np.frombuffer(meta_json, np.uint8), **params)
    return int.from_bytes(_canonical_digest(meta_json, params)[:4], "little")


_CACHE: dict[tuple[str, float], ImageModel] = {}


def load_model(path: str | os.PathLike | None = None) -> ImageModel:
    """Loads a model file (the shipped Fashion-MNIST model by default); cached per path and mtime."""
    path = Path(path) if path is not None else DEFAULT_MODEL_PATH
    if not path.is_file():
        raise FileNotFoundError(f"image model {path} not found")
    key = (str(path.resolve()), path.stat().st_mtime)
    if key in _CACHE:
        return _CACHE[key]
    raw = path.read_bytes()
    try:
        with np.load(io.BytesIO(raw), allow_pickle=False) as z:
            arrays = {name: z[name] for name in z.files}
        meta_json = arrays.pop("meta").tobytes()
        meta = json.loads(meta_json)
    except Exception as exc:  # zip/npz/json errors all mean "not a model file"
        raise ValueError(f"{path}: not an adlcodec image model ({exc})") from None
    if meta.get("format") != "adlcodec-image-model" or meta.get("version") != MODEL_FILE_VERSION:
        raise ValueError(f"{path}: not an adlcodec image model of version {MODEL_FILE_VERSION}")
    known = set(ModelSpec.__dataclass_fields__)
    unknown = sorted(set(meta.get("spec", {})) - known)
    if unknown:
        raise ValueError(f"{path}: model spec fields {unknown} are unknown to this adlcodec (a newer model file?)")
    spec = ModelSpec(**meta["spec"])
    encoder, decoder = build_network(spec)
    import torch

    for prefix, module in (("encoder", encoder), ("decoder", decoder)):
        state = module.state_dict()
        for name in state:
            if name.endswith("num_batches_tracked"):
                continue
            key_name = f"param/{prefix}.{name}"
            if key_name not in arrays or arrays[key_name].shape != tuple(state[name].shape):
                raise ValueError(f"{path}: missing or misshapen weight {key_name}")
            state[name] = torch.from_numpy(arrays[key_name].astype(np.float32))
        module.load_state_dict(state)
    model_id = int.from_bytes(_canonical_digest(meta_json, arrays)[:4], "little")
    model = ImageModel(spec, encoder, decoder, model_id, meta.get("info"))
    _CACHE[key] = model
    return model


def shipped_model(model_id: int) -> ImageModel | None:
    """The shipped model with this id: the default or an earlier release's default; None if neither.

    An earlier model is found by its file name, so decoding an old file does not load the default."""
    path = EARLIER_MODELS_DIR / f"{model_id:08x}.npz"
    if path.is_file():
        model = load_model(path)
        if model.model_id != model_id:
            raise ValueError(f"{path} holds model {model.model_id:08x}, not the one its name says")
        return model
    default = load_model()
    return default if default.model_id == model_id else None
