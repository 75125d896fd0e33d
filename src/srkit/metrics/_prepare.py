"""Bring metric inputs to the BasicSR evaluation form: uint8-valued float64 (H, W, C) arrays."""

from __future__ import annotations

import numpy as np
import torch

from srkit.errors import ShapeError
from srkit.ops.color import rgb_to_ycbcr


def to_uint8_hwc(image: np.ndarray | torch.Tensor, name: str) -> np.ndarray:
    """uint8 (H, W[, C]) array, float [0, 1] array or tensor ((C, H, W) / (1, C, H, W)) -> uint8 (H, W, C).

    Float input is clipped to [0, 1], scaled by 255 and rounded (half to even, as numpy/torch round), which is
    the "SR output rounded to uint8 first" step of the BasicSR protocol.
    """
    if isinstance(image, torch.Tensor):
        t = image.detach()
        if t.ndim == 4:
            if t.shape[0] != 1:
                raise ShapeError(f"{name}: batched tensors are scored one image at a time, got {tuple(t.shape)}")
            t = t[0]
        if t.ndim == 2:
            t = t[None]
        if t.ndim != 3:
            raise ShapeError(f"{name}: expected a (C, H, W) tensor, got {tuple(image.shape)}")
        if t.dtype == torch.uint8:
            return t.permute(1, 2, 0).cpu().numpy()
        if not t.is_floating_point():
            raise ShapeError(f"{name}: tensor dtype {t.dtype} not supported (use float in [0, 1] or uint8)")
        if not bool(torch.isfinite(t).all()):
            raise ShapeError(f"{name}: the image holds NaN or Inf values")
        t = (t.float().clamp(0, 1) * 255.0).round().to(torch.uint8)
        return t.permute(1, 2, 0).cpu().numpy()
    arr = np.asarray(image)
    if arr.ndim == 2:
        arr = arr[..., None]
    if arr.ndim != 3:
        raise ShapeError(f"{name}: expected an (H, W) or (H, W, C) array, got shape {arr.shape}")
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.floating):
        if not np.isfinite(arr).all():
            raise ShapeError(f"{name}: the image holds NaN or Inf values")
        return np.rint(np.clip(arr, 0.0, 1.0) * 255.0).astype(np.uint8)
    raise ShapeError(f"{name}: dtype {arr.dtype} not supported (use uint8, or float in [0, 1])")


def uint8_pair(sr, hr, border: int, names: tuple[str, str] = ("sr", "hr")) -> tuple[np.ndarray, np.ndarray]:
    """Both images as uint8 (H, W, C) of the same shape, ``border`` pixels cropped from every side."""
    a = to_uint8_hwc(sr, names[0])
    b = to_uint8_hwc(hr, names[1])
    if a.shape != b.shape:
        raise ShapeError(f"{names[0]} and {names[1]} shapes differ: {a.shape} vs {b.shape}")
    if border < 0:
        raise ShapeError(f"border must be >= 0, got {border}")
    if border:
        if 2 * border >= min(a.shape[0], a.shape[1]):
            raise ShapeError(f"border {border} leaves nothing of a {a.shape[1]}x{a.shape[0]} image")
        a = a[border:-border, border:-border]
        b = b[border:-border, border:-border]
    return a, b


def prepare_pair(sr, hr, border: int, y_channel: bool) -> tuple[np.ndarray, np.ndarray]:
    """Both images as float64 (H, W, C) on the 0..255 scale: rounded, border-cropped, Y when asked."""
    a, b = uint8_pair(sr, hr, border)
    if y_channel and a.shape[2] == 3:
        # Y on the 0..255 scale in float64, not rounded (BasicSR protocol).
        a = rgb_to_ycbcr(a, y_only=True)[..., None]
        b = rgb_to_ycbcr(b, y_only=True)[..., None]
    elif a.shape[2] not in (1, 3):
        raise ShapeError(f"metrics take gray or RGB images; got {a.shape[2]} channels (drop alpha first)")
    return a.astype(np.float64), b.astype(np.float64)
