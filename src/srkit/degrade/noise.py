"""Sensor-like noise for the degradation model ``I_LR = D(I_HR) + n``: additive Gaussian and signal-dependent
Poisson (shot) noise, in colour or gray, every random number drawn from an explicit ``torch.Generator``.

Both functions take (B, C, H, W) float images in [0, 1] and return the noisy images clamped to [0, 1] (the
camera's range). "Gray" noise is one noise field shared by all channels (luminance noise); colour noise is
independent per channel (chroma noise).

Reference: X. Wang et al., "Real-ESRGAN: Training Real-World Blind Super-Resolution with Pure Synthetic
Data", ICCVW 2021 (section 3.1, noise); K. Zhang et al., "Designing a Practical Degradation Model for Deep
Blind Image Super-Resolution" (BSRGAN), ICCV 2021.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from srkit.errors import ShapeError

__all__ = ["add_gaussian_noise", "add_poisson_noise", "gaussian_field", "poisson_field"]

# ITU-R BT.601 luma weights: the gray image whose shot noise gray Poisson noise models.
_LUMA = (0.299, 0.587, 0.114)


def _check_images(images: torch.Tensor, name: str) -> None:
    if not isinstance(images, torch.Tensor) or images.ndim != 4 or not images.is_floating_point():
        got = f"{images.dtype} {tuple(images.shape)}" if isinstance(images, torch.Tensor) else type(images).__name__
        raise ShapeError(f"{name} expects float images (B, C, H, W), got {got}")


def _per_image(value: float | Sequence[float] | torch.Tensor, b: int, images: torch.Tensor) -> torch.Tensor:
    """A scalar or one value per image -> a (B, 1, 1, 1) tensor on the images' device."""
    t = torch.as_tensor(value, dtype=torch.float32).flatten()
    if t.numel() == 1:
        t = t.expand(b)
    if t.numel() != b:
        raise ShapeError(f"expected 1 or {b} values (one per image), got {t.numel()}")
    return t.to(device=images.device, dtype=images.dtype).view(b, 1, 1, 1)


def _gray_mask(gray: bool | Sequence[bool] | torch.Tensor, b: int, images: torch.Tensor) -> torch.Tensor:
    return _per_image(torch.as_tensor(gray, dtype=torch.float32), b, images)


