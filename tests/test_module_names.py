"""The helper modules of tests/ and bench/ sit first on sys.path, so one named like an installed package
hides it from everything in the run. tests/cpuinfo.py once hid py-cpuinfo, and pytest-benchmark,
which reads the machine's description through it, could no longer write --benchmark-json."""

import importlib.machinery
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
HELPER_DIRS = [ROOT / "tests", ROOT / "bench"]


def _helper_modules():
    for folder in HELPER_DIRS:
        for path in sorted(folder.glob("*.py")):
            if path.stem != "conftest" and not path.stem.startswith(("test_", "bench_")):
                yield path.stem


def test_the_check_sees_the_helpers():
    assert {"host_cpu", "spec_decoder", "reference", "torch_reference"} <= set(_helper_modules())


@pytest.mark.parametrize("name", sorted(set(_helper_modules())))
def test_helper_module_does_not_shadow_an_installed_one(name):
    ours = set(HELPER_DIRS) | {ROOT}
    elsewhere = [p for p in sys.path if p and Path(p).resolve() not in ours]
    spec = importlib.machinery.PathFinder.find_spec(name, elsewhere)
    assert spec is None, f"tests/bench helper {name!r} hides {spec.origin}"
    assert name not in sys.stdlib_module_names
