import math

import numpy as np
import pytest
import torch
from pydantic import ValidationError

from srkit.errors import ConfigError, ShapeError
from srkit.losses import (
    CompositeLoss,
    LossTerm,
    charbonnier_loss,
    fft_loss,
    gradient_loss,
    l1_loss,
    mse_loss,
)


def _pair(seed: int = 0, shape=(2, 3, 8, 6)) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g), torch.rand(shape, generator=g)


def test_pixel_losses_known_values():
    hr = _pair()[1]
    sr = hr + 0.25
    assert math.isclose(float(l1_loss(sr, hr)), 0.25, rel_tol=1e-6)
    assert math.isclose(float(mse_loss(sr, hr)), 0.0625, rel_tol=1e-6)
    assert math.isclose(float(charbonnier_loss(sr, hr, eps=1e-3)), math.sqrt(0.0625 + 1e-6), rel_tol=1e-6)
    assert float(l1_loss(hr, hr)) == 0.0 and float(mse_loss(hr, hr)) == 0.0
    assert math.isclose(float(charbonnier_loss(hr, hr, eps=1e-3)), 1e-3, rel_tol=1e-6)


def test_charbonnier_tends_to_l1():
    sr, hr = (t.double() for t in _pair(1))
    l1 = float(l1_loss(sr, hr))
    gaps = [float(charbonnier_loss(sr, hr, eps=e)) - l1 for e in (1e-1, 1e-2, 1e-3, 1e-6)]
    assert all(0 <= g <= e for g, e in zip(gaps, (1e-1, 1e-2, 1e-3, 1e-6), strict=True))
    assert gaps == sorted(gaps, reverse=True) and gaps[-1] < 1e-6
    with pytest.raises(ConfigError):
        charbonnier_loss(sr, hr, eps=0)


