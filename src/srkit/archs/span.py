"""SPAN: Swift Parameter-free Attention Network.

Paper: Cheng Wan, Hongyuan Yu, Zhiqi Li, Yihang Chen, Yajun Zou, Yuqing Liu, Xuanwu Yin, Kunlong Zuo,
"Swift Parameter-free Attention Network for Efficient Super-Resolution", CVPR Workshops (NTIRE) 2024.
Repository: https://github.com/hongyuanyu/SPAN (Apache-2.0).

Every convolution is a `Conv3XC`: a re-parameterisable 3x3 conv trained as 1x1 -> 3x3 -> 1x1 (channels x2 in
the middle) plus a 1x1 skip, and folded into one 3x3 conv (``eval_conv``) for inference. Six SPABs (three
Conv3XC with SiLU) each end in a parameter-free attention, out = (conv(x) + x) * (sigmoid(conv(x)) - 0.5).
The paper's 426K parameters (x4, 48 channels) are the folded form.

State-dict keys as in hongyuanyu/SPAN ``basicsr/archs/span_arch.py``: ``conv_1.sk``, ``conv_1.conv.{0,1,2}``,
``conv_1.eval_conv``, ``block_<i>.c{1,2,3}_r.*``, ``conv_cat``, ``conv_2.*``, ``upsampler.0``. The authors'
checkpoints hold both the training branches and ``eval_conv`` (a frozen parameter there); a checkpoint with
only ``eval_conv`` keys is the deployed form (``deploy=True``). Training-form checkpoints without ``eval_conv``
also load (it is recomputed).

Value range: input in [0, 1] (BasicSR); the network subtracts the DIV2K RGB mean and multiplies by
``img_range`` = 255 inside, and its output is in [0, 1] (no de-normalisation, as in the authors' code).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from srkit.archs._blocks import fold_1x1_into_3x3, fold_kxk_into_1x1, module_as, pad_1x1_to_3x3
from srkit.archs._spec import ArchFamily, ArchSpec, pixel_shuffle_scale

PAPER = ("Wan, Yu, Li, Chen, Zou, Liu, Yin, Zuo, 'Swift Parameter-free Attention Network for Efficient "
         "Super-Resolution', CVPRW 2024")
REPO = "https://github.com/hongyuanyu/SPAN"
LICENSE = "Apache-2.0"

DIV2K_RGB_MEAN = (0.4488, 0.4371, 0.4040)


def _fold_conv3xc(sk_w: Tensor, sk_b: Tensor | None, w0: Tensor, b0: Tensor | None, w1: Tensor, b1: Tensor | None,
                  w2: Tensor, b2: Tensor | None) -> tuple[Tensor, Tensor | None]:
    """Fold Conv3XC's tensors (skip 1x1; 1x1 -> 3x3 -> 1x1) into one 3x3 weight (O, I, 3, 3) and bias (O,)."""
    w, b = fold_1x1_into_3x3(w0, b0, w1, b1)
    w, b = fold_kxk_into_1x1(w, b, w2, b2)
    w = w + pad_1x1_to_3x3(sk_w)
    if sk_b is not None:
        b = b + sk_b
    has_bias = any(t is not None for t in (sk_b, b0, b1, b2))
    return w, (b if has_bias else None)


