"""Rate–distortion of adlcodec.image against JPEG, WebP and PNG on the Fashion-MNIST test split.

Every byte of every file counts (container and payload headers, JPEG/WebP/PNG headers). Two settings:

* single: each 28×28 image is its own file (.adl / .jpg / .webp / .png);
* mosaic: all N images tiled into one picture and coded as one file, so the format's header is shared
  (adlcodec tiles the mosaic back into 28×28 tiles itself).

Quality is mean SSIM over the N images (scikit-image, data_range=255, default 7×7 window) and PSNR over
all pixels. JPEG and WebP are swept over Pillow's quality range; "at equal bytes" compares each adlcodec
point with the baseline curve interpolated (linearly in bytes) at the same bytes per image, and with the
nearest measured quality. Writes results.json, results.md and rd_curve.png to --out.

    python bench/image/run_bench.py                 # N = 1000 test images (~2 min on one core)
    python bench/image/run_bench.py --n 60 --out /tmp/x   # smoke run
"""

from __future__ import annotations

import argparse
import io
import json
import math
import platform
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
RAW_BYTES = 28 * 28
PAPER_RATIO = 4.86

# encode_image keyword sets: latent-only points, fixed residual layers, and the quality-target search
ADL_CONFIGS = (
    [dict(latent_dim=k, bits=b) for k, b in [(16, 4), (32, 2), (32, 4), (48, 4), (64, 2), (64, 4), (96, 4), (128, 4),
                                              (64, 8), (128, 8)]]
    + [dict(latent_dim=128, bits=4, residual_rounds=r, residual_bits=rb, residual_bin_size=rbin)
       for r, rb, rbin in [(1, 4, 16), (2, 4, 16), (1, 4, 4)]]
    + [dict(latent_dim=128, bits=8, residual_rounds=1, residual_bits=8, residual_bin_size=1)]
    + [dict(latent_dim=128, bits=4, residual_rounds=r, residual_kind="dct", residual_threshold=t, residual_bits=4)
       for r, t in [(1, 32), (1, 8)]]
    + [dict(target_ssim=t) for t in (0.9, 0.95, 0.976, 0.99)]
)


def label_of(kw: dict) -> str:
    if "target_ssim" in kw:
        return f"search: SSIM ≥ {kw['target_ssim']}"
    label = f"k={kw['latent_dim']} b={kw['bits']}"
    if kw.get("residual_rounds"):
        if kw.get("residual_kind") == "dct":
            label += f" +{kw['residual_rounds']}×dct(b={kw['residual_bits']},t={kw['residual_threshold']:g})"
        else:
            label += f" +{kw['residual_rounds']}×res(b={kw['residual_bits']},bin={kw['residual_bin_size']})"
    return label


QUALITIES = [1, 3, 5, 8, 10, 15, 20, 25, 30, 40, 50, 60, 70, 75, 80, 85, 90, 95, 98, 100]


