"""Full-reference image-quality metrics, evaluated by the BasicSR/MATLAB protocol.

`METRICS` is the one name -> metric table; callers look metrics up there (nothing registers itself).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from srkit.metrics.psnr import psnr
from srkit.metrics.ssim import ssim


@dataclass(frozen=True)
class MetricInfo:
    """A metric and how to read it."""

    fn: Callable[..., float]
    higher_is_better: bool
    unit: str
    description: str


METRICS: dict[str, MetricInfo] = {
    "psnr": MetricInfo(psnr, True, "dB", "PSNR, uint8-rounded, border-cropped, BT.601 Y (BasicSR protocol)"),
    "ssim": MetricInfo(ssim, True, "", "SSIM, 11x11 Gaussian sigma 1.5, valid region (BasicSR protocol)"),
}

__all__ = ["METRICS", "MetricInfo", "psnr", "ssim"]
