"""The image rate–distortion benchmark runs end to end (tiny N) and writes what README links to."""

import importlib.util
import json
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "image" / "run_bench.py"


@pytest.mark.slow
def test_image_bench_smoke(tmp_path):
    pytest.importorskip("torch")
    pytest.importorskip("skimage")
    spec = importlib.util.spec_from_file_location("image_run_bench", BENCH)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    assert bench.main(["--n", "16", "--quick", "--no-progress", "--out", str(tmp_path)]) == 0
    result = json.loads((tmp_path / "results.json").read_text())
    codecs = {(p["codec"], p["setting"]) for p in result["points"]}
    for codec in ("adlcodec", "jpeg", "webp", "png"):
        assert {(codec, "single"), (codec, "mosaic")} <= codecs
    adl = [p for p in result["points"] if p["codec"] == "adlcodec"]
    # every header byte counted: a single 28×28 .adl is at least the 24-byte container plus a 36-byte payload
    assert all(p["bytes_per_image"] >= 60 for p in adl if p["setting"] == "single")
    assert all(0 < p["ssim"] <= 1 for p in result["points"])
    assert "| adlcodec setting |" in (tmp_path / "results.md").read_text()
    assert (tmp_path / "rd_curve.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
