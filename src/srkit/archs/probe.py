"""Measure properties of a network empirically: receptive field by gradient probing, MACs by hooks."""

from __future__ import annotations

import torch
from torch import nn


def measure_receptive_field(module: nn.Module, scale: int, in_channels: int = 3, *, limit: int = 96,
                            multiple: int = 1) -> int | None:
    """LR pixels of context, on each side, that the centre output pixel depends on.

    Backpropagates from one output pixel in the middle of a (2*limit+1)-ish input and finds how far from the
    matching LR pixel the non-zero input gradients reach. Returns None when they reach the border (the
    receptive field is at least `limit`: treat it as the whole image). Runs in float64 on the CPU.

    Args:
        module: maps (1, C, H, W) -> (1, C', sH, sW).
        scale: its scale factor.
        in_channels: C.
        limit: largest receptive field to look for.
        multiple: input side must be a multiple of this.
    """
    side = 2 * limit + 1
    side += (-side) % multiple
    m = module.double().eval()
    x = torch.rand(1, in_channels, side, side, dtype=torch.float64, requires_grad=True)
    y = m(x)
    c = side // 2
    oy = c * scale + scale // 2
    y[..., oy, oy].sum().backward()
    grad = x.grad if x.grad is not None else torch.zeros_like(x)  # None: the output does not depend on x
    g = grad.abs().sum(dim=(0, 1))
    m.float()
    nz = torch.nonzero(g > 0)
    if nz.numel() == 0:
        return 0
    reach = int(max((nz - c).abs().max().item(), 0))
    if nz.min().item() == 0 or nz.max().item() == side - 1:
        return None
    return reach


def count_macs(module: nn.Module, input_shape: tuple[int, ...]) -> int:
    """Multiply-accumulates of one forward pass on an input of `input_shape` (B, C, H, W), or (B, T, C, H, W) for a
    multi-frame module.

    Counts Conv2d, ConvTranspose2d and Linear layers (the operations papers count as Mult-Adds / FLOPs) and
    batched matmuls inside attention (torch.matmul / @ on activations are not hooked: add them in the arch's
    `extra_macs` if it has one).
    """
    total = 0

    def conv_hook(m: nn.Conv2d, inp, out):
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1] * (m.in_channels // m.groups)
        total += out.numel() * k

    def deconv_hook(m: nn.ConvTranspose2d, inp, out):
        nonlocal total
        k = m.kernel_size[0] * m.kernel_size[1] * (m.out_channels // m.groups)
        total += inp[0].numel() * k

    def linear_hook(m: nn.Linear, inp, out):
        nonlocal total
        total += out.numel() * m.in_features

    hooks = []
    for sub in module.modules():
        if isinstance(sub, nn.Conv2d):
            hooks.append(sub.register_forward_hook(conv_hook))
        elif isinstance(sub, nn.ConvTranspose2d):
            hooks.append(sub.register_forward_hook(deconv_hook))
        elif isinstance(sub, nn.Linear):
            hooks.append(sub.register_forward_hook(linear_hook))
    try:
        with torch.no_grad():
            module.eval()(torch.zeros(input_shape))
    finally:
        for h in hooks:
            h.remove()
    extra = getattr(module, "extra_macs", None)
    if callable(extra):
        total += int(extra(input_shape))
    return total
