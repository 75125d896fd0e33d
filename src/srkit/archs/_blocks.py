"""Re-parameterisable building blocks, and the pure functions that fold them into single convolutions.

Structural re-parameterisation trains a block as a sum of parallel *linear* branches (a 3x3 conv, a 1x1 conv
followed by a 3x3 conv, fixed edge filters with learnable gains, an identity, BatchNorm after a conv, ...) and,
for inference, folds every branch into one 3x3 convolution with the same output. The folding is exact algebra:
a composition of linear maps is linear, and a sum of 3x3 convolutions is a 3x3 convolution.

Layout (kornia pattern): the folding rules are pure tensor functions (`fuse_conv_bn_tensors`,
`fold_1x1_into_kxk`, `fold_kxk_into_1x1`, `depthwise_to_dense`, `pad_kernel`, ...) that take and return
weight/bias tensors and are differentiable; the modules (`SeqConv3x3`, `SharpeningConv`, `RepVGGBlock`) are thin
wrappers that hold parameters, compute the training form, and expose ``fuse() -> nn.Conv2d`` /
``switch_to_deploy()`` which `srkit.deploy` (srkit.deployment.deploy) calls.

References:
    Ding, Zhang, Ma, Han, Ding, Sun, "RepVGG: Making VGG-style ConvNets Great Again", CVPR 2021,
    github.com/DingXiaoH/RepVGG (MIT) -- conv+BN folding, 1x1 and identity branches.
    Zhang, Zeng, Zhang, "Edge-oriented Convolution Block for Real-time Super Resolution on Mobile Devices",
    ACM MM 2021, github.com/xindongzhang/ECBSR (Apache-2.0) -- 1x1 -> 3x3 and 1x1 -> fixed edge mask branches
    (`SeqConv3x3`, whose parameter names k0/b0/k1/b1/scale/bias/mask follow that repository).
"""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Sequence
from typing import TypeVar

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = [
    "RepVGGBlock",
    "SeqConv3x3",
    "SharpeningConv",
    "conv_from_tensors",
    "conv_weight_bias",
    "depthwise_to_dense",
    "fold_1x1_into_kxk",
    "fold_1x1_into_3x3",
    "fold_kxk_into_1x1",
    "fuse_conv_bn",
    "fuse_conv_bn_tensors",
    "identity_kernel",
    "laplacian_kernel",
    "module_as",
    "pad_1x1_to_3x3",
    "pad_kernel",
    "pad_with_bias",
    "sobel_x_kernel",
    "sobel_y_kernel",
    "zero_dc",
]


# ---------------------------------------------------------------------------------------------------------------
# Pure tensor functions
# ---------------------------------------------------------------------------------------------------------------


def sobel_x_kernel(dtype: torch.dtype | None = None, device: torch.device | None = None) -> Tensor:
    """Horizontal-gradient Sobel mask, (3, 3): [[1, 0, -1], [2, 0, -2], [1, 0, -1]] (orientation as ECBSR)."""
    return torch.tensor([[1.0, 0.0, -1.0], [2.0, 0.0, -2.0], [1.0, 0.0, -1.0]], dtype=dtype, device=device)


def sobel_y_kernel(dtype: torch.dtype | None = None, device: torch.device | None = None) -> Tensor:
    """Vertical-gradient Sobel mask, (3, 3): [[1, 2, 1], [0, 0, 0], [-1, -2, -1]] (orientation as ECBSR)."""
    return torch.tensor([[1.0, 2.0, 1.0], [0.0, 0.0, 0.0], [-1.0, -2.0, -1.0]], dtype=dtype, device=device)


def laplacian_kernel(dtype: torch.dtype | None = None, device: torch.device | None = None) -> Tensor:
    """4-neighbour Laplacian mask, (3, 3): [[0, 1, 0], [1, -4, 1], [0, 1, 0]]."""
    return torch.tensor([[0.0, 1.0, 0.0], [1.0, -4.0, 1.0], [0.0, 1.0, 0.0]], dtype=dtype, device=device)


def zero_dc(kernel: Tensor) -> Tensor:
    """Remove the DC response of kernels: k - mean(k) over the last two (spatial) dims.

    A zero-sum kernel gives 0 on flat regions, i.e. it is a high-pass filter. Shape (..., kh, kw) -> same.
    """
    return kernel - kernel.mean(dim=(-2, -1), keepdim=True)


