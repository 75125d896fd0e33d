"""Colour conversions with MATLAB's conventions.

`rgb_to_ycbcr` / `ycbcr_to_rgb` are ITU-R BT.601 "studio swing" (Y in [16, 235], Cb/Cr in [16, 240] on the
0..255 scale), the same matrices as MATLAB's `rgb2ycbcr` / `ycbcr2rgb`, which is what SR papers evaluate on.

Reference: ITU-R BT.601-7; MATLAB `rgb2ycbcr` documentation.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import overload

import numpy as np
import torch

from srkit.errors import ShapeError

# Rows: Y, Cb, Cr; columns: R, G, B; for R, G, B in [0, 1] giving outputs on the 0..255 scale.
_RGB_TO_YCBCR = np.array(
    [[65.481, 128.553, 24.966], [-37.797, -74.203, 112.0], [112.0, -93.786, -18.214]], dtype=np.float64
)
_OFFSET = np.array([16.0, 128.0, 128.0], dtype=np.float64)
_YCBCR_TO_RGB = np.linalg.inv(_RGB_TO_YCBCR)


def _floats(a: np.ndarray) -> tuple:
    """A float64 array as nested tuples of Python floats (the same values)."""
    return tuple(_floats(r) for r in a) if a.ndim > 1 else tuple(float(v) for v in a)


# The tensor paths build their constants from Python floats, not numpy arrays: `torch.compile` then folds them
# into the graph (a numpy array becomes a guarded input, and its guard fails under inference mode).
_RGB_TO_YCBCR_01 = _floats(_RGB_TO_YCBCR / 255.0)  # RGB [0, 1] -> YCbCr on the [0, 1] scale
_OFFSET_01 = _floats(_OFFSET / 255.0)
_INV_255 = _floats(_YCBCR_TO_RGB * 255.0)  # YCbCr [0, 1] scale -> RGB [0, 1]
_LUMA_W = _floats((_YCBCR_TO_RGB * 255.0)[:, :1, None])  # (3, 1, 1): the Y column
_CHROMA_M = _floats((_YCBCR_TO_RGB * 255.0)[:, 1:])  # (3, 2): the Cb, Cr columns
_FOLDED_BIAS = _floats(-((_YCBCR_TO_RGB * 255.0) @ (_OFFSET / 255.0))[:, None, None])  # (3, 1, 1)


def _scale_of(x: np.ndarray | torch.Tensor) -> float:
    """Full-scale value of the input: 255 for uint8, 65535 for uint16, 1 for float."""
    dtype = x.dtype
    if dtype in (np.uint8, torch.uint8):
        return 255.0
    if dtype == np.uint16:
        return 65535.0
    return 1.0


@overload
def rgb_to_ycbcr(image: np.ndarray, *, y_only: bool = ...) -> np.ndarray: ...
@overload
def rgb_to_ycbcr(image: torch.Tensor, *, y_only: bool = ...) -> torch.Tensor: ...


def rgb_to_ycbcr(image, *, y_only: bool = False):
    """RGB -> YCbCr (BT.601 studio swing), as MATLAB `rgb2ycbcr`.

    Args:
        image: numpy (..., 3) channels-last, uint8/uint16 (full range) or float in [0, 1]; or a torch tensor
            (..., 3, H, W) channels-first, float in [0, 1].
        y_only: return only the luma channel (numpy (...,), torch (..., 1, H, W)).

    Returns:
        float64 numpy (or the tensor's float dtype) in the input's scale: [0, 1] for float input (Y in
        [16/255, 235/255]), [0, 255] for uint8, [0, 65535] for uint16. Not rounded.

    Raises:
        ShapeError: the channel axis does not have 3 entries.
    """
    if isinstance(image, torch.Tensor):
        if image.ndim < 3 or image.shape[-3] != 3:
            raise ShapeError(f"rgb_to_ycbcr expects a (..., 3, H, W) tensor, got {tuple(image.shape)}")
        if not image.is_floating_point():
            raise ShapeError("rgb_to_ycbcr expects a float tensor in [0, 1]")
        m = torch.tensor(_RGB_TO_YCBCR_01, dtype=image.dtype, device=image.device)
        off = torch.tensor(_OFFSET_01, dtype=image.dtype, device=image.device)
        if y_only:
            m, off = m[:1], off[:1]
        out = torch.einsum("oc,...chw->...ohw", m, image)
        return out + off[:, None, None]
    arr = np.asarray(image)
    if arr.ndim < 1 or arr.shape[-1] != 3:
        raise ShapeError(f"rgb_to_ycbcr expects a (..., 3) array, got shape {arr.shape}")
    scale = _scale_of(arr)
    x = arr.astype(np.float64) / scale
    mat, offset = (_RGB_TO_YCBCR[:1], _OFFSET[:1]) if y_only else (_RGB_TO_YCBCR, _OFFSET)
    out_np = (x @ mat.T + offset) * (scale / 255.0)
    return out_np[..., 0] if y_only else out_np


def ycbcr_to_rgb(image):
    """YCbCr (BT.601 studio swing) -> RGB, the inverse of `rgb_to_ycbcr` (as MATLAB `ycbcr2rgb`).

    Args:
        image: numpy (..., 3) float in the scale given by ``rgb_to_ycbcr`` ([0, 1] convention for float), or
            uint8 (0..255); torch (..., 3, H, W) float.

    Returns:
        RGB of the same kind, float64 numpy (uint8 input gives float on 0..255) / tensor dtype. Not clipped.

    Raises:
        ShapeError: the channel axis does not have 3 entries.
    """
    if isinstance(image, torch.Tensor):
        if image.ndim < 3 or image.shape[-3] != 3:
            raise ShapeError(f"ycbcr_to_rgb expects a (..., 3, H, W) tensor, got {tuple(image.shape)}")
        m = torch.tensor(_INV_255, dtype=image.dtype, device=image.device)
        off = torch.tensor(_OFFSET_01, dtype=image.dtype, device=image.device)
        return torch.einsum("oc,...chw->...ohw", m, image - off[:, None, None])
    arr = np.asarray(image)
    if arr.ndim < 1 or arr.shape[-1] != 3:
        raise ShapeError(f"ycbcr_to_rgb expects a (..., 3) array, got shape {arr.shape}")
    scale = _scale_of(arr)
    x = arr.astype(np.float64) / scale
    inv = _YCBCR_TO_RGB * 255.0
    return ((x - _OFFSET / 255.0) @ inv.T) * scale


def luma_chroma_to_rgb(y: torch.Tensor, cbcr: torch.Tensor) -> torch.Tensor:
    """`ycbcr_to_rgb` of Y and CbCr given as separate tensors, without concatenating them first.

    Used where Y and CbCr come from different paths (a Y-channel SR model and bicubic chroma): at HR size the
    concatenation and the offset subtraction are whole extra passes over memory, so the output is three
    broadcast multiply-adds (Cb, Cr, Y columns of the matrix) onto the folded offsets: elementwise, which
    `torch.compile` fuses into one loop with what comes before it (a matrix product would stay a separate call).

    Args:
        y: (B, 1, H, W) float, Y on the [0, 1] scale of `rgb_to_ycbcr`.
        cbcr: (B, 2, H, W) float, same dtype and device.

    Returns:
        (B, 3, H, W) RGB in y's dtype; not clipped. Equal to ``ycbcr_to_rgb(cat([y, cbcr], 1))`` up to float
        rounding.
    """
    if y.ndim != 4 or y.shape[1] != 1 or cbcr.ndim != 4 or cbcr.shape[1] != 2 or y.shape[-2:] != cbcr.shape[-2:]:
        raise ShapeError(f"expected (B, 1, H, W) Y and (B, 2, H, W) CbCr, got {tuple(y.shape)} and {tuple(cbcr.shape)}")
    m = torch.tensor(_CHROMA_M, dtype=y.dtype, device=y.device)[None, :, :, None]  # (1, 3, 2, 1)
    w_y = torch.tensor(_LUMA_W, dtype=y.dtype, device=y.device)[None]  # (1, 3, 1, 1)
    b = torch.tensor(_FOLDED_BIAS, dtype=y.dtype, device=y.device)[None]  # (1, 3, 1, 1)
    out = torch.addcmul(b, cbcr[:, :1], m[:, :, :1])
    out.addcmul_(cbcr[:, 1:], m[:, :, 1:])
    return out.addcmul_(y, w_y)


def upscale_rgb_by_luma(luma_upscaler: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                        scale: int) -> torch.Tensor:
    """How srkit runs a Y-channel SR network on colour: (B, 3, H, W) RGB in [0, 1] -> (B, 3, sH, sW).

    The BT.601 luma (`rgb_to_ycbcr`) goes through `luma_upscaler` ((B, 1, H, W) -> (B, 1, sH, sW)), the chroma
    through MATLAB bicubic (`srkit.ops.resize.upscale_cubic`, which `torch.compile` traces), and
    `luma_chroma_to_rgb` puts them back together in the chroma's dtype.
    """
    from srkit.ops.resize import upscale_cubic

    ycc = rgb_to_ycbcr(x)
    y = luma_upscaler(ycc[:, :1])
    cbcr = upscale_cubic(ycc[:, 1:], scale)
    return luma_chroma_to_rgb(y.to(cbcr.dtype), cbcr)
