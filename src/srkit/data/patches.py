"""Patch positions and geometric augmentation for training on (LR, HR) pairs.

Positions are ``(top, left)`` of the top-left pixel of a ``size x size`` window, always in the coordinates of
the image they are drawn on (the trainer draws on the LR image and multiplies by the scale for HR, so the two
patches cover exactly the same region). Randomness comes only from the ``numpy.random.Generator`` passed in.

* :func:`random_patch` - uniform over all valid positions.
* :func:`sliding_patches` - a deterministic grid covering the whole image.
* :func:`texture_energy` + :class:`ContentSampler` - positions drawn in proportion to the texture inside the
  window, with a uniform floor, so that flat sky and walls (which teach an SR network little) are drawn less
  often but still drawn.
* :func:`dihedral` / :func:`dihedral_inverse` - the 8 flips/rotations of the square (from `srkit.ops.dihedral`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from srkit.errors import ConfigError, ShapeError
from srkit.ops.dihedral import dihedral, dihedral_inverse

__all__ = [
    "ContentSampler",
    "dihedral",
    "dihedral_inverse",
    "random_patch",
    "sliding_patches",
    "texture_energy",
]

# BT.601 luma weights (the Y row of srkit.ops.color without the studio-swing scaling): texture is measured on
# luma because that is where SR detail (and PSNR-Y) lives; the constant scale does not matter for sampling.
_LUMA = np.array([0.299, 0.587, 0.114], dtype=np.float64)


def _check_size(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _check_fits(h: int, w: int, size: int) -> None:
    if size > h or size > w:
        raise ShapeError(f"a {size}x{size} patch does not fit in a {h}x{w} image")


def random_patch(rng: np.random.Generator, h: int, w: int, size: int) -> tuple[int, int]:
    """Uniformly random top-left corner of a ``size x size`` window inside an ``h x w`` image.

    Args:
        rng: the only source of randomness (two ``integers`` draws: top, then left).
        h, w: image height and width in pixels.
        size: patch side in pixels, ``1 <= size <= min(h, w)``.

    Returns:
        ``(top, left)`` with ``0 <= top <= h - size`` and ``0 <= left <= w - size``.

    Raises:
        ConfigError: ``size`` is not a positive integer.
        ShapeError: the patch does not fit.
    """
    size = _check_size("size", size)
    _check_fits(h, w, size)
    top = int(rng.integers(0, h - size + 1))
    left = int(rng.integers(0, w - size + 1))
    return top, left


def _axis_starts(length: int, size: int, stride: int) -> list[int]:
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        # One extra window flush with the border, so the last rows/columns are covered too.
        starts.append(length - size)
    return starts


def sliding_patches(h: int, w: int, size: int, stride: int) -> list[tuple[int, int]]:
    """Top-left corners of ``size x size`` windows on a ``stride`` grid covering an ``h x w`` image.

    Along each axis the windows start at ``0, stride, 2 * stride, ...``; when that grid does not end flush with
    the border, one more window at ``length - size`` is added (it overlaps its neighbour more than the rest).

    Args:
        h, w: image height and width in pixels.
        size: window side, ``1 <= size <= min(h, w)``.
        stride: step between windows, ``>= 1`` (``stride == size``: no overlap except at the border).

    Returns:
        ``[(top, left), ...]`` in row-major order (top-to-bottom, then left-to-right); every pixel lies in at
        least one window.

    Raises:
        ConfigError: ``size`` or ``stride`` is not a positive integer.
        ShapeError: the window does not fit.
    """
    size = _check_size("size", size)
    stride = _check_size("stride", stride)
    _check_fits(h, w, size)
    tops, lefts = _axis_starts(h, size, stride), _axis_starts(w, size, stride)
    return [(t, lft) for t in tops for lft in lefts]


def _box_mean(x: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 box with the window shrunk at the borders (no padding bias)."""
    h, w = x.shape
    s = np.zeros((h + 1, w + 1), dtype=np.float64)
    s[1:, 1:] = x.cumsum(0).cumsum(1)
    r0 = np.clip(np.arange(h) - radius, 0, h)
    r1 = np.clip(np.arange(h) + radius + 1, 0, h)
    c0 = np.clip(np.arange(w) - radius, 0, w)
    c1 = np.clip(np.arange(w) + radius + 1, 0, w)
    total = s[r1][:, c1] - s[r0][:, c1] - s[r1][:, c0] + s[r0][:, c0]
    area = (r1 - r0)[:, None] * (c1 - c0)[None, :]
    # Cancellation in the integral image leaves tiny negatives (~1e-13) in flat areas next to texture.
    return np.maximum(total / area, 0.0)


