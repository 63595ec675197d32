"""``adlcodec`` command line: ``adlcodec train ...``, ``adlcodec paper-table ...``."""

from __future__ import annotations

import argparse
import sys

__all__ = ["main", "build_parser"]


def _cmd_train(args: argparse.Namespace) -> int:
    from .train import config_from_args, run

    run(config_from_args(args))
    return 0


def _cmd_paper_table(args: argparse.Namespace) -> int:
    from .paper import print_comparison, run_table

    if args.compare or args.from_json:
        print_comparison(args)
    else:
        run_table(args)
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="adlcodec", description="AdaComp gradient compression tools")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    from .train import add_arguments

    train = sub.add_parser(
        "train",
        help="data-parallel training on Fashion-MNIST (spawns --ranks local ranks, or runs under torchrun/mpirun)",
    )
    add_arguments(train)
    train.set_defaults(func=_cmd_train)

    from . import paper

    table = sub.add_parser(
        "paper-table",
        help="the paper's Table III on the data at hand: every optimizer, measured accuracy/loss/time/ratio, "
        "modeled Pi-cluster delay and energy; --compare: the paper's Tables II and III beside our stored figures",
    )
    paper.add_arguments(table)
    table.set_defaults(func=_cmd_paper_table)
    from .image.cli import add_subparser as add_image_subparser

    add_image_subparser(sub)
    return parser


def main(argv=None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, TypeError, FileNotFoundError) as exc:
        parser.exit(2, f"adlcodec {args.command}: error: {exc}\n")


if __name__ == "__main__":
    sys.exit(main())
