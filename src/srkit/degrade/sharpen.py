"""Unsharp masking: ``out = x + weight * (x - G_sigma * x)``, optionally only where the detail exceeds a threshold.

Used twice in real-world SR: to sharpen the HR *target* (Real-ESRGAN trains on USM-sharpened ground truth, which
gives crisper outputs), and as a degradation (in-camera sharpening leaves halos the network should not copy).

Reference: X. Wang et al., "Real-ESRGAN", ICCVW 2021 (USM-sharpened ground truth).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from srkit.errors import ConfigError, ShapeError

__all__ = ["gaussian_blur_separable", "unsharp_mask"]


def gaussian_blur_separable(images: torch.Tensor, sigma: float) -> torch.Tensor:
    """Gaussian blur as two 1-D passes (kernel half-width ceil(3 sigma)), reflect borders (replicate if too small).

    Args:
        images: float (B, C, H, W), any device.
        sigma: standard deviation in pixels, > 0.

    Returns:
        (B, C, H, W), same dtype and device.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        raise ShapeError("gaussian_blur_separable expects float images (B, C, H, W)")
    if not sigma > 0:
        raise ConfigError(f"sigma must be > 0, got {sigma}")
    r = max(1, math.ceil(3.0 * sigma))
    x = torch.arange(-r, r + 1, dtype=torch.float64)
    k = torch.exp(-0.5 * (x / sigma) ** 2)
    k = (k / k.sum()).to(images.device, images.dtype)
    b, c, h, w = images.shape
    mode = "reflect" if min(h, w) > r else "replicate"
    y = F.pad(images.reshape(b * c, 1, h, w), (r, r, r, r), mode=mode)
    y = F.conv2d(y, k.view(1, 1, 1, -1))
    y = F.conv2d(y, k.view(1, 1, -1, 1))
    return y.reshape(b, c, h, w)


def unsharp_mask(
    images: torch.Tensor, weight: float = 0.5, sigma: float = 8.0, threshold: float = 10 / 255
) -> torch.Tensor:
    """Unsharp masking with a soft threshold mask.

    The detail ``d = x - G_sigma * x`` is added with ``weight``; where ``|d| <= threshold`` (flat areas, noise) the
    original is kept, blended through a blurred mask so no edge of the mask shows. ``threshold=0`` sharpens
    everywhere.

    Args:
        images: float (B, C, H, W) in [0, 1].
        weight: >= 0 amount of added detail.
        sigma: Gaussian standard deviation in pixels (Real-ESRGAN's 51-tap OpenCV kernel has sigma 8).
        threshold: detail magnitude (on the [0, 1] scale) below which nothing is sharpened.

    Returns:
        (B, C, H, W), clamped to [0, 1].
    """
    if weight < 0 or threshold < 0:
        raise ConfigError(f"unsharp_mask: weight and threshold must be >= 0, got {weight}, {threshold}")
    blurred = gaussian_blur_separable(images, sigma)
    detail = images - blurred
    sharp = (images + weight * detail).clamp(0.0, 1.0)
    if threshold <= 0:
        return sharp
    mask = (detail.abs() > threshold).to(images.dtype)
    soft = gaussian_blur_separable(mask, sigma)
    return soft * sharp + (1.0 - soft) * images
