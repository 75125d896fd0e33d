"""Speed of the default path on small images, against plain fp32 eager PyTorch, in one run.

Not a test. For one model (default balanced-x4) and LR sizes from 128 x 128 up, times interleaved (each round
runs every variant once, in a rotated order), median of --runs after a warm-up:

* plain: the `SRModel` called directly on an NCHW float tensor, fp32, eager (what a user would write first);
* eager: `Upscaler(model, dtype="auto", compile=False)` on the uint8 array: the default path as a one-off
  image runs it (the compiler is never waited for);
* default: one reused `Upscaler(model, dtype="auto")` (compile="auto") after `Upscaler.warmup(image)`: the
  default path once an image size has been seen long enough (or warmed up), i.e. compiled for that shape;
* upscale(): `srkit.upscale(array, model=m)` called anew each time; it finds the same prepared (and compiled)
  network in the cache, so it must cost what the reused Upscaler costs (ratio api/default).

Also printed: the warm-up (compilation) seconds per size, and the quality change of the default path against
plain fp32: the LR image is a MATLAB-bicubic x1/scale of a ground truth (Set14 monarch resized to scale x the
LR size, when the dataset is found under $SRKIT_DATA or ../shared/datasets; --hr another image), and dPSNR is
PSNR(default, GT) - PSNR(plain, GT) on the Y channel (target: |dPSNR| <= 0.02 dB). Without a ground truth the
LR is noise and only the PSNR between the two outputs is shown.

    python benchmarks/small_images.py --threads 2 --runs 7 --sizes 128x128 192x128 256x256 512x512
    python benchmarks/small_images.py --threads 1 --clock cpu --runs 7   # steadier where others load the CPU
"""

from __future__ import annotations

import argparse
import copy
import os
import statistics
import time
from pathlib import Path

import numpy as np
import torch


def _default_hr() -> Path | None:
    roots = [Path(os.environ["SRKIT_DATA"])] if os.environ.get("SRKIT_DATA") else []
    roots.append(Path(__file__).resolve().parents[2] / "shared" / "datasets")
    for r in roots:
        p = r / "Set14" / "HR" / "monarch.png"
        if p.is_file():
            return p
    return None


def _pair(hr_path: Path | None, w: int, h: int, scale: int, rng) -> tuple[np.ndarray, np.ndarray | None]:
    """(LR uint8 (h, w, 3), ground truth (scale*h, scale*w, 3) or None)."""
    if hr_path is None:
        return (rng.random((h, w, 3)) * 255).astype(np.uint8), None
    from srkit.io import read_image
    from srkit.ops import imresize_matlab

    hr, _ = read_image(hr_path)
    hr = hr[..., :3] if hr.ndim == 3 else np.repeat(hr[..., None], 3, axis=2)
    if hr.shape[:2] != (scale * h, scale * w):
        hr = imresize_matlab(hr, output_shape=(scale * h, scale * w))
    return imresize_matlab(hr, 1.0 / scale), hr


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="balanced-x4")
    p.add_argument("--sizes", nargs="+", default=["128x128", "192x128", "256x256", "512x512"],
                   help="LR sizes WxH")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--hr", type=Path, default=None, help="ground-truth image (default: Set14 monarch if found)")
    p.add_argument("--clock", choices=["wall", "cpu"], default="wall",
                   help="wall time, or the process's CPU time (with --threads 1 on a machine others load, the "
                        "work without the waits for the CPU: steadier ratios)")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)
    clock = time.perf_counter if a.clock == "wall" else time.process_time

    import srkit
    from srkit.infer import Upscaler
    from srkit.metrics import psnr

    model = srkit.load_model(a.model)
    plain = copy.deepcopy(model).eval()
    up = Upscaler(model, dtype="auto")
    eager = Upscaler(model, dtype="auto", compile=False)
    hr_path = a.hr or _default_hr()
    print(f"{a.model}: {model.info.name}, default path {up.settings()}, torch threads {torch.get_num_threads()}, "
          f"{a.clock} clock, ground truth {hr_path or 'none (noise input)'}")
    print(f"{'LR size':>9} {'plain ms':>9} {'eager ms':>9} {'default':>9} {'upscale()':>9} {'plain/eager':>11} "
          f"{'plain/default':>13} {'api/default':>11} {'warm-up s':>9} {'dPSNR dB':>9} {'PSNR vs fp32':>12}")
    rng = np.random.default_rng(0)
    s = model.info.scale
    for size in a.sizes:
        w, h = (int(v) for v in size.lower().split("x"))
        img, gt = _pair(hr_path, w, h, s, rng)
        x = torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)[None]

        def run_plain():
            with torch.inference_mode():
                return plain(x)

        warm = up.warmup(img)  # compiles this shape (compile="auto"); srkit.upscale shares it
        fns = {"plain": run_plain, "eager": lambda: eager.upscale(img), "default": lambda: up.upscale(img),
               "api": lambda: srkit.upscale(img, model=model)}
        for fn in fns.values():  # warm-up
            fn()
            fn()
        times: dict[str, list[float]] = {k: [] for k in fns}
        order = list(fns)
        for r in range(a.runs):
            for k in order[r % len(order):] + order[: r % len(order)]:  # rotated: no variant always runs first
                t = clock()
                fns[k]()
                times[k].append(clock() - t)
        med = {k: statistics.median(v) * 1000 for k, v in times.items()}
        ref = np.rint(run_plain()[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        out = up.upscale(img)
        dpsnr = f"{psnr(out, gt) - psnr(ref, gt):+9.3f}" if gt is not None else f"{'-':>9}"
        print(f"{size:>9} {med['plain']:9.1f} {med['eager']:9.1f} {med['default']:9.1f} {med['api']:9.1f} "
              f"{med['plain'] / med['eager']:11.2f} {med['plain'] / med['default']:13.2f} "
              f"{med['api'] / med['default']:11.2f} {warm:9.1f} {dpsnr} {psnr(out, ref):12.2f}")
    print(f"compiled shapes: {up.prepared.compiled_shapes}; settings after the run: {up.settings()}")


if __name__ == "__main__":
    main()
