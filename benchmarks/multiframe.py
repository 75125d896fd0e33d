"""Multi-frame SR on synthetic clips: a multi-frame model against single-frame models and bicubic.

Not a test. For every image of the sets (default Set14 and B100), a test clip is made with the training procedure
(`srkit.data.clips.benchmark_clip`: --frames frames, each the image through a small random affine motion, degraded
on its own by the --degradation preset; the clip is fixed by (--seed, set, image name), the largest window the
motion allows), and every model upscales it through the one inference path (`srkit.infer.clips.run_clip`: a
multi-frame model sees the whole clip, a single-frame model each frame on its own; bicubic is MATLAB's). Printed:
PSNR / SSIM on Y (border = scale, `srkit.metrics`, as `srkit eval`) of the centre frame - the reference frame,
an exact crop of the image - and the means over all frames, per set, then each model's cost and its gain over
the first single-frame model.

    SRKIT_DATA=../shared/datasets python benchmarks/multiframe.py --models runs/video-x4/best.safetensors \\
        runs/video-x4-single/best.safetensors
    python benchmarks/multiframe.py --data ../shared/datasets --models video-x4 --limit 5   # a quick look

--seams N also measures, for each multi-frame model, how far the engine's windows (`ModelInfo.frames` output
frames, `frame_context` frames of context each side) are from one run over a whole N-frame clip (made the same
way from the first image of the first set, without acceleration so that the motion stays on the image): PSNR of
the windowed frames against the whole-clip frames (8-bit, RGB), the lowest frame, and the largest difference.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np
import torch


def clips_of(data: Path, set_name: str, scale: int, frames: int, seed: int, degradation: str, limit: int | None):
    """(name, lr (T, 3, h, w), hr (T, 3, H, W)) of every image of a set."""
    from srkit.data.benchmark import find_set, modcrop
    from srkit.data.clips import ClipCfg, benchmark_clip
    from srkit.data.folders import read_rgb8
    from srkit.degrade.pipeline import Degradation, image_seed

    deg = Degradation(degradation)
    cfg = ClipCfg(frames=frames)
    for path in find_set(data, set_name).hr_paths()[:limit]:
        hr = modcrop(read_rgb8(path), scale)
        lr_clip, hr_clip = benchmark_clip(hr, scale=scale, seed=image_seed(seed, set_name, path.stem), cfg=cfg,
                                          degradation=deg)
        yield path.stem, lr_clip, hr_clip


def score(sr: torch.Tensor, hr: torch.Tensor, scale: int) -> tuple[float, float, float, float]:
    """(centre PSNR, centre SSIM, mean PSNR, mean SSIM) of (T, C, H, W) frames, Y, border = scale."""
    from srkit.metrics import psnr, ssim

    c = sr.shape[0] // 2
    p = [psnr(s, h, border=scale, y_channel=True) for s, h in zip(sr, hr)]
    q = [ssim(s, h, border=scale, y_channel=True) for s, h in zip(sr, hr)]
    return p[c], q[c], float(np.mean(p)), float(np.mean(q))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--data", type=Path, default=os.environ.get("SRKIT_DATA"), help="folder of the sets "
                    "[$SRKIT_DATA]")
    ap.add_argument("--models", nargs="+", required=True, help="weights files or shipped names (multi-frame and "
                    "single-frame alike); bicubic is always added")
    ap.add_argument("--sets", nargs="+", default=["Set14", "B100"])
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--frames", type=int, default=7)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--degradation", default="video", help="degradation preset of every frame [video]")
    ap.add_argument("--limit", type=int, default=None, help="first N images of each set")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="fp32", choices=["fp32", "bf16"])
    ap.add_argument("--seams", type=int, default=0, metavar="N", help="also measure windowed against whole on an "
                    "N-frame clip (0: no)")
    args = ap.parse_args()
    if args.data is None:
        ap.error("--data or SRKIT_DATA is needed")
    torch.set_num_threads(args.threads)

    from srkit.archs.profile import macs_per_lr_pixel
    from srkit.infer import Upscaler
    from srkit.infer.clips import run_clip
    from srkit.models import load_model

    models = [(str(m), load_model(m, scale=args.scale)) for m in args.models]
    models.append(("bicubic", load_model("bicubic", scale=args.scale)))
    ups = [(name, Upscaler(m, dtype=args.dtype)) for name, m in models]
    labels = [f"{Path(name).parent.name}/{Path(name).stem}" if name.endswith(".safetensors") else name
              for name, _ in models]
    print(f"x{args.scale}, {args.frames}-frame clips (seed {args.seed}, degradation {args.degradation}), "
          f"{args.dtype}, {args.threads} threads; PSNR dB / SSIM on Y, border {args.scale}")
    for label, (_, m) in zip(labels, models):
        kind = f"multi-frame (window {m.info.frames}, context {m.info.frame_context})" if m.info.multi_frame \
            else "single-frame"
        macs = 0.0 if m.info.arch == "bicubic" else macs_per_lr_pixel(m) / args.scale**2
        print(f"  {label}: {m.info.name}, {kind}, {macs:,.0f} MACs per output pixel")
    rows: dict[tuple[str, str], list[tuple[float, float, float, float]]] = {}
    seconds = {label: 0.0 for label in labels}
    for set_name in args.sets:
        for _, lr, hr in clips_of(args.data, set_name, args.scale, args.frames, args.seed, args.degradation,
                                  args.limit):
            for label, (_, up) in zip(labels, ups):
                t0 = time.perf_counter()
                sr = run_clip(up, lr, up.request())
                seconds[label] += time.perf_counter() - t0
                rows.setdefault((set_name, label), []).append(score(sr, hr, args.scale))
    width = max(len(label) for label in labels)
    print()
    print(f"| set | {'model':{width}s} | centre PSNR | centre SSIM | mean PSNR | mean SSIM |")
    print(f"| --- | {'-' * width} | --- | --- | --- | --- |")
    for set_name in args.sets:
        for label in labels:
            r = np.mean(rows[(set_name, label)], axis=0)
            print(f"| {set_name} | {label:{width}s} | {r[0]:.4f} | {r[1]:.4f} | {r[2]:.4f} | {r[3]:.4f} |")
    multi = [label for label, (_, m) in zip(labels, models) if m.info.multi_frame]
    single = [label for label, (_, m) in zip(labels, models) if not m.info.multi_frame and m.info.arch != "bicubic"]
    if multi and single:
        print()
        for set_name in args.sets:
            base = np.mean(rows[(set_name, single[0])], axis=0)
            for label in multi:
                r = np.mean(rows[(set_name, label)], axis=0)
                print(f"{set_name}: {label} - {single[0]} = {r[0] - base[0]:+.4f} dB (centre frame), "
                      f"{r[2] - base[2]:+.4f} dB (mean over frames)")
    print()
    print("seconds: " + ", ".join(f"{label} {s:.1f}" for label, s in seconds.items()))
    if args.seams:
        for label, (_, up) in zip(labels, ups):
            if up.model.info.multi_frame:
                seams(args, label, up)


def seams(args, label: str, up) -> None:
    """Windowed (the model's window and context) against one window over a whole --seams-frame clip."""
    from srkit.data.benchmark import find_set, modcrop
    from srkit.data.clips import ClipCfg, benchmark_clip
    from srkit.data.folders import read_rgb8
    from srkit.degrade.pipeline import Degradation
    from srkit.infer.clips import run_clip, upscale_clip

    path = find_set(args.data, args.sets[0]).hr_paths()[0]
    cfg = ClipCfg(frames=args.seams, accel=0.0)
    lr, _ = benchmark_clip(modcrop(read_rgb8(path), args.scale), scale=args.scale, seed=args.seed, cfg=cfg,
                           degradation=Degradation(args.degradation))
    frames = (lr.permute(0, 2, 3, 1).numpy() * 255).round().astype(np.uint8)
    whole = (run_clip(up, lr, up.request()).permute(0, 2, 3, 1).numpy() * 255).round()
    windowed = upscale_clip(up, frames).astype(np.float64)
    mse = ((windowed - whole) ** 2).reshape(len(frames), -1).mean(axis=1)
    psnr = 10 * np.log10(255.0**2 / np.maximum(mse, 1e-12))
    info = up.model.info
    print(f"{label}: {args.seams}-frame clip of {path.stem} ({frames.shape[2]}x{frames.shape[1]} LR), windows of "
          f"{info.frames} + {info.frame_context} context each side against one window: PSNR "
          f"{10 * np.log10(255.0**2 / max(float(mse.mean()), 1e-12)):.2f} dB (lowest frame {psnr.min():.2f} dB), "
          f"largest difference {np.abs(windowed - whole).max():.0f} levels")


if __name__ == "__main__":
    main()
