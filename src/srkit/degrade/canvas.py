"""Batches of differently sized images held in one tensor, for running degradation steps batched.

After a random resize every image of a batch has its own size. They are kept in one *canvas* tensor
``(B, C, H, W)`` with ``H, W`` the largest sizes; image ``i`` occupies ``[i, :, :h_i, :w_i]`` (top-left) and the
rest of its plane holds finite values of no meaning. A step that looks at neighbouring pixels (blur, JPEG blocks)
sees each image's own border handling through :func:`remap` (reflected or replicated indices per image), so its
result inside each image equals running it on that image alone.

:func:`buckets` splits a selection of images into groups of similar size, so that the wasted canvas area (work
spent on the meaningless part) stays small while the number of batched calls stays low.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
import torch.nn.functional as F

__all__ = ["border_index", "buckets", "extend_images", "pad_images", "remap", "to_device"]

Size = tuple[int, int]

#: A bucket may spend at most this fraction more canvas area than its images' own area.
WASTE = 0.3


def border_index(length: int, offset: int, size: int, reflect: bool) -> torch.Tensor:
    """Source indices ``0..size-1`` for output positions ``0..length-1`` that read ``position - offset``.

    Positions outside ``[0, size)`` are reflected about the edge samples (``reflect``, PyTorch's "reflect"
    padding: valid for offsets up to ``size - 1``) or replicated; anything beyond that is clamped (finite
    filler that a zero-padded kernel does not use).
    """
    t = torch.arange(length, dtype=torch.int64) - offset
    if reflect and size > 1:
        t = torch.where(t < 0, -t, t)
        t = torch.where(t > size - 1, 2 * (size - 1) - t, t)
    return t.clamp_(0, size - 1)


def remap(x: torch.Tensor, rows: torch.Tensor, cols: torch.Tensor) -> torch.Tensor:
    """``out[b, c, i, j] = x[b, c, rows[b, i], cols[b, j]]``: (B, C, H, W) -> (B, C, Ho, Wo), two gathers.

    ``rows`` (B, Ho) and ``cols`` (B, Wo) are int64 (CPU is fine: they are moved in one copy).
    """
    b, c, h, w = x.shape
    ho, wo = rows.shape[1], cols.shape[1]
    idx = to_device(torch.cat((rows, cols), 1), x.device)
    r, k = idx[:, :ho], idx[:, ho:]
    y = x.gather(2, r[:, None, :, None].expand(b, c, ho, w))
    return y.gather(3, k[:, None, None, :].expand(b, c, ho, wo))


def pad_images(x: torch.Tensor, sizes: Sequence[Size], pad: int, own_pads: Sequence[int]) -> torch.Tensor:
    """Pad every image of a canvas by ``pad`` on each side as the single-image filters do.

    Image ``i`` (size ``sizes[i]``) is padded as ``F.pad(image, own_pads[i], "reflect")`` would, or
    "replicate" when ``min(h, w) <= own_pads[i]`` (reflection impossible); positions further than
    ``own_pads[i]`` from it get filler. Returns (B, C, H + 2 pad, W + 2 pad); image ``i`` starts at ``(pad, pad)``.
    """
    _, _, h, w = x.shape
    reflect = [min(s) > p for s, p in zip(sizes, own_pads, strict=True)]
    if pad == 0:
        return x
    if all(tuple(s) == (h, w) for s in sizes):
        if all(reflect) and min(h, w) > pad:
            return F.pad(x, (pad, pad, pad, pad), mode="reflect")
        if not any(reflect):
            return F.pad(x, (pad, pad, pad, pad), mode="replicate")
    rows = torch.stack([border_index(h + 2 * pad, pad, s[0], r) for s, r in zip(sizes, reflect)])
    cols = torch.stack([border_index(w + 2 * pad, pad, s[1], r) for s, r in zip(sizes, reflect)])
    return remap(x, rows, cols)


def extend_images(x: torch.Tensor, sizes: Sequence[Size], height: int, width: int) -> torch.Tensor:
    """(B, C, H, W) canvas -> (B, C, height, width) with each image's last row / column repeated beyond it."""
    rows = torch.stack([border_index(height, 0, s[0], False) for s in sizes])
    cols = torch.stack([border_index(width, 0, s[1], False) for s in sizes])
    return remap(x, rows, cols)


def buckets(
    items: Sequence[int], sizes: Sequence[Size] | Mapping[int, Size], waste: float = WASTE
) -> list[tuple[list[int], int, int]]:
    """Split images ``items`` (indices or keys of ``sizes``) into groups of similar size.

    Sizes are taken largest first, all images of one size together; they join the open group while the group's
    canvas (its largest height by its largest width, times its count) stays within ``1 + waste`` times the
    images' own area. The grouping depends on the sizes only (the same on every device).

    Returns:
        ``[(indices, height, width), ...]``: each group's images (ascending) and canvas size.
    """
    units: dict[Size, list[int]] = {}
    for i in items:
        h, w = sizes[i]
        units.setdefault((h, w), []).append(i)
    out: list[tuple[list[int], int, int]] = []
    group: list[int] = []
    gh = gw = area = 0
    for (h, w), members in sorted(units.items(), key=lambda u: (-u[0][0] * u[0][1], -u[0][0])):
        nh, nw, n = max(gh, h), max(gw, w), len(members)
        if group and (len(group) + n) * nh * nw > (1.0 + waste) * (area + n * h * w):
            out.append((sorted(group), gh, gw))
            group, nh, nw, area = [], h, w, 0
        group += members
        gh, gw, area = nh, nw, area + n * h * w
    if group:
        out.append((sorted(group), gh, gw))
    return out


def to_device(t: torch.Tensor, device: torch.device) -> torch.Tensor:
    """A CPU tensor on ``device``; to CUDA through page-locked memory without waiting for the GPU's queue."""
    if device.type == "cuda":
        return (t if t.is_pinned() else t.pin_memory()).to(device, non_blocking=True)
    return t.to(device)
