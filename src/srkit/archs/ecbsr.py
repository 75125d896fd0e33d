"""ECBSR: a plain stack of re-parameterisable Edge-oriented Convolution Blocks.

Paper: Xindong Zhang, Hui Zeng, Lei Zhang, "Edge-oriented Convolution Block for Real-time Super Resolution on
Mobile Devices", ACM Multimedia 2021.
Repository: https://github.com/xindongzhang/ECBSR (Apache-2.0).

Training form: every ECB sums a 3x3 conv, a 1x1 -> 3x3 expansion (depth multiplier 2), 1x1 -> Sobel-x,
1x1 -> Sobel-y and 1x1 -> Laplacian branches (fixed masks with learnable per-channel gains), plus an optional
identity; then PReLU. Inference form: each ECB folds into one 3x3 conv + PReLU (the authors' "PlainSR"), which
is what the paper counts (ECBSR-M16C64 x4: 603K parameters).

Network: head ECB (colors -> C), M body ECBs (C -> C), tail ECB (C -> colors*s*s, no activation), plus the input
repeated s*s times per colour (a nearest-neighbour residual), then pixel shuffle.

Ablation options (srkit's, not in the paper; defaults give the paper's network and keys): ``edge_branches=False``
drops the Sobel-x/-y and Laplacian branches (3x3 + 1x1-3x3 only); ``upsampler`` picks how the LR features reach
the HR grid: ``pixelshuffle`` (paper), ``deconv`` (tail ECB C -> C, then a transposed conv of stride s, as FSRCNN),
``nearest_conv`` (tail ECB C -> C, nearest x s, one 3x3 conv at HR) or ``bicubic_pre`` (the input is first
enlarged by MATLAB bicubic and the whole network runs at HR, as SRCNN/VDSR; its residual is the bicubic image).

State-dict keys as in xindongzhang/ECBSR ``models/ecbsr.py`` / ``models/ecb.py``:
``backbone.<i>.conv3x3.{weight,bias}``, ``backbone.<i>.conv1x1_3x3.{k0,b0,k1,b1}``,
``backbone.<i>.conv1x1_{sbx,sby,lpl}.{k0,b0,scale,bias,mask}``, ``backbone.<i>.act.weight``; the deployed form
has the keys of the authors' ``models/plainsr.py`` (``backbone.<i>.conv3x3.*``, ``backbone.<i>.act.weight``).

Value range: the authors train on the Y channel of YCbCr in 0..255 (``skimage.color.rgb2ycbcr``, tensors not
rescaled: ``datas/div2k.py``, ``utils.ndarray2tensor``), so their weights need ``rgb_range=255``: the module
then takes and returns Y in 0..255 (srkit scales by ``rgb_range`` around it; the network itself has no
range-dependent layer).
"""

from __future__ import annotations

import functools

import torch
from torch import Tensor, nn

from srkit.archs._blocks import SeqConv3x3, conv_from_tensors, conv_weight_bias, identity_kernel
from srkit.archs._spec import ArchFamily, ArchSpec, pixel_shuffle_scale

PAPER = ("Zhang, Zeng, Zhang, 'Edge-oriented Convolution Block for Real-time Super Resolution on Mobile Devices', "
         "ACM MM 2021")
REPO = "https://github.com/xindongzhang/ECBSR"
LICENSE = "Apache-2.0"

_ACTS = ("prelu", "relu", "linear")
UPSAMPLERS = ("pixelshuffle", "deconv", "nearest_conv", "bicubic_pre")


