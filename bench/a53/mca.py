"""Cortex-A53 cycles per element of adlcodec's hot loops, from llvm-mca-19's in-order A53 model.

Each source file is compiled the way the wheel compiles it (aarch64-linux-gnu-g++ -O3 -mcpu=cortex-a53,
the project's -ffp-contract=off -fno-fast-math) plus -g, which never changes GCC's code but tags every
instruction with its source line. A loop is found by a line of its source (the anchor), not by a GCC
label, so the harness survives edits. Loops with branches inside are measured one path at a time: the
path from the loop header back to it that an iteration takes in the common case (the shortest one, i.e.
no new bin maximum, no element selected, no bit-buffer flush), or a named path (one element selected).
llvm-mca then runs that straight-line path for 1000 iterations; Total Cycles / Iterations / elements
per iteration is the figure. Branches are issued but never mispredict in the model.

Run through scripts/aarch64.sh mca; writes bench/a53/results.json, bench/a53/RESULTS.md and the
measured instruction sequences in bench/a53/loops/.
"""

from __future__ import annotations

import argparse
import json
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
    source: str
    anchor: str  # text of a source line inside the loop body
    stage: str  # encode-dense | encode-selected | decode
    kernel: str  # neon | scalar (GCC -O3 auto-vectorization) | shared
    elements: int | None = None  # per iteration; None: from bytes loaded per iteration / load_bytes
    load_bytes: int = 8  # bytes each element loads (grad + residual)
    require_insn: str | None = None  # the path must contain an instruction matching this
    exclude: list[str] = field(default_factory=list)  # source lines (same file) the path must avoid
    function: str | None = None  # only functions whose (mangled) name contains this, e.g. one instantiation
    note: str = ""


SELECT_STORE = r"^str\s+w\d+, \[x\d+\], 4$"  # *indices++ = ...: the path of a selected element
SCATTER_STORE = r"^str\s+s\d+, \[x\d+, x\d+, lsl 2\]$"  # out[idx[next]] += ...
NEON_SELECT_STORE = r"^str\s+s\d+, \[x\d+\]$"  # *values = G in select_lanes (stored, advanced by keep)
NEON_STEP = "const uint64_t below = below_16(vbin_max, H0, H1, H2, H3);"
NEON_SELECT = "const bool keep = std::fabs(H) >= bin_max && G != 0.0f;"
SCALAR_COMPARE = "all_finite &= std::fabs(H) <= 3.40282347e+38f;"
# ValueWriter::put's other bit widths, excluded to measure the 1-bit path.
NOT_ONE_BIT = ["put_u16(dst_, h);", "put_u32(dst_, float_bits(G));",
               "const uint32_t m = nearest_level(std::fabs(G), scale_, Bits);"]

