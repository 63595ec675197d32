#!/usr/bin/env python3
"""Start-up gate for one testbed rank: import torch and adlcodec, report ready, wait for the go signal, then run.

    rank_entry.py --ready FILE --go FILE [--timeout S] (-m MODULE | SCRIPT) [ARGS...]

testbed.py starts every rank without a CPU quota and throttles them only once each has written its ready
file: importing torch takes seconds on a whole core and minutes at 1/20 of one, and that start-up is not
what the testbed measures (a Pi does it once, before training). After the go file appears the module or
script runs exactly as ``python -m MODULE ARGS`` / ``python SCRIPT ARGS`` would, in this same process, so
the rank's cgroups, network namespace and peak RSS are those of the training itself.
"""

from __future__ import annotations

import os
import runpy
import sys
import time


def main() -> None:
    argv = sys.argv[1:]
    opts = {"--timeout": "600"}
    while argv and argv[0] in ("--ready", "--go", "--timeout"):
        opts[argv[0]] = argv[1]
        argv = argv[2:]
    if "--ready" not in opts or "--go" not in opts or not argv:
        sys.exit(__doc__.split("\n\n")[1])
    # the expensive imports, done unthrottled; the module run below finds them in sys.modules
    import numpy  # noqa: F401
    import torch  # noqa: F401
    import torch.distributed  # noqa: F401
    import torch.nn.parallel  # noqa: F401

    import adlcodec  # noqa: F401
    import adlcodec.models  # noqa: F401
    import adlcodec.train  # noqa: F401

    with open(opts["--ready"], "w") as f:
        f.write(str(os.getpid()))
    deadline = time.monotonic() + float(opts["--timeout"])
    while not os.path.exists(opts["--go"]):
        if time.monotonic() > deadline:
            sys.exit(f"rank_entry: no go signal ({opts['--go']}) within {opts['--timeout']} s")
        time.sleep(0.02)
    if argv[0] == "-m":
        sys.argv = [argv[1], *argv[2:]]
        runpy.run_module(argv[1], run_name="__main__", alter_sys=True)
    else:
        sys.argv = list(argv)
        runpy.run_path(argv[0], run_name="__main__")


if __name__ == "__main__":
    main()
