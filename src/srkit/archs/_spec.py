"""`ArchSpec` (one architecture), `ArchFamily` (one family module's architectures, checkpoint detection and key
layouts) and `pixel_shuffle_scale`, the one place a sub-pixel conv's width is turned into a scale."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from torch import Tensor, nn

StateDict = dict[str, Tensor]
#: ``detect(state_dict) -> (arch name, scale | None, build options) | None``; scale None: not readable from the
#: shapes (the caller must give it); None: not this family's layout.
Detect = Callable[[StateDict], tuple[str, int | None, dict[str, Any]] | None]
#: ``convert(state_dict) -> state_dict`` in the family's own key names; may raise KeyError / ValueError /
#: IndexError on a state dict that is not in its layout.
Convert = Callable[[StateDict], StateDict]


@dataclass(frozen=True)
class ArchSpec:
    """One entry of `srkit.archs.ARCHS`.

    Attributes:
        build: ``build(scale=s, **options) -> nn.Module``; the module maps (B, in_channels, H, W) in
            [0, input_range] to (B, out_channels, sH, sW) (discriminators: to logits).
        family: module of `srkit.archs` that defines it (one file per family) = its `ArchFamily`'s name.
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
        label: ``label(options) -> str``, the name to show for a build whose options make it another variant
            than the table name says (ECBSR M12C48 built from the ``ecbsr-m16c64`` entry); None: the table name.
        inputs: the per-call scalar inputs the module takes as keyword arguments (`ModelInfo.inputs`), e.g.
            ``("noise", "jpeg")`` for a conditioned model; () for most.
        noise_channels: > 0 for a stochastic model (`ModelInfo.noise_channels`): the channels of the noise field
            the engine draws once per image and crops with every tile.
        frames / frame_context: `ModelInfo.frames` and `ModelInfo.frame_context`: 1 / 0 for single-image
            networks; a multi-frame network's window of output frames per call and the frames of context the engine
            adds on each side of it.
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
    label: Callable[[dict], str] | None = None
    inputs: tuple[str, ...] = ()
    noise_channels: int = 0
    frames: int = 1
    frame_context: int = 0


@dataclass(frozen=True)
class ArchFamily:
    """One family module of `srkit.archs` (spandrel's pattern): its architectures, how to recognise a checkpoint
    of it, and the other official key layouts it can read. `srkit.archs.FAMILIES` lists them all; `ARCHS` and the
    detection order are derived from that one tuple.

    Attributes:
        name: the module's name (``edsr``, ``classic``, ...); every spec's ``family`` equals it.
        specs: arch name -> `ArchSpec`, in listing order (read-only once built).
        detect: ``detect(state_dict) -> (arch name, scale | None, options) | None`` for the family's plain layout,
            or None for families whose checkpoints are not detected (the discriminators). The name it returns is
            one of `specs`.
        layouts: other official key layouts, label -> ``convert(state_dict) -> state_dict`` mapping that layout
            to the plain one; tried in order after the plain layout (with the same `detect`). Needs `detect`.
    """

    name: str
    specs: Mapping[str, ArchSpec]
    detect: Detect | None = None
    layouts: Mapping[str, Convert] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not self.specs:
            raise ValueError(f"family {self.name!r} has no architectures")
        wrong = [arch for arch, spec in self.specs.items() if spec.family != self.name]
        if wrong:
            raise ValueError(f"family {self.name!r}: specs {wrong} name another family")
        if self.layouts and self.detect is None:
            raise ValueError(f"family {self.name!r}: key layouts without a detect function")
        # Read-only views, so a family cannot be extended after the fact (nothing registers itself).
        object.__setattr__(self, "specs", MappingProxyType(dict(self.specs)))
        object.__setattr__(self, "layouts", MappingProxyType(dict(self.layouts)))


def pixel_shuffle_scale(out_channels: int, channels: int) -> int | None:
    """The factor s of a sub-pixel (pixel-shuffle) conv: ``out_channels == channels * s * s``, s >= 1.

    Also the pixel-unshuffle factor of an input conv (in-channels over image channels). None when no integer s
    fits (or a count is below 1): the caller's layout does not match.
    """
    if channels < 1 or out_channels < 1 or out_channels % channels:
        return None
    s = math.isqrt(out_channels // channels)
    return s if s * s * channels == out_channels else None