LOOPS = [
    # Pass 1 (reads only): per bin, loop 1 finds max |G|, loop 2 selects and checks finiteness.
    Loop("analyze loop 1 (add, abs, max)", "csrc/kernel_neon.cpp", "m0 = vmaxnmq_f32(m0, vabsq_f32(G0));",
         "encode-dense", "neon"),
    Loop("analyze loop 2 (add, finite, compare, compaction), none selected", "csrc/kernel_neon.cpp",
         NEON_STEP, "encode-dense", "neon"),
    Loop("analyze loop 2, one of the iteration's elements selected", "csrc/kernel_neon.cpp", NEON_STEP,
         "encode-selected", "neon", require_insn=NEON_SELECT_STORE),
    # Pass 2: residual <- r + g (12 B/element of traffic).
    Loop("accumulate (r += g)", "csrc/kernel_neon.cpp",
         "s0 = vaddq_f32(r0, g0);",
         "encode-dense", "neon"),
    Loop("analyze loop 1 (add, abs, max)", "csrc/kernel_scalar.cpp", "bin_max = a > bin_max ? a : bin_max;",
         "encode-dense", "scalar"),
    Loop("analyze loop 2 (add, finite, compare, compaction), none selected", "csrc/kernel_scalar.cpp",
         SCALAR_COMPARE, "encode-dense", "scalar"),
    Loop("analyze loop 2, one of the iteration's elements selected", "csrc/kernel_scalar.cpp", SCALAR_COMPARE,
         "encode-selected", "scalar", require_insn=SELECT_STORE),
    Loop("accumulate (r += g)", "csrc/kernel_scalar.cpp",
         "for (uint64_t i = 0; i < n; ++i) residual[i] = residual[i] + grad[i];", "encode-dense", "scalar"),
    # Shared scalar code in format.cpp, per selected element.
    Loop("position gaps (plan_positions)", "csrc/format.cpp", "gaps[i] = idx[start + i] - prev_plus_one;",
         "encode-selected", "shared", elements=1),
    Loop("Rice cost for one parameter (chunk_cost)", "csrc/format.cpp",
         "cost += q < kEscapeOnes ? q + 1 + k : kEscapeOnes + kEscapeRawBits;", "encode-selected", "shared",
         load_bytes=4, note="run for 3 to 4 candidate parameters per chunk of 128 gaps"),
    Loop("Rice encode (write_positions)", "csrc/format.cpp", "out.put(unary | (low << (q + 1)), q + 1 + k);",
         "encode-selected", "shared", elements=1),
    Loop("1-bit scale: sum of |G| in double (selection_scale)", "csrc/format.cpp",
         "sum += std::fabs(static_cast<double>(selected_values[i]));", "encode-selected", "shared", elements=1),
    Loop("1-bit code + error feedback (ValueWriter::put)", "csrc/format.cpp",
         "stream_.put(code, unsigned(Bits));", "encode-selected", "shared", elements=1,
         exclude=NOT_ONE_BIT),
    Loop("Rice decode (read_positions)", "csrc/format.cpp", "in.skip(ones + 1 + k);", "decode", "shared",
         elements=1),
    Loop("1-bit scatter-add (decode)", "csrc/format.cpp",
         "for (; next < count && idx[next] < end; ++next) out[idx[next]] += value(next);", "decode", "shared",
         elements=1, require_insn=SCATTER_STORE, function="write_denseILi1E"),
    Loop("2-bit scatter-add (decode)", "csrc/format.cpp",
         "for (; next < count && idx[next] < end; ++next) out[idx[next]] += value(next);", "decode", "shared",
         elements=1, require_insn=SCATTER_STORE, function="write_denseILi2E"),
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


def compile_asm(source: str, workdir: Path) -> Path:
    out = workdir / (Path(source).stem + ".s")
    subprocess.run([CXX, *CXXFLAGS, "-S", source, "-o", str(out)], cwd=REPO, check=True)
    return out


def parse(asm_path: Path):
    """Functions as lists of basic blocks, and the file-number -> path table of the .loc directives."""
    files: dict[int, str] = {}
    functions: dict[str, list[Block]] = {}
    current: list[Block] | None = None
    for raw in asm_path.read_text().splitlines():
        line = raw.strip()
        m = re.match(r'\.file\s+(\d+)\s+"([^"]+)"(?:\s+"([^"]+)")?', line)
        if m:
            files[int(m.group(1))] = m.group(3) or m.group(2)
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
        sys.exit(f"mca.py: anchor not found in {source}: {anchor!r} (update LOOPS after editing the loop)")
    return found


def find_path(functions, files, loop: Loop) -> tuple[str, list[str], int]:
    """The measured path, the function it is in, and its elements per iteration.

    Every anchor block's cheapest iteration is a candidate: the anchor's own (innermost) loop, or for
    a vectorized loop also its scalar epilogue. The one with the fewest instructions per element wins,
    which is the vector body where there is one.
    """
    numbers = [n for n, path in files.items() if path.endswith(loop.source) or loop.source.endswith(path)]
    def lines_of(text):
        return {(f, n) for f in numbers for n in source_line_numbers(loop.source, text)}
    anchor_lines = lines_of(loop.anchor)
    excluded_lines = set().union(*(lines_of(text) for text in loop.exclude)) if loop.exclude else set()
    best = None
    for fname, blocks in functions.items():
        if loop.function and loop.function not in fname:
            continue
        banned = frozenset(i for i, b in enumerate(blocks) if b.lines & excluded_lines)
        anchors = [i for i, b in enumerate(blocks) if b.lines & anchor_lines and i not in banned]
        required = [None]
        if loop.require_insn:
            required = [i for i, b in enumerate(blocks) if any(re.match(loop.require_insn, s) for s in b.insns)]
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
        sys.exit(f"mca.py: no loop through {loop.source}: {loop.anchor!r}")
    return best[1], best[2], best[3]


def elements_per_iteration(loop: Loop, insns: list[str]) -> int:
    if loop.elements is not None:
        return loop.elements
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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--selection-rate", type=float, default=DEFAULT_SELECTION_RATE)
    parser.add_argument("--workdir", type=Path, default=REPO / ".cache" / "aarch64" / "mca")
    args = parser.parse_args()
    args.workdir.mkdir(parents=True, exist_ok=True)
    (OUT / "loops").mkdir(parents=True, exist_ok=True)
    for old in (OUT / "loops").glob("*.s"):
        old.unlink()

    parsed = {src: parse(compile_asm(src, args.workdir)) for src in sorted({loop.source for loop in LOOPS})}
    results = []
    for loop in LOOPS:
        functions, files = parsed[loop.source]
        function, insns, elements = find_path(functions, files, loop)
        mca = run_mca(insns)
        slug = re.sub(r"[^a-z0-9]+", "_", f"{loop.kernel} {loop.name}".lower()).strip("_")
        (OUT / "loops" / f"{slug}.s").write_text(
            f"// {loop.source}: {loop.anchor}\n// function {function}; {elements} element(s) per iteration\n"
            + "\n".join(insns) + "\n")
        results.append({
            "loop": loop.name, "kernel": loop.kernel, "stage": loop.stage, "source": loop.source,
            "function": function, "instructions": len(insns), "elements_per_iteration": elements,
            "cycles_per_iteration": round(mca["cycles_per_iteration"], 3),
            "cycles_per_element": round(mca["cycles_per_iteration"] / elements, 3), "ipc": mca["ipc"],
            "note": loop.note, "asm": f"bench/a53/loops/{slug}.s",
        })
        print(f"{loop.kernel:7s} {loop.name:60s} {results[-1]['cycles_per_element']:7.3f} c/elem "
              f"({elements}/iter, {len(insns)} insns, IPC {mca['ipc']})")

    summary = summarize(results, args.selection_rate)
    (OUT / "results.json").write_text(json.dumps(
        {"model": " ".join(MCA), "compiler": compiler_version(), "cxxflags": CXXFLAGS,
         "selection_rate": args.selection_rate, "summary": summary, "loops": results}, indent=2) + "\n")
    (OUT / "RESULTS.md").write_text(markdown(results, summary, args.selection_rate))
    print(json.dumps(summary, indent=2))


def compiler_version() -> str:
    return subprocess.run([CXX, "--version"], capture_output=True, text=True).stdout.splitlines()[0]


def lookup(results, kernel, prefix):
    matches = [r for r in results if r["kernel"] == kernel and r["loop"].startswith(prefix)]
    assert len(matches) == 1, (kernel, prefix, matches)
    return matches[0]


def summarize(results, p: float) -> dict:
    """Encode pass per gradient element: scan + select loops 1 and 2, plus per-selected work times p."""
    shared = {r["loop"]: r["cycles_per_element"] for r in results if r["kernel"] == "shared"}
    per_selected_shared = (
        shared["position gaps (plan_positions)"]
        + 4 * shared["Rice cost for one parameter (chunk_cost)"]
        + shared["Rice encode (write_positions)"]
        + shared["1-bit scale: sum of |G| in double (selection_scale)"]
        + shared["1-bit code + error feedback (ValueWriter::put)"]
    )
    summary = {}
    for kernel in ("neon", "scalar"):
        dense = sum(lookup(results, kernel, name)["cycles_per_element"]
                    for name in ("analyze loop 1", "analyze loop 2 (add", "accumulate"))
        none = lookup(results, kernel, "analyze loop 2 (add")["cycles_per_iteration"]
        one = lookup(results, kernel, "analyze loop 2, one")["cycles_per_iteration"]
        per_selected = (one - none) + per_selected_shared
        summary[kernel] = {
            "dense_cycles_per_element": round(dense, 3),
            "extra_cycles_per_selected_element": round(per_selected, 3),
            "encode_pass_cycles_per_element": round(dense + p * per_selected, 3),
        }
    summary["encode_pass_by_selection_rate"] = {
        f"{rate:g}": {kernel: round(summary[kernel]["dense_cycles_per_element"]
                                    + rate * summary[kernel]["extra_cycles_per_selected_element"], 3)
                      for kernel in ("neon", "scalar")}
        for rate in SELECTION_RATES}
    summary["decode_cycles_per_selected_element_1bit"] = round(
        shared["Rice decode (read_positions)"] + shared["1-bit scatter-add (decode)"], 3)
    summary["neon_speedup_over_gcc_o3_scalar"] = round(
        summary["scalar"]["encode_pass_cycles_per_element"] / summary["neon"]["encode_pass_cycles_per_element"], 2)
    return summary


def markdown(results, summary, p) -> str:
    rows = ["| kernel | loop | stage | elements/iter | cycles/iter | cycles/element | IPC |",
            "| --- | --- | --- | ---: | ---: | ---: | ---: |"]
    for r in results:
        rows.append(f"| {r['kernel']} | {r['loop']} | {r['stage']} | {r['elements_per_iteration']} | "
                    f"{r['cycles_per_iteration']:.2f} | {r['cycles_per_element']:.3f} | {r['ipc']} |")
    n, s = summary["neon"], summary["scalar"]
    return "\n".join([
        "# Cortex-A53 cycles per element (llvm-mca-19 model)",
        "",
        "Generated by `scripts/aarch64.sh mca` (bench/a53/mca.py); the measured instruction sequences are in",
        "bench/a53/loops/. `scalar` is the reference kernel as GCC 12 -O3 -mcpu=cortex-a53 compiles it (the",
        "wheel's own scalar kernel: GCC vectorizes none of its loops); `shared` is format.cpp, per selected element.",
        "",
        *rows,
        "",
        f"Encode pass per gradient element at selection rate {p}: dense loops + rate x per-selected work.",
        "",
        "| kernel | dense loops | extra per selected element | encode pass |",
        "| --- | ---: | ---: | ---: |",
        f"| neon | {n['dense_cycles_per_element']} | {n['extra_cycles_per_selected_element']} | "
        f"**{n['encode_pass_cycles_per_element']}** |",
        f"| scalar (GCC -O3) | {s['dense_cycles_per_element']} | {s['extra_cycles_per_selected_element']} | "
        f"**{s['encode_pass_cycles_per_element']}** |",
        "",
        "Encode pass (cycles per gradient element) across the issue's selection range:",
        "",
        "| selection rate | neon | scalar (GCC -O3) |",
        "| ---: | ---: | ---: |",
        *[f"| {rate} | {v['neon']} | {v['scalar']} |" for rate, v in summary["encode_pass_by_selection_rate"].items()],
        "",
        f"NEON / GCC-scalar speed-up on the encode pass: {summary['neon_speedup_over_gcc_o3_scalar']}x. "
        f"Decode (1-bit), per selected element: {summary['decode_cycles_per_selected_element_1bit']} cycles.",
        "",
    ])


if __name__ == "__main__":
    main()
