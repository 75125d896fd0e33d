"""The perception-distortion plane (issue 18): PSNR against NIQE and the KLT index on degraded Set14 + B100.

    python benchmarks/pd_plane.py --data ../shared/datasets --diffusion runs/diffusion-x4/final.safetensors \\
        [--models bicubic balanced-x4 real-x4 real-x4-gan] [--steps 1 4 T] [--limit N] \\
        [--out docs/perception-distortion.png]

Inputs: the HR images of Set14 and B100 degraded by the `realesrgan` preset, degradation seed 0 - the LR images
`srkit eval --degradation realesrgan --degradation-seed 0` and `benchmarks/real_world.py` score
(`srkit.evaluate.degraded_lr`, the same cache). Each model upscales them x4 through the one inference path
(`Upscaler`, dtype "auto": bf16 on a CPU with AVX512-BF16 / AMX) - the diffusion model at each of ``--steps`` with
sampling seed 0 (T = its trained chain when given as "T").

Scores per image, then the mean over all images of both sets (and per set in the table):
- PSNR (Y, border 4, the BasicSR protocol of `srkit eval`): x axis, distortion (higher = more faithful);
- NIQE (Y, border 4; LIVE's official pristine model when `DATA/../reference/niqe_pris_params.npz` exists, as
  `benchmarks/real_world.py`; else srkit's): lower = more natural;
- the KLT index (`srkit.metrics.klt`, srkit's pristine model): lower = more natural;
- seconds per output megapixel of the model call alone (this machine, `--threads` threads), written beside each
  point.

The figure has two panels (NIQE and the KLT index against PSNR): down and to the right is better on both axes.
`--limit N` scores the first N images of each set only (a quick check; the figure says so in its title).
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

MODELS = ("bicubic", "balanced-x4", "real-x4", "real-x4-gan")
SETS = ("Set14", "B100")
PRESET, SEED, SCALE = "realesrgan", 0, 4


@dataclass
class Point:
    """One model (at one step count) on the plane: per-image scores, and its time over output pixels."""

    label: str
    rows: dict[str, list[tuple[float, float, float]]] = field(default_factory=dict)  # set -> (psnr, niqe, klt)
    seconds: float = 0.0
    megapixels: float = 0.0

    def mean(self, set_name: str | None = None) -> np.ndarray:
        rows = self.rows[set_name] if set_name else [r for v in self.rows.values() for r in v]
        return np.mean(np.asarray(rows, dtype=np.float64), axis=0)

    @property
    def s_per_mp(self) -> float:
        return self.seconds / max(self.megapixels, 1e-12)


def degraded_pairs(data: Path, limit: int | None):
    """(set, name, HR uint8, degraded LR uint8) for the images of SETS, the first `limit` of each when given."""
    from srkit.data.benchmark import find_set, modcrop
    from srkit.degrade.pipeline import Degradation
    from srkit.evaluate import _as_uint8, degradation_cache_dir, degraded_lr
    from srkit.io import read_image

    deg = Degradation(PRESET)
    cache = degradation_cache_dir()
    for set_name in SETS:
        paths = find_set(data, set_name).hr_paths()
        for hr_path in paths[:limit] if limit else paths:
            hr = modcrop(_as_uint8(read_image(hr_path)[0]), SCALE)
            yield set_name, hr_path.stem, hr, degraded_lr(hr, deg, SCALE, SEED, set_name, hr_path.stem, cache)


def score(point: Point, up, pairs, niqe_params, inputs: dict | None = None) -> Point:
    from srkit.evaluate import _to_tensor
    from srkit.metrics import klt, niqe, psnr

    for set_name, _, hr, lr in pairs:
        x = _to_tensor(lr)
        t0 = time.perf_counter()
        sr = up.upscale_tensor(x, inputs=inputs, seed=SEED)[0].clamp(0, 1)
        point.seconds += time.perf_counter() - t0
        point.megapixels += sr.shape[-1] * sr.shape[-2] / 1e6
        sr_np = sr.permute(1, 2, 0).numpy()
        sr8 = np.rint(sr_np * 255).astype(np.uint8)
        sr8 = sr8[..., 0] if sr8.shape[2] == 1 else sr8  # gray images stay gray
        point.rows.setdefault(set_name, []).append(
            (psnr(sr_np, hr, border=SCALE), niqe(sr8, crop_border=SCALE, params=niqe_params),
             klt(sr8, crop_border=SCALE)))
    return point


def plot(points: list[Point], out: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(13, 5.5))
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for ax, k, name in ((axes[0], 1, "NIQE"), (axes[1], 2, "KLT index")):
        for i, p in enumerate(points):
            m = p.mean()
            ax.scatter(m[0], m[k], s=60, color=colours[i % len(colours)], label=p.label, zorder=3)
            # labels of nearby points (a model's step counts) staggered vertically
            ax.annotate(f"{p.label}: {p.s_per_mp:.2f} s/MP", (m[0], m[k]), textcoords="offset points",
                        xytext=(6, 4 - 11 * (i % 3)), fontsize=8)
        ax.set_xlabel("PSNR (dB, Y, border 4): higher = less distortion")
        ax.set_ylabel(f"{name}: lower = more natural")
        ax.grid(True, alpha=0.3)
    axes[0].legend(fontsize=8, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, required=True, help="folder holding Set14/ and B100/")
    ap.add_argument("--models", nargs="*", default=list(MODELS), help="non-diffusion models (names or files)")
    ap.add_argument("--diffusion", default=None, help="a diffusion model (name or weights file): one point per step "
                    "count")
    ap.add_argument("--steps", nargs="+", default=["1", "4", "T"], help="the diffusion model's step counts (T: its "
                    "trained chain)")
    ap.add_argument("--limit", type=int, default=None, help="score only the first N images of each set")
    ap.add_argument("--out", type=Path, default=Path("docs/perception-distortion.png"))
    ap.add_argument("--niqe-params", type=Path, default=None,
                    help="NIQE model (default: DATA/../reference/niqe_pris_params.npz if it exists, else srkit's)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--dtype", default="auto")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from srkit.infer import Upscaler
    from srkit.models import load_model

    niqe_params = a.niqe_params
    official = a.data.resolve().parent / "reference" / "niqe_pris_params.npz"
    if niqe_params is None and official.is_file():
        niqe_params = official
    pairs = list(degraded_pairs(a.data, a.limit))
    counts = {s: sum(1 for p in pairs if p[0] == s) for s in SETS}
    points: list[Point] = []
    for name in a.models:
        up = Upscaler(load_model(name, scale=SCALE), dtype=a.dtype)
        points.append(score(Point(str(name)), up, pairs, niqe_params))
        print(f"{name}: {points[-1].mean().round(4).tolist()} {points[-1].s_per_mp:.2f} s/MP", flush=True)
    if a.diffusion:
        model = load_model(a.diffusion)
        up = Upscaler(model, dtype=a.dtype)
        label = Path(str(a.diffusion)).stem if Path(str(a.diffusion)).suffix else str(a.diffusion)
        if label in ("final", "best"):
            label = Path(str(a.diffusion)).parent.name or label
        chain = int(getattr(model.module, "timesteps", 15))
        for s in a.steps:
            n = chain if s.upper() == "T" else int(s)
            points.append(score(Point(f"{label} {n} step{'s' if n > 1 else ''}"), up, pairs, niqe_params,
                                {"steps": n}))
            print(f"{points[-1].label}: {points[-1].mean().round(4).tolist()} {points[-1].s_per_mp:.2f} s/MP",
                  flush=True)
    print()
    print("| model | PSNR | NIQE | KLT | s/MP | " + " | ".join(f"{s} PSNR / NIQE / KLT" for s in SETS) + " |")
    print("| --- | --- | --- | --- | --- |" + " --- |" * len(SETS))
    for p in points:
        m = p.mean()
        per_set = " | ".join("{:.4f} / {:.3f} / {:.3f}".format(*p.mean(s)) for s in SETS if s in p.rows)
        print(f"| {p.label} | {m[0]:.4f} | {m[1]:.3f} | {m[2]:.3f} | {p.s_per_mp:.2f} | {per_set} |")
    what = ", ".join(f"{s} ({counts[s]} images)" for s in SETS)
    title = (f"Perception-distortion plane: x4 of {what} degraded by the {PRESET} preset (seed {SEED})"
             + (f", first {a.limit} images per set only" if a.limit else "")
             + f"\nNIQE: {'LIVE official' if niqe_params else 'srkit'} pristine model; KLT index: srkit's; "
             f"s/MP: seconds per output megapixel of the model call on {a.threads} CPU threads")
    plot(points, a.out, title)
    print(f"figure: {a.out}")


if __name__ == "__main__":
    main()
