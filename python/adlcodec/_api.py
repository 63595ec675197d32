"""Stateless encode/decode over numpy arrays and CPU torch tensors (no copies)."""

from __future__ import annotations

import contextlib
import operator
import sys
from typing import Any, Iterator

import numpy as np

from . import _core
from ._core import FORMAT_VERSION, FormatError

VALID_BITS = (1, 2, 4, 8, 16, 32)


def _is_torch_tensor(obj: Any) -> bool:
    torch = sys.modules.get("torch")  # never import torch just to find out
    return torch is not None and isinstance(obj, torch.Tensor)


def as_float32_array(obj: Any, name: str, *, written: bool = False) -> np.ndarray:
    """A zero-copy numpy view of a float32 C-contiguous numpy array or CPU torch tensor.

    ``written``: the caller will write the tensor in place. Autograd cannot record such a write, so a
    tensor that requires grad is refused while grad mode is on (torch refuses its own in-place ops on
    leaves that require grad; under ``torch.no_grad()`` it allows them, and so does this).
    """
    if isinstance(obj, np.ndarray):
        return obj
    if _is_torch_tensor(obj):
        import torch

        if obj.device.type != "cpu":
            raise ValueError(f"{name} must be a CPU tensor, got device {obj.device}")
        if obj.dtype != torch.float32:
            raise TypeError(f"{name} must be float32, got {obj.dtype}")
        if not obj.is_contiguous():
            raise ValueError(f"{name} must be contiguous (call .contiguous())")
        if written and obj.requires_grad and torch.is_grad_enabled():
            raise ValueError(
                f"{name} requires grad and would be written in place, which autograd cannot record; "
                f"pass {name}.detach() or call under torch.no_grad()"
            )
        return obj.detach().numpy()
    raise TypeError(f"{name} must be a numpy array or a CPU torch tensor, got {type(obj).__name__}")


def _mark_written(*objs: Any) -> None:
    """Tell autograd that torch tensors among ``objs`` were written in place.

    The native core writes through a numpy view, which torch does not see: without this a backward
    that saved the tensor would silently use the new values instead of raising, as it does after
    torch's own in-place ops.
    """
    tensors = [obj for obj in objs if _is_torch_tensor(obj)]
    if tensors:
        from torch.autograd.graph import increment_version

        increment_version(tensors)


def _as_payload(obj: Any) -> Any:
    if _is_torch_tensor(obj):
        return obj.detach().cpu().contiguous().numpy()
    return obj


def _as_int(value: Any, name: str) -> int:
    if isinstance(value, bool):
        raise TypeError(f"{name} must be an int, got bool")
    try:
        return operator.index(value)
    except TypeError:
        raise TypeError(f"{name} must be an int, got {type(value).__name__}") from None


def check_bin_size(bin_size: Any) -> int:
    value = _as_int(bin_size, "bin_size")
    if not 1 <= value <= 0xFFFFFFFF:
        raise ValueError(f"bin_size must be between 1 and 2^32-1, got {value}")
    return value


def check_bits(bits: Any) -> int:
    value = _as_int(bits, "bits")
    if value not in VALID_BITS:
        raise ValueError(f"bits must be one of {VALID_BITS}, got {value}")
    return value


def compress(grad: Any, residual: Any, *, bin_size: int = 50, bits: int = 1, check_finite: bool = True,
             residual_out: Any = None) -> np.ndarray:
    """Compress ``grad`` with error feedback; ``residual`` (same number of elements) is updated in place.

    With ``residual_out`` (a float32 array or CPU tensor of the same number of elements, sharing no memory
    with ``grad`` or ``residual``), the updated residual is written there instead and ``residual`` is only
    read: keep the old one until you decide to commit the step, without copying it first.

    Returns the payload as a 1-D numpy uint8 array. Non-finite values in ``grad`` or ``residual`` (or an
    overflow of ``residual + 2*grad``) raise ValueError and leave ``residual`` unchanged, unless
    ``check_finite=False``, in which case the caller guarantees finite inputs. After such an error
    ``residual_out`` holds nothing usable: out of place, the update is written in the same pass that
    checks the inputs, which saves a pass over memory (as does ``check_finite=False`` in place).
    """
    grad_array = as_float32_array(grad, "grad")
    residual_array = as_float32_array(residual, "residual", written=residual_out is None)
    out_array = None if residual_out is None else as_float32_array(residual_out, "residual_out", written=True)
    try:
        return _core.compress(
            grad_array, residual_array, check_bin_size(bin_size), check_bits(bits), bool(check_finite), out_array
        )
    finally:
        # Also after an error: out of place, residual_out may have been written before it.
        _mark_written(residual if residual_out is None else residual_out)


def decompress(payload: Any, out: Any = None, *, accumulate: bool = False, max_numel: int | None = None) -> Any:
    """Decode a payload to a float32 array of its original shape.

    With ``out`` (a float32 numpy array or CPU torch tensor with the same number of elements), the result
    is written there, or added to it with ``accumulate=True``, and ``out`` is returned. A malformed payload
    raises FormatError before anything is written.

    A payload of a few dozen bytes may honestly describe a huge all-zero tensor; when payloads come from
    untrusted peers, pass ``out`` or ``max_numel`` to bound what decoding allocates.
    """
    payload = _as_payload(payload)
    if max_numel is not None:
        max_numel = _as_int(max_numel, "max_numel")
        if max_numel < 0:
            raise ValueError(f"max_numel must be >= 0, got {max_numel}")
    if out is None:
        if accumulate:
            raise ValueError("accumulate=True needs an out buffer")
        if max_numel is not None:
            check_numel(payload, max_numel)
        return _core.decompress(payload, None, False)
    target = as_float32_array(out, "out", written=True)
    _core.decompress(payload, target, bool(accumulate))  # raises before writing anything
    _mark_written(out)
    return out


def check_numel(payload: Any, max_numel: int) -> dict:
    """The payload's header facts, or FormatError if it holds more than ``max_numel`` elements."""
    info = _core.inspect(payload)
    if info["numel"] > max_numel:
        raise FormatError(f"adlcodec payload: {info['numel']} elements exceed max_numel={max_numel}")
    return info


def inspect(payload: Any) -> dict:
    """Header facts of a payload (validated, checksum included) as a dict."""
    return _core.inspect(_as_payload(payload))


def kernel() -> str:
    """Name of the active kernel: "scalar", "avx2", "avx512" or "neon"."""
    return _core.kernel()


def available_kernels() -> list[str]:
    """Kernels this CPU and build can run, the default (best) last."""
    return list(_core.available_kernels())


@contextlib.contextmanager
def use_kernel(name: str) -> Iterator[str]:
    """Run a block with another kernel (for tests and benchmarks); process-wide, not thread-local."""
    previous = _core.kernel()
    _core.set_kernel(name)
    try:
        yield name
    finally:
        _core.set_kernel(previous)

