"""MATLAB-exact ``imresize`` for numpy arrays and torch tensors.

The resize is separable: for each image axis a table of source ``indices`` and ``weights``
(both of shape ``(out_len, P)``) is built exactly the way MATLAB's ``imresize`` builds its
"contributions", and the axis is resampled as a gather followed by a weighted sum over the
``P`` taps. No dense ``(out_len, in_len)`` matrix is ever formed, so very wide images are cheap.

Two boundary/rounding conventions are available:

``"modern"``
    Current MATLAB: out-of-range taps are folded back by a symmetric mirror
    (``aux = [1:n, n:-1:1]``), everything is computed in double precision and integer
    images are rounded (half away from zero) and clipped once, at the very end.
``"legacy"``
    Older MATLAB ("replicate end-points"): out-of-range taps are clamped to the edge pixel,
    and for integer input every 1-D pass is rounded and clipped to the integer type, because
    MATLAB kept the intermediate image in that type. This is how the classic
    Set5/Set14/B100 ``LR_bicubic`` benchmark images were made.

Reference: MATLAB ``imresize`` documentation (Image Processing Toolbox, MathWorks);
R. Keys, "Cubic convolution interpolation for digital image processing",
IEEE Trans. Acoustics, Speech and Signal Processing 29(6), 1981.
"""

from __future__ import annotations

import math
from functools import lru_cache
from typing import Callable, Sequence

import numpy as np
import torch
from torch import nn

from srkit.errors import ConfigError, ShapeError

__all__ = ["imresize_matlab", "resize_kernel_names", "resize_contributions", "upscale_cubic", "MatlabResize"]


# --------------------------------------------------------------------------------------
# Kernels (written after the definitions in MATLAB's imresize documentation).
# Each takes a float64 array of distances and returns float64 weights.
# --------------------------------------------------------------------------------------


def _cubic(x: np.ndarray) -> np.ndarray:
    # Keys (1981) cubic convolution kernel with a = -0.5.
    absx = np.abs(x)
    absx2 = absx * absx
    absx3 = absx2 * absx
    inner = (1.5 * absx3 - 2.5 * absx2 + 1.0) * (absx <= 1.0)
    outer = (-0.5 * absx3 + 2.5 * absx2 - 4.0 * absx + 2.0) * ((absx > 1.0) & (absx <= 2.0))
    return inner + outer


def _box(x: np.ndarray) -> np.ndarray:
    return ((x >= -0.5) & (x < 0.5)).astype(np.float64)


def _triangle(x: np.ndarray) -> np.ndarray:
    left = (x + 1.0) * ((x >= -1.0) & (x < 0.0))
    right = (1.0 - x) * ((x >= 0.0) & (x <= 1.0))
    return left + right


def _lanczos(a: int) -> Callable[[np.ndarray], np.ndarray]:
    eps = np.finfo(np.float64).eps

    def kernel(x: np.ndarray) -> np.ndarray:
        # MATLAB adds eps to numerator and denominator so that x = 0 gives 1 without a 0/0.
        px = np.pi * x
        num = np.sin(px) * np.sin(px / a) + eps
        den = (np.pi * np.pi * x * x) / a + eps
        return (num / den) * (np.abs(x) < a)

    return kernel


# name -> (kernel function, support width, antialiasing allowed)
_KERNELS: dict[str, tuple[Callable[[np.ndarray], np.ndarray], float, bool]] = {
    "cubic": (_cubic, 4.0, True),
    "lanczos2": (_lanczos(2), 4.0, True),
    "lanczos3": (_lanczos(3), 6.0, True),
    "linear": (_triangle, 2.0, True),
    "triangle": (_triangle, 2.0, True),
    "box": (_box, 1.0, True),
    # MATLAB's 'nearest' is the box kernel with antialiasing switched off.
    "nearest": (_box, 1.0, False),
}

_ALIASES = {"bicubic": "cubic", "bilinear": "linear"}

_CONVENTIONS = ("modern", "legacy")


def resize_kernel_names() -> tuple[str, ...]:
    """Names accepted by ``imresize_matlab(kernel=...)``.

    Returns:
        A tuple of kernel names: ``cubic`` (Keys, a = -0.5), ``lanczos2``, ``lanczos3``,
        ``linear``/``triangle``, ``box`` and ``nearest``. ``bicubic`` and ``bilinear`` are
        also accepted as aliases of ``cubic`` and ``linear``.
    """
    return tuple(_KERNELS)


