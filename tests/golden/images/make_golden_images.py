"""Writes the .adl image golden files (container versions 1 and 2, made with the shipped model).
Run once; never regenerate existing ones: later versions must read these files, name the same facts and
decode their adlcodec payloads to exactly these floats and the image to these pixels (see
tests/test_image_golden.py for what "these pixels" means across CPUs)."""

import json
import pathlib

import numpy as np

import adlcodec
from adlcodec.data import load_fashion_mnist
from adlcodec.image import decode_image, encode_image, inspect_image

HERE = pathlib.Path(__file__).parent


def colour_image() -> np.ndarray:
    """A 33×40 RGB picture: two Fashion-MNIST items on a gradient, so its size is not a multiple of the tile."""
    x, _ = load_fashion_mnist(split="test", normalize=False)
    items = np.rint(x[:2, 0] * 255).astype(np.float32)
    yy, xx = np.mgrid[0:33, 0:40].astype(np.float32)
    image = np.stack([60 + 3 * xx, 40 + 4 * yy, 200 - 2 * xx - yy], axis=-1)
    image[2:30, 0:28, 0] = np.maximum(image[2:30, 0:28, 0], items[0])
    image[5:33, 12:40, 2] = np.maximum(image[5:33, 12:40, 2], items[1])
    return np.clip(image, 0, 255).astype(np.uint8)


def cases():
    x, _ = load_fashion_mnist(split="test", normalize=False)
    gray = np.rint(x[:6, 0] * 255).astype(np.uint8)
    mosaic = np.concatenate([np.concatenate(list(gray[0:3]), axis=1), np.concatenate(list(gray[3:6]), axis=1)], axis=0)
    return [
        # name, image, encode_image arguments
        ("gray_default", gray[0], {}),
        ("gray_pixel_residual", gray[1], dict(residual_rounds=2, residual_bits=4, residual_bin_size=16)),
        ("mosaic_target_ssim", mosaic, dict(target_ssim=0.95)),
        ("gray_dct_residual", gray[2], dict(residual_kind="dct", residual_rounds=2)),
        ("colour_bits4_short_latent", colour_image(), dict(bits=4, latent_dim=32, residual_rounds=1)),
    ]


def main() -> None:
    manifest = []
    for name, image, kwargs in cases():
        data = encode_image(image, **kwargs)
        (HERE / f"{name}.adl").write_bytes(data)
        facts = inspect_image(data)
        decoded = decode_image(data)
        from adlcodec.image.codec import _parse  # the embedded adlcodec payloads, to freeze their floats

        layers = [adlcodec.decompress(p).reshape(-1) for p in _parse(data)["payloads"]]
        np.savez_compressed(HERE / f"{name}.npz", image=image, decoded=decoded,
                            **{f"layer{i}": layer for i, layer in enumerate(layers)})
        manifest.append(dict(name=name, encode_args=kwargs, facts=facts))
        print(name, facts["bytes"], "bytes, container version", facts["version"])
    (HERE / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")


if __name__ == "__main__":
    main()
