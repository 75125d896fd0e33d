"""EDSR and EDSR-baseline: enhanced deep residual networks without batch norm.

Paper: B. Lim, S. Son, H. Kim, S. Nah, K. M. Lee, "Enhanced Deep Residual Networks for Single Image
Super-Resolution", CVPR Workshops (NTIRE) 2017.
Official code and weights: https://github.com/sanghyun-son/EDSR-PyTorch (MIT licence). Module and parameter
names follow its ``src/model/edsr.py`` exactly, so the released ``edsr_baseline_x{2,3,4}`` and ``edsr_x{2,3,4}``
state dicts load with ``load_state_dict(strict=True)``:

    sub_mean.{weight,bias}        frozen 1x1 conv subtracting the DIV2K mean (scaled by rgb_range)
    head.0                        3x3 conv, colours -> num_feat
    body.N.body.{0,2}             residual block N: conv, ReLU, conv (N < num_block), scaled by res_scale
    body.<num_block>              3x3 conv closing the body (global skip around the body)
    tail.0.{0,2}                  upsampler: one conv + PixelShuffle(3) for x3, log2(scale) x (conv + shuffle(2))
    tail.1                        3x3 conv, num_feat -> colours
    add_mean.{weight,bias}        frozen 1x1 conv adding the mean back

The mean shifts are buffers here (not parameters): they stay in the state dict under the official names but
are not trained and not counted by ``parameters()``, which is what the paper's parameter counts exclude.

Input range: the official weights were trained on 0..255 pixels (``rgb_range=255``); srkit's default is
``rgb_range=1`` ([0, 1] input) for models trained with srkit.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn

from srkit.archs._spec import ArchFamily, ArchSpec, pixel_shuffle_scale
from srkit.errors import ConfigError

__all__ = [
    "FAMILY",
    "DIV2K_RGB_MEAN",
    "default_mean",
    "EDSR",
    "EDSR_BASELINE_SPEC",
    "EDSR_SPEC",
    "MeanShift",
    "Upsampler",
    "build_edsr",
    "build_edsr_baseline",
    "check_upsampler_scale",
    "detect_edsr",
    "mean_shift_range",
    "upsampler_tail_receptive_field",
    "upsampler_scale",
]

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)  # mean of DIV2K train images 1-800, as the official code uses


def _conv(cin: int, cout: int, k: int = 3) -> nn.Conv2d:
    """Size-keeping k x k conv with bias (the official ``default_conv``): (B, cin, H, W) -> (B, cout, H, W)."""
    return nn.Conv2d(cin, cout, k, padding=k // 2)


def check_upsampler_scale(scale: int) -> int:
    """`scale` if the sub-pixel `Upsampler` supports it (3 or 2^n, n >= 1), else ConfigError."""
    ok = isinstance(scale, int) and not isinstance(scale, bool) and scale >= 1
    if not ok or not (scale == 3 or (scale & (scale - 1)) == 0) or scale == 1:
        raise ConfigError(f"scale must be 3 or a power of two (2, 4, 8, ...), got {scale!r}")
    return scale


class MeanShift(nn.Module):
    """Fixed 1x1 convolution adding ``sign * rgb_range * mean`` per channel: (B, C, H, W) -> (B, C, H, W).

    Keys ``weight`` (C, C, 1, 1) and ``bias`` (C,), as the official code's ``MeanShift(nn.Conv2d)``; kept as
    buffers so they load from checkpoints (whatever values they hold) without being trained. C = len(rgb_mean).
    """

    weight: torch.Tensor  # buffer
    bias: torch.Tensor  # buffer

    def __init__(self, rgb_range: float, rgb_mean=DIV2K_RGB_MEAN, sign: int = -1):
        super().__init__()
        c = len(rgb_mean)
        self.register_buffer("weight", torch.eye(c).view(c, c, 1, 1))
        self.register_buffer("bias", sign * float(rgb_range) * torch.tensor(rgb_mean, dtype=torch.float32))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        return F.conv2d(x, self.weight, self.bias)


def default_mean(num_channels: int) -> tuple[float, ...]:
    """DIV2K RGB mean for 3 channels; its average repeated otherwise (e.g. a Y-only model)."""
    return DIV2K_RGB_MEAN if num_channels == 3 else (sum(DIV2K_RGB_MEAN) / 3,) * num_channels


class ResBlock(nn.Module):
    """conv-ReLU-conv with a scaled identity skip: (B, C, H, W) -> (B, C, H, W). Keys ``body.{0,2}``."""

    def __init__(self, num_feat: int, res_scale: float = 1.0):
        super().__init__()
        self.body = nn.Sequential(_conv(num_feat, num_feat), nn.ReLU(inplace=True), _conv(num_feat, num_feat))
        self.res_scale = res_scale  # 0.1 in the wide model: keeps training of 256 channels stable

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W)."""
        # One fused op (x + res_scale * body); with res_scale 1 no separate multiply pass over the features.
        return torch.add(x, self.body(x), alpha=self.res_scale)


