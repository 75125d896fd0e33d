"""Quality features -> human opinion: trainable heads and the evaluation protocol that keeps their numbers fair.

No-reference indices such as NIQE or srkit's KLT index are opinion-unaware: they score an image by its distance
from pristine statistics. Users who have mean opinion scores (MOS) for their own images can instead learn a mapping
from an index's features to MOS. Such numbers are easy to inflate (the same scene in training and test, one lucky
split, PLCC without the usual non-linear mapping), so this module fixes the protocol the IQA literature uses:

- splits by reference image: every distorted version of one scene is on the same side (`reference_splits`);
- many random splits (>= 100 by default), reporting the median and spread (`cross_validate`);
- SROCC and KROCC on the raw predictions; PLCC and RMSE after the 4-parameter logistic mapping of the VQEG
  (`agreement`, `fit_logistic4`).

Heads (`fit_head`):
- ``"svr"``: epsilon-SVR with an RBF kernel on standardised features (scikit-learn's solver); saved as plain arrays
  (support vectors, dual coefficients, intercept, gamma) and evaluated with numpy, so no pickle is ever loaded;
- ``"rank"``: a linear pairwise ranking model (logistic loss on the feature differences of every pair with
  different scores, L2-regularised, L-BFGS); predicts an unbounded score whose order is what it learned.

Reference: VQEG, "Final report on the validation of objective models of video quality assessment", 2000 (the
logistic mapping); Mittal et al., "No-reference image quality assessment in the spatial domain", IEEE TIP 2012
(SVR on natural-scene-statistics features, splits by reference).
"""

from __future__ import annotations

import dataclasses
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from srkit.errors import ConfigError, ShapeError

__all__ = [
    "Agreement", "OpinionHead", "agreement", "cross_validate", "fit_head", "fit_logistic4", "load_head", "logistic4",
    "reference_splits", "save_head",
]

HEADS = ("svr", "rank")


# ------------------------------------------------------------------------------------------------ agreement


