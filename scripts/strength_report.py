"""Issue 19's numbers and figure for a trained conditioned model (real-x4-ctrl): the model card's tables, the
targets checked, and docs/strength.png.

    SRKIT_DATA=../shared/datasets python scripts/strength_report.py --model runs/real-x4-ctrl-gated/best.safetensors \\
        --json runs/real-x4-ctrl-gated/strength_report.json --figure docs/strength.png

What it measures (PSNR dB on the Y channel, border 4, as `srkit eval`; LR cached like `srkit eval --degradation`):

1. Set14 and B100 degraded at three known levels (default sigma/quality 5/90, 15/60, 30/30): MATLAB bicubic x4
   down, Gaussian colour noise of sigma (8-bit units), one libjpeg pass of quality q, seeded per image. Each
   conditioned model is run with the true levels, with levels estimated from the LR pixels
   (`srkit.degrade.estimate.estimate_levels`, what `srkit.upscale` does for an array or a PNG), and the blind model
   (real-x4) on the same LR. Targets: true >= blind on every set and level; estimated >= blind - 0.1 dB.
2. Clean Set14 x4 (MATLAB bicubic LR, `srkit eval`'s): the conditioned model at strength 0 against balanced-x4.
   Target: >= balanced-x4 - 0.3 dB.
3. Monotonic cleaning: on every image of Set14 at each of the three levels, the output's high-frequency energy
   (mean absolute 4-neighbour Laplacian of its BT.601 luma, 0-255) decreases strictly with strength 0, 0.25, 0.5,
   0.75, 1. Target: no image where it does not.
4. The figure: one photo (default B100 3096) degraded by noise and JPEG (default sigma 20, quality 40), a crop of
   the input (nearest-enlarged), the blind model, and the conditioned model at strengths 0 .. 1.

Set5 / Set14 / B100 are evaluation sets: nothing here trains or tunes on them. The script prints markdown tables
for the model card and exits 1 when a target is missed (2 on bad arguments). --limit N scores only the first N
images of each set (smoke runs).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
STRENGTHS = (0.0, 0.25, 0.5, 0.75, 1.0)
SETS = ("Set14", "B100")


def data_root(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    env = os.environ.get("SRKIT_DATA")
    return Path(env) if env else REPO.parent / "shared" / "datasets"


def parse_level(text: str) -> tuple[float, int]:
    try:
        sigma, quality = text.split("/")
        s, q = float(sigma), int(quality)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected SIGMA/QUALITY such as 15/60, got {text!r}") from None
    if not (0 <= s <= 50 and 10 <= q <= 100):
        raise argparse.ArgumentTypeError(f"sigma must be in [0, 50] and quality in 10..100, got {text!r}")
    return s, q


def degradation(sigma: float, quality: int):
    """Bicubic x4 down, Gaussian colour noise of `sigma`, one JPEG pass of `quality` (either left out at 0 / 100)."""
    from srkit.degrade.pipeline import Degradation

    steps: list[dict] = [{"op": "to_target", "modes": {"matlab": 1.0}}]
    if sigma > 0:
        steps.append({"op": "noise", "gaussian_prob": 1.0, "sigma": [sigma, sigma], "gray_prob": 0.0})
    if quality < 100:
        steps.append({"op": "jpeg", "quality": [quality, quality]})
    return Degradation({"steps": steps})


def images(root: Path, set_name: str, limit: int | None) -> list[tuple[str, np.ndarray]]:
    """(name, modcropped uint8 HR) of a benchmark set, as `srkit eval` reads them (gray stays gray)."""
    from srkit.data.benchmark import find_set, modcrop
    from srkit.evaluate import _as_uint8
    from srkit.io import read_image

    paths = find_set(root, set_name).hr_paths()[:limit]
    return [(p.stem, modcrop(_as_uint8(read_image(p)[0]), 4)) for p in paths]


def run(up, lr: np.ndarray, inputs: dict | None = None) -> np.ndarray:
    """Float (H, W, C) SR in [0, 1] of a uint8 LR, as `srkit eval` scores it."""
    from srkit.evaluate import _to_tensor

    sr = up.upscale_tensor(_to_tensor(lr), inputs=inputs)[0]
    return sr.clamp(0, 1).permute(1, 2, 0).numpy()


def hf_energy(sr: np.ndarray) -> float:
    """Mean absolute 4-neighbour Laplacian of the 8-bit output's BT.601 luma (0-255 scale)."""
    x = np.rint(np.clip(sr, 0, 1) * 255.0)
    y = x[..., 0] if x.shape[2] == 1 else x @ np.array([0.299, 0.587, 0.114])
    lap = 4 * y[1:-1, 1:-1] - y[:-2, 1:-1] - y[2:, 1:-1] - y[1:-1, :-2] - y[1:-1, 2:]
    return float(np.abs(lap).mean())


