"""`pip install adlcodec` where no wheel fits (another CPython, another platform) builds the sdist.

The sdist must carry every source the build reads, and what it builds must code exactly like the
installed package. Built here without build isolation (the build requirements come from this
environment, so no index is needed) into a fresh virtual environment.
"""

import platform
import subprocess
import sys
import tarfile
import textwrap
from pathlib import Path

import numpy as np
import pytest

import adlcodec

REPO = Path(__file__).resolve().parents[1]

if platform.machine().lower() in ("aarch64", "arm64"):
    # The emulated aarch64 run tests the cross-built wheel; its site has no build backend, and a native
    # build under qemu would take the whole CI budget.
    pytest.skip("host test: builds the sdist natively on x86-64", allow_module_level=True)
BUILD_INPUTS = ("CMakeLists.txt", "pyproject.toml", "README.md", "csrc/", "bindings/", "python/adlcodec/")


def tracked_build_inputs() -> list[str]:
    if not (REPO / ".git").exists():
        pytest.skip("needs the git checkout to know which files are sources")
    listed = subprocess.run(["git", "ls-files"], cwd=REPO, capture_output=True, text=True, check=True).stdout.split()
    return [f for f in listed if f.startswith(BUILD_INPUTS)]


@pytest.fixture(scope="module")
def sdist(tmp_path_factory) -> Path:
    pytest.importorskip("build")
    out = tmp_path_factory.mktemp("sdist")
    subprocess.run([sys.executable, "-m", "build", "--sdist", "--no-isolation", "--outdir", str(out), str(REPO)],
                   check=True, capture_output=True, text=True)
    (archive,) = out.glob("adlcodec-*.tar.gz")
    return archive


def test_sdist_carries_every_build_input(sdist):
    with tarfile.open(sdist) as tar:
        names = {name.split("/", 1)[1] for name in tar.getnames() if "/" in name}
    missing = [f for f in tracked_build_inputs() if f not in names]
    assert not missing, f"the sdist lacks {missing}"
    assert "PKG-INFO" in names


def test_sdist_builds_and_codes_like_the_installed_package(sdist, tmp_path):
    venv = tmp_path / "venv"
    # --system-site-packages: scikit-build-core, pybind11 and numpy from this environment, no index.
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True)
    python = venv / "bin" / "python"
    subprocess.run([str(python), "-m", "pip", "install", "-q", "--disable-pip-version-check", "--no-build-isolation",
                    "--no-deps", "--no-index", str(sdist)], check=True, capture_output=True, text=True)

    rng = np.random.default_rng(3)
    grad = rng.standard_normal(10_007, dtype=np.float32)
    residual = rng.standard_normal(10_007, dtype=np.float32)
    np.save(tmp_path / "grad.npy", grad)
    np.save(tmp_path / "residual.npy", residual)
    script = textwrap.dedent(f"""
        import sys
        import numpy as np
        import adlcodec
        assert "{venv}" in adlcodec.__file__, adlcodec.__file__
        grad = np.load("{tmp_path / 'grad.npy'}")
        for bits in (1, 4, 32):
            residual = np.load("{tmp_path / 'residual.npy'}")
            payload = adlcodec.compress(grad, residual, bin_size=50, bits=bits)
            np.save("{tmp_path}/payload_%d.npy" % bits, payload)
            np.save("{tmp_path}/residual_%d.npy" % bits, residual)
        print(adlcodec.kernel())
    """)
    run = subprocess.run([str(python), "-c", script], capture_output=True, text=True, cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    assert run.stdout.strip() == adlcodec.kernel()
    for bits in (1, 4, 32):
        mine = residual.copy()
        payload = adlcodec.compress(grad, mine, bin_size=50, bits=bits)
        assert np.load(tmp_path / f"payload_{bits}.npy").tobytes() == payload.tobytes()
        assert np.load(tmp_path / f"residual_{bits}.npy").tobytes() == mine.tobytes()
