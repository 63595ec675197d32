"""Cortex-A53 cycles per element of adlcodec's hot loops, from llvm-mca-19's in-order A53 model.

Each source file is compiled the way the wheel compiles it (aarch64-linux-gnu-g++ -O3 -mcpu=cortex-a53,
the project's -ffp-contract=off -fno-fast-math) plus -g, which never changes GCC's code but tags every
instruction with its source line. A loop is found by a line of its source (the anchor), not by a GCC
label, so the harness survives edits. Loops with branches inside are measured one path at a time: the
path from the loop header back to it that an iteration takes in the common case (the shortest one, i.e.
no new bin maximum, no element selected, no bit-buffer flush), or a named path (one element selected).
llvm-mca then runs that straight-line path for 1000 iterations; Total Cycles / Iterations / elements
per iteration is the figure. Branches are issued but never mispredict in the model.

Code that lives in a header (the position coders of csrc/position_code_impl.h, which each kernel file
includes so every target has its own copy) is measured in the translation unit that includes it; its
anchor is matched against the .loc lines that name the header.

Run through scripts/aarch64.sh mca; writes bench/a53/results.json, bench/a53/RESULTS.md and the
measured instruction sequences in bench/a53/loops/. `--check --out DIR` writes them to DIR instead and
fails unless every loop was found with plausible figures (tests/test_a53_mca.py runs it).
"""

from __future__ import annotations

import argparse
import json
import math
import re
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
OUT = REPO / "bench" / "a53"
CXX = "aarch64-linux-gnu-g++"
# The wheel's flags (CMake Release = -O3 -DNDEBUG; CMakeLists.txt adds the FP flags; toolchain adds -mcpu).
CXXFLAGS = ["-O3", "-DNDEBUG", "-mcpu=cortex-a53", "-std=c++17", "-fPIC", "-ffp-contract=off",
            "-fno-fast-math", "-DADLCODEC_HAVE_NEON=1", "-Icsrc", "-g"]
MCA = ["llvm-mca-19", "-mtriple=aarch64", "-mcpu=cortex-a53", "-iterations=1000"]

# The steady-state selection rate of AdaComp with bin 50 (measured with the encoder: 30 error-feedback
# steps on N(0,1) gradients, 0.107-0.114 after step 10; override with --selection-rate).
DEFAULT_SELECTION_RATE = 0.11
SELECTION_RATES = (0.01, 0.02, 0.05, 0.10)  # the 1-10 % range


@dataclass
class Loop:
    name: str
    source: str  # the file the anchor is in
    anchor: str  # text of a source line inside the loop body
    stage: str  # encode-dense | encode-selected | encode-one-pass | decode
    kernel: str  # neon | scalar (GCC -O3 auto-vectorization) | shared
    elements: int | None = None  # per iteration; None: from bytes loaded per iteration / load_bytes
    load_bytes: int = 8  # bytes each element loads (grad + residual)
    require_insn: str | None = None  # the path must contain an instruction matching this
    exclude: list[str] = field(default_factory=list)  # source lines (same file) the path must avoid
    function: str | None = None  # only functions whose (mangled) name contains this, e.g. one instantiation
    note: str = ""
    unit: str | None = None  # the .cpp compiled for it when the anchor's file is a header; default: source
    count_insn: str | None = None  # elements per iteration = instructions of the path matching this
    via: str | None = None  # a source line (same file) the path must pass, like require_insn

    @property
    def compiled(self) -> str:
        return self.unit or self.source


SELECT_STORE = r"^str\s+w\d+, \[x\d+\], 4$"  # *indices++ = ...: the path of a selected element
SCATTER_STORE = r"^str\s+s\d+, \[x\d+, x\d+, lsl 2\]$"  # out[idx[next]] += ...
NEON_SELECT_STORE = r"^str\s+s\d+, \[x\d+\]$"  # *values = G in select_lanes (stored, advanced by keep)
# The loop headers: GCC -g marks the header's compare and branch, while the body's lines may carry only
# the inlined intrinsics' own.
NEON_LOOP_1 = "i += kBlock) {  // loop 1, steady state"
NEON_STEP = "i += kBlock) {  // loop 2, steady state"
NEON_SELECT = "const bool keep = std::fabs(H) >= bin_max && G != 0.0f;"
SCALAR_COMPARE = "all_finite &= std::fabs(H) <= 3.40282347e+38f;"
# ValueWriter::put's other bit widths, excluded to measure the 1-bit path.
NOT_ONE_BIT = ["put_u16(dst_, h);", "put_u32(dst_, float_bits(G));",
               "const uint32_t m = nearest_level(std::fabs(G), scale_, Bits);"]

