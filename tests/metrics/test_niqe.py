"""NIQE: the MATLAB reference value, input handling, fitting, the moment-matching fits and bad input."""

import importlib

import numpy as np
import pytest
import torch
from scipy import ndimage, stats

from srkit.errors import ConfigError, ShapeError
from srkit.io import read_image, write_image
from srkit.metrics import METRICS, fit_niqe_params, load_niqe_params, niqe, save_niqe_params
from srkit.ops import imresize_matlab

niqe_mod = importlib.import_module("srkit.metrics.niqe")  # the module (srkit.metrics.niqe is the function)


@pytest.fixture()
def official(data_dir):
    path = data_dir.parent / "reference" / "niqe_pris_params.npz"
    if not path.is_file():
        pytest.skip(f"official NIQE parameters not found at {path}")
    return path


@pytest.fixture()
def baboon(data_dir):
    path = data_dir / "Set14" / "HR" / "baboon.png"
    if not path.is_file():
        pytest.skip("Set14 baboon not found")
    return read_image(path)[0][:, :492]  # BasicSR's test image: the left 492 columns, 492x480


def _texture(h=192, w=192, seed=0, chroma=False):
    """A seeded textured RGB image: smooth random shapes plus fine grain (not constant, not pure noise)."""
    rng = np.random.default_rng(seed)
    base = imresize_matlab(rng.random((h // 12, w // 12, 3)), output_shape=(h, w))
    img = base + rng.normal(0, 0.03, (h, w, 3))
    if chroma:  # strong colour differences so that luma and rgb2gray differ
        img[..., 0] = 1.0 - img[..., 2] * 0.8
    return np.rint(np.clip(img, 0, 1) * 255).astype(np.uint8)


# ---------------------------------------------------------------------------------------------------------------
# Reference value
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.data
def test_baboon_matches_matlab(baboon, official):
    assert baboon.shape == (480, 492, 3)
    # MATLAB R2021a, LIVE release with its model, Y of rgb2ycbcr (uint8): 5.72957338.
    assert niqe(baboon, crop_border=0, params=official) == pytest.approx(5.7296, abs=5e-4)
    assert niqe(baboon, params=official) == pytest.approx(5.72957338, abs=2e-6)


@pytest.mark.data
def test_niqe_increases_with_blur(baboon, official):
    scores = [niqe(baboon, params=official)]
    for sigma in (2.0, 4.0):
        blurred = ndimage.gaussian_filter(baboon.astype(np.float64), sigma=(sigma, sigma, 0), mode="reflect")
        scores.append(niqe(np.rint(blurred).astype(np.uint8), params=official))
    assert scores[0] < scores[1] < scores[2], scores


# ---------------------------------------------------------------------------------------------------------------
# Inputs
# ---------------------------------------------------------------------------------------------------------------


def test_png_and_lossless_webp_score_the_same(tmp_path):
    img = _texture()
    write_image(tmp_path / "a.png", img)
    write_image(tmp_path / "a.webp", img, quality=100)
    png, webp = read_image(tmp_path / "a.png")[0], read_image(tmp_path / "a.webp")[0]
    assert np.array_equal(png, webp)
    assert niqe(png) == niqe(webp)


def test_input_kinds_agree():
    img = _texture()
    ref = niqe(img)
    f = img.astype(np.float32) / 255.0
    t = torch.from_numpy(f).permute(2, 0, 1)
    assert niqe(f) == ref
    assert niqe(t) == ref
    assert niqe(t[None]) == ref
    assert niqe(img[..., :1]) == niqe(img[..., 0])  # (H, W, 1) is gray


def test_gray_uses_rgb2gray_weights():
    img = _texture(chroma=True)
    assert tuple(np.round(niqe_mod.GRAY_WEIGHTS, 4)) == (0.2989, 0.5870, 0.1140)
    # rgb2gray of a uint8 image, written out: MATLAB's coefficients, rounded half away from zero.
    w = np.array([0.298936021293775, 0.587043074451121, 0.114020904255103])
    gray = np.floor(img.astype(np.float64) @ w + 0.5)
    assert np.array_equal(niqe_mod._plane(img, "gray"), gray)
    y = niqe_mod._plane(img, "y")
    assert (y != gray).mean() > 0.5  # the test image does tell the two apart
    assert niqe(img, color="gray") == niqe(gray.astype(np.uint8))
    assert niqe(img, color="y") == niqe(y.astype(np.uint8))
    assert niqe(img, color="gray") != niqe(img, color="y")


def test_crop_border_and_block_cut():
    img = _texture(200, 230)
    # 200x230 is cut to 192x192 at the bottom/right; cropping 4 px first gives 192x222 -> 192x192 again,
    # but of a shifted window.
    assert niqe(img) == niqe(img[:192, :192])
    assert niqe(img, crop_border=4) == niqe(img[4:196, 4:196])


# ---------------------------------------------------------------------------------------------------------------
# Moment matching
# ---------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("alpha", [0.8, 1.5, 2.0])
def test_ggd_and_aggd_recover_alpha(alpha):
    x = stats.gennorm.rvs(alpha, scale=0.7, size=200_000, random_state=np.random.default_rng(1))
    a_ggd, sigma = niqe_mod.ggd_fit(x)
    assert a_ggd == pytest.approx(alpha, rel=0.03)
    assert sigma == pytest.approx(np.sqrt(stats.gennorm.var(alpha, scale=0.7)), rel=0.03)
    # AGGD(alpha, beta_l 0.5, beta_r 1.2): a side is left with probability beta_l / (beta_l + beta_r), and
    # |x| / beta_side is the magnitude of a unit GGD
    rng = np.random.default_rng(2)
    left = rng.random(x.size) < 0.5 / (0.5 + 1.2)
    y = np.where(left, -0.5, 1.2) * np.abs(x / 0.7)
    a, bl, br = niqe_mod.aggd_fit(y)
    assert a == pytest.approx(alpha, rel=0.03)
    assert bl == pytest.approx(0.5, rel=0.03) and br == pytest.approx(1.2, rel=0.03)


def test_grid_lookup_is_argmin():
    rng = np.random.default_rng(0)
    r = niqe_mod._RATIO_GRID
    v = np.concatenate([rng.uniform(r[0] - 0.05, r[-1] + 0.05, 2000), r[::97], (r[1:40] + r[:39]) / 2, [np.nan]])
    brute = np.argmin((r[None, :] - v[:, None]) ** 2, axis=1)
    assert np.array_equal(niqe_mod._nearest_grid_index(v), brute)
    assert niqe_mod._ALPHA_GRID[0] == 0.2 and niqe_mod._ALPHA_GRID[-1] == 10.0 and r.size == 9801


def test_features_match_a_per_block_computation():
    img = _texture(192, 288)
    feats = niqe_mod.niqe_features(img)
    assert feats.shape == (6, 36)  # 2 x 3 blocks, row-major
    plane = niqe_mod._plane(img, "y")
    mscn, _ = niqe_mod._mscn(plane)
    # block (row 1, col 2) at scale 1, done the slow way
    blk = mscn[96:192, 192:288]
    a, bl, br = niqe_mod.aggd_fit(blk.ravel())
    row = feats[1 * 3 + 2]
    assert row[0] == a and row[1] == pytest.approx((bl + br) / 2, rel=1e-12)
    shifted = np.roll(blk, (1, -1), axis=(0, 1))  # MATLAB circshift(blk, [1 -1])
    a, bl, br = niqe_mod.aggd_fit((blk * shifted).ravel())
    from scipy.special import gamma

    assert row[14] == a
    assert row[15:18] == pytest.approx([(br - bl) * gamma(2 / a) / gamma(1 / a), bl, br], rel=1e-12)


# ---------------------------------------------------------------------------------------------------------------
# Parameters and fitting
# ---------------------------------------------------------------------------------------------------------------


def test_shipped_model_loads_and_is_named():
    p = load_niqe_params()
    assert p.name == "srkit" and p.mu.shape == (36,) and p.cov.shape == (36, 36) and p.block == 96
    assert np.allclose(p.cov, p.cov.T)


def test_fitted_model_round_trips(tmp_path):
    images = [_texture(192, 288, seed=s) for s in range(4)]
    fit = fit_niqe_params(images)
    assert fit["mu"].shape == (36,) and fit["cov"].shape == (36, 36) and fit["images"] == 4
    path = save_niqe_params(tmp_path / "model.npz", fit)
    assert not [f for f in tmp_path.iterdir() if f.name != "model.npz"]  # no temp file left
    loaded = load_niqe_params(path)
    assert np.array_equal(loaded.mu, fit["mu"]) and np.array_equal(loaded.cov, fit["cov"])
    assert loaded.meta["images"] == 4 and loaded.meta["sharpness_threshold"] == 0.75
    img = _texture(seed=9)
    assert niqe(img, params=path) == niqe(img, params=fit)
    # the release's .mat spelling works too
    from scipy.io import savemat

    savemat(tmp_path / "model.mat", {"mu_prisparam": fit["mu"][None], "cov_prisparam": fit["cov"]})
    assert niqe(img, params=tmp_path / "model.mat") == pytest.approx(niqe(img, params=fit), abs=1e-12)


def test_fit_selects_sharp_blocks():
    images = []
    for s in range(3):  # the left third blurred: those blocks are less sharp
        img = _texture(192, 288, seed=s)
        img[:, :96] = np.rint(ndimage.gaussian_filter(img[:, :96].astype(np.float64), (2, 2, 0)))
        images.append(img)
    all_blocks = fit_niqe_params(images, sharpness_threshold=0.0)
    sharp = fit_niqe_params(images)
    assert all_blocks["blocks"] == 3 * 6
    # by hand: block sharpness = mean local sigma, kept when > 0.75 x the image's largest
    expected = 0
    for img in images:
        _, sigma = niqe_mod._mscn(niqe_mod._plane(img, "y"))
        s = sigma.reshape(2, 96, 3, 96).mean(axis=(1, 3))
        expected += int((s > 0.75 * s.max()).sum())
    assert sharp["blocks"] == expected < all_blocks["blocks"]
    with pytest.raises(ConfigError, match="usable block"):
        fit_niqe_params([_texture(80, 80)])


# ---------------------------------------------------------------------------------------------------------------
# Bad input
# ---------------------------------------------------------------------------------------------------------------


def test_bad_input_is_one_line_error(tmp_path):
    img = _texture()
    with pytest.raises(ShapeError, match="96x96"):
        niqe(_texture(80, 80))
    with pytest.raises(ShapeError, match="after cropping"):
        niqe(img[:100, :100], crop_border=4)
    bad = img.astype(np.float64) / 255.0
    bad[5, 5, 1] = np.nan
    with pytest.raises(ShapeError, match="NaN"):
        niqe(bad)
    with pytest.raises(ShapeError, match="NaN"):
        niqe(torch.from_numpy(bad).permute(2, 0, 1))
    with pytest.raises(ShapeError, match="constant"):
        niqe(np.full((192, 192, 3), 128, np.uint8))
    with pytest.raises(ShapeError):
        niqe(np.dstack([img, img[..., :1]]))  # RGBA
    with pytest.raises(ShapeError):
        niqe(img.transpose(2, 0, 1))  # channels first numpy
    with pytest.raises(ConfigError, match="color"):
        niqe(img, color="rgb")
    np.savez(tmp_path / "bad.npz", mu_pris_param=np.zeros((1, 18)), cov_pris_param=np.eye(18))
    with pytest.raises(ConfigError, match="36"):
        niqe(img, params=tmp_path / "bad.npz")
    with pytest.raises(ConfigError, match="does not exist"):
        niqe(img, params=tmp_path / "missing.npz")
    (tmp_path / "junk.npz").write_bytes(b"not a zip")
    with pytest.raises(ConfigError, match="cannot read"):
        niqe(img, params=tmp_path / "junk.npz")
    for exc in (ShapeError, ConfigError):
        try:
            niqe(_texture(80, 80)) if exc is ShapeError else niqe(img, params=tmp_path / "bad.npz")
        except exc as e:
            assert "\n" not in str(e)


def test_partly_flat_image_is_finite():
    img = _texture(288, 288)
    img[:150, :150] = 200  # a flat area covering whole blocks: their features are NaN, as in the release
    v = niqe(img)
    assert np.isfinite(v) and v > 0


# ---------------------------------------------------------------------------------------------------------------
# Metrics table and evaluate
# ---------------------------------------------------------------------------------------------------------------


def test_metric_table_entry():
    info = METRICS["niqe"]
    assert info.fn is niqe and not info.higher_is_better and not info.needs_reference
    assert "srkit" in info.description and "official" in info.description
    assert METRICS["psnr"].needs_reference and METRICS["ssim"].needs_reference


def test_evaluate_scores_niqe_without_reference(tmp_path):
    from srkit.evaluate import evaluate

    hr_dir = tmp_path / "Tiny" / "HR"
    hr_dir.mkdir(parents=True)
    for i in range(2):
        write_image(hr_dir / f"img{i}.png", _texture(200, 208, seed=i))
    report = evaluate("bicubic", tmp_path, sets=["Tiny"], scales=[2], metrics=["psnr", "niqe"])
    assert [sorted(r.scores) for r in report.images] == [["niqe", "psnr"]] * 2
    # the SR output (bicubic x2 of the LR), rounded to uint8, scored alone with border = scale
    from srkit.evaluate import make_lr

    sr = imresize_matlab(make_lr(_texture(200, 208, seed=0), 2).astype(np.float64) / 255.0, 2.0)
    assert report.images[0].scores["niqe"] == pytest.approx(niqe(np.clip(sr, 0, 1), crop_border=2), abs=0.05)
