"""RLFN: Residual Local Feature Network.

Paper: Fangyuan Kong, Mingxi Li, Songwei Liu, Ding Liu, Jingwen He, Yang Bai, Fangmin Chen, Lean Fu, "Residual
Local Feature Network for Efficient Super-Resolution", CVPR Workshops (NTIRE) 2022.
Repository: https://github.com/bytedance/RLFN (Apache-2.0).

Six residual local feature blocks (RLFB): three 3x3 convs with LeakyReLU(0.05) and a local residual, a 1x1 conv,
then enhanced spatial attention (ESA: 1x1 reduce -> 3x3 stride-2 conv -> 7x7/3 max-pool -> 3x3 conv -> bilinear
resize back to the input size, plus a 1x1 of the reduced features -> 1x1 -> sigmoid gate). A 3x3 conv and a
global residual from the shallow features, then conv + pixel shuffle.

State-dict keys as in bytedance/RLFN ``model/rlfn.py`` / ``model/block.py``: ``conv_1``, ``block_<i>.c1_r``,
``c2_r``, ``c3_r``, ``c5``, ``block_<i>.esa.{conv1,conv_f,conv2,conv3,conv4}``, ``conv_2``, ``upsampler.0``.
The same module also builds the released RLFN-S (48 channels) and the NTIRE 2022 pruned model
(``rlfn_ntire.py``: 46 channels, 48 mid channels, 4 blocks) through its options.

Value range: the released weights (``model_zoo/*.pth``) take and return RGB in 0..255 (``test_demo.py``
multiplies the [0, 1] input by 255 and divides the output by 255; they are trained in the EDSR framework), so
`detect_rlfn` returns ``rgb_range=255``; the layers do not depend on it (srkit scales around the module).
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn

from srkit.archs._spec import ArchFamily, ArchSpec, pixel_shuffle_scale

PAPER = ("Kong, Li, Liu, Liu, He, Bai, Chen, Fu, 'Residual Local Feature Network for Efficient Super-Resolution', "
         "CVPRW 2022")
REPO = "https://github.com/bytedance/RLFN"
LICENSE = "Apache-2.0"


def _conv(in_ch: int, out_ch: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, k, padding=k // 2)


class ESA(nn.Module):
    """Enhanced spatial attention (RFANet's, without conv_max/conv3_ as in RLFN): (B, C, H, W) -> same.

    The gate comes from a stride-2 conv, a 7x7 stride-3 max-pool and a bilinear resize back to H x W, so it sees
    a wide neighbourhood and depends on the image size (not shift-equivariant).
    """

    def __init__(self, esa_channels: int, n_feats: int):
        super().__init__()
        f = esa_channels
        self.conv1 = nn.Conv2d(n_feats, f, 1)
        self.conv_f = nn.Conv2d(f, f, 1)
        self.conv2 = nn.Conv2d(f, f, 3, stride=2, padding=0)
        self.conv3 = nn.Conv2d(f, f, 3, padding=1)
        self.conv4 = nn.Conv2d(f, n_feats, 1)

    def forward(self, x: Tensor) -> Tensor:
        c1_ = self.conv1(x)
        c1 = self.conv2(c1_)
        v_max = F.max_pool2d(c1, kernel_size=7, stride=3)
        c3 = F.interpolate(self.conv3(v_max), size=x.shape[-2:], mode="bilinear", align_corners=False)
        return x * self.conv4(c3 + self.conv_f(c1_)).sigmoid()


class RLFB(nn.Module):
    """Residual local feature block: (B, C, H, W) -> (B, out_channels or C, H, W).

    ``esa(c5(lrelu(c3_r(lrelu(c2_r(lrelu(c1_r(x)))))) + x))``, LeakyReLU slope 0.05.
    """

    def __init__(self, in_channels: int, mid_channels: int | None = None, out_channels: int | None = None,
                 esa_channels: int = 16):
        super().__init__()
        mid_channels = in_channels if mid_channels is None else mid_channels
        out_channels = in_channels if out_channels is None else out_channels
        self.c1_r = _conv(in_channels, mid_channels, 3)
        self.c2_r = _conv(mid_channels, mid_channels, 3)
        self.c3_r = _conv(mid_channels, in_channels, 3)
        self.c5 = _conv(in_channels, out_channels, 1)
        self.esa = ESA(esa_channels, out_channels)
        self.act = nn.LeakyReLU(0.05)

    def forward(self, x: Tensor) -> Tensor:
        out = self.act(self.c1_r(x))
        out = self.act(self.c2_r(out))
        out = self.act(self.c3_r(out))
        return self.esa(self.c5(out + x))


class RLFN(nn.Module):
    """RLFN: (B, in_channels, H, W) in [0, rgb_range] -> (B, out_channels, sH, sW) in [0, rgb_range].

    Args:
        in_channels / out_channels: image channels.
        feature_channels: width (52 for RLFN, 48 for RLFN-S, 46 for the NTIRE model).
        mid_channels: width inside each RLFB's three convs (default = feature_channels; 48 for the NTIRE model).
        num_blocks: RLFBs (6; 4 for the NTIRE model).
        esa_channels: ESA width (16).
        upscale: scale factor s.
        rgb_range: value range the weights expect (255 for the released weights); informational -- the layers
            do not depend on it.
    """

    def __init__(self, in_channels: int = 3, out_channels: int = 3, feature_channels: int = 52,
                 mid_channels: int | None = None, num_blocks: int = 6, esa_channels: int = 16, upscale: int = 4,
                 rgb_range: float = 1.0):
        super().__init__()
        self.num_blocks = num_blocks
        self.rgb_range = float(rgb_range)
        self.conv_1 = _conv(in_channels, feature_channels, 3)
        for i in range(1, num_blocks + 1):
            self.add_module(f"block_{i}", RLFB(feature_channels, mid_channels, esa_channels=esa_channels))
        self.conv_2 = _conv(feature_channels, feature_channels, 3)
        self.upsampler = nn.Sequential(_conv(feature_channels, out_channels * upscale * upscale, 3),
                                       nn.PixelShuffle(upscale))

    def forward(self, x: Tensor) -> Tensor:
        out_feature = self.conv_1(x)
        out = out_feature
        for i in range(1, self.num_blocks + 1):
            out = getattr(self, f"block_{i}")(out)
        return self.upsampler(self.conv_2(out) + out_feature)


def build_rlfn(scale: int = 4, *, in_channels: int = 3, out_channels: int = 3, feature_channels: int = 52,
               mid_channels: int | None = None, num_blocks: int = 6, esa_channels: int = 16,
               rgb_range: float = 1.0) -> RLFN:
    """RLFN (52 channels, 6 RLFBs, ESA 16): (B, 3, H, W) -> (B, 3, sH, sW). See `RLFN` for the options."""
    return RLFN(in_channels=in_channels, out_channels=out_channels, feature_channels=feature_channels,
                mid_channels=mid_channels, num_blocks=num_blocks, esa_channels=esa_channels, upscale=scale,
                rgb_range=rgb_range)


RLFN_SPEC = ArchSpec(
    build=build_rlfn, family="rlfn", paper=PAPER, repo=REPO, license=LICENSE, scales=(2, 3, 4),
    in_channels=3, out_channels=3, color_space="rgb", size_multiple=1,
    # Finite in principle (measured: 24 LR px with one RLFB, 110 with six), but the ESA gate is resized to the
    # image size, so outputs depend on the image extent and no tile overlap reproduces them: whole image.
    receptive_field=None,
    # fp16 left out: the released weights run on 0..255 with no normalisation layer.
    safe_dtypes=("fp32", "bf16"),
)


def detect_rlfn(state_dict: dict[str, Tensor]) -> tuple[str, int, dict] | None:
    """Recognise a bytedance/RLFN checkpoint (RLFN, RLFN-S or the NTIRE pruned model).

    Width and input channels from ``conv_1``, mid width from ``block_1.c1_r``, ESA width from
    ``block_1.esa.conv1``, the number of blocks from the ``block_<i>`` names, the scale from ``upsampler.0``
    (out_channels assumed = in_channels). Options include ``rgb_range=255`` (the released weights expect 0..255).
    """
    for k in ("conv_1.weight", "block_1.c1_r.weight", "block_1.esa.conv1.weight", "conv_2.weight",
              "upsampler.0.weight"):
        if k not in state_dict:
            return None
    first = state_dict["conv_1.weight"]
    if first.dim() != 4:
        return None
    feature_channels, in_channels = int(first.shape[0]), int(first.shape[1])
    blocks = {int(k.split(".")[0][6:]) for k in state_dict if k.startswith("block_") and k.split(".")[0][6:].isdigit()}
    n = max(blocks)
    if blocks != set(range(1, n + 1)):
        return None
    mid = int(state_dict["block_1.c1_r.weight"].shape[0])
    esa = int(state_dict["block_1.esa.conv1.weight"].shape[0])
    scale = pixel_shuffle_scale(int(state_dict["upsampler.0.weight"].shape[0]), in_channels)
    if scale is None:
        return None
    options = {
        "in_channels": in_channels,
        "out_channels": in_channels,
        "feature_channels": feature_channels,
        "mid_channels": None if mid == feature_channels else mid,
        "num_blocks": n,
        "esa_channels": esa,
        "rgb_range": 255.0,
    }
    return "rlfn", scale, options


FAMILY = ArchFamily(
    name="rlfn",
    specs={"rlfn": RLFN_SPEC},
    detect=detect_rlfn,
)


__all__ = ["FAMILY", "ESA", "RLFB", "RLFN", "RLFN_SPEC", "build_rlfn", "detect_rlfn"]