POSITIONS = "csrc/position_code_impl.h"  # #included by each kernel file
NEON_UNIT = "csrc/kernel_neon.cpp"
ENCODE_POSITIONS = "position_code6encode"
DECODE_POSITIONS = "position_code21decode_rest_of_stream"  # each stream in turn (aarch64 interleaves none)
# The escape's two puts (24 ones, then the raw gap): the common code's path avoids both.
RICE_ESCAPE_PUTS = ["put((uint64_t(1) << kEscapeOnes) - 1, kEscapeOnes);", "put(gap, kEscapeRawBits);"]
RICE_ESCAPE_READ = ["inv >>= kEscapeOnes;"]
POSITION_STORE = r"^str\s+w\d+, \[x\d+"  # out[i++] = at: one per decoded code
# The header of FastReader::steps' loop of whole steps (GCC tags its compare and branch, while the first
# code's count of trailing zeros may carry only trailing_zeros' own line).
SINGLE_STREAM_STEPS = "while (i + 3 <= len) step<true>(out, i, len);"

READ_ONLY = "analyze_binsILb0E"  # pass 1 that only reads (in place, checked): pass 2 stores the residual
ONE_PASS = "analyze_binsILb1E"  # pass 1 that also stores the residual (residual_out, or check_finite=False)

LOOPS = [
    # Pass 1 (reads only): per bin, loop 1 finds max |G|, loop 2 selects and checks finiteness.
    Loop("analyze loop 1 (add, abs, max)", "csrc/kernel_neon.cpp", NEON_LOOP_1,
         "encode-dense", "neon", function=READ_ONLY),
    Loop("analyze loop 2 (add, finite, compare, compaction), none selected", "csrc/kernel_neon.cpp",
         NEON_STEP, "encode-dense", "neon", function=READ_ONLY),
    Loop("analyze loop 2, one of the iteration's elements selected", "csrc/kernel_neon.cpp", NEON_STEP,
         "encode-selected", "neon", require_insn=NEON_SELECT_STORE, function=READ_ONLY),
    # Pass 2: residual <- r + g (12 B/element of traffic).
    Loop("accumulate (r += g)", "csrc/kernel_neon.cpp",
         "s0 = vaddq_f32(r0, g0);",
         "encode-dense", "neon"),
    # The one-pass encode: loop 2 also stores G, and there is no pass 2.
    Loop("one-pass loop 2 (loop 2 + residual store), none selected", "csrc/kernel_neon.cpp",
         NEON_STEP, "encode-one-pass", "neon", function=ONE_PASS),
    Loop("one-pass loop 2, one of the iteration's elements selected", "csrc/kernel_neon.cpp", NEON_STEP,
         "encode-one-pass", "neon", require_insn=NEON_SELECT_STORE, function=ONE_PASS),
    Loop("analyze loop 1 (add, abs, max)", "csrc/kernel_scalar.cpp", "bin_max = a > bin_max ? a : bin_max;",
         "encode-dense", "scalar", function=READ_ONLY),
    Loop("analyze loop 2 (add, finite, compare, compaction), none selected", "csrc/kernel_scalar.cpp",
         SCALAR_COMPARE, "encode-dense", "scalar", function=READ_ONLY),
    Loop("analyze loop 2, one of the iteration's elements selected", "csrc/kernel_scalar.cpp", SCALAR_COMPARE,
         "encode-selected", "scalar", require_insn=SELECT_STORE, function=READ_ONLY),
    Loop("accumulate (r += g)", "csrc/kernel_scalar.cpp",
         "for (uint64_t i = 0; i < n; ++i) out[i] = residual[i] + grad[i];", "encode-dense", "scalar"),
    Loop("one-pass loop 2 (loop 2 + residual store), none selected", "csrc/kernel_scalar.cpp",
         SCALAR_COMPARE, "encode-one-pass", "scalar", function=ONE_PASS),
    Loop("one-pass loop 2, one of the iteration's elements selected", "csrc/kernel_scalar.cpp", SCALAR_COMPARE,
         "encode-one-pass", "scalar", require_insn=SELECT_STORE, function=ONE_PASS),
    # Per selected element, shared by the kernels: the position coders (compiled into each kernel file;
    # measured in the NEON one, as the wheel runs them) and format.cpp's value coding and decode scatter.
    Loop("position gaps (position_code::encode)", POSITIONS, "gaps[i] = chunk[i] - chunk[i - 1] - 1;",
         "encode-selected", "shared", load_bytes=8, unit=NEON_UNIT, function=ENCODE_POSITIONS),
    Loop("largest gap (position_code::encode)", POSITIONS, "largest = gaps[i] > largest ? gaps[i] : largest;",
         "encode-selected", "shared", load_bytes=4, unit=NEON_UNIT, function=ENCODE_POSITIONS),
    Loop("Rice cost of up to four parameters in one pass (chunk_costs4)", POSITIONS,
         "c0 += q0 < kEscapeOnes ? q0 + 1 + k0 : kEscapeOnes + kEscapeRawBits;", "encode-selected", "shared",
         load_bytes=4, unit=NEON_UNIT, function=ENCODE_POSITIONS,
         note="the 3 or 4 candidate parameters of a chunk of 128 gaps in one pass"),
    Loop("Rice encode (put in position_code::encode)", POSITIONS,
         "put(((((gap & low_mask) << 1) | 1) << q) - 1, q + k_plus_one);", "encode-selected",
         "shared", elements=1, unit=NEON_UNIT, function=ENCODE_POSITIONS, exclude=RICE_ESCAPE_PUTS,
         note="one code per put: parameters above 4 (below about 3 % selected), escapes, a chunk's tail"),
    Loop("Rice encode, two codes per put (position_code::encode)", POSITIONS,
         "put(code0 | (code1 << bits0), bits0 + q1 + k_plus_one);", "encode-selected",
         "shared", elements=2, unit=NEON_UNIT, function=ENCODE_POSITIONS,
         note="parameters 0-4 (above about 3 % selected; bin 50 selects 11 %)"),
    Loop("1-bit scale: four partial sums of |G| in double (selection_scale)", "csrc/format.cpp",
         "p0 += std::fabs(static_cast<double>(selected_values[i]));", "encode-selected", "shared",
         load_bytes=4),
    Loop("1-bit code + error feedback (update_residual<1>)", "csrc/format.cpp",
         "for (unsigned j = 0; j < 4; ++j) out[at[j]] = updated[j];", "encode-selected", "shared",
         elements=4, function="update_residualILi1E", exclude=["put_u64(values, pack);"],
         note="four selected elements per step, without the store of every 64th code's packed word"),
    # decode_chunk_fast: a refill, then the first code, then up to two more while they lie within the
    # bits held. Codes at 1-10 % selection are 4-10 bits and a refill leaves >= 51 bits after the
    # first, so all three are decoded on every refill but the last of a chunk of 128 (and escapes).
    Loop("Rice decode, refill + 3 codes (typical, decode_chunk_fast)", POSITIONS,
         SINGLE_STREAM_STEPS, "decode", "shared", unit=NEON_UNIT,
         function=DECODE_POSITIONS, exclude=RICE_ESCAPE_READ, via="out[i++] = static_cast<uint32_t>(at++);",
         count_insn=POSITION_STORE, note="per code: first code after a refill and two without one, 1:2"),
    Loop("Rice decode, refill + 1 code (decode_chunk_fast)", POSITIONS,
         SINGLE_STREAM_STEPS, "decode", "shared", unit=NEON_UNIT,
         function=DECODE_POSITIONS, exclude=RICE_ESCAPE_READ, count_insn=POSITION_STORE,
         note="the third extra-code test fails: only at escapes and chunk ends"),
    Loop("1-bit decode scatter (grouped, onto zeros)", "csrc/format.cpp",
         "for (unsigned j = 0; j < 8; ++j) out[idx[next + j]] = v[j];", "decode", "shared", elements=8,
         function="write_denseILi1E"),
    Loop("2-bit decode scatter (grouped, onto zeros)", "csrc/format.cpp",
         "for (unsigned j = 0; j < 8; ++j) out[idx[next + j]] = v[j];", "decode", "shared", elements=8,
         function="write_denseILi2E"),
    Loop("1-bit decode scatter-add (grouped, accumulate=True)", "csrc/format.cpp",
         "for (unsigned j = 0; j < 8; ++j) out[idx[next + j]] += v[j];", "decode", "shared", elements=8,
         function="write_denseILi1E"),
]

