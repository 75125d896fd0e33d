"""Structural similarity by the BasicSR / MATLAB (Wang et al. 2004 `ssim_index`) protocol."""

from __future__ import annotations

from functools import lru_cache

import cv2
import numpy as np
import torch

from srkit.metrics._prepare import prepare_pair

_C1 = (0.01 * 255.0) ** 2
_C2 = (0.03 * 255.0) ** 2


@lru_cache(maxsize=1)
def _gaussian_1d() -> np.ndarray:
    """Normalised 11-tap Gaussian, sigma 1.5 (the 2-D window is its outer product)."""
    x = np.arange(11, dtype=np.float64) - 5.0
    g = np.exp(-(x**2) / (2.0 * 1.5**2))
    g = g / g.sum()
    g.setflags(write=False)
    return g


def _filter_valid(x: np.ndarray) -> np.ndarray:
    """Gaussian-weighted local mean over the 'valid' region (no padding): (H, W) -> (H-10, W-10)."""
    g = _gaussian_1d()
    # The border mode does not matter: the 5 px that padding could touch are cropped away.
    out = cv2.sepFilter2D(x, cv2.CV_64F, g, g, borderType=cv2.BORDER_REFLECT)
    return out[5:-5, 5:-5]


def ssim_map(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """SSIM map of two float64 (H, W) arrays on the 0..255 scale; (H-10, W-10)."""
    mu_a, mu_b = _filter_valid(a), _filter_valid(b)
    var_a = _filter_valid(a * a) - mu_a**2
    var_b = _filter_valid(b * b) - mu_b**2
    cov = _filter_valid(a * b) - mu_a * mu_b
    num = (2 * mu_a * mu_b + _C1) * (2 * cov + _C2)
    den = (mu_a**2 + mu_b**2 + _C1) * (var_a + var_b + _C2)
    return num / den


def ssim(
    sr: np.ndarray | torch.Tensor, hr: np.ndarray | torch.Tensor, border: int = 0, y_channel: bool = True
) -> float:
    """SSIM between a super-resolved image and its ground truth, in [-1, 1] (1 = identical).

    Same preparation as `psnr` (uint8 rounding, border crop, float64 BT.601 luma); then an 11x11 Gaussian window
    (sigma 1.5), C1 = (0.01*255)^2, C2 = (0.03*255)^2, statistics over the valid region only, the mean of the
    SSIM map per channel, and the mean over channels.

    Args:
        sr, hr: uint8 (H, W) / (H, W, C) arrays, or float [0, 1] arrays / tensors ((C, H, W) or (1, C, H, W)).
        border: pixels cropped from each side.
        y_channel: score the Y channel of RGB inputs; otherwise all channels.

    Raises:
        srkit.errors.ShapeError: shapes differ, the image is smaller than the 11x11 window after cropping,
            or an unsupported dtype.

    Reference: Wang, Bovik, Sheikh, Simoncelli, "Image quality assessment: from error visibility to structural
    similarity", IEEE TIP 2004; BasicSR basicsr/metrics/psnr_ssim.py.
    """
    a, b = prepare_pair(sr, hr, border, y_channel)
    if min(a.shape[0], a.shape[1]) < 11:
        from srkit.errors import ShapeError

        raise ShapeError(f"SSIM needs at least 11x11 pixels after cropping, got {a.shape[1]}x{a.shape[0]}")
    return float(np.mean([ssim_map(a[..., c], b[..., c]).mean() for c in range(a.shape[2])]))