def logistic4(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    """VQEG's 4-parameter logistic: ``(b1 - b2) / (1 + exp(-(x - b3) / |b4|)) + b2`` (monotone in x)."""
    z = np.clip(-(np.asarray(x, np.float64) - b3) / (abs(b4) + 1e-12), -500.0, 500.0)
    return (b1 - b2) / (1.0 + np.exp(z)) + b2


def _logistic_signed(x: np.ndarray, b1: float, b2: float, b3: float, b4: float) -> np.ndarray:
    z = np.clip(-(x - b3) / (b4 if abs(b4) > 1e-12 else 1e-12), -500.0, 500.0)
    return (b1 - b2) / (1.0 + np.exp(z)) + b2


def fit_logistic4(pred: np.ndarray, mos: np.ndarray) -> tuple[float, float, float, float]:
    """Least-squares fit of `logistic4` mapping predictions to MOS.

    Fitted with a signed slope (smooth in every parameter; the start: b1/b2 at the MOS range, b3 at the median
    prediction, b4 at half the predictions' spread, signed by the correlation), then written in the |b4| form.
    """
    from scipy.optimize import curve_fit

    pred, mos = np.asarray(pred, np.float64), np.asarray(mos, np.float64)
    rising = np.corrcoef(pred, mos)[0, 1] >= 0 if np.std(pred) > 0 and np.std(mos) > 0 else True
    spread = float(np.std(pred)) / 2 + 1e-6
    p0 = [float(mos.max()), float(mos.min()), float(np.median(pred)), spread if rising else -spread]
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # "covariance could not be estimated": only the fit is used
            params, _ = curve_fit(_logistic_signed, pred, mos, p0=p0, maxfev=20000)
    except RuntimeError:  # no convergence: keep the starting point (still monotone; PLCC is then a lower bound)
        params = np.asarray(p0)
    b1, b2, b3, b4 = (float(p) for p in params)
    return (b1, b2, b3, b4) if b4 >= 0 else (b2, b1, b3, -b4)


@dataclass(frozen=True)
class Agreement:
    """Agreement of predictions with opinion scores: SROCC, KROCC (raw), PLCC and RMSE (after `logistic4`)."""

    srocc: float
    krocc: float
    plcc: float
    rmse: float


def agreement(pred: np.ndarray, mos: np.ndarray) -> Agreement:
    """SROCC / KROCC of `pred` vs `mos`, and PLCC / RMSE after the VQEG logistic mapping of `pred` to `mos`.

    Args:
        pred: (N,) predicted quality (any scale, either direction: SROCC/KROCC keep their sign).
        mos: (N,) opinion scores.

    Raises:
        ShapeError: different lengths, fewer than 3 items, or NaN/Inf.
    """
    from scipy.stats import kendalltau, pearsonr, spearmanr

    pred, mos = _vector(pred, "pred"), _vector(mos, "mos")
    if pred.shape != mos.shape or pred.size < 3:
        raise ShapeError(f"agreement needs >= 3 paired values, got {pred.size} predictions and {mos.size} scores")
    srocc = float(spearmanr(pred, mos).statistic)
    krocc = float(kendalltau(pred, mos).statistic)
    mapped = logistic4(pred, *fit_logistic4(pred, mos))
    plcc = float(pearsonr(mapped, mos).statistic) if np.std(mapped) > 0 else 0.0
    rmse = float(np.sqrt(np.mean((mapped - mos) ** 2)))
    return Agreement(srocc, krocc, plcc, rmse)


def _vector(x: np.ndarray, name: str) -> np.ndarray:
    a = np.asarray(x, np.float64).reshape(-1)
    if not np.all(np.isfinite(a)):
        raise ShapeError(f"{name} holds NaN or Inf")
    return a


# ------------------------------------------------------------------------------------------------ splits


def reference_splits(groups: list | np.ndarray, n_splits: int = 100, test_share: float = 0.2,
                     seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """Random train/test splits in which every reference image (group) lies wholly on one side.

    Args:
        groups: (N,) the reference image (scene) of each item: any hashable labels.
        n_splits: number of random splits.
        test_share: share of the reference images in the test side (at least one, at most all but one).
        seed: the splits are a pure function of (groups, n_splits, test_share, seed).

    Returns:
        `n_splits` pairs (train indices, test indices), sorted.

    Raises:
        ConfigError: fewer than 2 distinct references, n_splits < 1 or test_share outside (0, 1).
    """
    labels = np.asarray([str(g) for g in groups])
    refs = np.unique(labels)
    if refs.size < 2:
        raise ConfigError(f"reference_splits needs >= 2 distinct reference images, got {refs.size}")
    if n_splits < 1 or not 0.0 < test_share < 1.0:
        raise ConfigError(f"need n_splits >= 1 and 0 < test_share < 1, got {n_splits} and {test_share}")
    n_test = min(refs.size - 1, max(1, round(test_share * refs.size)))
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n_splits):
        test_refs = rng.choice(refs, size=n_test, replace=False)
        in_test = np.isin(labels, test_refs)
        out.append((np.flatnonzero(~in_test), np.flatnonzero(in_test)))
    return out


# ------------------------------------------------------------------------------------------------ heads


@dataclass(frozen=True)
class OpinionHead:
    """A fitted mapping from feature vectors to opinion scores, with its feature normalisation.

    `predict` standardises features with `mean` / `scale`, then: ``svr`` - sum of dual_coef * RBF(x, support) +
    intercept; ``rank`` - the linear score weights @ x + intercept.
    """

    kind: str
    mean: np.ndarray  # (F,)
    scale: np.ndarray  # (F,)
    weights: np.ndarray  # svr: dual coefficients (S,); rank: (F,)
    intercept: float
    support: np.ndarray | None = None  # svr: (S, F) standardised support vectors
    gamma: float = 0.0  # svr: RBF width
    feature: str = ""  # which feature extractor the head was fitted on (e.g. "klt")

    @property
    def n_features(self) -> int:
        return int(self.mean.size)

    def predict(self, features: np.ndarray) -> np.ndarray:
        """(N, F) or (F,) features -> (N,) or scalar predictions."""
        x = np.asarray(features, np.float64)
        single = x.ndim == 1
        x = np.atleast_2d(x)
        if x.shape[1] != self.n_features:
            raise ShapeError(f"this head takes {self.n_features} features per image, got {x.shape[1]}")
        z = (x - self.mean) / self.scale
        if self.kind == "svr":
            assert self.support is not None
            d2 = (z * z).sum(1)[:, None] + (self.support * self.support).sum(1)[None, :] - 2.0 * z @ self.support.T
            y = np.exp(-self.gamma * np.maximum(d2, 0.0)) @ self.weights + self.intercept
        else:
            y = z @ self.weights + self.intercept
        return y[0] if single else y


def _standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(0)
    scale = x.std(0)
    return mean, np.where(scale > 1e-12, scale, 1.0)


def _check_xy(features: np.ndarray, scores: ArrayLike) -> tuple[np.ndarray, np.ndarray]:
    x = np.asarray(features, np.float64)
    y = np.asarray(scores, np.float64).reshape(-1)
    if x.ndim != 2 or x.shape[0] != y.size:
        raise ShapeError(f"features must be (N, F) with N = len(scores); got {x.shape} and {y.size} scores")
    if y.size < 3:
        raise ShapeError(f"fitting a head needs >= 3 scored images, got {y.size}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(y))):
        raise ShapeError("features or scores hold NaN or Inf")
    return x, y


def fit_head(features: np.ndarray, scores: ArrayLike, kind: str = "svr", *, c: float = 10.0,
             epsilon: float | None = None, l2: float = 1e-2, feature: str = "") -> OpinionHead:
    """Fit a head mapping (N, F) features to (N,) opinion scores.

    Args:
        features: (N, F) feature vectors (e.g. `srkit.metrics.klt_features` of each image).
        scores: (N,) opinion scores (higher = better, or whatever convention the user's scores follow).
        kind: ``"svr"`` (RBF epsilon-SVR; `c` and `epsilon`, default 0.1 x the scores' std) or ``"rank"``
            (pairwise logistic ranking, L2 weight `l2`).
        feature: name of the feature extractor, stored with the head.

    Raises:
        ConfigError: unknown kind.  ShapeError: bad shapes, < 3 items, NaN/Inf.
    """
    if kind not in HEADS:
        raise ConfigError(f"head kind {kind!r} is not one of {', '.join(HEADS)}")
    x, y = _check_xy(features, scores)
    mean, scale = _standardise(x)
    z = (x - mean) / scale
    if kind == "svr":
        from sklearn.svm import SVR

        eps = 0.1 * float(np.std(y)) if epsilon is None else float(epsilon)
        gamma = 1.0 / z.shape[1]  # standardised features: sklearn's "scale" rule with unit variance
        svr = SVR(kernel="rbf", C=c, epsilon=eps, gamma=gamma).fit(z, y)
        return OpinionHead("svr", mean, scale, svr.dual_coef_.reshape(-1).astype(np.float64),
                           float(svr.intercept_[0]), svr.support_vectors_.astype(np.float64), gamma, feature)
    w = _fit_ranker(z, y, l2)
    # Centre and scale the score on the training data so predictions sit on the scores' scale (order unchanged).
    s = z @ w
    a = float(np.std(y) / (np.std(s) + 1e-12))
    return OpinionHead("rank", mean, scale, w * a, float(np.mean(y) - a * np.mean(s)), None, 0.0, feature)


def _fit_ranker(z: np.ndarray, y: np.ndarray, l2: float) -> np.ndarray:
    from scipy.optimize import minimize

    i, j = np.nonzero(y[:, None] > y[None, :])  # every ordered pair with i better than j
    if i.size == 0:
        raise ShapeError("a ranking head needs scores that are not all equal")
    diff = z[i] - z[j]

    def loss(w: np.ndarray) -> tuple[float, np.ndarray]:
        m = diff @ w
        # log(1 + exp(-m)), stable; gradient -sigmoid(-m) * diff
        val = np.logaddexp(0.0, -m).mean() + l2 * float(w @ w)
        sig = 0.5 * (1.0 + np.tanh(-0.5 * m))
        return float(val), -(sig @ diff) / m.size + 2.0 * l2 * w

    res = minimize(loss, np.zeros(z.shape[1]), jac=True, method="L-BFGS-B")
    return np.asarray(res.x, np.float64)


def cross_validate(features: np.ndarray, scores: ArrayLike, groups: list | np.ndarray, kind: str = "svr", *,
                   n_splits: int = 100, test_share: float = 0.2, seed: int = 0, **head_options) -> dict:
    """The fair protocol: fit on the train side of each `reference_splits` split, score the test side.

    Returns:
        {"n_splits", "test_share", "kind", "median": {srocc, krocc, plcc, rmse}, "mean": ..., "std": ...,
        "per_split": [Agreement as dict, ...]}.
    """
    x, y = _check_xy(features, scores)
    if len(groups) != y.size:
        raise ShapeError(f"groups must have one label per image: {len(groups)} labels for {y.size} images")
    rows = []
    for train, test in reference_splits(groups, n_splits, test_share, seed):
        if test.size < 3 or train.size < 3:
            raise ShapeError("a split has fewer than 3 images on one side: give more reference images")
        head = fit_head(x[train], y[train], kind, **head_options)
        rows.append(dataclasses.asdict(agreement(head.predict(x[test]), y[test])))
    keys = ("srocc", "krocc", "plcc", "rmse")
    table = {k: np.array([r[k] for r in rows]) for k in keys}
    return {
        "n_splits": n_splits, "test_share": test_share, "kind": kind,
        "median": {k: float(np.median(v)) for k, v in table.items()},
        "mean": {k: float(np.mean(v)) for k, v in table.items()},
        "std": {k: float(np.std(v)) for k, v in table.items()},
        "per_split": rows,
    }


# ------------------------------------------------------------------------------------------------ files


def save_head(head: OpinionHead, path: str | os.PathLike) -> Path:
    """Write a head as a plain .npz (no pickle), atomically."""
    path = Path(path)
    arrays: dict[str, Any] = {"kind": np.array(head.kind), "feature": np.array(head.feature), "mean": head.mean,
              "scale": head.scale, "weights": head.weights, "intercept": np.array(head.intercept),
              "gamma": np.array(head.gamma)}
    if head.support is not None:
        arrays["support"] = head.support
    from srkit.io.atomic import atomic_write

    atomic_write(path, lambda fh: np.savez(fh, **arrays))
    return path


def load_head(path: str | os.PathLike) -> OpinionHead:
    """Read a head written by `save_head`; a file that is not one is a one-line ConfigError naming it."""
    path = Path(path)
    try:
        with np.load(path, allow_pickle=False) as z:
            data = {k: z[k] for k in z.files}
    except (OSError, ValueError) as e:
        raise ConfigError(f"{path}: not a readable head file ({e})") from None
    need = {"kind", "mean", "scale", "weights", "intercept", "gamma"}
    if not need <= data.keys():
        raise ConfigError(f"{path}: not an srkit opinion head (missing {', '.join(sorted(need - data.keys()))})")
    kind = str(data["kind"])
    mean, scale, weights = (np.asarray(data[k], np.float64) for k in ("mean", "scale", "weights"))
    support = np.asarray(data["support"], np.float64) if "support" in data else None
    f = mean.size
    bad = scale.shape != (f,) or kind not in HEADS
    if kind == "svr":
        bad = bad or support is None or support.ndim != 2 or support.shape != (weights.size, f)
    else:
        bad = bad or weights.shape != (f,)
    if bad:
        raise ConfigError(f"{path}: head arrays have inconsistent shapes for kind {kind!r}")
    return OpinionHead(kind, mean, scale, weights, float(data["intercept"]), support, float(data["gamma"]),
                       str(data.get("feature", "")))