CONDITIONS = "eq|ne|cs|hs|cc|lo|mi|pl|vs|vc|hi|ls|ge|lt|gt|le"
BRANCH = re.compile(rf"^(b|b\.?({CONDITIONS})|cbz|cbnz|tbz|tbnz)\s")
UNCONDITIONAL_END = re.compile(r"^(b|ret|br)\b")


@dataclass
class Block:
    label: str | None
    insns: list[str] = field(default_factory=list)
    lines: set[tuple[int, int]] = field(default_factory=set)  # (file number, line) of .loc in the block
    taken: str | None = None  # branch target label
    falls_through: bool = True


class LoopNotFound(Exception):
    """LOOPS names code that is no longer there: update the loop's anchor after editing the source."""


def compile_asm(source: str, workdir: Path) -> Path:
    out = workdir / (Path(source).stem + ".s")
    subprocess.run([CXX, *CXXFLAGS, "-S", source, "-o", str(out)], cwd=REPO, check=True)
    return out


def same_file(asm_path: str, source: str) -> bool:
    # .file paths are relative to the compiler's working directory, which is REPO.
    return (REPO / asm_path).resolve() == (REPO / source).resolve()


def parse(asm_path: Path):
    """Functions as lists of basic blocks, and the file-number -> path table of the .loc directives."""
    files: dict[int, str] = {}
    functions: dict[str, list[Block]] = {}
    current: list[Block] | None = None
    for raw in asm_path.read_text().splitlines():
        line = raw.strip()
        m = re.match(r'\.file\s+(\d+)\s+"([^"]+)"(?:\s+"([^"]+)")?', line)
        if m:
            files[int(m.group(1))] = str(Path(m.group(2)) / m.group(3)) if m.group(3) else m.group(2)
            continue
        m = re.match(r"\.type\s+([\w.$]+),\s*%function", line)
        if m:
            current = functions.setdefault(m.group(1), [Block(None)])
            continue
        if current is None:
            continue
        if line.startswith(".size"):
            current = None
            continue
        m = re.match(r"\.loc\s+(\d+)\s+(\d+)", line)
        if m:
            current[-1].lines.add((int(m.group(1)), int(m.group(2))))
            continue
        m = re.match(r"^([\w.$]+):$", line)
        if m:
            if m.group(1).startswith(".L") and not re.fullmatch(r"\.L\d+", m.group(1)):
                continue  # debug-info labels (.LVL, .LBB, ...) are never branch targets
            if current[-1].insns or current[-1].label:
                current.append(Block(m.group(1)))
            else:
                current[-1].label = m.group(1)
            continue
        if not line or line.startswith((".", "//", "@")):
            continue
        insn = re.sub(r"\s+", " ", line.split("//")[0]).strip()
        current[-1].insns.append(insn)
        if BRANCH.match(insn):
            current[-1].taken = insn.split()[-1].split(",")[-1].strip()
            current[-1].falls_through = not UNCONDITIONAL_END.match(insn)
            current.append(Block(None))
        elif UNCONDITIONAL_END.match(insn):
            current[-1].falls_through = False
            current.append(Block(None))
    for name, blocks in functions.items():
        functions[name] = [b for b in blocks if b.insns or b.label]
    return functions, files


