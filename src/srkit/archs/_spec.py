"""`ArchSpec`: what the architecture table says about each architecture."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from torch import nn


@dataclass(frozen=True)
class ArchSpec:
    """One entry of `srkit.archs.ARCHS`.

    Attributes:
        build: ``build(scale=s, **options) -> nn.Module``; the module maps (B, in_channels, H, W) in
            [0, input_range] to (B, out_channels, sH, sW) (discriminators: to logits).
        family: module of `srkit.archs` that defines it (one file per family).
        paper: citation of the paper the architecture comes from.
        repo: the authors' repository.
        license: that repository's licence.
        scales: scale factors the architecture supports.
        in_channels / out_channels: for default options (Y-only models: 1).
        color_space: "rgb" or "y".
        size_multiple: LR height/width must be divisible by this (callers reflect-pad).
        receptive_field: LR pixels of context on each side one output pixel depends on (an int, or a function of
            the build options dict when it depends on them);
            None when it is the whole image (global pooling / attention).
        safe_dtypes: dtypes that keep accuracy.
        kind: "generator" (SR network) or "discriminator".
    """

    build: Callable[..., nn.Module]
    family: str
    paper: str
    repo: str
    license: str
    scales: tuple[int, ...] = (2, 3, 4)
    in_channels: int = 3
    out_channels: int = 3
    color_space: str = "rgb"
    size_multiple: int = 1
    receptive_field: int | None | Callable[[dict], int | None] = None
    safe_dtypes: tuple[str, ...] = ("fp32", "bf16", "fp16")
    kind: str = "generator"
