"""Speed of the default path on small images, against plain fp32 eager PyTorch, in one run.

Not a test. For one model (default balanced-x4) and LR sizes from 128 x 128 up, times interleaved, median of
--runs after a warm-up:

* plain fp32 eager: the `SRModel` called directly on an NCHW float tensor (what a user would write first);
* Upscaler: one reused `Upscaler(dtype="auto")` (`up.upscale(uint8 array)`: the whole image path);
* srkit.upscale: `srkit.upscale(array, model=m)` called anew each time (must cost the same as the reused
  Upscaler: models and prepared networks are cached);
* with --compile, the same Upscaler with `compile=True` (torch.compile of the network; first calls per shape
  are slow and not timed).

Prints the milliseconds, the ratios plain / Upscaler and srkit.upscale / Upscaler, and the PSNR between the
default path's output and plain fp32's (a numerical check; the weights are the shipped ones).

    python benchmarks/small_images.py --threads 2 --runs 7
"""

from __future__ import annotations

import argparse
import copy
import statistics
import time

import numpy as np
import torch


def _time(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="balanced-x4")
    p.add_argument("--sizes", nargs="+", default=["128x128", "192x128", "256x256", "512x512"],
                   help="LR sizes WxH")
    p.add_argument("--runs", type=int, default=7)
    p.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    p.add_argument("--compile", action="store_true")
    a = p.parse_args()
    if a.threads:
        torch.set_num_threads(a.threads)

    import srkit
    from srkit.infer import Upscaler
    from srkit.metrics import psnr

    model = srkit.load_model(a.model)
    plain = copy.deepcopy(model).eval()
    up = Upscaler(model, dtype="auto")
    upc = Upscaler(model, dtype="auto", compile=True) if a.compile else None
    print(f"{a.model}: {model.info.arch}, default path {up.settings()}, torch threads {torch.get_num_threads()}")
    print(f"{'LR size':>9} {'plain ms':>9} {'Upscaler':>9} {'upscale()':>9} {'compiled':>9} "
          f"{'plain/Up':>8} {'api/Up':>7} {'PSNR vs fp32':>12}")
    rng = np.random.default_rng(0)
    for size in a.sizes:
        w, h = (int(v) for v in size.lower().split("x"))
        img = (rng.random((h, w, 3)) * 255).astype(np.uint8)
        x = torch.from_numpy(img.astype(np.float32) / 255).permute(2, 0, 1)[None]

        def run_plain():
            with torch.inference_mode():
                return plain(x)

        fns = {"plain": run_plain, "up": lambda: up.upscale(img), "api": lambda: srkit.upscale(img, model=model)}
        if upc is not None:
            fns["compiled"] = lambda: upc.upscale(img)
        for fn in fns.values():  # warm-up (and compilation)
            fn()
            fn()
        times: dict[str, list[float]] = {k: [] for k in fns}
        for _ in range(a.runs):
            for k, fn in fns.items():
                times[k] += _time(fn, 1)
        med = {k: statistics.median(v) * 1000 for k, v in times.items()}
        ref = np.rint(run_plain()[0].clamp(0, 1).permute(1, 2, 0).numpy() * 255).astype(np.uint8)
        q = psnr(up.upscale(img), ref)
        comp = f"{med['compiled']:9.1f}" if "compiled" in med else f"{'-':>9}"
        print(f"{size:>9} {med['plain']:9.1f} {med['up']:9.1f} {med['api']:9.1f} {comp} "
              f"{med['plain'] / med['up']:8.2f} {med['api'] / med['up']:7.2f} {q:12.2f}")


if __name__ == "__main__":
    main()