class Conv3XC(nn.Module):
    """Re-parameterisable 3x3 conv: (B, c_in, H, W) -> (B, c_out, H/s, W/s), any range.

    Training form: ``conv(zero_pad(x, 1)) + sk(x)`` with ``conv`` = 1x1 (c_in -> c_in*gain1) -> 3x3 valid
    (-> c_out*gain1) -> 1x1 (-> c_out), ``sk`` a 1x1 conv; optional LeakyReLU(0.05) after. Padding the *input*
    before the first 1x1 makes the fold into ``eval_conv`` (3x3, padding 1) exact at the border.
    ``eval_conv`` is kept (frozen, refreshed by `update_params`) so the authors' checkpoints load strictly; the
    training-form forward does not use it. ``switch_to_deploy()`` folds and keeps only ``eval_conv``.
    """

    def __init__(self, c_in: int, c_out: int, gain1: int = 1, s: int = 1, bias: bool = True, relu: bool = False,
                 deploy: bool = False):
        super().__init__()
        self.c_in = c_in
        self.c_out = c_out
        self.stride = s
        self.has_relu = relu
        self.deploy = deploy
        if not deploy:
            self.sk = nn.Conv2d(c_in, c_out, 1, stride=s, bias=bias)
            self.conv = nn.Sequential(
                nn.Conv2d(c_in, c_in * gain1, 1, bias=bias),
                nn.Conv2d(c_in * gain1, c_out * gain1, 3, stride=s, padding=0, bias=bias),
                nn.Conv2d(c_out * gain1, c_out, 1, bias=bias),
            )
        self.eval_conv = nn.Conv2d(c_in, c_out, 3, stride=s, padding=1, bias=bias)
        if not deploy:
            self.eval_conv.requires_grad_(False)
            self.update_params()

    def rep_params(self) -> tuple[Tensor, Tensor | None]:
        """(c_out, c_in, 3, 3) weight and (c_out,) bias of the folded conv; differentiable."""
        if self.deploy:
            return self.eval_conv.weight, self.eval_conv.bias
        c0, c1, c2 = (module_as(c, nn.Conv2d) for c in self.conv)
        return _fold_conv3xc(self.sk.weight, self.sk.bias, c0.weight, c0.bias, c1.weight, c1.bias, c2.weight,
                             c2.bias)

    @torch.no_grad()
    def update_params(self) -> None:
        """Refresh ``eval_conv`` from the training branches (no-op in the deployed form)."""
        if self.deploy:
            return
        w, b = self.rep_params()
        self.eval_conv.weight.copy_(w)
        if b is not None and self.eval_conv.bias is not None:  # both or neither: one `bias` flag made them
            self.eval_conv.bias.copy_(b)

    def switch_to_deploy(self) -> None:
        """Fold the branches into ``eval_conv`` and drop them, in place (idempotent)."""
        if self.deploy:
            return
        self.update_params()
        self.eval_conv.requires_grad_(True)
        del self.sk, self.conv
        self.deploy = True

    def forward(self, x: Tensor) -> Tensor:
        if self.deploy:
            out = self.eval_conv(x)
        else:
            out = self.conv(F.pad(x, (1, 1, 1, 1))) + self.sk(x)
        if self.has_relu:
            out = F.leaky_relu(out, negative_slope=0.05)
        return out

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # Training-form checkpoints saved without eval_conv: derive it from the branches being loaded.
        wk = prefix + "eval_conv.weight"
        if not self.deploy and wk not in state_dict and prefix + "sk.weight" in state_dict:
            try:
                g = [state_dict.get(prefix + n) for n in ("sk.weight", "sk.bias", "conv.0.weight", "conv.0.bias",
                                                          "conv.1.weight", "conv.1.bias", "conv.2.weight",
                                                          "conv.2.bias")]
                w, b = _fold_conv3xc(*g)
                state_dict[wk] = w
                if b is not None:
                    state_dict[prefix + "eval_conv.bias"] = b
            except (RuntimeError, TypeError, IndexError):
                pass  # shapes do not fit: let the normal loader report it
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)


class SPAB(nn.Module):
    """Swift parameter-free attention block: (B, C, H, W) -> (out, out1, att), each (B, C, H, W).

    out1 = c1_r(x); out3 = c3_r(silu(c2_r(silu(out1)))); att = sigmoid(out3) - 0.5 (no parameters);
    out = (out3 + x) * att.
    """

    def __init__(self, in_channels: int, mid_channels: int | None = None, out_channels: int | None = None,
                 deploy: bool = False):
        super().__init__()
        mid_channels = in_channels if mid_channels is None else mid_channels
        out_channels = in_channels if out_channels is None else out_channels
        self.in_channels = in_channels
        self.c1_r = Conv3XC(in_channels, mid_channels, gain1=2, s=1, deploy=deploy)
        self.c2_r = Conv3XC(mid_channels, mid_channels, gain1=2, s=1, deploy=deploy)
        self.c3_r = Conv3XC(mid_channels, out_channels, gain1=2, s=1, deploy=deploy)
        self.act1 = nn.SiLU()

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        out1 = self.c1_r(x)
        out2 = self.c2_r(self.act1(out1))
        out3 = self.c3_r(self.act1(out2))
        sim_att = torch.sigmoid(out3) - 0.5  # symmetric around 0: the attention is odd, parameter-free
        return (out3 + x) * sim_att, out1, sim_att


