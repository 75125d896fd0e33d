"""Blind SR on degraded inputs: bicubic, balanced-x4, real-x4 and real-x4-gan on the same degraded LR images.

    python benchmarks/real_world.py --data ../shared/datasets [--sheet docs/real_world.png]

Rows: PSNR / SSIM (Y, border 4, as `srkit eval`), NIQE (LIVE's official pristine model, Y, border 4; lower is
better) and the mean gradient magnitude of the output's luma (a sharpness proxy: higher = more high-frequency
content, real or not) on
- Set14 and B100 degraded with the `realesrgan` preset (degradation seed 0) - what real-x4 is trained on;
- B100 degraded with the `camera` preset (seed 0) - a chain no model here was trained on.
LR images come from `srkit.evaluate.degraded_lr` (the same cache `srkit eval --degradation` uses).

`--sheet` draws the four outputs on two B100 images degraded like a phone photo shared online (MATLAB bicubic
x1/4, Poisson shot noise, Gaussian read noise sigma 3, JPEG quality 40) - no licensed real photos are available
here, so B100 scenes stand in for them.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

MODELS = ("bicubic", "balanced-x4", "real-x4", "real-x4-gan")
PHOTO_LIKE = {
    "steps": [
        {"op": "to_target", "modes": {"matlab": 1.0}},
        {"op": "noise", "gaussian_prob": 0.0, "poisson_scale": [1.0, 1.0], "gray_prob": 0.0},
        {"op": "noise", "gaussian_prob": 1.0, "sigma": [3.0, 3.0], "gray_prob": 0.0},
        {"op": "jpeg", "quality": [40, 40]},
    ]
}


def mean_gradient(sr: np.ndarray, border: int) -> float:
    """Mean |grad| of the BT.601 luma (0..255 scale) of a uint8 RGB (or gray) image, ``border`` pixels cropped."""
    from srkit.ops import rgb_to_ycbcr

    y = (rgb_to_ycbcr(sr, y_only=True) if sr.ndim == 3 else sr.astype(np.float64))[border:-border, border:-border]
    gy, gx = np.gradient(y)
    return float(np.mean(np.hypot(gx, gy)))


def score(model: str, data: Path, set_name: str, preset: str, seed: int, niqe_params: Path) -> dict[str, float]:
    from srkit.data.benchmark import find_set, modcrop
    from srkit.degrade.pipeline import Degradation
    from srkit.evaluate import _as_uint8, _to_tensor, degradation_cache_dir, degraded_lr
    from srkit.infer import Upscaler
    from srkit.io import read_image
    from srkit.metrics import psnr, ssim
    from srkit.metrics.niqe import niqe
    from srkit.models import load_model

    up = Upscaler(load_model(model, scale=4), dtype="fp32")
    deg = Degradation(preset)
    rows = []
    for hr_path in find_set(data, set_name).hr_paths():
        hr = modcrop(_as_uint8(read_image(hr_path)[0]), 4)
        lr = degraded_lr(hr, deg, 4, seed, set_name, hr_path.stem, degradation_cache_dir())
        sr = up.upscale_tensor(_to_tensor(lr))[0].clamp(0, 1).permute(1, 2, 0).numpy()
        sr8 = np.rint(sr * 255).astype(np.uint8)
        sr8 = sr8[..., 0] if sr8.shape[2] == 1 else sr8  # gray images stay gray
        rows.append((psnr(sr, hr, border=4), ssim(sr, hr, border=4), niqe(sr8, crop_border=4, params=niqe_params),
                     mean_gradient(sr8, 4)))
    a = np.mean(rows, axis=0)
    return {"psnr": float(a[0]), "ssim": float(a[1]), "niqe": float(a[2]), "grad": float(a[3])}


def sheet(data: Path, out: Path, names: tuple[str, ...] = ("3096", "42049"), crop: int = 160) -> None:
    from PIL import Image, ImageDraw, ImageFont

    from srkit.data.benchmark import modcrop
    from srkit.degrade.pipeline import Degradation, degrade_image, image_seed
    from srkit.infer import Upscaler
    from srkit.io import read_image, write_image
    from srkit.models import load_model

    ups = {m: Upscaler(load_model(m, scale=4), dtype="fp32") for m in MODELS}
    deg = Degradation(PHOTO_LIKE)
    font = ImageFont.load_default(size=14)
    cols = ["HR", *MODELS]
    canvas = Image.new("RGB", (len(cols) * (crop + 6) + 6, len(names) * (crop + 6) + 30), (255, 255, 255))
    draw = ImageDraw.Draw(canvas)
    for c, label in enumerate(cols):
        draw.text((6 + c * (crop + 6), 6), label, fill=(0, 0, 0), font=font)
    for r, name in enumerate(names):
        hr = modcrop(read_image(data / "B100" / "HR" / f"{name}.png")[0][..., :3], 4)
        lr, _ = degrade_image(hr, deg, 4, image_seed(0, "sheet", name))
        h, w = hr.shape[:2]
        top, left = (h - crop) // 8 * 4, (w - crop) // 8 * 4
        tiles = [hr]
        for m in MODELS:
            x = torch.from_numpy(lr).permute(2, 0, 1)[None].float() / 255
            sr = ups[m].upscale_tensor(x)[0].clamp(0, 1).permute(1, 2, 0).numpy()
            tiles.append(np.rint(sr * 255).astype(np.uint8))
        for c, t in enumerate(tiles):
            tile = Image.fromarray(t[top : top + crop, left : left + crop])
            canvas.paste(tile, (6 + c * (crop + 6), 26 + r * (crop + 6)))
    write_image(out, np.asarray(canvas))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True)
    ap.add_argument("--models", nargs="+", default=list(MODELS))
    ap.add_argument("--sheet", type=Path, default=None)
    ap.add_argument("--niqe-params", type=Path, default=None,
                    help="official NIQE model (default: DATA/../reference/niqe_pris_params.npz)")
    a = ap.parse_args()
    niqe_params = a.niqe_params or a.data.resolve().parent / "reference" / "niqe_pris_params.npz"
    torch.set_num_threads(2)
    cases = [("Set14", "realesrgan"), ("B100", "realesrgan"), ("B100", "camera")]
    print("| model | " + " | ".join(f"{s} {p} (PSNR / SSIM / NIQE / grad)" for s, p in cases) + " |")
    print("| --- |" + " --- |" * len(cases))
    for m in a.models:
        t = time.perf_counter()
        cells = []
        for s, p in cases:
            r = score(m, a.data, s, p, seed=0, niqe_params=niqe_params)
            cells.append(f"{r['psnr']:.4f} / {r['ssim']:.4f} / {r['niqe']:.3f} / {r['grad']:.2f}")
        print(f"| {m} | " + " | ".join(cells) + f" |   <!-- {time.perf_counter() - t:.0f} s -->", flush=True)
    if a.sheet is not None:
        sheet(a.data, a.sheet)
        print(f"sheet: {a.sheet}")


if __name__ == "__main__":
    main()
