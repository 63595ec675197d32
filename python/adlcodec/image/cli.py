"""``adlcodec image encode|decode|train|inspect``: registered on the main parser by :func:`add_subparser`."""

from __future__ import annotations

import argparse
import json

__all__ = ["add_subparser"]


def _cmd_encode(args: argparse.Namespace) -> int:
    from .codec import encode_file

    facts = encode_file(
        args.input, args.output, bits=args.bits, latent_dim=args.latent_dim, residual_rounds=args.residual_rounds,
        residual_bits=args.residual_bits, residual_bin_size=args.residual_bin_size, model=args.model,
        residual_kind=args.residual_kind, residual_threshold=args.residual_threshold, target_ssim=args.target_ssim,
        max_residual_layers=args.max_residual_layers,
    )
    print(
        f"{args.output}: {facts['bytes']} bytes for {facts['height']}×{facts['width']}×{facts['channels']} "
        f"({facts['raw_bytes'] / facts['bytes']:.2f}:1), model {facts['model_id']}, latent {facts['latent_dim']}"
        f"×{facts['latent_bits']} bits, {facts['layers'] - 1} residual layer(s)"
        + (f" ({', '.join(facts['residual_kinds'])})" if facts["residual_kinds"] else "")
    )
    return 0


def _cmd_decode(args: argparse.Namespace) -> int:
    from .codec import decode_file

    image = decode_file(args.input, args.output, model=args.model)
    print(f"{args.output}: {image.shape[1]}×{image.shape[0]} {'RGB' if image.ndim == 3 else 'grayscale'}")
    return 0


def _cmd_inspect(args: argparse.Namespace) -> int:
    from pathlib import Path

    from .codec import inspect_image

    print(json.dumps(inspect_image(Path(args.input).read_bytes()), indent=2))
    return 0


def _cmd_train(args: argparse.Namespace) -> int:
    from .training import TrainImageConfig, train_image_model

    config = TrainImageConfig(
        data=args.data, out=args.output, channels=args.channels, tile=args.tile, latent_dim=args.latent_dim,
        width=args.width, depth=args.depth, bottleneck=args.bottleneck, epochs=args.epochs,
        max_minutes=args.max_minutes, init=args.init, batch_size=args.batch_size, lr=args.lr, seed=args.seed,
        threads=args.threads, train_subset=args.train_subset,
        prefixes=tuple(int(v) for v in args.prefixes.split(",")),
        quant_bits=tuple(int(v) for v in args.quant_bits.split(",")),
    )
    print(json.dumps(train_image_model(config, progress=not args.quiet), indent=2))
    return 0


def add_subparser(sub) -> argparse.ArgumentParser:
    """Adds ``image`` (with its own subcommands) to an ``add_subparsers()`` object."""
    image = sub.add_parser("image", help="images through the learned encoder and the adlcodec payload (docs/IMAGE.md)")
    image_sub = image.add_subparsers(dest="image_command", metavar="ACTION")
    image_sub.required = True

    enc = image_sub.add_parser("encode", help="PNG (or any Pillow-readable image) -> .adl")
    enc.add_argument("input")
    enc.add_argument("-o", "--output", required=True)
    enc.add_argument("--bits", type=int, default=8, help="latent bit width: 1, 2, 4, 8, 16 or 32 (default 8)")
    enc.add_argument("--latent-dim", type=int, default=None, help="leading code values sent per tile (default: all)")
    enc.add_argument("--residual-rounds", type=int, default=0, help="residual-refinement layers (default 0)")
    enc.add_argument("--residual-bits", type=int, default=4, help="bit width of residual layers (default 4)")
    enc.add_argument("--residual-bin-size", type=int, default=16, help="adlcodec bin size of residual layers")
    enc.add_argument("--residual-kind", choices=("pixel", "dct"), default="pixel",
                     help="residual layers carry pixel corrections or per-tile DCT coefficients (container v2)")
    enc.add_argument("--residual-threshold", type=float, default=None,
                     help="send every residual value with magnitude ≥ this (bin size 1) instead of the binned selection")
    enc.add_argument("--target-ssim", type=float, default=None,
                     help="search latent and residual settings for the smallest file reaching this SSIM "
                          "(overrides the settings above)")
    enc.add_argument("--max-residual-layers", type=int, default=6, help="residual layers the search may add")
    enc.add_argument("--model", default=None, help="model file (default: the shipped Fashion-MNIST model)")
    enc.set_defaults(func=_cmd_encode)

    dec = image_sub.add_parser("decode", help=".adl -> PNG")
    dec.add_argument("input")
    dec.add_argument("-o", "--output", required=True)
    dec.add_argument("--model", default=None,
                     help="model file the .adl was made with (default: the shipped model of that id)")
    dec.set_defaults(func=_cmd_decode)

    ins = image_sub.add_parser("inspect", help="print the validated header of an .adl image as JSON")
    ins.add_argument("input")
    ins.set_defaults(func=_cmd_inspect)

    tr = image_sub.add_parser("train", help="train an image model on an IDX (MNIST-style) or CIFAR binary folder")
    tr.add_argument("--data", required=True, help="folder with *images-idx3-ubyte[.gz] or CIFAR *.bin files")
    tr.add_argument("-o", "--output", default="image_model.npz")
    tr.add_argument("--epochs", type=float, default=5.0, help="passes over the data (fractions allowed; default 5)")
    tr.add_argument("--latent-dim", type=int, default=128)
    tr.add_argument("--max-minutes", type=float, default=None,
                    help="wall-clock budget: the schedule completes at whichever of --epochs and this comes first")
    tr.add_argument("--init", default=None, help="continue training this model file (its architecture wins)")
    tr.add_argument("--width", type=int, default=48, help="feature maps of the conv stacks")
    tr.add_argument("--depth", type=int, default=2, help="3×3 conv blocks at T/4 resolution per side")
    tr.add_argument("--bottleneck", type=int, default=32, help="feature maps around the FC layers (0 = width)")
    tr.add_argument("--tile", type=int, default=None, choices=(28, 32))
    tr.add_argument("--channels", type=int, default=None, choices=(1, 3))
    tr.add_argument("--batch-size", type=int, default=128)
    tr.add_argument("--lr", type=float, default=3e-3, help="peak of the one-cycle learning-rate schedule")
    tr.add_argument("--prefixes", default="16,24,32,48,64,96,128",
                    help="code prefixes trained (nested code; each row draws one; the full length is always added)")
    tr.add_argument("--quant-bits", default="0,2,4,8",
                    help="latent bit widths trained (each row draws one; 0 = unquantized)")
    tr.add_argument("--seed", type=int, default=0)
    tr.add_argument("--threads", type=int, default=2)
    tr.add_argument("--train-subset", type=int, default=None)
    tr.add_argument("--quiet", action="store_true", help="no progress bar")
    tr.set_defaults(func=_cmd_train)
    return image
