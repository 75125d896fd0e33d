"""Speed of the diffusion model's sampler on this machine: x4 of a 256 x 256 LR image at 1, 4 and 15 steps.

    python benchmarks/diffusion_speed.py [--model runs/diffusion-x4/final.safetensors] [--steps 1 4 15]

Runs `srkit.upscale`'s path (`Upscaler`, the one inference path) with bf16 autocast and channels-last, the whole
image as one tile (the default "auto" tile is larger than 256 here) and seed 0; one warm-up call, then the median of
`--repeats` calls per step count. Without --model it times srkit's default resshift-unet (random weights: the cost
does not depend on the weights). Issue 18's target: <= 30 s at 4 steps on this project's 2-core CPU.
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="diffusion weights (default: a fresh resshift-unet x4)")
    ap.add_argument("--side", type=int, default=256, help="LR side")
    ap.add_argument("--steps", type=int, nargs="+", default=[1, 4, 15])
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="bf16")
    ap.add_argument("--tile", default="auto", help="LR tile side, 'auto' or 'none'")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from srkit.archs import build
    from srkit.archs.profile import macs_per_lr_pixel
    from srkit.infer import Upscaler
    from srkit.models import load_model

    model = load_model(a.model) if a.model else build("resshift-unet", 4)
    tile = None if a.tile == "none" else ("auto" if a.tile == "auto" else int(a.tile))
    up = Upscaler(model.eval(), dtype=a.dtype, tile=tile, channels_last=True)
    img = (np.random.default_rng(0).random((a.side, a.side, 3)) * 255).astype(np.uint8)
    mp = (a.side * model.info.scale) ** 2 / 1e6
    print(f"model {a.model or 'resshift-unet (random init)'}, {a.side}x{a.side} LR -> x{model.info.scale}, "
          f"{up.compute_dtype}, channels-last, tile {a.tile}, {a.threads} threads, torch {torch.__version__}")
    print("| steps | seconds (median) | s / output MP | GMACs |")
    print("| --- | --- | --- | --- |")
    for n in a.steps:
        model.module.sample_steps = n  # the MAC count below runs the module's default
        macs = macs_per_lr_pixel(model) * a.side * a.side / 1e9
        model.module.sample_steps = min(4, model.module.timesteps)
        up.upscale(img, seed=0, inputs={"steps": n})  # warm-up (oneDNN primitives, allocator)
        times = []
        for _ in range(a.repeats):
            t0 = time.perf_counter()
            up.upscale(img, seed=0, inputs={"steps": n})
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        print(f"| {n} | {med:.2f} ({', '.join(f'{t:.2f}' for t in times)}) | {med / mp:.2f} | {macs:.0f} |",
              flush=True)


if __name__ == "__main__":
    main()
