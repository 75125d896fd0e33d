"""Upscale a huge synthetic image into a tiled BigTIFF with `srkit.infer.streaming` and report time and peak RSS.

Not a test. Makes (once, in a child process, so its memory is not counted) an uncompressed RGB TIFF of
--size x --size with smooth gradients, ripples and noise, then streams it through the model into
<out>/huge_x<s>.tif. Peak RSS is the process's `ru_maxrss`; for an outside view run it under `/usr/bin/time -v`:

    /usr/bin/time -v python benchmarks/huge_image.py --size 8000 --scale 4 --model fsrcnn-s --out /tmp/huge

The target (issue 5): x4 of 8000 x 8000 into a 32000 x 32000 TIFF in < 2 GB RSS. The output is ~3 GB
uncompressed; --compression zlib makes it smaller and the run slower.
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import time
from pathlib import Path


def make_input(path: Path, size: int) -> None:
    """Write a size x size uint8 RGB TIFF, uncompressed and contiguous (memory-mappable), in 256-row blocks."""
    import numpy as np
    import tifffile

    rng = np.random.default_rng(0)
    x = np.arange(size, dtype=np.float32)

    def rows():
        for y0 in range(0, size, 256):
            y = np.arange(y0, min(y0 + 256, size), dtype=np.float32)[:, None]
            ring = np.hypot(x[None, :] - size / 2, y - size / 3)
            base = 128 + 60 * np.sin(x[None, :] / 97.0 + y / 61.0) + 40 * np.cos(ring / 23.0)
            block = np.stack([base, base[:, ::-1], 255 - base], axis=-1) + rng.normal(0, 6, (len(y), size, 3))
            yield from np.clip(block, 0, 255).astype(np.uint8)

    tmp = path.with_name(f".{path.name}.tmp")
    with tifffile.TiffWriter(tmp, bigtiff=size * size * 3 > 2**31) as tw:
        tw.write(data=rows(), shape=(size, size, 3), dtype=np.uint8, photometric="rgb", metadata=None,
                 rowsperstrip=256, resolution=(72.0, 72.0), resolutionunit="INCH")
    os.replace(tmp, path)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=8000, help="LR side (square)")
    p.add_argument("--scale", type=int, default=4)
    p.add_argument("--model", default="fsrcnn-s", help="architecture (random init) or any load_model name")
    p.add_argument("--out", type=Path, default=Path("/tmp/srkit_huge"))
    p.add_argument("--dtype", default="auto")
    p.add_argument("--tile", default="512", help="Upscaler tile side within a strip (int, auto or none)")
    p.add_argument("--strip-rows", type=int, default=None)
    p.add_argument("--compression", default=None)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--keep", action="store_true", help="keep the output file")
    p.add_argument("--make-input", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    if args.make_input is not None:
        make_input(args.make_input, args.size)
        return

    args.out.mkdir(parents=True, exist_ok=True)
    src = args.out / f"synthetic_{args.size}.tif"
    if not src.exists():
        t = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--size", str(args.size), "--make-input", str(src)], check=True)
        print(f"made {src} ({src.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")

    import torch

    from srkit.archs import ARCHS, build
    from srkit.infer import Upscaler
    from srkit.infer.streaming import upscale_tiff_streaming
    from srkit.models import load_model

    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = build(args.model, scale=args.scale) if args.model in ARCHS else load_model(args.model, scale=args.scale)
    tile = None if args.tile == "none" else args.tile if args.tile == "auto" else int(args.tile)
    up = Upscaler(model.eval(), dtype=args.dtype, tile=tile)
    rss0 = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    dst = args.out / f"huge_x{args.scale}.tif"
    rep = upscale_tiff_streaming(src, dst, up, strip_rows=args.strip_rows, compression=args.compression)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    size = dst.stat().st_size
    h, w = rep["shape"][:2]
    print(f"model {args.model} x{args.scale} ({up.settings()['dtype']}, tile {args.tile}); "
          f"input {args.size}x{args.size} -> output {w}x{h} BigTIFF, {size / 1e9:.2f} GB")
    print(f"strips: {rep['strips']} x {rep['strip_rows']} LR rows (+{rep['context']} context); "
          f"lazy (memory-mapped) input: {rep['lazy_input']}")
    print(f"time: {rep['seconds']:.1f} s ({w * h / 1e6 / rep['seconds']:.1f} output MP/s)")
    print(f"peak RSS: {peak:.0f} MB (after model load: {rss0:.0f} MB)")
    if not args.keep:
        dst.unlink()


if __name__ == "__main__":
    main()
