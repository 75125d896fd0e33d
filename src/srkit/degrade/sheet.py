"""A contact sheet: one HR crop beside N degraded variants, each captioned with its sampled parameters.

It shows a user what a model will be trained on (``srkit degrade --sheet``).
"""

from __future__ import annotations

import numpy as np

from srkit.degrade.pipeline import Degradation, degrade_image, describe, image_seed
from srkit.errors import ConfigError, ShapeError

__all__ = ["contact_sheet"]

_CONTEXT = 8  # LR pixels degraded around the shown crop, so no border effect shows in it
_LINE = 15  # caption line height (px)


def contact_sheet(
    hr: np.ndarray, degradation: Degradation, scale: int, *, seed: int = 0, variants: int = 5, crop: int = 192
) -> np.ndarray:
    """Draw the sheet.

    Args:
        hr: uint8 (H, W, 3) HR image.
        degradation: the pipeline to show.
        scale: SR factor.
        seed: variant ``i`` uses generator seed ``image_seed(seed, "sheet", i)``.
        variants: number of degraded versions (>= 1).
        crop: side of the centred HR crop shown (rounded down to a multiple of ``scale``; at most the image).

    Returns:
        uint8 (rows, cols, 3) RGB image: the HR crop first, then each LR crop enlarged with nearest neighbour
        to the same size, parameter lines under each.
    """
    from PIL import Image, ImageDraw, ImageFont

    if not isinstance(hr, np.ndarray) or hr.dtype != np.uint8 or hr.ndim != 3 or hr.shape[2] != 3:
        raise ShapeError("contact_sheet expects a uint8 (H, W, 3) image")
    if variants < 1:
        raise ConfigError(f"variants must be >= 1, got {variants}")
    h, w = hr.shape[:2]
    side = min(crop, h, w) // scale * scale
    if side < scale:
        raise ShapeError(f"the image ({w}x{h}) is too small for one LR pixel at x{scale}")
    top, left = (h - side) // 2 // scale * scale, (w - side) // 2 // scale * scale
    ctx = _CONTEXT * scale
    t0, l0 = max(0, top - ctx), max(0, left - ctx)
    t1, l1 = min(h // scale * scale, top + side + ctx), min(w // scale * scale, left + side + ctx)
    region = hr[t0:t1, l0:l1]
    tiles = [(hr[top : top + side, left : left + side], ["HR crop", f"{side}x{side} px, x{scale}"])]
    dt, dl, n = (top - t0) // scale, (left - l0) // scale, side // scale
    for i in range(variants):
        lr, record = degrade_image(region, degradation, scale, image_seed(seed, "sheet", i))
        lr = lr[dt : dt + n, dl : dl + n]
        tiles.append((np.repeat(np.repeat(lr, scale, 0), scale, 1), describe(record)))
    font = ImageFont.load_default(size=12)
    n_lines = max(len(c) for _, c in tiles)
    cell_w = max(side, *(int(font.getlength(line)) + 6 for _, c in tiles for line in c))
    cell_h = side + 6 + _LINE * n_lines
    cols = min(len(tiles), 4)
    rows = -(-len(tiles) // cols)
    sheet = Image.new("RGB", (cols * (cell_w + 8) + 8, rows * (cell_h + 8) + 8), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for k, (pixels, caption) in enumerate(tiles):
        x = 8 + (k % cols) * (cell_w + 8)
        y = 8 + (k // cols) * (cell_h + 8)
        sheet.paste(Image.fromarray(np.ascontiguousarray(pixels)), (x, y))
        for j, line in enumerate(caption):
            draw.text((x, y + side + 4 + j * _LINE), line, fill=(0, 0, 0), font=font)
    return np.asarray(sheet)
