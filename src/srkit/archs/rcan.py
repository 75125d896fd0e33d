"""RCAN: residual channel attention networks (residual-in-residual groups of channel-attention blocks).

Paper: Y. Zhang, K. Li, K. Li, L. Wang, B. Zhong, Y. Fu, "Image Super-Resolution Using Very Deep Residual
Channel Attention Networks", ECCV 2018.
Official code and weights: https://github.com/yulunzhang/RCAN (built on EDSR-PyTorch; the repository has no
licence file). Module and parameter names follow its ``RCAN_TestCode/code/model/rcan.py`` exactly, so the
released ``RCAN_BIX{2,3,4,8}.pt`` / ``RCAN_BDX3.pt`` state dicts load with ``load_state_dict(strict=True)``:

    sub_mean / add_mean               1x1 mean shifts (DIV2K mean times rgb_range), buffers here
    head.0                            3x3 conv, colours -> num_feat
    body.G.body.B.body.{0,2}          RCAB B of residual group G: conv, ReLU, conv
    body.G.body.B.body.3.conv_du.{0,2}    its channel attention: 1x1 squeeze (C -> C/reduction), 1x1 excite
    body.G.body.<num_block>           3x3 conv closing group G
    body.<num_group>                  3x3 conv closing the body
    tail.0.{0,2,4}                    sub-pixel upsampler as EDSR's (x3: one conv; 2^n: n convs)
    tail.1                            3x3 conv, num_feat -> colours

In the official code the mean shifts are ``nn.Conv2d`` parameters that were (unintentionally) left
trainable, so released weights may hold slightly trained values; as buffers they still load exactly and are
used as stored. Input range: the official weights take 0..255 pixels (``rgb_range=255``); srkit's default is
``rgb_range=1``.
"""

from __future__ import annotations

import torch
from torch import nn

from srkit.archs._spec import ArchFamily, ArchSpec
from srkit.archs.edsr import (
    MeanShift,
    Upsampler,
    check_upsampler_scale,
    default_mean,
    mean_shift_range,
    upsampler_scale,
)
from srkit.errors import ConfigError

__all__ = ["FAMILY", "RCAN", "RCAN_SPEC", "build_rcan", "detect_rcan"]


