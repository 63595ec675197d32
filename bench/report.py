"""Turns a pytest-benchmark JSON of bench_codec.py into the markdown tables README quotes."""

import json
import sys
from collections import defaultdict


def main(path):
    data = json.load(open(path))
    groups = defaultdict(dict)
    sizes = []
    paired = []
    for b in data["benchmarks"]:
        info = b["extra_info"]
        if "ratio_to_bound" in info:
            sizes.append(info)
            continue
        if "ratio_median" in info:
            paired.append(info)
            continue
        groups[b["group"]][info["impl"]] = (b["stats"]["median"], info)
    print(f"Machine: {data['machine_info'].get('cpu', {}).get('brand_raw', '?')}, "
          f"{data['machine_info'].get('python_implementation')} {data['machine_info'].get('python_version')}\n")
    print("| operation | n | bin | bits | density | baseline ms | adlcodec ms (best kernel) | × baseline | avx2 × baseline | scalar × baseline | no-check × baseline | residual_out × baseline | torch ms | torch / adlcodec |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for name in sorted(groups, key=lambda g: (g.split()[0], g)):
        impls = groups[name]
        kind = name.split()[0]
        base_name = "np.add" if kind == "encode" else "fill"
        if base_name not in impls:
            continue
        base, info = impls[base_name]
        kernels = [k for k in impls if k.startswith("adlcodec-") and k not in ("adlcodec-nocheck", "adlcodec-out")]
        best_name = "adlcodec" if kind == "decode" else kernels[-1]
        best = impls[best_name][0]
        scalar = impls.get("adlcodec-scalar", (float("nan"),))[0]
        avx2 = impls.get("adlcodec-avx2", (float("nan"),))[0] if best_name != "adlcodec-avx2" else float("nan")
        nocheck = impls.get("adlcodec-nocheck", (float("nan"),))[0]
        out_of_place = impls.get("adlcodec-out", (float("nan"),))[0]
        torch_t = impls.get("torch", (float("nan"),))[0]
        n = info["n"]
        size = f"{n >> 20}M" if n >= 1 << 20 else str(n)
        fmt = lambda x: "–" if x != x else f"{x:.2f}"
        density = impls[best_name][1].get("density", float("nan"))
        print(f"| {kind} ({best_name}) | {size} | {info['bin_size']} | {info['bits']} | {density:.3f} | {base*1e3:.2f} | {best*1e3:.2f} | "
              f"{best/base:.2f} | {fmt(avx2/base)} | {fmt(scalar/base)} | {fmt(nocheck/base)} | {fmt(out_of_place/base)} | {fmt(torch_t*1e3)} | {fmt(torch_t/best)} |")
    versions = {name: impls for name, impls in groups.items() if name.startswith("decode by format version")}
    if versions:
        print("\n| decode, bin 50, 1 bit | n | format version 1 ms | format version 2 ms | version 1 / version 2 |")
        print("|---|---|---|---|---|")
        for name in sorted(versions, key=lambda g: versions[g]["v1"][1]["n"]):
            v1, v2 = versions[name]["v1"][0], versions[name]["v2"][0]
            n = versions[name]["v1"][1]["n"]
            print(f"| one position stream or two | {n >> 20}M | {v1*1e3:.3f} | {v2*1e3:.3f} | {v1/v2:.2f} |")
    if paired:
        print("\n| paired rounds | n | bin | bits | rounds | median ms, first | median ms, second | median of round ratios | quartiles |")
        print("|---|---|---|---|---|---|---|---|---|")
        order = {"read/np.add": 0, "encode/np.add": 1, "unchecked/np.add": 2, "decode/fill": 3, "torch/encode": 4}
        for p in sorted(paired, key=lambda p: (order[p["impl"].split()[1]], p["n"], p["bin_size"], p["bits"])):
            read = p["impl"] == "paired read/np.add"  # no codec call: bin and bits do not apply
            print(f"| {p['impl'].split()[1]} | {p['n'] >> 20}M | {'–' if read else p['bin_size']} | {'–' if read else p['bits']} | {p['rounds']} | "
                  f"{p['numer_ms_median']:.2f} | {p['denom_ms_median']:.2f} | {p['ratio_median']:.2f} | "
                  f"{p['ratio_q1']:.2f}–{p['ratio_q3']:.2f} |")
    if sizes:
        print("\n| bin | bits | density | payload bytes | × information bound (step 31) | worst × bound, steps 1–30 | compression ratio |")
        print("|---|---|---|---|---|---|---|")
        for s in sorted(sizes, key=lambda s: (s["bin_size"], s["bits"])):
            print(f"| {s['bin_size']} | {s['bits']} | {s['density']:.4f} | {s['nbytes']} | {s['ratio_to_bound']:.4f} | "
                  f"{s['worst_ratio_over_steps']:.4f} | {s['compression_ratio']:.1f} |")


if __name__ == "__main__":
    main(sys.argv[1])
