"""NIQE, the Natural Image Quality Evaluator, as the LIVE MATLAB release computes it.

Reference: A. Mittal, R. Soundararajan and A. C. Bovik, "Making a 'completely blind' image quality analyzer",
IEEE Signal Processing Letters 20(3), 2013; the authors' MATLAB release (``niqe_release.zip`` from
live.ece.utexas.edu: ``computequality.m``, ``computefeature.m``, ``estimateaggdparam.m``,
``estimatemodelparam.m``). This module is an independent re-implementation of that release's arithmetic.

What is computed (``niqe``):

1. The image becomes one integer-valued plane: uint8 ``rgb2ycbcr`` luma, rounded (``color="y"``, the BasicSR
   convention SR papers use), or uint8 ``rgb2gray`` (``color="gray"``, what the release itself does). Float
   input in [0, 1] is first rounded to uint8. ``crop_border`` pixels go from every side; then the plane is cut at
   the bottom/right to a multiple of the block size (96), as the release does.
2. Two scales: the plane itself (as double, 0..255) and MATLAB ``imresize(plane, 0.5)`` of that double image
   (bicubic, antialiased, mirror borders, no rounding: ``imresize_matlab(..., convention="modern")``).
3. At each scale, MSCN coefficients ``(I - mu) / (sigma + 1)`` with a 7x7 Gaussian window (sigma 7/6,
   normalised) and replicated borders (the release calls ``imfilter(..., 'replicate')``, not imfilter's
   zero-padding default). Where the 7x7 neighbourhood is constant the coefficient is exactly 0, as MATLAB's
   filter gives; a plain float filter leaves +-1e-14 there, whose sign moves the AGGD fits (on baboon: 5.72971
   instead of MATLAB's 5.72957).
4. Per block (96x96 at scale 1, 48x48 at scale 2, no overlap): an asymmetric generalized Gaussian (AGGD) fit of
   the MSCN coefficients -> (alpha, (beta_l + beta_r) / 2), and AGGD fits of the products of each coefficient
   with its neighbour (``circshift`` inside the block by [0 1], [1 0], [1 1], [1 -1]) -> (alpha, mean, beta_l,
   beta_r) each. 18 features per scale, 36 in all. Moment matching picks alpha on the grid ``0.2:0.001:10``
   (nearest ratio, first on ties), exactly as ``estimateaggdparam.m``.
5. Quality = sqrt((mu_p - mu)^T pinv((C_p + C) / 2) (mu_p - mu)) with the image's block-feature mean
   (``nanmean``) and covariance (``nancov``: blocks with a NaN feature dropped).

Block features are computed for all blocks at once (no Python loop per block); the alpha grid lookup is one
``searchsorted`` over a table built once.

Checked: Set14 ``baboon`` cropped to 492x480, Y, official model: 5.7295739 (MATLAB R2021a: 5.7295734).

Where this differs from the release, on purpose:

* a constant plane (after cropping) raises ``ShapeError`` (the release returns a number made of rounding noise);
* an image with a single complete block uses a zero covariance for the image (MATLAB's ``nancov`` of one row
  is the scalar variance of that row, which is meaningless here);
* ``pinv`` uses MATLAB's default tolerance ``max(size) * eps * s_max``.

Parameters ("pristine model"): ``params=None`` uses srkit's own model, fitted by ``srkit iqa fit-niqe`` with the
release's recipe (``estimatemodelparam.m``: blocks whose mean local sigma exceeds 0.75 of the image's largest)
on srkit's training images (never the benchmark sets); ``params="official"`` the LIVE model
(``niqe_pris_params.npz`` / ``modelparameters.mat``, found as described in :func:`load_niqe_params`). Scores
from different models are not comparable: report which one you used (``load_niqe_params(p).name``).
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np
from scipy import ndimage, special

from srkit.errors import ConfigError, ShapeError

BLOCK = 96
N_FEATURES = 36
SHARPNESS_THRESHOLD = 0.75
SRKIT_PARAMS_FILE = Path(__file__).with_name("niqe_srkit_params.npz")
OFFICIAL_FILE_NAME = "niqe_pris_params.npz"

# MATLAB rgb2gray: the first row of inv of the NTSC RGB -> YIQ matrix (0.2989, 0.5870, 0.1140 to 4 digits).
_NTSC_TO_RGB = np.array([[1.0, 0.956, 0.621], [1.0, -0.272, -0.647], [1.0, -1.106, 1.703]])
GRAY_WEIGHTS = np.linalg.inv(_NTSC_TO_RGB)[0]

# The release's alpha grid 0.2:0.001:10 and the AGGD moment ratio Gamma(2/a)^2 / (Gamma(1/a) Gamma(3/a)) on it
# (strictly increasing in a, so the nearest grid entry is found by searchsorted).
_ALPHA_GRID = np.arange(200, 10001, dtype=np.float64) / 1000.0
_G1, _G2, _G3 = (special.gamma(k / _ALPHA_GRID) for k in (1.0, 2.0, 3.0))
_RATIO_GRID = _G2**2 / (_G1 * _G3)
_BETA_FACTOR = np.sqrt(_G1 / _G3)  # beta = std * sqrt(Gamma(1/a) / Gamma(3/a))
_MEAN_FACTOR = _G2 / _G1  # AGGD mean = (beta_r - beta_l) * Gamma(2/a) / Gamma(1/a)
assert np.all(np.diff(_RATIO_GRID) > 0)

# fspecial('gaussian', 7, 7/6) / sum: the product of two normalised 1-D Gaussians.
_W1 = np.exp(-(np.arange(-3, 4, dtype=np.float64) ** 2) / (2.0 * (7.0 / 6.0) ** 2))
_W1 /= _W1.sum()

# (row, column) circshift of the four pairwise products: horizontal, vertical, main and anti-diagonal.
_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


# --------------------------------------------------------------------------------------------------------------
# Moment matching
# --------------------------------------------------------------------------------------------------------------


def _nearest_grid_index(values: np.ndarray) -> np.ndarray:
    """Index of argmin_k (ratio_grid[k] - v)^2 for each v (first index on ties; NaN -> 0 like MATLAB's min)."""
    v = np.asarray(values, dtype=np.float64)
    hi = np.clip(np.searchsorted(_RATIO_GRID, v), 1, _RATIO_GRID.size - 1)
    lo = hi - 1
    pick_lo = (_RATIO_GRID[lo] - v) ** 2 <= (_RATIO_GRID[hi] - v) ** 2
    idx = np.where(pick_lo, lo, hi)
    return np.where(np.isnan(v), 0, idx)


def _aggd(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid index of alpha, left and right standard deviations of each row (last axis) of ``x``."""
    n = x.shape[-1]
    neg_part = np.minimum(x, 0.0)
    s2 = np.einsum("...k,...k->...", x, x)
    s2_neg = np.einsum("...k,...k->...", neg_part, neg_part)
    n_neg = np.count_nonzero(neg_part, axis=-1)
    n_pos = np.count_nonzero(x > 0, axis=-1)
    s1 = np.abs(x).sum(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        left = np.sqrt(s2_neg / n_neg)
        right = np.sqrt((s2 - s2_neg) / n_pos)
        g = left / right
        rhat = (s1 / n) ** 2 / (s2 / n)
        rhatnorm = rhat * (g**3 + 1.0) * (g + 1.0) / (g**2 + 1.0) ** 2
    return _nearest_grid_index(rhatnorm), left, right


def aggd_fit(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """AGGD moment-matching fit of each row of ``samples`` (``estimateaggdparam.m``).

    Args:
        samples: (..., N) array; each row (last axis) is one sample set.

    Returns:
        ``(alpha, beta_left, beta_right)``, each of shape ``samples.shape[:-1]``: alpha on the grid 0.2:0.001:10,
        beta = std * sqrt(Gamma(1/alpha) / Gamma(3/alpha)) of each side. A row without negative or without
        positive values gives NaN betas (and alpha 0.2), as the release does.
    """
    idx, left, right = _aggd(np.asarray(samples, dtype=np.float64))
    return _ALPHA_GRID[idx], left * _BETA_FACTOR[idx], right * _BETA_FACTOR[idx]


def ggd_fit(samples: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric GGD moment-matching fit of each row: ``(alpha, sigma)`` with sigma^2 = E[x^2].

    Same grid and nearest-ratio rule as :func:`aggd_fit` (E|x|^2 / E[x^2] = Gamma(2/a)^2 / (Gamma(1/a)
    Gamma(3/a))). NIQE's features use :func:`aggd_fit`; this is for analysis and tests.
    """
    x = np.asarray(samples, dtype=np.float64)
    sq_mean = (x * x).mean(-1)
    with np.errstate(invalid="ignore", divide="ignore"):
        ratio = np.abs(x).mean(-1) ** 2 / sq_mean
    return _ALPHA_GRID[_nearest_grid_index(ratio)], np.sqrt(sq_mean)


# --------------------------------------------------------------------------------------------------------------
# Features
# --------------------------------------------------------------------------------------------------------------


def _smooth(x: np.ndarray) -> np.ndarray:
    """imfilter(x, window, 'replicate') with the separable 7x7 Gaussian."""
    y = ndimage.correlate1d(x, _W1, axis=0, mode="nearest")
    return ndimage.correlate1d(y, _W1, axis=1, mode="nearest")


def _mscn(plane: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """MSCN coefficients and local sigma. Where the whole 7x7 neighbourhood is constant, the coefficient is
    exactly 0 (mu = I, sigma = 0) instead of the filter's rounding noise (+-1e-14): MATLAB gives exact zeros
    there, and the sign of that noise changes the AGGD fits (the baboon reference value depends on it)."""
    mu = _smooth(plane)
    sigma = np.sqrt(np.abs(_smooth(plane * plane) - mu * mu))
    # Candidates first (sigma of a flat neighbourhood is rounding noise, < 1e-5; any real variation of an
    # integer plane gives sigma > 0.01), then the exact test on their bounding box only.
    cand = sigma < 1e-3
    if cand.any():
        rows, cols = np.flatnonzero(cand.any(1)), np.flatnonzero(cand.any(0))
        r0, r1 = max(rows[0] - 3, 0), min(rows[-1] + 4, plane.shape[0])
        c0, c1 = max(cols[0] - 3, 0), min(cols[-1] + 4, plane.shape[1])
        box = plane[r0:r1, c0:c1]
        flat = np.zeros_like(cand)
        flat[r0:r1, c0:c1] = ndimage.maximum_filter(box, size=7, mode="nearest") == ndimage.minimum_filter(
            box, size=7, mode="nearest")
        flat &= cand
        mu[flat] = plane[flat]
        sigma[flat] = 0.0
    return (plane - mu) / (sigma + 1.0), sigma


def _blocks(x: np.ndarray, b: int) -> np.ndarray:
    """(H, W) with H, W multiples of b -> (n_blocks, b, b), blocks in row-major order."""
    nh, nw = x.shape[0] // b, x.shape[1] // b
    return x.reshape(nh, b, nw, b).swapaxes(1, 2).reshape(nh * nw, b, b)


def _block_features(mscn: np.ndarray, b: int) -> np.ndarray:
    """18 features of every b x b block of an MSCN map: (n_blocks, 18)."""
    blk = _blocks(mscn, b)
    n = blk.shape[0]
    sets = np.empty((5, n, b * b))
    sets[0] = blk.reshape(n, -1)
    for k, s in enumerate(_SHIFTS, start=1):
        np.multiply(blk, np.roll(blk, s, axis=(1, 2)), out=sets[k].reshape(n, b, b))
    idx, left, right = _aggd(sets)  # (5, n) each
    alpha = _ALPHA_GRID[idx]
    bl, br = left * _BETA_FACTOR[idx], right * _BETA_FACTOR[idx]
    feats = np.empty((n, 18))
    feats[:, 0] = alpha[0]
    feats[:, 1] = (bl[0] + br[0]) / 2.0
    for k in range(1, 5):
        c = 4 * k - 2
        feats[:, c] = alpha[k]
        feats[:, c + 1] = (br[k] - bl[k]) * _MEAN_FACTOR[idx[k]]
        feats[:, c + 2] = bl[k]
        feats[:, c + 3] = br[k]
    return feats


def _plane_features(plane: np.ndarray, block: int) -> tuple[np.ndarray, np.ndarray]:
    """Block features (n_blocks, 36) of a float64 plane already cut to a multiple of ``block``, and each block's
    sharpness (mean local sigma at scale 1), in the same (row-major) block order."""
    from srkit.ops import imresize_matlab

    if block % 2:
        raise ConfigError(f"NIQE block size must be even (it is halved at scale 2), got {block}")
    mscn, sigma = _mscn(plane)
    f1 = _block_features(mscn, block)
    sharpness = _blocks(sigma, block).mean(axis=(1, 2))
    half = imresize_matlab(plane, 0.5, convention="modern")
    mscn2, _ = _mscn(half)
    f2 = _block_features(mscn2, block // 2)
    return np.hstack([f1, f2]), sharpness


# --------------------------------------------------------------------------------------------------------------
# Input
# --------------------------------------------------------------------------------------------------------------


def _round_half_away(x: np.ndarray) -> np.ndarray:
    return np.floor(x + 0.5)  # values are >= 0


def _as_uint8(image, name: str = "niqe") -> np.ndarray:
    """uint8 (H, W) or (H, W, 3) from uint8 arrays, float [0, 1] (H, W[, C]) arrays or (C, H, W) / (1, C, H, W)
    tensors (the metrics' shared conversion, :func:`srkit.metrics._prepare.to_uint8_hwc`). ``name`` is the metric
    named in error messages (the KLT index shares this conversion)."""
    from srkit.metrics._prepare import to_uint8_hwc

    if isinstance(image, np.ndarray) and image.ndim == 3 and image.shape[2] not in (1, 3) and image.shape[0] in (1, 3):
        raise ShapeError(f"{name} expects an (H, W, 3) array (channels last), got shape {image.shape}")
    arr = to_uint8_hwc(image, name)
    if arr.shape[2] == 1:
        return arr[..., 0]
    if arr.shape[2] != 3:
        raise ShapeError(f"{name} expects a gray (H, W) or RGB (H, W, 3) image, got {arr.shape[2]} channels "
                         "(drop alpha first)")
    return arr


def _plane(image, color: str) -> np.ndarray:
    """The integer-valued float64 plane NIQE works on (MATLAB rgb2ycbcr / rgb2gray of the uint8 image)."""
    if color not in ("y", "gray"):
        raise ConfigError(f"niqe color must be 'y' or 'gray', got {color!r}")
    arr = _as_uint8(image)
    if arr.ndim == 2:
        return arr.astype(np.float64)
    if color == "gray":
        return _round_half_away(arr.astype(np.float64) @ GRAY_WEIGHTS)
    from srkit.ops.color import rgb_to_ycbcr

    return _round_half_away(rgb_to_ycbcr(arr, y_only=True))


def _crop(plane: np.ndarray, crop_border: int, block: int) -> np.ndarray:
    if crop_border < 0:
        raise ShapeError(f"crop_border must be >= 0, got {crop_border}")
    h, w = plane.shape
    if crop_border:
        plane = plane[crop_border: h - crop_border, crop_border: w - crop_border]
    ch, cw = plane.shape
    if ch < block or cw < block:
        raise ShapeError(f"niqe needs at least one {block}x{block} block; the image is {w}x{h}"
                         + (f" ({max(cw, 0)}x{max(ch, 0)} after cropping {crop_border} px)" if crop_border else ""))
    plane = plane[: ch - ch % block, : cw - cw % block]
    if plane.min() == plane.max():
        raise ShapeError("niqe: constant image (no structure to measure; NIQE is undefined)")
    return np.ascontiguousarray(plane)


# --------------------------------------------------------------------------------------------------------------
# Parameters
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class NiqeParams:
    """A pristine model: feature mean (36,), covariance (36, 36), block size, and a name saying which it is.
    Models read from files are cached and shared: their arrays are read-only."""

    mu: np.ndarray
    cov: np.ndarray
    block: int = BLOCK
    name: str = "custom"
    meta: dict = field(default_factory=dict, compare=False)


def _official_candidates() -> list[Path]:
    out = []
    if os.environ.get("SRKIT_REFERENCE"):
        out.append(Path(os.environ["SRKIT_REFERENCE"]) / OFFICIAL_FILE_NAME)
    if os.environ.get("SRKIT_DATA"):
        out.append(Path(os.environ["SRKIT_DATA"]).parent / "reference" / OFFICIAL_FILE_NAME)
    out.append(Path("..") / "shared" / "reference" / OFFICIAL_FILE_NAME)
    return out


def _check_arrays(mu, cov, where: str) -> tuple[np.ndarray, np.ndarray]:
    mu = np.asarray(mu, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    if mu.size != N_FEATURES or mu.ndim not in (1, 2) or (mu.ndim == 2 and 1 not in mu.shape):
        raise ConfigError(f"{where}: mu must hold {N_FEATURES} values (1, {N_FEATURES}), got shape {mu.shape}")
    if cov.shape != (N_FEATURES, N_FEATURES):
        raise ConfigError(f"{where}: cov must be {N_FEATURES}x{N_FEATURES}, got shape {cov.shape}")
    if not (np.isfinite(mu).all() and np.isfinite(cov).all()):
        raise ConfigError(f"{where}: the parameters hold NaN or Inf")
    return mu.reshape(N_FEATURES), cov


def _pick(d: Mapping, names: tuple[str, ...], where: str):
    for n in names:
        if n in d:
            return d[n]
    raise ConfigError(f"{where}: no {' / '.join(names)} entry (keys: {', '.join(sorted(map(str, d)))})")


_MU_KEYS = ("mu_pris_param", "mu_prisparam", "mu")
_COV_KEYS = ("cov_pris_param", "cov_prisparam", "cov")


@lru_cache(maxsize=8)
def _load_file(path: str, mtime_ns: int, size: int, name: str) -> NiqeParams:
    where = f"NIQE params {path!r}"
    try:
        if path.lower().endswith(".mat"):
            from scipy.io import loadmat

            d = loadmat(path)
        else:
            with np.load(path, allow_pickle=False) as z:
                d = {k: z[k] for k in z.files}
    except ConfigError:
        raise
    except Exception as e:  # noqa: BLE001 - any unreadable file is one line
        raise ConfigError(f"{where}: cannot read ({type(e).__name__}: {e})") from None
    mu, cov = _check_arrays(_pick(d, _MU_KEYS, where), _pick(d, _COV_KEYS, where), where)
    mu.setflags(write=False)
    cov.setflags(write=False)
    block = int(np.asarray(d.get("block", BLOCK)).reshape(-1)[0])
    meta = {}
    if "meta" in d:
        try:
            meta = json.loads(str(np.asarray(d["meta"]).reshape(-1)[0]))
        except (ValueError, IndexError):
            meta = {}
    return NiqeParams(mu, cov, block, name, meta)


def load_niqe_params(params=None) -> NiqeParams:
    """Resolve a NIQE pristine model.

    Args:
        params: ``None`` or ``"srkit"`` - srkit's shipped model (``srkit/metrics/niqe_srkit_params.npz``);
            ``"official"`` - LIVE's model, read from ``$SRKIT_REFERENCE/niqe_pris_params.npz``,
            ``$SRKIT_DATA/../reference/niqe_pris_params.npz`` or ``../shared/reference/niqe_pris_params.npz``
            (first that exists; nothing is downloaded); a path to an ``.npz`` or ``.mat`` file with
            ``mu_pris_param`` (1, 36) and ``cov_pris_param`` (36, 36) (``mu_prisparam`` / ``cov_prisparam``, as
            in the release's ``modelparameters.mat``, work too); a mapping with ``mu`` and ``cov`` (as
            :func:`fit_niqe_params` returns); or a :class:`NiqeParams`.

    Raises:
        ConfigError: the file is missing or unreadable, or the arrays have the wrong shapes or hold NaN/Inf.
    """
    if isinstance(params, NiqeParams):
        return params
    if isinstance(params, Mapping):
        mu, cov = _check_arrays(_pick(params, _MU_KEYS, "NIQE params"), _pick(params, _COV_KEYS, "NIQE params"),
                                "NIQE params")
        return NiqeParams(mu, cov, int(params.get("block", BLOCK)), str(params.get("name", "custom")))
    if params is None or (isinstance(params, str) and params == "srkit"):
        path, name = SRKIT_PARAMS_FILE, "srkit"
        if not path.is_file():
            raise ConfigError(f"srkit's NIQE model {str(path)!r} is missing; make it with "
                              f"'srkit iqa fit-niqe HR_DIR... -o {path}' or pass params='official' / a file")
    elif isinstance(params, str) and params == "official":
        found = [p for p in _official_candidates() if p.is_file()]
        if not found:
            raise ConfigError(
                f"the official NIQE model ({OFFICIAL_FILE_NAME}) was not found in "
                f"{', '.join(str(p) for p in _official_candidates())}; put it in one of them (or set "
                "SRKIT_REFERENCE to its folder) or pass its path")
        path, name = found[0], "official"
    elif isinstance(params, (str, os.PathLike)):
        path = Path(os.fspath(params))
        name = str(path)
        if not path.is_file():
            raise ConfigError(f"NIQE params file {str(path)!r} does not exist")
    else:
        raise ConfigError(f"NIQE params must be None, 'official', a path or a mapping, got {type(params).__name__}")
    st = path.stat()
    return _load_file(str(path.resolve()), st.st_mtime_ns, st.st_size, name)


def save_niqe_params(path: str | os.PathLike, params: Mapping | NiqeParams) -> Path:
    """Write a pristine model as ``.npz`` (``mu_pris_param`` (1, 36), ``cov_pris_param`` (36, 36), ``block``,
    ``meta`` as JSON text), atomically (temp file in the same folder, then rename)."""
    p = load_niqe_params(params)
    meta = dict(p.meta)
    if isinstance(params, Mapping):
        meta.update({k: v for k, v in params.items() if k not in ("mu", "cov", "block", "name")
                     and isinstance(v, (int, float, str, list, dict, bool))})
    out = Path(os.fspath(path))
    out.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{out.name}.", suffix=".tmp", dir=out.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            np.savez(f, mu_pris_param=p.mu.reshape(1, N_FEATURES), cov_pris_param=p.cov,
                     block=np.int64(p.block), meta=np.array(json.dumps(meta, sort_keys=True)))
        os.replace(tmp, out)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return out


# --------------------------------------------------------------------------------------------------------------
# Public metric and fitting
# --------------------------------------------------------------------------------------------------------------


def niqe_features(image, crop_border: int = 0, color: str = "y", block: int = BLOCK) -> np.ndarray:
    """The (n_blocks, 36) NIQE block features of an image (see the module docstring)."""
    plane = _crop(_plane(image, color), int(crop_border), block)
    return _plane_features(plane, block)[0]


def _distance(feats: np.ndarray, p: NiqeParams) -> float:
    """The release's quality: Mahalanobis-like distance of the image's block-feature MVG to the pristine one."""
    complete = feats[~np.isnan(feats).any(axis=1)]
    if complete.shape[0] == 0:
        raise ShapeError("niqe: no block has finite features (a flat image?)")
    mu = np.array([np.mean(c[~np.isnan(c)]) for c in feats.T])  # nanmean; every column has a finite value
    cov = np.cov(complete, rowvar=False) if complete.shape[0] > 1 else np.zeros((N_FEATURES, N_FEATURES))
    a = (p.cov + cov) / 2.0
    inv = np.linalg.pinv(a, rcond=max(a.shape) * np.finfo(np.float64).eps)  # MATLAB pinv's default tolerance
    d = p.mu - mu
    return float(np.sqrt(max(float(d @ inv @ d), 0.0)))


def niqe(image, crop_border: int = 0, color: str = "y", params=None) -> float:
    """NIQE of one image (lower is better), as the LIVE MATLAB release computes it.

    Args:
        image: uint8 (H, W) / (H, W, 3) array, float [0, 1] (H, W[, 3]) array, or float [0, 1] torch tensor
            (3, H, W) / (1, 3, H, W). Float input is clipped and rounded to uint8 first.
        crop_border: pixels removed from every side first (SR papers use the scale factor).
        color: ``"y"`` - MATLAB ``rgb2ycbcr`` luma of the uint8 image, rounded (BasicSR / SR papers);
            ``"gray"`` - MATLAB ``rgb2gray``, rounded (what the LIVE code does). Gray input is used as is.
        params: the pristine model, see :func:`load_niqe_params` (default: srkit's own model; ``"official"``
            for LIVE's). Scores from different models are not comparable.

    Returns:
        The NIQE score (a float >= 0).

    Raises:
        ShapeError: wrong layout or dtype, NaN/Inf, smaller than one 96x96 block after cropping, constant image.
        ConfigError: unknown ``color``; params missing or malformed.
    """
    p = load_niqe_params(params)
    plane = _crop(_plane(image, color), int(crop_border), p.block)
    feats, _ = _plane_features(plane, p.block)
    return _distance(feats, p)


def fit_niqe_params(
    images: Iterable,
    *,
    sharpness_threshold: float = SHARPNESS_THRESHOLD,
    block: int = BLOCK,
    color: str = "y",
) -> dict:
    """Fit a pristine NIQE model with the release's recipe (``estimatemodelparam.m``).

    Each image becomes a plane as in :func:`niqe` (``color``), cut to a multiple of ``block``; its blocks'
    36 features are kept where the block's sharpness (mean local sigma at scale 1) exceeds
    ``sharpness_threshold`` times the image's largest block sharpness. The model is the ``nanmean`` and the
    ``nancov`` (rows with NaN dropped) of all kept blocks.

    Args:
        images: uint8 (or float [0, 1]) images; images smaller than one block and constant images are skipped.
        sharpness_threshold: the release's ``sh_th`` (0.75).
        block: block size (the release's 96; stored with the model and used when scoring with it).
        color: ``"y"`` (default, matching :func:`niqe`'s default) or ``"gray"`` (what LIVE used).

    Returns:
        ``{"mu": (36,), "cov": (36, 36), "block", "images", "skipped", "blocks", "sharpness_threshold",
        "color"}``; pass it to :func:`niqe` as ``params`` or to :func:`save_niqe_params`.

    Raises:
        ConfigError: fewer than two usable blocks in all, or bad arguments.
    """
    if not 0.0 <= float(sharpness_threshold) <= 1.0:
        raise ConfigError(f"sharpness_threshold must be in [0, 1], got {sharpness_threshold}")
    if int(block) < 8 or int(block) % 2:
        raise ConfigError(f"block must be an even integer >= 8, got {block}")
    block = int(block)
    kept, used, skipped = [], 0, 0
    for image in images:
        try:
            plane = _crop(_plane(image, color), 0, block)
        except ShapeError:
            skipped += 1
            continue
        feats, sharp = _plane_features(plane, block)
        kept.append(feats[sharp > sharpness_threshold * sharp.max()])
        used += 1
    allf = np.vstack(kept) if kept else np.empty((0, N_FEATURES))
    complete = allf[~np.isnan(allf).any(axis=1)]
    if complete.shape[0] < 2:
        raise ConfigError(f"NIQE fit: {complete.shape[0]} usable block(s) from {used} image(s) "
                          f"({skipped} skipped); need at least 2")
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        mu = np.nanmean(allf, axis=0)
    return {
        "mu": mu, "cov": np.cov(complete, rowvar=False), "block": block, "images": used, "skipped": skipped,
        "blocks": int(allf.shape[0]), "sharpness_threshold": float(sharpness_threshold), "color": color,
    }


__all__ = [
    "BLOCK", "GRAY_WEIGHTS", "NiqeParams", "aggd_fit", "fit_niqe_params", "ggd_fit", "load_niqe_params", "niqe",
    "niqe_features", "save_niqe_params",
]
