"""Benchmark evaluation: PSNR/SSIM of a model on benchmark sets, by the protocol SR papers use.

For each set and scale: HR is cropped to a multiple of the scale (modcrop), LR is made from it with MATLAB bicubic
(`imresize_matlab`, modern convention), read from `LR_bicubic/X<s>/` (`lr_from_disk`) or made by a degradation
pipeline (`degradation`, seeded per image and cached on disk, so every model and run sees the same LR); the model
upscales LR, and the result is scored on the Y channel with `border = scale` (see `srkit.metrics`). Scores are
per image, then averaged over the set. `evaluate_paired` scores real LR/HR pairs (`DIR/LR`, `DIR/HR`).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from srkit.data.benchmark import BenchmarkSet, find_set, modcrop
from srkit.errors import DatasetError, ModelLoadError
from srkit.infer import Upscaler
from srkit.infer.network import DtypePolicy
from srkit.io import read_image
from srkit.metrics import METRICS
from srkit.models import SRModel, load_model
from srkit.ops import imresize_matlab


@dataclass(frozen=True)
class ImageRow:
    set: str
    scale: int
    image: str
    scores: dict[str, float]
    seconds: float

    def as_dict(self) -> dict:
        d = asdict(self)
        return {"set": d["set"], "scale": d["scale"], "image": d["image"], **d["scores"], "seconds": d["seconds"]}


@dataclass(frozen=True)
class SummaryRow:
    set: str
    scale: int
    scores: dict[str, float]
    images: int
    seconds_per_image: float

    def as_dict(self) -> dict:
        return {
            "set": self.set,
            "scale": self.scale,
            **self.scores,
            "images": self.images,
            "seconds_per_image": self.seconds_per_image,
        }


@dataclass(frozen=True)
class EvalReport:
    model: str
    lr_source: str
    summary: list[SummaryRow]
    images: list[ImageRow]

    def as_dict(self) -> dict:
        return {
            "model": self.model,
            "lr_source": self.lr_source,
            "summary": [r.as_dict() for r in self.summary],
            "images": [r.as_dict() for r in self.images],
        }


def _as_uint8(image: np.ndarray) -> np.ndarray:
    """Drop alpha and bring any bit depth to uint8 (benchmarks are scored on 8-bit images)."""
    from srkit.io.uint8 import as_uint8_image

    return as_uint8_image(image)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    x = image.astype(np.float32) / 255.0
    if x.ndim == 2:
        x = x[..., None]
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB `imresize(modcrop(hr, s), 1/s, 'bicubic')` with today's (mirror-boundary) rules; uint8 in and out."""
    return imresize_matlab(modcrop(hr, scale), 1.0 / scale, convention="modern")


def degradation_cache_dir() -> Path:
    """Where degraded benchmark LR images are kept: ``<cache>/degraded``, the cache being ``$SRKIT_CACHE`` or the
    platform's cache folder (``~/.cache/srkit`` on Linux; `srkit.catalog.cache_dir`)."""
    from srkit.catalog import cache_dir

    return cache_dir() / "degraded"


def degraded_lr(hr: np.ndarray, degradation, scale: int, seed: int, set_name: str, image: str,
                cache: Path | None) -> np.ndarray:
    """The degraded LR of one benchmark image: seeded by (seed, set, image, scale), cached as PNG under ``cache``.

    The cache key holds the pipeline's full step list, so a changed preset never serves stale images; a cached
    file is written atomically and read back instead of degrading again.
    """
    from srkit.degrade.pipeline import degrade_image, image_seed
    from srkit.io import write_image

    path = None
    if cache is not None:
        steps = [st.model_dump() for st in degradation.steps]
        key = hashlib.sha256(json.dumps([steps, seed, scale], sort_keys=True).encode()).hexdigest()[:16]
        name = degradation.cfg.preset or "steps"
        path = cache / f"{name}-s{seed}-x{scale}-{key}" / set_name / f"{image}.png"
        if path.is_file():
            return _as_uint8(read_image(path)[0])
    rgb = hr if hr.ndim == 3 else np.repeat(hr[..., None], 3, axis=2)
    lr, _ = degrade_image(rgb, degradation, scale, image_seed(seed, set_name, image, scale))
    if hr.ndim == 2:
        lr = lr[..., 0]
    if path is not None:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_image(path, lr)
    return lr