def mosaic_of(images: np.ndarray, cols: int) -> np.ndarray:
    n = len(images)
    rows = -(-n // cols)
    padded = np.zeros((rows * cols, 28, 28), np.uint8)
    padded[:n] = images
    return padded.reshape(rows, cols, 28, 28).transpose(0, 2, 1, 3).reshape(rows * 28, cols * 28)


def tiles_of(mosaic: np.ndarray, n: int, cols: int) -> np.ndarray:
    rows = mosaic.shape[0] // 28
    return mosaic.reshape(rows, 28, cols, 28).transpose(0, 2, 1, 3).reshape(-1, 28, 28)[:n]


def quality(originals: np.ndarray, decoded: np.ndarray) -> tuple[float, float]:
    from skimage.metrics import peak_signal_noise_ratio, structural_similarity

    ssim = float(np.mean([structural_similarity(a, b, data_range=255) for a, b in zip(originals, decoded)]))
    psnr = float(peak_signal_noise_ratio(originals, decoded, data_range=255))
    return ssim, psnr


def pillow_code(image: np.ndarray, fmt: str, **kw) -> tuple[int, np.ndarray]:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(image).save(buf, fmt, **kw)
    data = buf.getvalue()
    return len(data), np.asarray(Image.open(io.BytesIO(data)).convert("L"))


def point(name, setting, nbytes, n, ssim, psnr, **extra):
    per = nbytes / n
    return {"codec": name, "setting": setting, "bytes_total": int(nbytes), "bytes_per_image": per,
            "ratio": RAW_BYTES / per, "ssim": ssim, "psnr": psnr, **extra}


def run_baselines(images, mosaic, cols, progress):
    from tqdm import tqdm

    n = len(images)
    points = []
    jobs = [(fmt, q) for fmt in ("JPEG", "WEBP") for q in QUALITIES]
    for fmt, q in tqdm(jobs, desc="jpeg/webp", disable=not progress):
        kw = {"quality": q}
        total, dec = 0, []
        for im in images:
            nb, d = pillow_code(im, fmt, **kw)
            total += nb
            dec.append(d)
        points.append(point(fmt.lower(), "single", total, n, *quality(images, np.stack(dec)), quality_param=q))
        nb, d = pillow_code(mosaic, fmt, **kw)
        points.append(point(fmt.lower(), "mosaic", nb, n, *quality(images, tiles_of(d, n, cols)), quality_param=q))
    png_single = sum(pillow_code(im, "PNG", optimize=True)[0] for im in images)
    points.append(point("png", "single", png_single, n, 1.0, math.inf))
    points.append(point("png", "mosaic", pillow_code(mosaic, "PNG", optimize=True)[0], n, 1.0, math.inf))
    return points


def run_adlcodec(images, mosaic, cols, model, progress, configs):
    from tqdm import tqdm

    from adlcodec.image import decode_image, encode_image

    n = len(images)
    points = []
    for setting in tqdm(configs, desc="adlcodec", disable=not progress):
        kw = dict(setting, model=model)
        cfg = dict(setting, label=label_of(setting))
        total, dec = 0, []
        for im in images:
            data = encode_image(im, **kw)
            total += len(data)
            dec.append(decode_image(data, model=model))
        points.append(point("adlcodec", "single", total, n, *quality(images, np.stack(dec)), **cfg))
        data = encode_image(mosaic, **kw)
        d = decode_image(data, model=model)
        points.append(point("adlcodec", "mosaic", len(data), n, *quality(images, tiles_of(d, n, cols)), **cfg))
    return points


def baseline_at(points, codec, setting, bytes_per_image):
    """SSIM/PSNR of a baseline interpolated at the given bytes per image (None outside its range)."""
    curve = sorted((p for p in points if p["codec"] == codec and p["setting"] == setting), key=lambda p: p["bytes_per_image"])
    xs = [p["bytes_per_image"] for p in curve]
    if not curve:
        return None
    if bytes_per_image < xs[0]:
        return {"ssim": None, "range": f"smallest {codec} is {xs[0]:.0f} B"}
    if bytes_per_image > xs[-1]:
        return {"ssim": None, "range": f"largest {codec} is {xs[-1]:.0f} B"}
    # Pillow's curves are not always monotone in bytes; interpolate on the upper envelope (best SSIM so far)
    ssim = np.maximum.accumulate([p["ssim"] for p in curve])
    nearest = min(curve, key=lambda p: abs(p["bytes_per_image"] - bytes_per_image))
    return {"ssim": float(np.interp(bytes_per_image, xs, ssim)), "nearest_quality": nearest["quality_param"],
            "nearest_bytes": nearest["bytes_per_image"], "nearest_ssim": nearest["ssim"]}


def compare(points):
    rows = []
    for p in points:
        if p["codec"] != "adlcodec":
            continue
        row = {"setting": p["setting"], "label": p["label"], "bytes_per_image": p["bytes_per_image"], "ratio": p["ratio"],
               "ssim": p["ssim"], "psnr": p["psnr"]}
        for codec in ("jpeg", "webp"):
            b = baseline_at(points, codec, p["setting"], p["bytes_per_image"])
            row[codec] = b
        rows.append(row)
    return rows


def fmt_baseline(b):
    if b["ssim"] is None:
        return f"n/a ({b['range']})"
    return f"{b['ssim']:.4f} (q{b['nearest_quality']}: {b['nearest_bytes']:.0f} B, {b['nearest_ssim']:.4f})"


def verdict(row):
    others = [row[c]["ssim"] for c in ("jpeg", "webp") if row[c]["ssim"] is not None]
    if not others:
        return "n/a (no baseline at this size)"
    return "yes" if all(row["ssim"] > s for s in others) else "no"


def write_markdown(path, meta, points, rows):
    lines = [
        "# adlcodec.image rate–distortion (Fashion-MNIST test split)",
        "",
        f"{meta['n']} test images, model `{meta['model_id']}` ({meta['model_bytes']} bytes), "
        f"{meta['platform']}. Bytes per image include every header byte. SSIM: scikit-image, data_range=255.",
        "Baseline SSIM is the JPEG/WebP curve interpolated at the same bytes per image (upper envelope), with the "
        "nearest measured quality in brackets.",
        "",
    ]
    for setting in ("single", "mosaic"):
        lines += [f"## {setting}", "",
                  "| adlcodec setting | B/image | ratio | SSIM | PSNR dB | JPEG SSIM at equal bytes | WebP SSIM at equal bytes | beats both |",
                  "|---|---:|---:|---:|---:|---|---|---|"]
        for r in sorted((r for r in rows if r["setting"] == setting), key=lambda r: r["bytes_per_image"]):
            lines.append(f"| {r['label']} | {r['bytes_per_image']:.1f} | {r['ratio']:.2f} | {r['ssim']:.4f} | {r['psnr']:.2f} | "
                         f"{fmt_baseline(r['jpeg'])} | {fmt_baseline(r['webp'])} | {verdict(r)} |")
        png = next(p for p in points if p["codec"] == "png" and p["setting"] == setting)
        lines += ["", f"Lossless PNG ({setting}): {png['bytes_per_image']:.1f} B/image (ratio {png['ratio']:.2f}).", ""]
    lines += ["## paper's ratio", "", meta["paper_ratio_note"], ""]
    Path(path).write_text("\n".join(lines))


def paper_ratio_note(points):
    notes = []
    for setting in ("single", "mosaic"):
        ok = [p for p in points if p["codec"] == "adlcodec" and p["setting"] == setting and p["ratio"] >= PAPER_RATIO]
        if not ok:
            notes.append(f"{setting}: no adlcodec setting reaches ratio {PAPER_RATIO}.")
            continue
        best = max(ok, key=lambda p: p["ssim"])
        notes.append(f"{setting}: best SSIM at ratio ≥ {PAPER_RATIO} is {best['ssim']:.4f} ({best['label']}, "
                     f"{best['bytes_per_image']:.1f} B/image, ratio {best['ratio']:.2f}); target 0.976: "
                     f"{'met' if best['ssim'] >= 0.976 else 'missed'}.")
    return " ".join(notes)


def plot(path, points):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(12, 4.5), sharey=True)
    styles = {"adlcodec": ("o", "C0"), "jpeg": ("s", "C1"), "webp": ("^", "C2")}
    for ax, setting in zip(axes, ("single", "mosaic")):
        for codec, (marker, colour) in styles.items():
            pts = sorted((p for p in points if p["codec"] == codec and p["setting"] == setting), key=lambda p: p["bytes_per_image"])
            if codec == "adlcodec":
                ax.scatter([p["bytes_per_image"] for p in pts], [p["ssim"] for p in pts], marker=marker, color=colour, label=codec, zorder=3)
            else:
                ax.plot([p["bytes_per_image"] for p in pts], [p["ssim"] for p in pts], marker=marker, color=colour, label=codec, ms=4)
        png = next(p for p in points if p["codec"] == "png" and p["setting"] == setting)
        ax.axvline(png["bytes_per_image"], color="gray", ls=":", label="PNG (lossless)")
        ax.axvline(RAW_BYTES / PAPER_RATIO, color="red", ls="--", lw=0.8, label=f"ratio {PAPER_RATIO}")
        ax.axhline(0.976, color="red", ls=":", lw=0.8)
        ax.set_xscale("log")
        ax.set_xlabel("bytes per 28×28 image (all headers included)")
        ax.set_title(f"Fashion-MNIST test, {setting}")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].set_ylabel("mean SSIM")
    axes[0].set_ylim(0.4, 1.005)
    axes[1].legend(loc="lower right")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--n", type=int, default=1000, help="test images (default 1000)")
    parser.add_argument("--model", default=None, help="model file (default: the shipped one)")
    parser.add_argument("--data", default=None, help="Fashion-MNIST folder (default: Debian's)")
    parser.add_argument("--out", default=str(HERE / "results"))
    parser.add_argument("--quick", action="store_true", help="only a few adlcodec settings (smoke test)")
    parser.add_argument("--no-progress", action="store_true")
    args = parser.parse_args(argv)

    import torch

    from adlcodec.data import load_fashion_mnist
    from adlcodec.image import DEFAULT_MODEL_PATH, load_model

    torch.set_num_threads(1)
    progress = not args.no_progress
    x, _ = load_fashion_mnist(args.data, split="test", normalize=False)
    images = np.rint(x[: args.n, 0] * 255).astype(np.uint8)
    n = len(images)
    cols = math.ceil(math.sqrt(n))
    mosaic = mosaic_of(images, cols)
    model = load_model(args.model)
    configs = ADL_CONFIGS[::6] if args.quick else ADL_CONFIGS
    start = time.perf_counter()
    points = run_baselines(images, mosaic, cols, progress) + run_adlcodec(images, mosaic, cols, model, progress, configs)
    rows = compare(points)
    model_path = Path(args.model) if args.model else DEFAULT_MODEL_PATH
    meta = {
        "n": n, "mosaic_shape": list(mosaic.shape), "model_id": f"{model.model_id:08x}",
        "model_bytes": model_path.stat().st_size, "platform": f"{platform.machine()} Python {platform.python_version()}",
        "seconds": time.perf_counter() - start,
    }
    meta["paper_ratio_note"] = paper_ratio_note(points)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"meta": meta, "points": points, "comparison": rows}, indent=1, allow_nan=True))
    write_markdown(out / "results.md", meta, points, rows)
    plot(out / "rd_curve.png", points)
    print(meta["paper_ratio_note"])
    print(f"wrote {out}/results.json, results.md, rd_curve.png in {meta['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