def _conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    """Size-keeping k x k conv with bias (the official ``default_conv``): (B, cin, H, W) -> (B, cout, H, W)."""
    return nn.Conv2d(cin, cout, k, padding=k // 2)


class CALayer(nn.Module):
    """Channel attention: global average pool, squeeze-excite 1x1 convs, sigmoid gate.

    (B, C, H, W) -> (B, C, H, W): every channel scaled by a weight in (0, 1) computed from the whole image.
    Keys ``conv_du.0`` (C -> C/reduction) and ``conv_du.2`` (C/reduction -> C).
    """

    def __init__(self, num_feat: int, reduction: int = 16):
        super().__init__()
        self.avg_pool = nn.AdaptiveAvgPool2d(1)
        self.conv_du = nn.Sequential(
            nn.Conv2d(num_feat, num_feat // reduction, 1), nn.ReLU(inplace=True),
            nn.Conv2d(num_feat // reduction, num_feat, 1), nn.Sigmoid(),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return x * self.conv_du(self.avg_pool(x))


class RCAB(nn.Module):
    """Residual channel attention block: x + CA(conv(ReLU(conv(x)))); (B, C, H, W) -> (B, C, H, W).

    Keys ``body.0``, ``body.2`` (convs) and ``body.3`` (`CALayer`). No residual scaling (the official code
    has it commented out).
    """

    def __init__(self, num_feat: int, reduction: int = 16):
        super().__init__()
        self.body = nn.Sequential(_conv(num_feat, num_feat), nn.ReLU(inplace=True), _conv(num_feat, num_feat),
                                  CALayer(num_feat, reduction))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return x + self.body(x)


class ResidualGroup(nn.Module):
    """`num_block` RCABs and a closing conv, with a skip around them; (B, C, H, W) -> (B, C, H, W)."""

    def __init__(self, num_feat: int, num_block: int, reduction: int = 16):
        super().__init__()
        self.body = nn.Sequential(*(RCAB(num_feat, reduction) for _ in range(num_block)), _conv(num_feat, num_feat))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return x + self.body(x)


class RCAN(nn.Module):
    """RCAN: mean shift, head conv, residual groups with a long skip, sub-pixel upsampler, tail conv.

    Args:
        scale: 2, 3, 4 or 8.
        num_channels: image channels in and out.
        num_feat: feature maps.
        num_group: residual groups (10).
        num_block: RCABs per group (20).
        reduction: channel-attention squeeze ratio (16).
        rgb_range: input pixel range: 255 for the official weights, 1 for srkit-trained ones.
        rgb_mean: per-channel mean (fractions of rgb_range); None: the DIV2K mean the official weights use.

    Shapes: (B, num_channels, H, W) in [0, rgb_range] -> (B, num_channels, H*scale, W*scale), roughly
    [0, rgb_range]. Every output pixel depends on the whole input (channel attention pools globally), so
    tiled inference is only approximately equal to whole-image inference.
    """

    def __init__(self, scale: int = 4, num_channels: int = 3, num_feat: int = 64, num_group: int = 10,
                 num_block: int = 20, reduction: int = 16, rgb_range: float = 1.0, rgb_mean=None):
        super().__init__()
        rgb_mean = default_mean(num_channels) if rgb_mean is None else tuple(rgb_mean)
        if len(rgb_mean) != num_channels:
            raise ConfigError(f"rgb_mean has {len(rgb_mean)} values for {num_channels} channels")
        if num_feat // reduction < 1:
            raise ConfigError(f"reduction {reduction} leaves no channels of {num_feat}")
        self.scale = check_upsampler_scale(scale)  # plain attribute: the factor this module was built for
        self.rgb_range = float(rgb_range)
        self.sub_mean = MeanShift(rgb_range, rgb_mean, -1)
        self.head = nn.Sequential(_conv(num_channels, num_feat))
        self.body = nn.Sequential(*(ResidualGroup(num_feat, num_block, reduction) for _ in range(num_group)),
                                  _conv(num_feat, num_feat))
        self.tail = nn.Sequential(Upsampler(scale, num_feat), _conv(num_feat, num_channels))
        self.add_mean = MeanShift(rgb_range, rgb_mean, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H*scale, W*scale)."""
        x = self.head(self.sub_mean(x))
        x = x + self.body(x)
        return self.add_mean(self.tail(x))


def build_rcan(scale: int = 4, *, num_channels: int = 3, num_feat: int = 64, num_group: int = 10,
               num_block: int = 20, reduction: int = 16, rgb_range: float = 1.0, rgb_mean=None) -> RCAN:
    """RCAN (10 groups x 20 RCABs, 64 feature maps, reduction 16); see `RCAN`."""
    return RCAN(scale, num_channels, num_feat, num_group, num_block, reduction, rgb_range, rgb_mean)


RCAN_SPEC = ArchSpec(
    build=build_rcan,
    family="rcan",
    paper="Y. Zhang, K. Li, K. Li, L. Wang, B. Zhong, Y. Fu, Image Super-Resolution Using Very Deep Residual "
          "Channel Attention Networks, ECCV 2018",
    repo="https://github.com/yulunzhang/RCAN",
    license="none stated (the repository has no licence file)",
    scales=(2, 3, 4, 8),
    in_channels=3,
    out_channels=3,
    color_space="rgb",
    size_multiple=1,
    receptive_field=None,  # channel attention averages over the whole image
    # No fp16: 0..255 activations summed over 200 blocks (spandrel also marks RCAN as not half-safe).
    safe_dtypes=("fp32", "bf16"),
)


def detect_rcan(state_dict: dict[str, torch.Tensor]) -> tuple[str, int, dict] | None:
    """Recognise an official yulunzhang/RCAN checkpoint.

    Groups from the largest ``body.G.body.0.body.0`` index, blocks per group from ``body.0.body.B.body.0``,
    width from ``head.0.weight``, reduction from the attention squeeze conv, scale from ``tail.0`` (as EDSR),
    ``rgb_range`` from the stored ``sub_mean.bias`` (255 for the official weights).

    Returns ("rcan", scale, options) or None for other layouts.
    """
    needed = ("head.0.weight", "body.0.body.0.body.0.weight", "body.0.body.0.body.3.conv_du.0.weight",
              "tail.0.0.weight", "tail.1.weight")
    if not all(k in state_dict for k in needed):
        return None
    head = state_dict["head.0.weight"]
    if head.ndim != 4:
        return None
    num_feat, num_channels = int(head.shape[0]), int(head.shape[1])
    num_group = 0
    while f"body.{num_group}.body.0.body.0.weight" in state_dict:
        num_group += 1
    num_block = 0
    while f"body.0.body.{num_block}.body.0.weight" in state_dict:
        num_block += 1
    if f"body.{num_group}.weight" not in state_dict or f"body.0.body.{num_block}.weight" not in state_dict:
        return None
    squeeze = int(state_dict["body.0.body.0.body.3.conv_du.0.weight"].shape[0])
    scale = upsampler_scale(state_dict, "tail.0", num_feat)
    if scale is None or squeeze < 1 or num_feat % squeeze:
        return None
    options = {
        "num_channels": num_channels,
        "num_feat": num_feat,
        "num_group": num_group,
        "num_block": num_block,
        "reduction": num_feat // squeeze,
        "rgb_range": mean_shift_range(state_dict),
    }
    return "rcan", scale, options


FAMILY = ArchFamily(
    name="rcan",
    specs={"rcan": RCAN_SPEC},
    detect=detect_rcan,
)