def degraded_sets(root: Path, levels, limit, seed, cache):
    from srkit.evaluate import degraded_lr

    for set_name in SETS:
        hrs = images(root, set_name, limit)
        for sigma, quality in levels:
            deg = degradation(sigma, quality)
            yield set_name, (sigma, quality), [(name, hr, degraded_lr(hr, deg, 4, seed, set_name, name, cache))
                                               for name, hr in hrs]


def score_degraded(ups, root, levels, limit, seed, cache) -> tuple[list[dict], list[dict]]:
    """PSNR rows (set, level: true / estimated / blind) and Set14 monotonicity rows."""
    from srkit.degrade.estimate import estimate_levels
    from srkit.infer.conditioning import strength_levels
    from srkit.metrics import psnr

    rows, mono = [], []
    for set_name, (sigma, quality), items in degraded_sets(root, levels, limit, seed, cache):
        t0 = time.perf_counter()
        p = {"true": [], "estimated": [], "blind": []}
        est_sigma, est_quality = [], []
        for name, hr, lr in items:
            es, eq = estimate_levels(lr)
            est_sigma.append(es)
            est_quality.append(eq)
            p["true"].append(psnr(run(ups["ctrl"], lr, {"noise": sigma, "jpeg": quality}), hr, border=4))
            p["estimated"].append(psnr(run(ups["ctrl"], lr, {"noise": es, "jpeg": float(eq)}), hr, border=4))
            p["blind"].append(psnr(run(ups["blind"], lr), hr, border=4))
            if set_name == "Set14":
                energy = [hf_energy(run(ups["ctrl"], lr, strength_levels(s))) for s in STRENGTHS]
                mono.append({"level": [sigma, quality], "image": name, "hf": energy,
                             "decreasing": all(b < a for a, b in zip(energy, energy[1:]))})
        row = {"set": set_name, "sigma": sigma, "quality": quality, "images": len(items),
               **{k: float(np.mean(v)) for k, v in p.items()},
               "est_sigma_mean": float(np.mean(est_sigma)), "est_sigma_mae": float(np.mean(np.abs(np.array(est_sigma)
                                                                                                - sigma))),
               "est_quality_mean": float(np.mean(est_quality)),
               "est_quality_mae": float(np.mean(np.abs(np.array(est_quality) - quality))),
               "seconds": time.perf_counter() - t0}
        rows.append(row)
        print(f"  {set_name} sigma {sigma:g} q {quality}: true {row['true']:.4f} est {row['estimated']:.4f} "
              f"blind {row['blind']:.4f} ({row['seconds']:.0f} s)", file=sys.stderr, flush=True)
    return rows, mono


def score_clean(ups, root, limit) -> dict:
    from srkit.evaluate import make_lr
    from srkit.metrics import psnr

    ctrl, ref = [], []
    for _name, hr in images(root, "Set14", limit):
        lr = make_lr(hr, 4)
        ctrl.append(psnr(run(ups["ctrl"], lr, {"noise": 0.0, "jpeg": 100.0}), hr, border=4))
        ref.append(psnr(run(ups["clean_ref"], lr), hr, border=4))
    return {"set": "Set14", "ctrl_strength0": float(np.mean(ctrl)), "clean_ref": float(np.mean(ref)),
            "images": len(ctrl)}


