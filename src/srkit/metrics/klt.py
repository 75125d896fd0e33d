"""KLT index: a no-reference, opinion-unaware SR quality index on Karhunen-Loeve-transform NSS features.

Reference: Q. Jiang, Z. Liu, K. Gu, F. Shao, X. Zhang, H. Liu and W. Lin, "Single Image Super-Resolution Quality
Assessment: A Real-World Dataset, Subjective Studies, and an Objective Metric", IEEE Transactions on Image
Processing 31, 2022 (KLTSRQA); named in Z. Wang, J. Chen and S. C. H. Hoi, "Deep Learning for Image
Super-resolution: A Survey", IEEE TPAMI 43(10), 2021. NSS machinery (MSCN, AGGD moment matching) as in NIQE
(:mod:`srkit.metrics.niqe`, whose helpers this module uses).

What is computed (``klt``):

1. The image becomes uint8 (float [0, 1] input is rounded first, exactly as :func:`srkit.metrics.niqe.niqe`
   does), ``crop_border`` pixels go from every side, and the rest is cut at the bottom/right to a multiple of 8.
2. Opponent colour planes on the 0..255 scale: ``O1 = (R - G) / sqrt 2``, ``O2 = (R + G - 2B) / sqrt 6``,
   ``O3 = (R + G + B) / sqrt 3`` (luminance, full resolution). The two chroma planes are taken at half
   resolution (2x2 box mean, as JPEG's 4:2:0, then cut to a multiple of 8 again): the eye resolves chroma
   less finely, and it halves the cost. A gray image ((H, W), or RGB with R = G = B) is its luminance only: it
   is read as RGB with three equal channels, whose O1 and O2 are identically 0 (computed from exact integer
   sums). A chroma plane that is constant (such as O1 when R = G everywhere), or smaller than one block (an
   image under 16x16), carries no structure and is left out the same way.
3. Per plane, MSCN coefficients ``(I - mu) / (sigma + 1)`` with NIQE's 7x7 Gaussian window (sigma 7/6,
   replicated borders; exact 0 where the neighbourhood is flat) - :func:`srkit.metrics.niqe._mscn`.
4. The MSCN plane is cut into non-overlapping 8x8 blocks (row-major pixels -> 64-vectors) and each block is
   projected onto that channel's KLT basis: the eigenvectors of the covariance of pristine MSCN blocks, sorted
   by eigenvalue, descending (each eigenvector's sign fixed so that its largest-magnitude entry is positive).
5. Features per channel (131): the AGGD fit of all coefficients pooled -> ``(alpha, log beta_l, log beta_r)``;
   the AGGD shape ``alpha`` of each of the 64 components; the log energy (mean squared coefficient) of each of
   the 64 components. AGGD fits are NIQE's moment matching (:func:`srkit.metrics.niqe.aggd_fit`: alpha on the
   grid 0.2:0.001:10; beta = the scale parameter of each side). Per component, only the shape is kept: its two
   scales are set (to within the small asymmetry) by the energy and the shape, and the asymmetry of a single
   component is sign-arbitrary noise that made the index worse. Features of channels left out are NaN.
6. Index = the weighted RMS z-score of the features against the pristine model: ``z_i = (f_i - m_i) / s_i``
   with the pristine mean ``m`` and standard deviation ``s`` (the diagonal of the pristine covariance),
   ``klt = sqrt(sum_i w_i z_i^2 / sum_i w_i)`` over the finite features, ``w`` = 1 for luminance and 1/4 for
   each chroma channel. 0 is the pristine mean; a pristine image is about 1; lower is better (as NIQE).

What is faithful to the paper: KLT kernels learned from data and applied to MSCN-normalised 8x8 patches of
opponent-colour channels, and AGGD-parametrised distributions of the KLT coefficients, per spectral component
and pooled, plus the component energies, as quality features.

What differs, on purpose:

* KLTSRQA learns its KLT kernels from each test image and maps the features to a score with an SVR trained on
  subjective scores (opinion-aware). Here the kernels and the reference statistics come from pristine images
  (srkit's HR training images), and the score is a distance to them, in NIQE's opinion-unaware spirit: no
  subjective data is needed, and scores are comparable across images.
* The distance uses the diagonal of the pristine covariance only (a standardised Euclidean distance), not a
  Mahalanobis distance with its pseudo-inverse. With 341 pristine images and 393 features the off-diagonal
  estimates are rank-deficient and noisy. In a trial (full-resolution chroma, equal channel weights) the
  per-image Spearman correlation with severity (see below) was 0.44-0.95 per ladder with the full covariance
  (pinv), 0.93-1.0 with a half-shrunk one ((C + diag C) / 2), 0.98-1.0 with the diagonal. For the same
  reason (and to keep the shipped file small) the model keeps per-feature variances, not a full matrix. Chroma
  weighs 1/4 per channel: with equal weights the blur ladder lost monotonicity on some images (chroma
  statistics vary more between photographs than they move under mild blur).
* One scale (the image as given; chroma at half). A second, half-resolution scale for all channels, as in
  NIQE, was tried: it did not make the per-image rankings better and cost more.
* No sharpness-based block selection when fitting: the index describes all blocks of an image, so the pristine
  statistics are computed the same way (the training HR images are sharp throughout).

Measured (shipped model; 14 Set14 + the first 20 B100 HR images; ladders bicubic down-up x2/3/4/6/8, Gaussian
blur sigma 0.5/1/1.5/2/3, Gaussian noise sigma 5/10/20/30/50, JPEG quality 90/70/50/30/10): Spearman
correlation of the index with severity, per image and averaged, 1.000 for all four ladders (NIQE, srkit model:
0.968 / 1.000 / 1.000 / 0.900); pooled over all images 0.944 / 0.952 / 0.924 / 0.877. Speed: about 30 ms per
512x512 RGB image on one CPU core (median over Set14 + B100, ``benchmarks/iqa_speed.py``), up to about 50 ms
for images with large flat areas (NIQE's exact flat-neighbourhood test).

Shipped model: ``klt_srkit_model.npz`` next to this file, fitted (deterministically) on the HR images of T91,
BSDS200 and General100 - never the benchmark sets::

    from srkit.metrics.klt import fit_klt_model, save_klt_model
    save_klt_model(fit_klt_model(["../shared/datasets/T91/HR", "../shared/datasets/BSDS200/HR",
                                  "../shared/datasets/General100/HR"], name="srkit"),
                   "src/srkit/metrics/klt_srkit_model.npz")

Scores from different models are not comparable; ``load_klt_model(...).name`` says which one was used.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import numpy as np

from srkit.errors import ConfigError, ShapeError
from srkit.metrics.niqe import _ALPHA_GRID, _BETA_FACTOR, _aggd, _as_uint8, _mscn

BLOCK = 8
N_COMPONENTS = BLOCK * BLOCK
CHANNELS = ("O1", "O2", "O3")
LUMINANCE = 2  # index of O3 in CHANNELS
N_POOLED = 3
FEATURES_PER_CHANNEL = N_POOLED + 2 * N_COMPONENTS  # 131
N_FEATURES = len(CHANNELS) * FEATURES_PER_CHANNEL  # 393
CHANNEL_WEIGHTS = (0.25, 0.25, 1.0)
CHROMA_DOWNSCALE = 2
ORTHONORMAL_TOL = 1e-6
SRKIT_MODEL_FILE = Path(__file__).with_name("klt_srkit_model.npz")

# RGB (0..255) -> opponent colour: rows O1, O2, O3 (an orthonormal matrix).
_OPPONENT = np.array([
    [1.0 / np.sqrt(2.0), -1.0 / np.sqrt(2.0), 0.0],
    [1.0 / np.sqrt(6.0), 1.0 / np.sqrt(6.0), -2.0 / np.sqrt(6.0)],
    [1.0 / np.sqrt(3.0), 1.0 / np.sqrt(3.0), 1.0 / np.sqrt(3.0)],
])


# --------------------------------------------------------------------------------------------------------------
# Planes, blocks and per-channel features
# --------------------------------------------------------------------------------------------------------------


def opponent_planes(image, crop_border: int = 0) -> dict[int, np.ndarray]:
    """The opponent-colour planes the index works on.

    Args:
        image: uint8 (H, W) / (H, W, 3) array, float [0, 1] (H, W[, 3]) array, or float [0, 1] / uint8 torch
            tensor (C, H, W) / (1, C, H, W). Float input is clipped and rounded to uint8 first.
        crop_border: pixels removed from every side before the cut to a multiple of 8 (bottom/right).

    Returns:
        ``{channel index: float64 plane}``, channel indices into :data:`CHANNELS` (O1, O2, O3), values on the
        0..255 scale (O1 in [-180, 180], O2 in [-208, 208], O3 in [0, 442]). O3 is (H', W'): the cropped image
        cut to multiples of 8; O1 / O2 are at half resolution (2x2 box means), cut to multiples of 8 again.
        O3 is always present; O1 / O2 only where they are not constant and hold a block (never for gray).

    Raises:
        ShapeError: wrong layout or dtype, NaN/Inf, smaller than one 8x8 block after cropping, constant image.
    """
    arr = _as_uint8(image, "klt")
    if arr.ndim == 2:
        arr = np.repeat(arr[..., None], 3, axis=2)
    crop_border = int(crop_border)
    if crop_border < 0:
        raise ShapeError(f"crop_border must be >= 0, got {crop_border}")
    h, w = arr.shape[:2]
    if crop_border:
        arr = arr[crop_border: h - crop_border, crop_border: w - crop_border]
    ch, cw = arr.shape[:2]
    if ch < BLOCK or cw < BLOCK:
        raise ShapeError(f"klt needs at least one {BLOCK}x{BLOCK} block; the image is {w}x{h}"
                         + (f" ({max(cw, 0)}x{max(ch, 0)} after cropping {crop_border} px)" if crop_border else ""))
    arr = arr[: ch - ch % BLOCK, : cw - cw % BLOCK]
    r, g, b = (arr[..., i].astype(np.float64) for i in range(3))
    # Integer sums first (exact), one scaling last: a chroma plane of a gray image is exactly 0, not +-1e-14.
    opp = [r - g, r + g - 2.0 * b, (r + g + b) * _OPPONENT[2, 0]]
    k = CHROMA_DOWNSCALE
    for c, scale in ((0, _OPPONENT[0, 0]), (1, _OPPONENT[1, 0])):
        d = opp[c]
        if k > 1:  # k x k box mean (an exact integer sum, then one scaling), cut to whole blocks again
            hh, ww = d.shape[0] // k, d.shape[1] // k
            d = d[: hh * k, : ww * k].reshape(hh, k, ww, k).sum(axis=(1, 3))
            d = d[: hh - hh % BLOCK, : ww - ww % BLOCK]
            scale = scale / (k * k)
        opp[c] = np.ascontiguousarray(d) * scale
    planes = {c: p for c, p in enumerate(opp) if p.size and p.min() != p.max()}
    if LUMINANCE not in planes:
        raise ShapeError("klt: constant image (no structure to measure; the index is undefined)")
    return planes


def _blocks8(x: np.ndarray) -> np.ndarray:
    """(H, W) with H, W multiples of 8 -> (n_blocks, 64): row-major blocks, each flattened row-major."""
    nh, nw = x.shape[0] // BLOCK, x.shape[1] // BLOCK
    return x.reshape(nh, BLOCK, nw, BLOCK).swapaxes(1, 2).reshape(nh * nw, N_COMPONENTS)


def mscn_blocks(plane: np.ndarray) -> np.ndarray:
    """MSCN coefficients of a plane (NIQE's, 7x7 Gaussian sigma 7/6), as 8x8 blocks: (n_blocks, 64) float64."""
    return _blocks8(_mscn(plane)[0])


def _aggd_params(x: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    idx, left, right = _aggd(x)
    return _ALPHA_GRID[idx], left * _BETA_FACTOR[idx], right * _BETA_FACTOR[idx]


def coefficient_features(coefs: np.ndarray) -> np.ndarray:
    """The 131 features of one channel's KLT coefficients.

    Args:
        coefs: (n_blocks, 64) coefficients, component k in column k.

    Returns:
        (131,) float64: ``[alpha, log beta_l, log beta_r]`` of all coefficients pooled (AGGD), ``alpha_k`` of
        each component (AGGD shape, in [0.2, 10]), ``log E[c_k^2]`` of each component. Degenerate values (a
        side without samples, a component with zero energy) come out as NaN / -inf: the index skips them.
    """
    pooled_a, pooled_l, pooled_r = _aggd_params(coefs.reshape(1, -1))
    comp_a, _, _ = _aggd_params(np.ascontiguousarray(coefs.T))
    energy = np.einsum("nk,nk->k", coefs, coefs) / coefs.shape[0]
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.concatenate([pooled_a, np.log(pooled_l), np.log(pooled_r), comp_a, np.log(energy)])


# --------------------------------------------------------------------------------------------------------------
# Model
# --------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class KltModel:
    """A pristine KLT model.

    Attributes:
        bases: (3, 64, 64) float64, one orthonormal KLT basis per channel (O1, O2, O3); column k of ``bases[c]``
            is component k, sorted by pristine variance, descending.
        eigenvalues: (3, 64) the pristine variance of each component (descending per channel).
        mean: (393,) the pristine feature mean (layout of :func:`klt_features`).
        var: (393,) the pristine feature variance (the diagonal of the pristine feature covariance, > 0).
        channel_weights: (3,) the weight of each channel's features in the distance.
        name: which model this is (``"srkit"`` for the shipped one, else the file name or ``"custom"``).
        meta: provenance (images, sources, ...), free-form.

    Models read from files are cached and shared: their arrays are read-only.
    """

    bases: np.ndarray
    eigenvalues: np.ndarray
    mean: np.ndarray
    var: np.ndarray
    channel_weights: np.ndarray = field(default_factory=lambda: np.array(CHANNEL_WEIGHTS))
    name: str = "custom"
    meta: dict = field(default_factory=dict, compare=False)

    def __post_init__(self):
        # Shapes, finiteness, var > 0 and orthonormal bases, checked once, whoever builds the model (ConfigError).
        _checked({k: getattr(self, k) for k in _SHAPES}, f"KLT model {self.name!r}")


_SHAPES = {
    "bases": (len(CHANNELS), N_COMPONENTS, N_COMPONENTS),
    "eigenvalues": (len(CHANNELS), N_COMPONENTS),
    "mean": (N_FEATURES,),
    "var": (N_FEATURES,),
    "channel_weights": (len(CHANNELS),),
}


def _checked(arrays: dict, where: str) -> dict:
    """The model arrays as float64, or a one-line ConfigError naming ``where`` and the offending array."""
    out = {}
    for key, shape in _SHAPES.items():
        if key not in arrays:
            raise ConfigError(f"{where}: no {key!r} array (keys: {', '.join(sorted(map(str, arrays)))})")
        a = np.asarray(arrays[key])
        if a.shape != shape:
            raise ConfigError(f"{where}: array {key!r} must have shape {shape}, got {a.shape}")
        if not np.issubdtype(a.dtype, np.number):
            raise ConfigError(f"{where}: array {key!r} must be numeric, got dtype {a.dtype}")
        a = a.astype(np.float64)
        if not np.isfinite(a).all():
            raise ConfigError(f"{where}: array {key!r} holds NaN or Inf")
        out[key] = a
    if not (out["var"] > 0).all():
        raise ConfigError(f"{where}: array 'var' must be > 0 everywhere")
    if not (out["channel_weights"] >= 0).all() or out["channel_weights"][LUMINANCE] <= 0:
        raise ConfigError(f"{where}: array 'channel_weights' must be >= 0 with a positive luminance weight")
    eye = np.eye(N_COMPONENTS)
    for c, q in enumerate(out["bases"]):
        err = float(np.abs(q.T @ q - eye).max())
        if err > ORTHONORMAL_TOL:
            raise ConfigError(f"{where}: array 'bases' channel {CHANNELS[c]} is not orthonormal "
                              f"(max |Q^T Q - I| = {err:.2e})")
    return out


@lru_cache(maxsize=8)
def _load_file(path: str, mtime_ns: int, size: int, name: str) -> KltModel:
    where = f"KLT model {path!r}"
    try:
        with np.load(path, allow_pickle=False) as z:
            d = {k: z[k] for k in z.files}
    except Exception as e:  # noqa: BLE001 - any unreadable file is one line
        raise ConfigError(f"{where}: cannot read ({type(e).__name__}: {' '.join(str(e).split())})") from None
    arrays = _checked(d, where)
    for a in arrays.values():
        a.setflags(write=False)
    meta = {}
    if "meta" in d:
        try:
            meta = json.loads(str(np.asarray(d["meta"]).reshape(-1)[0]))
        except (ValueError, IndexError):
            meta = {}
    return KltModel(**arrays, name=name, meta=meta)


def load_klt_model(model=None) -> KltModel:
    """Resolve a KLT model.

    Args:
        model: ``None`` or ``"srkit"`` - the shipped model (``srkit/metrics/klt_srkit_model.npz``, read once and
            cached); a path to an ``.npz`` written by :func:`save_klt_model`; or a :class:`KltModel`.

    Raises:
        ConfigError: the file is missing or unreadable, or an array has the wrong shape, holds NaN/Inf, or the
            bases are not orthonormal (to 1e-6). The message is one line naming the file and the array.
    """
    if isinstance(model, KltModel):
        return model
    if model is None or (isinstance(model, str) and model == "srkit"):
        path, name = SRKIT_MODEL_FILE, "srkit"
        if not path.is_file():
            raise ConfigError(f"srkit's KLT model {str(path)!r} is missing; refit it with fit_klt_model (see "
                              "srkit.metrics.klt) or pass a model file")
    elif isinstance(model, (str, os.PathLike)):
        path = Path(os.fspath(model))
        name = str(path)
        if not path.is_file():
            raise ConfigError(f"KLT model file {str(path)!r} does not exist")
    else:
        raise ConfigError(f"KLT model must be None, 'srkit', a path or a KltModel, got {type(model).__name__}")
    st = path.stat()
    return _load_file(str(path.resolve()), st.st_mtime_ns, st.st_size, name)


def save_klt_model(model: KltModel, path: str | os.PathLike) -> Path:
    """Write a model as ``.npz`` (``bases``, ``eigenvalues``, ``mean``, ``var``, ``channel_weights``, ``meta``
    as JSON text), atomically (temp file in the same folder, then rename). Returns the path written."""
    if not isinstance(model, KltModel):
        raise ConfigError(f"save_klt_model takes a KltModel, got {type(model).__name__}")
    arrays = _checked({k: getattr(model, k) for k in _SHAPES}, "KLT model")
    out = Path(os.fspath(path))
    out.parent.mkdir(parents=True, exist_ok=True)
    from srkit.io.atomic import atomic_write

    atomic_write(out, lambda f: np.savez_compressed(f, **arrays, meta=np.array(json.dumps(model.meta, sort_keys=True))))
    return out


# --------------------------------------------------------------------------------------------------------------
# Features, index, fit
# --------------------------------------------------------------------------------------------------------------


def _features(planes: dict[int, np.ndarray], bases: np.ndarray) -> np.ndarray:
    feats = np.full(N_FEATURES, np.nan)
    for c, plane in planes.items():
        coefs = mscn_blocks(plane) @ bases[c]
        feats[c * FEATURES_PER_CHANNEL: (c + 1) * FEATURES_PER_CHANNEL] = coefficient_features(coefs)
    return feats


def klt_features(image, crop_border: int = 0, model=None) -> np.ndarray:
    """The KLT feature vector of an image.

    Args:
        image: uint8 (H, W) / (H, W, 3) array, float [0, 1] array, or float [0, 1] tensor (3, H, W) /
            (1, 3, H, W); at least 8x8 after cropping.
        crop_border: pixels removed from every side first.
        model: whose KLT bases to use (see :func:`load_klt_model`; default the shipped model).

    Returns:
        (393,) float64: 131 features per channel, channels in the order O1, O2, O3 (see the module docstring
        for the 131); the features of a channel that is left out (gray image, constant chroma) are NaN.

    Raises:
        ShapeError: bad layout/dtype, NaN/Inf, too small, constant. ConfigError: bad model.
    """
    m = load_klt_model(model)
    return _features(opponent_planes(image, crop_border), m.bases)


def klt_distance(features: np.ndarray, model=None) -> float:
    """The index of a feature vector: weighted RMS z-score against the model over the finite features."""
    m = load_klt_model(model)
    f = np.asarray(features, dtype=np.float64)
    if f.shape != (N_FEATURES,):
        raise ShapeError(f"klt features must have shape ({N_FEATURES},), got {f.shape}")
    w = np.repeat(m.channel_weights, FEATURES_PER_CHANNEL)
    ok = np.isfinite(f) & (w > 0)
    if not ok[LUMINANCE * FEATURES_PER_CHANNEL: (LUMINANCE + 1) * FEATURES_PER_CHANNEL].any():
        raise ShapeError("klt: no finite luminance feature (no structure to measure)")
    z2 = (f[ok] - m.mean[ok]) ** 2 / m.var[ok]
    return float(np.sqrt(np.sum(w[ok] * z2) / np.sum(w[ok])))


def klt(image, crop_border: int = 0, model=None) -> float:
    """The KLT index of one image (lower is better; about 1 for pristine images, 0 at the pristine mean).

    Args:
        image: uint8 (H, W) / (H, W, 3) array, float [0, 1] (H, W[, 3]) array, or float [0, 1] torch tensor
            (3, H, W) / (1, 3, H, W). Float input is clipped and rounded to uint8 first, so the same pixels give
            the same score in every form. Gray images are scored on luminance only.
        crop_border: pixels removed from every side first (SR papers use the scale factor).
        model: the pristine model, see :func:`load_klt_model` (default: srkit's shipped model, loaded once).

    Returns:
        The index, a finite float >= 0.

    Raises:
        ShapeError: wrong layout or dtype, NaN/Inf values, smaller than one 8x8 block after cropping, constant
            image (all one-line messages).
        ConfigError: the model is missing or malformed.
    """
    m = load_klt_model(model)
    return klt_distance(_features(opponent_planes(image, crop_border), m.bases), m)


def _expand(item: str) -> list[Path]:
    """A file, a folder (image files under it, recursively, sorted) or a glob -> image files."""
    import glob

    from srkit.data.folders import list_images
    from srkit.errors import DatasetError

    p = Path(item)
    if p.is_dir():
        try:
            return list_images(p)
        except DatasetError as e:
            raise ConfigError(f"KLT fit: {e}") from None
    if p.is_file():
        return [p]
    hits = sorted(Path(h) for h in glob.glob(item, recursive=True) if Path(h).is_file())
    if not hits:
        raise ConfigError(f"KLT fit: {item}: no such file, folder or matching glob")
    return hits


def _sources(items: Iterable) -> list:
    """Images (arrays / tensors) and image files (files, folders walked recursively and sorted, globs), in order.
    Paths inside a benchmark set (Set5, Set14, B100, ...) are refused: fitting on them would leak the test set."""
    from srkit.train.config import EVAL_SETS

    banned = {s.lower() for s in EVAL_SETS}
    out: list = []
    for item in items:
        if isinstance(item, (str, os.PathLike)):
            files = _expand(os.fspath(item))
            for f in files:
                for parts in (f.parts, Path(os.path.realpath(f)).parts):
                    hit = [p for p in parts if p.lower() in banned]
                    if hit:
                        raise ConfigError(f"KLT fit: {str(f)!r} is in benchmark set {hit[0]!r}; fitting on it would "
                                          "leak the test set")
            out.extend(files)
        else:
            out.append(item)
    return out


def _load(item):
    if isinstance(item, Path):
        from srkit.io.uint8 import read_uint8

        return read_uint8(item)
    return item


def fit_klt_model(sources: Iterable, *, name: str = "custom") -> KltModel:
    """Fit a pristine KLT model: the bases, then the feature statistics.

    Pass 1: per channel, the covariance (mean removed) of the MSCN 8x8 blocks of all images; its eigenvectors,
    sorted by eigenvalue (descending), each with its largest-magnitude entry made positive, are the basis.
    Pass 2: :func:`klt_features` of every image with those bases; the model keeps the per-feature mean and
    variance (ddof 1) over the images where the feature is finite. Gray images add to luminance only. The result
    depends only on the images and their order (no randomness).

    Args:
        sources: images (uint8 / float [0, 1] arrays or tensors, as :func:`klt` takes) and/or paths: image files,
            folders (walked recursively, sorted) or globs. Paths are read twice (once per pass), not kept in
            memory. Paths inside a benchmark set (Set5, Set14, B100, ...) are refused.
        name: stored as the model's name.

    Returns:
        The :class:`KltModel` (``meta`` holds the image counts).

    Raises:
        ConfigError: a benchmark-set path, a missing path, no usable image, or a channel (or feature) seen in
            fewer than two images.
    """
    sources = list(sources)
    items = _sources(sources)
    k = len(CHANNELS)
    scatter = np.zeros((k, N_COMPONENTS, N_COMPONENTS))
    total = np.zeros((k, N_COMPONENTS))
    count = np.zeros(k, dtype=np.int64)
    usable, skipped = [], 0
    for item in items:
        try:
            planes = opponent_planes(_load(item))
        except ShapeError:
            skipped += 1
            continue
        usable.append(item)
        for c, plane in planes.items():
            b = mscn_blocks(plane)
            scatter[c] += b.T @ b
            total[c] += b.sum(0)
            count[c] += b.shape[0]
    if len(usable) < 2:
        raise ConfigError(f"KLT fit: {len(usable)} usable image(s) ({skipped} skipped: smaller than 8x8 or "
                          "constant); need at least 2")
    bases = np.empty((k, N_COMPONENTS, N_COMPONENTS))
    eigenvalues = np.empty((k, N_COMPONENTS))
    for c in range(k):
        if count[c] < 2 * N_COMPONENTS:
            raise ConfigError(f"KLT fit: channel {CHANNELS[c]} has {count[c]} blocks (gray or flat images only?); "
                              f"need at least {2 * N_COMPONENTS}")
        mean = total[c] / count[c]
        cov = scatter[c] / count[c] - np.outer(mean, mean)
        vals, vecs = np.linalg.eigh((cov + cov.T) / 2.0)
        order = np.argsort(vals)[::-1]
        vals, vecs = vals[order], vecs[:, order]
        peak = vecs[np.argmax(np.abs(vecs), axis=0), np.arange(N_COMPONENTS)]
        vecs = vecs * np.where(peak < 0, -1.0, 1.0)
        bases[c], eigenvalues[c] = vecs, np.maximum(vals, 0.0)
    feats = np.array([_features(opponent_planes(_load(item)), bases) for item in usable])
    finite = np.isfinite(feats)
    n = finite.sum(0)
    if (n < 2).any():
        bad = int(np.flatnonzero(n < 2)[0])
        raise ConfigError(f"KLT fit: feature {bad} ({CHANNELS[bad // FEATURES_PER_CHANNEL]}) is finite in "
                          f"{int(n[bad])} image(s); need at least 2")
    f0 = np.where(finite, feats, 0.0)
    mean = f0.sum(0) / n
    var = np.where(finite, (feats - mean) ** 2, 0.0).sum(0) / (n - 1)
    var = np.maximum(var, 1e-12)
    paths = [os.fspath(i) for i in sources if isinstance(i, (str, os.PathLike))]
    meta = {"images": len(usable), "skipped": skipped, "blocks": count.tolist(),
            "images_per_feature_min": int(n.min()), "sources": paths}
    return KltModel(bases, eigenvalues, mean, var, np.array(CHANNEL_WEIGHTS), name, meta)


__all__ = [
    "BLOCK", "CHANNELS", "CHANNEL_WEIGHTS", "FEATURES_PER_CHANNEL", "KltModel", "N_FEATURES", "coefficient_features",
    "fit_klt_model", "klt", "klt_distance", "klt_features", "load_klt_model", "mscn_blocks", "opponent_planes",
    "save_klt_model",
]
