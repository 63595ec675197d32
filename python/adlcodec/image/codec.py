"""Image <-> .adl container: learned latent in one adlcodec payload, optional residual-refinement payloads.

The container layout is specified in docs/IMAGE.md. Decoding runs exactly the reconstruction the encoder
ran (same function, same model), so each residual layer corrects the error the decoder will really see.
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from .. import _core
from .._api import FormatError, check_bin_size, check_bits, compress, decompress, inspect
from .model import SUPPORTED_CHANNELS, SUPPORTED_TILES, ImageModel, load_model

__all__ = ["MAGIC", "CONTAINER_VERSION", "encode_image", "decode_image", "inspect_image"]

MAGIC = b"ADLI"
CONTAINER_VERSION = 1
# magic, version, channels, tile, planes, height, width, model_id, latent_k, layers, reserved
_HEADER = struct.Struct("<4sBBBBHHIHBB")
_LENGTH = struct.Struct("<I")
MAX_SIDE = 0xFFFF
MAX_LAYERS = 32
MIN_SIZE = _HEADER.size + 4


def _resolve_model(model) -> ImageModel:
    if isinstance(model, ImageModel):
        return model
    return load_model(model)


def _as_image(image) -> np.ndarray:
    """uint8 ``(H, W, C)`` view of a uint8 ``(H, W)`` or ``(H, W, C)`` array."""
    if not isinstance(image, np.ndarray):
        raise TypeError(f"image must be a numpy uint8 array, got {type(image).__name__}")
    if image.dtype != np.uint8:
        raise TypeError(f"image must be uint8, got {image.dtype}")
    if image.ndim == 2:
        image = image[:, :, None]
    if image.ndim != 3 or image.shape[2] not in SUPPORTED_CHANNELS:
        raise ValueError(f"image must be (H, W) or (H, W, C) with C in {SUPPORTED_CHANNELS}, got {image.shape}")
    h, w, _ = image.shape
    if not (1 <= h <= MAX_SIDE and 1 <= w <= MAX_SIDE):
        raise ValueError(f"image sides must be 1..{MAX_SIDE}, got {h}×{w}")
    return image


def _planes_for(channels: int, model: ImageModel) -> int:
    if model.spec.channels == channels:
        return 1
    if model.spec.channels == 1 and channels == 3:
        return 3  # a grayscale model codes each colour plane separately
    raise ValueError(f"a {model.spec.channels}-channel model cannot code a {channels}-channel image")


def _grid(h: int, w: int, tile: int) -> tuple[int, int]:
    return -(-h // tile), -(-w // tile)


def _to_tiles(image: np.ndarray, tile: int, planes: int) -> np.ndarray:
    """``(H, W, C)`` uint8 -> float32 tiles ``(planes·rows·cols, C/planes, T, T)``; edges padded by copy."""
    h, w, c = image.shape
    rows, cols = _grid(h, w, tile)
    x = np.pad(image, ((0, rows * tile - h), (0, cols * tile - w), (0, 0)), mode="edge")
    cm = c // planes
    x = x.reshape(rows, tile, cols, tile, planes, cm).transpose(4, 0, 2, 5, 1, 3)
    return x.reshape(planes * rows * cols, cm, tile, tile).astype(np.float32) / np.float32(255.0)


def _from_tiles(tiles: np.ndarray, h: int, w: int, c: int, planes: int) -> np.ndarray:
    tile = tiles.shape[-1]
    rows, cols = _grid(h, w, tile)
    x = tiles.reshape(planes, rows, cols, c // planes, tile, tile).transpose(1, 4, 2, 5, 0, 3)
    return x.reshape(rows * tile, cols * tile, c)[:h, :w]


def _reconstruct_base(model: ImageModel, latent: np.ndarray, h: int, w: int, c: int, planes: int) -> np.ndarray:
    """Decoder output in pixel units (float32, 0..255) before residual layers."""
    tiles = model.decode_tiles(latent)
    return np.ascontiguousarray(_from_tiles(tiles, h, w, c, planes) * np.float32(255.0), np.float32)


def _to_uint8(recon: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(recon), 0, 255).astype(np.uint8)


def encode_image(
    image,
    *,
    bits: int = 8,
    latent_dim: int | None = None,
    residual_rounds: int = 0,
    residual_bits: int = 4,
    residual_bin_size: int = 16,
    model=None,
) -> bytes:
    """Encodes a uint8 ``(H, W)`` or ``(H, W, C)`` image to .adl bytes.

    ``bits``: latent bit width (adlcodec's 1, 2, 4, 8, 16, 32); ``latent_dim``: how many leading code values
    per tile to send (default: all of the model's); ``residual_rounds`` refinement layers, each the
    remaining pixel error through ``adlcodec.compress(bin_size=residual_bin_size, bits=residual_bits)``.
    """
    model = _resolve_model(model)
    image = _as_image(image)
    bits = check_bits(bits)
    residual_bits = check_bits(residual_bits)
    residual_bin_size = check_bin_size(residual_bin_size)
    k = model.spec.latent_dim if latent_dim is None else int(latent_dim)
    if not 1 <= k <= model.spec.latent_dim:
        raise ValueError(f"latent_dim must be in 1..{model.spec.latent_dim} for this model, got {latent_dim}")
    if not 0 <= int(residual_rounds) <= MAX_LAYERS - 1:
        raise ValueError(f"residual_rounds must be in 0..{MAX_LAYERS - 1}, got {residual_rounds}")
    h, w, c = image.shape
    planes = _planes_for(c, model)
    latent = np.ascontiguousarray(model.encode_tiles(_to_tiles(image, model.spec.tile, planes))[:, :k])
    # bin_size 1 selects every nonzero value: the whole code is sent, quantized to `bits`.
    payloads = [compress(latent.ravel(), np.zeros(latent.size, np.float32), bin_size=1, bits=bits)]
    sent = decompress(payloads[0]).reshape(latent.shape)
    recon = _reconstruct_base(model, sent, h, w, c, planes)
    target = image.astype(np.float32)
    for _ in range(int(residual_rounds)):
        error = target - recon
        error[_to_uint8(recon) == image] = 0.0  # already exact after rounding: nothing to send there
        payload = compress(error.ravel(), np.zeros(error.size, np.float32), bin_size=residual_bin_size, bits=residual_bits)
        payloads.append(payload)
        recon += decompress(payload).reshape(recon.shape)
    header = _HEADER.pack(MAGIC, CONTAINER_VERSION, c, model.spec.tile, planes, h, w, model.model_id, k, len(payloads), 0)
    lengths = b"".join(_LENGTH.pack(len(p)) for p in payloads[:-1])
    body = header + lengths + b"".join(p.tobytes() for p in payloads)
    return body + _LENGTH.pack(_core.crc32c(body))


def _parse(data) -> dict:
    """Validates everything that does not need the model; returns header fields and payload views."""
    if isinstance(data, (bytes, bytearray, memoryview)):
        buf = bytes(data)
    elif isinstance(data, np.ndarray) and data.dtype == np.uint8 and data.ndim == 1:
        buf = data.tobytes()
    else:
        raise TypeError(f".adl data must be bytes or a 1-D uint8 array, got {type(data).__name__}")
    if len(buf) < MIN_SIZE:
        raise FormatError(f".adl image: {len(buf)} bytes is shorter than the {MIN_SIZE}-byte minimum (truncated?)")
    magic, version, c, tile, planes, h, w, model_id, k, layers, reserved = _HEADER.unpack_from(buf)
    if magic != MAGIC:
        raise FormatError(f".adl image: bad magic {magic!r} (expected {MAGIC!r}; not an adlcodec image)")
    if version != CONTAINER_VERSION:
        raise FormatError(f".adl image: container version {version} is not supported (this reads {CONTAINER_VERSION})")
    stored = _LENGTH.unpack_from(buf, len(buf) - 4)[0]
    if _core.crc32c(buf[:-4]) != stored:
        raise FormatError(".adl image: checksum mismatch (corrupt or truncated file)")
    if c not in SUPPORTED_CHANNELS or tile not in SUPPORTED_TILES or planes not in (1, c) or reserved != 0:
        raise FormatError(f".adl image: invalid header (channels {c}, tile {tile}, planes {planes}, reserved {reserved})")
    if h == 0 or w == 0 or k == 0 or not 1 <= layers <= MAX_LAYERS:
        raise FormatError(f".adl image: invalid header (size {h}×{w}, latent {k}, layers {layers})")
    offset = _HEADER.size + 4 * (layers - 1)
    if offset + 4 > len(buf):
        raise FormatError(".adl image: payload length table runs past the end")
    lengths = [_LENGTH.unpack_from(buf, _HEADER.size + 4 * i)[0] for i in range(layers - 1)]
    last = len(buf) - 4 - offset - sum(lengths)
    if last < 0:
        raise FormatError(".adl image: payload lengths exceed the file size")
    payloads = []
    for n in lengths + [last]:
        payloads.append(np.frombuffer(buf, np.uint8, count=n, offset=offset))
        offset += n
    rows, cols = _grid(h, w, tile)
    expected = [planes * rows * cols * k] + [h * w * c] * (layers - 1)
    for i, (p, numel) in enumerate(zip(payloads, expected)):
        try:
            facts = inspect(p)
        except FormatError as exc:
            raise FormatError(f".adl image: layer {i} payload: {exc}") from None
        if facts["numel"] != numel:
            raise FormatError(f".adl image: layer {i} payload has {facts['numel']} values, the header implies {numel}")
    return dict(
        version=version, channels=c, tile=tile, planes=planes, height=h, width=w, model_id=model_id,
        latent_dim=k, layers=layers, payloads=payloads, latent_bits=int(inspect(payloads[0])["bits"]),
        bytes=len(buf),
    )


def inspect_image(data) -> dict:
    """Header facts of a .adl image (fully validated except the model match)."""
    facts = _parse(data)
    facts["payload_bytes"] = [int(p.size) for p in facts.pop("payloads")]
    facts["model_id"] = f"{facts['model_id']:08x}"
    return facts


def decode_image(data, *, model=None, max_pixels: int | None = 1 << 26) -> np.ndarray:
    """Decodes .adl bytes to uint8 ``(H, W)`` (grayscale) or ``(H, W, 3)``.

    A malformed file raises FormatError; a file made with another model than ``model`` (default: the
    shipped one) raises ValueError naming both ids. ``max_pixels`` bounds what a small but valid file
    from an untrusted source can make the decoder allocate.
    """
    facts = _parse(data)
    if max_pixels is not None and facts["height"] * facts["width"] * facts["channels"] > max_pixels:
        raise FormatError(
            f".adl image: {facts['height']}×{facts['width']}×{facts['channels']} exceeds max_pixels={max_pixels}"
        )
    model = _resolve_model(model)
    if facts["model_id"] != model.model_id:
        raise ValueError(
            f".adl image was encoded with model {facts['model_id']:08x}, but the given model is "
            f"{model.model_id:08x}; pass the matching model file (--model)"
        )
    h, w, c, planes = facts["height"], facts["width"], facts["channels"], facts["planes"]
    if facts["tile"] != model.spec.tile or facts["latent_dim"] > model.spec.latent_dim or c // planes != model.spec.channels:
        raise FormatError(".adl image: tile, latent size or channels disagree with the model it names")
    latent_payload, *residual_payloads = facts["payloads"]
    latent = decompress(latent_payload).reshape(-1, facts["latent_dim"])
    recon = _reconstruct_base(model, latent, h, w, c, planes)
    for payload in residual_payloads:
        recon += decompress(payload).reshape(recon.shape)
    out = _to_uint8(recon)
    return out[:, :, 0] if c == 1 else out


def encode_file(src, dst, **kwargs) -> dict:
    """PNG (or any Pillow-readable image) -> .adl file; returns inspect facts plus the source size."""
    from PIL import Image

    with Image.open(src) as im:
        if im.mode not in ("L", "RGB"):
            im = im.convert("L" if im.mode in ("1", "LA", "I", "I;16", "F") else "RGB")
        image = np.asarray(im, np.uint8)
    data = encode_image(image, **kwargs)
    Path(dst).write_bytes(data)
    return {**inspect_image(data), "raw_bytes": int(image.size)}


def decode_file(src, dst, *, model=None, max_pixels: int | None = 1 << 26) -> np.ndarray:
    from PIL import Image

    image = decode_image(Path(src).read_bytes(), model=model, max_pixels=max_pixels)
    Image.fromarray(image).save(dst)
    return image
