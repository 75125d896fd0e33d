"""Peak signal-to-noise ratio by the BasicSR / MATLAB evaluation protocol."""

from __future__ import annotations

import math

import numpy as np
import torch

from srkit.metrics._prepare import prepare_pair


def psnr(
    sr: np.ndarray | torch.Tensor, hr: np.ndarray | torch.Tensor, border: int = 0, y_channel: bool = True
) -> float:
    """PSNR in dB between a super-resolved image and its ground truth.

    Protocol (BasicSR `calculate_psnr`, as SR papers report): both images are brought to uint8 (float inputs in
    [0, 1] are clipped and rounded), `border` pixels are cropped on every side, RGB is reduced to BT.601 studio-
    swing luma in float64 (not rounded) when `y_channel` is set (gray images are used as they are), and
    PSNR = 10 log10(255^2 / MSE). Identical images give ``inf``.

    Args:
        sr, hr: uint8 (H, W) / (H, W, C) arrays, or float [0, 1] arrays / tensors ((C, H, W) or (1, C, H, W)).
        border: pixels cropped from each side (papers use the scale factor).
        y_channel: score the Y channel of RGB inputs; otherwise all channels.

    Raises:
        srkit.errors.ShapeError: shapes differ, unsupported dtype, or the border leaves nothing.

    Reference: Wang et al., BasicSR (github.com/XPixelGroup/BasicSR), basicsr/metrics/psnr_ssim.py.
    """
    a, b = prepare_pair(sr, hr, border, y_channel)
    mse = float(np.mean((a - b) ** 2))
    if mse == 0.0:
        return math.inf
    return 10.0 * math.log10(255.0**2 / mse)
