"""SRVGGNetCompact, the compact VGG-style Real-ESRGAN generator.

Paper: Xintao Wang, Liangbin Xie, Chao Dong, Ying Shan, "Real-ESRGAN: Training Real-World Blind
Super-Resolution with Pure Synthetic Data", ICCV Workshops 2021 (the compact model was released with the
repository's anime-video / general-x4v3 models).

Original code: https://github.com/xinntao/Real-ESRGAN (``realesrgan/archs/srvgg_arch.py``), BSD-3-Clause.

Keys as in Real-ESRGAN checkpoints (``realesr-animevideov3.pth``: num_conv 16, ``realesr-general-x4v3.pth``:
num_conv 32): a single ``body`` ModuleList alternating conv / activation, so the convs are ``body.0``,
``body.2``, ..., ``body.<2*num_conv+2>`` and PReLU weights are ``body.1``, ``body.3``, ....
"""

from __future__ import annotations

import re

import torch
from torch import nn
from torch.nn import functional as F

from srkit.archs._spec import ArchFamily, ArchSpec, pixel_shuffle_scale

__all__ = ["FAMILY", "SRVGG_COMPACT_SPEC", "SRVGGNetCompact", "build_srvggnet_compact", "detect_srvgg"]


def _activation(act_type: str, num_feat: int) -> nn.Module:
    if act_type == "prelu":
        return nn.PReLU(num_parameters=num_feat)
    if act_type == "relu":
        return nn.ReLU(inplace=True)
    if act_type == "leakyrelu":
        return nn.LeakyReLU(negative_slope=0.1, inplace=True)  # 0.1 as in Real-ESRGAN, not 0.2
    raise ValueError(f"unknown act_type {act_type!r} (prelu, relu, leakyrelu)")


class SRVGGNetCompact(nn.Module):
    """Plain conv stack in LR space, one pixel-shuffle at the end, plus the nearest-upsampled input.

    Maps (B, num_in_ch, H, W) in [0, 1] to (B, num_out_ch, H*upscale, W*upscale), nominally [0, 1] (not
    clamped). The network learns the residual over nearest-neighbour upsampling (needs num_in_ch == num_out_ch).

    Args:
        num_in_ch / num_out_ch: image channels.
        num_feat: channels of the body (64).
        num_conv: 3x3 convs between the first and the last conv (16 for the compact model).
        upscale: scale factor.
        act_type: "prelu" (official weights), "relu" or "leakyrelu" (slope 0.1).
    """

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64, num_conv: int = 16,
                 upscale: int = 4, act_type: str = "prelu"):
        super().__init__()
        self.upscale = upscale
        self.body = nn.ModuleList([nn.Conv2d(num_in_ch, num_feat, 3, 1, 1), _activation(act_type, num_feat)])
        for _ in range(num_conv):
            self.body.append(nn.Conv2d(num_feat, num_feat, 3, 1, 1))
            self.body.append(_activation(act_type, num_feat))
        self.body.append(nn.Conv2d(num_feat, num_out_ch * upscale * upscale, 3, 1, 1))
        self.upsampler = nn.PixelShuffle(upscale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H*upscale, W*upscale)."""
        out = x
        for layer in self.body:
            out = layer(out)
        # Residual over nearest upsampling: the body only has to learn the detail.
        return self.upsampler(out) + F.interpolate(x, scale_factor=self.upscale, mode="nearest")


def build_srvggnet_compact(scale: int = 4, *, num_in_ch: int = 3, num_out_ch: int = 3, num_feat: int = 64,
                           num_conv: int = 16, act_type: str = "prelu") -> SRVGGNetCompact:
    """SRVGGNetCompact with the compact model's defaults (64 ch, 16 body convs, PReLU): 621,424 params at x4
    (realesr-general-x4v3 uses num_conv=32: 1,213,296). Maps (B, 3, H, W) in [0, 1] to (B, 3, sH, sW)."""
    return SRVGGNetCompact(num_in_ch=num_in_ch, num_out_ch=num_out_ch, num_feat=num_feat, num_conv=num_conv,
                           upscale=scale, act_type=act_type)


_KEY = re.compile(r"^body\.(\d+)\.(weight|bias)$")


def detect_srvgg(state_dict: dict[str, torch.Tensor]) -> tuple[str, int, dict] | None:
    """Recognise a Real-ESRGAN SRVGGNetCompact checkpoint from its ``body.N`` keys.

    num_conv = (last conv index - 2) / 2, num_feat from ``body.0.weight``, the scale from the last conv's
    out-channels = num_out_ch * s * s (num_out_ch = num_in_ch, required by the residual), the activation from
    ``body.1.weight`` (PReLU). Parameter-free activations (relu / leakyrelu) leave no trace in a state dict and
    cannot be told apart, so such checkpoints (none are released officially) return None. Official weights
    take [0, 1] RGB input.
    """
    idx: dict[int, set[str]] = {}
    for k in state_dict:
        m = _KEY.match(k)
        if m is None:
            return None
        idx.setdefault(int(m.group(1)), set()).add(m.group(2))
    if not idx or 0 not in idx or 1 not in idx:
        return None
    last = max(idx)
    convs, acts = range(0, last + 1, 2), range(1, last, 2)
    if last % 2 or any(idx.get(i) != {"weight", "bias"} for i in convs) or any(idx.get(i) != {"weight"} for i in acts):
        return None
    w0, wl = state_dict["body.0.weight"], state_dict[f"body.{last}.weight"]
    if w0.ndim != 4 or state_dict["body.1.weight"].ndim != 1:
        return None
    num_feat, num_in_ch = int(w0.shape[0]), int(w0.shape[1])
    scale = pixel_shuffle_scale(int(wl.shape[0]), num_in_ch)
    if scale is None:
        return None
    options = {"num_in_ch": num_in_ch, "num_out_ch": num_in_ch, "num_feat": num_feat,
               "num_conv": (last - 2) // 2, "act_type": "prelu"}
    return "srvggnet-compact", scale, options


SRVGG_COMPACT_SPEC = ArchSpec(
    build=build_srvggnet_compact,
    family="srvgg",
    paper="Wang, Xie, Dong, Shan, Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic "
          "Data, ICCV Workshops 2021 (SRVGGNetCompact)",
    repo="https://github.com/xinntao/Real-ESRGAN",
    license="BSD-3-Clause",
    scales=(2, 3, 4),
    in_channels=3,
    out_channels=3,
    color_space="rgb",
    size_multiple=1,
    # num_conv + 2 convs of 3x3 in LR space; the pixel shuffle and the nearest shortcut add no context.
    receptive_field=lambda options: int(options.get("num_conv", 16)) + 2,
    # Real-ESRGAN runs these models in fp16 by default; activations stay O(1).
    safe_dtypes=("fp32", "bf16", "fp16"),
)


FAMILY = ArchFamily(
    name="srvgg",
    specs={"srvggnet-compact": SRVGG_COMPACT_SPEC},
    detect=detect_srvgg,
)