class ECB(nn.Module):
    """Edge-oriented Convolution Block: (B, in, H, W) -> (B, out, H, W), any range.

    Branches ``conv3x3``, ``conv1x1_3x3``, ``conv1x1_sbx``, ``conv1x1_sby``, ``conv1x1_lpl`` (and the identity
    when ``with_idt`` and in == out) are summed, then ``act``. ``switch_to_deploy()`` folds the branches into
    ``conv3x3`` and deletes the others (the authors' PlainSR layout); ``deploy=True`` builds that form directly.
    """

    def __init__(self, inp_planes: int, out_planes: int, depth_multiplier: float = 2.0, act_type: str = "prelu",
                 with_idt: bool = False, deploy: bool = False, edge_branches: bool = True):
        super().__init__()
        if act_type not in _ACTS:
            raise ValueError(f"act_type must be one of {_ACTS}, got {act_type!r}")
        self.inp_planes = inp_planes
        self.out_planes = out_planes
        self.act_type = act_type
        self.with_idt = bool(with_idt) and inp_planes == out_planes
        self.deploy = deploy
        self.edge_branches = bool(edge_branches)
        self.conv3x3 = nn.Conv2d(inp_planes, out_planes, 3, padding=1)
        if not deploy:
            self.conv1x1_3x3 = SeqConv3x3("conv1x1-conv3x3", inp_planes, out_planes, depth_multiplier)
            if self.edge_branches:
                self.conv1x1_sbx = SeqConv3x3("conv1x1-sobelx", inp_planes, out_planes)
                self.conv1x1_sby = SeqConv3x3("conv1x1-sobely", inp_planes, out_planes)
                self.conv1x1_lpl = SeqConv3x3("conv1x1-laplacian", inp_planes, out_planes)
        self.act: nn.Module
        if act_type == "prelu":
            self.act = nn.PReLU(num_parameters=out_planes)
        elif act_type == "relu":
            self.act = nn.ReLU()
        else:
            self.act = nn.Identity()

    def _branches(self) -> list[SeqConv3x3]:
        if self.deploy:
            return []
        if not self.edge_branches:
            return [self.conv1x1_3x3]
        return [self.conv1x1_3x3, self.conv1x1_sbx, self.conv1x1_sby, self.conv1x1_lpl]

    def forward(self, x: Tensor) -> Tensor:
        y = self.conv3x3(x)
        if not self.deploy:
            for branch in self._branches():
                y = y + branch(x)
            if self.with_idt:
                y = y + x
        return self.act(y)

    def rep_params(self) -> tuple[Tensor, Tensor]:
        """(out, in, 3, 3) weight and (out,) bias of the single conv equal to the branch sum; differentiable."""
        w, b = conv_weight_bias(self.conv3x3)
        if self.deploy:
            return w, b
        for branch in self._branches():
            kw, kb = branch.rep_params()
            w, b = w + kw, b + kb
        if self.with_idt:
            w = w + identity_kernel(self.out_planes, 3, dtype=w.dtype, device=w.device)
        return w, b

    def switch_to_deploy(self) -> None:
        """Fold all branches into ``conv3x3`` in place (idempotent); the activation is kept."""
        if self.deploy:
            return
        with torch.no_grad():
            w, b = self.rep_params()
        self.conv3x3 = conv_from_tensors(w, b)
        for name in ("conv1x1_3x3", "conv1x1_sbx", "conv1x1_sby", "conv1x1_lpl"):
            if hasattr(self, name):
                delattr(self, name)
        self.deploy = True


class ECBSR(nn.Module):
    """ECBSR: (B, colors, H, W) in [0, rgb_range] -> (B, colors, sH, sW) in [0, rgb_range].

    Args:
        module_nums: M, number of body ECBs.
        channel_nums: C, feature channels.
        scale: upscaling factor s.
        colors: image channels (1 = Y, as in the paper; 3 = RGB).
        with_idt: identity branch in the ECBs whose in == out (the released configs use 0).
        act_type: "prelu" (paper), "relu" or "linear".
        depth_multiplier: expansion of the 1x1 -> 3x3 branch.
        rgb_range: value range the weights expect (255 for the authors' weights); informational -- the layers
            do not depend on it; callers scale the input to [0, rgb_range].
        deploy: build the folded inference form (authors' PlainSR keys) directly.
        edge_branches: keep the Sobel/Laplacian branches (ablation: False).
        upsampler: "pixelshuffle" (paper), "deconv", "nearest_conv" or "bicubic_pre" (see the module docstring).
    """

    def __init__(self, module_nums: int, channel_nums: int, scale: int = 4, colors: int = 1, with_idt: bool = False,
                 act_type: str = "prelu", depth_multiplier: float = 2.0, rgb_range: float = 1.0,
                 deploy: bool = False, edge_branches: bool = True, upsampler: str = "pixelshuffle"):
        super().__init__()
        if upsampler not in UPSAMPLERS:
            raise ValueError(f"upsampler must be one of {UPSAMPLERS}, got {upsampler!r}")
        self.module_nums = module_nums
        self.channel_nums = channel_nums
        self.scale = scale
        self.colors = colors
        self.rgb_range = float(rgb_range)
        self.upsampler_type = upsampler
        ecb = functools.partial(ECB, depth_multiplier=depth_multiplier, with_idt=with_idt, deploy=deploy,
                                edge_branches=edge_branches)
        layers = [ecb(colors, channel_nums, act_type=act_type)]
        layers += [ecb(channel_nums, channel_nums, act_type=act_type) for _ in range(module_nums)]
        self.upsampler: nn.Module
        if upsampler == "pixelshuffle":
            layers += [ecb(channel_nums, colors * scale * scale, act_type="linear")]
            self.upsampler = nn.PixelShuffle(scale)
        elif upsampler == "bicubic_pre":
            from srkit.ops.resize import MatlabResize

            layers += [ecb(channel_nums, colors, act_type="linear")]
            self.pre_upsample = MatlabResize(scale)
        else:
            layers += [ecb(channel_nums, channel_nums, act_type=act_type)]
            if upsampler == "deconv":
                # Kernel s + 2p, stride s, padding p: output exactly s x the input, each HR pixel fed by <= 2 LR px.
                pad = scale // 2
                self.upsampler = nn.ConvTranspose2d(channel_nums, colors, scale + 2 * pad, stride=scale, padding=pad)
            else:
                self.upsampler = nn.Sequential(nn.Upsample(scale_factor=scale, mode="nearest"),
                                               nn.Conv2d(channel_nums, colors, 3, padding=1))
        self.backbone = nn.Sequential(*layers)

    def forward(self, x: Tensor) -> Tensor:
        if self.upsampler_type == "pixelshuffle":
            # Global residual: each input pixel repeated over its s*s sub-pixels (the authors broadcast a 1-channel
            # input; repeat_interleave is the same for colors=1 and keeps the colour order for colors=3).
            residual = x.repeat_interleave(self.scale * self.scale, dim=1)
            return self.upsampler(self.backbone(x) + residual)
        if self.upsampler_type == "bicubic_pre":
            up = self.pre_upsample(x)
            return self.backbone(up) + up
        residual = torch.nn.functional.interpolate(x, scale_factor=self.scale, mode="nearest")
        return self.upsampler(self.backbone(x)) + residual