def add_gaussian_noise(
    images: torch.Tensor,
    sigma: float | Sequence[float] | torch.Tensor,
    *,
    gray: bool | Sequence[bool] | torch.Tensor = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Add zero-mean Gaussian noise of standard deviation ``sigma`` (on the [0, 1] scale) and clamp.

    Args:
        images: (B, C, H, W) float in [0, 1], any device.
        sigma: noise standard deviation in [0, 1] units (``25 / 255`` is "sigma 25"); one for all or one per image.
        gray: one noise field for all channels (per image, or one flag for all).
        generator: source of the noise (a CPU generator works for images on any device: the noise is drawn on
            the generator's device and moved).

    Returns:
        (B, C, H, W), same dtype and device, clamped to [0, 1].

    Raises:
        ShapeError: not a float 4-D tensor, or a per-image list of the wrong length.
    """
    _check_images(images, "add_gaussian_noise")
    b, c, h, w = images.shape
    gen_device = generator.device if generator is not None else images.device
    colour = torch.randn((b, c, h, w), generator=generator, device=gen_device)
    mono = torch.randn((b, 1, h, w), generator=generator, device=gen_device)
    colour, mono = colour.to(images.device, images.dtype), mono.to(images.device, images.dtype)
    g = _gray_mask(gray, b, images)
    noise = g * mono + (1 - g) * colour
    return (images + noise * _per_image(sigma, b, images)).clamp(0.0, 1.0)


def _levels(image: torch.Tensor) -> float:
    """Photon-count scale of one image: the number of distinct 8-bit levels it uses, rounded up to a power of two.

    A heavily quantised image (few levels) gets strong shot noise, a rich one weak noise, as in Real-ESRGAN.
    """
    q = torch.clamp((image * 255.0).round(), 0, 255).to(torch.uint8)  # bincount is much faster on uint8
    n = int(torch.count_nonzero(torch.bincount(q.flatten(), minlength=256)))
    return float(2 ** math.ceil(math.log2(max(n, 2))))


def add_poisson_noise(
    images: torch.Tensor,
    scale: float | Sequence[float] | torch.Tensor,
    *,
    gray: bool | Sequence[bool] | torch.Tensor = False,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Add signal-dependent Poisson (shot) noise and clamp.

    Each image is treated as a photon count ``x * L`` (``L``: its number of distinct 8-bit levels, rounded up to
    a power of two); the noise is ``(Poisson(x * L) / L - x) * scale``. Gray noise is computed on the BT.601
    luma of an RGB image and added to every channel.

    Args:
        images: (B, C, H, W) float in [0, 1], C = 1 or 3 (gray noise needs C = 3 or 1).
        scale: noise strength multiplier (Real-ESRGAN draws it from [0.05, 3]); one for all or one per image.
        gray: luminance-only noise (per image or one flag).
        generator: source of the noise (drawn on the generator's device, moved to the images').

    Returns:
        (B, C, H, W), same dtype and device, clamped to [0, 1].

    Raises:
        ShapeError: bad tensor, or gray noise asked for an image that is neither 1- nor 3-channel.
    """
    _check_images(images, "add_poisson_noise")
    b, c, h, w = images.shape
    g = _gray_mask(gray, b, images)
    if bool((g > 0).any()) and c not in (1, 3):
        raise ShapeError(f"gray Poisson noise needs 1 or 3 channels, got {c}")
    gen_device = generator.device if generator is not None else images.device
    x = images.clamp(0.0, 1.0).to(gen_device, torch.float32)
    levels = torch.tensor([_levels(x[i]) for i in range(b)], device=gen_device).view(b, 1, 1, 1)
    # Only the fields some image needs are drawn (which ones is fixed by `gray`, so the stream stays seeded).
    noise = torch.zeros_like(images)
    if bool((g < 1).any()):
        colour = torch.poisson(x * levels, generator=generator) / levels - x
        noise = noise + (1 - g) * colour.to(images.device, images.dtype)
    if bool((g > 0).any()):
        luma = sum(wt * x[:, i : i + 1] for i, wt in enumerate(_LUMA)) if c == 3 else x
        mono = torch.poisson(luma * levels, generator=generator) / levels - luma
        noise = noise + g * mono.to(images.device, images.dtype)
    return (images + noise * _per_image(scale, b, images)).clamp(0.0, 1.0)


def gaussian_field(channels: int, height: int, width: int, gray: bool, generator: torch.Generator) -> torch.Tensor:
    """The unit-variance field that :func:`add_gaussian_noise` adds to one (1, C, H, W) image with ``generator``.

    Drawn as there (a colour field, then a gray one, from the generator, on its device): ``images + sigma *
    field`` then equals ``add_gaussian_noise(images, sigma, gray=gray, generator=...)`` before the clamp.

    Returns:
        (1, C, H, W) float32 on the generator's device (the gray field broadcast over channels).
    """
    colour = torch.randn((1, channels, height, width), generator=generator, device=generator.device)
    mono = torch.randn((1, 1, height, width), generator=generator, device=generator.device)
    return mono.expand(1, channels, height, width) if gray else colour


def poisson_field(image: torch.Tensor, gray: bool, generator: torch.Generator) -> torch.Tensor:
    """The unscaled shot-noise field that :func:`add_poisson_noise` adds to one image with ``generator``.

    Args:
        image: (1, C, H, W) float32 in [0, 1] (clamped) on the generator's device; C = 1 or 3 for gray noise.
        gray: one luma field for all channels.
        generator: source of the Poisson draws.

    Returns:
        (1, C, H, W) float32: ``images + scale * field`` equals ``add_poisson_noise(images, scale, gray=gray,
        generator=...)`` before the clamp.
    """
    c = image.shape[1]
    if gray and c not in (1, 3):
        raise ShapeError(f"gray Poisson noise needs 1 or 3 channels, got {c}")
    levels = torch.tensor([_levels(image[0])], device=image.device).view(1, 1, 1, 1)
    if not gray:
        return torch.poisson(image * levels, generator=generator) / levels - image
    luma = sum(wt * image[:, i : i + 1] for i, wt in enumerate(_LUMA)) if c == 3 else image
    mono = torch.poisson(luma * levels, generator=generator) / levels - luma
    return mono.expand_as(image)