class Upsampler(nn.Sequential):
    """Sub-pixel upsampler: (B, C, H, W) -> (B, C, H*scale, W*scale).

    x3: conv(C -> 9C) + PixelShuffle(3); 2^n: n times conv(C -> 4C) + PixelShuffle(2). Keys ``0``, ``2``, ...
    """

    def __init__(self, scale: int, num_feat: int):
        layers: list[nn.Module] = []
        if scale == 3:
            layers += [_conv(num_feat, 9 * num_feat), nn.PixelShuffle(3)]
        else:
            for _ in range(int(math.log2(scale))):
                layers += [_conv(num_feat, 4 * num_feat), nn.PixelShuffle(2)]
        super().__init__(*layers)


class EDSR(nn.Module):
    """EDSR: mean shift, head conv, residual blocks with a global skip, sub-pixel upsampler, tail conv.

    Args:
        scale: 2, 3, 4 (or 8: three x2 stages).
        num_channels: image channels in and out.
        num_feat: feature maps (64 baseline, 256 full).
        num_block: residual blocks (16 baseline, 32 full).
        res_scale: residual scaling in each block (1 baseline, 0.1 full).
        rgb_range: input pixel range: 255 for the official weights, 1 for srkit-trained ones.
        rgb_mean: per-channel mean (fractions of rgb_range) removed at the input and added back at the output;
            None: the DIV2K mean (0.4488, 0.4371, 0.4040), which all official weights use.

    Shapes: (B, num_channels, H, W) in [0, rgb_range] -> (B, num_channels, H*scale, W*scale), roughly
    [0, rgb_range] (not clipped).
    """

    def __init__(self, scale: int = 4, num_channels: int = 3, num_feat: int = 64, num_block: int = 16,
                 res_scale: float = 1.0, rgb_range: float = 1.0, rgb_mean=None):
        super().__init__()
        rgb_mean = default_mean(num_channels) if rgb_mean is None else tuple(rgb_mean)
        if len(rgb_mean) != num_channels:
            raise ConfigError(f"rgb_mean has {len(rgb_mean)} values for {num_channels} channels")
        self.scale = check_upsampler_scale(scale)  # plain attribute: the factor this module was built for
        self.rgb_range = float(rgb_range)
        self.sub_mean = MeanShift(rgb_range, rgb_mean, -1)
        self.head = nn.Sequential(_conv(num_channels, num_feat))
        self.body = nn.Sequential(*(ResBlock(num_feat, res_scale) for _ in range(num_block)),
                                  _conv(num_feat, num_feat))
        self.tail = nn.Sequential(Upsampler(scale, num_feat), _conv(num_feat, num_channels))
        self.add_mean = MeanShift(rgb_range, rgb_mean, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H*scale, W*scale)."""
        x = self.head(self.sub_mean(x))
        x = x + self.body(x)
        return self.add_mean(self.tail(x))


def build_edsr_baseline(scale: int = 4, *, num_channels: int = 3, num_feat: int = 64, num_block: int = 16,
                        res_scale: float = 1.0, rgb_range: float = 1.0, rgb_mean=None) -> EDSR:
    """EDSR-baseline (16 blocks, 64 feature maps, res_scale 1); see `EDSR`."""
    return EDSR(scale, num_channels, num_feat, num_block, res_scale, rgb_range, rgb_mean)


def build_edsr(scale: int = 4, *, num_channels: int = 3, num_feat: int = 256, num_block: int = 32,
               res_scale: float = 0.1, rgb_range: float = 1.0, rgb_mean=None) -> EDSR:
    """EDSR, the paper's full model (32 blocks, 256 feature maps, res_scale 0.1); see `EDSR`."""
    return EDSR(scale, num_channels, num_feat, num_block, res_scale, rgb_range, rgb_mean)


def upsampler_tail_receptive_field(scale: int, lr_radius: int) -> int:
    """LR receptive field of "convs reaching `lr_radius` LR pixels, `Upsampler(scale)`, one 3x3 conv".

    Each upsampler conv adds one pixel on its own grid; the final 3x3 conv runs on the HR grid. Worst case
    over the scale x scale output pixels of one LR pixel.
    """
    factors = [3] if scale == 3 else [2] * int(math.log2(scale))
    reach = 0
    for o in range(scale):
        lo, hi = o - 1, o + 1  # the tail conv on the HR grid
        for f in reversed(factors):
            lo, hi = lo // f - 1, hi // f + 1  # undo one shuffle, then that stage's 3x3 conv
        reach = max(reach, -lo, hi)
    return lr_radius + reach


def _edsr_rf(options: dict, num_block_default: int) -> int:
    """EDSR receptive field for build options (plus ``scale``, default 4)."""
    num_block = int(options.get("num_block", num_block_default))
    # head conv + 2 convs per block + the body's closing conv, all 3x3 on the LR grid
    return upsampler_tail_receptive_field(int(options.get("scale", 4)), 1 + 2 * num_block + 1)