def _check_kernel(kernel: str) -> str:
    if not isinstance(kernel, str):
        raise ConfigError(f"kernel must be a string, got {type(kernel).__name__}")
    name = kernel.strip().lower()
    name = _ALIASES.get(name, name)
    if name not in _KERNELS:
        raise ConfigError(f"unknown resize kernel {kernel!r}; choose one of {', '.join(_KERNELS)}")
    return name


def _check_convention(convention: str) -> str:
    if not isinstance(convention, str) or convention.strip().lower() not in _CONVENTIONS:
        raise ConfigError(f"unknown resize convention {convention!r}; choose 'modern' or 'legacy'")
    return convention.strip().lower()


# --------------------------------------------------------------------------------------
# Contributions (indices and weights) for one axis.
# --------------------------------------------------------------------------------------


def _map_boundary(pos: np.ndarray, in_len: int, convention: str) -> np.ndarray:
    """0-based source positions (any integers) -> indices inside the axis: MATLAB's symmetric mirror (modern,
    edge repeated) or an edge clamp (legacy)."""
    if convention == "modern":
        aux = np.concatenate([np.arange(in_len), np.arange(in_len - 1, -1, -1)])
        return aux[np.mod(pos, 2 * in_len)]
    return np.clip(pos, 0, in_len - 1)


@lru_cache(maxsize=256)
def _contributions_cached(
    in_len: int, out_len: int, scale: float, kernel: str, antialias: bool, convention: str
) -> tuple[np.ndarray, np.ndarray]:
    func, width, kernel_allows_aa = _KERNELS[kernel]
    h: Callable[[np.ndarray], np.ndarray] = func
    if scale < 1.0 and antialias and kernel_allows_aa:
        # Stretch the kernel to low-pass filter while shrinking: h(x) = scale * k(scale * x).
        def stretched(x: np.ndarray) -> np.ndarray:
            return scale * func(scale * x)

        h = stretched
        width = width / scale

    # 1-based output coordinates mapped into 1-based input coordinates (pixel centres aligned).
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1.0 - 1.0 / scale)
    left = np.floor(u - width / 2.0)
    taps = int(math.ceil(width)) + 2
    indices = left[:, None] + np.arange(taps, dtype=np.float64)[None, :]
    weights = h(u[:, None] - indices)

    # Normalise each row to sum 1 (sequential sum, like a plain loop over the taps).
    total = weights[:, 0].copy()
    for j in range(1, taps):
        total += weights[:, j]
    weights = weights / total[:, None]

    idx = _map_boundary(indices.astype(np.int64) - 1, in_len, convention)

    # MATLAB drops tap columns whose weights are all zero.
    keep = np.any(weights != 0, axis=0)
    if not keep.all():
        weights = weights[:, keep]
        idx = idx[:, keep]

    idx = np.ascontiguousarray(idx, dtype=np.int64)
    weights = np.ascontiguousarray(weights, dtype=np.float64)
    idx.setflags(write=False)
    weights.setflags(write=False)
    return idx, weights


def resize_contributions(
    in_len: int,
    out_len: int,
    scale: float,
    kernel: str = "cubic",
    antialias: bool = True,
    convention: str = "modern",
) -> tuple[np.ndarray, np.ndarray]:
    """Source indices and weights that resample one axis the way MATLAB ``imresize`` does.

    Args:
        in_len: input length of the axis (>= 1).
        out_len: output length of the axis (>= 1).
        scale: scale factor of the axis (> 0); MATLAB uses ``out_len / in_len`` when an output
            size is given instead of a scale.
        kernel: one of :func:`resize_kernel_names`.
        antialias: stretch the kernel by ``1 / scale`` when ``scale < 1`` (ignored for ``nearest``).
        convention: ``"modern"`` (symmetric mirror at the borders) or ``"legacy"`` (edge clamp).

    Returns:
        ``(indices, weights)``: read-only arrays of shape ``(out_len, P)``, ``int64`` 0-based
        indices into the input axis (boundary handling already folded in) and ``float64``
        weights whose rows sum to 1. Output ``i`` is ``sum_p weights[i, p] * in[indices[i, p]]``.
        Results are cached.

    Reference: MATLAB ``imresize`` documentation; Keys (1981), "Cubic convolution
    interpolation for digital image processing".
    """
    kernel = _check_kernel(kernel)
    convention = _check_convention(convention)
    in_len, out_len = int(in_len), int(out_len)
    if in_len < 1 or out_len < 1:
        raise ShapeError(f"axis lengths must be >= 1, got in_len={in_len}, out_len={out_len}")
    scale = _check_scale_value(scale)
    return _contributions_cached(in_len, out_len, scale, kernel, bool(antialias), convention)


