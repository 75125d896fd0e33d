"""IMDN: Information Multi-Distillation Network.

Paper: Zheng Hui, Xinbo Gao, Yunchu Yang, Xiumei Wang, "Lightweight Image Super-Resolution with Information
Multi-distillation Network", ACM Multimedia 2019.
Repository: https://github.com/Zheng222/IMDN (no licence file in the repository).

Six information multi-distillation blocks (IMDB): four 3x3 convs, each splitting off a quarter of its channels
("distilled") and passing the rest on; the distilled parts are concatenated, reweighted by contrast-aware
channel attention (CCA: per-channel standard deviation + mean over the whole image -> 1x1 -> ReLU -> 1x1 ->
sigmoid), fused by a 1x1 conv and added to the block input. The six block outputs are concatenated, fused by a
1x1 conv + LeakyReLU and a 3x3 conv, added to the shallow features, and upsampled by conv + pixel shuffle.

State-dict keys as in Zheng222/IMDN ``model/architecture.py`` (class ``IMDN``) / ``model/block.py``:
``fea_conv``, ``IMDB<k>.c1``..``c5``, ``IMDB<k>.cca.conv_du.{0,2}``, ``c.0``, ``LR_conv``, ``upsampler.0``. The
released ``checkpoints/IMDN_x{2,3,4}.pth`` carry a ``module.`` prefix (stripped before detection).

Value range: [0, 1] RGB in and out (``test_IMDN.py`` divides by 255).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from srkit.archs._spec import ArchFamily, ArchSpec, pixel_shuffle_scale

PAPER = ("Hui, Gao, Yang, Wang, 'Lightweight Image Super-Resolution with Information Multi-distillation Network', "
         "ACM MM 2019")
REPO = "https://github.com/Zheng222/IMDN"
LICENSE = "none stated (no licence file in the repository)"


def _conv(in_ch: int, out_ch: int, k: int) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, k, padding=k // 2)


def contrast_channels(x: Tensor) -> Tensor:
    """Per-channel standard deviation over the image (population, as the authors): (B, C, H, W) -> (B, C, 1, 1)."""
    mean = x.mean(dim=(2, 3), keepdim=True)
    return (x - mean).pow(2).mean(dim=(2, 3), keepdim=True).sqrt()


class CCALayer(nn.Module):
    """Contrast-aware channel attention: x * sigmoid(W2 relu(W1 (std(x) + mean(x)))); (B, C, H, W) -> same.

    The statistics are global (whole image), so the receptive field of a network using it is the whole image.
    """

    def __init__(self, channel: int, reduction: int = 16):
        super().__init__()
        self.conv_du = nn.Sequential(
            nn.Conv2d(channel, channel // reduction, 1),
            nn.ReLU(),
            nn.Conv2d(channel // reduction, channel, 1),
            nn.Sigmoid(),
        )

    def forward(self, x: Tensor) -> Tensor:
        y = contrast_channels(x) + x.mean(dim=(2, 3), keepdim=True)
        return x * self.conv_du(y)


class IMDModule(nn.Module):
    """Information multi-distillation block: (B, C, H, W) -> (B, C, H, W), residual.

    With d = int(C * distillation_rate) and r = C - d: c1 (C -> C), c2, c3 (r -> C), c4 (r -> d), each 3x3 with
    LeakyReLU(0.05) except c4; concat of the four distilled parts (4d channels) -> CCA -> c5 (1x1, 4d -> C).
    """

    def __init__(self, in_channels: int, distillation_rate: float = 0.25):
        super().__init__()
        # +1e-9: a rate detected as d / C must give back d (the authors' rate 0.25 is exact anyway).
        self.distilled_channels = int(in_channels * distillation_rate + 1e-9)
        self.remaining_channels = int(in_channels - self.distilled_channels)
        d, r = self.distilled_channels, self.remaining_channels
        self.c1 = _conv(in_channels, in_channels, 3)
        self.c2 = _conv(r, in_channels, 3)
        self.c3 = _conv(r, in_channels, 3)
        self.c4 = _conv(r, d, 3)
        self.act = nn.LeakyReLU(0.05)
        self.c5 = _conv(d * 4, in_channels, 1)
        self.cca = CCALayer(d * 4)

    def forward(self, x: Tensor) -> Tensor:
        split = [self.distilled_channels, self.remaining_channels]
        d1, r1 = torch.split(self.act(self.c1(x)), split, dim=1)
        d2, r2 = torch.split(self.act(self.c2(r1)), split, dim=1)
        d3, r3 = torch.split(self.act(self.c3(r2)), split, dim=1)
        d4 = self.c4(r3)
        out = torch.cat([d1, d2, d3, d4], dim=1)
        return self.c5(self.cca(out)) + x


class IMDN(nn.Module):
    """IMDN: (B, in_nc, H, W) in [0, 1] -> (B, out_nc, sH, sW) in [0, 1].

    Args:
        in_nc / out_nc: image channels. nf: feature channels (64). num_modules: IMDBs (6).
        upscale: scale factor s. distillation_rate: fraction of channels distilled per step (0.25).
    """

    def __init__(self, in_nc: int = 3, nf: int = 64, num_modules: int = 6, out_nc: int = 3, upscale: int = 4,
                 distillation_rate: float = 0.25):
        super().__init__()
        self.num_modules = num_modules
        self.fea_conv = _conv(in_nc, nf, 3)
        for k in range(1, num_modules + 1):
            self.add_module(f"IMDB{k}", IMDModule(nf, distillation_rate))
        self.c = nn.Sequential(nn.Conv2d(nf * num_modules, nf, 1), nn.LeakyReLU(0.05))
        self.LR_conv = _conv(nf, nf, 3)
        self.upsampler = nn.Sequential(_conv(nf, out_nc * upscale * upscale, 3), nn.PixelShuffle(upscale))

    def forward(self, x: Tensor) -> Tensor:
        fea = self.fea_conv(x)
        outs = []
        h = fea
        for k in range(1, self.num_modules + 1):
            h = getattr(self, f"IMDB{k}")(h)
            outs.append(h)
        out_b = self.c(torch.cat(outs, dim=1))
        return self.upsampler(self.LR_conv(out_b) + fea)


def build_imdn(scale: int = 4, *, in_nc: int = 3, out_nc: int = 3, nf: int = 64, num_modules: int = 6,
               distillation_rate: float = 0.25) -> IMDN:
    """IMDN (6 IMDBs, 64 channels): (B, 3, H, W) in [0, 1] -> (B, 3, sH, sW). See `IMDN` for the options."""
    return IMDN(in_nc=in_nc, nf=nf, num_modules=num_modules, out_nc=out_nc, upscale=scale,
                distillation_rate=distillation_rate)


IMDN_SPEC = ArchSpec(
    build=build_imdn, family="imdn", paper=PAPER, repo=REPO, license=LICENSE, scales=(2, 3, 4),
    in_channels=3, out_channels=3, color_space="rgb", size_multiple=1,
    receptive_field=None,  # CCA pools over the whole image
    # fp16 left out: CCA squares feature deviations and pools them over the whole image (the authors' code sums
    # the squares, which overflows fp16 on large images).
    safe_dtypes=("fp32", "bf16"),
)


def detect_imdn(state_dict: dict[str, Tensor]) -> tuple[str, int, dict] | None:
    """Recognise a Zheng222/IMDN ``IMDN`` checkpoint (not IMDN_AS / RTC / RTE, whose layouts differ).

    nf and in_nc from ``fea_conv``, the number of blocks from the ``IMDB<k>`` names, the distillation rate from
    ``c4``, the scale from ``upsampler.0`` (out_nc assumed = in_nc).
    """
    for k in ("fea_conv.weight", "IMDB1.c1.weight", "IMDB1.cca.conv_du.0.weight", "c.0.weight", "LR_conv.weight",
              "upsampler.0.weight"):
        if k not in state_dict:
            return None
    fea = state_dict["fea_conv.weight"]
    if fea.dim() != 4:
        return None
    nf, in_nc = int(fea.shape[0]), int(fea.shape[1])
    blocks = {int(k.split(".")[0][4:]) for k in state_dict if k.startswith("IMDB") and k.split(".")[0][4:].isdigit()}
    n = max(blocks)
    if blocks != set(range(1, n + 1)):
        return None
    d = int(state_dict["IMDB1.c4.weight"].shape[0])
    scale = pixel_shuffle_scale(int(state_dict["upsampler.0.weight"].shape[0]), in_nc)
    if scale is None:
        return None
    options = {"in_nc": in_nc, "out_nc": in_nc, "nf": nf, "num_modules": n, "distillation_rate": d / nf}
    return "imdn", scale, options


FAMILY = ArchFamily(
    name="imdn",
    specs={"imdn": IMDN_SPEC},
    detect=detect_imdn,
)


__all__ = ["FAMILY", "CCALayer", "IMDModule", "IMDN", "IMDN_SPEC", "build_imdn", "contrast_channels", "detect_imdn"]
