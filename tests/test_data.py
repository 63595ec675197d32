"""Data loaders: IDX (Debian's Fashion-MNIST), CIFAR-10/100 pickles (fixture written here), synthetic."""

from __future__ import annotations

import gzip
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from adlcodec.data import (
    DEFAULT_DATA_DIR, ImageDataset, detect_format, load_dataset, load_fashion_mnist, synthetic_dataset,
    write_cifar_fixture,
)


def test_fashion_mnist_default_is_uint8_with_train_statistics():
    train = load_dataset(split="train")
    test = load_dataset(split="test")
    assert detect_format(DEFAULT_DATA_DIR) == "idx"
    assert train.images.shape == (60000, 1, 28, 28) and train.images.dtype == np.uint8
    assert test.images.shape == (10000, 1, 28, 28) and test.num_classes == 10
    # statistics of the training split, used for both splits
    np.testing.assert_allclose(train.mean, [0.2860], atol=1e-4)
    np.testing.assert_allclose(train.std, [0.3530], atol=1e-4)
    np.testing.assert_array_equal(test.mean, train.mean)
    x, y = train.batch(np.arange(60000))
    assert x.dtype == np.float32 and abs(float(x.mean())) < 1e-3 and abs(float(x.std()) - 1) < 1e-3
    # same pixels and order as the older float loader
    legacy_x, legacy_y = load_fashion_mnist(split="test")
    np.testing.assert_array_equal(legacy_y, test.labels)
    np.testing.assert_allclose(test.batch(np.arange(100))[0], legacy_x[:100], atol=1e-3)


def test_idx_folder_with_plain_files_and_subset(tmp_path):
    for name in ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte", "train-images-idx3-ubyte",
                 "train-labels-idx1-ubyte"):
        (tmp_path / name).write_bytes(gzip.decompress((Path(DEFAULT_DATA_DIR) / f"{name}.gz").read_bytes()))
    ds = load_dataset(tmp_path, "test").subset(123)
    assert len(ds) == 123
    np.testing.assert_array_equal(ds.labels, load_dataset(split="test").labels[:123])


@pytest.mark.parametrize("kind, classes, label_key", [("cifar10", 10, "labels"), ("cifar100", 100, "fine_labels")])
def test_cifar_pickles_round_trip(tmp_path, kind, classes, label_key):
    write_cifar_fixture(tmp_path, kind, n_train=60, n_test=30, seed=5)
    assert detect_format(tmp_path) == kind
    train, test = load_dataset(tmp_path, "train"), load_dataset(tmp_path, "test")
    assert train.images.shape == (60, 3, 32, 32) and test.images.shape == (30, 3, 32, 32)
    assert train.num_classes == classes
    # rows are channel-major (R plane, G plane, B plane), as in the real CIFAR files
    root = next(tmp_path.iterdir())
    with open(root / ("test_batch" if kind == "cifar10" else "test"), "rb") as f:
        record = pickle.load(f, encoding="bytes")
    row = record[b"data"][7]
    assert test.images[7, 0, 0, 0] == row[0] and test.images[7, 1, 0, 0] == row[1024]
    assert test.images[7, 2, 31, 31] == row[3071]
    assert list(test.labels) == record[label_key.encode()]
    assert train.mean.shape == (3,) and np.all(train.std > 0)
    # the folder the archive unpacks to works as well as its parent
    assert len(load_dataset(root, "train")) == 60


class _Evil:
    def __reduce__(self):
        return (os.system, ("echo pwned",))


def test_hostile_or_malformed_cifar_files_are_rejected(tmp_path):
    write_cifar_fixture(tmp_path, "cifar10", n_train=20, n_test=10)
    root = tmp_path / "cifar-10-batches-py"
    (root / "test_batch").write_bytes(pickle.dumps({b"data": _Evil(), b"labels": [0]}))
    with pytest.raises(ValueError, match="never needs"):
        load_dataset(tmp_path, "test")
    (root / "test_batch").write_bytes(pickle.dumps({b"data": np.zeros((2, 100), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(ValueError, match="3072"):
        load_dataset(tmp_path, "test")
    (root / "test_batch").write_bytes(b"not a pickle")
    with pytest.raises(ValueError, match="not a CIFAR python pickle"):
        load_dataset(tmp_path, "test")


def test_missing_or_unknown_folders(tmp_path):
    with pytest.raises(FileNotFoundError, match="nothing is downloaded"):
        load_dataset(tmp_path)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_dataset(tmp_path / "nope")
    with pytest.raises(ValueError, match="split"):
        load_dataset(split="validation")


def test_synthetic_dataset_and_dataset_checks():
    ds = synthetic_dataset(50, (3, 8, 8), 4, seed=1)
    assert ds.images.shape == (50, 3, 8, 8) and set(np.unique(ds.labels)) <= set(range(4))
    np.testing.assert_array_equal(ds.images, synthetic_dataset(50, (3, 8, 8), 4, seed=1).images)
    with pytest.raises(ValueError, match="labels must lie"):
        ImageDataset(ds.images, ds.labels + 4, 4, ds.mean, ds.std, "bad")
    with pytest.raises(ValueError, match="uint8"):
        ImageDataset(ds.images.astype(np.float32), ds.labels, 4, ds.mean, ds.std, "bad")


def test_training_on_the_cifar_fixture(tmp_path):
    torch = pytest.importorskip("torch")  # noqa: F841
    from adlcodec.train import TrainConfig, run

    write_cifar_fixture(tmp_path, "cifar10", n_train=512, n_test=200, seed=2)
    r = run(TrainConfig(ranks=2, data=str(tmp_path), optimizer="adl", epochs=2, batch_size=16, lr_interval=8,
                        progress=False))
    assert r["params"] == 1_108_554 and r["replicas_identical"]
    assert r["accuracy"] > 30  # 10 classes; templates + noise are easy once learnt
    assert r["ratio"] > 40
    assert len(r["accuracy_curve"]) == 2  # one evaluation after each epoch


def test_loading_fashion_mnist_needs_little_more_memory_than_its_pixels():
    # a Pi 3B+ has 1 GB for everything: the training set's 47 MB of pixels must not cost a multiple of that
    # to load (the statistics once made an int64 copy of every pixel, 376 MB)
    # VmHWM, not getrusage: a child's ru_maxrss starts at its parent's (pytest's, with torch loaded)
    code = ("import re, adlcodec.data as d; s = d.load_dataset(None, 'train'); "
            "hwm = re.search(r'VmHWM:\\s+(\\d+) kB', open('/proc/self/status').read()).group(1); "
            "print(int(hwm) // 1024, s.images.nbytes >> 20)")
    peak_mib, pixels_mib = map(int, subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                    check=True).stdout.split())
    assert pixels_mib == 44
    assert peak_mib < 250, f"peak {peak_mib} MiB to load {pixels_mib} MiB of pixels"