# --------------------------------------------------------------------------------------
# Argument handling
# --------------------------------------------------------------------------------------


def _check_scale_value(value: object) -> float:
    if isinstance(value, (bool, np.bool_, str, bytes)):
        raise ConfigError(f"scale must be a positive number, got {value!r}")
    try:
        s = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        raise ConfigError(f"scale must be a positive number, got {value!r}") from None
    if not math.isfinite(s) or s <= 0.0:
        raise ConfigError(f"scale must be a positive finite number, got {value!r}")
    return s


def _resolve_geometry(
    in_hw: tuple[int, int],
    scale: float | Sequence[float] | None,
    output_shape: Sequence[int] | None,
) -> tuple[tuple[float, float], tuple[int, int]]:
    """Return per-axis ``(scale_h, scale_w)`` and ``(out_h, out_w)`` following MATLAB's rules."""
    if scale is None and output_shape is None:
        raise ConfigError("give either scale or output_shape")
    if scale is not None and output_shape is not None:
        raise ConfigError("give either scale or output_shape, not both")
    if scale is not None:
        if isinstance(scale, (tuple, list, np.ndarray)):
            if len(scale) != 2:
                raise ConfigError(f"scale must be a number or a (scale_h, scale_w) pair, got {scale!r}")
            scales = (_check_scale_value(scale[0]), _check_scale_value(scale[1]))
        else:
            s = _check_scale_value(scale)
            scales = (s, s)
        # MATLAB: output size = ceil(scale * input size).
        out = (int(math.ceil(scales[0] * in_hw[0])), int(math.ceil(scales[1] * in_hw[1])))
        return scales, out
    if not isinstance(output_shape, (tuple, list)) or len(output_shape) != 2:
        raise ConfigError(f"output_shape must be an (out_h, out_w) pair, got {output_shape!r}")
    out_hw = []
    for v in output_shape:
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
            raise ConfigError(f"output_shape entries must be integers >= 1, got {output_shape!r}")
        out_hw.append(int(v))
    out = (out_hw[0], out_hw[1])
    # MATLAB: scale = output size / input size when only the size is given.
    scales = (out[0] / in_hw[0], out[1] / in_hw[1])
    return scales, out


def _axis_order(scales: tuple[float, float]) -> tuple[int, int]:
    # MATLAB resizes the axis with the smaller scale first (stable sort: rows first on ties).
    return (0, 1) if scales[0] <= scales[1] else (1, 0)


def _round_half_away(x: np.ndarray) -> np.ndarray:
    a = np.abs(x)
    f = np.floor(a)
    r = f + ((a - f) >= 0.5)
    return np.copysign(r, x)


# --------------------------------------------------------------------------------------
# numpy path
# --------------------------------------------------------------------------------------


def _resize_axis_numpy(x: np.ndarray, axis: int, idx: np.ndarray, w: np.ndarray) -> np.ndarray:
    """Resample float64 ``x`` along ``axis`` with a tap loop (gather rows, multiply, accumulate)."""
    moved = np.moveaxis(x, axis, 0)
    rest = moved.shape[1:]
    flat = np.ascontiguousarray(moved).reshape(moved.shape[0], -1)
    out_len, taps = idx.shape
    out = np.empty((out_len, flat.shape[1]), dtype=np.float64)
    tmp = np.empty_like(out)
    np.multiply(np.take(flat, idx[:, 0], axis=0), w[:, 0:1], out=out)
    for p in range(1, taps):
        np.take(flat, idx[:, p], axis=0, out=tmp)
        tmp *= w[:, p : p + 1]
        out += tmp
    return np.moveaxis(out.reshape((out_len, *rest)), 0, axis)