def successors(blocks: list[Block], i: int) -> list[int]:
    by_label = {b.label: j for j, b in enumerate(blocks) if b.label}
    out = []
    if blocks[i].taken in by_label:
        out.append(by_label[blocks[i].taken])
    if blocks[i].falls_through and i + 1 < len(blocks):
        out.append(i + 1)
    return out


def shortest_path(blocks: list[Block], src: int, dst: int, banned: frozenset = frozenset()) -> list[int] | None:
    """Fewest-instructions path src -> ... -> dst (src excluded, dst included); [] if src == dst is reached."""
    import heapq

    best = {src: 0}
    previous: dict[int, int] = {}
    queue = [(0, src)]
    while queue:
        cost, node = heapq.heappop(queue)
        if cost > best.get(node, 1 << 60):
            continue
        for nxt in successors(blocks, node):
            if nxt in banned:
                continue
            new = cost + len(blocks[nxt].insns)
            if nxt == dst and dst == src:
                if "cycle" not in best or new < best["cycle"][0]:
                    best["cycle"] = (new, node)
                continue
            if new < best.get(nxt, 1 << 60):
                best[nxt] = new
                previous[nxt] = node
                heapq.heappush(queue, (new, nxt))
    if src == dst:
        if "cycle" not in best:
            return None
        node, path = best["cycle"][1], [dst]
    else:
        if dst not in best:
            return None
        node, path = dst, []
        path.append(dst)
        node = previous[dst]
    while node != src:
        path.append(node)
        node = previous[node]
    return path[::-1]


def shortest_cycle(blocks: list[Block], through: int, also: int | None, banned: frozenset) -> list[int] | None:
    """The cheapest loop iteration that passes block `through` (and block `also`), as a block list from it."""
    if also is None or also == through:
        tail = shortest_path(blocks, through, through, banned)
        return None if tail is None else [through] + tail[:-1]
    there = shortest_path(blocks, through, also, banned)
    back = shortest_path(blocks, also, through, banned)
    if there is None or back is None:
        return None
    return [through] + there + back[:-1]


def source_line_numbers(source: str, anchor: str) -> list[int]:
    text = (REPO / source).read_text().splitlines()
    found = [n + 1 for n, line in enumerate(text) if anchor in line]
    if not found:
        raise LoopNotFound(f"anchor not found in {source}: {anchor!r} (update LOOPS after editing the loop)")
    return found


