"""zarr as a real client: the format-3 codec (adlcodec.zarr_codec) and the numcodecs codec as a format-2
compressor, written and read back through zarr's own API, in this process and in a fresh one.

Each chunk is coded on its own from a zero residual, so the expected array is built chunk by chunk
from adlcodec.compress/decompress: the chunk zarr hands over (edge chunks padded with the fill value),
in the order the codec reads it."""

import json
import os
import struct
import subprocess
import sys
import textwrap
from importlib.metadata import distribution
from pathlib import Path

import numpy as np
import pytest

zarr = pytest.importorskip("zarr")  # absent only in the emulated aarch64 run

import adlcodec  # noqa: E402
from adlcodec.codec import AdaCompCodec  # noqa: E402
from adlcodec.zarr_codec import AdaCompZarrCodec  # noqa: E402

SHAPE, CHUNKS = (30, 45), (8, 10)  # 4 x 5 chunks, the last row and column of them partial


def data(seed=0, shape=SHAPE):
    return np.random.default_rng(seed).standard_normal(shape).astype(np.float32)


def coded(block, bin_size, bits):
    return adlcodec.decompress(adlcodec.compress(block, np.zeros_like(block), bin_size=bin_size, bits=bits))


def expected(a, chunks, bin_size, bits, memory_order="C"):
    """What zarr should read back: each padded chunk through the codec, in `memory_order` for the
    numcodecs codec (which codes an F-ordered chunk as its flat buffer), logical C order otherwise."""
    out = np.empty_like(a)
    grid = [range(0, n, c) for n, c in zip(a.shape, chunks)]
    for starts in np.ndindex(*[len(g) for g in grid]):
        lo = [g[i] for g, i in zip(grid, starts)]
        region = tuple(slice(s, min(s + c, n)) for s, c, n in zip(lo, chunks, a.shape))
        chunk = np.zeros(chunks, np.float32)
        chunk[tuple(slice(0, r.stop - r.start) for r in region)] = a[region]
        if memory_order == "F":
            chunk = coded(chunk.ravel(order="F"), bin_size, bits).reshape(chunks, order="F")
        else:
            chunk = coded(chunk, bin_size, bits)
        out[region] = chunk[tuple(slice(0, r.stop - r.start) for r in region)]
    return out


def v3_array(path, bin_size, bits, order="C", shards=None, shape=SHAPE):
    return zarr.create_array(
        str(path), shape=shape, chunks=CHUNKS, shards=shards, dtype="float32", compressors=None,
        serializer=AdaCompZarrCodec(bin_size=bin_size, bits=bits), config={"order": order},
    )


def v2_array(path, bin_size, bits, order="C"):
    return zarr.create_array(
        str(path), shape=SHAPE, chunks=CHUNKS, dtype="float32", zarr_format=2, order=order,
        filters=None, compressors=AdaCompCodec(bin_size=bin_size, bits=bits),
    )


def read_in_fresh_process(path):
    """Reads the array in a new interpreter that has not imported adlcodec: zarr must find the codec
    through the package's entry points. Returns the array and whether adlcodec was loaded for it."""
    script = textwrap.dedent(f"""
        import sys, numpy as np, zarr
        assert "adlcodec" not in sys.modules
        a = zarr.open_array({str(path)!r}, mode="r")[...]
        np.save({str(path)!r} + ".npy", a)
        print("adlcodec" in sys.modules)
    """)
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, cwd=path.parent)
    assert done.returncode == 0, done.stderr
    return np.load(str(path) + ".npy"), done.stdout.strip() == "True"


def test_metadata_names_the_codec(tmp_path):
    v3_array(tmp_path / "a", 20, 4)
    meta = json.loads((tmp_path / "a" / "zarr.json").read_text())
    assert meta["codecs"] == [{"name": "adlcodec", "configuration": {"bin_size": 20, "bits": 4}}]
    assert AdaCompZarrCodec.from_dict(meta["codecs"][0]) == AdaCompZarrCodec(bin_size=20, bits=4)
    v2_array(tmp_path / "b", 20, 4)
    meta = json.loads((tmp_path / "b" / ".zarray").read_text())
    assert meta["compressor"] == {"id": "adlcodec", "bin_size": 20, "bits": 4}