def _build(scale: int, module_nums: int, channel_nums: int, **options) -> ECBSR:
    return ECBSR(module_nums=module_nums, channel_nums=channel_nums, scale=scale, **options)


def build_ecbsr_m4c16(scale: int = 4, *, module_nums: int = 4, channel_nums: int = 16, colors: int = 1,
                      with_idt: bool = False, act_type: str = "prelu", depth_multiplier: float = 2.0,
                      rgb_range: float = 1.0, deploy: bool = False, edge_branches: bool = True,
                      upsampler: str = "pixelshuffle") -> ECBSR:
    """ECBSR-M4C16 (4 body ECBs, 16 channels): (B, 1, H, W) Y -> (B, 1, sH, sW). See `ECBSR` for the options."""
    return _build(scale, module_nums, channel_nums, colors=colors, with_idt=with_idt, act_type=act_type,
                  depth_multiplier=depth_multiplier, rgb_range=rgb_range, deploy=deploy,
                  edge_branches=edge_branches, upsampler=upsampler)


def build_ecbsr_m16c64(scale: int = 4, *, module_nums: int = 16, channel_nums: int = 64, colors: int = 1,
                       with_idt: bool = False, act_type: str = "prelu", depth_multiplier: float = 2.0,
                       rgb_range: float = 1.0, deploy: bool = False, edge_branches: bool = True,
                       upsampler: str = "pixelshuffle") -> ECBSR:
    """ECBSR-M16C64 (16 body ECBs, 64 channels): (B, 1, H, W) Y -> (B, 1, sH, sW). See `ECBSR` for the options."""
    return _build(scale, module_nums, channel_nums, colors=colors, with_idt=with_idt, act_type=act_type,
                  depth_multiplier=depth_multiplier, rgb_range=rgb_range, deploy=deploy,
                  edge_branches=edge_branches, upsampler=upsampler)


def _receptive_field(options: dict) -> int:
    # Head + M body + tail 3x3 convs, one pixel each; pixel shuffle and the residual add nothing.
    convs = int(options.get("module_nums", 4)) + 2
    up = options.get("upsampler", "pixelshuffle")
    if up in ("deconv", "nearest_conv"):
        return convs + 1  # one more LR pixel: the transposed conv's overlap / the HR conv's 1-pixel border
    if up == "bicubic_pre":
        from srkit.archs.classic import preupsampling_receptive_field

        return preupsampling_receptive_field(int(options.get("scale", 4)), convs)
    return convs


def _rf_m4c16(options: dict) -> int:
    return _receptive_field({"module_nums": 4, **options})


def _rf_m16c64(options: dict) -> int:
    return _receptive_field({"module_nums": 16, **options})


# fp16 left out: the authors' weights work on 0..255 and the folded kernels are large, so activations can leave
# fp16's range; bf16 has fp32's range.
def _label_m4c16(options: dict) -> str:
    return f"ecbsr-m{options.get('module_nums', 4)}c{options.get('channel_nums', 16)}"


def _label_m16c64(options: dict) -> str:
    return f"ecbsr-m{options.get('module_nums', 16)}c{options.get('channel_nums', 64)}"