def find_path(functions, files, loop: Loop) -> tuple[str, list[str], int]:
    """The measured path, the function it is in, and its elements per iteration.

    Every anchor block's cheapest iteration is a candidate: the anchor's own (innermost) loop, or for
    a vectorized loop also its scalar epilogue. The one with the fewest instructions per element wins,
    which is the vector body where there is one.
    """
    # A header's lines carry its own .file number in every unit that includes it.
    numbers = [n for n, path in files.items() if same_file(path, loop.source)]
    if not numbers:
        raise LoopNotFound(f"{loop.compiled} has no code from {loop.source}")
    def lines_of(text):
        return {(f, n) for f in numbers for n in source_line_numbers(loop.source, text)}
    anchor_lines = lines_of(loop.anchor)
    excluded_lines = set().union(*(lines_of(text) for text in loop.exclude)) if loop.exclude else set()
    via_lines = lines_of(loop.via) if loop.via else set()
    best = None
    for fname, blocks in functions.items():
        if loop.function and loop.function not in fname:
            continue
        banned = frozenset(i for i, b in enumerate(blocks) if b.lines & excluded_lines)
        anchors = [i for i, b in enumerate(blocks) if b.lines & anchor_lines and i not in banned]
        required = [None]
        if loop.require_insn:
            required = [i for i, b in enumerate(blocks) if any(re.match(loop.require_insn, s) for s in b.insns)]
        elif loop.via:
            required = [i for i, b in enumerate(blocks) if b.lines & via_lines and i not in banned]
        for a in anchors:
            for r in required:
                cycle = shortest_cycle(blocks, a, r, banned)
                if cycle is None:
                    continue
                insns = [s for j in cycle for s in blocks[j].insns]
                elements = elements_per_iteration(loop, insns)
                if not elements:
                    continue
                key = (len(insns) / elements, len(insns))
                if best is None or key < best[0]:
                    best = (key, fname, insns, elements)
    if best is None:
        raise LoopNotFound(f"no loop through {loop.source} in {loop.compiled}: {loop.anchor!r}")
    return best[1], best[2], best[3]


def elements_per_iteration(loop: Loop, insns: list[str]) -> int:
    if loop.elements is not None:
        return loop.elements
    if loop.count_insn:
        return sum(1 for s in insns if re.match(loop.count_insn, s))
    loaded = bytes_loaded(insns)
    return loaded // loop.load_bytes if loaded % loop.load_bytes == 0 else 0


REG_BYTES = {"q": 16, "d": 8, "s": 4, "h": 2, "b": 1, "x": 8, "w": 4}


def bytes_loaded(insns: list[str]) -> int:
    total = 0
    for insn in insns:
        op, _, args = insn.partition(" ")
        if op in ("ldrb", "ldrsb"):
            total += 1
        elif op in ("ldrh", "ldrsh"):
            total += 2
        elif op == "ldrsw":
            total += 4
        elif op in ("ldr", "ldur", "ldp", "ldnp"):
            size = REG_BYTES[args.strip()[0]]
            total += size * (2 if op in ("ldp", "ldnp") else 1)
        elif op.startswith("ld1") and "{" in args:
            regs = re.findall(r"v\d+\.(\d+)([bhsd])", args.split("}")[0])
            total += sum(int(n) * {"b": 1, "h": 2, "s": 4, "d": 8}[t] for n, t in regs)
    return total


def run_mca(insns: list[str]) -> dict:
    text = "\n".join(insns) + "\n"
    result = subprocess.run(MCA, input=text, capture_output=True, text=True, check=True)
    out = result.stdout
    iterations = int(re.search(r"^Iterations:\s+(\d+)", out, re.M).group(1))
    cycles = int(re.search(r"^Total Cycles:\s+(\d+)", out, re.M).group(1))
    ipc = float(re.search(r"^IPC:\s+([\d.]+)", out, re.M).group(1))
    return {"cycles_per_iteration": cycles / iterations, "ipc": ipc, "report": out}


BOUND = REPO / "bench" / "a53" / "bound" / "one_pass_bin48_in_registers.s"
BOUND_ELEMENTS = 48


