"""Classical level estimates (`srkit.degrade.estimate`) on synthetic images of known noise sigma and JPEG quality.

The test image is textured (bicubic-enlarged random fields at three scales, values kept inside 0..255 so that
nothing clips) and 128 x 128, about the size of an LR photo crop. Tolerances:

* noise sigma: within max(0.3, 4 %). The median of |N * I| over ~7,000 flat windows has a relative standard error
  of about 1.5 % (1.25 / sqrt(n) for a median); the texture the flat-window selection keeps adds a few tenths of
  a level at sigma 0, and clipping of the widest tails takes ~3 % off at sigma 50 (checked there at 5 %).
* JPEG quality from pixels: within 2. libjpeg tables of neighbouring qualities share most entries (the scale
  factor moves by 2 % per quality step above 50, and entries are rounded), so a quality one or two below the true
  one fits the coefficients too and is indistinguishable on few blocks.
* JPEG quality from a file's tables: exact (libjpeg writes the scaled Annex K tables).
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch
from PIL import Image

from srkit.degrade.estimate import (
    NOISE_POSTERIOR,
    estimate_levels,
    estimate_levels_batch,
    jpeg_grid,
    jpeg_quality,
    jpeg_quality_from_tables,
    noise_sigma,
)
from srkit.errors import ShapeError


def textured(side: int = 128, seed: int = 0) -> np.ndarray:
    """float64 (side, side, 3) in about 128 +- 50: smooth and fine texture, no clipping."""
    rng = np.random.default_rng(seed)
    out = np.zeros((side, side, 3))
    for k, amp in ((4, 60.0), (16, 25.0), (32, 12.0)):
        small = (rng.random((k, k, 3)) * 255).astype(np.uint8)
        up = np.stack([np.asarray(Image.fromarray(small[..., c]).resize((side, side), Image.BICUBIC), np.float64)
                       for c in range(3)], axis=-1)
        out += amp * (up / 255.0 - 0.5)
    return 128.0 + out


def noisy(image: np.ndarray, sigma: float, seed: int = 1) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.clip(np.round(image + rng.normal(0.0, sigma, image.shape)), 0, 255).astype(np.uint8)


def jpeg(image: np.ndarray, quality: int) -> tuple[np.ndarray, Image.Image]:
    buf = io.BytesIO()
    Image.fromarray(image).save(buf, "JPEG", quality=quality)
    buf.seek(0)
    im = Image.open(buf)
    im.load()
    return np.asarray(im.convert("RGB")), im


@pytest.mark.parametrize("sigma", [0, 2, 5, 15, 30])
@pytest.mark.parametrize("seed", [0, 1])
def test_noise_sigma_of_gaussian_noise(sigma, seed):
    got = noise_sigma(noisy(textured(seed=seed), sigma, seed=seed + 7))
    assert abs(got - sigma) <= max(0.3, 0.04 * sigma), got


def test_noise_sigma_at_50_loses_only_the_clipped_tails():
    got = noise_sigma(noisy(textured(), 50))
    assert 47.5 <= got <= 50.5, got


def test_noise_sigma_takes_uint16_float_gray_and_alpha_alike():
    img = noisy(textured(), 10)
    ref = noise_sigma(img)
    assert noise_sigma(img.astype(np.uint16) * 257) == pytest.approx(ref, abs=1e-9)
    assert noise_sigma(img.astype(np.float32) / 255) == pytest.approx(ref, abs=1e-4)
    rgba = np.concatenate([img, np.full(img.shape[:2] + (1,), 255, np.uint8)], axis=-1)
    assert noise_sigma(rgba) == pytest.approx(ref, abs=1e-9)
    gray = noisy(textured()[..., 0], 10)
    assert abs(noise_sigma(gray) - 10) <= 0.4


@pytest.mark.parametrize("quality", [10, 30, 50, 75, 90, 95])
def test_jpeg_quality_from_pixels(quality):
    for seed in (0, 1):
        decoded, _ = jpeg(noisy(textured(seed=seed), 3), quality)
        assert abs(jpeg_quality(decoded) - quality) <= 2, (seed, jpeg_quality(decoded))


def test_no_jpeg_reads_as_quality_100():
    for sigma in (0, 5, 30):
        assert jpeg_quality(noisy(textured(), sigma)) == 100
    assert jpeg_quality(noisy(textured(side=12), 5)) == 100  # too small to tell


def test_a_cropped_jpeg_is_found_on_its_shifted_grid():
    decoded, _ = jpeg(noisy(textured(), 4), 60)
    assert jpeg_grid(decoded) == (0, 0)
    assert jpeg_grid(decoded[3:, 5:]) == (5, 3)
    assert abs(jpeg_quality(decoded[3:, 5:]) - 60) <= 2


@pytest.mark.parametrize("quality", [1, 10, 37, 50, 83, 100])
def test_jpeg_quality_from_a_files_tables_is_exact(quality):
    _, im = jpeg(noisy(textured(side=32), 2), quality)
    assert jpeg_quality_from_tables(im.quantization) == quality


def test_jpeg_quality_from_tables_without_tables():
    assert jpeg_quality_from_tables(None) is None
    assert jpeg_quality_from_tables({}) is None
    assert jpeg_quality_from_tables({0: [1, 2, 3]}) is None


def test_estimate_levels_of_noise_only_and_clean_images():
    assert estimate_levels(noisy(textured(), 0)) == (pytest.approx(0.0, abs=1.5), 100)
    sigmas = [estimate_levels(noisy(textured(), s))[0] for s in (0, 5, 20, 40)]
    assert sigmas == sorted(sigmas) and sigmas[-1] > 30, sigmas  # more noise, more estimated
    assert all(0.0 <= s <= 50.0 for s in sigmas)


def test_estimate_levels_of_jpeg_images_and_a_known_quality():
    decoded, _ = jpeg(noisy(textured(), 10), 40)
    sigma, quality = estimate_levels(decoded)
    assert abs(quality - 40) <= 2 and 0.0 <= sigma <= 50.0
    sigma_known, quality_known = estimate_levels(decoded, quality=40)
    assert quality_known == 40 and 0.0 <= sigma_known <= 50.0
    assert estimate_levels(decoded, quality=5)[1] == 10  # clipped to the trained range


def test_noise_posterior_table_is_monotone_and_in_range():
    assert min(NOISE_POSTERIOR) <= 10 and max(NOISE_POSTERIOR) == 100
    for row, knots in NOISE_POSTERIOR.items():
        xs, ys = zip(*knots)
        assert list(xs) == sorted(xs) and list(ys) == sorted(ys), row
        assert all(0.0 <= y <= 50.0 for y in ys), row


def test_estimate_levels_batch_one_per_image():
    a, b = noisy(textured(), 2), noisy(textured(seed=3), 25)
    x = torch.from_numpy(np.stack([a, b])).permute(0, 3, 1, 2).float() / 255
    noise, quality = estimate_levels_batch(x)
    assert noise.shape == quality.shape == (2,)
    assert noise[0] < noise[1] and quality.tolist() == [100.0, 100.0]
    assert noise[0].item() == pytest.approx(estimate_levels(a)[0], abs=1e-4)


def test_bad_images_are_refused():
    with pytest.raises(ShapeError):
        noise_sigma(np.zeros((2, 2, 3), np.uint8))
    with pytest.raises(ShapeError):
        noise_sigma(np.zeros((8, 8, 3), np.int32))
    with pytest.raises(ShapeError):
        estimate_levels(np.zeros((8, 8, 5), np.uint8))
