"""Opinion-score heads and the fair protocol, on synthetic scores (no human opinion scores exist here)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import kendalltau, spearmanr

from srkit.errors import ConfigError, ShapeError
from srkit.metrics.opinion import (
    agreement,
    cross_validate,
    fit_head,
    fit_logistic4,
    load_head,
    logistic4,
    reference_splits,
    save_head,
)


def synthetic(n_refs: int = 30, per_ref: int = 5, f: int = 6, noise: float = 0.05, seed: int = 0):
    """Features of distorted images and a MOS that is a monotone, non-linear function of two of them."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(n_refs * per_ref, f))
    latent = 1.5 * x[:, 0] - x[:, 1]
    mos = 1 + 4 / (1 + np.exp(-latent)) + noise * rng.normal(size=latent.size)
    groups = np.repeat([f"ref{i}" for i in range(n_refs)], per_ref)
    return x, mos, groups


def test_rank_correlations_match_scipy():
    rng = np.random.default_rng(1)
    pred, mos = rng.normal(size=40), rng.normal(size=40)
    a = agreement(pred, mos)
    assert a.srocc == pytest.approx(spearmanr(pred, mos).statistic)
    assert a.krocc == pytest.approx(kendalltau(pred, mos).statistic)


def test_logistic_mapping_recovers_a_logistic_relation():
    x = np.linspace(-3, 3, 50)
    mos = logistic4(x, 5.0, 1.0, 0.5, 0.7)
    b = fit_logistic4(x, mos)
    assert np.allclose(logistic4(x, *b), mos, atol=1e-5)
    a = agreement(x, mos)
    assert a.srocc == pytest.approx(1.0) and a.plcc == pytest.approx(1.0, abs=1e-6) and a.rmse < 1e-4
    # A falling relation is fitted too (the sign of the correlation picks the direction).
    assert agreement(-x, mos).plcc == pytest.approx(1.0, abs=1e-6)


def test_reference_splits_keep_each_scene_on_one_side():
    groups = np.repeat(np.arange(20), 4)
    splits = reference_splits(groups, n_splits=100, test_share=0.2, seed=3)
    assert len(splits) == 100
    for train, test in splits:
        assert not set(groups[train]) & set(groups[test])
        assert len(set(groups[test])) == 4 and train.size + test.size == groups.size
    again = reference_splits(groups, n_splits=100, test_share=0.2, seed=3)
    assert all(np.array_equal(a[1], b[1]) for a, b in zip(splits, again))
    assert len({tuple(t) for _, t in splits}) > 50  # splits differ from each other
    with pytest.raises(ConfigError, match="2 distinct"):
        reference_splits(["a"] * 5)


@pytest.mark.parametrize("kind", ["svr", "rank"])
def test_heads_learn_synthetic_opinion_under_the_protocol(kind):
    x, mos, groups = synthetic()
    res = cross_validate(x, mos, groups, kind, n_splits=100, test_share=0.2)
    assert res["n_splits"] == 100 and len(res["per_split"]) == 100
    assert res["median"]["srocc"] > 0.9 and res["median"]["plcc"] > 0.9
    # Features with no relation to the scores do not score well under the same protocol.
    noise = np.random.default_rng(5).normal(size=x.shape)
    assert cross_validate(noise, mos, groups, kind, n_splits=20)["median"]["srocc"] < 0.5


def test_svr_head_predicts_like_sklearn_and_round_trips(tmp_path):
    from sklearn.svm import SVR

    x, mos, _ = synthetic(n_refs=10)
    head = fit_head(x, mos, "svr", feature="klt")
    z = (x - head.mean) / head.scale
    ref = SVR(kernel="rbf", C=10.0, epsilon=0.1 * np.std(mos), gamma=1.0 / x.shape[1]).fit(z, mos).predict(z)
    assert np.allclose(head.predict(x), ref, atol=1e-8)
    back = load_head(save_head(head, tmp_path / "h.npz"))
    assert back.kind == "svr" and back.feature == "klt"
    assert np.array_equal(back.predict(x), head.predict(x))
    assert np.isscalar(back.predict(x[0])) or np.ndim(back.predict(x[0])) == 0


def test_bad_inputs_are_one_line_errors(tmp_path):
    x, mos, groups = synthetic(n_refs=5)
    with pytest.raises(ShapeError, match="features must be"):
        fit_head(x[:, :, None], mos)
    with pytest.raises(ShapeError, match="NaN"):
        fit_head(np.where(x > 2, np.nan, x), mos)
    with pytest.raises(ConfigError, match="head kind"):
        fit_head(x, mos, "forest")
    with pytest.raises(ShapeError, match="takes 6 features"):
        fit_head(x, mos).predict(np.zeros((2, 3)))
    with pytest.raises(ShapeError, match="one label per image"):
        cross_validate(x, mos, groups[:-1])
    bad = tmp_path / "bad.npz"
    np.savez(bad, kind=np.array("rank"), mean=np.zeros(3), scale=np.ones(2), weights=np.zeros(3),
             intercept=np.array(0.0), gamma=np.array(0.0))
    with pytest.raises(ConfigError, match="inconsistent shapes"):
        load_head(bad)
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="junk.npz"):
        load_head(tmp_path / "junk.npz")
