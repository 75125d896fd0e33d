"""Tiled inference: split an LR image into tiles with enough context, run each, and put the outputs together.

For a model with a finite receptive field r (LR pixels on each side), a tile whose core is surrounded by r pixels
of real image context produces exactly the output the whole image would give there, so the core outputs are
cropped and placed side by side: no blending, no seams, tiled == whole image (up to float summation order).
Where the model sees the whole image (global pooling / attention: r is None), tiles overlap by `overlap` pixels
and are blended with linear ramps (feathering), which removes visible seams but is not exact.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class Tile:
    """One tile: the LR region fed to the model (`y0:y1`, `x0:x1`) and its core (`cy0:cy1`, `cx0:cx1`)."""

    y0: int
    y1: int
    x0: int
    x1: int
    cy0: int
    cy1: int
    cx0: int
    cx1: int


def _starts(length: int, core: int) -> list[int]:
    return list(range(0, length, core)) if length > core else [0]


def plan_tiles(h: int, w: int, tile: int, context: int) -> list[Tile]:
    """Tiles of core size `tile` covering an (h, w) LR image, each read with `context` extra pixels per side
    (clipped at the image border, where the model sees the true border as in the whole image)."""
    tiles = []
    for cy in _starts(h, tile):
        for cx in _starts(w, tile):
            cy1, cx1 = min(cy + tile, h), min(cx + tile, w)
            tiles.append(Tile(max(cy - context, 0), min(cy1 + context, h), max(cx - context, 0),
                              min(cx1 + context, w), cy, cy1, cx, cx1))
    return tiles


def run_tiled_exact(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, scale: int, tile: int, context: int
) -> torch.Tensor:
    """Tiled == whole-image inference for a model whose receptive field is at most `context` LR pixels.

    Args:
        fn: (B, C, h, w) -> (B, C', h*scale, w*scale) on one tile (handles padding to the size multiple).
        x: (B, C, H, W) LR input.
        tile: core tile side in LR pixels.
        context: receptive field of the model in LR pixels.

    Returns:
        (B, C', H*scale, W*scale), assembled from the tiles' cores.
    """
    b, _, h, w = x.shape
    out = None
    for t in plan_tiles(h, w, tile, context):
        y = fn(x[..., t.y0 : t.y1, t.x0 : t.x1])
        if out is None:
            out = y.new_empty((b, y.shape[1], h * scale, w * scale))
        oy, ox = (t.cy0 - t.y0) * scale, (t.cx0 - t.x0) * scale
        out[..., t.cy0 * scale : t.cy1 * scale, t.cx0 * scale : t.cx1 * scale] = y[
            ..., oy : oy + (t.cy1 - t.cy0) * scale, ox : ox + (t.cx1 - t.cx0) * scale
        ]
    assert out is not None
    return out


def _ramp(n: int, left: int, right: int, device, dtype) -> torch.Tensor:
    """1-D weights: linear ramps of `left` / `right` samples at the ends, 1 in between (never 0)."""
    wgt = torch.ones(n, device=device, dtype=dtype)
    if left:
        wgt[:left] = torch.arange(1, left + 1, device=device, dtype=dtype) / (left + 1)
    if right:
        wgt[n - right :] = torch.flip(torch.arange(1, right + 1, device=device, dtype=dtype), (0,)) / (right + 1)
    return wgt


def run_tiled_blend(
    fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, scale: int, tile: int, overlap: int
) -> torch.Tensor:
    """Tiles overlapping by `overlap` LR pixels, blended with linear ramps in the overlaps (for models whose
    receptive field is the whole image, e.g. SwinIR). (B, C, H, W) -> (B, C', H*scale, W*scale)."""
    b, _, h, w = x.shape
    step = max(tile - overlap, 1)
    ys = list(range(0, max(h - tile, 0) + 1, step))
    xs = list(range(0, max(w - tile, 0) + 1, step))
    if ys[-1] + tile < h:
        ys.append(h - tile)
    if xs[-1] + tile < w:
        xs.append(w - tile)
    acc = None
    norm = None
    for y0 in ys:
        for x0 in xs:
            y1, x1 = min(y0 + tile, h), min(x0 + tile, w)
            y = fn(x[..., y0:y1, x0:x1]).float()
            if acc is None:
                acc = y.new_zeros((b, y.shape[1], h * scale, w * scale))
                norm = y.new_zeros((1, 1, h * scale, w * scale))
            # Ramps only on sides that touch another tile, so image borders keep full weight.
            top = overlap * scale if y0 > 0 else 0
            bottom = overlap * scale if y1 < h else 0
            left = overlap * scale if x0 > 0 else 0
            right = overlap * scale if x1 < w else 0
            wy = _ramp(y.shape[-2], top, bottom, y.device, y.dtype)
            wx = _ramp(y.shape[-1], left, right, y.device, y.dtype)
            wgt = wy[:, None] * wx[None, :]
            acc[..., y0 * scale : y1 * scale, x0 * scale : x1 * scale] += y * wgt
            norm[..., y0 * scale : y1 * scale, x0 * scale : x1 * scale] += wgt
    assert acc is not None and norm is not None
    return acc / norm
