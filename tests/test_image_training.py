"""adlcodec.image training pieces: data folders, the adlcodec quantizer and SSIM in torch, `image train`."""

import json

import numpy as np
import pytest

torch = pytest.importorskip("torch")  # absent only in the emulated aarch64 run
pytest.importorskip("skimage")

from skimage.metrics import structural_similarity  # noqa: E402

import adlcodec  # noqa: E402
from adlcodec.image import decode_image, encode_image, load_model  # noqa: E402
from adlcodec.image.training import adlcodec_quantize_torch, load_image_folder, ssim_torch  # noqa: E402


def write_cifar(folder, name, n, label_bytes=1, seed=0):
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, (n, label_bytes), dtype=np.uint8)
    pixels = rng.integers(0, 256, (n, 3072), dtype=np.uint8)
    (folder / name).write_bytes(np.concatenate([labels, pixels], axis=1).tobytes())
    return pixels.reshape(n, 3, 32, 32)


def test_idx_folder_fashion_mnist():
    train = load_image_folder("/usr/share/datasets/fashion-mnist", "train")
    test = load_image_folder("/usr/share/datasets/fashion-mnist", "test")
    assert train.shape == (60000, 1, 28, 28) and test.shape == (10000, 1, 28, 28)
    assert train.dtype == np.uint8 and train.max() == 255


def test_cifar_binary_folders(tmp_path):
    a = write_cifar(tmp_path, "data_batch_1.bin", 5, seed=1)
    b = write_cifar(tmp_path, "data_batch_2.bin", 3, seed=2)
    t = write_cifar(tmp_path, "test_batch.bin", 4, seed=3)
    assert np.array_equal(load_image_folder(tmp_path, "train"), np.concatenate([a, b]))
    assert np.array_equal(load_image_folder(tmp_path, "test"), t)
    c100 = tmp_path / "c100"
    c100.mkdir()
    c100_images = write_cifar(c100, "train.bin", 2, label_bytes=2)
    assert np.array_equal(load_image_folder(c100), c100_images)
    (c100 / "train.bin").write_bytes(b"\0" * 3000)
    with pytest.raises(ValueError, match="whole number of CIFAR records"):
        load_image_folder(c100)
    with pytest.raises(FileNotFoundError, match="no IDX"):
        load_image_folder(_empty(tmp_path))
    with pytest.raises(ValueError, match="split"):
        load_image_folder(tmp_path, "valid")


def _empty(tmp_path):
    d = tmp_path / "empty"
    d.mkdir()
    return d


@pytest.mark.parametrize("bits", [1, 2, 4, 8])
def test_torch_quantizer_is_adlcodecs(bits):
    z = torch.from_numpy(np.random.default_rng(bits).uniform(-1, 1, (5, 40)).astype(np.float32))
    q = adlcodec_quantize_torch(z, bits).detach().numpy()
    for row, qrow in zip(z.numpy(), q):
        sent = adlcodec.decompress(adlcodec.compress(row.copy(), np.zeros_like(row), bin_size=1, bits=bits))
        np.testing.assert_allclose(qrow, sent, rtol=1e-6, atol=1e-7)


def test_torch_ssim_matches_scikit_image():
    rng = np.random.default_rng(0)
    x = rng.uniform(0, 1, (28, 28)).astype(np.float32)
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1).astype(np.float32)
    ours = float(ssim_torch(torch.from_numpy(x)[None, None], torch.from_numpy(y)[None, None]))
    assert ours == pytest.approx(structural_similarity(x, y, data_range=1.0), abs=1e-4)


def test_cli_train_on_cifar_folder_then_encode(tmp_path, capsys):
    from adlcodec.cli import main

    data = tmp_path / "cifar"
    data.mkdir()
    images = write_cifar(data, "data_batch_1.bin", 48)
    out = tmp_path / "m.npz"
    argv = ["image", "train", "--data", str(data), "-o", str(out), "--epochs", "1", "--latent-dim", "8",
            "--width", "8", "--batch-size", "16", "--threads", "1", "--quiet"]
    assert main(argv) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 3 and summary["images"] == 48
    model = load_model(out)
    assert model.spec.channels == 3 and model.spec.tile == 32 and model.spec.latent_dim == 8
    assert summary["model_id"] == f"{model.model_id:08x}"
    image = np.ascontiguousarray(images[0].transpose(1, 2, 0))
    decoded = decode_image(encode_image(image, bits=2, model=model), model=model)
    assert decoded.shape == (32, 32, 3)
    with pytest.raises(SystemExit):
        main(["image", "train", "--data", str(data), "--tile", "30"])


