"""A stateful compressor: one error-feedback residual per key (e.g. per parameter)."""

from __future__ import annotations

import contextlib
import threading
from typing import Any, Hashable, Iterator

import numpy as np

from ._api import FORMAT_VERSION, as_float32_array, check_bin_size, check_bits, compress


class Compressor:
    """Holds residuals keyed by any hashable; each is created (zeros) on first use of its key.

    >>> c = Compressor(bin_size=50, bits=1)
    >>> payload = c.compress("fc1.weight", grad)

    Thread-safe: calls on one key run one after the other (each sees the residual the previous one
    left), calls on different keys run in parallel (the native core releases the GIL), and
    ``state_dict``, ``load_state_dict`` and ``reset`` wait for running calls and hold new ones back.
    ``residual(key)`` is the live array: read it while no other thread compresses that key.
    """

    def __init__(self, bin_size: int = 50, bits: int = 1, *, check_finite: bool = True) -> None:
        self.bin_size = check_bin_size(bin_size)
        self.bits = check_bits(bits)
        self.check_finite = bool(check_finite)
        self._residuals: dict[Hashable, np.ndarray] = {}
        # _guard hands out the per-key locks; whole-state operations take it and then every key lock,
        # compress takes a key lock only (never _guard while holding one), so no two wait on each other.
        self._guard = threading.Lock()
        self._key_locks: dict[Hashable, threading.Lock] = {}

    def _lock(self, key: Hashable) -> threading.Lock:
        with self._guard:
            return self._key_locks.setdefault(key, threading.Lock())

    @contextlib.contextmanager
    def _all_keys(self) -> Iterator[None]:
        with self._guard, contextlib.ExitStack() as stack:
            for lock in self._key_locks.values():
                stack.enter_context(lock)
            yield

    def compress(self, key: Hashable, grad: Any) -> np.ndarray:
        array = as_float32_array(grad, "grad")
        with self._lock(key):
            residual = self._residuals.get(key)
            if residual is None:
                residual = np.zeros(array.shape, dtype=np.float32)
            elif residual.size != array.size:
                raise ValueError(
                    f"key {key!r} has a residual of {residual.size} elements, grad has {array.size}; "
                    "call reset() or use another key"
                )
            payload = compress(
                array, residual, bin_size=self.bin_size, bits=self.bits, check_finite=self.check_finite
            )
            self._residuals[key] = residual  # stored only once compress succeeded
            return payload

    def residual(self, key: Hashable) -> np.ndarray:
        """The live residual of ``key`` (KeyError if it was never compressed)."""
        return self._residuals[key]

    def keys(self) -> list:
        return list(self._residuals)

    def state_dict(self) -> dict:
        with self._all_keys():
            return {
                "format_version": FORMAT_VERSION,
                "bin_size": self.bin_size,
                "bits": self.bits,
                "residuals": {key: value.copy() for key, value in self._residuals.items()},
            }

    def load_state_dict(self, state: dict) -> None:
        if not isinstance(state, dict):
            raise TypeError(f"state must be a dict produced by Compressor.state_dict(), got {type(state).__name__}")
        missing = [name for name in ("bin_size", "bits", "residuals") if name not in state]
        if missing:
            raise TypeError(f"state lacks {', '.join(missing)}: it must be a dict produced by Compressor.state_dict()")
        if not isinstance(state["residuals"], dict):
            raise TypeError(f"state['residuals'] must be a dict, got {type(state['residuals']).__name__}")
        bin_size, bits = check_bin_size(state["bin_size"]), check_bits(state["bits"])
        residuals = {}
        for key, value in state["residuals"].items():
            array = np.asarray(value)
            if array.dtype != np.float32:
                raise TypeError(f"residual {key!r} must be float32, got {array.dtype}")
            if not np.all(np.isfinite(array)):
                raise ValueError(f"residual {key!r} has non-finite values")
            residuals[key] = np.array(array, dtype=np.float32, order="C", copy=True)
        with self._all_keys():
            self.bin_size, self.bits, self._residuals = bin_size, bits, residuals

    def reset(self) -> None:
        with self._all_keys():
            self._residuals.clear()

    # Locks do not pickle or copy: a copy is a new Compressor with the same state.
    def __getstate__(self) -> dict:
        return {"check_finite": self.check_finite, **self.state_dict()}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["bin_size"], state["bits"], check_finite=state["check_finite"])
        self.load_state_dict(state)

    def __repr__(self) -> str:
        return f"Compressor(bin_size={self.bin_size}, bits={self.bits}, keys={len(self._residuals)})"
