"""Images as the 8-bit arrays that quality metrics score."""

from __future__ import annotations

import os

import numpy as np

__all__ = ["as_uint8_image", "read_uint8"]


def as_uint8_image(img: np.ndarray) -> np.ndarray:
    """uint8 (H, W) or (H, W, 3) from any array `read_image` returns: alpha dropped, 16-bit and float scaled."""
    if img.ndim == 3 and img.shape[2] in (2, 4):
        img = img[..., :-1]
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.dtype == np.uint16:
        return np.rint(img / 257.0).astype(np.uint8)
    if img.dtype != np.uint8:
        return np.rint(np.clip(np.nan_to_num(img.astype(np.float64)), 0, 1) * 255.0).astype(np.uint8)
    return img


def read_uint8(path: str | os.PathLike[str]) -> np.ndarray:
    """An image file as uint8 (H, W) or (H, W, 3) (see `as_uint8_image`)."""
    from srkit.io.images import read_image

    return as_uint8_image(read_image(path)[0])
