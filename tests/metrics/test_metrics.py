import math

import numpy as np
import pytest
import torch
from skimage.metrics import structural_similarity

from srkit.errors import ShapeError
from srkit.metrics import METRICS, psnr, ssim


def _pair(shape=(48, 40, 3), noise=12, seed=0):
    rng = np.random.default_rng(seed)
    hr = rng.integers(0, 256, shape, dtype=np.uint8)
    sr = np.clip(hr.astype(np.int64) + rng.integers(-noise, noise + 1, shape), 0, 255).astype(np.uint8)
    return sr, hr


def _hand_y(img_uint8):
    # Written out independently of srkit.ops.color: MATLAB rgb2ycbcr luma on the 0..255 scale.
    r, g, b = (img_uint8[..., i].astype(np.float64) for i in range(3))
    return 16.0 + (65.481 * r + 128.553 * g + 24.966 * b) / 255.0


def _hand_psnr(a, b):
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    return 10 * math.log10(255.0**2 / mse)


@pytest.mark.parametrize("border", [0, 2, 4])
def test_psnr_matches_hand_written_y(border):
    sr, hr = _pair()
    c = slice(border, -border) if border else slice(None)
    expected = _hand_psnr(_hand_y(sr[c, c]), _hand_y(hr[c, c]))
    assert abs(psnr(sr, hr, border=border) - expected) < 1e-6


def test_psnr_rgb_and_gray_match_hand_written():
    sr, hr = _pair()
    assert abs(psnr(sr, hr, y_channel=False) - _hand_psnr(sr, hr)) < 1e-6
    g_sr, g_hr = sr[..., 0], hr[..., 0]
    assert abs(psnr(g_sr, g_hr, border=3) - _hand_psnr(g_sr[3:-3, 3:-3], g_hr[3:-3, 3:-3])) < 1e-6


def test_psnr_known_value_constant_offset():
    hr = np.full((20, 20, 3), 100, np.uint8)
    sr = hr + np.uint8(10)
    # Every Y value moves by 10 * 219 / 255 levels.
    expected = 20 * math.log10(255.0 / (10 * 219.0 / 255.0))
    assert abs(psnr(sr, hr) - expected) < 1e-9


@pytest.mark.parametrize("y_channel", [True, False])
@pytest.mark.parametrize("border", [0, 3])
def test_ssim_matches_scikit_image(y_channel, border):
    sr, hr = _pair(shape=(64, 52, 3), noise=30, seed=1)
    c = slice(border, -border) if border else slice(None)
    a, b = sr[c, c], hr[c, c]
    kw = dict(gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=255)
    if y_channel:
        expected = structural_similarity(_hand_y(a), _hand_y(b), **kw)
    else:
        expected = structural_similarity(a.astype(np.float64), b.astype(np.float64), channel_axis=2, **kw)
    assert abs(ssim(sr, hr, border=border, y_channel=y_channel) - expected) < 1e-5


def test_ssim_gray_matches_scikit_image():
    sr, hr = _pair(shape=(33, 45), noise=40, seed=2)
    expected = structural_similarity(
        sr.astype(np.float64), hr.astype(np.float64), gaussian_weights=True, sigma=1.5,
        use_sample_covariance=False, data_range=255,
    )
    assert abs(ssim(sr, hr) - expected) < 1e-5


def test_float_and_tensor_inputs_are_rounded_to_uint8_first():
    sr, hr = _pair()
    # Float SR that rounds to `sr`: the protocol scores the rounded image.
    jitter = np.random.default_rng(3).uniform(-0.45, 0.45, sr.shape)
    sr_float = (sr.astype(np.float64) + jitter) / 255.0
    t = torch.from_numpy(sr_float.transpose(2, 0, 1)).float()
    ref_p, ref_s = psnr(sr, hr, border=2), ssim(sr, hr, border=2)
    assert psnr(sr_float, hr, border=2) == pytest.approx(ref_p, abs=1e-9)
    assert psnr(t, hr, border=2) == pytest.approx(ref_p, abs=1e-9)
    hr_t = torch.from_numpy(hr.transpose(2, 0, 1)).float() / 255
    assert psnr(t[None], hr_t, border=2) == pytest.approx(ref_p, abs=1e-9)
    assert ssim(t, hr, border=2) == pytest.approx(ref_s, abs=1e-12)


def test_identical_images():
    _, hr = _pair()
    assert psnr(hr, hr) == math.inf
    assert ssim(hr, hr) == pytest.approx(1.0, abs=1e-12)


def test_bad_inputs_raise_shape_error():
    sr, hr = _pair()
    with pytest.raises(ShapeError):
        psnr(sr[:-1], hr)
    with pytest.raises(ShapeError):
        psnr(sr, hr, border=30)
    with pytest.raises(ShapeError):
        ssim(sr[:8, :8], hr[:8, :8])
    with pytest.raises(ShapeError):
        psnr(sr.astype(np.int32), hr)
    with pytest.raises(ShapeError):
        psnr(np.dstack([sr, sr[..., :1]]), np.dstack([hr, hr[..., :1]]))


def test_metric_table():
    assert set(METRICS) >= {"psnr", "ssim"}
    sr, hr = _pair()
    for name, info in METRICS.items():
        # no-reference metrics (niqe) are tested in test_niqe.py; lpips needs ImageNet backbone weights that are
        # not on this machine (test_lpips.py runs it with a random backbone, positional border included)
        if info.needs_reference and name != "lpips":
            assert info.fn(sr, hr, border=1) == info.fn(sr, hr, 1, True)