def test_entry_point_is_declared():
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="zarr.codecs")}
    assert names.get("adlcodec") == "adlcodec.zarr_codec:AdaCompZarrCodec"


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("bin_size,bits", [(1, 32), (7, 2), (50, 1)])
def test_v3_write_read_partial_chunks(tmp_path, order, bin_size, bits):
    a = data()
    z = v3_array(tmp_path / "a", bin_size, bits, order=order)
    z[...] = a
    want = expected(a, CHUNKS, bin_size, bits)  # the v3 codec codes chunks in logical C order
    np.testing.assert_array_equal(z[...], want)
    if bin_size == 1 and bits == 32:
        np.testing.assert_array_equal(want, a)  # lossless: the model itself is checked
    np.testing.assert_array_equal(z[3:11, 17:44], want[3:11, 17:44])
    # A stored chunk is the payload of that chunk in C order, whatever the array's memory order.
    stored = (tmp_path / "a" / "c" / "1" / "2").read_bytes()
    chunk = np.ascontiguousarray(a[8:16, 20:30])
    assert stored == adlcodec.compress(chunk, np.zeros_like(chunk), bin_size=bin_size, bits=bits).tobytes()
    assert adlcodec.inspect(stored)["shape"] == (8, 10)


def test_v3_partial_writes_reencode_the_chunks_they_touch(tmp_path):
    a, b = data(0), data(1, (9, 23))
    z = v3_array(tmp_path / "a", 1, 32)
    z[...] = a
    z[5:14, 12:35] = b
    a[5:14, 12:35] = b
    np.testing.assert_array_equal(z[...], a)


@pytest.mark.parametrize("order", ["C", "F"])
def test_v3_sharded(tmp_path, order):
    a = data(2)
    z = v3_array(tmp_path / "a", 7, 8, order=order, shards=(16, 20))
    z[...] = a
    meta = json.loads((tmp_path / "a" / "zarr.json").read_text())
    assert meta["codecs"][0]["name"] == "sharding_indexed"
    assert meta["codecs"][0]["configuration"]["codecs"][0]["name"] == "adlcodec"
    want = expected(a, CHUNKS, 7, 8)
    np.testing.assert_array_equal(z[...], want)
    np.testing.assert_array_equal(z[9:12, 3:33], want[9:12, 3:33])  # inner chunks of two shards
    back, loaded = read_in_fresh_process(tmp_path / "a")
    np.testing.assert_array_equal(back, want)
    assert loaded


@pytest.mark.parametrize("order", ["C", "F"])
def test_v3_reopened_in_a_fresh_process(tmp_path, order):
    a = data(3)
    v3_array(tmp_path / "a", 10, 4, order=order)[...] = a
    back, loaded = read_in_fresh_process(tmp_path / "a")
    np.testing.assert_array_equal(back, expected(a, CHUNKS, 10, 4))
    assert loaded, "the reading process loaded adlcodec through the zarr.codecs entry point"


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("bin_size,bits", [(1, 32), (7, 2)])
def test_v2_write_read_partial_chunks(tmp_path, order, bin_size, bits):
    a = data(4)
    z = v2_array(tmp_path / "a", bin_size, bits, order=order)
    z[...] = a
    want = expected(a, CHUNKS, bin_size, bits, memory_order=order)
    np.testing.assert_array_equal(z[...], want)
    if bin_size == 1 and bits == 32:
        np.testing.assert_array_equal(want, a)
    np.testing.assert_array_equal(z[3:11, 17:44], want[3:11, 17:44])
    z[2:5, 6:40] = a[:3, :34]  # read-modify-write of the chunks it touches
    if bin_size == 1 and bits == 32:
        a[2:5, 6:40] = a[:3, :34].copy()
        np.testing.assert_array_equal(z[...], a)
    back, loaded = read_in_fresh_process(tmp_path / "a")
    np.testing.assert_array_equal(back, z[...])
    assert loaded


def test_v3_rejects_other_dtypes(tmp_path):
    with pytest.raises(ValueError, match="float32"):
        zarr.create_array(str(tmp_path / "a"), shape=(4,), chunks=(2,), dtype="float64", compressors=None,
                          serializer=AdaCompZarrCodec())


