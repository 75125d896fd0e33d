"""ECBSR-ctrl: ECBSR told the degradation levels of its input, for restoration strength the user sets.

The network is ECBSR (`srkit.archs.ecbsr`) whose head ECB takes two more input channels: constant maps of the
noise level and the JPEG level, as FFDNet feeds its noise-level map (K. Zhang, W. Zuo, L. Zhang, "FFDNet: Toward
a Fast and Flexible Solution for CNN-Based Image Denoising", IEEE TIP 2018). The levels are normalised to [0, 1]
over the trained ranges:

* ``noise``: Gaussian noise sigma on the 0-255 scale -> ``noise / 50`` (0 = none, 1 = sigma 50);
* ``jpeg``: JPEG quality 1..100 -> ``(100 - jpeg) / 90`` (0 = quality 100, no JPEG; 1 = quality 10).

Only the head conv grows (2 x 9 x C more multiply-accumulates per LR pixel: +1,152 for C = 64, 72 per output
pixel at x4, 0.24 % of ECBSR-M12C64's 29,484); everything after it is ECBSR's. The head's branches fold like any
ECB (`srkit.deployment.deploy`): the maps are ordinary input channels. Built with ``deploy=True`` it has the
authors' PlainSR keys plus nothing else (``backbone.0.conv3x3.weight`` is (C, colors + 2, 3, 3)).

`ConditionedECBSR.load_blind_state_dict` starts it from a blind ECBSR of the same layout (``real-x4``): the head's
weights for the two maps are zero, so it computes exactly the blind model until training teaches it to use them.

The module takes the levels as keyword arguments, floats or (B,) tensors (one per image): ``module(x, noise=15,
jpeg=60)``. Called without them it estimates each image's levels from its own pixels
(`srkit.degrade.estimate.estimate_levels_batch`) and so behaves as a blind model; `srkit.upscale` and
`upscale_file` estimate once per image (and read a JPEG file's own quality), so every tile gets the same levels.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn

from srkit.archs._spec import ArchFamily, ArchSpec
from srkit.archs.ecbsr import ECB, ECBSR, detect_ecbsr
from srkit.errors import ConfigError, ShapeError

FFDNET = ("Zhang, Zuo, Zhang, 'FFDNet: Toward a Fast and Flexible Solution for CNN-Based Image Denoising', "
          "IEEE TIP 2018")
PAPER = ("Zhang, Zeng, Zhang, 'Edge-oriented Convolution Block for Real-time Super Resolution on Mobile Devices', "
         f"ACM MM 2021; level maps as in {FFDNET}")
REPO = "https://github.com/xindongzhang/ECBSR"
LICENSE = "Apache-2.0"

#: The per-call inputs, in the order of the level maps.
LEVEL_INPUTS = ("noise", "jpeg")
#: Noise sigma (0-255 scale) whose map value is 1.
NOISE_FULL = 50.0
#: JPEG qualities span 100 (map 0) .. 100 - JPEG_SPAN = 10 (map 1).
JPEG_SPAN = 90.0


def _per_image(value: float | Tensor, batch: int, x: Tensor, name: str) -> Tensor:
    t = torch.as_tensor(value, dtype=torch.float32, device=x.device).reshape(-1)
    if t.numel() == 1:
        t = t.expand(batch)
    if t.numel() != batch:
        raise ShapeError(f"{name}: expected one value or one per image ({batch}), got {t.numel()}")
    return t


def level_maps(x: Tensor, noise: float | Tensor, jpeg: float | Tensor) -> Tensor:
    """(B, 2, H, W) constant maps ``noise / 50`` and ``(100 - jpeg) / 90`` for images `x` (B, C, H, W), in x's
    dtype and device; `noise` / `jpeg` are numbers or (B,) tensors."""
    b, _, h, w = x.shape
    n = _per_image(noise, b, x, "noise") / NOISE_FULL
    j = (100.0 - _per_image(jpeg, b, x, "jpeg")) / JPEG_SPAN
    return torch.stack([n, j], dim=1).to(x.dtype).view(b, 2, 1, 1).expand(b, 2, h, w)


class ConditionedECBSR(ECBSR):
    """ECBSR with level maps: (B, colors, H, W) in [0, rgb_range] + levels -> (B, colors, sH, sW).

    Args: as `ECBSR` (pixel-shuffle upsampler only). The head ECB takes ``colors + 2`` channels.
    """

    def __init__(self, module_nums: int = 12, channel_nums: int = 64, scale: int = 4, colors: int = 3,
                 with_idt: bool = False, act_type: str = "prelu", depth_multiplier: float = 2.0,
                 rgb_range: float = 1.0, deploy: bool = False, edge_branches: bool = True):
        super().__init__(module_nums, channel_nums, scale=scale, colors=colors, with_idt=with_idt,
                         act_type=act_type, depth_multiplier=depth_multiplier, rgb_range=rgb_range, deploy=deploy,
                         edge_branches=edge_branches, upsampler="pixelshuffle")
        self.levels = len(LEVEL_INPUTS)
        self.backbone[0] = ECB(colors + self.levels, channel_nums, depth_multiplier=depth_multiplier,
                               act_type=act_type, with_idt=with_idt, deploy=deploy, edge_branches=edge_branches)

    def forward(self, x: Tensor, noise: float | Tensor | None = None,
                jpeg: float | Tensor | None = None) -> Tensor:
        if noise is None or jpeg is None:
            from srkit.degrade.estimate import estimate_levels_batch

            est_noise, est_jpeg = estimate_levels_batch(x.detach().float() / self.rgb_range)
            noise = est_noise if noise is None else noise
            jpeg = est_jpeg if jpeg is None else jpeg
        residual = x.repeat_interleave(self.scale * self.scale, dim=1)
        y = self.backbone(torch.cat([x, level_maps(x, noise, jpeg)], dim=1))
        return self.upsampler(y + residual)

    @torch.no_grad()
    def load_blind_state_dict(self, state_dict: dict[str, Tensor]) -> None:
        """Load the weights of a blind ECBSR of the same layout (same M, C, colours, form): every tensor as it
        is, the head's input-channel dimension padded with zeros for the level maps.

        Raises:
            ConfigError: the weights are not such an ECBSR (names or shapes differ otherwise).
        """
        own = self.state_dict()
        if state_dict.keys() != own.keys():
            missing = sorted(own.keys() - state_dict.keys())[:3]
            extra = sorted(state_dict.keys() - own.keys())[:3]
            raise ConfigError(f"not the blind ECBSR of this network (missing {missing}, unexpected {extra})")
        fitted = {}
        for k, v in state_dict.items():
            want = own[k].shape
            if v.shape == want:
                fitted[k] = v
            elif (k.startswith("backbone.0.") and v.dim() == 4 and v.shape[0] == want[0] and v.shape[2:] == want[2:]
                  and v.shape[1] + self.levels == want[1]):
                fitted[k] = torch.cat([v, v.new_zeros((v.shape[0], self.levels, *v.shape[2:]))], dim=1)
            else:
                raise ConfigError(f"not the blind ECBSR of this network ({k}: {tuple(v.shape)}, want "
                                  f"{tuple(want)})")
        self.load_state_dict(fitted)


def build_ecbsr_ctrl(scale: int = 4, *, module_nums: int = 12, channel_nums: int = 64, colors: int = 3,
                     with_idt: bool = False, act_type: str = "prelu", depth_multiplier: float = 2.0,
                     rgb_range: float = 1.0, deploy: bool = False, edge_branches: bool = True) -> ConditionedECBSR:
    """ECBSR-ctrl, default M12C64 RGB (real-x4's network plus the level maps). See `ConditionedECBSR`."""
    return ConditionedECBSR(module_nums, channel_nums, scale=scale, colors=colors, with_idt=with_idt,
                            act_type=act_type, depth_multiplier=depth_multiplier, rgb_range=rgb_range,
                            deploy=deploy, edge_branches=edge_branches)


class GatedECBSR(nn.Module):
    """Strength 0 is a clean-image model: (B, colors, H, W) in [0, 1] + levels -> (B, colors, sH, sW).

    Two networks and a gate. ``clean`` is a Y-channel plain ECBSR trained on clean bicubic input (balanced-x4's
    M12C48), run as srkit runs Y models (BT.601 luma through the network, MATLAB-bicubic chroma); ``restore`` is a
    `ConditionedECBSR` told the levels. Their outputs are blended per image::

        out = clean + g * (restore - clean),   g = tanh(softplus(a) * noise / 50 + softplus(b) * (100 - jpeg) / 90)

    so g is 0 exactly when the user says there is nothing to clean (noise 0, JPEG quality 100: strength 0) and
    rises with either level; a and b are learnt. ``clean`` is frozen (its parameters do not require grad): at
    strength 0 the output is the clean model's, whatever the restoration network learns. When every image of a
    batch has g = 0 the restoration network is not run at all (16,011 MACs per output pixel instead of 45,567).

    Args:
        module_nums / channel_nums: the restoration network's body (M, C); colors: 3 (RGB) or 1.
        clean_module_nums / clean_channel_nums: the clean network's (M, C).
        gate_gain: initial softplus(a) = softplus(b) (8: g = 0.66 at sigma 5 alone).
        deploy, edge_branches: as `ECBSR` (the shipped model is deployed: plain convs).
    """

    def __init__(self, scale: int = 4, module_nums: int = 12, channel_nums: int = 64, clean_module_nums: int = 12,
                 clean_channel_nums: int = 48, colors: int = 3, gate_gain: float = 8.0, deploy: bool = False,
                 edge_branches: bool = True):
        super().__init__()
        if colors not in (1, 3):
            raise ConfigError(f"colors: expected 1 or 3, got {colors}")
        if gate_gain <= 0:
            raise ConfigError(f"gate_gain: must be > 0, got {gate_gain}")
        self.scale = scale
        self.restore = ConditionedECBSR(module_nums, channel_nums, scale=scale, colors=colors, deploy=deploy,
                                        edge_branches=edge_branches)
        self.clean = ECBSR(clean_module_nums, clean_channel_nums, scale=scale, colors=1, deploy=deploy,
                           edge_branches=edge_branches, upsampler="pixelshuffle")
        self.clean.requires_grad_(False)
        raw = math.log(math.expm1(gate_gain))  # inverse softplus
        self.gate_raw = nn.Parameter(torch.full((len(LEVEL_INPUTS),), raw))

    def gate(self, x: Tensor, noise: float | Tensor, jpeg: float | Tensor) -> Tensor:
        """(B, 1, 1, 1) blend weight in [0, 1) of the restoration network for images `x` at these levels."""
        b = x.shape[0]
        levels = torch.stack([_per_image(noise, b, x, "noise") / NOISE_FULL,
                              (100.0 - _per_image(jpeg, b, x, "jpeg")) / JPEG_SPAN], dim=1)  # (B, 2), as level_maps
        gain = torch.nn.functional.softplus(self.gate_raw.float())
        return torch.tanh((levels.clamp(min=0) * gain).sum(dim=1)).view(-1, 1, 1, 1)

    def clean_output(self, x: Tensor) -> Tensor:
        """The clean network's SR of `x`: on luma for RGB input, with MATLAB-bicubic chroma."""
        if x.shape[1] == 1:
            return self.clean(x)
        from srkit.ops.color import upscale_rgb_by_luma

        return upscale_rgb_by_luma(self.clean, x, self.scale)

    def forward(self, x: Tensor, noise: float | Tensor | None = None,
                jpeg: float | Tensor | None = None) -> Tensor:
        if noise is None or jpeg is None:
            from srkit.degrade.estimate import estimate_levels_batch

            est_noise, est_jpeg = estimate_levels_batch(x.detach().float())
            noise = est_noise if noise is None else noise
            jpeg = est_jpeg if jpeg is None else jpeg
        g = self.gate(x, noise, jpeg)
        clean = self.clean_output(x)
        if not self.training and not bool((g > 0).any()):
            return clean
        restored = self.restore(x, noise=noise, jpeg=jpeg)
        return clean + g.to(restored.dtype) * (restored - clean.to(restored.dtype))


def build_ecbsr_ctrl_gated(scale: int = 4, *, module_nums: int = 12, channel_nums: int = 64,
                           clean_module_nums: int = 12, clean_channel_nums: int = 48, colors: int = 3,
                           gate_gain: float = 8.0, deploy: bool = False, edge_branches: bool = True) -> GatedECBSR:
    """ECBSR-ctrl-gated, default real-x4-ctrl's network gated against balanced-x4's. See `GatedECBSR`."""
    return GatedECBSR(scale, module_nums, channel_nums, clean_module_nums, clean_channel_nums, colors=colors,
                      gate_gain=gate_gain, deploy=deploy, edge_branches=edge_branches)


def _receptive_field(options: dict) -> int:
    return int(options.get("module_nums", 12)) + 2  # head + M body + tail 3x3 convs


def _label(options: dict) -> str:
    return f"ecbsr-ctrl-m{options.get('module_nums', 12)}c{options.get('channel_nums', 64)}"


def detect_ecbsr_ctrl(state_dict: dict[str, Tensor]) -> tuple[str, int, dict] | None:
    """Recognise an ECBSR-ctrl checkpoint (training or deployed form): ECBSR's keys whose head takes two more
    input channels than the tail's ``colors * s * s`` implies. A plain ECBSR never matches (its head takes exactly
    ``colors``). Options as `detect_ecbsr`'s, in srkit's [0, 1] range (no ``rgb_range``)."""
    head = state_dict.get("backbone.0.conv3x3.weight")
    levels = len(LEVEL_INPUTS)
    if head is None or head.dim() != 4 or head.shape[1] <= levels:
        return None
    c_in = int(head.shape[1])
    colors = c_in - levels
    # The head's tensors seen without the level channels: an ECBSR of `colors` channels, if this is one.
    sliced = {k: v[:, :colors] if k.startswith("backbone.0.") and v.dim() == 4 and v.shape[1] == c_in else v
              for k, v in state_dict.items()}
    found = detect_ecbsr(sliced)
    if found is None or found[2].get("colors") != colors:
        return None
    _, scale, options = found
    return "ecbsr-ctrl", scale, {k: v for k, v in options.items() if k != "rgb_range"}


def _sub(state_dict: dict[str, Tensor], prefix: str) -> dict[str, Tensor]:
    return {k[len(prefix):]: v for k, v in state_dict.items() if k.startswith(prefix)}


def detect_ecbsr_ctrl_gated(state_dict: dict[str, Tensor]) -> tuple[str, int, dict] | None:
    """Recognise an ECBSR-ctrl-gated checkpoint: ``gate_raw`` (2,), an ECBSR-ctrl under ``restore.`` and a Y
    ECBSR under ``clean.`` of the same scale, and no other keys."""
    gate = state_dict.get("gate_raw")
    if gate is None or tuple(gate.shape) != (len(LEVEL_INPUTS),):
        return None
    restore, clean = _sub(state_dict, "restore."), _sub(state_dict, "clean.")
    if len(restore) + len(clean) + 1 != len(state_dict):
        return None
    r, c = detect_ecbsr_ctrl(restore), detect_ecbsr(clean)
    if r is None or c is None or c[2].get("colors") != 1 or r[1] != c[1]:
        return None
    options = {k: r[2][k] for k in ("module_nums", "channel_nums", "colors", "deploy")}
    if bool(c[2]["deploy"]) != bool(options["deploy"]):
        return None
    options.update(clean_module_nums=c[2]["module_nums"], clean_channel_nums=c[2]["channel_nums"])
    return "ecbsr-ctrl-gated", r[1], options


def detect_conditioned(state_dict: dict[str, Tensor]) -> tuple[str, int, dict] | None:
    """`detect_ecbsr_ctrl_gated`, else `detect_ecbsr_ctrl`."""
    return detect_ecbsr_ctrl_gated(state_dict) or detect_ecbsr_ctrl(state_dict)


def _gated_label(options: dict) -> str:
    return (f"ecbsr-ctrl-m{options.get('module_nums', 12)}c{options.get('channel_nums', 64)}"
            f"-gated-m{options.get('clean_module_nums', 12)}c{options.get('clean_channel_nums', 48)}")


ECBSR_CTRL_SPEC = ArchSpec(
    build=build_ecbsr_ctrl, family="conditioned", paper=PAPER, repo=REPO, license=LICENSE, scales=(2, 3, 4),
    in_channels=3, out_channels=3, color_space="rgb", size_multiple=1, receptive_field=_receptive_field,
    safe_dtypes=("fp32", "bf16"), label=_label, inputs=LEVEL_INPUTS,
)

ECBSR_CTRL_GATED_SPEC = ArchSpec(
    build=build_ecbsr_ctrl_gated, family="conditioned", paper=PAPER, repo=REPO, license=LICENSE, scales=(2, 3, 4),
    in_channels=3, out_channels=3, color_space="rgb", size_multiple=1,
    # the deeper of the two networks' head + M body + tail 3x3 convs (the bicubic chroma needs only 2 LR px)
    receptive_field=lambda o: max(int(o.get("module_nums", 12)), int(o.get("clean_module_nums", 12))) + 2,
    safe_dtypes=("fp32", "bf16"), label=_gated_label, inputs=LEVEL_INPUTS,
)

FAMILY = ArchFamily(name="conditioned",
                    specs={"ecbsr-ctrl": ECBSR_CTRL_SPEC, "ecbsr-ctrl-gated": ECBSR_CTRL_GATED_SPEC},
                    detect=detect_conditioned)

__all__ = [
    "ECBSR_CTRL_GATED_SPEC",
    "ECBSR_CTRL_SPEC",
    "FAMILY",
    "JPEG_SPAN",
    "LEVEL_INPUTS",
    "NOISE_FULL",
    "ConditionedECBSR",
    "GatedECBSR",
    "build_ecbsr_ctrl",
    "build_ecbsr_ctrl_gated",
    "detect_conditioned",
    "detect_ecbsr_ctrl",
    "detect_ecbsr_ctrl_gated",
    "level_maps",
]
