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
from .model import SUPPORTED_CHANNELS, SUPPORTED_TILES, ImageModel, load_model, shipped_model

__all__ = ["MAGIC", "CONTAINER_VERSION", "encode_image", "decode_image", "inspect_image"]

MAGIC = b"ADLI"
CONTAINER_VERSION = 2  # the newest this module writes and reads; it writes 1 whenever no field of 2 is needed
READABLE_VERSIONS = (1, 2)
KIND_PIXEL, KIND_DCT = 0, 1  # residual layer kinds (version 2)
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


_DCT_CACHE: dict[int, tuple[np.ndarray, np.ndarray]] = {}


def _dct_basis(t: int) -> tuple[np.ndarray, np.ndarray]:
    """Orthonormal DCT-II matrix ``D`` (coefficients = D·X·Dᵀ) and the frequency order: (u, v) sorted by
    u + v, then u, so low frequencies, where a residual's energy sits, come first."""
    if t not in _DCT_CACHE:
        n = np.arange(t)
        d = np.cos(np.pi * (2 * n[None, :] + 1) * n[:, None] / (2 * t)) * np.sqrt(2.0 / t)
        d[0] /= np.sqrt(2.0)
        order = np.array(sorted(range(t * t), key=lambda i: (i // t + i % t, i // t)))
        _DCT_CACHE[t] = (d, order)
    return _DCT_CACHE[t]


def _dct_forward(pixels: np.ndarray, tile: int) -> np.ndarray:
    """``(H, W, C)`` -> flat coefficients in the container's order: frequency, channel, tile row, tile column.
    The image is edge-padded to whole tiles first (the padding is cropped again after the inverse)."""
    h, w, c = pixels.shape
    rows, cols = _grid(h, w, tile)
    x = np.pad(pixels.astype(np.float64), ((0, rows * tile - h), (0, cols * tile - w), (0, 0)), mode="edge")
    x = x.reshape(rows, tile, cols, tile, c).transpose(4, 0, 2, 1, 3)  # (C, rows, cols, T, T)
    d, order = _dct_basis(tile)
    coef = (d @ x @ d.T).reshape(c, rows, cols, tile * tile)[..., order]
    return np.ascontiguousarray(coef.transpose(3, 0, 1, 2).ravel(), np.float32)


def _dct_inverse(coef: np.ndarray, h: int, w: int, c: int, tile: int) -> np.ndarray:
    rows, cols = _grid(h, w, tile)
    d, order = _dct_basis(tile)
    freq = coef.astype(np.float64).reshape(tile * tile, c, rows, cols).transpose(1, 2, 3, 0)
    blocks = np.zeros_like(freq)
    blocks[..., order] = freq
    x = d.T @ blocks.reshape(c, rows, cols, tile, tile) @ d
    x = x.transpose(1, 3, 2, 4, 0).reshape(rows * tile, cols * tile, c)[:h, :w]
    return np.ascontiguousarray(x, np.float32)


def _residual_numel(kind: int, h: int, w: int, c: int, tile: int) -> int:
    if kind == KIND_DCT:
        rows, cols = _grid(h, w, tile)
        return rows * cols * tile * tile * c
    return h * w * c


def _apply_residual(recon: np.ndarray, kind: int, payload, tile: int) -> np.ndarray:
    values = decompress(payload)
    if kind == KIND_DCT:
        return recon + _dct_inverse(values, *recon.shape, tile)
    return recon + values.reshape(recon.shape)


def _to_uint8(recon: np.ndarray) -> np.ndarray:
    return np.clip(np.rint(recon), 0, 255).astype(np.uint8)


def _ssim(a: np.ndarray, b: np.ndarray) -> float:
    """Mean SSIM of two ``(H, W, C)`` images in grey levels, as scikit-image's default (7×7 uniform window,
    sample covariance, K1 = 0.01, K2 = 0.03, data_range 255, borders cropped, mean over channels); a side
    shorter than 7 uses the largest odd window that fits."""
    win = min(7, *[(d - 1) | 1 for d in a.shape[:2]])
    if win < 1:
        win = 1
    a = a.astype(np.float64)
    b = b.astype(np.float64)

    def box(x):  # valid-mode mean over win×win windows, per channel
        c = np.cumsum(np.cumsum(np.pad(x, ((1, 0), (1, 0), (0, 0))), 0), 1)
        return (c[win:, win:] - c[:-win, win:] - c[win:, :-win] + c[:-win, :-win]) / (win * win)

    cov = win * win / (win * win - 1.0) if win > 1 else 1.0
    mx, my = box(a), box(b)
    vx = cov * (box(a * a) - mx * mx)
    vy = cov * (box(b * b) - my * my)
    vxy = cov * (box(a * b) - mx * my)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    s = ((2 * mx * my + c1) * (2 * vxy + c2)) / ((mx * mx + my * my + c1) * (vx + vy + c2))
    return float(s.mean())


# Latent settings the quality-target search tries, cheapest first (as fractions of the model's code length);
# residual layers are searched on top of the first two that do not reach the target on their own.
_SEARCH_LATENTS = ((0.25, 4), (0.5, 4), (0.75, 4), (1.0, 4), (1.0, 8))
_SEARCH_LATENT_BASES = 2
# Residual candidates per layer: adlcodec's own binned selection, and a threshold selection (bin size 1, so
# exactly the pixels the encoder keeps are sent) with the magnitudes capped so the quantizer's levels
# (cap·(m+1)/L) start at the threshold. The decoder only adds decoded payloads, so none of this is in the file.
_SEARCH_BINNED = ((4, 4), (16, 4), (64, 4))
_SEARCH_THRESHOLDS = (4.0, 8.0, 16.0, 32.0)
_SEARCH_THRESHOLD_BITS = (2, 4)
# the high-fidelity end: small thresholds with fine levels (8-bit levels t, 2t, … reach every error)
_SEARCH_FINE = ((2.0, 8),)


_SEARCH_DCT_THRESHOLDS = (4.0, 8.0, 16.0, 32.0, 64.0, 128.0)
_SEARCH_DCT_FINE = ((2.0, 8), (4.0, 8))


def _threshold_payload(values: np.ndarray, t: float, rbits: int, mag: np.ndarray | None = None):
    """bin size 1 payload of the values with magnitude ≥ t, capped at t·L so the levels start near t
    (bin size 1 selects every nonzero value, so exactly the values kept here are sent)."""
    mag = np.abs(values) if mag is None else mag
    cap = np.float32(t * (1 << (rbits - 1))) if rbits <= 8 else np.float32(np.inf)
    sent = np.where(mag >= t, np.clip(values, -cap, cap), 0).astype(np.float32)
    return compress(sent, np.zeros(values.size, np.float32), bin_size=1, bits=rbits)


def _threshold_payloads(values: np.ndarray, thresholds, bits_list):
    mag = np.abs(values)
    top = float(mag.max()) if values.size else 0.0
    for t in thresholds:
        if t > top:
            break
        for rbits in bits_list:
            yield _threshold_payload(values, t, rbits, mag)


def _residual_candidates(error: np.ndarray, exact: np.ndarray, tile: int, dct: bool):
    """(kind, payload) candidates for the next residual layer; ``exact`` marks pixels already right."""
    pixel_error = np.where(exact, 0.0, error).astype(np.float32).ravel()
    for size, rbits in _SEARCH_BINNED:
        # a fresh residual each time: compress() updates it in place (error feedback)
        yield KIND_PIXEL, compress(pixel_error, np.zeros(pixel_error.size, np.float32), bin_size=size, bits=rbits)
    for payload in _threshold_payloads(pixel_error, _SEARCH_THRESHOLDS, _SEARCH_THRESHOLD_BITS):
        yield KIND_PIXEL, payload
    for t, rbits in _SEARCH_FINE:
        yield from ((KIND_PIXEL, p) for p in _threshold_payloads(pixel_error, (t,), (rbits,)))
    if dct:
        coef = _dct_forward(error, tile)
        for payload in _threshold_payloads(coef, _SEARCH_DCT_THRESHOLDS, _SEARCH_THRESHOLD_BITS):
            yield KIND_DCT, payload
        for t, rbits in _SEARCH_DCT_FINE:
            yield from ((KIND_DCT, p) for p in _threshold_payloads(coef, (t,), (rbits,)))


def _search_layers(image, recon, latent_bytes: int, target: float, max_layers: int, tile: int, dct: bool):
    """Greedy residual layers until SSIM ≥ target: each layer is the candidate with the best SSIM gain per
    byte, or the cheapest one that reaches the target. Returns (layers, recon, ssim, total bytes)."""
    target_img = image.astype(np.float32)
    layers, total = [], latent_bytes
    quality = _ssim(image, _to_uint8(recon))
    while quality < target and len(layers) < max_layers:
        exact = _to_uint8(recon) == image
        if exact.all():
            break
        reach = step = None  # cheapest candidate reaching the target; best gain per byte otherwise
        for kind, payload in _residual_candidates(target_img - recon, exact, tile, dct):
            trial = _apply_residual(recon, kind, payload, tile)
            q = _ssim(image, _to_uint8(trial))
            if q <= quality:
                continue
            cost = payload.size + _LENGTH.size + (1 if dct else 0)
            if q >= target:
                if reach is None or cost < reach[0]:
                    reach = (cost, (kind, payload), trial, q)
            elif step is None or (q - quality) / cost > (step[3] - quality) / step[0]:
                step = (cost, (kind, payload), trial, q)
        best = reach
        if step is not None:
            # go on step by step if that promises to reach the target for less (extrapolating its gain per byte)
            estimate = step[0] + (target - step[3]) * step[0] / (step[3] - quality)
            if reach is None or estimate < reach[0]:
                best = step
        if best is None:
            break
        layers.append(best[1])
        recon, quality = best[2], best[3]
        total += best[0]
    return layers, recon, quality, total


def _container(model: ImageModel, shape, planes: int, k: int, latent, layers) -> bytes:
    """Version 1 when every residual layer is a pixel layer (the version-1 bytes exactly), else version 2."""
    h, w, c = shape
    payloads = [latent] + [p for _, p in layers]
    kinds = [kind for kind, _ in layers]
    version = 1 if all(kind == KIND_PIXEL for kind in kinds) else 2
    header = _HEADER.pack(MAGIC, version, c, model.spec.tile, planes, h, w, model.model_id, k, len(payloads), 0)
    lengths = b"".join(_LENGTH.pack(len(p)) for p in payloads[:-1])
    kind_bytes = bytes(kinds) if version == 2 else b""
    body = header + lengths + kind_bytes + b"".join(p.tobytes() for p in payloads)
    return body + _LENGTH.pack(_core.crc32c(body))


def encode_image(
    image,
    *,
    bits: int = 8,
    latent_dim: int | None = None,
    residual_rounds: int = 0,
    residual_bits: int = 4,
    residual_bin_size: int = 16,
    model=None,
    target_ssim: float | None = None,
    residual_kind: str = "pixel",
    residual_threshold: float | None = None,
    max_residual_layers: int = 6,
    dct_residual: bool = True,
) -> bytes:
    """Encodes a uint8 ``(H, W)`` or ``(H, W, C)`` image to .adl bytes.

    ``bits``: latent bit width (adlcodec's 1, 2, 4, 8, 16, 32); ``latent_dim``: how many leading code values
    per tile to send (default: all of the model's); ``residual_rounds`` refinement layers, each the
    remaining pixel error through ``adlcodec.compress(bin_size=residual_bin_size, bits=residual_bits)``.
    ``residual_kind="dct"`` codes the per-tile DCT coefficients of the error instead (container version 2);
    ``residual_threshold=t`` replaces the binned selection by "every value with magnitude ≥ t", capped
    at ``t·2^(residual_bits−1)`` (bin size 1; grey levels for pixels, orthonormal DCT units for "dct").

    ``target_ssim``: instead of fixed settings, search for the smallest file whose SSIM (scikit-image's
    default, over the whole image) reaches the target: latent length and width from a short list, then up
    to ``max_residual_layers`` greedy residual layers, each choosing its selection rule, bin size and bit
    width by gain per byte. Candidates are pixel corrections (container version 1) and, unless
    ``dct_residual`` is False, per-tile DCT coefficients of the remaining error (a layer kind of container
    version 2). All choices are recorded in the file, so the decoder does no search. If no candidate
    reaches the target, the file with the highest SSIM is returned.
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
    if residual_kind not in ("pixel", "dct"):
        raise ValueError(f"residual_kind must be 'pixel' or 'dct', got {residual_kind!r}")
    if residual_threshold is not None and not float(residual_threshold) > 0:
        raise ValueError(f"residual_threshold must be positive, got {residual_threshold}")
    if target_ssim is not None and not 0.0 < float(target_ssim) <= 1.0:
        raise ValueError(f"target_ssim must be in (0, 1], got {target_ssim}")
    if not 0 <= int(max_residual_layers) <= MAX_LAYERS - 1:
        raise ValueError(f"max_residual_layers must be in 0..{MAX_LAYERS - 1}, got {max_residual_layers}")
    h, w, c = image.shape
    planes = _planes_for(c, model)
    code = model.encode_tiles(_to_tiles(image, model.spec.tile, planes))

    def latent_layer(k: int, bits: int):
        latent = np.ascontiguousarray(code[:, :k])
        # bin_size 1 selects every nonzero value: the whole code is sent, quantized to `bits`.
        payload = compress(latent.ravel(), np.zeros(latent.size, np.float32), bin_size=1, bits=bits)
        sent = decompress(payload).reshape(latent.shape)
        return payload, _reconstruct_base(model, sent, h, w, c, planes)

    if target_ssim is not None:
        target = float(target_ssim)
        overhead = _HEADER.size + _LENGTH.size
        tried = []  # (bytes, ssim, k, payload, recon), cheapest first
        for frac, lbits in _SEARCH_LATENTS:
            lk = max(1, int(round(frac * model.spec.latent_dim)))
            if any(t[2] == lk and t[5] == lbits for t in tried):
                continue
            payload, recon = latent_layer(lk, lbits)
            q = _ssim(image, _to_uint8(recon))
            tried.append((overhead + payload.size, q, lk, payload, recon, lbits))
            if q >= target:
                break  # larger latents alone cost more than this file
        tried.sort(key=lambda t: t[0])
        reached = [t for t in tried if t[1] >= target]
        best = (True, -reached[0][0], reached[0][2], reached[0][3], []) if reached else None
        # residual layers on top of the richest latents that miss the target (the cheapest first)
        bases = [t for t in tried if t[1] < target][-_SEARCH_LATENT_BASES:]
        for size, _, lk, payload, recon, _ in bases:
            if best is not None and best[0] and size >= -best[1]:
                continue
            layers, recon, quality, total = _search_layers(
                image, recon, size, target, int(max_residual_layers), model.spec.tile, bool(dct_residual)
            )
            ok = quality >= target
            key = (ok, -total if ok else quality)
            if best is None or key > best[:2]:
                best = (*key, lk, payload, layers)
        return _container(model, (h, w, c), planes, best[2], best[3], best[4])

    payload, recon = latent_layer(k, bits)
    latent, layers = payload, []
    target = image.astype(np.float32)
    kind = KIND_DCT if residual_kind == "dct" else KIND_PIXEL
    for _ in range(int(residual_rounds)):
        error = target - recon
        if kind == KIND_DCT:
            values = _dct_forward(error, model.spec.tile)
        else:
            error[_to_uint8(recon) == image] = 0.0  # already exact after rounding: nothing to send there
            values = error.ravel()
        if residual_threshold is None:
            payload = compress(values, np.zeros(values.size, np.float32), bin_size=residual_bin_size, bits=residual_bits)
        else:
            payload = _threshold_payload(values, float(residual_threshold), residual_bits)
        layers.append((kind, payload))
        recon = _apply_residual(recon, kind, payload, model.spec.tile)
    return _container(model, (h, w, c), planes, k, latent, layers)


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
    if version not in READABLE_VERSIONS:
        raise FormatError(f".adl image: container version {version} is not supported (this reads {READABLE_VERSIONS})")
    stored = _LENGTH.unpack_from(buf, len(buf) - 4)[0]
    if _core.crc32c(buf[:-4]) != stored:
        raise FormatError(".adl image: checksum mismatch (corrupt or truncated file)")
    if c not in SUPPORTED_CHANNELS or tile not in SUPPORTED_TILES or planes not in (1, c) or reserved != 0:
        raise FormatError(f".adl image: invalid header (channels {c}, tile {tile}, planes {planes}, reserved {reserved})")
    if h == 0 or w == 0 or k == 0 or not 1 <= layers <= MAX_LAYERS:
        raise FormatError(f".adl image: invalid header (size {h}×{w}, latent {k}, layers {layers})")
    kinds_size = layers - 1 if version == 2 else 0
    offset = _HEADER.size + 4 * (layers - 1) + kinds_size
    if offset + 4 > len(buf):
        raise FormatError(".adl image: payload length table runs past the end")
    lengths = [_LENGTH.unpack_from(buf, _HEADER.size + 4 * i)[0] for i in range(layers - 1)]
    kinds = list(buf[offset - kinds_size : offset]) if version == 2 else [KIND_PIXEL] * (layers - 1)
    if any(kind not in (KIND_PIXEL, KIND_DCT) for kind in kinds):
        raise FormatError(f".adl image: unknown residual layer kind in {kinds}")
    last = len(buf) - 4 - offset - sum(lengths)
    if last < 0:
        raise FormatError(".adl image: payload lengths exceed the file size")
    payloads = []
    for n in lengths + [last]:
        payloads.append(np.frombuffer(buf, np.uint8, count=n, offset=offset))
        offset += n
    rows, cols = _grid(h, w, tile)
    expected = [planes * rows * cols * k] + [_residual_numel(kind, h, w, c, tile) for kind in kinds]
    for i, (p, numel) in enumerate(zip(payloads, expected)):
        try:
            facts = inspect(p)
        except FormatError as exc:
            raise FormatError(f".adl image: layer {i} payload: {exc}") from None
        if facts["numel"] != numel:
            raise FormatError(f".adl image: layer {i} payload has {facts['numel']} values, the header implies {numel}")
    return dict(
        version=version, channels=c, tile=tile, planes=planes, height=h, width=w, model_id=model_id,
        latent_dim=k, layers=layers, residual_kinds=["dct" if kind == KIND_DCT else "pixel" for kind in kinds],
        payloads=payloads, latent_bits=int(inspect(payloads[0])["bits"]),
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

    A malformed file raises FormatError. Without ``model`` the file's own model is used if this package
    ships it (the default, or the default of an earlier release); a file made with another model than
    the given or any shipped one raises ValueError naming the ids. ``max_pixels`` bounds what a small
    but valid file from an untrusted source can make the decoder allocate.
    """
    facts = _parse(data)
    if max_pixels is not None and facts["height"] * facts["width"] * facts["channels"] > max_pixels:
        raise FormatError(
            f".adl image: {facts['height']}×{facts['width']}×{facts['channels']} exceeds max_pixels={max_pixels}"
        )
    if model is None:
        model = shipped_model(facts["model_id"])
        if model is None:
            raise ValueError(
                f".adl image was encoded with model {facts['model_id']:08x}, which this adlcodec does not ship; "
                "pass the matching model file (--model)"
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
    for kind, payload in zip(facts["residual_kinds"], residual_payloads):
        recon = _apply_residual(recon, KIND_DCT if kind == "dct" else KIND_PIXEL, payload, facts["tile"])
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