ECBSR_M4C16_SPEC = ArchSpec(
    build=build_ecbsr_m4c16, family="ecbsr", paper=PAPER, repo=REPO, license=LICENSE, scales=(2, 3, 4),
    in_channels=1, out_channels=1, color_space="y", size_multiple=1, receptive_field=_rf_m4c16,
    safe_dtypes=("fp32", "bf16"), label=_label_m4c16,
)
ECBSR_M16C64_SPEC = ArchSpec(
    build=build_ecbsr_m16c64, family="ecbsr", paper=PAPER, repo=REPO, license=LICENSE, scales=(2, 3, 4),
    in_channels=1, out_channels=1, color_space="y", size_multiple=1, receptive_field=_rf_m16c64,
    safe_dtypes=("fp32", "bf16"), label=_label_m16c64,
)

_NAMES = {(4, 16): "ecbsr-m4c16", (16, 64): "ecbsr-m16c64"}


def detect_ecbsr(state_dict: dict[str, Tensor]) -> tuple[str, int, dict] | None:
    """Recognise an ECBSR checkpoint (training form or deployed PlainSR form) of xindongzhang/ECBSR.

    Infers M from the number of ``backbone.<i>`` blocks, C and colours from the head conv, the scale from the
    tail's colors*s*s outputs, PReLU from ``act.weight``, and the form from ``conv1x1_3x3.k0``. ``with_idt``
    has no parameters and is taken as the released configs' 0. Options include ``rgb_range=255`` (the authors
    train on 0..255 Y).

    Returns:
        (name, scale, options) or None. Names: "ecbsr-m4c16" / "ecbsr-m16c64" (other M/C: the M16C64 builder
        with explicit ``module_nums`` / ``channel_nums``).
    """
    if "backbone.0.conv3x3.weight" not in state_dict:
        return None
    idx = set()
    for k in state_dict:
        parts = k.split(".")
        if len(parts) < 3 or parts[0] != "backbone" or not parts[1].isdigit():
            return None
        if parts[2] not in ("conv3x3", "conv1x1_3x3", "conv1x1_sbx", "conv1x1_sby", "conv1x1_lpl", "act"):
            return None
        idx.add(int(parts[1]))
    n = max(idx) + 1
    if n < 2 or idx != set(range(n)):
        return None
    head = state_dict["backbone.0.conv3x3.weight"]
    tail = state_dict.get(f"backbone.{n - 1}.conv3x3.weight")
    if head.dim() != 4 or tail is None or tuple(head.shape[-2:]) != (3, 3):
        return None
    channels, colors = int(head.shape[0]), int(head.shape[1])
    scale = pixel_shuffle_scale(int(tail.shape[0]), colors)
    if scale is None:
        return None
    deploy = "backbone.0.conv1x1_3x3.k0" not in state_dict
    if not deploy:
        k0 = state_dict["backbone.0.conv1x1_3x3.k0"]
        depth_multiplier = k0.shape[0] / channels
    else:
        depth_multiplier = 2.0
    module_nums = n - 2
    options = {
        "module_nums": module_nums,
        "channel_nums": channels,
        "colors": colors,
        "with_idt": False,
        "act_type": "prelu" if "backbone.0.act.weight" in state_dict else "relu",
        "depth_multiplier": float(depth_multiplier),
        "rgb_range": 255.0,
        "deploy": deploy,
    }
    return _NAMES.get((module_nums, channels), "ecbsr-m16c64"), scale, options


def convert_ecbsr_edsr_state_dict(state_dict: dict[str, Tensor]) -> dict[str, Tensor]:
    """Map the authors' EDSR-codebase layout (``src/model/ecbsr.py``: ``head.0``, ``body.<i>``, ``tail.0``) to the
    ``backbone.<i>`` layout `detect_ecbsr` and `ECBSR` use. Same modules, renamed; call before detection."""
    body = sorted({int(k.split(".")[1]) for k in state_dict if k.startswith("body.")})
    m = len(body)
    out = {}
    for k, v in state_dict.items():
        parts = k.split(".")
        if parts[0] == "head" and parts[1] == "0":
            out[".".join(["backbone", "0", *parts[2:]])] = v
        elif parts[0] == "body":
            out[".".join(["backbone", str(int(parts[1]) + 1), *parts[2:]])] = v
        elif parts[0] == "tail" and parts[1] == "0":
            out[".".join(["backbone", str(m + 1), *parts[2:]])] = v
        else:
            out[k] = v
    return out


FAMILY = ArchFamily(
    name="ecbsr",
    specs={"ecbsr-m4c16": ECBSR_M4C16_SPEC, "ecbsr-m16c64": ECBSR_M16C64_SPEC},
    detect=detect_ecbsr,
    layouts={"EDSR-codebase layout": convert_ecbsr_edsr_state_dict},
)


__all__ = [
    "FAMILY",
    "ECB",
    "ECBSR",
    "ECBSR_M16C64_SPEC",
    "ECBSR_M4C16_SPEC",
    "build_ecbsr_m16c64",
    "build_ecbsr_m4c16",
    "convert_ecbsr_edsr_state_dict",
    "detect_ecbsr",
]
