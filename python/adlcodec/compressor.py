"""A stateful compressor: one error-feedback residual per key (e.g. per parameter)."""

from __future__ import annotations

from typing import Any, Hashable

import numpy as np

from ._api import FORMAT_VERSION, as_float32_array, check_bin_size, check_bits, compress


class Compressor:
    """Holds residuals keyed by any hashable; each is created (zeros) on first use of its key.

    >>> c = Compressor(bin_size=50, bits=1)
    >>> payload = c.compress("fc1.weight", grad)
    """

    def __init__(self, bin_size: int = 50, bits: int = 1, *, check_finite: bool = True) -> None:
        self.bin_size = check_bin_size(bin_size)
        self.bits = check_bits(bits)
        self.check_finite = bool(check_finite)
        self._residuals: dict[Hashable, np.ndarray] = {}

    def compress(self, key: Hashable, grad: Any) -> np.ndarray:
        array = as_float32_array(grad, "grad")
        residual = self._residuals.get(key)
        if residual is None:
            residual = np.zeros(array.shape, dtype=np.float32)
        elif residual.size != array.size:
            raise ValueError(
                f"key {key!r} has a residual of {residual.size} elements, grad has {array.size}; "
                "call reset() or use another key"
            )
        payload = compress(array, residual, bin_size=self.bin_size, bits=self.bits, check_finite=self.check_finite)
        self._residuals[key] = residual  # stored only once compress succeeded
        return payload

    def residual(self, key: Hashable) -> np.ndarray:
        """The live residual of ``key`` (KeyError if it was never compressed)."""
        return self._residuals[key]

    def keys(self) -> list:
        return list(self._residuals)

    def state_dict(self) -> dict:
        return {
            "format_version": FORMAT_VERSION,
            "bin_size": self.bin_size,
            "bits": self.bits,
            "residuals": {key: value.copy() for key, value in self._residuals.items()},
        }

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict) or "residuals" not in state:
            raise TypeError("state must be a dict produced by Compressor.state_dict()")
        bin_size, bits = check_bin_size(state["bin_size"]), check_bits(state["bits"])
        residuals = {}
        for key, value in state["residuals"].items():
            array = np.asarray(value)
            if array.dtype != np.float32:
                raise TypeError(f"residual {key!r} must be float32, got {array.dtype}")
            if not np.all(np.isfinite(array)):
                raise ValueError(f"residual {key!r} has non-finite values")
            residuals[key] = np.array(array, dtype=np.float32, order="C", copy=True)
        self.bin_size, self.bits, self._residuals = bin_size, bits, residuals

    def reset(self) -> None:
        self._residuals.clear()

    def __repr__(self) -> str:
        return f"Compressor(bin_size={self.bin_size}, bits={self.bits}, keys={len(self._residuals)})"
