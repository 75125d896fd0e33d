"""Benchmark evaluation: PSNR/SSIM of a model on benchmark sets, by the protocol SR papers use.

For each set and scale: HR is cropped to a multiple of the scale (modcrop), LR is made from it with MATLAB bicubic
(`imresize_matlab`, modern convention) or read from `LR_bicubic/X<s>/` (`lr_from_disk`), the model upscales LR,
and the result is scored on the Y channel with `border = scale` (see `srkit.metrics`). Scores are per image, then
averaged over the set.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch

from srkit.data.benchmark import BenchmarkSet, find_set, modcrop
from srkit.errors import DatasetError, ModelLoadError
from srkit.infer import Upscaler
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
    if image.ndim == 3 and image.shape[2] in (2, 4):
        image = image[..., :-1]
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]
    if image.dtype == np.uint8:
        return image
    if image.dtype == np.uint16:
        return np.rint(image / 257.0).astype(np.uint8)
    return np.rint(np.clip(image, 0, 1) * 255.0).astype(np.uint8)


def _to_tensor(image: np.ndarray) -> torch.Tensor:
    x = image.astype(np.float32) / 255.0
    if x.ndim == 2:
        x = x[..., None]
    return torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]


def make_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """MATLAB `imresize(modcrop(hr, s), 1/s, 'bicubic')` with today's (mirror-boundary) rules; uint8 in and out."""
    return imresize_matlab(modcrop(hr, scale), 1.0 / scale, convention="modern")


def _model_for_scale(model: str | Path | SRModel, scale: int) -> SRModel:
    if isinstance(model, SRModel):
        if model.info.scale != scale:
            raise ModelLoadError(f"model {model.info.arch} is x{model.info.scale}; it cannot be evaluated at x{scale}")
        return model
    return load_model(model, scale=scale)


def evaluate(
    model: str | Path | SRModel,
    data_dir: str | Path,
    sets: Sequence[str] = ("Set5", "Set14", "B100"),
    scales: Sequence[int] = (2, 3, 4),
    *,
    metrics: Sequence[str] = ("psnr", "ssim"),
    lr_from_disk: bool = False,
    y_channel: bool = True,
    device: str = "cpu",
    dtype: str = "fp32",
    on_image: Callable[[ImageRow], None] | None = None,
) -> EvalReport:
    """Score a model on benchmark sets.

    Args:
        model: model name/path (loaded once per scale) or an `SRModel` (its scale must be in `scales`).
        data_dir: folder holding `<Set>/HR/*.png`.
        sets, scales: which sets and scale factors to run.
        metrics: names from `srkit.metrics.METRICS`.
        lr_from_disk: read `LR_bicubic/X<s>/<name>x<s>.png` instead of making LR with `imresize_matlab`.
        y_channel: score luma (papers) or all RGB channels.
        device, dtype: passed to `Upscaler`.
        on_image: called after each image (progress reporting).

    Returns:
        `EvalReport` with one summary row per (set, scale) and one row per image.

    Raises:
        DatasetError: a set or an LR file is missing or does not fit its HR image.
        ModelLoadError: the model cannot be loaded at a requested scale.
        srkit.errors.ConfigError: unknown metric name.
    """
    from srkit.errors import ConfigError

    unknown = [m for m in metrics if m not in METRICS]
    if unknown:
        raise ConfigError(f"unknown metric(s) {', '.join(unknown)}; known: {', '.join(METRICS)}")
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
                    lr_path = bench.lr_path(hr_path, scale)
                    if not lr_path.is_file():
                        raise DatasetError(f"missing LR image {str(lr_path)!r} (drop --lr-from-disk to make LR)")
                    lr = _as_uint8(read_image(lr_path)[0])
                    if lr.shape[:2] != (hr.shape[0] // scale, hr.shape[1] // scale):
                        raise DatasetError(
                            f"{lr_path.name}: LR is {lr.shape[1]}x{lr.shape[0]}, expected "
                            f"{hr.shape[1] // scale}x{hr.shape[0] // scale} for x{scale}"
                        )
                    if lr.ndim != hr.ndim:  # e.g. a gray LR stored for an RGB HR, or the reverse
                        lr = np.repeat(lr[..., None], 3, axis=2) if lr.ndim == 2 else lr[..., 0]
                else:
                    lr = make_lr(hr, scale)
                t0 = time.perf_counter()
                sr = upscaler.upscale_tensor(_to_tensor(lr))[0]
                seconds = time.perf_counter() - t0
                sr_arr = sr.clamp(0, 1).permute(1, 2, 0).numpy()
                scores = {m: METRICS[m].fn(sr_arr, hr, border=scale, y_channel=y_channel) for m in metrics}
                row = ImageRow(bench.name, scale, hr_path.stem, scores, seconds)
                set_rows.append(row)
                if on_image is not None:
                    on_image(row)
            rows.extend(set_rows)
            mean = {m: float(np.mean([r.scores[m] for r in set_rows])) for m in metrics}
            secs = float(np.mean([r.seconds for r in set_rows]))
            summary.append(SummaryRow(bench.name, scale, mean, len(set_rows), secs))
    return EvalReport(name, "disk" if lr_from_disk else "imresize_matlab(modern)", summary, rows)