def lower_bound() -> dict:
    """Cycles per element of the hand-written register-resident pass in BOUND (see its header)."""
    insns = [line.strip() for line in BOUND.read_text().splitlines()
             if line.strip() and not line.strip().startswith("//")]
    measured = run_mca(insns)
    return {"source": str(BOUND.relative_to(REPO)), "elements_per_iteration": BOUND_ELEMENTS,
            "instructions": len(insns), "cycles_per_iteration": round(measured["cycles_per_iteration"], 2),
            "cycles_per_element": round(measured["cycles_per_iteration"] / BOUND_ELEMENTS, 3)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--selection-rate", type=float, default=DEFAULT_SELECTION_RATE)
    parser.add_argument("--workdir", type=Path, default=REPO / ".cache" / "aarch64" / "mca")
    parser.add_argument("--out", type=Path, default=OUT, help="where results.json, RESULTS.md, loops/ go")
    parser.add_argument("--check", action="store_true",
                        help="exit 1 unless every loop is found and its figures are plausible")
    args = parser.parse_args()
    out = args.out
    args.workdir.mkdir(parents=True, exist_ok=True)

    parsed = {unit: parse(compile_asm(unit, args.workdir)) for unit in sorted({loop.compiled for loop in LOOPS})}
    results, errors, listings = [], [], {}
    for loop in LOOPS:
        functions, files = parsed[loop.compiled]
        try:
            function, insns, elements = find_path(functions, files, loop)
        except LoopNotFound as e:
            # Every stale loop is reported, not just the first.
            errors.append(f"{loop.kernel} {loop.name}: {e}")
            print(f"mca.py: {errors[-1]}", file=sys.stderr)
            continue
        mca = run_mca(insns)
        slug = re.sub(r"[^a-z0-9]+", "_", f"{loop.kernel} {loop.name}".lower()).strip("_")
        unit = f" (compiled in {loop.unit})" if loop.unit else ""
        listings[f"{slug}.s"] = (
            f"// {loop.source}{unit}: {loop.anchor}\n// function {function}; {elements} element(s) per iteration\n"
            + "\n".join(insns) + "\n")
        results.append({
            "loop": loop.name, "kernel": loop.kernel, "stage": loop.stage, "source": loop.source,
            "unit": loop.compiled, "function": function, "instructions": len(insns),
            "elements_per_iteration": elements,
            "cycles_per_iteration": round(mca["cycles_per_iteration"], 3),
            "cycles_per_element": round(mca["cycles_per_iteration"] / elements, 3), "ipc": mca["ipc"],
            "note": loop.note, "asm": f"bench/a53/loops/{slug}.s",
        })
        print(f"{loop.kernel:7s} {loop.name:66s} {results[-1]['cycles_per_element']:7.3f} c/elem "
              f"({elements}/iter, {len(insns)} insns, IPC {mca['ipc']})")
    if errors:
        sys.exit(f"mca.py: {len(errors)} of {len(LOOPS)} loops not found")
    # Replaced only after every loop was found: a run that stops leaves the previous listings in place.
    (out / "loops").mkdir(parents=True, exist_ok=True)
    for old in (out / "loops").glob("*.s"):
        old.unlink()
    for name, text in listings.items():
        (out / "loops" / name).write_text(text)

    summary = summarize(results, args.selection_rate)
    summary["lower_bound"] = lower_bound()
    (out / "results.json").write_text(json.dumps(
        {"model": " ".join(MCA), "compiler": compiler_version(), "cxxflags": CXXFLAGS,
         "selection_rate": args.selection_rate, "summary": summary, "loops": results}, indent=2) + "\n")
    (out / "RESULTS.md").write_text(markdown(results, summary, args.selection_rate))
    print(json.dumps(summary, indent=2))
    if args.check:
        problems = check(results, summary)
        for problem in problems:
            print(f"mca.py --check: {problem}", file=sys.stderr)
        if problems:
            sys.exit(1)


def check(results, summary) -> list[str]:
    """What makes the figures implausible: a loop measured as free or absurd, NEON no faster than GCC."""
    problems = []
    for r in results:
        if not 0 < r["cycles_per_element"] < 1000 or r["instructions"] < 2:
            problems.append(f"{r['kernel']} {r['loop']}: {r['cycles_per_element']} cycles/element "
                            f"from {r['instructions']} instructions")
    for prefix in DENSE_LOOPS:
        neon, scalar = lookup(results, "neon", prefix), lookup(results, "scalar", prefix)
        if not neon["cycles_per_element"] < scalar["cycles_per_element"]:
            problems.append(f"NEON {neon['loop']} ({neon['cycles_per_element']}) is not cheaper than GCC's "
                            f"scalar ({scalar['cycles_per_element']})")
    if not summary["neon_speedup_over_gcc_o3_scalar"] > 1:
        problems.append(f"NEON encode pass speed-up {summary['neon_speedup_over_gcc_o3_scalar']}")
    return problems


def compiler_version() -> str:
    return subprocess.run([CXX, "--version"], capture_output=True, text=True).stdout.splitlines()[0]


def lookup(results, kernel, prefix):
    matches = [r for r in results if r["kernel"] == kernel and r["loop"].startswith(prefix)]
    assert len(matches) == 1, (kernel, prefix, matches)
    return matches[0]


DENSE_LOOPS = ("analyze loop 1", "analyze loop 2 (add", "accumulate")
ONE_PASS_DENSE_LOOPS = ("analyze loop 1", "one-pass loop 2 (loop")
RICE_DECODE_TYPICAL = "Rice decode, refill + 3 codes"


# position_code_impl.h's kPairedRiceParamMax: Rice parameters whose codes are stored two per put.
PAIRED_RICE_PARAM_MAX = 4
RICE_SINGLE = "Rice encode (put in position_code::encode)"
RICE_PAIRED = "Rice encode, two codes per put (position_code::encode)"


def rice_parameter(p: float) -> int:
    """The encoder's parameter for geometric gaps at selection rate p: about floor(log2(mean gap))."""
    mean_gap = 1.0 / p - 1.0
    return max(0, math.floor(math.log2(mean_gap))) if mean_gap >= 1 else 0


def per_selected_shared(results, p: float) -> dict:
    """Cycles the shared code runs per selected element at rate p, term by term (name: (times, cycles))."""
    shared = {r["loop"]: r["cycles_per_element"] for r in results if r["kernel"] == "shared"}
    rice = RICE_PAIRED if rice_parameter(p) <= PAIRED_RICE_PARAM_MAX else RICE_SINGLE
    return {
        "position gaps (position_code::encode)": (1, shared["position gaps (position_code::encode)"]),
        "largest gap (position_code::encode)": (1, shared["largest gap (position_code::encode)"]),
        "Rice cost of up to four parameters in one pass (chunk_costs4)": (
            1, shared["Rice cost of up to four parameters in one pass (chunk_costs4)"]),
        rice: (1, shared[rice]),
        "1-bit scale: four partial sums of |G| in double (selection_scale)": (
            1, shared["1-bit scale: four partial sums of |G| in double (selection_scale)"]),
        "1-bit code + error feedback (update_residual<1>)": (
            1, shared["1-bit code + error feedback (update_residual<1>)"]),
    }


def summarize(results, p: float) -> dict:
    """Encode pass per gradient element: the kernel's dense loops, plus per-selected work times p."""
    def shared_sum(rate):
        return sum(times * cycles for times, cycles in per_selected_shared(results, rate).values())

    def kernel_extra(kernel):
        none = lookup(results, kernel, "analyze loop 2 (add")["cycles_per_iteration"]
        one = lookup(results, kernel, "analyze loop 2, one")["cycles_per_iteration"]
        return one - none

    def one_pass_extra(kernel):
        none = lookup(results, kernel, "one-pass loop 2 (loop")["cycles_per_iteration"]
        one = lookup(results, kernel, "one-pass loop 2, one")["cycles_per_iteration"]
        return one - none

    dense = {k: sum(lookup(results, k, name)["cycles_per_element"] for name in DENSE_LOOPS)
             for k in ("neon", "scalar")}
    one_pass_dense = {k: sum(lookup(results, k, name)["cycles_per_element"] for name in ONE_PASS_DENSE_LOOPS)
                      for k in ("neon", "scalar")}
    summary = {}
    for kernel in ("neon", "scalar"):
        per_selected = kernel_extra(kernel) + shared_sum(p)
        one_pass_per_selected = one_pass_extra(kernel) + shared_sum(p)
        summary[kernel] = {
            "dense_cycles_per_element": round(dense[kernel], 3),
            "kernel_extra_cycles_per_selected_element": round(kernel_extra(kernel), 3),
            "extra_cycles_per_selected_element": round(per_selected, 3),
            "encode_pass_cycles_per_element": round(dense[kernel] + p * per_selected, 3),
            "one_pass_dense_cycles_per_element": round(one_pass_dense[kernel], 3),
            "one_pass_extra_cycles_per_selected_element": round(one_pass_per_selected, 3),
            "one_pass_encode_cycles_per_element": round(one_pass_dense[kernel] + p * one_pass_per_selected, 3),
        }
    summary["shared_per_selected_element"] = {
        name: {"times": times, "cycles": cycles} for name, (times, cycles) in per_selected_shared(results, p).items()}
    summary["shared_cycles_per_selected_element"] = round(shared_sum(p), 3)
    summary["encode_pass_by_selection_rate"] = {
        f"{rate:g}": {kernel: round(dense[kernel] + rate * (kernel_extra(kernel) + shared_sum(rate)), 3)
                      for kernel in ("neon", "scalar")}
        for rate in SELECTION_RATES}
    summary["one_pass_encode_by_selection_rate"] = {
        f"{rate:g}": {kernel: round(one_pass_dense[kernel] + rate * (one_pass_extra(kernel) + shared_sum(rate)), 3)
                      for kernel in ("neon", "scalar")}
        for rate in SELECTION_RATES}
    shared = {r["loop"]: r for r in results if r["kernel"] == "shared"}
    rice_decode = lookup(results, "shared", RICE_DECODE_TYPICAL)["cycles_per_element"]
    summary["rice_decode_cycles_per_code"] = rice_decode
    summary["decode_cycles_per_selected_element_1bit"] = round(
        rice_decode + shared["1-bit decode scatter (grouped, onto zeros)"]["cycles_per_element"], 3)
    summary["decode_cycles_per_selected_element_2bit"] = round(
        rice_decode + shared["2-bit decode scatter (grouped, onto zeros)"]["cycles_per_element"], 3)
    summary["neon_speedup_over_gcc_o3_scalar"] = round(
        summary["scalar"]["encode_pass_cycles_per_element"] / summary["neon"]["encode_pass_cycles_per_element"], 2)
    return summary


def cell(text: str) -> str:
    return text.replace("|", "\\|")  # "|G|" would end a table cell


def markdown(results, summary, p) -> str:
    rows = ["| kernel | loop | stage | elements/iter | cycles/iter | cycles/element | IPC |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in results:
        rows.append(f"| {r['kernel']} | {cell(r['loop'])} | {r['stage']} | {r['elements_per_iteration']} | "
                    f"{r['cycles_per_iteration']:.2f} | {r['cycles_per_element']:.3f} | {r['ipc']} |")
    n, s = summary["neon"], summary["scalar"]
    terms = summary["shared_per_selected_element"]
    return "\n".join([
        "# Cortex-A53 cycles per element (llvm-mca-19 model)",
        "",
        "Generated by `scripts/aarch64.sh mca` (bench/a53/mca.py); the measured instruction sequences are in",
        "bench/a53/loops/. `scalar` is the reference kernel as GCC 12 -O3 -mcpu=cortex-a53 compiles it (the",
        "wheel's own scalar kernel: GCC vectorizes only its accumulate loop); `shared` is per selected element:",
        "the position coders of csrc/position_code_impl.h (as compiled into kernel_neon.cpp) and format.cpp.",
        "Rice decode is per code: a refill decodes the first code and then up to two more while they lie in",
        "the bits held; at 1-10 % selection codes are 4-10 bits, so all three are decoded on every refill but",
        "the last of a chunk of 128 (and escapes), and a typical code costs the 3-code iteration / 3 (first",
        "and extra codes weighted 1:2). Cycles/element of loops with vectorized scalar tails are the vector body.",
        "",
        *rows,
        "",
        f"Per selected element, shared code at selection rate {p} (times run x cycles):",
        "",
        "| work | times | cycles | total |",
        "| --- | ---: | ---: | ---: |",
        *[f"| {cell(name)} | {t['times']} | {t['cycles']:.3f} | {t['times'] * t['cycles']:.3f} |"
          for name, t in terms.items()],
        f"| **sum** | | | **{summary['shared_cycles_per_selected_element']}** |",
        "",
        "Rice cost covers a chunk's 3 or 4 candidate parameters in one pass (a chunk whose largest gap spreads",
        "them wider, which geometric gaps almost never do, takes another pass per further four). Not included: ",
        "per-chunk set-up of the position coder (/128) and the store of every 64th packed 1-bit word.",
        "",
        f"Encode pass per gradient element at selection rate {p}: dense loops + rate x per-selected work",
        "(the kernel's extra for a selected element in loop 2 + the shared sum above).",
        "",
        "| kernel | dense loops | extra per selected element | encode pass |",
        "| --- | ---: | ---: | ---: |",
        f"| neon | {n['dense_cycles_per_element']} | {n['extra_cycles_per_selected_element']} | "
        f"**{n['encode_pass_cycles_per_element']}** |",
        f"| scalar (GCC -O3) | {s['dense_cycles_per_element']} | {s['extra_cycles_per_selected_element']} | "
        f"**{s['encode_pass_cycles_per_element']}** |",
        "",
        "One-pass encode (`residual_out`, as the DDP hook calls it, or `check_finite=False`): loop 2 also",
        "stores the residual and there is no accumulate pass.",
        "",
        "| kernel | dense loops | extra per selected element | one-pass encode |",
        "| --- | ---: | ---: | ---: |",
        f"| neon | {n['one_pass_dense_cycles_per_element']} | {n['one_pass_extra_cycles_per_selected_element']} | "
        f"**{n['one_pass_encode_cycles_per_element']}** |",
        f"| scalar (GCC -O3) | {s['one_pass_dense_cycles_per_element']} | "
        f"{s['one_pass_extra_cycles_per_selected_element']} | **{s['one_pass_encode_cycles_per_element']}** |",
        "",
        "Encode pass (cycles per gradient element) across the issue's selection range:",
        "",
        "| selection rate | neon | scalar (GCC -O3) | neon, one pass | scalar, one pass |",
        "| ---: | ---: | ---: | ---: | ---: |",
        *[f"| {rate} | {v['neon']} | {v['scalar']} | {summary['one_pass_encode_by_selection_rate'][rate]['neon']} | "
          f"{summary['one_pass_encode_by_selection_rate'][rate]['scalar']} |"
          for rate, v in summary["encode_pass_by_selection_rate"].items()],
        "",
        f"Lower bound: {summary['lower_bound']['source']}, a hand-scheduled pass over one bin of 48 held in",
        "registers (load r and g once, G, bin max, H, compare, store G once; nothing selected), costs",
        f"**{summary['lower_bound']['cycles_per_element']} cycles/element** on this model (the best schedule found",
        "by hand), before any selected element, bin tail or loop overhead. The kernel cannot hold a bin of 50",
        "or 500 in registers, so it reads each bin twice (bin max, then selection), the second time from L1.",
        "",
        f"NEON / GCC-scalar speed-up on the encode pass: {summary['neon_speedup_over_gcc_o3_scalar']}x. "
        f"Decode per selected element: Rice decode {summary['rice_decode_cycles_per_code']} per code + grouped",
        f"scatter = {summary['decode_cycles_per_selected_element_1bit']} cycles (1-bit), "
        f"{summary['decode_cycles_per_selected_element_2bit']} (2-bit).",
        "",
    ])


if __name__ == "__main__":
    main()