def test_nested_quantized_rows_draw_their_own_prefix_and_width():
    from adlcodec.image.training import _nested_quantized

    rng = np.random.default_rng(3)
    z = torch.from_numpy(rng.uniform(-1, 1, (400, 32)).astype(np.float32))
    out = _nested_quantized(z, [8, 16, 32], (0, 2, 4), np.random.default_rng(5)).numpy()
    lengths = set()
    widths = set()
    for row, qrow in zip(z.numpy(), out):
        k = int(np.count_nonzero(qrow))
        assert k in (8, 16, 32) and not qrow[k:].any()
        lengths.add(k)
        if np.allclose(qrow[:k], row[:k]):
            widths.add(0)
            continue
        for bits in (2, 4):
            prefix = row[:k].copy()
            sent = adlcodec.decompress(adlcodec.compress(prefix, np.zeros_like(prefix), bin_size=1, bits=bits))
            if np.allclose(qrow[:k], sent, rtol=1e-6, atol=1e-7):
                widths.add(bits)
                break
        else:
            raise AssertionError("row is neither unquantized nor adlcodec-quantized at a trained width")
    assert lengths == {8, 16, 32} and widths == {0, 2, 4}


def test_wall_clock_budget_ends_training(tmp_path):
    from adlcodec.image.training import TrainImageConfig, train_image_model

    images = np.random.default_rng(0).integers(0, 256, (256, 1, 28, 28), dtype=np.uint8)
    config = TrainImageConfig(out=str(tmp_path / "m.npz"), latent_dim=8, width=8, epochs=1000, batch_size=16,
                              threads=1, max_minutes=0.05)
    summary = train_image_model(config, progress=False, images=images)
    assert 0 < summary["steps"] < 1000 * 16
    assert summary["seconds"] < 30
    assert "3.0 s budget" not in summary["schedule"] and "budget" in summary["schedule"]
    with pytest.raises(ValueError, match="quant_bits"):
        train_image_model(TrainImageConfig(out=str(tmp_path / "x.npz"), quant_bits=(1,)), progress=False, images=images)


def test_training_gives_the_caller_its_subnormal_floats_back(tmp_path):
    # training flushes subnormals to zero for speed; the mode is the thread's, and it must not outlive the call
    from adlcodec.image.training import TrainImageConfig, train_image_model

    tiny = np.float32(1e-40)
    assert tiny * np.float32(1) != 0 and torch.tensor([1e-40]).mul(1.0).item() != 0
    images = np.random.default_rng(2).integers(0, 256, (32, 1, 28, 28), dtype=np.uint8)
    config = TrainImageConfig(out=str(tmp_path / "m.npz"), latent_dim=8, width=8, epochs=1, batch_size=16, threads=1)
    train_image_model(config, progress=False, images=images)
    assert tiny * np.float32(1) != 0 and torch.tensor([1e-40]).mul(1.0).item() != 0
    with pytest.raises(ValueError, match="quant_bits"):  # and on the way out through an error
        train_image_model(TrainImageConfig(out=str(tmp_path / "x.npz"), quant_bits=(1,)), progress=False, images=images)
    assert torch.tensor([1e-40]).mul(1.0).item() != 0


def test_fine_tuning_keeps_the_architecture(tmp_path):
    from adlcodec.image.training import TrainImageConfig, train_image_model

    images = np.random.default_rng(1).integers(0, 256, (64, 1, 28, 28), dtype=np.uint8)
    first = train_image_model(TrainImageConfig(out=str(tmp_path / "a.npz"), latent_dim=8, width=8, depth=2,
                                               bottleneck=4, epochs=1, batch_size=16, threads=1), progress=False, images=images)
    # the config's architecture fields are ignored: the --init model's spec wins
    second = train_image_model(TrainImageConfig(out=str(tmp_path / "b.npz"), init=str(tmp_path / "a.npz"), latent_dim=64,
                                                epochs=1, batch_size=16, threads=1), progress=False, images=images)
    assert second["init"] == first["model_id"] and second["model_id"] != first["model_id"]
    a, b = load_model(tmp_path / "a.npz"), load_model(tmp_path / "b.npz")
    assert a.spec == b.spec and (b.spec.latent_dim, b.spec.depth, b.spec.bottleneck) == (8, 2, 4)
