"""adlcodec: binned residual (AdaComp-family) gradient compression.

Quick use::

    import numpy as np, adlcodec
    residual = np.zeros_like(grad)
    payload = adlcodec.compress(grad, residual, bin_size=50, bits=1)
    dense = adlcodec.decompress(payload)

The wire format is specified in docs/FORMAT.md.
"""

from ._api import (
    FORMAT_VERSION,
    FormatError,
    available_kernels,
    compress,
    decompress,
    inspect,
    kernel,
    use_kernel,
)
from .compressor import Compressor

__version__ = "0.1.0"

__all__ = [
    "FORMAT_VERSION",
    "AdaCompCodec",
    "AdaCompZarrCodec",
    "Compressor",
    "FormatError",
    "available_kernels",
    "compress",
    "decompress",
    "inspect",
    "kernel",
    "use_kernel",
]


def __getattr__(name):
    # numcodecs and zarr are optional: import them only when a codec is asked for.
    if name == "AdaCompCodec":
        from .codec import AdaCompCodec

        return AdaCompCodec
    if name == "AdaCompZarrCodec":  # zarr is optional too
        from .zarr_codec import AdaCompZarrCodec

        return AdaCompZarrCodec
    raise AttributeError(f"module 'adlcodec' has no attribute {name!r}")
