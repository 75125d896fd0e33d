"""Blur kernels of the Real-ESRGAN style degradation: shapes, normalisation, spectra, sampling, blur."""

from __future__ import annotations

import math
from dataclasses import FrozenInstanceError

import pytest
import torch

from srkit.degrade.kernels import (
    KERNEL_TYPES,
    BlurSettings,
    blur,
    gaussian_kernel,
    generalized_gaussian_kernel,
    kernel_from_record,
    plateau_kernel,
    sample_kernel,
    sample_sinc,
    sinc_kernel,
)
from srkit.errors import ConfigError, ShapeError

PARAMS = [(7, 0.2, None, 0.0), (13, 1.5, None, 0.0), (21, 3.0, 1.0, 0.7), (41, 2.0, 0.5, -2.5), (1, 1.0, None, 0.0)]


def _gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def _spectrum(kernel: torch.Tensor, n: int = 256) -> tuple[torch.Tensor, torch.Tensor]:
    """|FFT| of the kernel zero-padded to n x n, and the radial frequency (rad/pixel) of each bin."""
    mag = torch.fft.fft2(kernel.double(), s=(n, n)).abs()
    w = 2 * math.pi * torch.fft.fftfreq(n, dtype=torch.float64)
    wy, wx = torch.meshgrid(w, w, indexing="ij")
    return mag, torch.hypot(wx, wy)