def pad_kernel(weight: Tensor, size: int) -> Tensor:
    """Zero-pad (O, I, k, k) kernels symmetrically to (O, I, size, size); `size - k` must be even and >= 0.

    A centred kxk kernel with padding k//2 equals the padded kernel with padding size//2.
    """
    k = weight.shape[-1]
    if weight.shape[-2] != k or size < k or (size - k) % 2:
        raise ValueError(f"cannot pad a {tuple(weight.shape[-2:])} kernel to {size}x{size}")
    p = (size - k) // 2
    return F.pad(weight, [p, p, p, p])


def pad_1x1_to_3x3(weight: Tensor) -> Tensor:
    """(O, I, 1, 1) -> (O, I, 3, 3), the 1x1 tap in the centre."""
    return pad_kernel(weight, 3)


def identity_kernel(channels: int, size: int = 3, dtype: torch.dtype | None = None,
                    device: torch.device | None = None) -> Tensor:
    """(C, C, size, size) kernel of the identity map (1 at the centre of the diagonal), for odd `size`."""
    k = torch.zeros(channels, channels, size, size, dtype=dtype, device=device)
    idx = torch.arange(channels, device=device)
    k[idx, idx, size // 2, size // 2] = 1.0
    return k


def depthwise_to_dense(weight: Tensor) -> Tensor:
    """Depthwise kernels (C, 1, k, k) -> the equivalent dense (C, C, k, k) kernels (zero off the diagonal).

    Differentiable (a product with the identity matrix), so the fused kernel keeps gradients.
    """
    c = weight.shape[0]
    eye = torch.eye(c, dtype=weight.dtype, device=weight.device)
    return eye[:, :, None, None] * weight  # (C, C, 1, 1) * (C, 1, k, k) -> (C, C, k, k)


def fold_1x1_into_kxk(w1: Tensor, b1: Tensor | None, wk: Tensor, bk: Tensor | None) -> tuple[Tensor, Tensor]:
    """Fold a 1x1 conv followed by a kxk conv into one kxk conv.

    Exact when the 1x1 output is padded with its own bias before the kxk conv (ECBSR) -- equivalently, when the
    *input* is zero-padded before the 1x1 conv (SPAN's Conv3XC) -- and the fused conv zero-pads the input.

    Args:
        w1: (M, I, 1, 1) weight of the 1x1 conv; b1: (M,) bias or None.
        wk: (O, M, k, k) weight of the kxk conv (groups=1); bk: (O,) bias or None.

    Returns:
        (O, I, k, k) weight and (O,) bias.
    """
    w = torch.einsum("omhw,mi->oihw", wk, w1[:, :, 0, 0])
    b = wk.new_zeros(wk.shape[0]) if bk is None else bk
    if b1 is not None:
        b = b + torch.einsum("omhw,m->o", wk, b1)
    return w, b


def fold_1x1_into_3x3(w1: Tensor, b1: Tensor | None, w3: Tensor, b3: Tensor | None) -> tuple[Tensor, Tensor]:
    """`fold_1x1_into_kxk` for a 3x3 conv: (M, I, 1, 1), (O, M, 3, 3) -> (O, I, 3, 3), (O,)."""
    return fold_1x1_into_kxk(w1, b1, w3, b3)


def fold_kxk_into_1x1(wk: Tensor, bk: Tensor | None, w1: Tensor, b1: Tensor | None) -> tuple[Tensor, Tensor]:
    """Fold a kxk conv followed by a 1x1 conv into one kxk conv (always exact: the 1x1 needs no padding).

    Args:
        wk: (M, I, k, k); bk: (M,) or None. w1: (O, M, 1, 1); b1: (O,) or None.

    Returns:
        (O, I, k, k) weight and (O,) bias.
    """
    m = w1[:, :, 0, 0]
    w = torch.einsum("om,mihw->oihw", m, wk)
    b = wk.new_zeros(w1.shape[0]) if b1 is None else b1
    if bk is not None:
        b = b + m @ bk
    return w, b


def fuse_conv_bn_tensors(weight: Tensor, bias: Tensor | None, running_mean: Tensor, running_var: Tensor,
                         bn_weight: Tensor | None, bn_bias: Tensor | None, eps: float) -> tuple[Tensor, Tensor]:
    """Fold an inference-mode BatchNorm into the conv before it.

    BN(conv(x)) = gamma * (W x + b - mean) / sqrt(var + eps) + beta, so W' = W * t and b' = beta + (b - mean) * t
    with t = gamma / sqrt(var + eps), per output channel. Works for any groups/dilation/stride.

    Args:
        weight: (O, I/groups, kh, kw); bias: (O,) or None. running_mean/var: (O,).
        bn_weight / bn_bias: (O,) gamma and beta, or None for a non-affine BN.

    Returns:
        (O, I/groups, kh, kw) weight and (O,) bias.
    """
    t = torch.rsqrt(running_var + eps)
    if bn_weight is not None:
        t = bn_weight * t
    b = -running_mean if bias is None else bias - running_mean
    b = b * t
    if bn_bias is not None:
        b = b + bn_bias
    return weight * t.reshape(-1, *([1] * (weight.dim() - 1))), b


_M = TypeVar("_M", bound=nn.Module)


def module_as(module: object, kind: type[_M]) -> _M:
    """`module`, checked to be a `kind` (e.g. a layer taken out of an `nn.Sequential`, which types it `Module`)."""
    if not isinstance(module, kind):
        raise TypeError(f"expected {kind.__name__}, got {type(module).__name__}")
    return module


def conv_weight_bias(conv: nn.Conv2d) -> tuple[Tensor, Tensor]:
    """`conv`'s weight and bias (zeros when it has none)."""
    bias = conv.bias if conv.bias is not None else conv.weight.new_zeros(conv.out_channels)
    return conv.weight, bias


def _pair(v: tuple[int, ...]) -> tuple[int, int]:
    """A conv geometry tuple (`nn.Conv2d` stores 2 entries, its stubs say any number) as a pair."""
    a, b = v
    return a, b


def conv_from_tensors(weight: Tensor, bias: Tensor | None, like: nn.Conv2d | None = None) -> nn.Conv2d:
    """A new `nn.Conv2d` holding (detached copies of) `weight` / `bias`.

    Geometry (stride, dilation, groups, padding mode) comes from `like` when given; otherwise stride 1, groups 1
    and "same" zero padding k//2 for odd square kernels.
    """
    out_ch, in_per_group, kh, kw = weight.shape
    groups = like.groups if like is not None else 1
    conv = nn.Conv2d(
        in_per_group * groups,
        out_ch,
        (kh, kw),
        stride=_pair(like.stride) if like is not None else 1,
        padding=(like.padding if isinstance(like.padding, str) else _pair(like.padding)) if like is not None
        else (kh // 2, kw // 2),
        dilation=_pair(like.dilation) if like is not None else 1,
        groups=groups,
        bias=bias is not None,
        padding_mode=like.padding_mode if like is not None else "zeros",
        device=weight.device,
        dtype=weight.dtype,
    )
    with torch.no_grad():
        conv.weight.copy_(weight)
        if bias is not None and conv.bias is not None:  # conv has a bias exactly when `bias` is given
            conv.bias.copy_(bias)
    return conv


def fuse_conv_bn(conv: nn.Conv2d, bn: nn.BatchNorm2d) -> nn.Conv2d:
    """A new conv equal to ``bn(conv(x))`` with `bn` in inference mode (running statistics).

    Args:
        conv: any `nn.Conv2d` (bias optional). bn: `nn.BatchNorm2d` over conv's output channels, with running
            statistics (``track_running_stats=True``).
    """
    if bn.running_mean is None or bn.running_var is None:
        raise ValueError("cannot fold a BatchNorm without running statistics")
    with torch.no_grad():
        w, b = fuse_conv_bn_tensors(conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.weight, bn.bias,
                                    bn.eps)
    return conv_from_tensors(w, b, like=conv)


def pad_with_bias(y: Tensor, bias: Tensor, pad: int = 1) -> Tensor:
    """Pad (B, C, H, W) by `pad` pixels on every side with each channel's bias value (not zeros).

    The output of a 1x1 conv on a zero-padded input has exactly this border, which is what makes the 1x1 -> 3x3
    sequence foldable into one zero-padded 3x3 conv (`fold_1x1_into_kxk`). Interior values are unchanged.
    """
    out = F.pad(y, [pad] * 4)
    h, w = y.shape[-2:]
    border = 1.0 - F.pad(y.new_ones(1, 1, h, w), [pad] * 4)  # 1 on the border, 0 inside
    return out + border * bias.reshape(1, -1, 1, 1)


def _conv_weight(out_ch: int, in_ch: int, k: int) -> tuple[nn.Parameter, nn.Parameter]:
    """Weight (out, in, k, k) and bias (out,) initialised as `nn.Conv2d` does (Kaiming-uniform, a=sqrt(5))."""
    w = torch.empty(out_ch, in_ch, k, k)
    nn.init.kaiming_uniform_(w, a=math.sqrt(5))
    bound = 1.0 / math.sqrt(in_ch * k * k)
    b = torch.empty(out_ch).uniform_(-bound, bound)
    return nn.Parameter(w), nn.Parameter(b)


# ---------------------------------------------------------------------------------------------------------------
# Modules
# ---------------------------------------------------------------------------------------------------------------

_MASKS = {"conv1x1-sobelx": sobel_x_kernel, "conv1x1-sobely": sobel_y_kernel, "conv1x1-laplacian": laplacian_kernel}
SEQ_TYPES = ("conv1x1-conv3x3", "conv1x1-highpass", *_MASKS)


class SeqConv3x3(nn.Module):
    """A 1x1 conv followed by a 3x3 operator; foldable into one 3x3 conv (`rep_params`).

    Types (ECBSR's names, plus one):
        ``conv1x1-conv3x3``: 1x1 expand to ``int(out * depth_multiplier)`` channels -> dense 3x3.
            Parameters ``k0, b0, k1, b1``.
        ``conv1x1-sobelx`` / ``conv1x1-sobely`` / ``conv1x1-laplacian``: 1x1 -> depthwise fixed edge mask times a
            learnable per-channel ``scale`` (C, 1, 1, 1), plus ``bias`` (C,). Parameters ``k0, b0, scale, bias``;
            the mask is the persistent buffer ``mask`` (C, 1, 3, 3) (a frozen parameter in ECBSR: same key).
        ``conv1x1-highpass``: 1x1 -> learnable depthwise 3x3 kernel ``k1`` (C, 1, 3, 3) constrained to zero DC
            (``k1 - mean(k1)``), plus ``bias``. Parameters ``k0, b0, k1, bias``.

    The 1x1 output is padded with its bias ``b0`` before the 3x3 (not with zeros), as in ECBSR, so the fold is
    exact at the image border too.

    Shapes: (B, in_planes, H, W) -> (B, out_planes, H, W); any value range (linear).
    """

    mask: Tensor  # buffer of the edge-mask types

    def __init__(self, seq_type: str, in_planes: int, out_planes: int, depth_multiplier: float = 2.0):
        super().__init__()
        if seq_type not in SEQ_TYPES:
            raise ValueError(f"unknown seq_type {seq_type!r}; one of {SEQ_TYPES}")
        self.seq_type = seq_type
        self.in_planes = in_planes
        self.out_planes = out_planes
        if seq_type == "conv1x1-conv3x3":
            self.mid_planes = int(out_planes * depth_multiplier)
            self.k0, self.b0 = _conv_weight(self.mid_planes, in_planes, 1)
            self.k1, self.b1 = _conv_weight(out_planes, self.mid_planes, 3)
            return
        self.mid_planes = out_planes
        self.k0, self.b0 = _conv_weight(out_planes, in_planes, 1)
        if seq_type == "conv1x1-highpass":
            self.k1 = nn.Parameter(torch.randn(out_planes, 1, 3, 3) * 1e-3)
        else:
            # Small random gains, as ECBSR initialises them: the edge branches start near zero.
            self.scale = nn.Parameter(torch.randn(out_planes, 1, 1, 1) * 1e-3)
            mask = _MASKS[seq_type]().reshape(1, 1, 3, 3).repeat(out_planes, 1, 1, 1)
            self.register_buffer("mask", mask)
        self.bias = nn.Parameter(torch.randn(out_planes) * 1e-3)

    def depthwise_kernel(self) -> Tensor:
        """The (C, 1, 3, 3) depthwise kernel of the mask / high-pass types."""
        if self.seq_type == "conv1x1-highpass":
            return zero_dc(self.k1)
        return self.scale * self.mask

    def forward(self, x: Tensor) -> Tensor:
        y0 = pad_with_bias(F.conv2d(x, self.k0, self.b0), self.b0)
        if self.seq_type == "conv1x1-conv3x3":
            return F.conv2d(y0, self.k1, self.b1)
        return F.conv2d(y0, self.depthwise_kernel(), self.bias, groups=self.out_planes)

    def rep_params(self) -> tuple[Tensor, Tensor]:
        """The equivalent zero-padded 3x3 conv: weight (out, in, 3, 3) and bias (out,); differentiable."""
        if self.seq_type == "conv1x1-conv3x3":
            return fold_1x1_into_3x3(self.k0, self.b0, self.k1, self.b1)
        return fold_1x1_into_3x3(self.k0, self.b0, depthwise_to_dense(self.depthwise_kernel()), self.bias)


_BRANCH_TYPES = {
    "laplacian": "conv1x1-laplacian",
    "sobel_x": "conv1x1-sobelx",
    "sobel_y": "conv1x1-sobely",
    "highpass": "conv1x1-highpass",
    "expand": "conv1x1-conv3x3",
}
BRANCHES = (*_BRANCH_TYPES, "identity")


class SharpeningConv(nn.Module):
    """A 3x3 conv with sharpening branches beside it; folds into one 3x3 conv for inference.

    Training form: ``conv3x3(x) + sum(branch(x))`` where each branch is one of
        ``laplacian`` / ``sobel_x`` / ``sobel_y``: 1x1 conv -> fixed depthwise edge mask with learnable
            per-channel scale and bias (ECB-style);
        ``highpass``: 1x1 conv -> learnable depthwise 3x3 kernel constrained to zero DC (k - mean(k));
        ``expand``: 1x1 conv to ``depth_multiplier * out_ch`` channels -> dense 3x3;
        ``identity``: x itself (only when in_ch == out_ch).
    ``fuse()`` returns one `nn.Conv2d` (3x3, padding 1) with exactly the same output; ``switch_to_deploy()``
    replaces the internals with it in place (the module then holds only ``fused``).

    Shapes: (B, in_ch, H, W) -> (B, out_ch, H, W); any value range (linear).
    """

    def __init__(self, in_ch: int, out_ch: int,
                 branches: Sequence[str] = ("laplacian", "sobel_x", "sobel_y", "highpass"),
                 depth_multiplier: float = 2.0, bias: bool = True):
        super().__init__()
        unknown = [b for b in branches if b not in BRANCHES]
        if unknown:
            raise ValueError(f"unknown branches {unknown}; choose from {BRANCHES}")
        if "identity" in branches and in_ch != out_ch:
            raise ValueError("an identity branch needs in_ch == out_ch")
        self.in_ch = in_ch
        self.out_ch = out_ch
        self.with_identity = "identity" in branches
        self.conv3x3 = nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=bias)
        self.branches = nn.ModuleDict(
            {b: SeqConv3x3(_BRANCH_TYPES[b], in_ch, out_ch, depth_multiplier) for b in branches if b != "identity"}
        )
        self.fused: nn.Conv2d | None = None

    def forward(self, x: Tensor) -> Tensor:
        if self.fused is not None:
            return self.fused(x)
        y = self.conv3x3(x)
        for branch in self.branches.values():
            y = y + branch(x)
        if self.with_identity:
            y = y + x
        return y

    def rep_params(self) -> tuple[Tensor, Tensor]:
        """Weight (out_ch, in_ch, 3, 3) and bias (out_ch,) of the equivalent conv; differentiable."""
        if self.fused is not None:
            return conv_weight_bias(self.fused)
        w, b = conv_weight_bias(self.conv3x3)
        for branch in self.branches.values():
            kw, kb = module_as(branch, SeqConv3x3).rep_params()
            w, b = w + kw, b + kb
        if self.with_identity:
            w = w + identity_kernel(self.out_ch, 3, dtype=w.dtype, device=w.device)
        return w, b

    def fuse(self) -> nn.Conv2d:
        """One 3x3 `nn.Conv2d` (padding 1) equal to this block; the block itself is unchanged."""
        with torch.no_grad():
            w, b = self.rep_params()
        return conv_from_tensors(w, b)

    def switch_to_deploy(self) -> None:
        """Replace the branches by the fused conv, in place (idempotent)."""
        if self.fused is not None:
            return
        fused = self.fuse()
        del self.conv3x3
        del self.branches
        self.fused = fused


class RepVGGBlock(nn.Module):
    """RepVGG's linear block: 3x3 conv+BN, 1x1 conv+BN and (when in == out) a BN identity branch, summed.

    No activation (add one after it). ``fuse()`` / ``switch_to_deploy()`` fold it into one 3x3 conv with bias
    (BN in inference mode). Keys follow DingXiaoH/RepVGG: ``rbr_dense.conv``, ``rbr_dense.bn``, ``rbr_1x1.*``,
    ``rbr_identity``; after deployment ``rbr_reparam``.

    Shapes: (B, in_ch, H, W) -> (B, out_ch, H, W).
    """

    # The training branches; None after switch_to_deploy().
    rbr_dense: nn.Sequential | None
    rbr_1x1: nn.Sequential | None
    rbr_identity: nn.BatchNorm2d | None

    def __init__(self, in_ch: int, out_ch: int):
        super().__init__()
        self.in_ch = in_ch
        self.out_ch = out_ch
        self.rbr_dense = nn.Sequential(OrderedDict(conv=nn.Conv2d(in_ch, out_ch, 3, padding=1, bias=False),
                                                   bn=nn.BatchNorm2d(out_ch)))
        self.rbr_1x1 = nn.Sequential(OrderedDict(conv=nn.Conv2d(in_ch, out_ch, 1, bias=False),
                                                 bn=nn.BatchNorm2d(out_ch)))
        self.rbr_identity = nn.BatchNorm2d(in_ch) if in_ch == out_ch else None
        self.rbr_reparam: nn.Conv2d | None = None

    def _training_branches(self) -> tuple[nn.Sequential, nn.Sequential]:
        if self.rbr_dense is None or self.rbr_1x1 is None:
            raise RuntimeError("RepVGGBlock: switch_to_deploy() removed the training branches")
        return self.rbr_dense, self.rbr_1x1

    def forward(self, x: Tensor) -> Tensor:
        if self.rbr_reparam is not None:
            return self.rbr_reparam(x)
        dense, one = self._training_branches()
        y = dense(x) + one(x)
        if self.rbr_identity is not None:
            y = y + self.rbr_identity(x)
        return y

    def rep_params(self) -> tuple[Tensor, Tensor]:
        """Weight (out, in, 3, 3) and bias (out,) of the equivalent conv (BN running statistics)."""
        if self.rbr_reparam is not None:
            return conv_weight_bias(self.rbr_reparam)

        def branch(conv_w: Tensor, bn: nn.BatchNorm2d) -> tuple[Tensor, Tensor]:
            if bn.running_mean is None or bn.running_var is None:
                raise ValueError("cannot fold a BatchNorm without running statistics")
            return fuse_conv_bn_tensors(conv_w, None, bn.running_mean, bn.running_var, bn.weight, bn.bias, bn.eps)

        dense, one = self._training_branches()
        w, b = branch(module_as(dense.conv, nn.Conv2d).weight, module_as(dense.bn, nn.BatchNorm2d))
        w1, b1 = branch(pad_1x1_to_3x3(module_as(one.conv, nn.Conv2d).weight), module_as(one.bn, nn.BatchNorm2d))
        w, b = w + w1, b + b1
        if self.rbr_identity is not None:
            wi, bi = branch(identity_kernel(self.in_ch, 3, dtype=w.dtype, device=w.device), self.rbr_identity)
            w, b = w + wi, b + bi
        return w, b

    def fuse(self) -> nn.Conv2d:
        """One 3x3 `nn.Conv2d` (padding 1) equal to this block in eval mode; the block itself is unchanged."""
        if self.rbr_reparam is not None:
            return self.rbr_reparam
        with torch.no_grad():
            w, b = self.rep_params()
        return conv_from_tensors(w, b)

    def switch_to_deploy(self) -> None:
        """Replace the branches by the fused conv, in place (idempotent)."""
        if self.rbr_reparam is not None:
            return
        fused = self.fuse()
        del self.rbr_dense
        del self.rbr_1x1
        del self.rbr_identity
        self.rbr_dense = self.rbr_1x1 = self.rbr_identity = None
        self.rbr_reparam = fused
