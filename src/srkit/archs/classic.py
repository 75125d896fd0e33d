"""Classic small Y-channel CNNs: SRCNN, FSRCNN and ESPCN.

Papers:
    SRCNN - C. Dong, C. C. Loy, K. He, X. Tang, "Image Super-Resolution Using Deep Convolutional Networks",
    IEEE TPAMI 38(2), 2016 (first version: "Learning a Deep Convolutional Network for Image
    Super-Resolution", ECCV 2014).
    FSRCNN - C. Dong, C. C. Loy, X. Tang, "Accelerating the Super-Resolution Convolutional Neural Network",
    ECCV 2016.
    ESPCN - W. Shi, J. Caballero, F. Huszar, J. Totz, A. P. Aitken, R. Bishop, D. Rueckert, Z. Wang,
    "Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel Convolutional Neural
    Network", CVPR 2016.

The authors released SRCNN and FSRCNN as MATLAB/Caffe code (project pages at
http://mmlab.ie.cuhk.edu.hk/projects/SRCNN.html and .../FSRCNN.html) and ESPCN without code. The PyTorch
weights people actually use come from the ports by yjn870, and the module and parameter names here follow
them exactly, so their checkpoints load with ``load_state_dict(strict=True)``:

    https://github.com/yjn870/SRCNN-pytorch   (``conv1``, ``conv2``, ``conv3``)
    https://github.com/yjn870/FSRCNN-pytorch  (``first_part.{0,1}``, ``mid_part.N``, ``last_part``)
    https://github.com/yjn870/ESPCN-pytorch   (``first_part.{0,2}``, ``last_part.0``)

None of the three ports has a licence file. The ports' weights work on the BT.601 luma (Y) channel scaled
to [0, 1], which is also srkit's convention, so they need no input-range option.

Unlike the papers (which use "valid" convolutions and so shrink the image), the ports and this module pad
every convolution by ``k // 2``; every module maps (B, C, H, W) to (B, C, H*scale, W*scale).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from fractions import Fraction

import torch
from torch import nn

from srkit.archs._spec import ArchFamily, ArchSpec, pixel_shuffle_scale
from srkit.errors import ConfigError
from srkit.ops import imresize_matlab

__all__ = [
    "FAMILY",
    "ESPCN",
    "ESPCN_SPEC",
    "FSRCNN",
    "FSRCNN_S_SPEC",
    "FSRCNN_SPEC",
    "SRCNN",
    "SRCNN_SPEC",
    "build_espcn",
    "build_fsrcnn",
    "build_fsrcnn_s",
    "build_srcnn",
    "detect_classic",
    "preupsampling_receptive_field",
]

_PORTS_LICENSE = "none stated (the port has no licence file)"


def _check_scale(scale: int) -> int:
    """`scale` if it is a positive int, else ConfigError."""
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ConfigError(f"scale must be a positive integer, got {scale!r}")
    return scale


def preupsampling_receptive_field(scale: int, hr_radius: int) -> int:
    """LR receptive field of "MATLAB bicubic x`scale`, then convolutions reaching `hr_radius` HR pixels".

    Worst case over the `scale` x `scale` output pixels that belong to one LR pixel: the HR pixel j samples
    the LR position u = (j + 0.5) / scale - 0.5 with the Keys cubic, whose weights are non-zero for LR
    pixels strictly closer than 2 to u.

    Args:
        scale: integer upscaling factor.
        hr_radius: sum of ``kernel_size // 2`` over the convolutions that run on the HR grid.

    Returns:
        LR pixels of context on each side.
    """
    reach = 0
    for phase in range(scale):  # output pixels phase .. phase + scale - 1 sit on LR pixel 0
        for j in (phase - hr_radius, phase + hr_radius):
            u = Fraction(2 * j + 1, 2 * scale) - Fraction(1, 2)  # exact, so ties at distance 2 are excluded
            lo = math.floor(u - 2) + 1
            hi = math.ceil(u + 2) - 1
            reach = max(reach, -lo, hi)
    return reach


# --------------------------------------------------------------------------------------------------------------
# SRCNN
# --------------------------------------------------------------------------------------------------------------


class SRCNN(nn.Module):
    """SRCNN: MATLAB bicubic upsampling, then patch extraction, non-linear mapping and reconstruction convs.

    Keys as in yjn870/SRCNN-pytorch: ``conv1``, ``conv2``, ``conv3`` (each with a bias).

    Args:
        scale: upscaling factor (the bicubic pre-upsampling; the convolutions do not depend on it).
        num_channels: image channels in and out (1: the Y channel, as in the paper).
        kernels: kernel sizes (f1, f2, f3); (9, 5, 5) is the paper's best, (9, 1, 5) its base model.
        filters: feature maps (n1, n2) after the first and second convolution.

    Shapes: (B, num_channels, H, W) in [0, 1] -> (B, num_channels, H*scale, W*scale), roughly [0, 1]
    (not clipped).
    """

    def __init__(self, scale: int = 3, num_channels: int = 1, kernels: Sequence[int] = (9, 5, 5),
                 filters: Sequence[int] = (64, 32)):
        super().__init__()
        k1, k2, k3 = (int(k) for k in kernels)
        n1, n2 = (int(n) for n in filters)
        self.scale = _check_scale(scale)  # plain attribute: the factor this module was built for
        # padding k // 2 keeps the size, as the port does (the paper's "valid" convs would shrink the image)
        self.conv1 = nn.Conv2d(num_channels, n1, k1, padding=k1 // 2)
        self.conv2 = nn.Conv2d(n1, n2, k2, padding=k2 // 2)
        self.conv3 = nn.Conv2d(n2, num_channels, k3, padding=k3 // 2)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H*scale, W*scale)."""
        x = imresize_matlab(x, float(self.scale))
        x = self.relu(self.conv1(x))
        x = self.relu(self.conv2(x))
        return self.conv3(x)