def _imresize_numpy(
    image: np.ndarray,
    scale: float | Sequence[float] | None,
    output_shape: Sequence[int] | None,
    kernel: str,
    antialias: bool,
    convention: str,
) -> np.ndarray:
    if image.ndim not in (2, 3):
        raise ShapeError(f"numpy image must be (H, W) or (H, W, C), got shape {image.shape}")
    dtype = image.dtype
    if dtype == np.uint8 or dtype == np.uint16:
        is_int = True
        info = np.iinfo(dtype)
        lo, hi = float(info.min), float(info.max)
    elif np.issubdtype(dtype, np.floating):
        is_int = False
        lo = hi = 0.0
    else:
        raise ShapeError(f"numpy image dtype must be uint8, uint16 or floating, got {dtype}")
    h, w = image.shape[:2]
    if h < 1 or w < 1 or (image.ndim == 3 and image.shape[2] < 1):
        raise ShapeError(f"image must not be empty, got shape {image.shape}")
    scales, out_hw = _resolve_geometry((h, w), scale, output_shape)

    x = image.astype(np.float64)
    if is_int and convention == "modern":
        # Modern pipelines run im2double -> imresize -> im2uint8: resizing the [0, 1] values (not 0..255) gives
        # the same float rounding as MATLAB on the reference images (21 of 24 exact instead of 17).
        x /= hi
    for axis in _axis_order(scales):
        idx, wts = _contributions_cached(
            image.shape[axis], out_hw[axis], scales[axis], kernel, antialias, convention
        )
        x = _resize_axis_numpy(x, axis, idx, wts)
        if is_int and convention == "legacy":
            # Old MATLAB kept the intermediate in the integer type: round and clip every pass.
            x = np.clip(_round_half_away(x), lo, hi)
    if is_int:
        if convention == "modern":
            x = np.clip(_round_half_away(x * hi), lo, hi)
        return x.astype(dtype)
    return x.astype(dtype, copy=False)


# --------------------------------------------------------------------------------------
# torch path
# --------------------------------------------------------------------------------------


def _resize_axis_torch(x: torch.Tensor, dim: int, idx: np.ndarray, w: np.ndarray) -> torch.Tensor:
    out_len, taps = idx.shape
    device, dtype = x.device, x.dtype
    idx_t = torch.tensor(idx.reshape(-1), dtype=torch.long, device=device)
    w_t = torch.tensor(w, dtype=dtype, device=device)  # (out_len, P)
    gathered = x.index_select(dim, idx_t)  # (..., out_len * P, ...)
    shape = list(x.shape)
    shape[dim : dim + 1] = [out_len, taps]
    gathered = gathered.view(shape)
    # Broadcast weights (out_len, P) against the gathered (..., out_len, P, ...) block.
    w_shape = [1] * len(shape)
    w_shape[dim] = out_len
    w_shape[dim + 1] = taps
    return (gathered * w_t.view(w_shape)).sum(dim=dim + 1)


