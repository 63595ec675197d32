"""Backward compatibility of .adl images: files written by earlier versions (tests/golden/images, made once
by make_golden_images.py with the shipped model) must still be read, named and decoded.

The container and the adlcodec payloads inside it are frozen byte for byte: the header facts and every
layer's floats must match exactly. The pixels come out of the model's torch decoder, whose float
arithmetic may differ in the last bits between CPUs (vector widths, kernels chosen by oneDNN), so a
pixel may move by one grey level where it sits on a rounding boundary; more than that is a break."""

import json
import pathlib

import numpy as np
import pytest

pytest.importorskip("torch")

import adlcodec  # noqa: E402
from adlcodec.image import decode_image, inspect_image  # noqa: E402
from adlcodec.image.codec import _parse  # noqa: E402

GOLDEN = pathlib.Path(__file__).parent / "golden" / "images"
MANIFEST = json.loads((GOLDEN / "manifest.json").read_text())


def test_golden_set_covers_both_container_versions_and_colour():
    versions = {case["facts"]["version"] for case in MANIFEST}
    assert versions == {1, 2}
    assert {case["facts"]["channels"] for case in MANIFEST} == {1, 3}
    assert any(case["facts"]["residual_kinds"] for case in MANIFEST)


@pytest.mark.parametrize("case", MANIFEST, ids=[c["name"] for c in MANIFEST])
def test_golden_image_facts_are_unchanged(case):
    assert inspect_image((GOLDEN / f"{case['name']}.adl").read_bytes()) == case["facts"]


@pytest.mark.parametrize("case", MANIFEST, ids=[c["name"] for c in MANIFEST])
def test_golden_image_layers_decode_exactly(case):
    data = (GOLDEN / f"{case['name']}.adl").read_bytes()
    frozen = np.load(GOLDEN / f"{case['name']}.npz")
    payloads = _parse(data)["payloads"]
    assert len(payloads) == case["facts"]["layers"]
    for i, payload in enumerate(payloads):
        assert adlcodec.decompress(payload).reshape(-1).tobytes() == frozen[f"layer{i}"].tobytes()


@pytest.mark.parametrize("case", MANIFEST, ids=[c["name"] for c in MANIFEST])
def test_golden_image_pixels(case):
    frozen = np.load(GOLDEN / f"{case['name']}.npz")
    decoded = decode_image((GOLDEN / f"{case['name']}.adl").read_bytes())
    expected = frozen["decoded"]
    assert decoded.shape == expected.shape == frozen["image"].shape
    assert decoded.dtype == np.uint8
    moved = np.abs(decoded.astype(np.int16) - expected.astype(np.int16))
    assert moved.max() <= 1
    assert np.mean(moved == 0) >= 0.99


def test_a_changed_byte_in_a_golden_file_is_caught():
    data = bytearray((GOLDEN / f"{MANIFEST[0]['name']}.adl").read_bytes())
    data[len(data) // 2] ^= 0x10
    with pytest.raises(adlcodec.FormatError):
        decode_image(bytes(data))
