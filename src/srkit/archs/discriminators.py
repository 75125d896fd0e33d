"""GAN discriminators for SR training: the ESRGAN VGG-style discriminator and the Real-ESRGAN U-Net one.

Papers:
* VGG-style: Christian Ledig et al., "Photo-Realistic Single Image Super-Resolution Using a Generative
  Adversarial Network" (SRGAN), CVPR 2017; used with the same layout by Xintao Wang et al., "ESRGAN: Enhanced
  Super-Resolution Generative Adversarial Networks", ECCV Workshops 2018.
  Code: https://github.com/XPixelGroup/BasicSR (``basicsr/archs/discriminator_arch.py``), Apache-2.0.
  Keys as in BasicSR ``VGGStyleDiscriminator`` checkpoints (``conv0_0``, ``conv0_1``, ``bn0_1``, ...,
  ``linear1``, ``linear2``).
* U-Net with spectral norm: Xintao Wang, Liangbin Xie, Chao Dong, Ying Shan, "Real-ESRGAN: Training Real-World
  Blind Super-Resolution with Pure Synthetic Data", ICCV Workshops 2021.
  Code: https://github.com/xinntao/Real-ESRGAN (``realesrgan/archs/discriminator_arch.py``), BSD-3-Clause.
  Keys as in ``RealESRGAN_x4plus_netD.pth``: ``conv0``, ``conv1..conv8`` with ``weight_orig`` / ``weight_u`` /
  ``weight_v`` (``torch.nn.utils.spectral_norm``), ``conv9``.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F
from torch.nn.utils import spectral_norm

from srkit.archs._spec import ArchFamily, ArchSpec

__all__ = [
    "FAMILY",
    "UNET_DISCRIMINATOR_SPEC",
    "UNetDiscriminatorSN",
    "VGG_DISCRIMINATOR_SPEC",
    "VGGStyleDiscriminator",
    "build_unet_discriminator",
    "build_vgg_discriminator",
]


class VGGStyleDiscriminator(nn.Module):
    """VGG-style discriminator: (conv3x3 s1, conv4x4 s2) pairs with BatchNorm and LeakyReLU(0.2), then two
    linear layers.

    Maps (B, num_in_ch, input_size, input_size) images in [0, 1] to (B, 1) real/fake logits. The spatial size
    must be exactly `input_size` (128: five /2 stages, 256: six) so that the flattened feature is 8F x 4 x 4.
    """

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, input_size: int = 128):
        super().__init__()
        if input_size not in (128, 256):
            raise ValueError(f"input_size must be 128 or 256, got {input_size}")
        self.input_size = input_size
        f = num_feat
        # (in, out) channels of stage i; stage 0 has a biased conv and no BN on its first conv.
        chans = [(f, f), (f, 2 * f), (2 * f, 4 * f), (4 * f, 8 * f), (8 * f, 8 * f)]
        if input_size == 256:
            chans.append((8 * f, 8 * f))
        self.conv0_0 = nn.Conv2d(num_in_ch, f, 3, 1, 1, bias=True)
        self.conv0_1 = nn.Conv2d(f, f, 4, 2, 1, bias=False)
        self.bn0_1 = nn.BatchNorm2d(f, affine=True)
        for i, (cin, cout) in enumerate(chans[1:], start=1):
            setattr(self, f"conv{i}_0", nn.Conv2d(cin, cout, 3, 1, 1, bias=False))
            setattr(self, f"bn{i}_0", nn.BatchNorm2d(cout, affine=True))
            setattr(self, f"conv{i}_1", nn.Conv2d(cout, cout, 4, 2, 1, bias=False))
            setattr(self, f"bn{i}_1", nn.BatchNorm2d(cout, affine=True))
        self.num_stages = len(chans)
        self.linear1 = nn.Linear(8 * f * 4 * 4, 100)
        self.linear2 = nn.Linear(100, 1)
        self.lrelu = nn.LeakyReLU(negative_slope=0.2, inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, input_size, input_size) -> (B, 1) logits."""
        return self.forward_features(x)[0]

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, C, input_size, input_size) -> ((B, 1) logits, features): the output of every stride-2 stage,
        (B, c_i, input_size / 2^(i+1), input_size / 2^(i+1)), for discriminator feature matching."""
        if x.shape[-2:] != (self.input_size, self.input_size):
            raise ValueError(f"input must be {self.input_size}x{self.input_size}, got {tuple(x.shape[-2:])}")
        feat = self.lrelu(self.conv0_0(x))
        feat = self.lrelu(self.bn0_1(self.conv0_1(feat)))
        feats = [feat]
        for i in range(1, self.num_stages):
            feat = self.lrelu(getattr(self, f"bn{i}_0")(getattr(self, f"conv{i}_0")(feat)))
            feat = self.lrelu(getattr(self, f"bn{i}_1")(getattr(self, f"conv{i}_1")(feat)))
            feats.append(feat)
        out = self.lrelu(self.linear1(feat.flatten(1)))
        return self.linear2(out), feats


class UNetDiscriminatorSN(nn.Module):
    """U-Net discriminator with spectral normalisation (Real-ESRGAN).

    Three stride-2 4x4 convs down, three (bilinear x2 -> conv3x3) stages up with additive skip connections,
    two more convs and a 1-channel head; every conv but the first and the last is spectrally normalised.
    Maps (B, num_in_ch, H, W) images in [0, 1] (H, W multiples of 8) to (B, 1, H, W) per-pixel real/fake logits.
    """

    def __init__(self, num_in_ch: int = 3, num_feat: int = 64, skip_connection: bool = True):
        super().__init__()
        self.skip_connection = skip_connection
        f = num_feat
        self.conv0 = nn.Conv2d(num_in_ch, f, 3, 1, 1)
        self.conv1 = spectral_norm(nn.Conv2d(f, 2 * f, 4, 2, 1, bias=False))
        self.conv2 = spectral_norm(nn.Conv2d(2 * f, 4 * f, 4, 2, 1, bias=False))
        self.conv3 = spectral_norm(nn.Conv2d(4 * f, 8 * f, 4, 2, 1, bias=False))
        self.conv4 = spectral_norm(nn.Conv2d(8 * f, 4 * f, 3, 1, 1, bias=False))
        self.conv5 = spectral_norm(nn.Conv2d(4 * f, 2 * f, 3, 1, 1, bias=False))
        self.conv6 = spectral_norm(nn.Conv2d(2 * f, f, 3, 1, 1, bias=False))
        self.conv7 = spectral_norm(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv8 = spectral_norm(nn.Conv2d(f, f, 3, 1, 1, bias=False))
        self.conv9 = nn.Conv2d(f, 1, 3, 1, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, 1, H, W) logits; H and W must be multiples of 8."""
        return self.forward_features(x)[0]

    def forward_features(self, x: torch.Tensor) -> tuple[torch.Tensor, list[torch.Tensor]]:
        """(B, C, H, W) -> ((B, 1, H, W) logits, features): the activations of conv0 ... conv8 (full, 1/2, 1/4,
        1/8, 1/4, 1/2 and three at full resolution), for discriminator feature matching."""
        if x.shape[-2] % 8 or x.shape[-1] % 8:
            raise ValueError(f"H and W must be multiples of 8, got {tuple(x.shape[-2:])}")

        def act(t: torch.Tensor) -> torch.Tensor:
            return F.leaky_relu(t, negative_slope=0.2)

        def up(t: torch.Tensor) -> torch.Tensor:
            return F.interpolate(t, scale_factor=2, mode="bilinear", align_corners=False)

        x0 = act(self.conv0(x))
        x1 = act(self.conv1(x0))
        x2 = act(self.conv2(x1))
        x3 = act(self.conv3(x2))
        x4 = act(self.conv4(up(x3)))
        if self.skip_connection:
            x4 = x4 + x2
        x5 = act(self.conv5(up(x4)))
        if self.skip_connection:
            x5 = x5 + x1
        x6 = act(self.conv6(up(x5)))
        if self.skip_connection:
            x6 = x6 + x0
        x7 = act(self.conv7(x6))
        x8 = act(self.conv8(x7))
        return self.conv9(x8), [x0, x1, x2, x3, x4, x5, x6, x7, x8]


