"""Blur kernels of the Real-ESRGAN / BSRGAN degradation model ``I_LR = D(I_HR) + n``.

Every kernel is a square ``(size, size)`` tensor with odd ``size``, centred on the middle tap and
normalised to sum 1. Pixel offsets are ``x`` along columns (width) and ``y`` along rows (height).
The Gaussian family uses the covariance ``Sigma = R diag(sigma_x^2, sigma_y^2) R^T``, ``R`` the
counter-clockwise rotation by ``theta`` radians, and the quadratic form ``q = [x, y] Sigma^-1 [x, y]^T``:

* ``gaussian_kernel``: ``exp(-q / 2)``
* ``generalized_gaussian_kernel``: ``exp(-q^beta / 2)`` (``beta < 1`` heavier tails, ``beta > 1`` flatter top)
* ``plateau_kernel``: ``1 / (1 + q^beta)``
* ``sinc_kernel``: the ideal circular low-pass, which adds ringing and overshoot artefacts.

:func:`sample_kernel` draws a random kernel as the first-order Real-ESRGAN pipeline does, from a
``torch.Generator`` only, and returns a record of plain python values that :func:`kernel_from_record`
turns back into the identical kernel. :func:`blur` applies one kernel, or one per image, to a batch.

Reference: Real-ESRGAN: Wang et al., ICCVW 2021; BSRGAN: Zhang et al., ICCV 2021.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from srkit.errors import ConfigError, ShapeError

__all__ = ["KERNEL_TYPES", "BlurSettings", "blur", "gaussian_kernel", "generalized_gaussian_kernel"]
__all__ += ["draw_kernel_record", "draw_sinc_record", "kernel_from_record", "plateau_kernel", "sample_kernel"]
__all__ += ["sample_sinc", "sinc_kernel"]

#: The Gaussian-family kernel types of :class:`BlurSettings` (the sinc kernel is drawn separately).
KERNEL_TYPES: tuple[str, ...] = ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
_DEFAULT_PROBS = tuple(zip(KERNEL_TYPES, (0.45, 0.25, 0.12, 0.03, 0.12, 0.03), strict=True))
_MIN_SIZE, _MAX_SIZE = 3, 41


def _odd_size(size: Any, key: str = "size") -> int:
    if isinstance(size, bool):
        raise ConfigError(f"{key}: expected an odd integer, got {size!r}")
    try:
        value = operator.index(size)
    except TypeError:
        raise ConfigError(f"{key}: expected an odd integer, got {size!r}") from None
    if value % 2 == 0:
        raise ConfigError(f"{key}: {value} is even; kernel sizes are odd")
    if value < 1:
        raise ConfigError(f"{key}: {value} is not positive; kernel sizes are odd integers >= 1")
    return value


def _number(value: Any, key: str, *, positive: bool = False, unit: bool = False) -> float:
    if isinstance(value, bool):
        raise ConfigError(f"{key}: expected a number, got {value!r}")
    try:
        out = float(value)
    except (TypeError, ValueError):
        raise ConfigError(f"{key}: expected a number, got {value!r}") from None
    if not math.isfinite(out):
        raise ConfigError(f"{key}: must be finite, got {value!r}")
    if positive and out <= 0:
        raise ConfigError(f"{key}: must be > 0, got {value!r}")
    if unit and not 0.0 <= out <= 1.0:
        raise ConfigError(f"{key}: {value!r} is outside [0, 1]")
    return out


def _range(value: Any, key: str) -> tuple[float, float]:
    if isinstance(value, (str, bytes)) or not hasattr(value, "__len__") or len(value) != 2:
        raise ConfigError(f"{key}: expected a (low, high) pair, got {value!r}")
    low, high = (_number(v, key) for v in value)
    if low <= 0 or high <= 0:
        raise ConfigError(f"{key}: values must be > 0, got {value!r}")
    if low > high:
        raise ConfigError(f"{key}: {value!r} is reversed; give (low, high) with low <= high")
    return low, high


def _sizes(sizes: Any, key: str) -> tuple[int, ...]:
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise ConfigError(f"{key}: expected a sequence of odd integers, got {sizes!r}")
    out = tuple(_odd_size(s, key) for s in sizes)
    if not out:
        raise ConfigError(f"{key}: must not be empty")
    for s in out:
        if not _MIN_SIZE <= s <= _MAX_SIZE:
            raise ConfigError(f"{key}: {s} is outside {_MIN_SIZE}..{_MAX_SIZE}")
    return out


def _grid(size: int) -> tuple[torch.Tensor, torch.Tensor]:
    r = size // 2
    ax = torch.arange(-r, r + 1, dtype=torch.float64)
    yy, xx = torch.meshgrid(ax, ax, indexing="ij")
    return xx, yy


def _quadratic_form(size: Any, sigma_x: Any, sigma_y: Any, theta: Any) -> torch.Tensor:
    size = _odd_size(size)
    sx = _number(sigma_x, "sigma_x", positive=True)
    sy = sx if sigma_y is None else _number(sigma_y, "sigma_y", positive=True)
    t = _number(theta, "theta")
    c, s = math.cos(t), math.sin(t)
    # Sigma^-1 = R diag(1/sx^2, 1/sy^2) R^T with R = [[c, -s], [s, c]].
    a = c * c / sx**2 + s * s / sy**2
    b = c * s * (1.0 / sx**2 - 1.0 / sy**2)
    d = s * s / sx**2 + c * c / sy**2
    xx, yy = _grid(size)
    return (a * xx * xx + 2.0 * b * xx * yy + d * yy * yy).clamp_min(0.0)


def _finish(kernel64: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    return (kernel64 / kernel64.sum()).to(dtype)


def gaussian_kernel(
    size: int, sigma_x: float, sigma_y: float | None = None, theta: float = 0.0, *, dtype: torch.dtype = torch.float32
) -> torch.Tensor:
    """Anisotropic Gaussian blur kernel ``exp(-q / 2)``, ``q = [x, y] Sigma^-1 [x, y]^T``.

    Args:
        size: odd side length (>= 1).
        sigma_x: standard deviation (pixels, > 0) along the kernel's first principal axis,
            which lies along the image width (columns) when ``theta == 0``.
        sigma_y: standard deviation along the second principal axis; ``None`` means ``sigma_x``
            (isotropic).
        theta: counter-clockwise rotation of the principal axes in radians; ``pi / 2`` transposes.
        dtype: floating dtype of the result (computed in float64 first).

    Returns:
        ``(size, size)`` tensor, values in [0, 1], summing to 1.

    Raises:
        ConfigError: even/non-positive size, sigma <= 0, non-finite values.

    Reference: Real-ESRGAN: Wang et al., ICCVW 2021; BSRGAN: Zhang et al., ICCV 2021.
    """
    q = _quadratic_form(size, sigma_x, sigma_y, theta)
    return _finish(torch.exp(-0.5 * q), dtype)


def generalized_gaussian_kernel(
    size: int,
    sigma_x: float,
    sigma_y: float | None = None,
    theta: float = 0.0,
    beta: float = 1.0,
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Generalized Gaussian kernel ``exp(-q^beta / 2)``; ``beta == 1`` is :func:`gaussian_kernel`.

    Args:
        size, sigma_x, sigma_y, theta, dtype: as in :func:`gaussian_kernel`.
        beta: shape exponent (> 0); below 1 gives heavier tails, above 1 a flatter top.

    Returns:
        ``(size, size)`` tensor, values in [0, 1], summing to 1. Raises ConfigError on a bad size, sigma or beta.

    Reference: Real-ESRGAN: Wang et al., ICCVW 2021 (generalized Gaussian blur kernels).
    """
    b = _number(beta, "beta", positive=True)
    q = _quadratic_form(size, sigma_x, sigma_y, theta)
    return _finish(torch.exp(-0.5 * q.pow(b)), dtype)


