"""GAN losses for both sides (vanilla, LSGAN, hinge, relativistic average) and discriminator feature matching.

Pure functions of discriminator outputs. Logits may have any shape (``(B, 1)`` from a VGG-style discriminator,
``(B, 1, H, W)`` per pixel from a U-Net one); every loss is a mean over all their elements, computed in float32
at least. ``real`` are the discriminator's logits on HR images, ``fake`` on SR outputs.

With ``r`` = real logits, ``f`` = fake logits, means over all elements, ``sp`` = softplus:

* ``vanilla``: D real part ``mean sp(-r)``, D fake part ``mean sp(f)``; G ``mean sp(-f)`` (non-saturating);
* ``lsgan``: D ``mean (r - 1)^2`` and ``mean f^2``; G ``mean (f - 1)^2``;
* ``hinge``: D ``mean relu(1 - r)`` and ``mean relu(1 + f)``; G ``-mean f``;
* ``ragan``: D ``0.5 mean sp(-(r - mean f))`` and ``0.5 mean sp(f - mean r)``;
  G ``0.5 (mean sp(r - mean f) + mean sp(-(f - mean r)))``.

``softplus(-x)`` is binary cross-entropy with logits against label 1, ``softplus(x)`` against label 0. The
discriminator minimises real part + fake part. LSGAN has no 1/2 factor (as BasicSR's ``lsgan``); RaGAN's
halves make D's and G's losses the average of their two cross-entropies, as in ESRGAN.

References: I. Goodfellow et al., "Generative Adversarial Nets", NeurIPS 2014 (vanilla, non-saturating G);
X. Mao et al., "Least Squares Generative Adversarial Networks", ICCV 2017; J. H. Lim, J. C. Ye, "Geometric GAN",
2017 and T. Miyato et al., "Spectral Normalization for GANs", ICLR 2018 (hinge); A. Jolicoeur-Martineau,
"The relativistic discriminator: a key element missing from standard GAN", ICLR 2019, used by X. Wang et al.,
"ESRGAN", ECCV Workshops 2018 (RaGAN); T. Salimans et al., "Improved Techniques for Training GANs", NeurIPS 2016
and T.-C. Wang et al., "pix2pixHD", CVPR 2018 (discriminator feature matching).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import torch
import torch.nn.functional as F

from srkit.errors import ConfigError, ShapeError

__all__ = ["GAN_LOSSES", "GanLossKind", "discriminator_loss", "feature_matching_loss", "generator_loss"]

GanLossKind = Literal["vanilla", "lsgan", "hinge", "ragan"]
GAN_LOSSES: tuple[str, ...] = ("vanilla", "lsgan", "hinge", "ragan")


def _f32(t: torch.Tensor, name: str) -> torch.Tensor:
    if not isinstance(t, torch.Tensor) or not t.is_floating_point() or t.numel() == 0:
        raise ShapeError(f"{name} must be a non-empty float tensor of logits")
    return t.to(torch.promote_types(t.dtype, torch.float32))


def _check_kind(kind: str) -> None:
    if kind not in GAN_LOSSES:
        raise ConfigError(f"unknown GAN loss {kind!r} (known: {', '.join(GAN_LOSSES)})")


def discriminator_loss(real: torch.Tensor, fake: torch.Tensor, kind: GanLossKind = "vanilla"
                       ) -> tuple[torch.Tensor, torch.Tensor]:
    """The discriminator's loss on real (HR) and fake (SR) logits, as its two parts (see the module table).

    Args:
        real: D's logits on HR images, any shape (float).
        fake: D's logits on SR images (detach SR before D so G gets no gradient), any shape.
        kind: ``vanilla``, ``lsgan``, ``hinge`` or ``ragan``.

    Returns:
        ``(real_part, fake_part)``, 0-dim float32 (or float64) tensors; D minimises their sum. The gradient flows
        into both logits tensors (for RaGAN each part depends on both through the other side's mean).

    Raises:
        ConfigError: unknown kind. ShapeError: empty or non-float logits.

    Reference: Goodfellow et al., NeurIPS 2014; Mao et al., ICCV 2017; Lim & Ye, 2017; Jolicoeur-Martineau,
    ICLR 2019 (see the module docstring).
    """
    _check_kind(kind)
    r, f = _f32(real, "real logits"), _f32(fake, "fake logits")
    match kind:
        case "vanilla":
            return F.softplus(-r).mean(), F.softplus(f).mean()
        case "lsgan":
            return (r - 1.0).square().mean(), f.square().mean()
        case "hinge":
            return F.relu(1.0 - r).mean(), F.relu(1.0 + f).mean()
        case _:  # ragan
            return 0.5 * F.softplus(-(r - f.mean())).mean(), 0.5 * F.softplus(f - r.mean()).mean()


def generator_loss(fake: torch.Tensor, real: torch.Tensor | None = None, kind: GanLossKind = "vanilla"
                   ) -> torch.Tensor:
    """The generator's adversarial loss on D's logits for its SR output (see the module table).

    Args:
        fake: D's logits on SR images (with autograd through D into G), any shape.
        real: D's logits on HR images; needed by ``ragan`` only (treated as constants: pass them detached or
            computed under ``torch.no_grad()``).
        kind: ``vanilla``, ``lsgan``, ``hinge`` or ``ragan``.

    Returns:
        0-dim float32 (or float64) tensor.

    Raises:
        ConfigError: unknown kind, or ``ragan`` without ``real``. ShapeError: empty or non-float logits.

    Reference: Goodfellow et al., NeurIPS 2014; Mao et al., ICCV 2017; Lim & Ye, 2017; Jolicoeur-Martineau,
    ICLR 2019; Wang et al., ESRGAN, ECCV Workshops 2018 (see the module docstring).
    """
    _check_kind(kind)
    f = _f32(fake, "fake logits")
    match kind:
        case "vanilla":
            return F.softplus(-f).mean()
        case "lsgan":
            return (f - 1.0).square().mean()
        case "hinge":
            return -f.mean()
        case _:  # ragan
            if real is None:
                raise ConfigError("the ragan generator loss needs the discriminator's logits on real images")
            r = _f32(real, "real logits").detach()
            return 0.5 * (F.softplus(r - f.mean()).mean() + F.softplus(-(f - r.mean())).mean())


def feature_matching_loss(fake_features: Sequence[torch.Tensor], real_features: Sequence[torch.Tensor]
                          ) -> torch.Tensor:
    """Mean over layers of ``mean|D_l(sr) - D_l(hr)|``: L1 between the discriminator's intermediate features.

    Args:
        fake_features: D's feature maps on SR (from ``forward_features``), with autograd into G.
        real_features: the same layers on HR; used as constants (detached here).

    Returns:
        0-dim float32 (or float64) tensor; 0 exactly when the features are equal (e.g. ``sr == hr``).

    Raises:
        ShapeError: different layer counts or shapes, or no layers.

    Reference: Salimans et al., NeurIPS 2016; T.-C. Wang et al., "High-Resolution Image Synthesis and Semantic
    Manipulation with Conditional GANs" (pix2pixHD), CVPR 2018.
    """
    if len(fake_features) != len(real_features) or not fake_features:
        raise ShapeError(f"feature matching needs the same non-zero number of layers, got {len(fake_features)} "
                         f"and {len(real_features)}")
    layer_means = []
    for i, (a, b) in enumerate(zip(fake_features, real_features, strict=True)):
        if a.shape != b.shape:
            raise ShapeError(f"feature matching layer {i}: shapes {tuple(a.shape)} and {tuple(b.shape)} differ")
        a32, b32 = _f32(a, "features"), _f32(b, "features").detach()
        layer_means.append((a32 - b32).abs().mean())
    total = layer_means[0]
    for v in layer_means[1:]:
        total = total + v
    return total / len(fake_features)