def test_v3_chunk_of_the_wrong_shape_or_corrupted_is_a_format_error(tmp_path):
    z = v3_array(tmp_path / "a", 1, 32)
    z[...] = data()
    chunk_file = tmp_path / "a" / "c" / "0" / "0"
    transposed = data(5, (10, 8))  # the same number of elements, not the chunk's shape
    chunk_file.write_bytes(adlcodec.compress(transposed, np.zeros_like(transposed), bits=32).tobytes())
    with pytest.raises(adlcodec.FormatError, match=r"shape \(10, 8\).*\(8, 10\)"):
        z[0:8, 0:10]
    # 44 honest bytes for a 16 GiB all-zero array: rejected before anything is allocated for it.
    body = b"ADLC" + bytes([2, 1, 1, 2]) + struct.pack("<IIfI", 50, 0, 0.0, 0) + struct.pack("<2Q", 65535, 65535)
    chunk_file.write_bytes(body + struct.pack("<I", adlcodec._core.crc32c(body)))
    with pytest.raises(adlcodec.FormatError, match=r"shape \(65535, 65535\)"):
        z[0:8, 0:10]
    good = (tmp_path / "a" / "c" / "0" / "1").read_bytes()
    chunk_file.write_bytes(good[:-1] + bytes([good[-1] ^ 1]))
    with pytest.raises(adlcodec.FormatError, match="checksum"):
        z[0:8, 0:10]


# --- zarr-python 2 ---------------------------------------------------------------------------------
# zarr 2 and zarr 3 cannot share an environment: scripts/setup.sh puts zarr 2 in a venv of its own
# (build/venv-zarr2, or ADLCODEC_ZARR2_PYTHON), which is given the adlcodec this test imported.

ROOT = Path(__file__).resolve().parent.parent


def run_zarr2(script, tmp_path):
    python = Path(os.environ.get("ADLCODEC_ZARR2_PYTHON", ROOT / "build" / "venv-zarr2" / "bin" / "python"))
    assert python.exists(), f"{python}: zarr-python 2 is installed there by scripts/setup.sh"
    # Only adlcodec and its metadata (for the numcodecs.codecs entry point): not this venv's zarr 3.
    site = tmp_path / "adlcodec-only"
    site.mkdir(exist_ok=True)
    package = Path(adlcodec.__file__).parent
    dist_info = next(f for f in distribution("adlcodec").files if f.name == "METADATA").locate().parent
    for source in (package, dist_info):
        if not (site / source.name).exists():
            (site / source.name).symlink_to(source)
    env = dict(os.environ, PYTHONPATH=str(site))
    done = subprocess.run([str(python), "-c", textwrap.dedent(script)], capture_output=True, text=True, env=env,
                          cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.mark.parametrize("order", ["C", "F"])
@pytest.mark.parametrize("bin_size,bits", [(1, 32), (7, 2)])
def test_zarr2_and_zarr3_read_each_others_arrays(tmp_path, order, bin_size, bits):
    a = data(6)
    np.save(tmp_path / "a.npy", a)
    v2_array(tmp_path / "by3", bin_size, bits, order=order)[...] = a
    config = {"id": "adlcodec", "bin_size": bin_size, "bits": bits}
    version = run_zarr2(f"""
        import sys, numpy as np, numcodecs, zarr
        assert "adlcodec" not in sys.modules
        a = np.load("a.npy")
        z = zarr.open_array("by2", mode="w", shape=a.shape, chunks={CHUNKS}, dtype="f4", order={order!r},
                            compressor=numcodecs.get_codec({config!r}))
        z[...] = a
        np.save("by3_read_by2.npy", zarr.open_array("by3", mode="r")[...])
        print(zarr.__version__)
    """, tmp_path)
    assert version.startswith("2."), version
    want = expected(a, CHUNKS, bin_size, bits, memory_order=order)
    by2 = zarr.open_array(str(tmp_path / "by2"), mode="r")
    assert by2.metadata.zarr_format == 2 and by2.metadata.order == order
    np.testing.assert_array_equal(by2[...], want)
    np.testing.assert_array_equal(np.load(tmp_path / "by3_read_by2.npy"), want)
    # The two write the same chunk bytes.
    for key in ("0.0", "3.4", "1.2"):
        assert (tmp_path / "by2" / key).read_bytes() == (tmp_path / "by3" / key).read_bytes()