def figure(ups, root: Path, out: Path, image: str, level: tuple[float, int], crop: int, seed: int, labels) -> None:
    from PIL import Image, ImageDraw, ImageFont

    from srkit.data.benchmark import find_set, modcrop
    from srkit.evaluate import _as_uint8
    from srkit.infer.conditioning import strength_levels
    from srkit.io import read_image, write_image

    set_name, stem = image.split("/")
    path = next(p for p in find_set(root, set_name).hr_paths() if p.stem == stem)
    hr = modcrop(_as_uint8(read_image(path)[0]), 4)
    if hr.ndim == 2:
        hr = np.repeat(hr[..., None], 3, axis=2)
    from srkit.degrade.pipeline import degrade_image, image_seed

    lr, _ = degrade_image(hr, degradation(*level), 4, image_seed(seed, "figure", stem))
    h, w = hr.shape[:2]
    crop = min(crop, h, w) // 4 * 4
    top, left = (h - crop) // 8 * 4, (w - crop) // 8 * 4
    tiles = [("input (nearest)", np.repeat(np.repeat(lr, 4, axis=0), 4, axis=1)),
             (labels["blind"], np.rint(run(ups["blind"], lr) * 255).astype(np.uint8))]
    for s in STRENGTHS:
        tiles.append((f"strength {s:g}", np.rint(run(ups["ctrl"], lr, strength_levels(s)) * 255).astype(np.uint8)))
    font = ImageFont.load_default(size=14)
    pad, head = 6, 40
    canvas = Image.new("RGB", (len(tiles) * (crop + pad) + pad, crop + head + pad), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    draw.text((pad, 4), f"{set_name} {stem}, Gaussian noise sigma {level[0]:g} + JPEG quality {level[1]}, x4; "
                        f"{labels['ctrl']} at strengths 0-1 (noise 50 s, quality 100 - 90 s)", fill=(0, 0, 0),
              font=font)
    for i, (label, t) in enumerate(tiles):
        x0 = pad + i * (crop + pad)
        draw.text((x0, 22), label, fill=(0, 0, 0), font=font)
        canvas.paste(Image.fromarray(np.ascontiguousarray(t[top : top + crop, left : left + crop])), (x0, head))
    out.parent.mkdir(parents=True, exist_ok=True)
    write_image(out, np.asarray(canvas))


def markdown(rows, clean, mono, labels) -> str:
    out = [f"| set (x4) | sigma / quality | {labels['ctrl']}, true levels | {labels['ctrl']}, estimated levels | "
           f"{labels['blind']} (blind) | estimated sigma / quality (mean) |",
           "| --- | --- | --- | --- | --- | --- |"]
    for r in rows:
        out.append(f"| {r['set']} | {r['sigma']:g} / {r['quality']} | {r['true']:.4f} | {r['estimated']:.4f} | "
                   f"{r['blind']:.4f} | {r['est_sigma_mean']:.1f} / {r['est_quality_mean']:.1f} |")
    out += ["", f"| clean Set14 x4 | {labels['ctrl']} at strength 0 | {labels['clean_ref']} |", "| --- | --- | --- |",
            f"| PSNR (Y) | {clean['ctrl_strength0']:.4f} | {clean['clean_ref']:.4f} |", ""]
    bad = [m for m in mono if not m["decreasing"]]
    out.append(f"High-frequency energy decreasing with strength 0-1: {len(mono) - len(bad)} of {len(mono)} "
               "(image, level) cases on Set14" + (": not " + ", ".join(f"{m['image']} @ {m['level'][0]:g}/"
                                                                            f"{m['level'][1]}" for m in bad)
                                                  if bad else "."))
    return "\n".join(out)


def targets(rows, clean, mono) -> list[tuple[str, bool]]:
    out = []
    for r in rows:
        lv = f"{r['set']} {r['sigma']:g}/{r['quality']}"
        out.append((f"true levels >= blind on {lv} ({r['true'] - r['blind']:+.4f} dB)", r["true"] >= r["blind"]))
        out.append((f"estimated levels within 0.1 dB of blind on {lv} ({r['estimated'] - r['blind']:+.4f} dB)",
                    r["estimated"] >= r["blind"] - 0.1))
    d = clean["ctrl_strength0"] - clean["clean_ref"]
    out.append((f"clean Set14 at strength 0 within 0.3 dB of the clean model ({d:+.4f} dB)", d >= -0.3))
    out.append((f"monotonic high-frequency energy on every Set14 image and level "
                f"({sum(m['decreasing'] for m in mono)}/{len(mono)})", all(m["decreasing"] for m in mono)))
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default="real-x4-ctrl",
                    help="the conditioned model (weights file or name; default: the shipped real-x4-ctrl)")
    ap.add_argument("--blind", default="real-x4", help="the blind model it is compared with")
    ap.add_argument("--clean-ref", default="balanced-x4", help="the clean-input model of the strength-0 check")
    ap.add_argument("--data", default=None, help="datasets folder (default: $SRKIT_DATA, else ../shared/datasets)")
    ap.add_argument("--levels", nargs=3, type=parse_level, default=[(5.0, 90), (15.0, 60), (30.0, 30)],
                    metavar="SIGMA/QUALITY", help="the three degraded levels")
    ap.add_argument("--seed", type=int, default=0, help="seeds the degradations (per image)")
    ap.add_argument("--limit", type=int, default=None, help="score only the first N images of each set")
    ap.add_argument("--figure", type=Path, default=REPO / "docs" / "strength.png", help="'' for none")
    ap.add_argument("--figure-image", default="B100/3096", metavar="SET/NAME")
    ap.add_argument("--figure-level", type=parse_level, default=(20.0, 40), metavar="SIGMA/QUALITY")
    ap.add_argument("--crop", type=int, default=192, help="HR side of the figure's crops")
    ap.add_argument("--json", type=Path, default=None, help="write every number here")
    ap.add_argument("--threads", type=int, default=2)
    a = ap.parse_args(argv)
    torch.set_num_threads(a.threads)

    from srkit.evaluate import degradation_cache_dir
    from srkit.infer import Upscaler
    from srkit.infer.conditioning import takes_levels
    from srkit.models import load_model

    root = data_root(a.data)
    ctrl = load_model(a.model)
    if not takes_levels(ctrl.info):
        ap.error(f"{a.model} takes no noise / jpeg levels: give the conditioned model (real-x4-ctrl)")
    labels = {"ctrl": Path(a.model).stem if os.sep in a.model or a.model.endswith(".safetensors") else a.model,
              "blind": a.blind, "clean_ref": a.clean_ref}
    if labels["ctrl"] in ("best", "final"):
        labels["ctrl"] = "real-x4-ctrl"
    ups = {"ctrl": Upscaler(ctrl, dtype="fp32"), "blind": Upscaler(load_model(a.blind), dtype="fp32"),
           "clean_ref": Upscaler(load_model(a.clean_ref), dtype="fp32")}
    t0 = time.perf_counter()
    rows, mono = score_degraded(ups, root, a.levels, a.limit, a.seed, degradation_cache_dir())
    clean = score_clean(ups, root, a.limit)
    if str(a.figure):
        figure(ups, root, a.figure, a.figure_image, a.figure_level, a.crop, a.seed, labels)
    checks = targets(rows, clean, mono)
    print(markdown(rows, clean, mono, labels))
    print()
    for text, ok in checks:
        print(f"{'PASS' if ok else 'MISS'}  {text}")
    print(f"({time.perf_counter() - t0:.0f} s{'; --limit ' + str(a.limit) if a.limit else ''})")
    if a.json is not None:
        a.json.parent.mkdir(parents=True, exist_ok=True)
        a.json.write_text(json.dumps({"model": a.model, "blind": a.blind, "clean_ref": a.clean_ref,
                                      "levels": a.levels, "seed": a.seed, "limit": a.limit, "degraded": rows,
                                      "clean": clean, "monotonic": mono,
                                      "targets": [{"target": t, "met": ok} for t, ok in checks]}, indent=1))
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
