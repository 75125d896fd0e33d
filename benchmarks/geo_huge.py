"""A huge synthetic GeoTIFF through `srkit upscale`: peak RSS (/usr/bin/time -v), time, georeferencing check.

Not a test. Makes (once, in a child process) a --size x --size 4-band uint16 GeoTIFF (UTM, 10 m pixels,
nodata 0 along a border, tiled 512, --compress), then runs `python -m srkit upscale` on it under
`/usr/bin/time -v` and reports the child's peak RSS ("Maximum resident set size"), the wall time and whether the
output is georeferenced right (pixel (i, j) of the output at the map coordinate of pixel (i/s, j/s) of the input,
CRS and nodata kept).

The target (issue 14): 20000 x 20000 x 4 bands x2 in < 2 GB peak RSS:

    python benchmarks/geo_huge.py --size 20000 --scale 2 --model tiny-x2 --out /tmp/srkit_geo

(~3.2 GB of input pixels, 12.8 GB of output pixels before compression: needs that much free disk with
--compress none). Measured: peak RSS 1,009 MB, 892 s with --threads 1 (output 8.02 GB, georeferencing ok).
Shorter runs with the same code path, measured here with one thread (OMP_NUM_THREADS=1, deflate, tiny-x2, tile auto):

    --size 1000                 1000x1000      peak RSS 776 MB   9.6 s
    --size 4000                 4000x4000      peak RSS 807 MB   57 s
    --size 20000 --height 1200  20000x1200     peak RSS 801 MB   62 s   (full width: the GDAL cache is full)

Memory is bounded by the windows (about 1024 x 1024 output pixels x bands) and GDAL's block cache (256 MB), not by
the scene's size.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path


def make_input(path: Path, size: int, height: int, compress: str) -> None:
    """A size (wide) x height 4-band uint16 GeoTIFF, written in 512-row windows (bounded memory)."""
    import numpy as np
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    rng = np.random.default_rng(0)
    x = np.arange(size, dtype=np.float32)
    profile = dict(driver="GTiff", width=size, height=height, count=4, dtype="uint16", crs="EPSG:32633",
                   transform=from_origin(500000.0, 4200000.0, 10.0, 10.0), nodata=0, tiled=True, blockxsize=512,
                   blockysize=512, BIGTIFF="YES")
    if compress != "none":
        profile.update(compress=compress, predictor=2)
    tmp = path.with_name(f".{path.name}.tmp")
    with rasterio.open(tmp, "w", **profile) as ds:
        for y0 in range(0, height, 512):
            y = np.arange(y0, min(y0 + 512, height), dtype=np.float32)[:, None]
            ring = np.hypot(x[None, :] - size / 2, y - size / 3)
            base = 2000 + 800 * np.sin(x[None, :] / 97.0 + y / 61.0) + 500 * np.cos(ring / 23.0)
            bands = [base, base[:, ::-1], 4000 - base, 1500 + 0.5 * base]
            block = np.stack(bands) + rng.normal(0, 40, (4, len(y), size))
            block = np.clip(block, 1, 65535).astype(np.uint16)
            block[:, :, : size // 50] = 0  # a nodata strip along the west edge
            ds.write(block, window=Window(0, y0, size, len(y)))
    os.replace(tmp, path)


def check_georeferencing(src: Path, dst: Path, s: int) -> str:
    import rasterio

    with rasterio.open(src) as a, rasterio.open(dst) as b:
        ok = b.crs == a.crs and b.nodata == a.nodata and (b.width, b.height) == (a.width * s, a.height * s)
        for i, j in [(0, 0), (b.height - 1, b.width - 1), (b.height // 3, b.width // 7)]:
            bx, by = b.transform @ (j, i)
            ax, ay = a.transform @ (j / s, i / s)
            ok = ok and abs(bx - ax) < 1e-6 and abs(by - ay) < 1e-6
        return "ok" if ok else "WRONG"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--size", type=int, default=20000, help="LR width (and height, unless --height)")
    p.add_argument("--height", type=int, default=None, help="LR height (default --size): a full-width stripe of a "
                   "big scene shows the same peak memory in a fraction of the time")
    p.add_argument("--scale", type=int, default=2)
    p.add_argument("--model", default="tiny-x2")
    p.add_argument("--tile", default="auto", help="srkit upscale --tile")
    p.add_argument("--compress", default="deflate", help="input (and so output) compression: deflate, lzw, none")
    p.add_argument("--out", type=Path, default=Path("/tmp/srkit_geo"))
    p.add_argument("--threads", type=int, default=0, help="OMP_NUM_THREADS for the upscale (0: unset)")
    p.add_argument("--cog", action="store_true", help="write a COG with overviews")
    p.add_argument("--keep", action="store_true", help="keep the output file")
    p.add_argument("--make-input", type=Path, default=None, help=argparse.SUPPRESS)
    args = p.parse_args()
    height = args.height or args.size
    if args.make_input is not None:
        make_input(args.make_input, args.size, height, args.compress)
        return

    args.out.mkdir(parents=True, exist_ok=True)
    name = f"{args.size}x{height}"
    src = args.out / f"scene_{name}_{args.compress}.tif"
    if not src.exists():
        t = time.perf_counter()
        subprocess.run([sys.executable, __file__, "--size", str(args.size), "--height", str(height), "--compress",
                        args.compress, "--make-input", str(src)], check=True)
        print(f"made {src} ({src.stat().st_size / 1e6:.0f} MB) in {time.perf_counter() - t:.1f} s")
    dst = args.out / f"scene_{name}_x{args.scale}.tif"
    cmd = ["/usr/bin/time", "-v", sys.executable, "-m", "srkit", "upscale", str(src), "-o", str(dst),
           "--model", args.model, "--scale", str(args.scale), "--tile", args.tile, "--overwrite"]
    if args.cog:
        cmd.append("--cog")
    env = dict(os.environ)
    if args.threads:
        env["OMP_NUM_THREADS"] = str(args.threads)
    t = time.perf_counter()
    r = subprocess.run(cmd, capture_output=True, text=True, env=env)
    wall = time.perf_counter() - t
    if r.returncode != 0:
        sys.exit(f"srkit upscale failed ({r.returncode}):\n{r.stdout}\n{r.stderr}")
    peak_kb = int(re.search(r"Maximum resident set size \(kbytes\): (\d+)", r.stderr).group(1))  # type: ignore
    geo = check_georeferencing(src, dst, args.scale)
    print(f"{name} x4 bands uint16 -> {args.size * args.scale}x{height * args.scale} with "
          f"{args.model} (x{args.scale}, tile {args.tile}, {args.compress}{', COG' if args.cog else ''}); "
          f"output {dst.stat().st_size / 1e9:.2f} GB")
    print(f"peak RSS: {peak_kb / 1024:.0f} MB; wall: {wall:.1f} s "
          f"({args.size * height * args.scale**2 * 4 / 1e6 / wall:.1f} output Mpx-bands/s); georeferencing: {geo}")
    if not args.keep:
        dst.unlink()


if __name__ == "__main__":
    main()