class SPAN(nn.Module):
    """SPAN: (B, num_in_ch, H, W) in [0, 1] -> (B, num_out_ch, sH, sW) in [0, 1].

    Args:
        num_in_ch / num_out_ch: image channels.
        feature_channels: width (48 in the paper).
        upscale: scale factor s.
        img_range: factor applied after mean subtraction (255 in the authors' code).
        rgb_mean: per-channel mean subtracted from the input (DIV2K RGB mean); for num_in_ch != 3 its average.
        deploy: build the folded form (only ``eval_conv`` in each Conv3XC).
    """

    mean: Tensor  # buffer (not saved)

    def __init__(self, num_in_ch: int = 3, num_out_ch: int = 3, feature_channels: int = 48, upscale: int = 4,
                 img_range: float = 255.0, rgb_mean: tuple[float, ...] = DIV2K_RGB_MEAN, deploy: bool = False):
        super().__init__()
        self.img_range = float(img_range)
        mean = torch.tensor(rgb_mean, dtype=torch.float32)
        if mean.numel() != num_in_ch:
            mean = mean.mean().repeat(num_in_ch)
        # Not in the authors' state dict: a non-persistent buffer (moves with .to(), never saved).
        self.register_buffer("mean", mean.reshape(1, num_in_ch, 1, 1), persistent=False)
        f = feature_channels
        self.conv_1 = Conv3XC(num_in_ch, f, gain1=2, s=1, deploy=deploy)
        self.block_1 = SPAB(f, deploy=deploy)
        self.block_2 = SPAB(f, deploy=deploy)
        self.block_3 = SPAB(f, deploy=deploy)
        self.block_4 = SPAB(f, deploy=deploy)
        self.block_5 = SPAB(f, deploy=deploy)
        self.block_6 = SPAB(f, deploy=deploy)
        self.conv_cat = nn.Conv2d(f * 4, f, 1)
        self.conv_2 = Conv3XC(f, f, gain1=2, s=1, deploy=deploy)
        self.upsampler = nn.Sequential(nn.Conv2d(f, num_out_ch * upscale * upscale, 3, padding=1),
                                       nn.PixelShuffle(upscale))

    def forward(self, x: Tensor) -> Tensor:
        x = (x - self.mean) * self.img_range
        out_feature = self.conv_1(x)
        out_b1, _, _ = self.block_1(out_feature)
        out_b2, _, _ = self.block_2(out_b1)
        out_b3, _, _ = self.block_3(out_b2)
        out_b4, _, _ = self.block_4(out_b3)
        out_b5, _, _ = self.block_5(out_b4)
        out_b6, out_b5_2, _ = self.block_6(out_b5)
        out_b6 = self.conv_2(out_b6)
        out = self.conv_cat(torch.cat([out_feature, out_b6, out_b1, out_b5_2], 1))
        return self.upsampler(out)


def build_span(scale: int = 4, *, num_in_ch: int = 3, num_out_ch: int = 3, feature_channels: int = 48,
               img_range: float = 255.0, rgb_mean: tuple[float, ...] = DIV2K_RGB_MEAN,
               deploy: bool = False) -> SPAN:
    """SPAN (48 channels, 6 SPABs): (B, 3, H, W) in [0, 1] -> (B, 3, sH, sW). See `SPAN` for the options."""
    return SPAN(num_in_ch=num_in_ch, num_out_ch=num_out_ch, feature_channels=feature_channels, upscale=scale,
                img_range=img_range, rgb_mean=tuple(rgb_mean), deploy=deploy)


# conv_1 + 6 SPABs x 3 + conv_2 + upsampler: 21 3x3 convs on the longest path (attention is per pixel).
SPAN_SPEC = ArchSpec(
    build=build_span, family="span", paper=PAPER, repo=REPO, license=LICENSE, scales=(2, 3, 4),
    in_channels=3, out_channels=3, color_space="rgb", size_multiple=1, receptive_field=21,
    # The attention is a bounded sigmoid gate (no softmax, no global statistics); 0..255-scale features stay
    # far below fp16's limit (spandrel also runs SPAN in fp16).
    safe_dtypes=("fp32", "bf16", "fp16"),
)

_SUBMODULES = ("conv_1", "block_1", "block_2", "block_3", "block_4", "block_5", "block_6", "conv_cat", "conv_2",
               "upsampler")


def detect_span(state_dict: dict[str, Tensor]) -> tuple[str, int, dict] | None:
    """Recognise a hongyuanyu/SPAN checkpoint (with training branches, or ``eval_conv`` only = deployed).

    Channels and width from ``conv_1``, the scale from ``upsampler.0`` (num_out_ch assumed = num_in_ch).
    Community variants with a ``no_norm`` key (no mean/range normalisation) are not this layout: None.
    """
    if "conv_cat.weight" not in state_dict or "upsampler.0.weight" not in state_dict:
        return None
    if any(k.split(".")[0] not in _SUBMODULES for k in state_dict):
        return None
    if "conv_1.sk.weight" in state_dict:
        first, deploy = state_dict["conv_1.sk.weight"], False
    elif "conv_1.eval_conv.weight" in state_dict:
        first, deploy = state_dict["conv_1.eval_conv.weight"], True
    else:
        return None
    if "block_6.c3_r.eval_conv.weight" not in state_dict and "block_6.c3_r.sk.weight" not in state_dict:
        return None
    feature_channels, num_in_ch = int(first.shape[0]), int(first.shape[1])
    scale = pixel_shuffle_scale(int(state_dict["upsampler.0.weight"].shape[0]), num_in_ch)
    if scale is None:
        return None
    options = {"num_in_ch": num_in_ch, "num_out_ch": num_in_ch, "feature_channels": feature_channels,
               "deploy": deploy}
    return "span", scale, options


FAMILY = ArchFamily(
    name="span",
    specs={"span": SPAN_SPEC},
    detect=detect_span,
)


__all__ = ["FAMILY", "SPAB", "SPAN", "SPAN_SPEC", "Conv3XC", "build_span", "detect_span"]
