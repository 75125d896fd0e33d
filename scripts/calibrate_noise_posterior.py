"""Fit `srkit.degrade.estimate.NOISE_POSTERIOR`: the mean noise sigma before JPEG of training samples, by the JPEG
quality and the noise sigma measured on their LR pixels.

A JPEG pass removes much of the noise that was added before it (at quality 50, sigma 15 noise measures about 1
in the pixels), while a conditioned model is told the sigma before JPEG, as in training. This script degrades
random crops of the training images with the `controllable` preset (the conditioned model's training
distribution, clean samples included), measures each LR (`_grid_and_quality`, `_noise_sigma`) and writes, per
quality row, knots (mean measured sigma, mean true sigma) over quantile bins of the measured sigma, made
non-decreasing. Paste the printed table into `srkit/degrade/estimate.py`.

    SRKIT_DATA=../shared/datasets python scripts/calibrate_noise_posterior.py --samples 3000

Only training sets are read (T91, BSDS200, BSDS500test, General100): never Set5 / Set14 / B100.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

ROWS = (10, 20, 30, 40, 50, 60, 70, 80, 90, 95, 100)
TRAIN_SETS = ("T91", "BSDS200", "BSDS500test", "General100")
_PER_KNOT = 40  # samples per knot at least: fewer knots in the rarer quality rows


def data_root(arg: str | None) -> Path:
    if arg:
        return Path(arg)
    env = os.environ.get("SRKIT_DATA")
    return Path(env) if env else Path(__file__).resolve().parents[1].parent / "shared" / "datasets"


def samples(root: Path, n: int, seed: int, max_side: int) -> list[tuple[float, float, float, int]]:
    """(true sigma, true quality, measured sigma, estimated quality) of `n` degraded training crops."""
    from srkit.data.benchmark import modcrop
    from srkit.data.folders import list_images, read_rgb8
    from srkit.degrade.estimate import _as_hwc, _grid_and_quality, _luma, _noise_sigma
    from srkit.degrade.pipeline import Degradation, degrade_image, image_seed, record_levels

    files = list_images([root / s / "HR" if (root / s / "HR").is_dir() else root / s for s in TRAIN_SETS])
    deg = Degradation("controllable")
    rng = np.random.default_rng(seed)
    out = []
    for i in range(n):
        hr = read_rgb8(files[int(rng.integers(len(files)))])
        h, w = hr.shape[:2]
        ch, cw = min(h, max_side), min(w, max_side)
        top, left = int(rng.integers(h - ch + 1)), int(rng.integers(w - cw + 1))
        hr = modcrop(hr[top : top + ch, left : left + cw], 4)
        lr, record = degrade_image(hr, deg, 4, image_seed(seed, i))
        sigma, quality = record_levels(record)
        x = _as_hwc(lr)
        grid, q_seen = _grid_and_quality(_luma(x))
        out.append((sigma, quality, _noise_sigma(x, grid if q_seen < 100 else None), q_seen))
    return out


def fit(data: list[tuple[float, float, float, int]], knots: int) -> dict[int, list[tuple[float, float]]]:
    arr = np.array(data, dtype=np.float64)
    rows = np.array(ROWS)
    nearest = rows[np.argmin(np.abs(arr[:, 3:4] - rows[None, :]), axis=1)]
    table = {}
    for r in ROWS:
        sel = arr[nearest == r]
        if len(sel) < 4 * _PER_KNOT:
            raise SystemExit(f"only {len(sel)} samples for quality row {r}: use more --samples")
        order = np.argsort(sel[:, 2])
        xs, ys = [], []
        for part in np.array_split(order, min(knots, len(sel) // _PER_KNOT)):
            xs.append(float(sel[part, 2].mean()))
            ys.append(float(sel[part, 0].mean()))
        ys = [float(y) for y in np.maximum.accumulate(ys)]  # more measured noise never means less noise
        table[r] = [(round(x, 2), round(y, 2)) for x, y in zip(xs, ys)]
    return table


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=None, help="datasets folder (default: $SRKIT_DATA, else ../shared/datasets)")
    ap.add_argument("--samples", type=int, default=3000)
    ap.add_argument("--knots", type=int, default=10)
    ap.add_argument("--max-side", type=int, default=512, help="HR crop side (LR side / 4)")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    t0 = time.perf_counter()
    data = samples(data_root(a.data), a.samples, a.seed, a.max_side)
    table = fit(data, a.knots)
    print(f"# {a.samples} samples of the controllable preset, seed {a.seed}, HR crops <= {a.max_side} px, "
          f"{time.perf_counter() - t0:.0f} s")
    print("NOISE_POSTERIOR: dict[int, list[tuple[float, float]]] = {")
    for r, pts in table.items():
        line = f"    {r}: ["
        for i, (x, y) in enumerate(pts):
            item = f"({x}, {y})" + (", " if i < len(pts) - 1 else "],")
            if len(line) + len(item) > 118:
                print(line.rstrip())
                line = "         "
            line += item
        print(line)
    print("}")


if __name__ == "__main__":
    main()