# --------------------------------------------------------------------------------------
# Kernels
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("size,sx,sy,theta", PARAMS)
@pytest.mark.parametrize("beta", [0.5, 1.0, 2.0, 4.0])
def test_every_kernel_sums_to_one(size, sx, sy, theta, beta):
    kernels = [
        gaussian_kernel(size, sx, sy, theta),
        generalized_gaussian_kernel(size, sx, sy, theta, beta),
        plateau_kernel(size, sx, sy, theta, beta),
        sinc_kernel(size, math.pi * beta / 4),
    ]
    for k in kernels:
        assert k.shape == (size, size) and k.dtype == torch.float32
        assert torch.isfinite(k).all()
        assert abs(k.sum().item() - 1.0) < 1e-6
    for k in kernels[:3]:
        assert (k >= 0).all()
        assert k[size // 2, size // 2] == k.max()  # peak at the centre


def test_dtype_argument():
    assert gaussian_kernel(9, 1.0, dtype=torch.float64).dtype == torch.float64
    assert sinc_kernel(9, 1.0, dtype=torch.float64).dtype == torch.float64
    k = gaussian_kernel(9, 1.3, 0.6, 0.4, dtype=torch.float64)
    assert abs(k.sum().item() - 1.0) < 1e-12


def test_gaussian_matches_closed_form():
    size, s = 9, 1.7
    ax = torch.arange(size, dtype=torch.float64) - size // 2
    g1 = torch.exp(-(ax**2) / (2 * s * s))
    expected = torch.outer(g1, g1) / torch.outer(g1, g1).sum()
    torch.testing.assert_close(gaussian_kernel(size, s, dtype=torch.float64), expected, rtol=0, atol=1e-14)
    # beta == 1 turns the generalized Gaussian into the plain one
    torch.testing.assert_close(generalized_gaussian_kernel(11, 2.0, 0.7, 0.3, 1.0), gaussian_kernel(11, 2.0, 0.7, 0.3))


def test_kernel_shapes_follow_their_formulas():
    c = 6
    # point (x, y) = (dx, dy) pixels from the centre; ratios to the centre tap cancel the normalisation
    sx, sy, theta, beta = 2.5, 1.2, 0.6, 1.7
    ct, st = math.cos(theta), math.sin(theta)
    for dx, dy in [(2, 0), (0, 3), (2, -1), (-3, 4)]:
        u, v = ct * dx + st * dy, -st * dx + ct * dy  # coordinates along the rotated principal axes
        q = u * u / (sx * sx) + v * v / (sy * sy)
        for fn, expected in [
            (gaussian_kernel, math.exp(-0.5 * q)),
            (lambda *a, **kw: generalized_gaussian_kernel(*a, beta=beta, **kw), math.exp(-0.5 * q**beta)),
            (lambda *a, **kw: plateau_kernel(*a, beta=beta, **kw), 1.0 / (1.0 + q**beta)),
        ]:
            k = fn(13, sx, sy, theta, dtype=torch.float64)
            assert (k[c + dy, c + dx] / k[c, c]).item() == pytest.approx(expected, rel=1e-9)


@pytest.mark.parametrize(
    "make",
    [
        lambda: gaussian_kernel(15, 2.3),
        lambda: gaussian_kernel(15, 1.0, 1.0, 0.9),  # equal sigmas: rotation changes nothing
        lambda: generalized_gaussian_kernel(15, 2.0, beta=0.5),
        lambda: generalized_gaussian_kernel(15, 2.0, beta=3.0),
        lambda: plateau_kernel(15, 1.5, beta=1.5),
        lambda: sinc_kernel(15, math.pi / 3),
        lambda: sinc_kernel(21, 2.0),
    ],
)
def test_isotropic_kernels_are_symmetric(make):
    k = make()
    torch.testing.assert_close(k, k.T, rtol=0, atol=1e-7)
    torch.testing.assert_close(k, k.flip(0), rtol=0, atol=1e-7)
    torch.testing.assert_close(k, k.flip(1), rtol=0, atol=1e-7)


@pytest.mark.parametrize("fn", [gaussian_kernel, generalized_gaussian_kernel, plateau_kernel])
def test_anisotropic_kernel_rotates(fn):
    k0 = fn(21, 3.0, 1.0, 0.0)
    k90 = fn(21, 3.0, 1.0, math.pi / 2)
    assert not torch.allclose(k0, k0.T, atol=1e-4)  # really anisotropic
    torch.testing.assert_close(k90, k0.T, rtol=0, atol=1e-7)
    # theta = 0: the long axis (sigma_x) lies along the width (columns)
    c = 10
    assert k0[c, c + 3] > k0[c + 3, c]
    # a rotation by pi is the identity; pi/4 puts the long axis on the main diagonal
    torch.testing.assert_close(fn(21, 3.0, 1.0, math.pi), k0, rtol=0, atol=1e-7)
    k45 = fn(21, 3.0, 1.0, math.pi / 4)
    assert k45[c + 3, c + 3] > k45[c - 3, c + 3]
    # anisotropic kernels stay point-symmetric
    torch.testing.assert_close(k45, k45.flip(0, 1), rtol=0, atol=1e-7)


@pytest.mark.parametrize("cutoff", [math.pi / 3, math.pi / 2, 2 * math.pi / 3])
def test_sinc_spectrum_is_a_disc(cutoff):
    mag, rad = _spectrum(sinc_kernel(21, cutoff))
    energy = mag**2
    stop = energy[rad > 1.1 * cutoff].sum() / energy.sum()
    assert stop <= 0.05
    # an ideal low-pass keeps its passband: mean gain inside 0.8 * cutoff stays close to 1
    assert mag[rad <= 0.8 * cutoff].mean() >= 0.85


@pytest.mark.parametrize("cutoff", [math.pi / 3, math.pi / 2, 2 * math.pi / 3])
def test_gaussian_of_comparable_width_is_not_an_ideal_low_pass(cutoff):
    # the narrowest-in-frequency Gaussian that still meets the same stop-band criterion (found by bisection:
    # the stop-band energy falls as sigma grows) ...
    def stop_fraction(sigma: float) -> float:
        mag, rad = _spectrum(gaussian_kernel(21, sigma))
        return ((mag**2)[rad > 1.1 * cutoff].sum() / (mag**2).sum()).item()

    low, high = 0.3, 4.0
    assert stop_fraction(low) > 0.05 >= stop_fraction(high)
    for _ in range(12):
        mid = 0.5 * (low + high)
        low, high = (mid, high) if stop_fraction(mid) > 0.05 else (low, mid)
    mag, rad = _spectrum(gaussian_kernel(21, high))
    # ... has already lost much of its passband, unlike the sinc
    assert mag[rad <= 0.8 * cutoff].mean() < 0.75


def test_sinc_values_and_limits():
    wc = 1.2
    k = sinc_kernel(21, wc, dtype=torch.float64)
    raw_centre = wc * wc / (4 * math.pi)
    scale = k[10, 10].item() / raw_centre  # the normalisation factor
    r = 3.0
    j1 = torch.special.bessel_j1(torch.tensor(wc * r, dtype=torch.float64)).item()
    assert k[10, 13].item() == pytest.approx(scale * wc * j1 / (2 * math.pi * r), rel=1e-5)
    assert (k < 0).any()  # side lobes: the source of ringing
    assert sinc_kernel(1, 1.0).item() == 1.0
    sinc_kernel(9, math.pi)  # cutoff == pi is allowed


# --------------------------------------------------------------------------------------
# Settings and sampling
# --------------------------------------------------------------------------------------


def test_settings_defaults_are_frozen_and_hashable():
    s = BlurSettings()
    assert KERNEL_TYPES == ("iso", "aniso", "generalized_iso", "generalized_aniso", "plateau_iso", "plateau_aniso")
    assert s.kernel_probs == tuple(zip(KERNEL_TYPES, (0.45, 0.25, 0.12, 0.03, 0.12, 0.03), strict=True))
    assert s.kernel_sizes == (7, 9, 11, 13, 15, 17, 19, 21) and s.sigma == (0.2, 3.0) and s.sinc_prob == 0.1
    with pytest.raises(FrozenInstanceError):
        s.sinc_prob = 0.5
    # mappings / lists are canonicalised, so equal settings hash equal
    a = BlurSettings(kernel_sizes=[9, 11], kernel_probs={"aniso": 0.5, "iso": 0.5}, sigma=[0.5, 2])
    b = BlurSettings(kernel_sizes=(9, 11), kernel_probs=(("iso", 0.5), ("aniso", 0.5)), sigma=(0.5, 2.0))
    assert a == b and hash(a) == hash(b)


@pytest.mark.parametrize(
    "kwargs,key",
    [
        ({"kernel_sizes": (7, 8, 9)}, "blur.kernel_sizes: 8 is even"),
        ({"kernel_sizes": (43,)}, "blur.kernel_sizes"),
        ({"kernel_sizes": (1,)}, "blur.kernel_sizes"),
        ({"kernel_sizes": ()}, "blur.kernel_sizes"),
        ({"kernel_probs": {"iso": 1.5}}, "blur.kernel_probs.iso"),
        ({"kernel_probs": {"iso": -0.1, "aniso": 0.5}}, "blur.kernel_probs.iso"),
        ({"kernel_probs": {"iso": 0.0, "aniso": 0.0}}, "blur.kernel_probs"),
        ({"kernel_probs": {"gauss": 0.5}}, "blur.kernel_probs: unknown kernel type 'gauss'"),
        ({"kernel_probs": {"sinc": 0.5}}, "blur.kernel_probs: unknown kernel type 'sinc'"),
        ({"sigma": (3.0, 0.2)}, "blur.sigma"),
        ({"sigma": (0.0, 3.0)}, "blur.sigma"),
        ({"sigma": (-1.0, 3.0)}, "blur.sigma"),
        ({"sigma": (1.0,)}, "blur.sigma"),
        ({"beta_generalized": (4.0, 0.5)}, "blur.beta_generalized"),
        ({"beta_plateau": (0.0, 2.0)}, "blur.beta_plateau"),
        ({"sinc_prob": 1.1}, "blur.sinc_prob"),
        ({"sinc_prob": -0.1}, "blur.sinc_prob"),
    ],
)
def test_bad_settings_raise_config_error_naming_the_key(kwargs, key):
    with pytest.raises(ConfigError) as info:
        BlurSettings(**kwargs)
    assert str(info.value).startswith(key)
    assert "\n" not in str(info.value)


def test_check_uses_the_given_prefix():
    s = BlurSettings()
    s.check("degrade.blur2")  # valid settings pass with any prefix
    object.__setattr__(s, "sinc_prob", 2.0)
    with pytest.raises(ConfigError, match=r"^degrade\.blur2\.sinc_prob"):
        s.check("degrade.blur2")


@pytest.mark.parametrize(
    "call",
    [
        lambda: gaussian_kernel(8, 1.0),
        lambda: gaussian_kernel(0, 1.0),
        lambda: gaussian_kernel(7.5, 1.0),
        lambda: gaussian_kernel(7, 0.0),
        lambda: gaussian_kernel(7, 1.0, -1.0),
        lambda: gaussian_kernel(7, float("nan")),
        lambda: generalized_gaussian_kernel(7, 1.0, beta=0.0),
        lambda: plateau_kernel(7, 1.0, beta=-1.0),
        lambda: sinc_kernel(7, 0.0),
        lambda: sinc_kernel(7, 3.2),
        lambda: sinc_kernel(10, 1.0),
        lambda: sample_sinc((7, 8), _gen(0)),
        lambda: sample_sinc((7,), _gen(0), (1.0, 4.0)),
        lambda: sample_sinc((7,), _gen(0), (2.0, 1.0)),
        lambda: sample_kernel(BlurSettings(), 123),
        lambda: kernel_from_record({"kernel": "box", "size": 7}),
        lambda: kernel_from_record({"kernel": "aniso", "size": 7, "sigma_x": 1.0}),
    ],
)
def test_bad_arguments_raise_config_error(call):
    with pytest.raises(ConfigError):
        call()


def test_sample_kernel_is_reproducible():
    s = BlurSettings()
    for seed in range(5):
        k1, r1 = sample_kernel(s, _gen(seed))
        k2, r2 = sample_kernel(s, _gen(seed))
        assert r1 == r2
        assert torch.equal(k1, k2)
    draws = [sample_kernel(s, _gen(seed)) for seed in range(10)]
    assert len({repr(r) for _, r in draws}) == 10  # different seeds differ
    # the global RNG is neither used nor disturbed
    torch.manual_seed(0)
    before = torch.rand(3)
    torch.manual_seed(0)
    sample_kernel(s, _gen(1))
    assert torch.equal(torch.rand(3), before)


def test_sampled_kernels_cover_sizes_and_types():
    s = BlurSettings()
    g = _gen(2024)
    sizes, kinds = set(), set()
    for _ in range(200):
        k, rec = sample_kernel(s, g)
        size = rec["size"]
        assert size % 2 == 1 and size in s.kernel_sizes
        assert k.shape == (size, size) and k.dtype == torch.float32
        assert abs(k.sum().item() - 1.0) < 1e-6
        sizes.add(size)
        kinds.add(rec["kernel"])
        if rec["kernel"] == "sinc":
            low = math.pi / 3 if size < 13 else math.pi / 5
            assert set(rec) == {"kernel", "size", "cutoff"} and low <= rec["cutoff"] <= math.pi
            continue
        lo, hi = s.sigma
        assert lo <= rec["sigma_x"] <= hi and lo <= rec["sigma_y"] <= hi
        if rec["kernel"].endswith("aniso"):
            assert -math.pi <= rec["theta"] <= math.pi
        else:
            assert rec["sigma_y"] == rec["sigma_x"] and rec["theta"] == 0.0
        if rec["kernel"].startswith("generalized"):
            assert s.beta_generalized[0] <= rec["beta"] <= s.beta_generalized[1]
        elif rec["kernel"].startswith("plateau"):
            assert s.beta_plateau[0] <= rec["beta"] <= s.beta_plateau[1]
        else:
            assert "beta" not in rec
    assert sizes == set(s.kernel_sizes)
    assert kinds == set(KERNEL_TYPES) | {"sinc"}


def test_sampling_respects_zero_probabilities():
    s = BlurSettings(kernel_sizes=(5,), kernel_probs={"plateau_aniso": 1.0, "iso": 0.0}, sinc_prob=0.0)
    g = _gen(7)
    assert {sample_kernel(s, g)[1]["kernel"] for _ in range(30)} == {"plateau_aniso"}
    always_sinc = BlurSettings(sinc_prob=1.0)
    assert {sample_kernel(always_sinc, g)[1]["kernel"] for _ in range(10)} == {"sinc"}


def test_kernel_from_record_round_trip_is_exact():
    s = BlurSettings(sinc_prob=0.3)
    g = _gen(99)
    seen = set()
    for _ in range(60):
        k, rec = sample_kernel(s, g)
        assert all(isinstance(v, (str, int, float)) for v in rec.values())
        assert torch.equal(kernel_from_record(dict(rec)), k)
        seen.add(rec["kernel"])
    assert len(seen) >= 5


def test_sample_sinc():
    k, rec = sample_sinc((7, 21), _gen(3))
    assert rec["kernel"] == "sinc" and rec["size"] in (7, 21) and k.shape == (rec["size"],) * 2
    assert torch.equal(kernel_from_record(rec), k)
    g = _gen(4)
    for _ in range(20):
        _, rec = sample_sinc((9,), g, (1.0, 1.5))
        assert 1.0 <= rec["cutoff"] <= 1.5
    k1, r1 = sample_sinc((11, 13), _gen(5))
    k2, r2 = sample_sinc((11, 13), _gen(5))
    assert r1 == r2 and torch.equal(k1, k2)


def test_sinc_cutoff_follows_the_size_rule():
    g = _gen(12)
    small = [sample_sinc((7, 9, 11), g)[1]["cutoff"] for _ in range(300)]
    large = [sample_sinc((13, 21), g)[1]["cutoff"] for _ in range(300)]
    assert math.pi / 3 <= min(small) < math.pi / 3 + 0.05 and max(small) <= math.pi
    assert math.pi / 5 <= min(large) < math.pi / 5 + 0.03 and max(large) > math.pi - 0.05
    assert sum(large) / len(large) == pytest.approx(0.6 * math.pi, abs=0.1)  # uniform on [pi/5, pi]


# --------------------------------------------------------------------------------------
# blur
# --------------------------------------------------------------------------------------


def test_blur_with_delta_is_identity():
    images = torch.rand(2, 3, 17, 12, generator=_gen(0))
    delta = torch.zeros(7, 7)
    delta[3, 3] = 1.0
    torch.testing.assert_close(blur(images, delta), images, rtol=0, atol=1e-7)
    torch.testing.assert_close(blur(images, torch.ones(1, 1)), images, rtol=0, atol=0)


def test_blur_per_image_kernels_match_single_blurs():
    images = torch.rand(3, 2, 16, 20, generator=_gen(1))
    kernels = torch.stack([gaussian_kernel(9, 2.0, 0.7, 0.5), plateau_kernel(9, 1.0, beta=2.0), sinc_kernel(9, 1.5)])
    out = blur(images, kernels)
    assert out.shape == images.shape
    for i in range(3):
        torch.testing.assert_close(out[i : i + 1], blur(images[i : i + 1], kernels[i]), rtol=0, atol=1e-6)
    # one shared (k, k) kernel equals the same kernel repeated per image
    torch.testing.assert_close(blur(images, kernels[0]), blur(images, kernels[0].expand(3, 9, 9)), rtol=0, atol=1e-6)


def test_blur_is_a_true_convolution_and_reflects_borders():
    images = torch.zeros(1, 1, 9, 9)
    images[0, 0, 4, 4] = 1.0
    kernel = torch.arange(9.0).reshape(3, 3)
    out = blur(images, kernel)
    torch.testing.assert_close(out[0, 0, 3:6, 3:6], kernel)  # impulse response is the kernel itself
    ramp = torch.arange(6.0).repeat(6, 1)[None, None]
    out = blur(ramp, torch.full((3, 3), 1 / 9))
    # reflect padding mirrors about the edge pixel: column 0 averages 1, 0, 1 (replicate would give 0, 0, 1)
    torch.testing.assert_close(out[..., 0], torch.full((1, 1, 6), 2 / 3))


@pytest.mark.parametrize("size", [5, 7, 21])
def test_blur_preserves_constant_images(size):
    images = torch.full((2, 3, 10, 8), 0.37)
    out = blur(images, sinc_kernel(size, 1.0))  # size 21 on a 10 x 8 image: replicate fallback
    torch.testing.assert_close(out, images, rtol=0, atol=1e-6)
    assert out.mean().item() == pytest.approx(0.37, abs=1e-6)


def test_blur_dtype_device_and_gradients():
    images = torch.rand(1, 3, 12, 12, dtype=torch.float64, requires_grad=True)
    kernel = gaussian_kernel(5, 1.0).requires_grad_(True)  # float32 kernel is cast to the images' dtype
    out = blur(images, kernel)
    assert out.dtype == torch.float64 and out.device == images.device
    out.square().sum().backward()
    assert images.grad is not None and kernel.grad is not None and kernel.grad.abs().sum() > 0


@pytest.mark.parametrize(
    "images,kernel",
    [
        (torch.rand(3, 8, 8), torch.ones(3, 3) / 9),
        (torch.rand(1, 1, 1, 8, 8), torch.ones(3, 3) / 9),
        (torch.randint(0, 255, (1, 3, 8, 8)), torch.ones(3, 3) / 9),
        (torch.rand(1, 3, 8, 8), torch.ones(4, 4) / 16),
        (torch.rand(1, 3, 8, 8), torch.ones(3, 5) / 15),
        (torch.rand(2, 3, 8, 8), torch.ones(3, 3, 3) / 9),
        (torch.rand(1, 3, 8, 8), torch.ones(3) / 3),
    ],
)
def test_blur_rejects_bad_shapes(images, kernel):
    with pytest.raises(ShapeError):
        blur(images, kernel)
