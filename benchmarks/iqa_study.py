"""Do srkit's no-reference indices follow distortion severity, and how do they rank SR models? (docs/quality-metrics.md)

    python benchmarks/iqa_study.py --data ../shared/datasets [--limit 20] [--metrics niqe klt psnr]
                                   [--models bicubic tiny-x4 balanced-x4 real-x4 real-x4-gan]
                                   [--out docs/quality-metrics.md]

1. Severity ladders on Set14 + B100 HR images (five levels each, plus the pristine image as level 0):
   bicubic down-up x2/x3/x4/x6/x8 (MATLAB bicubic both ways), Gaussian blur sigma 0.5/1/1.5/2/3, Gaussian noise
   sigma 5/10/20/30/50 (0-255 scale, seeded per image), JPEG quality 90/70/50/30/10 (libjpeg via Pillow, 4:2:0).
   For each metric, oriented so that larger = worse (NIQE, KLT as they are; PSNR against the pristine image negated),
   the table gives the Spearman correlation with the level: per image over its six versions, averaged over images
   ("per image"), and over all (image, level) pairs of the type at once ("pooled", where image content competes with
   severity). "all types" pools the four ladders (per image: the 21 versions of an image; level = rank within type).
2. Model ranking: each model upscales the MATLAB-bicubic x4 LR of every image; the mean of each no-reference
   metric over the outputs orders the models (PSNR/SSIM against HR beside them).

No human opinion scores are available here, so this measures monotonicity with known severity, not agreement with
people; `srkit.metrics.opinion` ships the protocol (splits by reference image, >= 100 splits, SROCC / KROCC /
PLCC / RMSE after the VQEG logistic) for users who have scores.
"""

from __future__ import annotations

import argparse
import io
import sys
import time
from pathlib import Path

import numpy as np

LADDERS: dict[str, list[float]] = {
    "down-up": [2, 3, 4, 6, 8],
    "blur": [0.5, 1.0, 1.5, 2.0, 3.0],
    "noise": [5, 10, 20, 30, 50],
    "jpeg": [90, 70, 50, 30, 10],
}


def distort(img: np.ndarray, kind: str, level: float, seed: int) -> np.ndarray:
    """One distorted version of a uint8 (H, W, 3) image."""
    from PIL import Image

    from srkit.ops import imresize_matlab

    x = img.astype(np.float64) / 255.0
    if kind == "down-up":
        s = int(level)
        h, w = img.shape[0] // s * s, img.shape[1] // s * s
        small = imresize_matlab(x[:h, :w], 1.0 / s)
        out = np.zeros_like(x)
        out[:h, :w] = imresize_matlab(small, float(s))
        out[h:], out[:, w:] = x[h:], x[:, w:]
        return np.clip(np.round(out * 255), 0, 255).astype(np.uint8)
    if kind == "blur":
        import cv2

        return cv2.GaussianBlur(img, (0, 0), sigmaX=level, sigmaY=level, borderType=cv2.BORDER_REFLECT)
    if kind == "noise":
        rng = np.random.default_rng(seed)
        return np.clip(np.round(img + rng.normal(0, level, img.shape)), 0, 255).astype(np.uint8)
    if kind == "jpeg":
        buf = io.BytesIO()
        Image.fromarray(img).save(buf, "JPEG", quality=int(level))
        return np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    raise ValueError(kind)


def badness(metric: str, img: np.ndarray, ref: np.ndarray) -> float:
    """The metric oriented so that larger = worse."""
    from srkit.metrics import METRICS

    info = METRICS[metric]
    v = info.fn(img, ref, border=0) if info.needs_reference else info.fn(img)
    return -float(v) if info.higher_is_better else float(v)


def spearman(a: list[float], b: list[float]) -> float:
    from scipy.stats import spearmanr

    r = spearmanr(a, b).statistic
    return float(r) if np.isfinite(r) else 0.0


def severity_study(images: list[tuple[str, np.ndarray]], metrics: list[str]) -> dict:
    """{metric: {type: (per-image mean SROCC, pooled SROCC)}} plus "all types"."""
    from srkit.metrics import METRICS

    res: dict[str, dict[str, tuple[float, float]]] = {}
    for m in metrics:
        t0 = time.perf_counter()
        per_type: dict[str, tuple[list[float], list[float], list[float]]] = {}
        all_per_image = []
        for idx, (_, img) in enumerate(images):
            # The pristine image is level 0 of every ladder: a no-reference score of it is computed once.
            base = None if METRICS[m].needs_reference else badness(m, img, img)
            img_levels, img_vals = [], []
            for kind, levels in LADDERS.items():
                vals = [base if base is not None else badness(m, img, img)]
                vals += [badness(m, distort(img, kind, lv, seed=idx), img) for lv in levels]
                lv_idx = list(range(len(vals)))
                pi, pl, pv = per_type.setdefault(kind, ([], [], []))
                pi.append(spearman(lv_idx, vals))
                pl.extend(lv_idx)
                pv.extend(vals)
                img_levels += lv_idx[1:]
                img_vals += vals[1:]
            all_per_image.append(spearman([0] + img_levels, [vals[0]] + img_vals))
        res[m] = {k: (float(np.mean(pi)), spearman(pl, pv)) for k, (pi, pl, pv) in per_type.items()}
        pooled_l = [lv for k in per_type for lv in per_type[k][1]]
        pooled_v = [v for k in per_type for v in per_type[k][2]]
        res[m]["all types"] = (float(np.mean(all_per_image)), spearman(pooled_l, pooled_v))
        print(f"  {m}: {time.perf_counter() - t0:.1f} s", file=sys.stderr)
    return res