def build_srcnn(scale: int = 4, *, num_channels: int = 1, kernels: Sequence[int] = (9, 5, 5),
                filters: Sequence[int] = (64, 32)) -> SRCNN:
    """SRCNN (default 9-5-5, 64/32 filters, Y channel); see `SRCNN`."""
    return SRCNN(scale, num_channels=num_channels, kernels=tuple(kernels), filters=tuple(filters))


def _srcnn_rf(options: dict) -> int:
    """SRCNN receptive field for build options (plus ``scale``, default 4)."""
    kernels = options.get("kernels", (9, 5, 5))
    return preupsampling_receptive_field(int(options.get("scale", 4)), sum(int(k) // 2 for k in kernels))


# --------------------------------------------------------------------------------------------------------------
# FSRCNN
# --------------------------------------------------------------------------------------------------------------


class FSRCNN(nn.Module):
    """FSRCNN: LR feature extraction, shrinking, mapping, expanding, then a strided 9x9 deconvolution.

    Keys as in yjn870/FSRCNN-pytorch: ``first_part.0`` (5x5 conv) and ``first_part.1`` (PReLU);
    ``mid_part.{0,1}`` shrink (1x1) + PReLU, ``m`` pairs of 3x3 conv + PReLU, ``mid_part.{2m+2,2m+3}`` expand
    (1x1) + PReLU; ``last_part`` the ConvTranspose2d(d, C, 9, stride=scale, padding=4,
    output_padding=scale-1), which makes the output exactly H*scale x W*scale. Only the deconvolution's
    stride depends on the scale, so its weights have the same shape at every scale.

    Args:
        scale: upscaling factor (the deconvolution stride).
        num_channels: image channels in and out (1: the Y channel, as in the paper).
        d: feature maps of the LR feature extraction / expanding layers.
        s: feature maps after shrinking.
        m: mapping layers.

    Shapes: (B, num_channels, H, W) in [0, 1] -> (B, num_channels, H*scale, W*scale), roughly [0, 1].
    """

    def __init__(self, scale: int = 3, num_channels: int = 1, d: int = 56, s: int = 12, m: int = 4):
        super().__init__()
        self.scale = _check_scale(scale)  # plain attribute: the factor this module was built for
        self.first_part = nn.Sequential(nn.Conv2d(num_channels, d, 5, padding=2), nn.PReLU(d))
        mid: list[nn.Module] = [nn.Conv2d(d, s, 1), nn.PReLU(s)]
        for _ in range(m):
            mid += [nn.Conv2d(s, s, 3, padding=1), nn.PReLU(s)]
        mid += [nn.Conv2d(s, d, 1), nn.PReLU(d)]
        self.mid_part = nn.Sequential(*mid)
        # (H - 1) * scale - 2 * 4 + 9 + (scale - 1) = H * scale
        self.last_part = nn.ConvTranspose2d(d, num_channels, 9, stride=scale, padding=4,
                                            output_padding=scale - 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H*scale, W*scale)."""
        return self.last_part(self.mid_part(self.first_part(x)))


def build_fsrcnn(scale: int = 4, *, num_channels: int = 1, d: int = 56, s: int = 12, m: int = 4) -> FSRCNN:
    """FSRCNN (d=56, s=12, m=4; Y channel); see `FSRCNN`."""
    return FSRCNN(scale, num_channels=num_channels, d=d, s=s, m=m)


def build_fsrcnn_s(scale: int = 4, *, num_channels: int = 1, d: int = 32, s: int = 5, m: int = 1) -> FSRCNN:
    """FSRCNN-s, the paper's small real-time model (d=32, s=5, m=1; Y channel); see `FSRCNN`."""
    return FSRCNN(scale, num_channels=num_channels, d=d, s=s, m=m)


def _deconv_rf(scale: int, kernel: int, padding: int) -> int:
    """LR reach of a ConvTranspose2d(kernel, stride=scale, padding), worst case over output phases."""
    reach = 0
    for o in range(scale):  # the output pixels of LR pixel 0
        # o = i * scale - padding + k with 0 <= k < kernel
        lo = math.ceil((o + padding - kernel + 1) / scale)
        hi = math.floor((o + padding) / scale)
        reach = max(reach, -lo, hi)
    return reach


def _fsrcnn_rf(options: dict, m_default: int) -> int:
    """FSRCNN receptive field for build options (plus ``scale``, default 4)."""
    m = int(options.get("m", m_default))
    return 2 + m + _deconv_rf(int(options.get("scale", 4)), 9, 4)  # 5x5 and m 3x3 convs on the LR grid


# --------------------------------------------------------------------------------------------------------------
# ESPCN
# --------------------------------------------------------------------------------------------------------------


class ESPCN(nn.Module):
    """ESPCN: three LR convolutions (5-3-3, tanh) and a sub-pixel (PixelShuffle) output layer.

    Keys as in yjn870/ESPCN-pytorch: ``first_part.0`` (5x5, 64), ``first_part.2`` (3x3, 32),
    ``last_part.0`` (3x3, num_channels * scale**2) followed by PixelShuffle(scale).

    Args:
        scale: upscaling factor.
        num_channels: image channels in and out (1: the Y channel, as in the paper).
        filters: feature maps (n1, n2) of the first two layers.

    Shapes: (B, num_channels, H, W) in [0, 1] -> (B, num_channels, H*scale, W*scale), roughly [0, 1].
    """

    def __init__(self, scale: int = 3, num_channels: int = 1, filters: Sequence[int] = (64, 32)):
        super().__init__()
        n1, n2 = (int(n) for n in filters)
        self.scale = _check_scale(scale)  # plain attribute: the factor this module was built for
        self.first_part = nn.Sequential(
            nn.Conv2d(num_channels, n1, 5, padding=2), nn.Tanh(),
            nn.Conv2d(n1, n2, 3, padding=1), nn.Tanh(),
        )
        self.last_part = nn.Sequential(nn.Conv2d(n2, num_channels * scale * scale, 3, padding=1),
                                       nn.PixelShuffle(scale))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H*scale, W*scale)."""
        return self.last_part(self.first_part(x))


def build_espcn(scale: int = 4, *, num_channels: int = 1, filters: Sequence[int] = (64, 32)) -> ESPCN:
    """ESPCN (5-3-3, 64/32 filters, tanh, Y channel); see `ESPCN`."""
    return ESPCN(scale, num_channels=num_channels, filters=tuple(filters))


# --------------------------------------------------------------------------------------------------------------
# Specs and detection
# --------------------------------------------------------------------------------------------------------------

SRCNN_SPEC = ArchSpec(
    build=build_srcnn,
    family="classic",
    paper="C. Dong, C. C. Loy, K. He, X. Tang, Image Super-Resolution Using Deep Convolutional Networks, "
          "IEEE TPAMI 2016 (ECCV 2014)",
    repo="https://github.com/yjn870/SRCNN-pytorch",
    license=_PORTS_LICENSE,
    scales=(2, 3, 4),
    in_channels=1,
    out_channels=1,
    color_space="y",
    size_multiple=1,
    receptive_field=_srcnn_rf,  # depends on scale and kernels: 6 / 4 / 4 LR pixels for 9-5-5 at x2 / x3 / x4
    safe_dtypes=("fp32", "bf16", "fp16"),  # three layers, [0, 1] activations
)

FSRCNN_SPEC = ArchSpec(
    build=build_fsrcnn,
    family="classic",
    paper="C. Dong, C. C. Loy, X. Tang, Accelerating the Super-Resolution Convolutional Neural Network, ECCV 2016",
    repo="https://github.com/yjn870/FSRCNN-pytorch",
    license=_PORTS_LICENSE,
    scales=(2, 3, 4),
    in_channels=1,
    out_channels=1,
    color_space="y",
    size_multiple=1,
    receptive_field=lambda options: _fsrcnn_rf(options, 4),
    safe_dtypes=("fp32", "bf16", "fp16"),  # shallow, [0, 1] activations
)

FSRCNN_S_SPEC = ArchSpec(
    build=build_fsrcnn_s,
    family="classic",
    paper=FSRCNN_SPEC.paper + " (FSRCNN-s)",
    repo="https://github.com/yjn870/FSRCNN-pytorch",
    license=_PORTS_LICENSE,
    scales=(2, 3, 4),
    in_channels=1,
    out_channels=1,
    color_space="y",
    size_multiple=1,
    receptive_field=lambda options: _fsrcnn_rf(options, 1),
    safe_dtypes=("fp32", "bf16", "fp16"),
)

ESPCN_SPEC = ArchSpec(
    build=build_espcn,
    family="classic",
    paper="W. Shi et al., Real-Time Single Image and Video Super-Resolution Using an Efficient Sub-Pixel "
          "Convolutional Neural Network, CVPR 2016",
    repo="https://github.com/yjn870/ESPCN-pytorch",
    license=_PORTS_LICENSE,
    scales=(2, 3, 4),
    in_channels=1,
    out_channels=1,
    color_space="y",
    size_multiple=1,
    receptive_field=4,  # 5x5 + 3x3 + 3x3 on the LR grid; the shuffle adds nothing
    safe_dtypes=("fp32", "bf16", "fp16"),  # tanh-bounded features
)


def _mid_conv_indices(sd: dict[str, torch.Tensor]) -> list[int]:
    """Indices N of the convolutions (4-D weight and a bias) in an FSRCNN ``mid_part.N``."""
    return sorted(int(k.split(".")[1]) for k in sd if k.startswith("mid_part.") and k.endswith(".bias")
                  and sd[k.replace(".bias", ".weight")].ndim == 4)


def detect_classic(state_dict: dict[str, torch.Tensor]) -> tuple[str, int | None, dict] | None:
    """Recognise a yjn870-port checkpoint of SRCNN, FSRCNN / FSRCNN-s or ESPCN.

    Returns (arch name, scale, options), or None when the keys are not one of these layouts. The scale is
    read from ESPCN's sub-pixel conv (out channels = num_channels * scale**2). SRCNN's weights do not depend
    on the scale at all, and FSRCNN's only through the deconvolution's stride, which is not stored: for
    those the scale is None, meaning "not inferable; the caller must give it" (the port's weights files
    name it: ``srcnn_x3.pth``, ``fsrcnn_x4.pth``).
    """
    keys = set(state_dict)
    srcnn_keys = {f"conv{i}.{p}" for i in (1, 2, 3) for p in ("weight", "bias")}
    if keys == srcnn_keys:
        w1, w2, w3 = (state_dict[f"conv{i}.weight"] for i in (1, 2, 3))
        if not (w1.ndim == w2.ndim == w3.ndim == 4):
            return None
        options = {
            "num_channels": int(w1.shape[1]),
            "kernels": (int(w1.shape[-1]), int(w2.shape[-1]), int(w3.shape[-1])),
            "filters": (int(w1.shape[0]), int(w2.shape[0])),
        }
        return "srcnn", None, options

    if {"first_part.0.weight", "first_part.1.weight", "mid_part.0.weight", "last_part.weight"} <= keys:
        convs = _mid_conv_indices(state_dict)
        if len(convs) < 2 or convs != list(range(0, 2 * len(convs), 2)):
            return None
        d = int(state_dict["first_part.0.weight"].shape[0])
        s = int(state_dict["mid_part.0.weight"].shape[0])
        m = len(convs) - 2
        options = {"num_channels": int(state_dict["first_part.0.weight"].shape[1]), "d": d, "s": s, "m": m}
        name = "fsrcnn-s" if (d, s, m) == (32, 5, 1) else "fsrcnn"
        return name, None, options

    espcn_keys = {f"{p}.{q}" for p in ("first_part.0", "first_part.2", "last_part.0") for q in ("weight", "bias")}
    if keys == espcn_keys:
        c = int(state_dict["first_part.0.weight"].shape[1])
        out = int(state_dict["last_part.0.weight"].shape[0])
        scale = pixel_shuffle_scale(out, c)
        if scale is None:
            return None
        options = {
            "num_channels": c,
            "filters": (int(state_dict["first_part.0.weight"].shape[0]),
                        int(state_dict["first_part.2.weight"].shape[0])),
        }
        return "espcn", scale, options
    return None


FAMILY = ArchFamily(
    name="classic",
    specs={"srcnn": SRCNN_SPEC, "fsrcnn": FSRCNN_SPEC, "fsrcnn-s": FSRCNN_S_SPEC, "espcn": ESPCN_SPEC},
    detect=detect_classic,
)
