"""Resizing as a degradation: the interpolation a camera pipeline, a web service or an editor might apply.

Reference: X. Wang et al., "Real-ESRGAN", ICCVW 2021 (random resize with area / bilinear / bicubic);
MATLAB ``imresize`` for the ``matlab`` mode (:func:`srkit.ops.imresize_matlab`).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from srkit.errors import ConfigError, ShapeError

__all__ = ["RESIZE_MODES", "resize"]

# area: box averaging (adaptive pooling); bilinear / bicubic: PyTorch's, without antialiasing (aliasing is one
# of the artefacts real images have); matlab: MATLAB imresize bicubic, antialiased when shrinking.
RESIZE_MODES = ("area", "bilinear", "bicubic", "matlab")


def resize(images: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    """Resize (B, C, H, W) images to ``size = (out_h, out_w)`` with one of :data:`RESIZE_MODES`.

    Args:
        images: float (B, C, H, W), any range (bicubic overshoots are not clipped), any device.
        size: output height and width, each >= 1.
        mode: ``area``, ``bilinear``, ``bicubic`` or ``matlab``.

    Returns:
        (B, C, out_h, out_w), same dtype and device; differentiable.

    Raises:
        ConfigError: unknown mode or a size below 1.
        ShapeError: not a float 4-D tensor.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        raise ShapeError("resize expects float images (B, C, H, W)")
    if mode not in RESIZE_MODES:
        raise ConfigError(f"resize mode {mode!r} is not one of {', '.join(RESIZE_MODES)}")
    oh, ow = int(size[0]), int(size[1])
    if oh < 1 or ow < 1:
        raise ConfigError(f"resize size must be >= 1, got {oh}x{ow}")
    if (oh, ow) == tuple(images.shape[-2:]):
        return images
    if mode == "matlab":
        from srkit.ops.resize import imresize_matlab

        return imresize_matlab(images, output_shape=(oh, ow))
    if mode == "area":
        return F.interpolate(images, size=(oh, ow), mode="area")
    return F.interpolate(images, size=(oh, ow), mode=mode, align_corners=False)
