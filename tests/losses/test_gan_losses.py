"""GAN losses (both sides), discriminator feature matching and the LDL artifact loss."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

from srkit.archs.discriminators import build_unet_discriminator, build_vgg_discriminator
from srkit.errors import ConfigError, ShapeError
from srkit.losses import (
    discriminator_loss,
    feature_matching_loss,
    generator_loss,
    ldl_artifact_map,
    ldl_loss,
    local_variance,
)

# Known logits: real r = [2, -1] (mean 0.5), fake f = [0.5, -3] (mean -1.25).
R = torch.tensor([[2.0], [-1.0]])
FK = torch.tensor([[0.5], [-3.0]])


def sp(x: float) -> float:
    """softplus, by hand: log(1 + e^x)."""
    return math.log1p(math.exp(x))


@pytest.mark.parametrize(
    ("kind", "d_real", "d_fake", "g"),
    [
        # vanilla: BCE(r, 1) = softplus(-r), BCE(f, 0) = softplus(f), non-saturating G: softplus(-f).
        ("vanilla", (sp(-2) + sp(1)) / 2, (sp(0.5) + sp(-3)) / 2, (sp(-0.5) + sp(3)) / 2),
        # lsgan: ((2-1)^2 + (-1-1)^2) / 2, (0.5^2 + 3^2) / 2, ((0.5-1)^2 + (-3-1)^2) / 2
        ("lsgan", 2.5, 4.625, 8.125),
        # hinge: mean(relu(1 - r)) = (0 + 2) / 2, mean(relu(1 + f)) = (1.5 + 0) / 2, G = -mean(f) = 1.25
        ("hinge", 1.0, 0.75, 1.25),
        # ragan: r - mean f = [3.25, 0.25], f - mean r = [0, -3.5]
        ("ragan", 0.5 * (sp(-3.25) + sp(-0.25)) / 2, 0.5 * (sp(0.0) + sp(-3.5)) / 2,
         0.5 * ((sp(3.25) + sp(0.25)) / 2 + (sp(0.0) + sp(3.5)) / 2)),
    ],
)
def test_gan_losses_known_values(kind, d_real, d_fake, g):
    real_part, fake_part = discriminator_loss(R, FK, kind)
    assert math.isclose(float(real_part), d_real, rel_tol=1e-6)
    assert math.isclose(float(fake_part), d_fake, rel_tol=1e-6)
    assert math.isclose(float(generator_loss(FK, R if kind == "ragan" else None, kind)), g, rel_tol=1e-6)


def test_gan_losses_literal_numbers():
    # The same values as plain numbers (computed once, independently of the formulas above).
    r, f = discriminator_loss(R, FK, "vanilla")
    assert math.isclose(float(r), 0.7200948492805976, rel_tol=1e-6)
    assert math.isclose(float(f), 0.5113321678769244, rel_tol=1e-6)
    assert math.isclose(float(generator_loss(FK, kind="vanilla")), 1.7613321678769243, rel_tol=1e-6)
    r, f = discriminator_loss(R, FK, "ragan")
    assert math.isclose(float(r), 0.15349519789165667, rel_tol=1e-6)
    assert math.isclose(float(f), 0.18072439970814147, rel_tol=1e-6)
    assert math.isclose(float(generator_loss(FK, R, "ragan")), 2.084219597599798, rel_tol=1e-6)


def test_vanilla_is_bce_with_logits():
    g = torch.Generator().manual_seed(0)
    r, f = torch.randn(4, 1, 8, 8, generator=g), torch.randn(4, 1, 8, 8, generator=g)
    real_part, fake_part = discriminator_loss(r, f, "vanilla")
    torch.testing.assert_close(real_part, F.binary_cross_entropy_with_logits(r, torch.ones_like(r)))
    torch.testing.assert_close(fake_part, F.binary_cross_entropy_with_logits(f, torch.zeros_like(f)))


def test_hinge_discriminator_is_zero_beyond_the_margin():
    real = torch.tensor([1.0, 1.5, 7.0, 1.0]).view(2, 1, 1, 2)
    fake = torch.tensor([-1.0, -2.0, -1.0, -9.0]).view(2, 1, 1, 2)
    real_part, fake_part = discriminator_loss(real, fake, "hinge")
    assert float(real_part) == 0.0 and float(fake_part) == 0.0
    # just inside the margin: positive
    real_part, fake_part = discriminator_loss(real - 0.5, fake + 0.5, "hinge")
    assert float(real_part) > 0 and float(fake_part) > 0


def test_gan_loss_gradients_and_errors():
    f = FK.clone().requires_grad_(True)
    generator_loss(f, kind="vanilla").backward()
    assert f.grad is not None and (f.grad < 0).all()  # raising fake logits lowers G's loss
    r, f = R.clone().requires_grad_(True), FK.clone().requires_grad_(True)
    sum(discriminator_loss(r, f, "ragan")).backward()
    assert (r.grad < 0).all() and (f.grad > 0).all()
    assert discriminator_loss(R.to(torch.bfloat16), FK, "lsgan")[0].dtype == torch.float32
    with pytest.raises(ConfigError, match="unknown GAN loss 'wgan'"):
        discriminator_loss(R, FK, "wgan")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="ragan generator loss needs"):
        generator_loss(FK, None, "ragan")
    with pytest.raises(ShapeError):
        generator_loss(torch.tensor([1, 2]), kind="hinge")


# --------------------------------------------------------------------------------------- feature matching


def test_discriminator_features_and_feature_matching():
    torch.manual_seed(0)
    for d, size in ((build_unet_discriminator(num_feat=8), 16), (build_vgg_discriminator(num_feat=4), 128)):
        d.train()
        hr = torch.rand(2, 3, size, size)
        sr = (hr + 0.1 * torch.randn(2, 3, size, size)).requires_grad_(True)
        with torch.no_grad():
            _, f_hr = d.forward_features(hr)
        _logits, f_sr = d.forward_features(sr)
        assert len(f_hr) == len(f_sr) >= 5
        assert float(feature_matching_loss(f_hr, [t.clone() for t in f_hr])) == 0.0  # sr == hr
        fm = feature_matching_loss(f_sr, f_hr)
        assert float(fm.detach()) > 0
        fm.backward()
        assert sr.grad is not None and sr.grad.abs().sum() > 0
    with pytest.raises(ShapeError):
        feature_matching_loss([torch.zeros(1, 2, 4, 4)], [])
    with pytest.raises(ShapeError):
        feature_matching_loss([torch.zeros(1, 2, 4, 4)], [torch.zeros(1, 2, 2, 2)])


# ------------------------------------------------------------------------------------------------- LDL


def _local_var_reference(x: torch.Tensor, k: int) -> torch.Tensor:
    """Unbiased window variance by brute force: reflect pad, unfold k x k windows, torch.var."""
    p = k // 2
    win = F.pad(x, (p, p, p, p), mode="reflect").unfold(2, k, 1).unfold(3, k, 1)
    return win.var(dim=(-1, -2), unbiased=True)


def test_local_variance_matches_brute_force():
    x = torch.rand(2, 1, 13, 11, generator=torch.Generator().manual_seed(3), dtype=torch.float64)
    for k in (3, 7):
        torch.testing.assert_close(local_variance(x, k), _local_var_reference(x, k), rtol=1e-9, atol=1e-12)
    assert float(local_variance(torch.full((1, 1, 9, 9), 0.3), 7).abs().max()) < 1e-6  # flat: no variance
    with pytest.raises(ConfigError):
        local_variance(x, 4)


def test_ldl_zero_when_sr_equals_hr_and_hand_map():
    g = torch.Generator().manual_seed(1)
    hr = torch.rand(2, 3, 16, 16, generator=g, dtype=torch.float64)
    ema = (hr + 0.05 * torch.randn(hr.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    assert float(ldl_loss(hr.clone(), ema, hr)) == 0.0
    sr = (hr + 0.2 * torch.randn(hr.shape, generator=g, dtype=torch.float64)).clamp(0, 1)
    # The map by hand: channel-summed residuals, patch variance ** (1/5) x local variance, 0 where sr beats EMA.
    r = (hr - sr).abs().sum(1, keepdim=True)
    r_ema = (hr - ema).abs().sum(1, keepdim=True)
    want = r.flatten(1).var(1).pow(0.2).view(2, 1, 1, 1) * _local_var_reference(r, 7)
    want[r < r_ema] = 0
    got = ldl_artifact_map(sr, ema, hr)
    torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)
    assert got.shape == (2, 1, 16, 16) and (got == 0).any() and (got > 0).any()
    torch.testing.assert_close(ldl_loss(sr, ema, hr), (want * (sr - hr)).abs().mean(), rtol=1e-9, atol=1e-12)


def test_ldl_gradient_goes_to_sr_only_and_ema_better_everywhere_gives_zero():
    g = torch.Generator().manual_seed(2)
    hr = torch.rand(1, 1, 12, 12, generator=g)
    sr = (hr + 0.3 * torch.randn(hr.shape, generator=g)).requires_grad_(True)
    loss = ldl_loss(sr, hr, hr)  # the EMA output is perfect: every pixel of sr is worse -> all weighted
    loss.backward()
    assert float(loss.detach()) > 0 and sr.grad.abs().sum() > 0
    worse_ema = hr + 2 * (sr.detach() - hr)  # the EMA output is worse everywhere: nothing is an artifact
    assert float(ldl_loss(sr.detach(), worse_ema, hr)) == 0.0