@lru_cache(maxsize=256)
def _integer_upscale_phases(
    in_len: int, s: int, kernel: str, convention: str
) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """For an integer upscale by `s`: per-phase tap offsets (s, P) and weights (s, P) such that output
    ``s*i + p`` is ``sum_t w[p, t] * ext[i + off[p, t]]``, plus the boundary-mapped source index of the extended
    axis ``ext`` (positions ``min(off) .. in_len - 1 + max(off)``). None when the contributions are not periodic
    (they always are for integer scales; checked, so the fast path can never silently differ)."""
    out_len = s * in_len
    idx, wts = _contributions_cached(in_len, out_len, float(s), kernel, True, convention)
    lo_pad = s * 3  # enough for every kernel here (support <= 3 px on each side)
    big = in_len + 2 * lo_pad + 8
    # Contributions of a long axis: its interior rows are free of boundary effects, so their relative offsets
    # are the unclamped pattern.
    bidx, bw = _contributions_cached(big, s * big, float(s), kernel, True, convention)
    ref = s * (big // 2)
    i_ref = big // 2
    off = bidx[ref : ref + s] - i_ref
    w = bw[ref : ref + s]
    if bw.shape[1] != wts.shape[1]:
        return None
    # Verify against the true contributions of this axis (weights and boundary-mapped indices).
    i = np.arange(out_len) // s
    p = np.arange(out_len) % s
    pos = i[:, None] + off[p]  # unclamped source positions
    if not (np.array_equal(_map_boundary(pos, in_len, convention), idx) and np.array_equal(w[p], wts)):
        return None
    ext_src = _map_boundary(np.arange(int(off.min()), in_len + int(off.max())), in_len, convention)
    return off - int(off.min()), w, ext_src


def _upscale_axis_torch(x: torch.Tensor, dim: int, phases: tuple[np.ndarray, np.ndarray, np.ndarray]) -> torch.Tensor:
    """Integer upscale of one axis as `s` polyphase filters over shifted slices (no per-output gather): the same
    taps and weights as `_resize_axis_torch`, ~5x faster on the CPU."""
    off, w, ext_src = phases
    s, taps = w.shape
    n = x.shape[dim]
    xe = x.index_select(dim, torch.as_tensor(ext_src, device=x.device))
    outs = []
    for p in range(s):
        acc = None
        for t in range(taps):
            if w[p, t] == 0:
                continue
            term = xe.narrow(dim, int(off[p, t]), n) * float(w[p, t])
            acc = term if acc is None else acc.add_(term)
        outs.append(acc if acc is not None else torch.zeros_like(x))
    shape = list(x.shape)
    shape[dim] = n * s
    return torch.stack(outs, dim=dim + 1).reshape(shape)


# Periodic taps per integer scale (None: not periodic), filled on first use by `_periodic_cubic_taps`.
_PERIODIC_TAPS: dict[int, tuple[int, int, tuple[tuple[tuple[int, float], ...], ...]] | None] = {}
# Shortest axis the mirror extension of `upscale_cubic` reproduces exactly (tested from here up).
_MIN_PERIODIC_LEN = 2


@torch.compiler.assume_constant_result
def _periodic_cubic_taps(s: int) -> tuple[int, int, tuple[tuple[tuple[int, float], ...], ...]] | None:
    """``(lo, hi, taps)`` of the modern MATLAB cubic upscale by the integer `s`, as `s` polyphase filters over the
    axis extended by a symmetric mirror of `lo` pixels before it and `hi` after it: output ``s*i + p`` is
    ``sum(w * ext[i + o] for o, w in taps[p])``. None when MATLAB's contributions are not periodic (scales that
    are not powers of two: their coordinates are not exact in float64). Plain Python numbers, computed once per
    scale, so that torch.compile takes them as constants (`assume_constant_result`) instead of tracing numpy."""
    if s in _PERIODIC_TAPS:
        return _PERIODIC_TAPS[s]
    spec = None
    n = 64
    phases = _integer_upscale_phases(n, s, "cubic", "modern")
    if phases is not None:
        off, w, ext_src = phases
        for lo in range(0, 4):
            hi = len(ext_src) - n - lo
            if (0 <= hi <= 3 and np.array_equal(ext_src[:lo], np.arange(lo)[::-1])
                    and np.array_equal(ext_src[lo : lo + n], np.arange(n))
                    and np.array_equal(ext_src[lo + n :], np.arange(n - 1, n - 1 - hi, -1))):
                taps = tuple(tuple((int(off[p, t]), float(w[p, t])) for t in range(w.shape[1]) if w[p, t] != 0)
                             for p in range(s))
                spec = (lo, hi, taps)
                break
    _PERIODIC_TAPS[s] = spec
    return spec


def _mirror_extend(x: torch.Tensor, dim: int, lo: int, hi: int) -> torch.Tensor:
    """`x` with `lo` mirrored pixels before and `hi` after it along `dim`, edge pixel repeated (MATLAB's
    symmetric padding; needs ``x.shape[dim] >= max(lo, hi)``)."""
    n = x.shape[dim]
    parts = [x.narrow(dim, 0, lo).flip(dim)] if lo else []
    parts.append(x)
    if hi:
        parts.append(x.narrow(dim, n - hi, hi).flip(dim))
    return torch.cat(parts, dim) if len(parts) > 1 else x


@torch.compiler.disable
def _imresize_outside_graph(x: torch.Tensor, scale: int) -> torch.Tensor:
    # The general path builds its tables with numpy: under torch.compile it runs eagerly, between two graphs.
    return imresize_matlab(x, float(scale))


def upscale_cubic(x: torch.Tensor, scale: int) -> torch.Tensor:
    """MATLAB bicubic upscale of a float tensor (..., H, W) by an integer `scale`: the same values as
    ``imresize_matlab(x, scale)``, bit for bit, in the same dtype.

    For scales 2, 4, 8 (periodic contributions) it is written with slices, a mirror padding and Python
    constants only, so that `torch.compile` traces it into the graph (and fuses it with what surrounds it);
    other scales and axes shorter than 2 pixels go through `imresize_matlab` (outside the graph when compiled).
    """
    spec = _periodic_cubic_taps(int(scale))
    if spec is None or x.dim() < 2 or min(x.shape[-2], x.shape[-1]) < _MIN_PERIODIC_LEN:
        return _imresize_outside_graph(x, int(scale))
    lo, hi, taps = spec
    y = x.float() if x.dtype in (torch.float16, torch.bfloat16) else x
    for dim in (y.dim() - 2, y.dim() - 1):  # rows first, as MATLAB on equal scales
        n = y.shape[dim]
        ext = _mirror_extend(y, dim, lo, hi)
        outs = []
        for phase in taps:
            acc = None
            for o, wt in phase:
                term = ext.narrow(dim, o, n) * wt
                acc = term if acc is None else acc.add_(term)
            assert acc is not None
            outs.append(acc)
        shape = list(y.shape)
        shape[dim] = n * int(scale)
        y = torch.stack(outs, dim=dim + 1).reshape(shape)
    return y.to(x.dtype)


def _imresize_torch(
    image: torch.Tensor,
    scale: float | Sequence[float] | None,
    output_shape: Sequence[int] | None,
    kernel: str,
    antialias: bool,
    convention: str,
) -> torch.Tensor:
    if image.dim() < 2:
        raise ShapeError(f"tensor must have shape (..., H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise ShapeError(f"tensor dtype must be floating point, got {image.dtype}; convert first")
    h, w = int(image.shape[-2]), int(image.shape[-1])
    if h < 1 or w < 1:
        raise ShapeError(f"image must not be empty, got shape {tuple(image.shape)}")
    scales, out_hw = _resolve_geometry((h, w), scale, output_shape)

    orig_dtype = image.dtype
    x = image
    if orig_dtype in (torch.float16, torch.bfloat16):
        x = x.float()  # accumulate half-precision input in float32
    nd = x.dim()
    for axis in _axis_order(scales):
        dim = nd - 2 + axis
        in_len = h if axis == 0 else w
        sc = scales[axis]
        if sc > 1 and float(sc).is_integer() and out_hw[axis] == int(sc) * in_len:
            phases = _integer_upscale_phases(in_len, int(sc), kernel, convention)
            if phases is not None:
                x = _upscale_axis_torch(x, dim, phases)
                continue
        idx, wts = _contributions_cached(in_len, out_hw[axis], scales[axis], kernel, antialias, convention)
        x = _resize_axis_torch(x, dim, idx, wts)
    return x.to(orig_dtype)


# --------------------------------------------------------------------------------------
# Public API
# --------------------------------------------------------------------------------------


def imresize_matlab(
    image,
    scale: float | tuple[float, float] | None = None,
    *,
    output_shape: tuple[int, int] | None = None,
    kernel: str = "cubic",
    antialias: bool = True,
    convention: str = "modern",
):
    """Resize an image exactly like MATLAB ``imresize``.

    Args:
        image: a numpy array of shape ``(H, W)`` or ``(H, W, C)`` with dtype ``uint8``,
            ``uint16`` or floating point, or a floating-point torch tensor of shape
            ``(..., H, W)`` (any number of leading dims, any device). Values are not
            range-checked; float inputs may use any range (e.g. [0, 1] or [0, 255]).
        scale: a positive factor, or a ``(scale_h, scale_w)`` pair. The output size is
            ``ceil(scale * input size)`` per axis (MATLAB's rule). Exclusive with ``output_shape``.
        output_shape: ``(out_h, out_w)``; the per-axis scale is then ``out / in``.
        kernel: ``cubic`` (Keys, a = -0.5), ``lanczos2``, ``lanczos3``, ``linear``/``triangle``,
            ``box`` or ``nearest`` (box kernel, never antialiased); see :func:`resize_kernel_names`.
        antialias: when shrinking, stretch the kernel by ``1 / scale`` (MATLAB's default).
        convention: ``"modern"`` - symmetric-mirror borders, double precision, integer input
            rounded (half away from zero) and clipped once at the end; ``"legacy"`` - edge
            pixels replicated and integer input rounded and clipped after each 1-D pass
            (reproduces the classic Set5/Set14/B100 bicubic LR images bit for bit).

    Returns:
        numpy input: an array of shape ``(out_h, out_w[, C])`` with the input dtype. ``uint8`` /
        ``uint16`` results are rounded and clipped to the dtype range; float results are computed
        in float64, cast back to the input dtype and NOT clipped (cubic/lanczos overshoot).
        torch input: a tensor of shape ``(..., out_h, out_w)`` with the input dtype and device,
        computed in the input dtype (float16/bfloat16 are accumulated in float32) and
        differentiable with respect to the input.

    The axis with the smaller scale is resized first (rows first on ties), as MATLAB does.

    Raises:
        ShapeError: unsupported shape or dtype (e.g. 4-D numpy array, integer tensor).
        ConfigError: bad scale/output_shape, unknown kernel or convention.

    Reference: MATLAB ``imresize`` documentation (Image Processing Toolbox, MathWorks);
    R. Keys, "Cubic convolution interpolation for digital image processing", IEEE TASSP 1981.
    """
    kernel = _check_kernel(kernel)
    convention = _check_convention(convention)
    antialias = bool(antialias)
    if isinstance(image, torch.Tensor):
        return _imresize_torch(image, scale, output_shape, kernel, antialias, convention)
    if isinstance(image, np.ndarray):
        return _imresize_numpy(image, scale, output_shape, kernel, antialias, convention)
    raise ShapeError(f"image must be a numpy array or a torch tensor, got {type(image).__name__}")


class MatlabResize(nn.Module):
    """``nn.Module`` wrapper of :func:`imresize_matlab` for batches.

    Args:
        scale: positive factor or ``(scale_h, scale_w)`` pair; output size is ``ceil(scale * in)``.
        kernel, antialias, convention: as in :func:`imresize_matlab`.

    ``forward(x)`` takes a floating-point tensor ``(B, C, H, W)`` (any range, any device) and
    returns ``(B, C, ceil(scale_h * H), ceil(scale_w * W))`` in the same dtype; it is
    differentiable with respect to ``x``. The module has no parameters.

    Reference: MATLAB ``imresize`` documentation; Keys (1981), "Cubic convolution
    interpolation for digital image processing".
    """

    def __init__(
        self,
        scale: float | tuple[float, float],
        kernel: str = "cubic",
        antialias: bool = True,
        convention: str = "modern",
    ) -> None:
        super().__init__()
        if scale is None:
            raise ConfigError("MatlabResize needs a scale")
        if isinstance(scale, (tuple, list)):
            if len(scale) != 2:
                raise ConfigError(f"scale must be a number or a (scale_h, scale_w) pair, got {scale!r}")
            self.scale: float | tuple[float, float] = (
                _check_scale_value(scale[0]),
                _check_scale_value(scale[1]),
            )
        else:
            self.scale = _check_scale_value(scale)
        self.kernel = _check_kernel(kernel)
        self.antialias = bool(antialias)
        self.convention = _check_convention(convention)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not isinstance(x, torch.Tensor) or x.dim() != 4:
            shape = tuple(x.shape) if hasattr(x, "shape") else type(x).__name__
            raise ShapeError(f"MatlabResize expects a (B, C, H, W) tensor, got {shape}")
        return imresize_matlab(
            x, self.scale, kernel=self.kernel, antialias=self.antialias, convention=self.convention
        )

    def extra_repr(self) -> str:
        return (
            f"scale={self.scale}, kernel={self.kernel!r}, antialias={self.antialias}, "
            f"convention={self.convention!r}"
        )
