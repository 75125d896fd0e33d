"""Classical estimates of an image's degradation levels: Gaussian noise sigma and JPEG quality.

They give a conditioned model (``ModelInfo.inputs == ("noise", "jpeg")``, such as ``real-x4-ctrl``) the levels
it was trained with when the user gives none, so it behaves like a blind model. Nothing here is a network:
the one fitted part is a small calibration table (`NOISE_POSTERIOR`).

* :func:`noise_sigma`: the standard deviation of additive noise, on the 0-255 scale, as the papers state it.
  Immerkaer's Laplacian-difference operator ``N = [[1, -2, 1], [-2, 4, -2], [1, -2, 1]]`` cancels planes and
  ramps and turns white noise of std s into a response of std 6 s (J. Immerkaer, "Fast Noise Variance
  Estimation", CVIU 64(2), 1996). Textured windows are excluded the way Tai and Yang do (S.-C. Tai, S.-M. Yang,
  "A fast method for image noise estimation using Laplacian operator and adaptive edge detection", ISCCSP 2008):
  only the windows whose Sobel gradient magnitude lies in the lowest half of the image's are kept. For Gaussian
  noise the Sobel responses are uncorrelated with N's (odd against even kernel), hence independent, so the
  selection does not bias the noise part. The robust scale (median of ``|N * I|`` / 0.6745 / 6) then ignores the
  texture left over. Windows touching clipped pixels (<= 2 or >= 253) and, in a JPEG-compressed image, windows
  that straddle an 8x8 block boundary (blocking is not noise) are left out; the 8-bit rounding noise
  (variance 1/12) is taken away. Per colour channel, averaged.
* :func:`jpeg_quality`: the IJG quality of the last JPEG pass of decoded pixels. In the 8x8 block grid of a
  JPEG (offset (0, 0) unless the image was cropped after compression, else the blockiest offsets are tried), the
  orthonormal 8x8 DCT of the BT.601 luma (the JPEG transform) gives coefficients that sit within about half a
  level of a multiple of their quantisation step (rounding of the decoded RGB). The estimate is the lowest quality
  in 10..99 whose libjpeg luma table (:func:`srkit.degrade.jpeg.quantization_tables`) the 14 lowest-frequency AC
  coefficients fit: the mean of cos(2 pi c / T) over the coefficients the table would not zero reaches
  `_CONSISTENT` of what exact multiples blurred by the decoder's rounding give (a coarser table puts many
  coefficients between its multiples); 100 when no table fits (no JPEG, or quality 100). Within a few quality
  points (tables of neighbouring qualities differ in few entries). Tables other than libjpeg's scaled Annex K ones
  (cameras, editors) get the nearest libjpeg quality.
* :func:`jpeg_quality_from_tables`: the same quality read from a file's own quantisation tables (Pillow's
  ``Image.quantization``), exact for libjpeg-written files: used when the input is a JPEG file.
* :func:`estimate_levels`: both, with the noise given as the model takes it: the sigma *before* JPEG. A JPEG pass
  removes much of the noise (at quality 50, sigma 15 measures about 1 in the pixels), so the measured sigma is
  mapped through `NOISE_POSTERIOR`: the mean true sigma of training samples (preset ``controllable``) with that
  quality and measured sigma.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from srkit.errors import ShapeError

__all__ = [
    "NOISE_POSTERIOR",
    "estimate_levels",
    "estimate_levels_batch",
    "jpeg_grid",
    "jpeg_quality",
    "jpeg_quality_from_tables",
    "noise_sigma",
]

_IMMERKAER = np.array([[1.0, -2.0, 1.0], [-2.0, 4.0, -2.0], [1.0, -2.0, 1.0]])
_SOBEL_X = np.array([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]])
_LUMA = np.array([0.299, 0.587, 0.114])
# Fewer usable windows than this: the estimate falls back to all windows (tiny or saturated images).
_MIN_WINDOWS = 64
# A table fits when the periodicity of the coefficients it would not zero is at least this share of the
# periodicity exact multiples would show (see `_periodicity`).
_CONSISTENT = 0.75
# Coefficients a table would not zero that it needs before it can be judged at all.
_MIN_COEFFS = 16
# Blocks looked at per image at most (evenly spread): enough for the statistics, bounded time on big images.
_MAX_BLOCKS = 4096
# Std of a decoded coefficient around its multiple of the step (rounding of the decoded RGB; measured 0.3-0.5).
_DECODE_ERROR = 0.5
# The 15 lowest-frequency positions in zigzag order (DC first): their steps are small enough to be seen.
_ZIGZAG15 = ((0, 0), (0, 1), (1, 0), (2, 0), (1, 1), (0, 2), (0, 3), (1, 2), (2, 1), (3, 0), (4, 0), (3, 1),
             (2, 2), (1, 3), (0, 4))

#: The mean noise sigma before JPEG (8-bit units) of training samples, by JPEG quality row and the sigma measured
#: on their pixels (`noise_sigma`): per row, (measured, mean true) knots over quantile bins of the measured sigma,
#: non-decreasing. A JPEG pass hides much of the noise that came before it, so at low quality the measurement says
#: little and the estimate falls back toward the training prior, as a blind model's implicit estimate does.
#: The labels are the std of the noise each sample got (`srkit.degrade.pipeline.record_levels`); the measurement
#: sees flat, unclipped windows, where signal-dependent (Poisson) noise is below its image-wide std, which is why
#: even the no-JPEG row maps a measured sigma to a somewhat larger one.
#: Made by `scripts/calibrate_noise_posterior.py` (preset `controllable`, training images only):
#: 6000 samples of the controllable preset, seed 1, HR crops <= 512 px, 284 s
NOISE_POSTERIOR: dict[int, list[tuple[float, float]]] = {
    10: [(0.0, 12.13), (0.0, 12.13), (0.0, 12.13), (0.26, 19.51), (0.48, 28.17), (1.19, 34.6)],
    20: [(0.0, 7.73), (0.0, 7.73), (0.24, 9.47), (0.4, 16.55), (0.44, 16.55), (0.64, 20.83), (0.81, 25.69),
         (1.34, 30.81), (3.86, 39.22)],
    30: [(0.0, 4.17), (0.27, 5.67), (0.4, 8.81), (0.55, 9.25), (0.71, 16.76), (1.02, 23.08), (1.5, 24.95),
         (2.47, 29.57), (6.78, 38.13)],
    40: [(0.15, 2.52), (0.4, 5.26), (0.62, 10.66), (0.99, 16.26), (1.46, 18.99), (2.54, 23.04), (7.29, 34.79),
         (17.66, 38.64)],
    50: [(0.21, 2.69), (0.4, 4.2), (0.61, 7.41), (1.18, 10.97), (2.76, 18.82), (8.8, 25.49), (22.85, 36.9)],
    60: [(0.29, 2.04), (0.59, 5.54), (0.95, 7.75), (1.96, 11.33), (5.53, 20.04), (11.76, 25.79), (25.59, 35.84)],
    70: [(0.3, 2.38), (0.74, 4.34), (1.46, 8.73), (4.52, 12.38), (14.21, 20.67), (26.26, 32.39)],
    80: [(0.43, 1.28), (1.17, 2.97), (4.37, 6.67), (11.8, 15.6), (20.62, 24.82), (29.93, 34.4)],
    90: [(0.71, 0.6), (3.52, 4.11), (10.51, 10.15), (17.35, 20.62), (26.87, 33.22)],
    95: [(1.65, 1.8), (7.52, 7.9), (17.75, 23.55), (28.16, 30.89)],
    100: [(0.4, 0.53), (0.8, 0.53), (1.23, 0.53), (1.84, 0.69), (2.75, 1.01), (3.89, 1.91), (6.38, 6.93),
         (11.81, 15.45), (19.09, 24.77), (25.92, 30.27), (33.04, 35.47), (41.83, 41.05)],
}


def _as_hwc(image: Any) -> np.ndarray:
    """(H, W), (H, W, C) uint8 / uint16 / float in [0, 1] -> float64 (H, W, C) on the 0-255 scale, alpha dropped."""
    a = np.asarray(image)
    if a.ndim == 2:
        a = a[..., None]
    if a.ndim != 3 or a.shape[2] not in (1, 2, 3, 4) or min(a.shape[:2]) < 3:
        raise ShapeError(f"expected an (H, W[, C]) image of at least 3x3 with 1-4 channels, got shape {a.shape}")
    if a.shape[2] in (2, 4):
        a = a[..., :-1]
    if a.dtype == np.uint8:
        return a.astype(np.float64)
    if a.dtype == np.uint16:
        return a.astype(np.float64) / 257.0
    if a.dtype.kind == "f":
        return np.nan_to_num(a.astype(np.float64), nan=0.0, posinf=1.0, neginf=0.0) * 255.0
    raise ShapeError(f"image arrays must be uint8, uint16 or float, got {a.dtype}")


def _valid3x3(x: np.ndarray, k: np.ndarray) -> np.ndarray:
    """'valid' 3x3 correlation of a 2-D array: (H - 2, W - 2)."""
    h, w = x.shape
    out = np.zeros((h - 2, w - 2))
    for i in range(3):
        for j in range(3):
            if k[i, j]:
                out += k[i, j] * x[i : i + h - 2, j : j + w - 2]
    return out


def _window_extreme(x: np.ndarray, fn) -> np.ndarray:
    h, w = x.shape
    out = x[0 : h - 2, 0 : w - 2]
    for i in range(3):
        for j in range(3):
            out = fn(out, x[i : i + h - 2, j : j + w - 2])
    return out


def _luma(x: np.ndarray) -> np.ndarray:
    return x[..., 0] if x.shape[2] == 1 else x[..., :3] @ _LUMA


def noise_sigma(image: Any, *, grid: tuple[int, int] | None = None) -> float:
    """Standard deviation of the additive noise in `image`, on the 0-255 scale (see the module docstring).

    Args:
        image: (H, W[, C]) uint8, uint16 or float in [0, 1]; alpha (2nd of 2, 4th of 4 channels) is ignored.
        grid: the (row, column) offset of an 8x8 JPEG block grid whose boundary windows are left out (from
            :func:`jpeg_grid`); None: none.

    Returns:
        sigma >= 0 (about 0.3-1 on clean natural images: texture the selection keeps).
    """
    return _noise_sigma(_as_hwc(image), grid)


def _noise_sigma(x: np.ndarray, grid: tuple[int, int] | None) -> float:
    h, w = x.shape[:2]
    keep_grid = np.ones((h - 2, w - 2), dtype=bool)
    if grid is not None:
        # window centred at (i + 1, j + 1); inside one block when its centre is 1..6 within the block
        rows = (np.arange(1, h - 1) - grid[0]) % 8
        cols = (np.arange(1, w - 1) - grid[1]) % 8
        keep_grid = ((rows >= 1) & (rows <= 6))[:, None] & ((cols >= 1) & (cols <= 6))[None, :]
    sigmas = []
    for c in range(x.shape[2]):
        ch = x[..., c]
        resp = np.abs(_valid3x3(ch, _IMMERKAER))
        grad = np.abs(_valid3x3(ch, _SOBEL_X)) + np.abs(_valid3x3(ch, _SOBEL_X.T))
        unclipped = (_window_extreme(ch, np.minimum) > 2.0) & (_window_extreme(ch, np.maximum) < 253.0)
        usable = unclipped & keep_grid
        if usable.sum() < _MIN_WINDOWS:
            usable = keep_grid if keep_grid.sum() >= _MIN_WINDOWS else np.ones_like(keep_grid)
        g = grad[usable]
        flat = usable.copy()
        flat[usable] = g <= np.median(g)
        r = resp[flat] if flat.sum() >= _MIN_WINDOWS else resp[usable]
        s = float(np.median(r)) / (0.6745 * 6.0)
        sigmas.append(math.sqrt(max(s * s - 1.0 / 12.0, 0.0)))
    return float(np.mean(sigmas))


def _blockiness_phases(y: np.ndarray) -> list[tuple[int, int]]:
    """Block grid offsets (row, column) ordered by blockiness: how much larger the mean absolute difference
    between neighbouring pixels is where a block would start than elsewhere, per axis."""

    def ranked(d: np.ndarray) -> list[int]:
        # d[k] = mean |pixel k+1 - pixel k|: a block starts at k + 1
        if d.size < 16:
            return list(range(8))
        scores = [float(np.mean(d[(np.arange(d.size) + 1) % 8 == p])) for p in range(8)]
        return [int(p) for p in np.argsort(scores)[::-1]]

    rows = ranked(np.abs(np.diff(y, axis=0)).mean(axis=1))
    cols = ranked(np.abs(np.diff(y, axis=1)).mean(axis=0))
    return [(r, c) for r in rows[:2] for c in cols[:2]]


def _dct_matrix() -> np.ndarray:
    k = np.arange(8)
    m = np.cos(np.pi * (2 * k[None, :] + 1) * k[:, None] / 16.0) * math.sqrt(2.0 / 8.0)
    m[0] /= math.sqrt(2.0)
    return m


def _block_dct(y: np.ndarray, grid: tuple[int, int]) -> np.ndarray:
    """(bh, bw, 8, 8) JPEG DCT coefficients (orthonormal 8x8 DCT-II of the level-shifted blocks) of the whole
    blocks on the grid."""
    y = y[grid[0] :, grid[1] :]
    bh, bw = y.shape[0] // 8, y.shape[1] // 8
    if bh < 1 or bw < 1:
        return np.zeros((0, 0, 8, 8))
    blocks = (y[: bh * 8, : bw * 8] - 128.0).reshape(bh, 8, bw, 8).transpose(0, 2, 1, 3)
    m = _dct_matrix()
    return np.einsum("ij,abjk,lk->abil", m, blocks, m)


def _low(coefs: np.ndarray) -> np.ndarray:
    """(n, 15): the DC and the 14 lowest-frequency AC coefficients of each block (zigzag order)."""
    idx = tuple(np.array(_ZIGZAG15).T)
    flat = coefs.reshape(-1, 8, 8)
    if flat.shape[0] > _MAX_BLOCKS:  # evenly spread subset: the statistics need hundreds, not all
        flat = flat[np.linspace(0, flat.shape[0] - 1, _MAX_BLOCKS).astype(int)]
    return flat[:, idx[0], idx[1]]


def _luma_steps(quality: int) -> np.ndarray:
    """The libjpeg luma steps of `quality` at the `_ZIGZAG15` positions."""
    from srkit.degrade.jpeg import quantization_tables

    idx = tuple(np.array(_ZIGZAG15).T)
    return quantization_tables(quality)[0][idx].astype(np.float64)


def _periodicity(coef: np.ndarray, step: np.ndarray) -> float | None:
    """How well the coefficients sit on multiples of `step`: the mean of cos(2 pi c / T) over the coefficients
    that step would not zero, over its expected value for exact multiples blurred by the decoder's rounding
    (about 1 when they fit, about 0 or below when not); None with fewer than `_MIN_COEFFS` such coefficients.

    The DC (first column) counts only from a step of 8 (quality <= 75): below, the error clipping adds to it is
    comparable with the step."""
    usable = step >= 2
    usable[0] = step[0] >= 8
    informative = (np.abs(coef) >= step / 2.0) & usable[None, :]
    n = int(informative.sum())
    if n < _MIN_COEFFS:
        return None
    t = np.broadcast_to(step, coef.shape)[informative]
    observed = np.cos(2.0 * np.pi * coef[informative] / t).mean()
    expected = np.exp(-2.0 * np.pi**2 * _DECODE_ERROR**2 / t**2).mean()
    return float(observed / expected)


def _quality_at(coef: np.ndarray) -> int | None:
    """The quality in 10..99 whose luma steps the coefficients fit: in the first run of qualities that fit (a
    coarser table does not fit; the tables of neighbouring qualities differ in few entries, so several in a row
    can), the one that fits best; None if none fits."""
    if coef.shape[0] < 4:
        return None
    best: tuple[float, int] | None = None
    for q in range(10, 100):
        score = _periodicity(coef, _luma_steps(q))
        if score is not None and score >= _CONSISTENT:
            if best is None or score > best[0]:
                best = (score, q)
        elif best is not None:
            break
    return None if best is None else best[1]


def _grid_and_quality(y: np.ndarray) -> tuple[tuple[int, int], int]:
    """The block grid and quality of a luma image: (0, 0) first (an uncropped JPEG), then the four blockiest
    offsets; ((0, 0), 100) when no offset shows quantised coefficients."""
    if min(y.shape) < 16:
        return (0, 0), 100
    tried = []
    for grid in [(0, 0), *_blockiness_phases(y)]:
        if grid in tried:
            continue
        tried.append(grid)
        q = _quality_at(_low(_block_dct(y, grid)))
        if q is not None:
            return grid, q
    return (0, 0), 100


def jpeg_grid(image: Any) -> tuple[int, int]:
    """(row, column) offset of the 8x8 block grid of a JPEG-compressed image ((0, 0) unless it was cropped after
    compression; also (0, 0) when no JPEG quantisation is seen)."""
    return _grid_and_quality(_luma(_as_hwc(image)))[0]


def jpeg_quality(image: Any) -> int:
    """Estimated IJG quality (10..100) of the last JPEG pass of decoded pixels; 100 = no JPEG seen.

    Args:
        image: (H, W[, C]) uint8, uint16 or float in [0, 1] (RGB or gray; alpha ignored); smaller than 16x16:
            100.
    """
    return _grid_and_quality(_luma(_as_hwc(image)))[1]


def jpeg_quality_from_tables(tables: Mapping[int, Sequence[int]] | None) -> int | None:
    """The libjpeg quality whose luma table is nearest to a file's (Pillow ``Image.quantization``: table id ->
    64 entries in natural order; table 0 is luma); None without tables. Exact for files libjpeg wrote."""
    from srkit.degrade.jpeg import quantization_tables

    if not tables or 0 not in tables:
        return None
    t = np.asarray(list(tables[0]), dtype=np.float64)
    if t.size != 64:
        return None
    t = t.reshape(8, 8)
    errors = [float(np.abs(np.log(t) - np.log(quantization_tables(q)[0].astype(np.float64))).sum())
              for q in range(1, 101)]
    return int(np.argmin(errors)) + 1


def _posterior_sigma(measured: float, quality: int) -> float:
    """E[sigma before JPEG | measured sigma, quality] from `NOISE_POSTERIOR` (linear in both)."""
    rows = sorted(NOISE_POSTERIOR)
    q = float(min(max(quality, rows[0]), rows[-1]))
    hi = next(r for r in rows if r >= q)
    lo = max(r for r in rows if r <= q)

    def at(row: int) -> float:
        knots = dict(NOISE_POSTERIOR[row])  # a repeated measured value keeps its last (largest) mean
        return float(np.interp(measured, list(knots), list(knots.values())))

    if hi == lo:
        return at(lo)
    t = (q - lo) / (hi - lo)
    return (1 - t) * at(lo) + t * at(hi)


def estimate_levels(image: Any, *, quality: int | None = None) -> tuple[float, int]:
    """(noise sigma on the 0-255 scale before JPEG, JPEG quality) of an image: the levels a conditioned model
    takes, estimated.

    Args:
        image: (H, W[, C]) uint8, uint16 or float in [0, 1]; alpha ignored.
        quality: the JPEG quality when known (a file's tables, :func:`jpeg_quality_from_tables`); None:
            estimated from the pixels (:func:`jpeg_quality`).

    Returns:
        (sigma, quality): the quality clipped to [10, 100]; sigma, in [0, 50], is the mean sigma before JPEG of
        the training samples (preset ``controllable``) that measured like this image (`NOISE_POSTERIOR`).
    """
    x = _as_hwc(image)
    grid, q_seen = _grid_and_quality(_luma(x))
    q = q_seen if quality is None else int(quality)
    q = int(min(100, max(10, q)))
    measured = _noise_sigma(x, grid if q < 100 else None)
    return float(min(50.0, max(0.0, _posterior_sigma(measured, q)))), q


def estimate_levels_batch(images) -> tuple[Any, Any]:
    """`estimate_levels` of each image of a (B, C, H, W) float tensor in [0, 1]: two float32 (B,) tensors
    (noise, jpeg) on the images' device."""
    import torch

    arr = images.detach().float().clamp(0, 1).permute(0, 2, 3, 1).cpu().numpy()
    levels = [estimate_levels(a) for a in arr]
    noise = torch.tensor([lv[0] for lv in levels], dtype=torch.float32, device=images.device)
    jpeg = torch.tensor([float(lv[1]) for lv in levels], dtype=torch.float32, device=images.device)
    return noise, jpeg
