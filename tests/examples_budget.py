"""How many examples each property test draws.

Under qemu (scripts/aarch64.sh) an example costs 10-30 times what it costs natively, and the properties'
Python side (the spec decoder, the reference codec) is the same code the host run already exercises with
every example; ADLCODEC_EXAMPLES_SCALE lets the emulated run draw a fraction, never fewer than 10.
"""

from __future__ import annotations

import os

_raw = os.environ.get("ADLCODEC_EXAMPLES_SCALE", "1")
try:
    SCALE = float(_raw)
except ValueError:
    raise ValueError(f"ADLCODEC_EXAMPLES_SCALE must be a number in (0, 1], not {_raw!r}") from None
if not 0 < SCALE <= 1:
    raise ValueError(f"ADLCODEC_EXAMPLES_SCALE must be in (0, 1], not {SCALE}")


def examples(n: int) -> int:
    return max(10, round(n * SCALE)) if SCALE < 1 else n
