"""bench/a53/mca.py still measures the code it names.

The harness finds each hot loop by a line of its source; when that code is edited away it used to stop
with "anchor not found" and leave bench/a53 and the README's Cortex-A53 figures stale without anyone
noticing. Here it runs in --check mode into a temporary directory on every test run.

Needs the cross compiler and llvm-mca-19 on the host (scripts/setup.sh --all installs them before the
suite runs); under the emulated aarch64 run of scripts/aarch64.sh test there is no cross toolchain, and
nothing here concerns the aarch64 build itself.
"""

import importlib.util
import json
import platform
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
MCA_PY = REPO / "bench" / "a53" / "mca.py"

if platform.machine().lower() in ("aarch64", "arm64"):
    pytest.skip("host tool: the cross toolchain and llvm-mca-19 run on x86-64", allow_module_level=True)


def load_mca():
    spec = importlib.util.spec_from_file_location("a53_mca", MCA_PY)
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up there
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    for tool in ("aarch64-linux-gnu-g++", "llvm-mca-19"):
        assert shutil.which(tool), f"{tool} is missing: run scripts/setup.sh --all"
    out = tmp_path_factory.mktemp("a53")
    committed = {p: p.read_bytes() for p in (REPO / "bench" / "a53").rglob("*") if p.is_file()}
    proc = subprocess.run([sys.executable, str(MCA_PY), "--check", "--out", str(out), "--workdir", str(out / "asm")],
                          cwd=REPO, capture_output=True, text=True, timeout=120)
    after = {p: p.read_bytes() for p in (REPO / "bench" / "a53").rglob("*") if p.is_file()}
    assert after == committed, "mca.py --out wrote into the repository"
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return out, json.loads((out / "results.json").read_text())


def test_every_loop_is_found_and_measured(run):
    out, results = run
    mca = load_mca()
    measured = [(r["kernel"], r["loop"]) for r in results["loops"]]
    assert measured == [(loop.kernel, loop.name) for loop in mca.LOOPS]
    for r in results["loops"]:
        assert r["cycles_per_element"] > 0 and r["instructions"] >= 2, r
        assert r["cycles_per_element"] == pytest.approx(r["cycles_per_iteration"] / r["elements_per_iteration"],
                                                        abs=1e-3)
        assert (out / "loops" / Path(r["asm"]).name).read_text().count("\n") >= 2 + r["instructions"]


def test_header_code_is_measured_in_the_unit_that_includes_it(run):
    _, results = run
    header = [r for r in results["loops"] if r["source"] == "csrc/position_code_impl.h"]
    assert {r["loop"] for r in header} >= {"Rice cost of up to four parameters in one pass (chunk_costs4)",
                                           "Rice encode (put in position_code::encode)",
                                           "Rice encode, two codes per put (position_code::encode)"}
    for r in header:
        assert r["unit"] == "csrc/kernel_neon.cpp" and "position_code" in r["function"], r
    typical = next(r for r in header if r["loop"].startswith("Rice decode, refill + 3 codes"))
    assert typical["elements_per_iteration"] == 3


def test_figures_are_sane(run):
    _, results = run
    loops, summary = results["loops"], results["summary"]

    def cpe(kernel, prefix):
        (r,) = [r for r in loops if r["kernel"] == kernel and r["loop"].startswith(prefix)]
        return r["cycles_per_element"]

    for prefix in ("analyze loop 1", "analyze loop 2 (add", "accumulate"):
        assert cpe("neon", prefix) < cpe("scalar", prefix), prefix
    assert summary["neon"]["encode_pass_cycles_per_element"] < summary["scalar"]["encode_pass_cycles_per_element"]
    by_rate = summary["encode_pass_by_selection_rate"]
    neon = [by_rate[rate]["neon"] for rate in sorted(by_rate, key=float)]
    assert neon == sorted(neon) and neon[0] > summary["neon"]["dense_cycles_per_element"]
    # the hand-written register-resident pass is a bound: cheaper than the kernel's own one-pass loops
    bound = summary["lower_bound"]
    assert bound["instructions"] > 50 and bound["elements_per_iteration"] == 48
    assert 1 < bound["cycles_per_element"] < summary["neon"]["one_pass_dense_cycles_per_element"]
    # two codes per put cost less per code than one, and the summary takes them where the encoder does
    assert cpe("shared", "Rice encode, two codes") < cpe("shared", "Rice encode (put")
    assert "Rice encode, two codes per put (position_code::encode)" in summary["shared_per_selected_element"]
    # one pass costs every candidate parameter of a chunk
    assert summary["shared_per_selected_element"]["Rice cost of up to four parameters in one pass (chunk_costs4)"][
        "times"] == 1


def test_committed_results_name_the_same_loops(run):
    _, fresh = run
    committed = json.loads((REPO / "bench" / "a53" / "results.json").read_text())
    assert [r["loop"] for r in committed["loops"]] == [r["loop"] for r in fresh["loops"]], (
        "bench/a53 is stale: run bash scripts/aarch64.sh mca and commit bench/a53")


def test_a_stale_anchor_is_reported():
    mca = load_mca()
    with pytest.raises(mca.LoopNotFound, match="anchor not found"):
        mca.source_line_numbers("csrc/format.cpp", "out.put(unary | (low << (q + 1)), q + 1 + k);")
