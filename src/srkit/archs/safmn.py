"""SAFMN: Spatially-Adaptive Feature Modulation Network.

Paper: Long Sun, Jiangxin Dong, Jinhui Tang, Jinshan Pan, "Spatially-Adaptive Feature Modulation for Efficient
Image Super-Resolution", ICCV 2023 (arXiv:2302.13800).
Repository: https://github.com/sunny2109/SAFMN (Apache-2.0: ``LICENSE/LICENSE``, the BasicSR licence the
repository is released under).

A 3x3 conv lifts the image to ``dim`` features; ``n_blocks`` feature mixing modules (FMM) follow, each a pre-norm
residual pair: a spatially-adaptive feature modulation (SAFM) and a convolutional channel mixer (CCM); a global
residual from the lifted features; then a 3x3 conv to ``3 * s^2`` channels and a pixel shuffle.

* SAFM splits the (layer-normed) features into 4 equal channel groups. Group 0 goes through a depth-wise 3x3
  conv at full resolution; group i (1..3) is max-pooled adaptively to ``(H // 2^i, W // 2^i)``, depth-wise 3x3
  conv'd and resized back to H x W (nearest). A 1x1 conv mixes the groups, GELU, and the result multiplies the
  SAFM input (the modulation).
* CCM: 3x3 conv ``dim -> int(dim * ffn_scale)``, GELU, 1x1 conv back to ``dim``.
* The layer norm normalises over channels at each pixel (eps 1e-6) with a per-channel affine.

State-dict keys as in sunny2109/SAFMN ``basicsr/archs/safmn_arch.py`` (class ``SAFMN``; checkpoints such as
``SAFMN_DF2K_x4.pth`` / ``SAFMN_L_DF2K_x4.pth`` under ``params`` / ``params_ema``): ``to_feat``,
``feats.<i>.norm1``, ``feats.<i>.norm2``, ``feats.<i>.safm.mfr.<0..3>``, ``feats.<i>.safm.aggr``,
``feats.<i>.ccm.ccm.{0,2}``, ``to_img.0``. Released configurations: SAFMN (dim 36, 8 blocks, ffn_scale 2) and
SAFMN-L (dim 128, 16 blocks, also the real-world x4 model), both x2/x3/x4 and all with the same module. The
NTIRE 2023 variant (``safmn_ntire_arch.py``: GRN, bias-free convs, no layer norms) is another layout and is
not recognised here.

Value range: input and output RGB in [0, 1] (BasicSR), no mean shift.

Sizes: any H, W. The coarsest SAFM level pools to H // 8, so the authors' code needs H, W >= 8; here a pooled
side is clamped to at least 1 (identical results wherever the authors' code runs). Sizes that are not multiples
of 8 are run as is, as the authors' evaluation does (pooling bins then differ slightly in size), so
``size_multiple`` is 1. The pooled grid is tied to the image extent (and to its origin), so outputs depend on the
whole image: the receptive field is declared None (tiles are blended, not stitched exactly).
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from srkit.archs._spec import ArchFamily, ArchSpec, pixel_shuffle_scale
from srkit.errors import ConfigError

PAPER = ("Sun, Dong, Tang, Pan, 'Spatially-Adaptive Feature Modulation for Efficient Image Super-Resolution', "
         "ICCV 2023")
REPO = "https://github.com/sunny2109/SAFMN"
LICENSE = "Apache-2.0"

N_LEVELS = 4  # SAFM's channel groups / pyramid levels (fixed in the authors' SAFMN)


class ChannelLayerNorm(nn.Module):
    """Layer norm over the channel axis of (B, C, H, W), per pixel: (B, C, H, W) -> same.

    Biased variance, ``eps`` inside the square root, then ``weight * x + bias`` per channel. Statistics are taken
    in float32 for half-precision inputs (bit-identical to computing them in the input dtype for float32).
    """

    def __init__(self, channels: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(channels))
        self.bias = nn.Parameter(torch.zeros(channels))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        dtype = x.dtype
        if dtype in (torch.float16, torch.bfloat16):
            x = x.float()
        centred = x - x.mean(dim=1, keepdim=True)
        var = centred.pow(2).mean(dim=1, keepdim=True)
        y = centred / torch.sqrt(var + self.eps)
        y = self.weight[:, None, None] * y + self.bias[:, None, None]
        return y.to(dtype)


class SAFM(nn.Module):
    """Spatially-adaptive feature modulation: (B, dim, H, W) -> (B, dim, H, W).

    ``x * gelu(aggr(cat_i(level_i(x_i))))`` with x_i the i-th of `n_levels` channel groups; level 0 is a
    depth-wise 3x3 conv, level i > 0 the same on an adaptive max-pool to (H >> i, W >> i), resized back (nearest).
    """

    def __init__(self, dim: int, n_levels: int = N_LEVELS):
        super().__init__()
        if dim % n_levels:
            raise ConfigError(f"SAFM needs dim divisible by {n_levels}, got {dim}")
        self.n_levels = n_levels
        group = dim // n_levels
        self.mfr = nn.ModuleList(nn.Conv2d(group, group, 3, padding=1, groups=group) for _ in range(n_levels))
        self.aggr = nn.Conv2d(dim, dim, 1)
        self.act = nn.GELU()

    def forward(self, x: Tensor) -> Tensor:
        h, w = x.shape[-2:]
        levels = []
        for i, (part, conv) in enumerate(zip(x.chunk(self.n_levels, dim=1), self.mfr)):
            if i == 0:
                levels.append(conv(part))
                continue
            pooled = F.adaptive_max_pool2d(part, (max(1, h >> i), max(1, w >> i)))
            levels.append(F.interpolate(conv(pooled), size=(h, w), mode="nearest"))
        return self.act(self.aggr(torch.cat(levels, dim=1))) * x


class CCM(nn.Module):
    """Convolutional channel mixer: 3x3 conv (dim -> hidden), GELU, 1x1 conv (hidden -> dim)."""

    def __init__(self, dim: int, ffn_scale: float = 2.0):
        super().__init__()
        hidden = int(dim * ffn_scale)
        if hidden < 1:
            raise ConfigError(f"ffn_scale {ffn_scale} leaves no hidden channels for dim {dim}")
        self.ccm = nn.Sequential(nn.Conv2d(dim, hidden, 3, padding=1), nn.GELU(), nn.Conv2d(hidden, dim, 1))

    def forward(self, x: Tensor) -> Tensor:
        return self.ccm(x)


class FMM(nn.Module):
    """Feature mixing module: ``x + safm(norm1(x))``, then ``+ ccm(norm2(.))``; (B, dim, H, W) -> same."""

    def __init__(self, dim: int, ffn_scale: float = 2.0):
        super().__init__()
        self.norm1 = ChannelLayerNorm(dim)
        self.norm2 = ChannelLayerNorm(dim)
        self.safm = SAFM(dim)
        self.ccm = CCM(dim, ffn_scale)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.safm(self.norm1(x))
        return x + self.ccm(self.norm2(x))


class SAFMN(nn.Module):
    """SAFMN: (B, 3, H, W) in [0, 1] -> (B, 3, sH, sW) in [0, 1].

    Args:
        dim: feature width (36; 128 for SAFMN-L); a multiple of 4.
        n_blocks: feature mixing modules (8; 16 for SAFMN-L).
        ffn_scale: CCM hidden width = ``int(dim * ffn_scale)`` (2.0).
        upscaling_factor: scale factor s (pixel-shuffle upsampler).
    """

    def __init__(self, dim: int = 36, n_blocks: int = 8, ffn_scale: float = 2.0, upscaling_factor: int = 4):
        super().__init__()
        self.to_feat = nn.Conv2d(3, dim, 3, padding=1)
        self.feats = nn.Sequential(*(FMM(dim, ffn_scale) for _ in range(n_blocks)))
        self.to_img = nn.Sequential(nn.Conv2d(dim, 3 * upscaling_factor**2, 3, padding=1),
                                    nn.PixelShuffle(upscaling_factor))

    def forward(self, x: Tensor) -> Tensor:
        shallow = self.to_feat(x)
        return self.to_img(self.feats(shallow) + shallow)


def build_safmn(scale: int = 4, *, dim: int = 36, n_blocks: int = 8, ffn_scale: float = 2.0) -> SAFMN:
    """SAFMN (dim 36, 8 FMMs, ffn_scale 2): (B, 3, H, W) -> (B, 3, sH, sW). SAFMN-L: dim=128, n_blocks=16."""
    if not isinstance(dim, int) or dim < N_LEVELS or dim % N_LEVELS:
        raise ConfigError(f"safmn: dim must be a positive multiple of {N_LEVELS}, got {dim!r}")
    if not isinstance(n_blocks, int) or n_blocks < 1:
        raise ConfigError(f"safmn: n_blocks must be a positive integer, got {n_blocks!r}")
    try:
        ffn_scale = float(ffn_scale)
    except (TypeError, ValueError):
        raise ConfigError(f"safmn: ffn_scale must be a number, got {ffn_scale!r}") from None
    return SAFMN(dim=dim, n_blocks=n_blocks, ffn_scale=ffn_scale, upscaling_factor=scale)


SAFMN_SPEC = ArchSpec(
    build=build_safmn, family="safmn", paper=PAPER, repo=REPO, license=LICENSE, scales=(2, 3, 4),
    in_channels=3, out_channels=3, color_space="rgb", size_multiple=1,
    # Adaptive max-pooling to grids of H // 2^i x W // 2^i cells: outputs depend on the image extent.
    receptive_field=None,
    # fp16 left out: untested on the released weights (spandrel also marks SAFMN as not half-safe); the layer
    # norms take their statistics in float32 either way.
    safe_dtypes=("fp32", "bf16"),
)

_TOP = {"to_feat", "feats", "to_img"}


def _ffn_scale_for(dim: int, hidden: int) -> float | None:
    """A float f with ``int(dim * f) == hidden`` (the authors' rounding), as close to hidden / dim as possible."""
    f = hidden / dim
    for _ in range(4):
        if int(dim * f) == hidden:
            return f
        f = math.nextafter(f, math.inf)
    return None


def detect_safmn(state_dict: dict[str, Tensor]) -> tuple[str, int, dict] | None:
    """Recognise a sunny2109/SAFMN ``SAFMN`` checkpoint (SAFMN, SAFMN-L, real-world SAFMN-L, any width/depth).

    ``dim`` from ``to_feat``, ``n_blocks`` from the ``feats.<i>`` indices, ``ffn_scale`` from the first CCM's
    hidden width, the scale from ``to_img.0`` (3 * s^2 outputs; the only upsampler SAFMN has). Returns None for
    other layouts (e.g. the NTIRE 2023 variant), for input channels other than 3, for a SAFM with other than 4
    levels and for scales outside 2/3/4.
    """
    for k in ("to_feat.weight", "to_img.0.weight", "feats.0.norm1.weight", "feats.0.norm2.weight",
              "feats.0.safm.aggr.weight", "feats.0.ccm.ccm.0.weight", "feats.0.ccm.ccm.2.weight"):
        if k not in state_dict:
            return None
    if any(k.split(".", 1)[0] not in _TOP for k in state_dict):
        return None
    first = state_dict["to_feat.weight"]
    if first.dim() != 4 or int(first.shape[1]) != 3:
        return None
    dim = int(first.shape[0])
    blocks = {int(k.split(".")[1]) for k in state_dict if k.startswith("feats.") and k.split(".")[1].isdigit()}
    n_blocks = max(blocks) + 1
    if blocks != set(range(n_blocks)):
        return None
    levels = {k.split(".")[4] for k in state_dict if k.startswith("feats.0.safm.mfr.")}
    if levels != {str(i) for i in range(N_LEVELS)}:
        return None
    ffn_scale = _ffn_scale_for(dim, int(state_dict["feats.0.ccm.ccm.0.weight"].shape[0]))
    if ffn_scale is None:
        return None
    scale = pixel_shuffle_scale(int(state_dict["to_img.0.weight"].shape[0]), 3)
    if scale is None or scale not in SAFMN_SPEC.scales:
        return None
    return "safmn", scale, {"dim": dim, "n_blocks": n_blocks, "ffn_scale": ffn_scale}


FAMILY = ArchFamily(
    name="safmn",
    specs={"safmn": SAFMN_SPEC},
    detect=detect_safmn,
)


__all__ = ["FAMILY", "CCM", "FMM", "SAFM", "SAFMN", "SAFMN_SPEC", "ChannelLayerNorm", "build_safmn", "detect_safmn"]
