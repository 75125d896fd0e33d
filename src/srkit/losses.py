"""Pixel and frequency losses for SR training, and a weighted sum of them configured by name.

Every loss takes ``sr`` (the network output) and ``hr`` (the target): float tensors of the same shape
(B, C, H, W), nominally in [0, 1], and returns a scalar tensor (mean over all elements), differentiable
with respect to ``sr``.

The training objective is ``theta* = argmin_theta  L(F(LR; theta), HR) + lambda * Phi(theta)`` (Eq. 3):
this module is ``L``. The regulariser ``lambda * Phi(theta)`` is deliberately NOT a loss term here: it is
weight decay, applied by the optimiser (the trainer's AdamW, decoupled as in Loshchilov & Hutter, ICLR 2019).

Perceptual and adversarial terms will join :class:`LossTerm`'s names later; until then other names are
refused with a clear error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator
from torch import nn

from srkit.errors import ConfigError, ShapeError

__all__ = [
    "CompositeLoss",
    "LossTerm",
    "charbonnier_loss",
    "fft_loss",
    "gradient_loss",
    "l1_loss",
    "mse_loss",
]


def _check_pair(sr: torch.Tensor, hr: torch.Tensor, name: str) -> None:
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
    _check_pair(sr, hr, "l1_loss")
    return (sr - hr).abs().mean()


def mse_loss(sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Mean squared error ``mean((sr - hr)^2)`` (the loss PSNR rewards). Args/returns as :func:`l1_loss`."""
    _check_pair(sr, hr, "mse_loss")
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
    _check_pair(sr, hr, "charbonnier_loss")
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
    _check_pair(sr, hr, "fft_loss")
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
    _check_pair(sr, hr, "gradient_loss")
    if sr.shape[-1] < 2 or sr.shape[-2] < 2:
        raise ShapeError(f"gradient_loss needs H, W >= 2, got {tuple(sr.shape)}")
    d = sr - hr  # gradients are linear: grad(sr) - grad(hr) = grad(sr - hr)
    dx = d[..., :, 1:] - d[..., :, :-1]
    dy = d[..., 1:, :] - d[..., :-1, :]
    return 0.5 * (dx.abs().mean() + dy.abs().mean())


LossName = Literal["l1", "mse", "charbonnier", "fft", "gradient"]


class LossTerm(BaseModel):
    """One weighted term of :class:`CompositeLoss` (a config entry such as ``{name: l1, weight: 1.0}``).

    Attributes:
        name: which loss: ``l1``, ``mse``, ``charbonnier``, ``fft`` or ``gradient``.
        weight: >= 0 factor in the sum (0: computed and logged, not trained on).
        eps: Charbonnier's epsilon (> 0; default 1e-3); only allowed for ``charbonnier``.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: LossName
    weight: float = Field(1.0, ge=0.0, allow_inf_nan=False)
    eps: float | None = Field(None, gt=0.0, allow_inf_nan=False)

    @model_validator(mode="after")
    def _eps_only_for_charbonnier(self) -> LossTerm:
        if self.eps is not None and self.name != "charbonnier":
            raise ValueError(f"eps applies to the charbonnier loss only, not to {self.name!r}")
        return self


def _term_value(term: LossTerm, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    match term.name:
        case "l1":
            return l1_loss(sr, hr)
        case "mse":
            return mse_loss(sr, hr)
        case "charbonnier":
            return charbonnier_loss(sr, hr, eps=1e-3 if term.eps is None else term.eps)
        case "fft":
            return fft_loss(sr, hr)
        case "gradient":
            return gradient_loss(sr, hr)
        case other:
            # Reached only by a LossTerm built without validation (model_construct).
            raise ConfigError(f"unknown loss {other!r} (known: l1, mse, charbonnier, fft, gradient)")


def _as_term(t: LossTerm | Mapping[str, object]) -> LossTerm:
    if isinstance(t, LossTerm):
        return t
    try:
        return LossTerm.model_validate(t)
    except ValidationError as e:
        msgs = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'term'}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"bad loss term {dict(t) if isinstance(t, Mapping) else t!r}: {msgs}") from None


class CompositeLoss(nn.Module):
    """Weighted sum of loss terms: ``total = sum_i weight_i * loss_i(sr, hr)``.

    Args:
        terms: :class:`LossTerm` s (or mappings validated into them; a bad one raises ConfigError with
            pydantic's reasons, e.g. an unknown name). At least one; names must be distinct.

    Forward:
        ``sr``, ``hr``: float (B, C, H, W). Returns ``(total, values)``: ``total`` a 0-dim tensor carrying the
        gradient, ``values`` ``{name: unweighted value}`` as detached 0-dim tensors (for logging; convert with
        ``float()`` when needed, which syncs the device). Zero-weight terms are computed without autograd
        and only logged.

    Raises:
        ConfigError: no terms, duplicate names, invalid term.
    """

    def __init__(self, terms: Sequence[LossTerm | Mapping[str, object]]) -> None:
        super().__init__()
        checked = tuple(_as_term(t) for t in terms)
        if not checked:
            raise ConfigError("CompositeLoss needs at least one loss term")
        names = [t.name for t in checked]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"loss terms must have distinct names; repeated: {', '.join(dup)}")
        self.terms = checked

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total: torch.Tensor | None = None
        values: dict[str, torch.Tensor] = {}
        for term in self.terms:
            if term.weight == 0.0:
                with torch.no_grad():
                    values[term.name] = _term_value(term, sr, hr).detach()
                continue
            v = _term_value(term, sr, hr)
            values[term.name] = v.detach()
            total = term.weight * v if total is None else total + term.weight * v
        if total is None:
            # Every weight is 0: a zero that still connects to sr, so backward() works (and does nothing).
            total = (sr * 0).sum()
        return total, values

    def extra_repr(self) -> str:
        return ", ".join(
            f"{t.weight:g}*{t.name}" + (f"(eps={t.eps:g})" if t.eps is not None else "") for t in self.terms
        )