def texture_energy(image: np.ndarray, *, radius: int = 1) -> np.ndarray:
    """Local texture strength: Sobel gradient magnitude of the luma, box-averaged.

    Args:
        image: (H, W) gray or (H, W, C) with C = 1 (gray), 3 (RGB) or 2/4 (alpha, ignored); ``uint8``
            (0..255), ``uint16`` (0..65535) or float in [0, 1]. Any size >= 1 x 1.
        radius: the magnitude is averaged over a (2 * radius + 1)^2 box (0: no averaging), so a single
            noisy pixel does not make its whole neighbourhood look textured.

    Returns:
        float64 (H, W), >= 0, on the 0..255 luma scale (a vertical 0 -> 255 step gives 4 * 255 at the edge:
        Sobel's weights sum to 4). Borders are reflected (edge pixel repeated), so a flat image gives 0.

    Raises:
        ShapeError: not an image array.
    """
    a = np.asarray(image)
    if a.ndim == 3 and a.shape[2] in (2, 4):
        a = a[..., :-1]
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim not in (2, 3) or (a.ndim == 3 and a.shape[2] != 3) or a.size == 0:
        raise ShapeError(f"texture_energy expects an (H, W) or (H, W, 1|3) image, got shape {a.shape}")
    if a.dtype == np.uint8:
        x = a.astype(np.float64)
    elif a.dtype == np.uint16:
        x = a.astype(np.float64) / 257.0
    elif a.dtype.kind == "f":
        x = a.astype(np.float64) * 255.0
    else:
        raise ShapeError(f"texture_energy expects uint8, uint16 or float samples, got dtype {a.dtype}")
    luma = x @ _LUMA if x.ndim == 3 else x
    p = np.pad(luma, 1, mode="edge")
    # Separable Sobel: smooth [1, 2, 1] across the derivative direction, difference [-1, 0, 1] along it.
    sy = p[:-2] + 2.0 * p[1:-1] + p[2:]  # (H, W + 2), smoothed vertically
    gx = sy[:, 2:] - sy[:, :-2]
    sx = p[:, :-2] + 2.0 * p[:, 1:-1] + p[:, 2:]  # (H + 2, W), smoothed horizontally
    gy = sx[2:] - sx[:-2]
    mag = np.hypot(gx, gy)
    radius = _check_size("radius", radius, minimum=0)
    return _box_mean(mag, radius) if radius else mag


@dataclass(frozen=True, eq=False)
class ContentSampler:
    """Draws patch positions with probability growing with the texture energy inside the patch.

    Build it with :meth:`from_energy`. Windows are considered on a ``stride`` grid (plus the border-flush
    windows of :func:`sliding_patches`); window ``i`` gets probability

        ``p_i = (1 - mix) * E_i / sum_j E_j + mix / N``

    where ``E_i`` is the energy summed over the window (from an integral image, so building costs O(H * W))
    and ``N`` the number of windows. The ``mix`` floor keeps flat regions in the training distribution (the
    network must still learn not to add artefacts there). An all-flat image gives the uniform distribution.
    :meth:`sample` then jitters the chosen grid position by up to ``stride - 1`` pixels (clipped to the
    valid range), so every valid position can be drawn, not just the grid.

    Attributes:
        size: patch side (pixels of the energy map's image).
        stride: grid step.
        max_top, max_left: largest valid ``top`` / ``left`` (``H - size``, ``W - size``).
        positions: int64 (N, 2) grid ``(top, left)`` positions.
        probs: float64 (N,) probability of each grid position (sums to 1).
    """

    size: int
    stride: int
    max_top: int
    max_left: int
    positions: np.ndarray = field(repr=False)
    probs: np.ndarray = field(repr=False)
    _cdf: np.ndarray = field(repr=False)

    @classmethod
    def from_energy(
        cls, energy: np.ndarray, size: int, *, stride: int | None = None, mix: float = 0.2
    ) -> ContentSampler:
        """Precompute window probabilities from an energy map.

        Args:
            energy: (H, W) non-negative map, e.g. :func:`texture_energy` of the image patches are drawn from.
            size: patch side, ``1 <= size <= min(H, W)``.
            stride: grid step; default ``max(1, size // 4)`` (a quarter patch: fine enough to follow texture,
                coarse enough to keep the tables small: about ``16 * H * W / size^2`` entries).
            mix: weight of the uniform floor, in [0, 1] (1: uniform sampling, 0: purely energy-proportional).

        Raises:
            ConfigError: bad ``size``, ``stride`` or ``mix``.
            ShapeError: ``energy`` is not a finite, non-negative 2-D map, or the patch does not fit.
        """
        e = np.asarray(energy, dtype=np.float64)
        if e.ndim != 2:
            raise ShapeError(f"energy must be an (H, W) map, got shape {e.shape}")
        if not np.all(np.isfinite(e)) or (e.size and e.min() < 0):
            raise ShapeError("energy must be finite and non-negative")
        size = _check_size("size", size)
        stride = max(1, size // 4) if stride is None else _check_size("stride", stride)
        if not (isinstance(mix, (int, float)) and 0.0 <= float(mix) <= 1.0):
            raise ConfigError(f"mix must be a number in [0, 1], got {mix!r}")
        h, w = e.shape
        _check_fits(h, w, size)
        tops = np.asarray(_axis_starts(h, size, stride))
        lefts = np.asarray(_axis_starts(w, size, stride))
        s = np.zeros((h + 1, w + 1), dtype=np.float64)
        s[1:, 1:] = e.cumsum(0).cumsum(1)
        t0, t1 = tops[:, None], tops[:, None] + size
        l0, l1 = lefts[None, :], lefts[None, :] + size
        sums = (s[t1, l1] - s[t0, l1] - s[t1, l0] + s[t0, l0]).ravel()
        # Cancellation in the integral image can leave tiny negatives in flat windows.
        sums = np.maximum(sums, 0.0)
        n = sums.size
        total = sums.sum()
        uniform = np.full(n, 1.0 / n)
        probs = uniform if total <= 0 else (1.0 - mix) * sums / total + mix * uniform
        cdf = np.cumsum(probs)
        cdf /= cdf[-1]
        positions = np.stack(np.meshgrid(tops, lefts, indexing="ij"), axis=-1).reshape(-1, 2).astype(np.int64)
        return cls(size, stride, h - size, w - size, positions, probs, cdf)

    def sample(self, rng: np.random.Generator) -> tuple[int, int]:
        """Draw one ``(top, left)`` (three draws from ``rng``: a window, then the row and column jitter)."""
        i = min(int(np.searchsorted(self._cdf, rng.random(), side="right")), len(self._cdf) - 1)
        top, left = (int(v) for v in self.positions[i])
        top = int(rng.integers(top, min(top + self.stride, self.max_top + 1)))
        left = int(rng.integers(left, min(left + self.stride, self.max_left + 1)))
        return top, left
