"""Image classification data from local files; never downloads.

* MNIST-format IDX folders (``train-images-idx3-ubyte[.gz]`` ...): MNIST,
  Fashion-MNIST.  Debian's ``dataset-fashion-mnist`` package installs the four
  files under ``/usr/share/datasets/fashion-mnist`` (the default).
* CIFAR-10 / CIFAR-100 "python version" pickles (``data_batch_1..5`` +
  ``test_batch``, or ``train`` + ``test``), directly in the folder or in the
  ``cifar-10-batches-py`` / ``cifar-100-python`` folder the archives unpack to.
  The pickles are read with an unpickler that only accepts the handful of
  numpy globals the files need, so a hostile file cannot run code.
* :func:`synthetic_dataset`: learnable random data, for tests only.

:func:`load_dataset` returns an :class:`ImageDataset` holding uint8 pixels
(CIFAR-10 as float32 would be 600 MB per rank, too much for a 1 GB Pi) and
normalises batch by batch with per-channel statistics of the training split.
"""

from __future__ import annotations

import gzip
import io
import os
import pickle
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = [
    "DEFAULT_DATA_DIR", "read_idx", "load_fashion_mnist", "FASHION_MNIST_CLASSES", "ImageDataset", "load_dataset",
    "detect_format", "synthetic_dataset", "write_cifar_fixture",
]

DEFAULT_DATA_DIR = "/usr/share/datasets/fashion-mnist"
FASHION_MNIST_CLASSES = (
    "T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot",
)
_SPLIT_FILES = {"train": "train", "test": "t10k"}
# IDX type codes -> numpy big-endian dtypes
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
# mean / std of the Fashion-MNIST training pixels in [0, 1]
_MEAN, _STD = 0.2860, 0.3530


