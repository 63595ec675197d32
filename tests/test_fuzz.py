"""Runs the bounded fuzzing campaign (scripts/fuzz.sh): libFuzzer + ASan/UBSan on the C++ core, atheris on
the Python decoder. ADLCODEC_FUZZ_RUNS sets the number of decoder inputs (default 100000)."""

import os
import pathlib
import shutil
import subprocess

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_fuzzers_find_nothing(tmp_path):
    if shutil.which("clang++") is None:
        pytest.skip("clang++ (Debian: clang, libclang-rt-14-dev) is needed for the sanitizer build")
    pytest.importorskip("atheris")
    runs = os.environ.get("ADLCODEC_FUZZ_RUNS", "100000")
    result = subprocess.run(
        ["bash", str(ROOT / "scripts" / "fuzz.sh"), runs],
        env={**os.environ, "FUZZ_OUT": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=900,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "fuzz: all harnesses finished without a finding" in result.stdout
    assert result.stdout.count("stat::new_units_added") == 2, "both libFuzzer harnesses ran"
    assert f"Done {int(runs) // 10} runs" in result.stdout