def build_vgg_discriminator(scale: int = 1, *, num_in_ch: int = 3, num_feat: int = 64,
                            input_size: int = 128) -> VGGStyleDiscriminator:
    """ESRGAN VGG-style discriminator for input_size x input_size (128 or 256) HR patches -> (B, 1) logits.
    14,499,401 params for 128 (21,055,049 for 256). `scale` must be 1 (a discriminator keeps no scale)."""
    if scale != 1:
        raise ValueError("a discriminator has scale 1")
    return VGGStyleDiscriminator(num_in_ch=num_in_ch, num_feat=num_feat, input_size=input_size)


def build_unet_discriminator(scale: int = 1, *, num_in_ch: int = 3, num_feat: int = 64,
                             skip_connection: bool = True) -> UNetDiscriminatorSN:
    """Real-ESRGAN U-Net SN discriminator, (B, 3, H, W) -> (B, 1, H, W) logits: 4,376,897 params.
    `scale` must be 1."""
    if scale != 1:
        raise ValueError("a discriminator has scale 1")
    return UNetDiscriminatorSN(num_in_ch=num_in_ch, num_feat=num_feat, skip_connection=skip_connection)


VGG_DISCRIMINATOR_SPEC = ArchSpec(
    build=build_vgg_discriminator,
    family="discriminators",
    paper="Ledig et al., SRGAN, CVPR 2017; Wang et al., ESRGAN, ECCV Workshops 2018 (VGG-style discriminator)",
    repo="https://github.com/XPixelGroup/BasicSR",
    license="Apache-2.0",
    scales=(1,),
    in_channels=3,
    out_channels=1,
    color_space="rgb",
    # The input must be exactly input_size x input_size (crop, don't pad); 32 is the downsampling factor.
    size_multiple=32,
    receptive_field=None,  # the linear head sees the whole patch
    # Meant for autocast training (parameters stay fp32); BatchNorm and LeakyReLU are AMP-friendly.
    safe_dtypes=("fp32", "bf16", "fp16"),
    kind="discriminator",
)

UNET_DISCRIMINATOR_SPEC = ArchSpec(
    build=build_unet_discriminator,
    family="discriminators",
    paper="Wang, Xie, Dong, Shan, Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic "
          "Data, ICCV Workshops 2021 (U-Net discriminator with spectral norm)",
    repo="https://github.com/xinntao/Real-ESRGAN",
    license="BSD-3-Clause",
    scales=(1,),
    in_channels=3,
    out_channels=1,
    color_space="rgb",
    size_multiple=8,  # three stride-2 convs, then three exact x2 upsamplings with additive skips
    receptive_field=None,  # finite but not declared (bilinear upsampling spreads it); not needed for training
    # Under autocast the spectral-norm power iteration runs on the fp32 parameters; activations stay O(1).
    safe_dtypes=("fp32", "bf16", "fp16"),
    kind="discriminator",
)


FAMILY = ArchFamily(
    name="discriminators",
    specs={"unet-discriminator": UNET_DISCRIMINATOR_SPEC, "vgg-discriminator": VGG_DISCRIMINATOR_SPEC},
    detect=None,  # discriminators are built for training, never loaded from authors' files
)
