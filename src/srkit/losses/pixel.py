"""Pixel and frequency losses: L1, MSE, Charbonnier, Fourier-space L1, image-gradient L1.

Every loss takes ``sr`` (the network output) and ``hr`` (the target): float tensors of the same shape
(B, C, H, W), nominally in [0, 1], and returns a scalar tensor (mean over all elements), differentiable
with respect to ``sr``.

The training objective is ``theta* = argmin_theta  L(F(LR; theta), HR) + lambda * Phi(theta)`` (Eq. 3):
these are terms of ``L``. The regulariser ``lambda * Phi(theta)`` is deliberately NOT a loss term here: it is
weight decay, applied by the optimiser (the trainer's AdamW, decoupled as in Loshchilov & Hutter, ICLR 2019).
"""

from __future__ import annotations

import torch

from srkit.errors import ConfigError, ShapeError

__all__ = [
    "charbonnier_loss",
    "check_pair",
    "fft_loss",
    "gradient_loss",
    "l1_loss",
    "mse_loss",
]


def check_pair(sr: torch.Tensor, hr: torch.Tensor, name: str) -> None:
    """Raise ShapeError unless ``sr`` and ``hr`` are float tensors of one (B, C, H, W) shape (``name``: the caller)."""
    if not isinstance(sr, torch.Tensor) or not isinstance(hr, torch.Tensor):
        raise ShapeError(f"{name} expects two tensors, got {type(sr).__name__} and {type(hr).__name__}")
    if sr.ndim != 4 or sr.shape != hr.shape:
        got = f"{tuple(sr.shape)} and {tuple(hr.shape)}"
        raise ShapeError(f"{name} expects sr and hr of the same (B, C, H, W) shape, got {got}")
    if not sr.is_floating_point() or not hr.is_floating_point():
        raise ShapeError(f"{name} expects float tensors, got {sr.dtype} and {hr.dtype}")


def l1_loss(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Mean absolute error ``mean(|sr - hr|)``.

    Args:
        sr, hr: float (B, C, H, W), same shape.

    Returns:
        0-dim tensor of the inputs' dtype.

    Raises:
        ShapeError: shapes differ, not 4-D, or not float.
    """
    check_pair(sr, hr, "l1_loss")
    return (sr - hr).abs().mean()


def mse_loss(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Mean squared error ``mean((sr - hr)^2)`` (the loss PSNR rewards). Args/returns as :func:`l1_loss`."""
    check_pair(sr, hr, "mse_loss")
    return (sr - hr).square().mean()


def charbonnier_loss(sr: torch.Tensor, hr: torch.Tensor, eps: float = 1e-3) -> torch.Tensor:
    """Charbonnier (smooth L1) loss ``mean(sqrt((sr - hr)^2 + eps^2))``.

    Differentiable at zero error, unlike L1; tends to :func:`l1_loss` as ``eps -> 0`` (it is never below it,
    and at most ``eps`` above). ``eps = 1e-3`` on [0, 1] images as in LapSRN.

    Args:
        sr, hr: float (B, C, H, W), same shape.
        eps: > 0.

    Returns:
        0-dim tensor of the inputs' dtype.

    Raises:
        ShapeError: bad tensors. ConfigError: ``eps <= 0``.

    Reference: P. Charbonnier et al., "Two deterministic half-quadratic regularization algorithms for computed
    imaging", ICIP 1994; W.-S. Lai et al., "Deep Laplacian Pyramid Networks for Fast and Accurate
    Super-Resolution" (LapSRN), CVPR 2017.
    """
    check_pair(sr, hr, "charbonnier_loss")
    if not eps > 0:
        raise ConfigError(f"charbonnier eps must be > 0, got {eps!r}")
    return torch.sqrt((sr - hr).square() + eps * eps).mean()


def fft_loss(sr: torch.Tensor, hr: torch.Tensor, *, norm: str = "ortho") -> torch.Tensor:
    """Fourier-space L1: ``mean(|Re(F sr - F hr)|) + ...`` over the real and imaginary parts of ``rfft2``.

    ``F`` is ``torch.fft.rfft2`` over (H, W) per image and channel (half spectrum, W // 2 + 1 columns); the
    real and imaginary parts are stacked and the L1 mean is taken over all (B, C, H, W // 2 + 1, 2) entries.
    It penalises missing high frequencies as strongly as missing low ones, which pixel losses under-weight.
    With ``norm="ortho"`` (Parseval: the spectrum has the image's energy) the value does not grow with the
    patch size, so its weight carries over between patch sizes.

    Computed in float32 at least (half-precision FFTs need power-of-two sizes on CUDA and lose precision);
    the result has that dtype.

    Args:
        sr, hr: float (B, C, H, W), same shape.
        norm: ``"ortho"`` (default), ``"backward"`` (unnormalised, as in MIMO-UNet) or ``"forward"``.

    Returns:
        0-dim tensor; 0 exactly when ``sr == hr``.

    Reference: the frequency reconstruction loss of S.-J. Cho et al., "Rethinking Coarse-to-Fine Approach in
    Single Image Deblurring" (MIMO-UNet), ICCV 2021. Related Fourier-space losses: L. Jiang et al., "Focal
    Frequency Loss for Image Reconstruction and Synthesis" (FFL, a spectrum-weighted squared variant), ICCV
    2021; D. Fuoli et al., "Fourier Space Losses for Efficient Perceptual Image Super-Resolution", ICCV 2021.
    """
    check_pair(sr, hr, "fft_loss")
    if norm not in ("ortho", "backward", "forward"):
        raise ConfigError(f"fft_loss norm must be ortho, backward or forward, got {norm!r}")
    dtype = torch.promote_types(sr.dtype, torch.float32)
    diff = torch.fft.rfft2(sr.to(dtype), norm=norm) - torch.fft.rfft2(hr.to(dtype), norm=norm)
    return torch.view_as_real(diff).abs().mean()


def gradient_loss(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """L1 between finite-difference image gradients: ``(mean|dx sr - dx hr| + mean|dy sr - dy hr|) / 2``.

    ``dx x = x[..., :, 1:] - x[..., :, :-1]`` and ``dy x = x[..., 1:, :] - x[..., :-1, :]`` (forward
    differences, no padding, so borders add no fake edges). Sharpens edges; blind to a constant offset.

    Args:
        sr, hr: float (B, C, H, W), same shape, H >= 2 and W >= 2.

    Returns:
        0-dim tensor of the inputs' dtype.

    Raises:
        ShapeError: bad tensors or a side shorter than 2.
    """
    check_pair(sr, hr, "gradient_loss")
    if sr.shape[-1] < 2 or sr.shape[-2] < 2:
        raise ShapeError(f"gradient_loss needs H, W >= 2, got {tuple(sr.shape)}")
    d = sr - hr  # gradients are linear: grad(sr) - grad(hr) = grad(sr - hr)
    dx = d[..., :, 1:] - d[..., :, :-1]
    dy = d[..., 1:, :] - d[..., :-1, :]
    return 0.5 * (dx.abs().mean() + dy.abs().mean())