def _dft2_half(x: np.ndarray) -> np.ndarray:
    """Explicit 2-D DFT (orthonormal), columns 0..W//2 only."""
    h, w = x.shape
    u = np.arange(h)[:, None, None, None]
    v = np.arange(w // 2 + 1)[None, :, None, None]
    m = np.arange(h)[None, None, :, None]
    n = np.arange(w)[None, None, None, :]
    basis = np.exp(-2j * np.pi * (u * m / h + v * n / w))
    return (basis * x[None, None]).sum(axis=(2, 3)) / np.sqrt(h * w)


def test_fft_loss_hand_computation_and_zero():
    sr, hr = (t.double() for t in _pair(2, shape=(1, 1, 3, 4)))
    d = _dft2_half(sr[0, 0].numpy()) - _dft2_half(hr[0, 0].numpy())
    expected = np.concatenate([np.abs(d.real).ravel(), np.abs(d.imag).ravel()]).mean()
    assert math.isclose(float(fft_loss(sr, hr)), expected, rel_tol=1e-10)
    unnorm = float(fft_loss(sr, hr, norm="backward"))
    assert math.isclose(unnorm, expected * math.sqrt(12), rel_tol=1e-10)
    s2, h2 = _pair(3)
    assert float(fft_loss(h2, h2)) == 0.0
    assert float(fft_loss(s2, h2)) > 0
    # half precision is computed in float32
    assert fft_loss(s2.half(), h2.half()).dtype == torch.float32


def test_fft_loss_size_independent_with_ortho():
    # white noise of the same variance: the orthonormal spectrum has the same per-coefficient scale
    g = torch.Generator().manual_seed(4)
    small = fft_loss(torch.rand(4, 3, 16, 16, generator=g), torch.rand(4, 3, 16, 16, generator=g))
    big = fft_loss(torch.rand(4, 3, 64, 64, generator=g), torch.rand(4, 3, 64, 64, generator=g))
    assert 0.8 < float(big / small) < 1.25


def test_gradient_loss():
    sr, hr = _pair(5)
    assert float(gradient_loss(hr + 0.3, hr)) < 1e-7
    ramp = torch.arange(6.0).expand(1, 1, 4, 6)  # d/dx = 1, d/dy = 0
    zero = torch.zeros_like(ramp)
    assert math.isclose(float(gradient_loss(ramp, zero)), 0.5, rel_tol=1e-6)
    assert float(gradient_loss(sr, hr)) > 0
    with pytest.raises(ShapeError):
        gradient_loss(torch.zeros(1, 1, 1, 5), torch.zeros(1, 1, 1, 5))


def test_shape_checks():
    a = torch.zeros(1, 3, 4, 4)
    with pytest.raises(ShapeError):
        l1_loss(a, torch.zeros(1, 3, 4, 5))
    with pytest.raises(ShapeError):
        mse_loss(a[0], a[0])
    with pytest.raises(ShapeError):
        fft_loss(a.long(), a.long())


def test_loss_term_validation():
    t = LossTerm(name="l1")
    assert t.weight == 1.0 and t.eps is None
    with pytest.raises(ValidationError):
        t.weight = 2.0  # frozen
    assert LossTerm(name="charbonnier", eps=1e-6).eps == 1e-6
    for bad in (
        {"name": "vgg"},  # not a loss name ("perceptual" is one now: tests/losses/test_perceptual.py)
        {"name": "l1", "weight": -1},
        {"name": "l1", "eps": 1e-3},
        {"name": "charbonnier", "eps": 0},
        {"name": "l1", "wieght": 2},
    ):
        with pytest.raises(ValidationError):
            LossTerm(**bad)
        with pytest.raises(ConfigError, match="bad loss term"):
            CompositeLoss([bad])


def test_composite_weighting_and_values():
    sr, hr = _pair(6)
    loss = CompositeLoss(
        [
            LossTerm(name="l1", weight=1.0),
            {"name": "charbonnier", "weight": 0.5, "eps": 1e-2},
            LossTerm(name="fft", weight=0.1),
            LossTerm(name="gradient", weight=2.0),
            LossTerm(name="mse", weight=0.0),
        ]
    )
    total, values = loss(sr, hr)
    assert set(values) == {"l1", "charbonnier", "fft", "gradient", "mse"}
    expected = (
        l1_loss(sr, hr)
        + 0.5 * charbonnier_loss(sr, hr, eps=1e-2)
        + 0.1 * fft_loss(sr, hr)
        + 2.0 * gradient_loss(sr, hr)
    )
    torch.testing.assert_close(total, expected)
    torch.testing.assert_close(values["charbonnier"], charbonnier_loss(sr, hr, eps=1e-2))
    torch.testing.assert_close(values["mse"], mse_loss(sr, hr))
    assert all(not v.requires_grad for v in values.values())
    assert "0.5*charbonnier(eps=0.01)" in repr(loss)


def test_composite_gradients_flow():
    sr, hr = _pair(7)
    sr.requires_grad_(True)
    total, _ = CompositeLoss([LossTerm(name=n) for n in ("l1", "mse", "charbonnier", "fft", "gradient")])(sr, hr)
    total.backward()
    assert sr.grad is not None and torch.isfinite(sr.grad).all() and sr.grad.abs().sum() > 0
    # only zero weights: backward still works and gives zero gradient
    sr.grad = None
    total, values = CompositeLoss([LossTerm(name="l1", weight=0.0)])(sr, hr)
    total.backward()
    assert float(total.detach()) == 0.0 and float(values["l1"]) > 0 and sr.grad.abs().sum() == 0


def test_composite_config_errors():
    with pytest.raises(ConfigError, match="at least one"):
        CompositeLoss([])
    with pytest.raises(ConfigError, match="repeated: l1"):
        CompositeLoss([LossTerm(name="l1"), LossTerm(name="l1", weight=2)])
    # a term that skipped validation still cannot name an unknown loss
    rogue = LossTerm.model_construct(name="vgg", weight=1.0, eps=None)
    with pytest.raises(ConfigError, match="unknown loss 'vgg'"):
        CompositeLoss([rogue])(*_pair())