def _disk_lr(bench: BenchmarkSet, hr_path: Path, hr: np.ndarray, scale: int) -> np.ndarray:
    lr_path = bench.lr_path(hr_path, scale)
    if not lr_path.is_file():
        raise DatasetError(f"missing LR image {str(lr_path)!r} (drop --lr-from-disk to make LR)")
    return _fit_lr(_as_uint8(read_image(lr_path)[0]), hr, scale, lr_path.name)


def _fit_lr(lr: np.ndarray, hr: np.ndarray, scale: int, name: str) -> np.ndarray:
    """Check an LR image's size against its (modcropped) HR and match its channel layout."""
    if lr.shape[:2] != (hr.shape[0] // scale, hr.shape[1] // scale):
        raise DatasetError(
            f"{name}: LR is {lr.shape[1]}x{lr.shape[0]}, expected "
            f"{hr.shape[1] // scale}x{hr.shape[0] // scale} for x{scale}"
        )
    if lr.ndim != hr.ndim:  # e.g. a gray LR stored for an RGB HR, or the reverse
        lr = np.repeat(lr[..., None], 3, axis=2) if lr.ndim == 2 else lr[..., 0]
    return lr


def _score(upscaler: Upscaler, lr: np.ndarray, hr: np.ndarray, scale: int, metrics: Sequence[str],
           y_channel: bool, set_name: str, image: str, options: Mapping[str, dict] | None = None) -> ImageRow:
    t0 = time.perf_counter()
    # seed 0: a stochastic model (a diffusion sampler) is scored on a reproducible sample; others ignore it
    sr = upscaler.upscale_tensor(_to_tensor(lr), seed=0)[0]
    seconds = time.perf_counter() - t0
    sr_arr = sr.clamp(0, 1).permute(1, 2, 0).numpy()
    opts = options or {}
    scores = {m: METRICS[m].fn(sr_arr, hr, border=scale, y_channel=y_channel, **opts.get(m, {}))
              if METRICS[m].needs_reference else METRICS[m].fn(sr_arr, crop_border=scale, **opts.get(m, {}))
              for m in metrics}
    return ImageRow(set_name, scale, image, scores, seconds)


def _summarise(rows: Sequence[ImageRow], set_name: str, scale: int, metrics: Sequence[str]) -> SummaryRow:
    mean = {m: float(np.mean([r.scores[m] for r in rows])) for m in metrics}
    return SummaryRow(set_name, scale, mean, len(rows), float(np.mean([r.seconds for r in rows])))


def _check_metrics(metrics: Sequence[str], options: Mapping[str, dict] | None = None) -> None:
    """Unknown names, options for metrics not asked for, and each metric's own check (with its options)."""
    from srkit.errors import ConfigError

    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ConfigError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
    stray = [m for m in (options or {}) if m not in metrics]
    if stray:
        raise ConfigError(f"options given for metric(s) not computed: {', '.join(stray)}")
    for m in metrics:
        check = METRICS[m].check
        if check is not None:
            check(**(options or {}).get(m, {}))


def _model_for_scale(model: str | Path | SRModel, scale: int) -> SRModel:
    if isinstance(model, SRModel):
        if model.info.scale != scale:
            raise ModelLoadError(f"model {model.info.name} is x{model.info.scale}; it cannot be evaluated at x{scale}")
        return model
    return load_model(model, scale=scale)


def evaluate(
    model: str | Path | SRModel,
    data_dir: str | Path,
    sets: Sequence[str] = ("Set5", "Set14", "B100"),
    scales: Sequence[int] = (2, 3, 4),
    *,
    metrics: Sequence[str] = ("psnr", "ssim"),
    metric_options: Mapping[str, dict] | None = None,
    lr_from_disk: bool = False,
    y_channel: bool = True,
    device: str = "cpu",
    dtype: DtypePolicy = "fp32",
    on_image: Callable[[ImageRow], None] | None = None,
    degradation: str | Mapping | None = None,
    degradation_seed: int = 0,
    cache: Path | None | bool = True,
) -> EvalReport:
    """Score a model on benchmark sets.

    Args:
        model: model name/path (loaded once per scale) or an `SRModel` (its scale must be in `scales`).
        data_dir: folder holding `<Set>/HR/*.png`.
        sets, scales: which sets and scale factors to run.
        metrics: names from `srkit.metrics.METRICS`.
        metric_options: extra keyword arguments per metric, e.g. ``{"lpips": {"net": "vgg", "backbone": PATH}}``.
        lr_from_disk: read `LR_bicubic/X<s>/<name>x<s>.png` instead of making LR with `imresize_matlab`.
        y_channel: score luma (papers) or all RGB channels.
        device, dtype: passed to `Upscaler`.
        on_image: called after each image (progress reporting).
        degradation: make LR with this pipeline (a preset name such as ``realesrgan``, or a mapping) instead of
            bicubic; each image seeded by ``(degradation_seed, set, image, scale)``.
        degradation_seed: see ``degradation``.
        cache: folder for the degraded LR images (``True``: :func:`degradation_cache_dir`; ``False``/``None``:
            degrade in memory every time - same pixels, slower).

    Returns:
        `EvalReport` with one summary row per (set, scale) and one row per image.

    Raises:
        DatasetError: a set or an LR file is missing or does not fit its HR image.
        ModelLoadError: the model cannot be loaded at a requested scale.
        srkit.errors.ConfigError: unknown metric name.
    """
    from srkit.errors import ConfigError

    _check_metrics(metrics, metric_options)
    if degradation is not None and lr_from_disk:
        raise ConfigError("lr_from_disk and degradation exclude each other")
    deg = None
    if degradation is not None:
        from srkit.degrade.pipeline import Degradation

        deg = Degradation(degradation)
    cache_dir = degradation_cache_dir() if cache is True else (cache or None)
    benches: list[BenchmarkSet] = [find_set(data_dir, s) for s in sets]
    summary: list[SummaryRow] = []
    rows: list[ImageRow] = []
    name = model.info.arch if isinstance(model, SRModel) else str(model)
    for scale in scales:
        upscaler = Upscaler(_model_for_scale(model, scale), device=device, dtype=dtype)
        for bench in benches:
            set_rows = []
            for hr_path in bench.hr_paths():
                hr = modcrop(_as_uint8(read_image(hr_path)[0]), scale)
                if lr_from_disk:
                    lr = _disk_lr(bench, hr_path, hr, scale)
                elif deg is not None:
                    lr = degraded_lr(hr, deg, scale, degradation_seed, bench.name, hr_path.stem, cache_dir)
                else:
                    lr = make_lr(hr, scale)
                row = _score(upscaler, lr, hr, scale, metrics, y_channel, bench.name, hr_path.stem, metric_options)
                set_rows.append(row)
                if on_image is not None:
                    on_image(row)
            rows.extend(set_rows)
            summary.append(_summarise(set_rows, bench.name, scale, metrics))
    source = "disk" if lr_from_disk else "imresize_matlab(modern)"
    if deg is not None:
        source = f"degradation {deg.cfg.preset or 'steps'}, seed {degradation_seed}"
    return EvalReport(name, source, summary, rows)


def paired_images(pair_dir: str | Path) -> list[tuple[Path, Path]]:
    """(LR, HR) file pairs of ``pair_dir/LR`` and ``pair_dir/HR``, matched by name (``imgx4`` matches ``img``).

    Raises:
        DatasetError: a missing folder, no pairs, or an image in one folder without a partner in the other.
    """
    from srkit.data.folders import list_images

    root = Path(pair_dir)
    for sub in ("LR", "HR"):
        if not (root / sub).is_dir():
            raise DatasetError(f"{str(root / sub)!r} is not a folder (paired data is DIR/LR and DIR/HR)")
    hrs = {p.stem: p for p in list_images(root / "HR")}
    pairs, unmatched = [], []
    for lr in list_images(root / "LR"):
        stem = lr.stem
        key = next((stem[: -len(t)] for t in ("_LR", "_lr", "LR") if stem.endswith(t) and stem[: -len(t)] in hrs),
                   None)
        if key is None and stem not in hrs:
            import re

            m = re.fullmatch(r"(.*?)[_-]?x\d+", stem)
            key = m.group(1) if m and m.group(1) in hrs else None
        key = key or stem
        if key in hrs:
            pairs.append((lr, hrs.pop(key)))
        else:
            unmatched.append(lr.name)
    if unmatched or hrs:
        left = unmatched + [p.name for p in hrs.values()]
        raise DatasetError(f"{len(left)} image(s) without a partner in {str(root)!r}: {', '.join(sorted(left)[:5])}")
    if not pairs:
        raise DatasetError(f"no LR/HR pairs in {str(root)!r}")
    return pairs


def evaluate_paired(
    model: str | Path | SRModel,
    pair_dir: str | Path,
    *,
    metrics: Sequence[str] = ("psnr", "ssim"),
    metric_options: Mapping[str, dict] | None = None,
    y_channel: bool = True,
    device: str = "cpu",
    dtype: DtypePolicy = "fp32",
    on_image: Callable[[ImageRow], None] | None = None,
) -> EvalReport:
    """Score a model on real LR/HR pairs (``pair_dir/LR``, ``pair_dir/HR``), e.g. RealSR or DRealSR.

    The scale is read from the images (HR size // LR size, the same for every pair); HR is modcropped to
    ``LR size * scale``; scores use ``border = scale`` as for benchmarks.

    Raises:
        DatasetError: bad layout, unmatched names, or a pair whose sizes are not an integer ratio (or differ from
            the other pairs' scale).
        ModelLoadError: the model is not of that scale.
    """
    _check_metrics(metrics, metric_options)
    pairs = paired_images(pair_dir)
    root = Path(pair_dir)
    loaded: list[tuple[str, np.ndarray, np.ndarray]] = []
    scale = None
    for lr_path, hr_path in pairs:
        lr, hr = _as_uint8(read_image(lr_path)[0]), _as_uint8(read_image(hr_path)[0])
        s = hr.shape[0] // lr.shape[0]
        if s < 1 or hr.shape[1] // lr.shape[1] != s or (scale is not None and s != scale):
            raise DatasetError(
                f"{lr_path.name}: LR {lr.shape[1]}x{lr.shape[0]} and HR {hr.shape[1]}x{hr.shape[0]} are not "
                f"an x{scale or s} pair"
            )
        scale = s
        hr = hr[: lr.shape[0] * s, : lr.shape[1] * s]
        loaded.append((hr_path.stem, _fit_lr(lr, hr, s, lr_path.name), hr))
    assert scale is not None
    upscaler = Upscaler(_model_for_scale(model, scale), device=device, dtype=dtype)
    rows = []
    for stem, lr, hr in loaded:
        row = _score(upscaler, lr, hr, scale, metrics, y_channel, root.name, stem, metric_options)
        rows.append(row)
        if on_image is not None:
            on_image(row)
    name = model.info.arch if isinstance(model, SRModel) else str(model)
    return EvalReport(name, f"pairs in {root}", [_summarise(rows, root.name, scale, metrics)], rows)