def read_idx(path: str | os.PathLike) -> np.ndarray:
    """Read one IDX file (``.gz`` is decompressed transparently)."""
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    with opener(path, "rb") as f:
        raw = f.read()
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"{path}: not an IDX file (bad magic {raw[:4].hex()})")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_DTYPES:
        raise ValueError(f"{path}: unknown IDX element type 0x{code:02x}")
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise ValueError(f"{path}: truncated IDX header")
    shape = tuple(int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    dtype = np.dtype(_IDX_DTYPES[code])
    expected = int(np.prod(shape)) * dtype.itemsize
    if len(raw) - header != expected:
        raise ValueError(f"{path}: IDX body has {len(raw) - header} bytes, shape {shape} needs {expected}")
    return np.frombuffer(raw, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def _find(data_dir: Path, stem: str) -> Path:
    for name in (stem, stem + ".gz"):
        if (data_dir / name).is_file():
            return data_dir / name
    raise FileNotFoundError(
        f"{stem}[.gz] not found in {data_dir}; install Debian's dataset-fashion-mnist or pass --data DIR "
        "(nothing is downloaded)"
    )


def load_fashion_mnist(data_dir: str | os.PathLike | None = None, split: str = "train", normalize: bool = True):
    """Return ``(images, labels)``: float32 ``(N, 1, 28, 28)`` and int64 ``(N,)``."""
    if split not in _SPLIT_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    data_dir = Path(data_dir or DEFAULT_DATA_DIR)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data directory {data_dir} does not exist")
    prefix = _SPLIT_FILES[split]
    images = read_idx(_find(data_dir, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(_find(data_dir, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or images.shape[1:] != (28, 28):
        raise ValueError(f"expected images of shape (N, 28, 28), got {images.shape}")
    if labels.shape != (images.shape[0],):
        raise ValueError(f"{labels.shape[0]} labels for {images.shape[0]} images")
    x = images.astype(np.float32)[:, None] / np.float32(255.0)
    if normalize:
        x = (x - np.float32(_MEAN)) / np.float32(_STD)
    return x, labels.astype(np.int64)


# --------------------------------------------------------------------------- generic datasets

@dataclass
class ImageDataset:
    """uint8 images ``(N, C, H, W)``, int64 labels, and the normalisation to apply per batch."""

    images: np.ndarray
    labels: np.ndarray
    num_classes: int
    mean: np.ndarray  # per channel, in [0, 1] units
    std: np.ndarray
    name: str

    def __post_init__(self):
        if self.images.ndim != 4 or self.images.dtype != np.uint8:
            raise ValueError(f"images must be uint8 (N, C, H, W), got {self.images.dtype} {self.images.shape}")
        if self.labels.shape != (self.images.shape[0],):
            raise ValueError(f"{self.labels.shape[0]} labels for {self.images.shape[0]} images")
        if len(self.labels) and not (0 <= self.labels.min() and self.labels.max() < self.num_classes):
            raise ValueError(
                f"labels must lie in [0, {self.num_classes}), got {self.labels.min()}..{self.labels.max()}")

    def __len__(self) -> int:
        return self.images.shape[0]

    @property
    def input_shape(self) -> tuple[int, int, int]:
        return tuple(self.images.shape[1:])

    def subset(self, n: int | None) -> "ImageDataset":
        if not n or n >= len(self):
            return self
        return ImageDataset(self.images[:n], self.labels[:n], self.num_classes, self.mean, self.std, self.name)

    def batch(self, idx) -> tuple[np.ndarray, np.ndarray]:
        """Normalised float32 images and int64 labels for the given indices."""
        x = self.images[idx].astype(np.float32) / np.float32(255.0)
        x -= self.mean.reshape(1, -1, 1, 1)
        x /= self.std.reshape(1, -1, 1, 1)
        return x, self.labels[idx]


_STATS_CHUNK = 4096  # images per histogram pass of _channel_stats


def _channel_stats(images: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Exact per-channel mean / std in [0, 1] units from a 256-bin histogram (no float copy of the set)."""
    levels = np.arange(256, dtype=np.float64) / 255.0
    means, stds = [], []
    for c in range(images.shape[1]):
        # bincount converts its input to int64 first: over the whole set that copy is 8 bytes per pixel
        # (376 MB for Fashion-MNIST, a third of a Pi's memory), so count a few thousand images at a time
        counts = np.zeros(256, np.float64)
        for start in range(0, len(images), _STATS_CHUNK):
            counts += np.bincount(images[start:start + _STATS_CHUNK, c].ravel(), minlength=256)
        p = counts / counts.sum()
        mean = float(p @ levels)
        means.append(mean)
        stds.append(max(float(np.sqrt(p @ (levels - mean) ** 2)), 1e-3))
    return np.array(means, np.float32), np.array(stds, np.float32)


class _SafeUnpickler(pickle.Unpickler):
    _ALLOWED = {
        ("numpy.core.multiarray", "_reconstruct"), ("numpy._core.multiarray", "_reconstruct"),
        ("numpy", "ndarray"), ("numpy", "dtype"), ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"), ("_codecs", "encode"),
    }

    def find_class(self, module, name):
        if (module, name) in self._ALLOWED:
            return super().find_class(module, name)
        raise ValueError(f"CIFAR pickle refers to {module}.{name}, which a CIFAR file never needs; refusing it")


def _load_cifar_pickle(path: Path) -> dict:
    try:
        obj = _SafeUnpickler(io.BytesIO(path.read_bytes()), encoding="bytes").load()
    except (pickle.UnpicklingError, EOFError) as exc:
        raise ValueError(f"{path}: not a CIFAR python pickle ({exc})") from exc
    if not isinstance(obj, dict):
        raise ValueError(f"{path}: expected a dict, got {type(obj).__name__}")
    return {k.decode() if isinstance(k, bytes) else k: v for k, v in obj.items()}


def _cifar_root(data_dir: Path) -> tuple[str, Path] | None:
    for root in (data_dir, data_dir / "cifar-10-batches-py", data_dir / "cifar-100-python"):
        if (root / "data_batch_1").is_file() and (root / "test_batch").is_file():
            return "cifar10", root
        if (root / "train").is_file() and (root / "test").is_file():
            return "cifar100", root
    return None


def detect_format(data_dir: str | os.PathLike) -> str:
    """``"idx"``, ``"cifar10"`` or ``"cifar100"`` for a data folder; FileNotFoundError otherwise."""
    data_dir = Path(data_dir)
    if not data_dir.is_dir():
        raise FileNotFoundError(f"data directory {data_dir} does not exist")
    if any((data_dir / f"train-images-idx3-ubyte{gz}").is_file() for gz in ("", ".gz")):
        return "idx"
    found = _cifar_root(data_dir)
    if found:
        return found[0]
    raise FileNotFoundError(
        f"{data_dir} holds neither MNIST-format IDX files (train-images-idx3-ubyte[.gz] ...) nor CIFAR python "
        "pickles (data_batch_1..5/test_batch or train/test); nothing is downloaded"
    )


def _read_cifar(root: Path, kind: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    if kind == "cifar10":
        names = [f"data_batch_{i}" for i in range(1, 6)] if split == "train" else ["test_batch"]
        names = [n for n in names if (root / n).is_file()]
        label_key = "labels"
    else:
        names, label_key = [split], "fine_labels"
    xs, ys = [], []
    for name in names:
        d = _load_cifar_pickle(root / name)
        if "data" not in d or label_key not in d:
            raise ValueError(f"{root / name}: missing 'data' or {label_key!r}")
        data = np.asarray(d["data"])
        if data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3 * 32 * 32:
            raise ValueError(f"{root / name}: 'data' must be uint8 (N, 3072), got {data.dtype} {data.shape}")
        labels = np.asarray(d[label_key], dtype=np.int64)
        if labels.shape != (data.shape[0],):
            raise ValueError(f"{root / name}: {labels.shape[0]} labels for {data.shape[0]} images")
        xs.append(data.reshape(-1, 3, 32, 32))
        ys.append(labels)
    return np.concatenate(xs), np.concatenate(ys)


def _read_split(data_dir: Path, kind: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    if kind == "idx":
        prefix = _SPLIT_FILES[split]
        images = read_idx(_find(data_dir, f"{prefix}-images-idx3-ubyte"))
        labels = read_idx(_find(data_dir, f"{prefix}-labels-idx1-ubyte"))
        if images.ndim != 3 or images.dtype != np.uint8:
            raise ValueError(f"expected uint8 images of shape (N, H, W), got {images.dtype} {images.shape}")
        if labels.shape != (images.shape[0],):
            raise ValueError(f"{labels.shape[0]} labels for {images.shape[0]} images")
        return np.ascontiguousarray(images[:, None]), labels.astype(np.int64)
    return _read_cifar(_cifar_root(data_dir)[1], kind, split)


def load_dataset(data_dir: str | os.PathLike | None = None, split: str = "train",
                 stats: tuple[np.ndarray, np.ndarray] | None = None) -> ImageDataset:
    """Load ``split`` ("train"/"test") of the dataset in ``data_dir`` (default: Debian's Fashion-MNIST).

    Normalisation statistics come from the training split; pass ``stats=(train.mean, train.std)``
    when loading the test split to skip reading the training files again.
    """
    if split not in _SPLIT_FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    data_dir = Path(data_dir or DEFAULT_DATA_DIR)
    kind = detect_format(data_dir)
    images, labels = _read_split(data_dir, kind, split)
    if stats is None:
        stats = _channel_stats(images if split == "train" else _read_split(data_dir, kind, "train")[0])
    mean, std = (np.asarray(v, np.float32) for v in stats)
    num_classes = {"cifar10": 10, "cifar100": 100}.get(kind, 10)
    return ImageDataset(images, labels, num_classes, mean, std, f"{kind}:{data_dir}")


def synthetic_dataset(n: int, input_shape=(1, 28, 28), num_classes: int = 10, seed: int = 0) -> ImageDataset:
    """Tests only: each class is a fixed random template plus noise, so a CNN can learn it."""
    if n < 1 or num_classes < 2:
        raise ValueError(f"need n >= 1 and num_classes >= 2, got {n}, {num_classes}")
    rng = np.random.default_rng(seed)
    templates = rng.integers(0, 256, size=(num_classes, *input_shape))
    labels = rng.integers(0, num_classes, size=n)
    noise = rng.normal(0, 40, size=(n, *input_shape))
    images = np.clip(templates[labels] + noise, 0, 255).astype(np.uint8)
    mean, std = _channel_stats(images)
    return ImageDataset(images, labels.astype(np.int64), num_classes, mean, std, "synthetic")


def write_cifar_fixture(directory: str | os.PathLike, kind: str = "cifar10", n_train: int = 200, n_test: int = 100,
                        seed: int = 0) -> Path:
    """Write a small dataset in the CIFAR python-pickle layout (bytes keys, uint8 (N, 3072) rows).

    The images are :func:`synthetic_dataset` samples, so a model trained on the
    fixture can beat chance.  Returns the folder to pass as ``--data``.
    """
    if kind not in ("cifar10", "cifar100"):
        raise ValueError(f"kind must be 'cifar10' or 'cifar100', got {kind!r}")
    classes = 10 if kind == "cifar10" else 100
    ds = synthetic_dataset(n_train + n_test, (3, 32, 32), classes, seed)
    flat = ds.images.reshape(len(ds), -1)
    root = Path(directory) / ("cifar-10-batches-py" if kind == "cifar10" else "cifar-100-python")
    root.mkdir(parents=True, exist_ok=True)
    label_key = b"labels" if kind == "cifar10" else b"fine_labels"

    def dump(name, rows, labels):
        record = {b"batch_label": name.encode(), b"data": rows, label_key: [int(v) for v in labels]}
        (root / name).write_bytes(pickle.dumps(record, protocol=2))

    if kind == "cifar10":
        half = n_train // 2  # two training batches: exercises the concatenation
        dump("data_batch_1", flat[:half], ds.labels[:half])
        dump("data_batch_2", flat[half:n_train], ds.labels[half:n_train])
        dump("test_batch", flat[n_train:], ds.labels[n_train:])
    else:
        dump("train", flat[:n_train], ds.labels[:n_train])
        dump("test", flat[n_train:], ds.labels[n_train:])
    return Path(directory)
