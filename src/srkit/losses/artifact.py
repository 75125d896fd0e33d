"""LDL artifact loss: penalise GAN artifacts where the residual is locally noisy and worse than the EMA model's.

Liang et al. observe that GAN artifacts show up as locally high-variance residuals, and that an exponential
moving average of the generator's weights produces fewer of them than the instantaneous weights. For the
residual ``R = sum_c |hr - sr|`` (B, 1, H, W):

* pixel level: ``M = local variance of R`` in a ``k x k`` window (reflect padding, unbiased);
* patch level: ``sigma = var(R over the whole image) ** (1/5)`` per image (unbiased), so that patches with
  large, varied residuals (textured areas) are weighted more;
* refined map: ``M_refine = sigma * M``, set to 0 where the current output is closer to HR than the EMA
  model's (``R < R_ema``, with ``R_ema = sum_c |hr - sr_ema|``): those pixels are stable details, not artifacts;
* loss: ``mean |M_refine * (sr - hr)|`` with ``M_refine`` treated as a constant.

Reference: J. Liang, H. Zeng, L. Zhang, "Details or Artifacts: A Locally Discriminative Learning Approach to
Realistic Image Super-Resolution", CVPR 2022.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from srkit.errors import ConfigError, ShapeError
from srkit.losses.pixel import check_pair

__all__ = ["ldl_artifact_map", "ldl_loss", "local_variance"]


def local_variance(x: torch.Tensor, kernel_size: int = 7) -> torch.Tensor:
    """Unbiased variance of ``x`` in the ``kernel_size`` x ``kernel_size`` window around every pixel.

    Args:
        x: float (B, C, H, W); H, W > kernel_size // 2 (reflect padding).
        kernel_size: odd, >= 3.

    Returns:
        (B, C, H, W) >= 0, same dtype: ``(E[x^2] - E[x]^2) * n / (n - 1)`` over the window (n = k^2),
        from box filters (no k^2-fold unfolding), clamped at 0 against rounding.

    Raises:
        ConfigError: bad kernel size. ShapeError: not 4-D float, or too small for the padding.
    """
    if not isinstance(kernel_size, int) or kernel_size < 3 or kernel_size % 2 == 0:
        raise ConfigError(f"LDL kernel_size must be an odd integer >= 3, got {kernel_size!r}")
    if x.ndim != 4 or not x.is_floating_point():
        raise ShapeError(f"local_variance expects float (B, C, H, W), got {tuple(x.shape)} {x.dtype}")
    pad = kernel_size // 2
    if min(x.shape[-2:]) <= pad:
        raise ShapeError(f"local_variance with kernel_size {kernel_size} needs H, W > {pad}, got {tuple(x.shape)}")
    xp = F.pad(x, (pad, pad, pad, pad), mode="reflect")
    mean = F.avg_pool2d(xp, kernel_size, stride=1)
    mean_sq = F.avg_pool2d(xp * xp, kernel_size, stride=1)
    n = kernel_size * kernel_size
    return ((mean_sq - mean * mean) * (n / (n - 1))).clamp_min(0.0)


@torch.no_grad()
def ldl_artifact_map(sr: torch.Tensor, sr_ema: torch.Tensor, hr: torch.Tensor, kernel_size: int = 7,
                     power: float = 0.2) -> torch.Tensor:
    """The refined artifact map ``M_refine`` of LDL (see the module docstring); no autograd.

    Args:
        sr: the generator's output, float (B, C, H, W) in [0, 1].
        sr_ema: the EMA generator's output on the same LR batch, same shape.
        hr: the target, same shape.
        kernel_size: local window (odd, >= 3; the paper's 7).
        power: exponent of the patch-level variance (the paper's 1/5).

    Returns:
        (B, 1, H, W) float32 (float64 for float64 input), >= 0; all 0 when ``sr == hr``.
    """
    check_pair(sr, hr, "ldl_loss")
    check_pair(sr_ema, hr, "ldl_loss (sr_ema)")
    dtype = torch.promote_types(sr.dtype, torch.float32)
    hr = hr.to(dtype)
    r = (hr - sr.to(dtype)).abs().sum(dim=1, keepdim=True)
    r_ema = (hr - sr_ema.to(dtype)).abs().sum(dim=1, keepdim=True)
    patch = r.flatten(1).var(dim=1, unbiased=True).clamp_min(0.0).pow(power).view(-1, 1, 1, 1)
    weight = patch * local_variance(r, kernel_size)
    return weight.masked_fill(r < r_ema, 0.0)


def ldl_loss(sr: torch.Tensor, sr_ema: torch.Tensor, hr: torch.Tensor, kernel_size: int = 7,
             power: float = 0.2) -> torch.Tensor:
    """LDL artifact loss ``mean |M_refine * (sr - hr)|`` (L1 over B, C, H, W), gradient to ``sr`` only.

    Args:
        sr: the generator's output, float (B, C, H, W) in [0, 1], with autograd.
        sr_ema: the EMA generator's output on the same LR batch (constant), same shape.
        hr: the target, same shape.
        kernel_size: local variance window (odd, >= 3; default 7 as in the paper).
        power: patch-level variance exponent (default 1/5 as in the paper).

    Returns:
        0-dim float32 (float64 for float64 input); 0 when ``sr == hr``.

    Raises:
        ShapeError: bad tensors. ConfigError: bad kernel size.

    Reference: Liang, Zeng, Zhang, "Details or Artifacts: A Locally Discriminative Learning Approach to Realistic
    Image Super-Resolution", CVPR 2022.
    """
    weight = ldl_artifact_map(sr, sr_ema, hr, kernel_size, power)
    dtype = weight.dtype
    return (weight * (sr.to(dtype) - hr.to(dtype))).abs().mean()
