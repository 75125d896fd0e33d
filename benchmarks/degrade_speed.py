"""Does on-the-fly degradation keep up with training? Loader pairs/s against trainer samples/s, each measured alone.

    python benchmarks/degrade_speed.py --config configs/real/real-x4.yaml --data ../shared/datasets

1. Loader: the config's training dataset (HR patches degraded per sample by its `data.degradation`) through a
   DataLoader with the config's `data.workers` and batch size, nothing else running: pairs per second.
2. Trainer: the config's network, loss, optimiser, bf16 / channels-last settings, on one fixed batch of the
   config's shape (no data loading at all): optimiser steps per second x batch = samples consumed per second.
The ratio loader / trainer must be >= 2 for data loading never to limit training. For a GAN config the trainer
part times the generator step only (an upper bound on consumption).

    python benchmarks/degrade_speed.py --batch-mode [--presets realesrgan,bsrgan] [--batch 64] [--hr 224]

3. `--batch-mode` (no config or data needed): `on: batch` degradation, `Degradation.training_pair` on a batch of
   RGB HR patches on the CPU (median of `--repeats` after a warm-up), against the per-image path it replaced (kept
   below as `per_image_pair`: every record applied to one image at a time), with the largest LR difference.
"""

from __future__ import annotations

import argparse
import os
import time
from contextlib import nullcontext
from pathlib import Path

import torch


def loader_rate(cfg, batches: int) -> float:
    from torch.utils.data import DataLoader

    from srkit.data.folders import HRFolder, list_images, split_files
    from srkit.degrade.pipeline import Degradation
    from srkit.train.loop import _train_dirs

    d = cfg.data
    files, _ = split_files(list_images(_train_dirs(cfg)), d.val_count, cfg.train.seed)
    deg = Degradation(d.degradation) if d.degradation is not None else None
    color = d.color or "rgb"
    ds = HRFolder(files, scale=cfg.model.scale, patch_size=d.patch_size, color=color, sampler=d.sampler,
                  samples_per_epoch=d.batch_size * (batches + 2), seed=cfg.train.seed, degradation=deg)
    loader = DataLoader(ds, batch_size=d.batch_size, num_workers=d.workers, shuffle=False)
    it = iter(loader)
    next(it)  # workers started, first batch out
    t = time.perf_counter()
    n = 0
    for lr, _ in it:
        n += lr.shape[0]
    return n / (time.perf_counter() - t)