_PAPER = ("B. Lim, S. Son, H. Kim, S. Nah, K. M. Lee, Enhanced Deep Residual Networks for Single Image "
          "Super-Resolution, CVPRW 2017")

EDSR_BASELINE_SPEC = ArchSpec(
    build=build_edsr_baseline,
    family="edsr",
    paper=_PAPER + " (EDSR-baseline)",
    repo="https://github.com/sanghyun-son/EDSR-PyTorch",
    license="MIT",
    scales=(2, 3, 4),
    in_channels=3,
    out_channels=3,
    color_space="rgb",
    size_multiple=1,
    receptive_field=lambda options: _edsr_rf(options, 16),  # 36 LR pixels at x2/x3/x4
    # No fp16: the official weights work on 0..255 values with un-normalised residual sums, where fp16's
    # 11-bit mantissa (and its 65504 ceiling for the sums) costs accuracy; bf16 keeps the float32 range.
    safe_dtypes=("fp32", "bf16"),
)

EDSR_SPEC = ArchSpec(
    build=build_edsr,
    family="edsr",
    paper=_PAPER,
    repo="https://github.com/sanghyun-son/EDSR-PyTorch",
    license="MIT",
    scales=(2, 3, 4),
    in_channels=3,
    out_channels=3,
    color_space="rgb",
    size_multiple=1,
    receptive_field=lambda options: _edsr_rf(options, 32),  # 68 LR pixels at x2/x3/x4
    safe_dtypes=("fp32", "bf16"),  # as EDSR-baseline, with 256-channel sums (the reason for res_scale 0.1)
)


def mean_shift_range(state_dict: dict[str, torch.Tensor]) -> float:
    """The rgb_range a checkpoint's ``sub_mean.bias`` (= -rgb_range * mean) was made with: 1 or 255.

    The official EDSR/RCAN weights were trained on 0..255 (255); checkpoints without mean-shift tensors are
    taken to be official too (255).
    """
    bias = state_dict.get("sub_mean.bias")
    if bias is None or bias.ndim != 1:
        return 255.0
    ratio = float(-bias.double().sum()) / sum(default_mean(bias.numel()))
    return 1.0 if abs(ratio - 1.0) < abs(ratio - 255.0) else 255.0


def upsampler_scale(state_dict: dict[str, torch.Tensor], prefix: str, num_feat: int) -> int | None:
    """Scale of an `Upsampler` stored under `prefix` (e.g. ``tail.0``), from its conv count and widths."""
    outs = []
    i = 0
    while f"{prefix}.{i}.weight" in state_dict:
        outs.append(int(state_dict[f"{prefix}.{i}.weight"].shape[0]))
        i += 2
    factors = [pixel_shuffle_scale(o, num_feat) for o in outs]
    if factors == [3]:
        return 3
    if factors and all(f == 2 for f in factors):
        return 2 ** len(factors)
    return None


def detect_edsr(state_dict: dict[str, torch.Tensor]) -> tuple[str, int, dict] | None:
    """Recognise an official sanghyun-son/EDSR-PyTorch checkpoint (EDSR or EDSR-baseline).

    Width from ``head.0.weight``, depth from the largest ``body.N.body.0`` index, scale from ``tail.0`` (one
    conv to 9C: x3; n convs to 4C: x2^n). ``res_scale`` is not stored: 0.1 for wide (256-channel) models as
    the official EDSR was trained, 1 otherwise. ``rgb_range`` from the stored ``sub_mean.bias`` (255 for the
    official weights, which also holds when the mean shifts are absent).

    Returns ("edsr" | "edsr-baseline", scale, options) or None for other layouts (RCAN, whose blocks nest
    one level deeper, is not matched).
    """
    needed = ("head.0.weight", "body.0.body.0.weight", "body.0.body.2.weight", "tail.0.0.weight", "tail.1.weight")
    if not all(k in state_dict for k in needed) or "body.0.body.0.body.0.weight" in state_dict:
        return None
    head = state_dict["head.0.weight"]
    if head.ndim != 4:
        return None
    num_feat, num_channels = int(head.shape[0]), int(head.shape[1])
    num_block = 0
    while f"body.{num_block}.body.0.weight" in state_dict:
        num_block += 1
    if f"body.{num_block}.weight" not in state_dict:
        return None
    scale = upsampler_scale(state_dict, "tail.0", num_feat)
    if scale is None:
        return None
    wide = num_feat >= 256
    options = {
        "num_channels": num_channels,
        "num_feat": num_feat,
        "num_block": num_block,
        "res_scale": 0.1 if wide else 1.0,
        "rgb_range": mean_shift_range(state_dict),
    }
    return ("edsr" if wide else "edsr-baseline"), scale, options


FAMILY = ArchFamily(
    name="edsr",
    specs={"edsr-baseline": EDSR_BASELINE_SPEC, "edsr": EDSR_SPEC},
    detect=detect_edsr,
)
