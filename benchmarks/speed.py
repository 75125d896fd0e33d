"""Inference speed of srkit's fast paths against plain fp32 eager PyTorch and onnxruntime, in one run.

Not a test. For EDSR-baseline x4 (random init: speed does not depend on the weights) and every shipped model,
on one LR image (--size, default 512 x 512), times, interleaved and with the median of --runs:

* plain fp32 eager: the model called directly, NCHW, not deployed (what a user would write first);
* srkit fp32: `Upscaler(dtype="fp32")` (channels-last, deployed);
* srkit auto: `Upscaler(dtype="auto")` (bf16 autocast where the CPU has AMX/AVX512-BF16 or on CUDA);
* srkit auto, tiled: the same with `tile=--tile` (exact tiling, more work from the context);
* onnxruntime fp32: `Upscaler(backend="onnxruntime")`;
* with --compile, srkit auto + `torch.compile` (slow first call, not timed).

It prints output megapixels per second, the speed ratios side by side, how far each path's output is from the fp32
output (PSNR between the two outputs, and max |diff|), and the peak RSS. With Set5 found (--data or SRKIT_DATA),
it also prints the change of the Set5 PSNR (Y, border = scale) of the srkit auto path against fp32: with random
weights the PSNR itself is meaningless, its change is still a valid numerical check.

    python benchmarks/speed.py --runs 3 --data ../shared/datasets
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import resource
import statistics
import time
from pathlib import Path

import numpy as np
import torch


def test_image(size: int, data: Path | None) -> np.ndarray:
    """A (size, size, 3) uint8 LR image: a Set5 crop when the data is there, else smooth synthetic content."""
    if data is not None and (data / "Set5" / "HR").is_dir():
        from srkit.io import read_image
        from srkit.ops import imresize_matlab

        hr, _ = read_image(sorted((data / "Set5" / "HR").iterdir())[0])
        lr = imresize_matlab(hr, output_shape=(size, size)) if min(hr.shape[:2]) < size else hr[:size, :size]
        return np.ascontiguousarray(lr[..., :3])
    yy, xx = np.mgrid[0:size, 0:size].astype(np.float32)
    base = 128 + 60 * np.sin(xx / 9.0 + yy / 13.0) + 30 * np.cos(np.hypot(xx - size / 2, yy - size / 3) / 5.0)
    img = np.stack([base, base[::-1], 255 - base], -1) + np.random.default_rng(0).normal(0, 5, (size, size, 3))
    return np.clip(img, 0, 255).astype(np.uint8)


def out_psnr(a: torch.Tensor, ref: torch.Tensor) -> float:
    mse = float(((a.clamp(0, 1) - ref.clamp(0, 1)) ** 2).mean())
    return math.inf if mse == 0 else 10 * math.log10(1.0 / mse)


def set5_delta(model, fast_kwargs: dict, data: Path, scale: int) -> tuple[float, float, float] | None:
    """(mean PSNR fp32 eager, mean PSNR fast path, max |per-image change|) on Set5, or None without the data."""
    from srkit.data.benchmark import modcrop
    from srkit.evaluate import make_lr
    from srkit.infer import Upscaler
    from srkit.io import read_image
    from srkit.metrics import psnr

    hr_dir = data / "Set5" / "HR"
    if not hr_dir.is_dir():
        return None
    ref_up = Upscaler(copy.deepcopy(model), dtype="fp32", channels_last=False, deploy=False)
    fast_up = Upscaler(copy.deepcopy(model), **fast_kwargs)
    a, b = [], []
    for p in sorted(hr_dir.iterdir()):
        if p.suffix.lower() not in (".png", ".bmp", ".jpg", ".tif", ".tiff"):
            continue
        hr, _ = read_image(p)
        hr = modcrop(hr[..., :3] if hr.ndim == 3 else hr, scale)
        lr = make_lr(hr, scale)
        a.append(psnr(ref_up.upscale(lr), hr, border=scale))
        b.append(psnr(fast_up.upscale(lr), hr, border=scale))
    if not a:
        return None
    return statistics.mean(a), statistics.mean(b), max(abs(x - y) for x, y in zip(a, b))


def bench_model(name: str, model, args, data: Path | None) -> None:
    from srkit.infer import Upscaler

    scale = model.info.scale
    lr = test_image(args.size, data)
    x = torch.from_numpy(lr.astype(np.float32) / 255.0).permute(2, 0, 1)[None].contiguous()
    if model.info.in_channels == 1 and model.info.color_space != "y":
        x = x[:, :1]
    out_mp = x.shape[-2] * x.shape[-1] * scale * scale / 1e6

    plain = copy.deepcopy(model).eval()  # NCHW, not deployed, never seen by an Upscaler

    def plain_fn():
        with torch.inference_mode():
            return plain(x).float()

    paths: list[tuple[str, object]] = [("plain fp32 eager", plain_fn)]
    t_build = {}
    for label, kw in [
        ("srkit fp32", dict(dtype="fp32")),
        ("srkit auto", dict(dtype="auto")),
        (f"srkit auto, tile {args.tile}", dict(dtype="auto", tile=args.tile)),
        ("onnxruntime fp32", dict(backend="onnxruntime")),
    ] + ([("srkit auto + compile", dict(dtype="auto", compile=True))] if args.compile else []):
        t = time.perf_counter()
        up = Upscaler(copy.deepcopy(model), **kw)
        t_build[label] = time.perf_counter() - t
        paths.append((f"{label} [{up.settings()['dtype']}]", up.upscale_tensor))
        if label == "srkit auto":
            auto_kwargs = kw

    outputs, times = {}, {label: [] for label, _ in paths}
    for label, fn in paths:  # warm-up (and first-call compilation), not timed
        for _ in range(args.warmup):
            outputs[label] = fn(x) if fn is not plain_fn else fn()
    for _ in range(args.runs):  # interleaved, so load changes hit every path alike
        for label, fn in paths:
            t = time.perf_counter()
            fn(x) if fn is not plain_fn else fn()
            times[label].append(time.perf_counter() - t)
    med = {k: statistics.median(v) for k, v in times.items()}
    ref_label = paths[0][0]
    ort_label = next(k for k in med if k.startswith("onnxruntime"))
    ref = outputs[ref_label]

    print(f"\n{name} x{scale}: LR {x.shape[-1]}x{x.shape[-2]} -> {out_mp:.2f} MP output; "
          f"median of {args.runs} runs; {torch.get_num_threads()} threads")
    print(f"{'path':<34}{'s/image':>9}{'out MP/s':>10}{'vs fp32':>9}{'vs ORT':>8}{'PSNR vs fp32':>14}{'max|diff|':>11}")
    for label, _ in paths:
        y = outputs[label]
        p = out_psnr(y, ref)
        print(f"{label:<34}{med[label]:>9.3f}{out_mp / med[label]:>10.2f}{med[ref_label] / med[label]:>8.2f}x"
              f"{med[ort_label] / med[label]:>7.2f}x{p:>11.1f} dB{float((y - ref).abs().max()):>11.2e}")
    auto_label = next(k for k in med if k.startswith("srkit auto ["))
    print(f"srkit auto vs plain fp32 eager: {med[ref_label] / med[auto_label]:.2f}x (target >= 3); "
          f"vs onnxruntime fp32: {med[ort_label] / med[auto_label]:.2f}x (target >= 1.5)")
    tiled_label = next(k for k in med if k.startswith("srkit auto, tile"))
    from srkit.infer.tiling import plan_tiles

    rf = model.info.receptive_field
    h, w = x.shape[-2:]
    if rf is not None:
        work = sum((t.y1 - t.y0) * (t.x1 - t.x0) for t in plan_tiles(h, w, args.tile, rf)) / (h * w)
        why = f"exact tiles: the model runs on {work:.3f}x the LR pixels (receptive field {rf} px of context)"
    else:
        why = "blended tiles (whole-image receptive field)"
    print(f"srkit auto tiled vs whole image: {med[tiled_label] / med[auto_label]:.2f}x the time (target <= 1.1); "
          f"{why}; max |diff| {float((outputs[tiled_label] - outputs[auto_label]).abs().max()):.2e}")
    print("construction (s): " + ", ".join(f"{k} {v:.1f}" for k, v in t_build.items()))
    if data is not None:
        d = set5_delta(model, auto_kwargs, data, scale)
        if d is None:
            print("Set5: not found under --data; PSNR change skipped")
        else:
            print(f"Set5 PSNR (Y, border {scale}): fp32 {d[0]:.4f} dB, srkit auto {d[1]:.4f} dB, "
                  f"change {d[1] - d[0]:+.4f} dB (largest per image {d[2]:.4f}; target <= 0.02)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=512, help="LR side")
    p.add_argument("--runs", type=int, default=3)
    p.add_argument("--warmup", type=int, default=1)
    p.add_argument("--tile", type=int, default=256, help="LR tile core side of the tiled path")
    p.add_argument("--compile", action="store_true", help="also time srkit auto + torch.compile")
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--data", type=Path, default=None, help="benchmark sets folder [default: $SRKIT_DATA]")
    p.add_argument("--skip-builtin", action="store_true", help="only EDSR-baseline")
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = args.data or (Path(os.environ["SRKIT_DATA"]) if os.environ.get("SRKIT_DATA") else None)

    from srkit.archs import build
    from srkit.infer import cpu_has_fast_bf16
    from srkit.models import builtin_weights, load_model

    print(f"torch {torch.__version__}; CPU fast bf16 (AMX/AVX512-BF16): {cpu_has_fast_bf16()}")
    torch.manual_seed(0)
    bench_model("edsr-baseline (random init)", build("edsr-baseline", scale=4).eval(), args, data)
    shipped = {} if args.skip_builtin else builtin_weights()
    if not shipped:
        print("\n(no shipped models in srkit/weights)")
    for name in shipped:
        bench_model(name, load_model(name), args, data)
    print(f"\npeak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
