"""Image-quality metrics: full-reference PSNR/SSIM by the BasicSR/MATLAB protocol and LPIPS, no-reference NIQE and
the KLT index; for video, the warping error (temporal consistency, `warping_error`).

`METRICS` is the one name -> metric table; callers look metrics up there (nothing registers itself).
Contract: a full-reference metric is called ``fn(image, reference, border=..., y_channel=...)``; a no-reference
one (``needs_reference=False``) ``fn(image, crop_border=...)``, taking a uint8 (H, W[, 3]) array or a float
[0, 1] array / tensor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from srkit.metrics.klt import KltModel, fit_klt_model, klt, klt_features, load_klt_model, save_klt_model
from srkit.metrics.lpips import lpips, lpips_model
from srkit.metrics.niqe import fit_niqe_params, load_niqe_params, niqe, save_niqe_params
from srkit.metrics.psnr import psnr
from srkit.metrics.ssim import ssim
from srkit.metrics.warping import WarpingError, warping_error


@dataclass(frozen=True)
class MetricInfo:
    """A metric and how to read it."""

    fn: Callable[..., float]
    higher_is_better: bool
    unit: str
    description: str
    needs_reference: bool = True
    # Called once before scoring starts: raises (ConfigError) when something the metric needs is missing, so a
    # run fails before its first image rather than after it (e.g. LPIPS's backbone weights).
    check: Callable[[], object] | None = None


METRICS: dict[str, MetricInfo] = {
    "psnr": MetricInfo(psnr, True, "dB", "PSNR, uint8-rounded, border-cropped, BT.601 Y (BasicSR protocol)",
                       needs_reference=True),
    "ssim": MetricInfo(ssim, True, "", "SSIM, 11x11 Gaussian sigma 1.5, valid region (BasicSR protocol)",
                       needs_reference=True),
    "niqe": MetricInfo(niqe, False, "", "NIQE (srkit pristine model; params=official for LIVE's), Y rounded, "
                       "LIVE MATLAB release", needs_reference=False),
    "klt": MetricInfo(klt, False, "", "KLT NSS index (srkit pristine model): opponent colour, 8x8 KLT of MSCN, "
                      "AGGD + energies, standardised distance", needs_reference=False, check=load_klt_model),
    "lpips": MetricInfo(lpips, False, "", "LPIPS v0.1 (AlexNet), RGB (y_channel ignored), border-cropped; backbone "
                        "from torch.hub checkpoints", needs_reference=True, check=lpips_model),
}

__all__ = [
    "METRICS", "KltModel", "MetricInfo", "fit_klt_model", "fit_niqe_params", "klt", "klt_features", "load_klt_model",
    "load_niqe_params", "lpips", "niqe", "psnr", "save_klt_model", "save_niqe_params", "ssim",
    "WarpingError", "warping_error",
]