def plateau_kernel(
    size: int,
    sigma_x: float,
    sigma_y: float | None = None,
    theta: float = 0.0,
    beta: float = 1.0,
    *,
    dtype: torch.dtype = torch.float32,
) -> torch.Tensor:
    """Plateau-shaped kernel ``1 / (1 + q^beta)``: flat top, polynomially decaying tails.

    Args:
        size, sigma_x, sigma_y, theta, dtype: as in :func:`gaussian_kernel`.
        beta: shape exponent (> 0); larger values give a flatter top and sharper shoulder.

    Returns:
        ``(size, size)`` tensor, values in (0, 1], summing to 1. Raises ConfigError on a bad size, sigma or beta.

    Reference: Real-ESRGAN: Wang et al., ICCVW 2021 (plateau-shaped distribution).
    """
    b = _number(beta, "beta", positive=True)
    q = _quadratic_form(size, sigma_x, sigma_y, theta)
    return _finish(1.0 / (1.0 + q.pow(b)), dtype)


def sinc_kernel(size: int, cutoff: float, *, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    """Ideal circular low-pass ("2-D sinc") kernel, truncated to ``size x size``.

    The continuous filter passes the disc ``|omega| <= cutoff`` in frequency; its impulse
    response is ``k(r) = cutoff * J1(cutoff * r) / (2 * pi * r)`` with the limit
    ``cutoff^2 / (4 * pi)`` at ``r = 0``. Truncation and renormalisation keep the DC gain at 1;
    the result can be negative away from the centre (this is what produces ringing).

    Args:
        size: odd side length (>= 1).
        cutoff: cut-off angular frequency in radians per pixel, ``0 < cutoff <= pi``.
        dtype: floating dtype of the result (computed in float64 first).

    Returns:
        ``(size, size)`` tensor summing to 1, values in about [-0.1, 1].

    Raises:
        ConfigError: bad size or cutoff outside (0, pi].

    Reference: Real-ESRGAN: Wang et al., ICCVW 2021 (sinc filter, ringing and overshoot artifacts).
    """
    size = _odd_size(size)
    wc = _number(cutoff, "cutoff", positive=True)
    if wc > math.pi:
        raise ConfigError(f"cutoff: {cutoff!r} is above pi; the cut-off is in radians per pixel, 0 < cutoff <= pi")
    xx, yy = _grid(size)
    r = torch.hypot(xx, yy)
    safe = torch.where(r > 0, r, torch.ones_like(r))
    k = torch.where(r > 0, wc * torch.special.bessel_j1(wc * safe) / (2.0 * math.pi * safe), wc * wc / (4.0 * math.pi))
    return _finish(k, dtype)


@dataclass(frozen=True)
class BlurSettings:
    """Settings of the random blur of one Real-ESRGAN degradation stage (frozen and hashable).

    Attributes:
        kernel_sizes: candidate odd kernel sizes, each in 3..41, drawn uniformly.
        kernel_probs: relative weight of each Gaussian-family type in :data:`KERNEL_TYPES`; a mapping
            or ``(name, weight)`` pairs, stored as pairs in :data:`KERNEL_TYPES` order. Weights lie in
            [0, 1] and are normalised by their sum (which must be > 0); missing types get weight 0.
        sigma: ``(low, high)`` range of the standard deviations in pixels, ``0 < low <= high``.
        beta_generalized: ``(low, high)`` range of ``beta`` for the generalized Gaussian types.
        beta_plateau: ``(low, high)`` range of ``beta`` for the plateau types.
        sinc_prob: probability that the blur is a sinc kernel instead (ringing artefacts), in [0, 1].

    ``check(prefix)`` re-validates with another key prefix (e.g. ``"degrade.blur2"``).

    Raises:
        ConfigError: on construction, for any invalid field, naming it as ``blur.<field>``.

    Reference: Real-ESRGAN: Wang et al., ICCVW 2021 (first-order blur settings).
    """

    kernel_sizes: tuple[int, ...] = (7, 9, 11, 13, 15, 17, 19, 21)
    kernel_probs: Mapping[str, float] | tuple[tuple[str, float], ...] = field(default=_DEFAULT_PROBS)
    sigma: tuple[float, float] = (0.2, 3.0)
    beta_generalized: tuple[float, float] = (0.5, 4.0)
    beta_plateau: tuple[float, float] = (1.0, 2.0)
    sinc_prob: float = 0.1

    def __post_init__(self) -> None:
        self.check("blur")

    def check(self, prefix: str = "blur") -> None:
        """Validate every field (raising ConfigError ``"<prefix>.<field>: ..."``) and canonicalise them."""
        set_ = object.__setattr__
        set_(self, "kernel_sizes", _sizes(self.kernel_sizes, f"{prefix}.kernel_sizes"))
        key = f"{prefix}.kernel_probs"
        raw = self.kernel_probs
        try:
            pairs = list(raw.items()) if isinstance(raw, Mapping) else [tuple(p) for p in raw]
        except TypeError:
            raise ConfigError(f"{key}: expected a mapping of kernel type to probability, got {raw!r}") from None
        probs: dict[str, float] = {}
        for pair in pairs:
            if len(pair) != 2:
                raise ConfigError(f"{key}: expected (name, probability) pairs, got {pair!r}")
            name, p = pair
            if name not in KERNEL_TYPES:
                raise ConfigError(f"{key}: unknown kernel type {name!r}; choose from {', '.join(KERNEL_TYPES)}")
            if name in probs:
                raise ConfigError(f"{key}: kernel type {name!r} is given twice")
            probs[name] = _number(p, f"{key}.{name}", unit=True)
        if sum(probs.values()) <= 0:
            raise ConfigError(f"{key}: the probabilities sum to 0; give at least one positive probability")
        set_(self, "kernel_probs", tuple((n, probs[n]) for n in KERNEL_TYPES if n in probs))
        for name in ("sigma", "beta_generalized", "beta_plateau"):
            set_(self, name, _range(getattr(self, name), f"{prefix}.{name}"))
        set_(self, "sinc_prob", _number(self.sinc_prob, f"{prefix}.sinc_prob", unit=True))


def _check_generator(generator: Any) -> torch.Generator:
    if not isinstance(generator, torch.Generator):
        raise ConfigError(f"generator: expected a torch.Generator, got {type(generator).__name__}")
    return generator


def _uniform(generator: torch.Generator, low: float, high: float) -> float:
    u = torch.rand((), generator=generator, dtype=torch.float64, device=generator.device).item()
    return low + (high - low) * u


def _choice(generator: torch.Generator, n: int) -> int:
    return int(torch.randint(n, (), generator=generator, device=generator.device).item())


def _default_cutoff_range(size: int) -> tuple[float, float]:
    return (math.pi / 3, math.pi) if size < 13 else (math.pi / 5, math.pi)


def kernel_from_record(record: Mapping[str, Any]) -> torch.Tensor:
    """Rebuild the float32 kernel that :func:`sample_kernel` / :func:`sample_sinc` returned with ``record``.

    Args:
        record: ``{"kernel": "sinc", "size", "cutoff"}`` or ``{"kernel": <one of KERNEL_TYPES>, "size",
            "sigma_x", "sigma_y", "theta"}`` plus ``"beta"`` for the generalized and plateau types.

    Returns:
        ``(size, size)`` float32 tensor, bit-identical to the sampled one.

    Raises:
        ConfigError: unknown kernel name, missing key or bad value.

    Reference: Real-ESRGAN: Wang et al., ICCVW 2021.
    """
    if not isinstance(record, Mapping):
        raise ConfigError(f"record: expected a mapping, got {type(record).__name__}")
    kind = record.get("kernel")
    try:
        if kind == "sinc":
            return sinc_kernel(record["size"], record["cutoff"])
        if kind not in KERNEL_TYPES:
            raise ConfigError(f"record.kernel: unknown kernel {kind!r}; choose from sinc, {', '.join(KERNEL_TYPES)}")
        args = (record["size"], record["sigma_x"], record["sigma_y"], record["theta"])
        if kind.startswith("generalized"):
            return generalized_gaussian_kernel(*args, beta=record["beta"])
        if kind.startswith("plateau"):
            return plateau_kernel(*args, beta=record["beta"])
        return gaussian_kernel(*args)
    except KeyError as exc:
        raise ConfigError(f"record.{exc.args[0]}: missing for a {kind!r} kernel") from None


def sample_kernel(settings: BlurSettings, generator: torch.Generator) -> tuple[torch.Tensor, dict[str, Any]]:
    """Draw one random blur kernel as in Real-ESRGAN's first-order degradation.

    Size uniform over ``settings.kernel_sizes``; with probability ``settings.sinc_prob`` a sinc kernel
    with cut-off uniform in ``[pi/3, pi]`` (size < 13) or ``[pi/5, pi]`` (size >= 13); otherwise a type
    drawn from ``settings.kernel_probs``. Isotropic types draw one sigma (``sigma_y = sigma_x``,
    ``theta = 0``); anisotropic ones draw ``sigma_x`` and ``sigma_y`` independently from ``settings.sigma``
    and ``theta`` uniform in ``[-pi, pi]``; ``beta`` comes from the type's beta range.
    All randomness comes from ``generator`` (its device is used for the draws).

    Returns:
        ``(kernel, record)``: a ``(k, k)`` float32 kernel summing to 1, and a dict of plain python
        values (exact, unrounded) that :func:`kernel_from_record` turns back into the same kernel:
        ``kernel`` (type name or ``"sinc"``), ``size``, then ``cutoff`` for sinc, else ``sigma_x``,
        ``sigma_y``, ``theta`` and, for generalized/plateau types, ``beta``.

    Raises:
        ConfigError: ``settings`` is not a BlurSettings or ``generator`` is not a torch.Generator.

    Reference: Real-ESRGAN: Wang et al., ICCVW 2021; BSRGAN: Zhang et al., ICCV 2021.
    """
    record = draw_kernel_record(settings, generator)
    return kernel_from_record(record), record


def draw_kernel_record(settings: BlurSettings, generator: torch.Generator) -> dict[str, Any]:
    """The record :func:`sample_kernel` draws (the same draws from ``generator``), without building the kernel."""
    if not isinstance(settings, BlurSettings):
        raise ConfigError(f"settings: expected BlurSettings, got {type(settings).__name__}")
    g = _check_generator(generator)
    size = settings.kernel_sizes[_choice(g, len(settings.kernel_sizes))]
    if _uniform(g, 0.0, 1.0) < settings.sinc_prob:
        return {"kernel": "sinc", "size": size, "cutoff": _uniform(g, *_default_cutoff_range(size))}
    pairs = settings.kernel_probs
    if isinstance(pairs, Mapping):  # check() stores pairs; a mapping would iterate over its names only
        pairs = tuple(pairs.items())
    names = [n for n, _ in pairs]
    weights = [p for _, p in pairs]
    u = _uniform(g, 0.0, sum(weights))
    acc = 0.0
    for name, p in zip(names, weights, strict=True):
        acc += p
        if p > 0 and u < acc:
            kind = name
            break
    else:  # float round-off at the top end: take the last type with positive weight
        kind = next(n for n, p in zip(reversed(names), reversed(weights), strict=True) if p > 0)
    sigma_x = _uniform(g, *settings.sigma)
    if kind.endswith("aniso"):
        sigma_y = _uniform(g, *settings.sigma)
        theta = _uniform(g, -math.pi, math.pi)
    else:
        sigma_y, theta = sigma_x, 0.0
    record: dict[str, Any] = {"kernel": kind, "size": size, "sigma_x": sigma_x, "sigma_y": sigma_y, "theta": theta}
    if kind.startswith("generalized"):
        record["beta"] = _uniform(g, *settings.beta_generalized)
    elif kind.startswith("plateau"):
        record["beta"] = _uniform(g, *settings.beta_plateau)
    return record


def sample_sinc(
    sizes: tuple[int, ...], generator: torch.Generator, cutoff_range: tuple[float, float] | None = None
) -> tuple[torch.Tensor, dict[str, Any]]:
    """Draw the final-stage sinc kernel of Real-ESRGAN (applied before or after the last resize).

    Args:
        sizes: candidate odd kernel sizes in 3..41, drawn uniformly.
        generator: source of all randomness.
        cutoff_range: ``(low, high)`` cut-off range in radians per pixel, ``0 < low <= high <= pi``;
            ``None`` uses ``[pi/3, pi]`` for size < 13 and ``[pi/5, pi]`` otherwise.

    Returns:
        ``(kernel, record)`` with a ``(k, k)`` float32 kernel summing to 1 and
        ``{"kernel": "sinc", "size": k, "cutoff": float}``.

    Raises:
        ConfigError: bad sizes, cut-off range or generator.

    Reference: Real-ESRGAN: Wang et al., ICCVW 2021.
    """
    record = draw_sinc_record(sizes, generator, cutoff_range)
    return kernel_from_record(record), record


def draw_sinc_record(
    sizes: tuple[int, ...], generator: torch.Generator, cutoff_range: tuple[float, float] | None = None
) -> dict[str, Any]:
    """The record :func:`sample_sinc` draws (the same draws from ``generator``), without building the kernel."""
    sizes = _sizes(sizes, "sinc.kernel_sizes")
    if cutoff_range is not None:
        cutoff_range = _range(cutoff_range, "sinc.cutoff_range")
        if cutoff_range[1] > math.pi:
            raise ConfigError(f"sinc.cutoff_range: {cutoff_range!r} goes above pi; cut-offs are in (0, pi]")
    g = _check_generator(generator)
    size = sizes[_choice(g, len(sizes))]
    low, high = cutoff_range if cutoff_range is not None else _default_cutoff_range(size)
    return {"kernel": "sinc", "size": size, "cutoff": _uniform(g, low, high)}


def blur(images: torch.Tensor, kernel: torch.Tensor) -> torch.Tensor:
    """Convolve a batch of images with one kernel, or with one kernel per image.

    Borders are reflected by ``k // 2`` pixels (edge-replicated when ``H`` or ``W`` is not larger than
    ``k // 2``, where reflection is impossible). The convolution is depthwise (grouped), runs on the
    images' device and is differentiable with respect to both inputs. It is a true convolution (the
    kernel is flipped), which equals correlation for the point-symmetric kernels of this module.

    Args:
        images: ``(B, C, H, W)`` floating tensor, any range and device.
        kernel: ``(k, k)`` kernel for every image, or ``(B, k, k)`` one per image; ``k`` odd. It is
            moved to the images' device and dtype and is not renormalised.

    Returns:
        ``(B, C, H, W)`` tensor with the images' dtype and device.

    Raises:
        ShapeError: images not 4-D floating or empty, kernel not ``(k, k)`` / ``(B, k, k)`` with odd ``k``.

    Reference: Real-ESRGAN: Wang et al., ICCVW 2021; BSRGAN: Zhang et al., ICCV 2021.
    """
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ShapeError(f"images must be a (B, C, H, W) tensor, got {getattr(images, 'shape', type(images))}")
    if not images.is_floating_point():
        raise ShapeError(f"images must be floating point, got {images.dtype}")
    b, c, h, w = images.shape
    if c == 0 or h == 0 or w == 0:
        raise ShapeError(f"images must not be empty, got shape {tuple(images.shape)}")
    if not isinstance(kernel, torch.Tensor) or kernel.ndim not in (2, 3):
        raise ShapeError(f"kernel must be (k, k) or (B, k, k), got {getattr(kernel, 'shape', type(kernel))}")
    k = kernel.shape[-1]
    if kernel.shape[-2] != k or k % 2 == 0:
        raise ShapeError(f"kernel must be square with an odd side, got {tuple(kernel.shape)}")
    if kernel.ndim == 3 and kernel.shape[0] != b:
        raise ShapeError(f"per-image kernels {tuple(kernel.shape)} do not match the batch size {b}")
    if b == 0:
        return images.clone()
    weight = kernel.to(device=images.device, dtype=images.dtype).flip(-2, -1)
    p = k // 2
    mode = "reflect" if min(h, w) > p else "replicate"
    padded = F.pad(images, (p, p, p, p), mode=mode) if p > 0 else images
    if weight.ndim == 2:
        return F.conv2d(padded, weight.expand(c, 1, k, k), groups=c)
    weight = weight[:, None].expand(b, c, k, k).reshape(b * c, 1, k, k)
    out = F.conv2d(padded.reshape(1, b * c, h + 2 * p, w + 2 * p), weight, groups=b * c)
    return out.reshape(b, c, h, w)