def trainer_rate(cfg, steps: int) -> float:
    from srkit.archs import build
    from srkit.losses import CompositeLoss

    torch.manual_seed(0)
    m = cfg.model
    net = build(m.arch, m.scale, **m.options)
    fmt = torch.channels_last if cfg.train.channels_last else torch.contiguous_format
    net = net.to(memory_format=fmt).train()
    c, p, b = net.info.in_channels, cfg.data.patch_size, cfg.data.batch_size
    lr = torch.rand(b, c, p, p).contiguous(memory_format=fmt)
    hr = torch.rand(b, c, p * m.scale, p * m.scale)
    crit = CompositeLoss(cfg.loss)
    opt = torch.optim.Adam(net.parameters(), lr=1e-4)
    amp = torch.autocast("cpu", dtype=torch.bfloat16) if cfg.train.bf16 else nullcontext()

    def step() -> None:
        with amp:
            sr = net(lr)
        loss, _ = crit(sr.float(), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    for _ in range(3):
        step()
    t = time.perf_counter()
    for _ in range(steps):
        step()
    return steps * b / (time.perf_counter() - t)


def _textured_batch(b: int, side: int, seed: int = 0) -> torch.Tensor:
    """Deterministic photo-like RGB patches: smooth structure plus fine texture (pure noise is no fair JPEG test)."""
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(b, 3, side // 8, side // 8, generator=g)
    x = torch.nn.functional.interpolate(small, size=(side, side), mode="bicubic", align_corners=False)
    return (x + 0.05 * torch.rand(b, 3, side, side, generator=g)).clamp(0, 1)


def per_image_pair(deg, hr: torch.Tensor, scale: int, seed: int) -> torch.Tensor:
    """The LR of `deg.training_pair` as srkit computed it before batching: each image's record applied to that image
    alone, one op function call per step (same records, same op functions)."""
    from srkit.degrade.batch import replay_one_by_one

    gen = torch.Generator().manual_seed(int(seed))
    records = [deg.sample(hr.shape[-2:], scale, gen) for _ in range(hr.shape[0])]
    return torch.cat([replay_one_by_one(hr[i : i + 1], record) for i, record in enumerate(records)], 0)


def batch_mode(presets: list[str], batch: int, side: int, scale: int, repeats: int) -> None:
    import statistics

    from srkit.degrade.pipeline import Degradation

    hr = _textured_batch(batch, side)
    print(f"on: batch degradation, {batch} RGB HR patches of {side}x{side}, x{scale}, CPU, "
          f"torch threads {torch.get_num_threads()}, median of {repeats} after a warm-up")
    for preset in presets:
        deg = Degradation(preset)
        runs = {"batched": lambda s: deg.training_pair(hr, scale, s)[0],
                "per-image": lambda s: per_image_pair(deg, hr, scale, s)}
        times: dict[str, list[float]] = {k: [] for k in runs}
        for name, fn in runs.items():
            fn(0)  # warm-up
        for rep in range(repeats):  # interleaved, so that a change in machine load hits both
            for name, fn in runs.items():
                t = time.perf_counter()
                fn(rep + 1)
                times[name].append(time.perf_counter() - t)
        diff = float((runs["batched"](1) - runs["per-image"](1)).abs().max()) * 255
        new, old = statistics.median(times["batched"]), statistics.median(times["per-image"])
        print(f"{preset:>10}: batched {new:6.3f} s/batch   per-image {old:6.3f} s/batch   x{old / new:4.2f} faster   "
              f"max |LR diff| {diff:.0f}/255")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--config", type=Path, default=Path("configs/real/real-x4.yaml"))
    ap.add_argument("--data", type=Path, default=None, help="datasets folder (default: $SRKIT_DATA)")
    ap.add_argument("--batches", type=int, default=30)
    ap.add_argument("--steps", type=int, default=30)
    ap.add_argument("--batch-mode", action="store_true", help="time on: batch degradation (no config or data needed)")
    ap.add_argument("--presets", default="realesrgan", help="--batch-mode: comma-separated preset names")
    ap.add_argument("--batch", type=int, default=64, help="--batch-mode: images per batch")
    ap.add_argument("--hr", type=int, default=224, help="--batch-mode: HR patch side (px)")
    ap.add_argument("--scale", type=int, default=4, help="--batch-mode: SR factor")
    ap.add_argument("--repeats", type=int, default=5, help="--batch-mode: timed batches per path")
    a = ap.parse_args()
    if a.batch_mode:
        batch_mode(a.presets.split(","), a.batch, a.hr, a.scale, a.repeats)
        return
    from srkit.train.config import load_config

    if a.data is not None:
        os.environ["SRKIT_DATA"] = str(a.data)
    cfg = load_config(a.config)
    print(f"config {a.config}: {cfg.model.arch} {cfg.model.options}, batch {cfg.data.batch_size}, "
          f"LR patch {cfg.data.patch_size}, degradation "
          f"{cfg.data.degradation.preset if cfg.data.degradation else None}, workers {cfg.data.workers}, "
          f"torch threads {torch.get_num_threads()}")
    ld = loader_rate(cfg, a.batches)
    print(f"loader alone:  {ld:7.1f} pairs/s")
    tr = trainer_rate(cfg, a.steps)
    print(f"trainer alone: {tr:7.1f} samples/s ({tr / cfg.data.batch_size:.2f} steps/s x {cfg.data.batch_size})")
    print(f"loader / trainer = {ld / tr:.2f} (must be >= 2)")
    if cfg.gan is not None:
        print("note: the trainer rate is the generator step alone; a GAN step also runs the discriminator, so the "
              "real consumption is lower (see the run's log.csv: steps x batch / seconds)")


if __name__ == "__main__":
    main()
