"""How fast are srkit's no-reference metrics? Milliseconds per 512x512 RGB image, one process, one thread.

    OMP_NUM_THREADS=1 python benchmarks/iqa_speed.py --data ../shared/datasets [--repeats 20]

Images: every Set14 + B100 HR image (or, without --data, seeded synthetic textures), resized to 512x512 with
MATLAB bicubic; each metric is run once on every image (warm-up), then `--repeats` passes over all of them;
the report is the median and the 90th percentile per image, and the folder throughput (all images, one pass).
Each call includes the colour conversion and the model lookup (NIQE's and the KLT index's, cached after the first
call). `--metrics` picks which metrics to time (default: niqe klt).
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

import numpy as np


def load_images(data: Path | None, n_synthetic: int) -> list[np.ndarray]:
    from srkit.ops import imresize_matlab

    images = []
    if data is not None:
        from srkit.cli.iqa import collect_images, read_uint8

        files, _, _ = collect_images([str(data / "Set14" / "HR"), str(data / "B100" / "HR")])
        for f in files:
            img = read_uint8(f)
            if img.ndim == 2:
                img = np.repeat(img[..., None], 3, axis=2)
            images.append(imresize_matlab(img, output_shape=(512, 512)))
    if not images:
        rng = np.random.default_rng(0)
        for _ in range(n_synthetic):
            base = rng.random((40, 40, 3))
            fine = rng.normal(0, 0.04, (512, 512, 3))
            img = imresize_matlab(base, output_shape=(512, 512)) + fine
            images.append(np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8))
    return images


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=None, help="folder holding Set14/HR and B100/HR")
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--params", default="official", help="NIQE model (official, a file, or 'srkit')")
    ap.add_argument("--metrics", nargs="+", default=["niqe", "klt"], choices=["niqe", "klt"])
    args = ap.parse_args()

    from srkit.metrics import klt, load_klt_model, niqe

    params = None if args.params == "srkit" else args.params
    images = load_images(args.data, 20)
    metrics = {"niqe": lambda im: niqe(im, params=params), "klt": klt}
    metrics = {m: metrics[m] for m in args.metrics}
    print(f"{len(images)} images of 512x512 RGB; NIQE model: {args.params}; KLT model: {load_klt_model().name}")
    for name, fn in metrics.items():
        for im in images:
            fn(im)
        per_image = []
        passes = []
        for _ in range(args.repeats):
            t_pass = time.perf_counter()
            for im in images:
                t = time.perf_counter()
                fn(im)
                per_image.append(time.perf_counter() - t)
            passes.append(time.perf_counter() - t_pass)
        per_image.sort()
        p90 = per_image[int(0.9 * (len(per_image) - 1))]
        print(f"{name}: median {1000 * statistics.median(per_image):.1f} ms / image, p90 {1000 * p90:.1f} ms, "
              f"folder {len(images) / statistics.median(passes):.1f} images/s")


if __name__ == "__main__":
    main()
