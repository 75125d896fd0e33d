"""SMFANet: Self-Modulation Feature Aggregation Network.

Paper: Mingjun Zheng, Long Sun, Jiangxin Dong, Jinshan Pan, "SMFANet: A Lightweight Self-Modulation Feature
Aggregation Network for Efficient Image Super-Resolution", ECCV 2024.
Repository: https://github.com/Zheng-MJ/SMFANet (Apache-2.0: ``LICENSE.txt``, the BasicSR licence the repository
is released under).

Why this design (issue 16: an efficient 2022-2024 network with <= 20K MACs per output pixel at x4 and a published
x4 Set5 PSNR >= 32.18 dB): the paper's Table 1 gives SMFANet x4 197K parameters, 11G FLOPs at 1280x720 output
(about 11.9K per output pixel) and Set5 32.25 dB / 0.8956 (Y channel; the DIV2K- and DF2K-trained weights alike).
srkit's count (convolutions only) is 11,251 MACs per output pixel, 10.37G at 720p; fvcore, the counter of the
repository's ``plt/main_flops.py``, gives 10.39G on the authors' module (the tables' figures are 5-7% above both, at
every scale, for both variants). The released x4 weights score Set5 32.24 dB through `srkit.evaluate` (MATLAB
bicubic LR made here), the outputs bit-identical to the authors' module on the same weights. SMFANet+ (the same
module, wider and deeper: 496K, 28G, Set5 32.51 dB with DF2K) is the repository's other release; at 28.4K MACs per
output pixel it is above that budget, listed as the larger variant.

A 3x3 conv lifts the image to ``dim`` features; ``n_blocks`` feature modulation blocks (FMB) follow; a global
residual from the lifted features; then a 3x3 conv to ``3 * s^2`` channels and a pixel shuffle. Each FMB is a
residual pair, each half fed an L2-normalised copy of its input (unit norm over the channels at every pixel, as
``F.normalize``: no parameters, eps 1e-12): ``x + smfa(n(x))``, then ``+ pcfn(n(.))``.

* SMFA (self-modulation feature aggregation): a 1x1 conv ``dim -> 2 dim``, split into two halves.
  - The second half X goes to the efficient self-attention approximation (EASA): X is max-pooled adaptively to
    ``(H // 8, W // 8)`` and depth-wise 3x3 conv'd (S); its per-channel spatial variance V (unbiased, over the whole
    image) is taken; ``gelu(1x1(alpha * S + belt * V))`` (``alpha``, ``belt``: learnt per-channel scales, stored
    with those names) is resized back to H x W (nearest) and multiplies X.
  - The first half goes to the local detail estimation (LDE): a depth-wise 3x3 conv with channel multiplier 2
    (``dim -> 2 dim``, groups ``dim``), 1x1 ``2 dim -> 2 dim``, GELU, 1x1 ``2 dim -> dim``.
  - The two branch outputs are summed and mixed by a 1x1 conv.
* PCFN (partial convolution feed-forward): 1x1 ``dim -> hidden`` (``hidden = int(dim * ffn_scale)``), GELU; the
  first ``hidden // 4`` channels alone go through a 3x3 conv and GELU (the rest pass unchanged); 1x1 back to
  ``dim``. (The authors' code writes that part in place at inference and splits/concatenates in training: the
  same function; here always the split form.)

State-dict keys as in Zheng-MJ/SMFANet ``basicsr/archs/SMFANet_arch.py`` (class ``SMFANet``; the released
``pretrain/SMFANet_{DIV2K,DF2K}_100w_x{2,3,4}SR.pth`` and ``SMFANet_plus_*`` hold them under ``params``):
``to_feat``, ``feats.<i>.smfa.{linear_0,linear_1,linear_2,dw_conv,alpha,belt}``, ``feats.<i>.smfa.lde.conv_0.{0,1}``,
``feats.<i>.smfa.lde.conv_1``, ``feats.<i>.pcfn.conv_{0,1,2}``, ``to_img.0``. Released configurations
(``options/test/*.yml``): SMFANet dim 36, 8 blocks, ffn_scale 2; SMFANet+ dim 48, 12 blocks, ffn_scale 2; both
x2/x3/x4. The LDE width (2 dim), the PCFN partial ratio (1/4) and the pooling factor (8) are fixed in the authors'
code, not options.

Value range: input and output RGB in [0, 1] (BasicSR), no mean shift.

Re-parameterisation: none. Every conv is used as trained (no parallel branches, no batch norm), so srkit's
`deploy` leaves the network as it is; ``alpha`` and ``belt`` scale two different tensors before one conv, so they
do not fold into it either.

Sizes: any H, W. The pooled grid is H // 8 x W // 8, so the authors' code needs H, W >= 8; here a pooled side is
clamped to at least 1, and a 1x1 input takes a variance of 0 (the unbiased estimate is undefined there);
identical results wherever the authors' code runs. Other sizes run as they are (the authors evaluate whole
images of any size; pooling bins then differ slightly), so ``size_multiple`` is 1. The spatial variance and the
pooled grid depend on the whole image, so the receptive field is declared None (tiles are blended, not stitched
exactly).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from srkit.archs._spec import ArchFamily, ArchSpec, pixel_shuffle_scale
from srkit.archs.safmn import _ffn_scale_for
from srkit.errors import ConfigError

PAPER = ("Zheng, Sun, Dong, Pan, 'SMFANet: A Lightweight Self-Modulation Feature Aggregation Network for Efficient "
         "Image Super-Resolution', ECCV 2024")
REPO = "https://github.com/Zheng-MJ/SMFANet"
LICENSE = "Apache-2.0"

DOWN = 8  # EASA pools to H // 8 x W // 8 (fixed in the authors' SMFA)
LDE_GROWTH = 2  # LDE hidden width = 2 * dim (fixed)
PARTIAL = 4  # PCFN convolves the first hidden // 4 channels (the authors' p_rate 0.25)
PLUS = {"dim": 48, "n_blocks": 12, "ffn_scale": 2.0}  # SMFANet+


def spatial_variance(x: Tensor) -> Tensor:
    """Unbiased variance of each channel over H x W: (B, C, H, W) -> (B, C, 1, 1); 0 for a single pixel.

    Taken in float32 for half-precision inputs (bit-identical to the input dtype for float32), then cast back.
    """
    h, w = x.shape[-2:]
    dtype = x.dtype
    if dtype in (torch.float16, torch.bfloat16):
        x = x.float()
    return torch.var(x, dim=(-2, -1), keepdim=True, correction=1 if h * w > 1 else 0).to(dtype)


class LDE(nn.Module):
    """Local detail estimation: (B, dim, H, W) -> same.

    Depth-wise 3x3 conv ``dim -> 2 dim`` (channel multiplier 2), 1x1 ``2 dim -> 2 dim``, GELU, 1x1 back to ``dim``
    (``conv_0.0``, ``conv_0.1``, ``conv_1``: the authors' key names).
    """

    def __init__(self, dim: int, growth: int = LDE_GROWTH):
        super().__init__()
        hidden = dim * growth
        self.conv_0 = nn.Sequential(nn.Conv2d(dim, hidden, 3, padding=1, groups=dim), nn.Conv2d(hidden, hidden, 1))
        self.act = nn.GELU()
        self.conv_1 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        return self.conv_1(self.act(self.conv_0(x)))


class SMFA(nn.Module):
    """Self-modulation feature aggregation: (B, dim, H, W) -> (B, dim, H, W).

    ``linear_2(lde(y) + x * up(gelu(linear_1(alpha * dw_conv(pool(x)) + belt * var(x)))))`` with ``(y, x)`` the
    two halves of ``linear_0(f)``; pool: adaptive max-pool to (H // 8, W // 8), up: nearest resize to H x W.
    """

    def __init__(self, dim: int):
        super().__init__()
        self.linear_0 = nn.Conv2d(dim, 2 * dim, 1)
        self.linear_1 = nn.Conv2d(dim, dim, 1)
        self.linear_2 = nn.Conv2d(dim, dim, 1)
        self.lde = LDE(dim)
        self.dw_conv = nn.Conv2d(dim, dim, 3, padding=1, groups=dim)
        self.gelu = nn.GELU()
        self.alpha = nn.Parameter(torch.ones(1, dim, 1, 1))
        self.belt = nn.Parameter(torch.zeros(1, dim, 1, 1))  # the authors' name for the variance's scale

    def forward(self, f: Tensor) -> Tensor:
        h, w = f.shape[-2:]
        y, x = self.linear_0(f).chunk(2, dim=1)
        pooled = self.dw_conv(F.adaptive_max_pool2d(x, (max(1, h // DOWN), max(1, w // DOWN))))
        gate = self.gelu(self.linear_1(pooled * self.alpha + spatial_variance(x) * self.belt))
        modulated = x * F.interpolate(gate, size=(h, w), mode="nearest")
        return self.linear_2(modulated + self.lde(y))


class PCFN(nn.Module):
    """Partial convolution feed-forward network: (B, dim, H, W) -> same.

    1x1 ``dim -> hidden`` and GELU; a 3x3 conv and GELU on the first ``hidden // 4`` channels only; 1x1 back to
    ``dim``.
    """

    def __init__(self, dim: int, ffn_scale: float = 2.0):
        super().__init__()
        hidden = int(dim * ffn_scale)
        part = hidden // PARTIAL
        if part < 1:
            raise ConfigError(f"ffn_scale {ffn_scale} leaves no channels for PCFN's partial conv at dim {dim} "
                              f"(hidden width {hidden}, needs >= {PARTIAL})")
        self.hidden, self.part = hidden, part
        self.conv_0 = nn.Conv2d(dim, hidden, 1)
        self.conv_1 = nn.Conv2d(part, part, 3, padding=1)
        self.act = nn.GELU()
        self.conv_2 = nn.Conv2d(hidden, dim, 1)

    def forward(self, x: Tensor) -> Tensor:
        x = self.act(self.conv_0(x))
        head, rest = x.split([self.part, self.hidden - self.part], dim=1)
        return self.conv_2(torch.cat([self.act(self.conv_1(head)), rest], dim=1))


class FMB(nn.Module):
    """Feature modulation block: ``x + smfa(n(x))``, then ``+ pcfn(n(.))``, n = L2 normalisation over channels."""

    def __init__(self, dim: int, ffn_scale: float = 2.0):
        super().__init__()
        self.smfa = SMFA(dim)
        self.pcfn = PCFN(dim, ffn_scale)

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.smfa(F.normalize(x, dim=1))
        return x + self.pcfn(F.normalize(x, dim=1))


class SMFANet(nn.Module):
    """SMFANet: (B, 3, H, W) in [0, 1] -> (B, 3, sH, sW) in [0, 1].

    Args:
        dim: feature width (36; 48 for SMFANet+).
        n_blocks: feature modulation blocks (8; 12 for SMFANet+).
        ffn_scale: PCFN hidden width = ``int(dim * ffn_scale)`` (2.0).
        upscaling_factor: scale factor s (pixel-shuffle upsampler).
    """

    def __init__(self, dim: int = 36, n_blocks: int = 8, ffn_scale: float = 2.0, upscaling_factor: int = 4):
        super().__init__()
        self.to_feat = nn.Conv2d(3, dim, 3, padding=1)
        self.feats = nn.Sequential(*(FMB(dim, ffn_scale) for _ in range(n_blocks)))
        self.to_img = nn.Sequential(nn.Conv2d(dim, 3 * upscaling_factor**2, 3, padding=1),
                                    nn.PixelShuffle(upscaling_factor))

    def forward(self, x: Tensor) -> Tensor:
        shallow = self.to_feat(x)
        return self.to_img(self.feats(shallow) + shallow)


def _build(arch: str, scale: int, dim: int, n_blocks: int, ffn_scale: float) -> SMFANet:
    if not isinstance(dim, int) or isinstance(dim, bool) or dim < 1:
        raise ConfigError(f"{arch}: dim must be a positive integer, got {dim!r}")
    if not isinstance(n_blocks, int) or isinstance(n_blocks, bool) or n_blocks < 1:
        raise ConfigError(f"{arch}: n_blocks must be a positive integer, got {n_blocks!r}")
    try:
        ffn_scale = float(ffn_scale)
    except (TypeError, ValueError):
        raise ConfigError(f"{arch}: ffn_scale must be a number, got {ffn_scale!r}") from None
    return SMFANet(dim=dim, n_blocks=n_blocks, ffn_scale=ffn_scale, upscaling_factor=scale)


def build_smfanet(scale: int = 4, *, dim: int = 36, n_blocks: int = 8, ffn_scale: float = 2.0) -> SMFANet:
    """SMFANet (dim 36, 8 FMBs, ffn_scale 2): (B, 3, H, W) -> (B, 3, sH, sW)."""
    return _build("smfanet", scale, dim, n_blocks, ffn_scale)


def build_smfanet_plus(scale: int = 4, *, dim: int = 48, n_blocks: int = 12, ffn_scale: float = 2.0) -> SMFANet:
    """SMFANet+ (dim 48, 12 FMBs, ffn_scale 2): the same network, wider and deeper."""
    return _build("smfanet-plus", scale, dim, n_blocks, ffn_scale)


def _spec(build) -> ArchSpec:
    return ArchSpec(
        build=build, family="smfanet", paper=PAPER, repo=REPO, license=LICENSE, scales=(2, 3, 4),
        in_channels=3, out_channels=3, color_space="rgb", size_multiple=1,
        # A per-channel variance over the whole image and pooling to an H // 8 x W // 8 grid: outputs depend on
        # the image extent.
        receptive_field=None,
        # All three: the L2-normalised block inputs keep activations small. On the 12 released checkpoints fp16
        # stays within 0.004 of fp32 (bf16 within 0.03) on a 96x96 Set14 crop; Set5 x4 (SMFANet, DF2K): fp32
        # 32.243 dB, fp16 32.242, bf16 32.229. The spatial variance is taken in float32 for half inputs.
        safe_dtypes=("fp32", "bf16", "fp16"),
    )


SMFANET_SPEC = _spec(build_smfanet)
SMFANET_PLUS_SPEC = _spec(build_smfanet_plus)

_TOP = {"to_feat", "feats", "to_img"}


def _shape(state_dict: dict[str, Tensor], key: str) -> tuple[int, ...]:
    return tuple(int(n) for n in state_dict[key].shape)


def detect_smfanet(state_dict: dict[str, Tensor]) -> tuple[str, int, dict] | None:
    """Recognise a Zheng-MJ/SMFANet ``SMFANet`` checkpoint (SMFANet, SMFANet+, any width/depth).

    ``dim`` from ``to_feat``, ``n_blocks`` from the ``feats.<i>`` indices, ``ffn_scale`` from the first PCFN's
    hidden width, the scale from ``to_img.0`` (3 * s^2 outputs; the only upsampler SMFANet has). The fixed widths
    (LDE 2 dim, PCFN partial conv hidden // 4, the 2 dim input projection) are checked. Returns "smfanet-plus" for
    dim 48, 12 blocks, ffn_scale 2, else "smfanet" (the options are complete either way); None for other layouts
    (SAFMN's, whose blocks hold ``norm1`` / ``safm``), input channels other than 3 and scales outside 2/3/4.
    """
    for k in ("to_feat.weight", "to_img.0.weight", "feats.0.smfa.linear_0.weight", "feats.0.smfa.alpha",
              "feats.0.smfa.belt", "feats.0.smfa.lde.conv_0.0.weight", "feats.0.pcfn.conv_0.weight",
              "feats.0.pcfn.conv_1.weight"):
        if k not in state_dict:
            return None
    if any(k.split(".", 1)[0] not in _TOP for k in state_dict):
        return None
    first = _shape(state_dict, "to_feat.weight")
    if len(first) != 4 or first[1] != 3:
        return None
    dim = first[0]
    blocks = {int(k.split(".")[1]) for k in state_dict if k.startswith("feats.") and k.split(".")[1].isdigit()}
    n_blocks = max(blocks) + 1
    if blocks != set(range(n_blocks)):
        return None
    if (_shape(state_dict, "feats.0.smfa.linear_0.weight")[:2] != (2 * dim, dim)
            or _shape(state_dict, "feats.0.smfa.lde.conv_0.0.weight")[:2] != (LDE_GROWTH * dim, 1)):
        return None
    hidden = _shape(state_dict, "feats.0.pcfn.conv_0.weight")[0]
    part = hidden // PARTIAL
    if _shape(state_dict, "feats.0.pcfn.conv_1.weight")[:2] != (part, part):
        return None
    ffn_scale = _ffn_scale_for(dim, hidden)
    if ffn_scale is None:
        return None
    scale = pixel_shuffle_scale(_shape(state_dict, "to_img.0.weight")[0], 3)
    if scale is None or scale not in SMFANET_SPEC.scales:
        return None
    options = {"dim": dim, "n_blocks": n_blocks, "ffn_scale": ffn_scale}
    return ("smfanet-plus" if options == PLUS else "smfanet"), scale, options


FAMILY = ArchFamily(
    name="smfanet",
    specs={"smfanet": SMFANET_SPEC, "smfanet-plus": SMFANET_PLUS_SPEC},
    detect=detect_smfanet,
)


__all__ = ["FAMILY", "FMB", "LDE", "PCFN", "SMFA", "SMFANET_PLUS_SPEC", "SMFANET_SPEC", "SMFANet", "build_smfanet",
           "build_smfanet_plus", "detect_smfanet", "spatial_variance"]
