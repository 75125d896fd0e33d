"""Colour conversions with MATLAB's conventions.

`rgb_to_ycbcr` / `ycbcr_to_rgb` are ITU-R BT.601 "studio swing" (Y in [16, 235], Cb/Cr in [16, 240] on the
0..255 scale), the same matrices as MATLAB's `rgb2ycbcr` / `ycbcr2rgb`, which is what SR papers evaluate on.

Reference: ITU-R BT.601-7; MATLAB `rgb2ycbcr` documentation.
"""

from __future__ import annotations

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
        m = torch.as_tensor(_RGB_TO_YCBCR / 255.0, dtype=image.dtype, device=image.device)
        off = torch.as_tensor(_OFFSET / 255.0, dtype=image.dtype, device=image.device)
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
    inv = _YCBCR_TO_RGB * 255.0
    if isinstance(image, torch.Tensor):
        if image.ndim < 3 or image.shape[-3] != 3:
            raise ShapeError(f"ycbcr_to_rgb expects a (..., 3, H, W) tensor, got {tuple(image.shape)}")
        m = torch.as_tensor(inv, dtype=image.dtype, device=image.device)
        off = torch.as_tensor(_OFFSET / 255.0, dtype=image.dtype, device=image.device)
        return torch.einsum("oc,...chw->...ohw", m, image - off[:, None, None])
    arr = np.asarray(image)
    if arr.ndim < 1 or arr.shape[-1] != 3:
        raise ShapeError(f"ycbcr_to_rgb expects a (..., 3) array, got shape {arr.shape}")
    scale = _scale_of(arr)
    x = arr.astype(np.float64) / scale
    return ((x - _OFFSET / 255.0) @ inv.T) * scale


def luma_chroma_to_rgb(y: torch.Tensor, cbcr: torch.Tensor) -> torch.Tensor:
    """`ycbcr_to_rgb` of Y and CbCr given as separate tensors, without concatenating them first.

    Used where Y and CbCr come from different paths (a Y-channel SR model and bicubic chroma): at HR size the
    concatenation and the offset subtraction are whole extra passes over memory, so the matrix and the offsets
    are applied as a 3x2 matrix on CbCr, one multiply-add of Y and one add of the folded offsets.

    Args:
        y: (B, 1, H, W) float, Y on the [0, 1] scale of `rgb_to_ycbcr`.
        cbcr: (B, 2, H, W) float, same dtype and device.

    Returns:
        (B, 3, H, W) RGB in y's dtype; not clipped. Equal to ``ycbcr_to_rgb(cat([y, cbcr], 1))`` up to float
        rounding.
    """
    if y.ndim != 4 or y.shape[1] != 1 or cbcr.ndim != 4 or cbcr.shape[1] != 2 or y.shape[-2:] != cbcr.shape[-2:]:
        raise ShapeError(f"expected (B, 1, H, W) Y and (B, 2, H, W) CbCr, got {tuple(y.shape)} and {tuple(cbcr.shape)}")
    inv = _YCBCR_TO_RGB * 255.0
    bias = -(inv @ (_OFFSET / 255.0))
    m = torch.as_tensor(inv[:, 1:], dtype=y.dtype, device=y.device)
    w_y = torch.as_tensor(inv[:, :1, None], dtype=y.dtype, device=y.device)[None]  # (1, 3, 1, 1)
    b = torch.as_tensor(bias[:, None, None], dtype=y.dtype, device=y.device)
    out = torch.einsum("oc,...chw->...ohw", m, cbcr)
    return out.addcmul_(y, w_y).add_(b)
