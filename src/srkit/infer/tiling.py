"""Tiled inference: split an LR image into tiles with enough context, run each, and put the outputs together.

For a model with a finite receptive field r (LR pixels on each side), a tile whose core is surrounded by r pixels
of real image context produces exactly the output the whole image would give there, so the core outputs are
cropped and placed side by side: no blending, no seams, tiled == whole image (up to float summation order).
Where the model sees the whole image (global pooling / attention: r is None), tiles overlap by `overlap` pixels
and are blended with linear ramps (feathering), which removes visible seams but is not exact.

With ``batch > 1`` tiles whose LR regions have the same shape (all interior tiles; edge tiles come in a few other
shapes) are concatenated along the batch dimension and run in one call. Each tile's output is what it would be
alone (convolutions treat batch entries independently), so batched == unbatched up to float summation order.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
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
    """Core starts along one axis: the fewest cores of at most `core` pixels, as equal as possible.

    Equal cores instead of full cores plus a thin remainder: a thin last tile carries as much context as a full
    one for little output, which is pure overhead (e.g. 300 px at 128: 100+100+100, not 128+128+44)."""
    n = -(-length // core)
    return [length * i // n for i in range(n)]


def plan_tiles(h: int, w: int, tile: int, context: int) -> list[Tile]:
    """Tiles of core size `tile` covering an (h, w) LR image, each read with `context` extra pixels per side
    (clipped at the image border, where the model sees the true border as in the whole image)."""
    tiles = []
    ys, xs = _starts(h, tile), _starts(w, tile)
    for iy, cy in enumerate(ys):
        for ix, cx in enumerate(xs):
            cy1 = ys[iy + 1] if iy + 1 < len(ys) else h
            cx1 = xs[ix + 1] if ix + 1 < len(xs) else w
            tiles.append(Tile(max(cy - context, 0), min(cy1 + context, h), max(cx - context, 0),
                              min(cx1 + context, w), cy, cy1, cx, cx1))
    return tiles


def batched(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    regions: Sequence[tuple[int, int, int, int]],
    batch: int,
) -> Iterator[tuple[int, torch.Tensor]]:
    """Run `fn` on the LR regions ``(y0, y1, x0, x1)`` of `x`, `batch` same-shaped regions per call.

    Yields ``(region index, output)`` pairs, each output (B, C', h*s, w*s) for the region's (B, C, h, w) input,
    in groups: regions are grouped by shape in order of first appearance, then chunked by `batch`. At most
    `batch` outputs are alive at a time (besides what the caller keeps).
    """
    b = x.shape[0]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, (y0, y1, x0, x1) in enumerate(regions):
        groups.setdefault((y1 - y0, x1 - x0), []).append(i)
    for members in groups.values():
        for k in range(0, len(members), max(1, batch)):
            chunk = members[k : k + max(1, batch)]
            parts = [x[..., regions[i][0] : regions[i][1], regions[i][2] : regions[i][3]] for i in chunk]
            y = fn(parts[0] if len(parts) == 1 else torch.cat(parts, dim=0))
            for j, i in enumerate(chunk):
                yield i, y[j * b : (j + 1) * b]


def run_tiled_exact(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    scale: int,
    tile: int,
    context: int,
    batch: int = 1,
) -> torch.Tensor:
    """Tiled == whole-image inference for a model whose receptive field is at most `context` LR pixels.

    Args:
        fn: (B, C, h, w) -> (B, C', h*scale, w*scale) on one tile (handles padding to the size multiple); with
            `batch` > 1 it gets (n*B, C, h, w), n same-shaped tiles concatenated.
        x: (B, C, H, W) LR input.
        tile: core tile side in LR pixels.
        context: receptive field of the model in LR pixels.
        batch: at most this many same-shaped tiles per call of `fn`.

    Returns:
        (B, C', H*scale, W*scale), assembled from the tiles' cores.
    """
    b, _, h, w = x.shape
    tiles = plan_tiles(h, w, tile, context)
    out = None
    for i, y in batched(fn, x, [(t.y0, t.y1, t.x0, t.x1) for t in tiles], batch):
        t = tiles[i]
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


def blend_regions(h: int, w: int, tile: int, overlap: int) -> list[tuple[int, int, int, int]]:
    """The LR regions ``(y0, y1, x0, x1)`` `run_tiled_blend` runs: tiles of side `tile` every `tile - overlap`
    pixels, the last row/column moved back to end at the border."""
    step = max(tile - overlap, 1)
    ys = list(range(0, max(h - tile, 0) + 1, step))
    xs = list(range(0, max(w - tile, 0) + 1, step))
    if ys[-1] + tile < h:
        ys.append(h - tile)
    if xs[-1] + tile < w:
        xs.append(w - tile)
    return [(y0, min(y0 + tile, h), x0, min(x0 + tile, w)) for y0 in ys for x0 in xs]


def run_tiled_blend(
    fn: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    scale: int,
    tile: int,
    overlap: int,
    batch: int = 1,
) -> torch.Tensor:
    """Tiles overlapping by `overlap` LR pixels, blended with linear ramps in the overlaps (for models whose
    receptive field is the whole image, e.g. SwinIR). (B, C, H, W) -> (B, C', H*scale, W*scale); `batch` as in
    `run_tiled_exact`."""
    b, _, h, w = x.shape
    regions = blend_regions(h, w, tile, overlap)
    acc: torch.Tensor | None = None
    norm: torch.Tensor | None = None
    for i, y in batched(fn, x, regions, batch):
        y0, y1, x0, x1 = regions[i]
        y = y.float()
        if acc is None or norm is None:  # the first tile: both are made together
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