def model_study(images: list[tuple[str, np.ndarray]], models: list[str], metrics: list[str]) -> dict:
    """{model: {metric: mean}} on x4 outputs (MATLAB bicubic LR); PSNR/SSIM against HR (Y, border 4)."""
    import srkit
    from srkit.metrics import METRICS
    from srkit.ops import imresize_matlab

    out: dict[str, dict[str, float]] = {}
    for name in models:
        model = srkit.load_model(name, scale=4) if name in ("bicubic",) else srkit.load_model(name)
        scores: dict[str, list[float]] = {}
        for _, hr in images:
            h, w = hr.shape[0] // 4 * 4, hr.shape[1] // 4 * 4
            hr = hr[:h, :w]
            lr = np.clip(np.round(imresize_matlab(hr.astype(np.float64) / 255.0, 0.25) * 255), 0, 255)
            sr = srkit.upscale(lr.astype(np.uint8), model=model)
            for m in metrics:
                info = METRICS[m]
                v = info.fn(sr, hr, border=4) if info.needs_reference else info.fn(sr, crop_border=4)
                scores.setdefault(m, []).append(float(v))
        out[name] = {m: float(np.mean(v)) for m, v in scores.items()}
    return out


def load(data: Path, limit: int | None) -> list[tuple[str, np.ndarray]]:
    from srkit.cli.iqa import collect_images, read_uint8

    images = []
    for s in ("Set14", "B100"):
        files, _, _ = collect_images([str(data / s / "HR")])
        files = sorted(files)[: limit if limit else None]
        for f in files:
            img = read_uint8(f)
            img = np.repeat(img[..., None], 3, 2) if img.ndim == 2 else img[..., :3]
            images.append((f"{s}/{Path(f).stem}", img))
    return images


def render(sev: dict, ranking: dict | None, n_images: int, cmd: str) -> str:
    lines = [f"Severity ladders on {n_images} images (Set14 + B100 HR). Spearman correlation of each metric (larger ="
             " worse) with the severity level: per image (mean over images) / pooled (all image-level pairs).", "",
             "| metric | " + " | ".join([*LADDERS, "all types"]) + " |",
             "| --- | " + " | ".join("---:" for _ in range(len(LADDERS) + 1)) + " |"]
    for m, row in sev.items():
        lines.append(f"| {m} | " + " | ".join(f"{row[k][0]:.3f} / {row[k][1]:.3f}" for k in [*LADDERS, "all types"])
                     + " |")
    if ranking:
        metrics = list(next(iter(ranking.values())))
        lines += ["", "Model outputs (x4, MATLAB-bicubic LR of the same images): mean of each metric.", "",
                  "| model | " + " | ".join(metrics) + " |", "| --- | " + " | ".join("---:" for _ in metrics) + " |"]
        for name, row in ranking.items():
            lines.append(f"| {name} | " + " | ".join(f"{row[m]:.4f}" for m in metrics) + " |")
    lines += ["", f"Made by: `{cmd}`"]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--limit", type=int, default=None, help="images per set (default: all)")
    ap.add_argument("--metrics", nargs="+", default=["niqe", "klt", "psnr"])
    ap.add_argument("--models", nargs="*", default=["bicubic", "tiny-x4", "balanced-x4", "real-x4", "real-x4-gan"])
    ap.add_argument("--out", type=Path, default=None, help="write the tables (markdown) here")
    args = ap.parse_args(argv)
    from srkit.metrics import METRICS

    unknown = [m for m in args.metrics if m not in METRICS]
    if unknown:
        ap.error(f"unknown metric(s): {', '.join(unknown)} (known: {', '.join(METRICS)})")
    images = load(args.data, args.limit)
    sev = severity_study(images, args.metrics)
    nr = [m for m in args.metrics if not METRICS[m].needs_reference] + ["psnr", "ssim"]
    ranking = model_study(images, args.models, list(dict.fromkeys(nr))) if args.models else None
    cmd = "python benchmarks/iqa_study.py " + " ".join(argv if argv is not None else sys.argv[1:])
    text = render(sev, ranking, len(images), cmd)
    print(text)
    if args.out is not None:
        args.out.write_text(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
