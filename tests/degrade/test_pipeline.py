"""Degradation pipelines, noise, sharpening: reproducibility, records, presets, config errors, training data."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
import torch

from srkit.degrade.noise import add_gaussian_noise, add_poisson_noise
from srkit.degrade.pipeline import Degradation, degrade_image, image_seed, parse_degradation
from srkit.degrade.presets import PRESETS
from srkit.degrade.sharpen import unsharp_mask
from srkit.errors import ConfigError, ShapeError


def textured(h: int = 96, w: int = 96, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, h // 8, w // 8, generator=g)
    x = torch.nn.functional.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)
    return (x + 0.05 * torch.rand(1, 3, h, w, generator=g)).clamp(0, 1)


# ------------------------------------------------------------------------------------------------ noise


def test_gaussian_noise_has_the_asked_sigma():
    flat = torch.full((2, 3, 128, 128), 0.5)
    for sigma in (5 / 255, 25 / 255):
        out = add_gaussian_noise(flat, sigma, generator=torch.Generator().manual_seed(1))
        measured = float((out - flat).std())
        assert abs(measured - sigma) <= 0.05 * sigma, (measured, sigma)


def test_gray_noise_is_shared_by_channels_and_colour_noise_is_not():
    flat = torch.full((1, 3, 64, 64), 0.5)
    gray = add_gaussian_noise(flat, 0.05, gray=True, generator=torch.Generator().manual_seed(0)) - flat
    colour = add_gaussian_noise(flat, 0.05, gray=False, generator=torch.Generator().manual_seed(0)) - flat
    assert torch.equal(gray[:, 0], gray[:, 1]) and torch.equal(gray[:, 1], gray[:, 2])
    assert float((colour[:, 0] - colour[:, 1]).abs().mean()) > 0.01


def test_poisson_noise_grows_with_signal_and_scale():
    ramp = torch.arange(256.0) / 255  # row 0 holds all 256 levels: both images get the same photon scale
    dark, bright = torch.full((1, 3, 64, 256), 0.1), torch.full((1, 3, 64, 256), 0.8)
    dark[..., 0, :] = bright[..., 0, :] = ramp
    g = lambda: torch.Generator().manual_seed(3)  # noqa: E731
    std = lambda x, s: float((add_poisson_noise(x, s, generator=g()) - x)[..., 1:, :].std())  # noqa: E731
    s_dark, s_bright, s_bright2 = std(dark, 1.0), std(bright, 1.0), std(bright, 2.0)
    # shot noise: std = scale * sqrt(x / 256)
    assert s_bright / s_dark == pytest.approx(math.sqrt(8), rel=0.1)
    assert s_bright == pytest.approx(math.sqrt(0.8 / 256), rel=0.1)
    assert s_bright2 / s_bright == pytest.approx(2.0, rel=0.1)


def test_noise_rejects_bad_tensors():
    with pytest.raises(ShapeError):
        add_gaussian_noise(torch.rand(3, 8, 8), 0.1)
    with pytest.raises(ShapeError):
        add_poisson_noise(torch.rand(2, 3, 8, 8), [1.0, 2.0, 3.0])


def test_unsharp_mask_adds_overshoot_at_an_edge_and_keeps_flat_areas():
    x = torch.zeros(1, 1, 32, 32)
    x[..., 16:] = 0.5
    y = unsharp_mask(x, weight=1.0, sigma=1.5, threshold=0.0)
    assert float(y[..., 16:].max()) > 0.55 and float(y[..., :16].min()) == 0.0  # overshoot, clamped below
    assert torch.allclose(y[..., 0:4], x[..., 0:4]) and torch.allclose(y[..., 28:], x[..., 28:])


# ------------------------------------------------------------------------------------------------ pipeline


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_each_preset_gives_the_lr_size_on_8_bit_levels(preset):
    hr = textured(98, 90)  # not multiples of 4: cropped first
    lr, records = Degradation(preset)(hr, 4, torch.Generator().manual_seed(0))
    assert lr.shape == (1, 3, 24, 22) and len(records) == 1 and records[0]
    assert torch.equal(lr, torch.round(lr * 255) / 255) and float(lr.min()) >= 0 and float(lr.max()) <= 1
    json.dumps(records)  # plain data


def test_same_seed_same_lr_different_seed_different_lr():
    hr = textured(128, 128).expand(3, -1, -1, -1).contiguous()
    d = Degradation("realesrgan")
    a, ra = d(hr, 4, torch.Generator().manual_seed(7))
    b, rb = d(hr, 4, torch.Generator().manual_seed(7))
    c, rc = d(hr, 4, torch.Generator().manual_seed(8))
    assert torch.equal(a, b) and ra == rb
    assert not torch.equal(a, c) and ra != rc
    assert ra[0] != ra[1]  # images of a batch get their own parameters


def test_replay_rebuilds_the_lr_from_the_record_alone():
    hr = textured(96, 96, seed=2)
    for preset in ("realesrgan", "bsrgan", "camera"):
        d = Degradation(preset)
        lr, records = d(hr, 4, torch.Generator().manual_seed(11))
        assert torch.equal(Degradation.replay(hr, 4, json.loads(json.dumps(records))), lr)


def test_bicubic_preset_is_the_benchmark_lr():
    from srkit.data.folders import bicubic_lr

    img = (textured(64, 48).squeeze(0).permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    lr, rec = degrade_image(img, Degradation("bicubic"), 4, seed=0)
    assert np.array_equal(lr, bicubic_lr(img, 4)) and rec == [{"op": "resize", "mode": "matlab", "size": [16, 12]}]


def test_realesrgan_preset_samples_both_orders_of_the_final_stage():
    d = Degradation("realesrgan")
    firsts = set()
    for seed in range(40):
        rec = d.sample((64, 64), 4, torch.Generator().manual_seed(seed))
        last_resize = max(i for i, r in enumerate(rec) if r["op"] == "resize" and r["size"] == [16, 16])
        last_jpeg = max(i for i, r in enumerate(rec) if r["op"] == "jpeg")
        firsts.add("jpeg" if last_jpeg < last_resize else "resize")
        assert sum(r["op"] == "jpeg" for r in rec) == 2  # first-order and final JPEG
    assert firsts == {"jpeg", "resize"}


def test_written_out_steps_and_errors_name_the_key():
    d = Degradation({"steps": [{"op": "noise", "gaussian_prob": 1, "sigma": [10, 10]},
                               {"op": "to_target", "modes": {"area": 1}}]})
    lr, rec = d(torch.full((1, 3, 32, 32), 0.5), 2, torch.Generator().manual_seed(0))
    assert rec[0][0]["kind"] == "gaussian" and rec[0][0]["sigma"] == 10.0
    assert abs(float((lr - 0.5).std()) - 10 / 255 / 2) < 0.02  # 2x2 area average halves sigma
    bad = {
        "nope": "unknown preset 'nope'",
        json.dumps({"steps": [{"op": "blur", "kernel_sizes": [8]}, {"op": "to_target"}]}): r"steps\[0\]\.kernel_sizes",
        json.dumps({"steps": [{"op": "noise", "prob": 1.5}, {"op": "to_target"}]}): r"steps\[0\]\.prob",
        json.dumps({"steps": [{"op": "jpeg", "quality": [0, 90]}, {"op": "to_target"}]}): r"steps\[0\]\.quality",
        json.dumps({"steps": [{"op": "jpeg", "quality": [30, 101]}, {"op": "to_target"}]}): "outside 1..100",
        json.dumps({"steps": [{"op": "jpeg"}]}): "to_target",
        json.dumps({"preset": "bicubic", "steps": [{"op": "to_target"}]}): "either preset or steps",
    }
    for spec, pattern in bad.items():
        value = spec if not spec.startswith("{") else json.loads(spec)
        with pytest.raises(ConfigError, match=pattern):
            parse_degradation(value)


def test_image_seed_is_stable_and_distinct():
    assert image_seed(0, "baboon") == image_seed(0, "baboon")
    assert len({image_seed(0, "a"), image_seed(0, "b"), image_seed(1, "a"), image_seed(0, 3)}) == 4
    assert 0 <= image_seed(5, 1, 2) < 2**63


def test_degradation_rejects_bad_input():
    d = Degradation("bicubic")
    with pytest.raises(ShapeError):
        d(torch.rand(3, 16, 16), 2, torch.Generator())
    with pytest.raises(ConfigError):
        d(torch.rand(1, 3, 16, 16), 0, torch.Generator())
    with pytest.raises(ShapeError):
        d(torch.rand(1, 3, 3, 3), 4, torch.Generator())


def test_sharpened_target_has_more_detail():
    hr = textured(64, 64)
    d = Degradation({"preset": "bicubic", "sharpen_target": {"weight": 0.5, "sigma": 2.0, "threshold": 0}})
    t = d.target(hr)
    grad = lambda x: float((x[..., 1:] - x[..., :-1]).abs().mean())  # noqa: E731
    assert grad(t) > 1.1 * grad(hr)
    assert Degradation("bicubic").target(hr) is hr


def test_degraded_lr_is_noisier_than_bicubic_lr():
    hr = textured(128, 128)
    bic, _ = Degradation("bicubic")(hr, 4, torch.Generator().manual_seed(0))
    psnrs = []
    for seed in range(6):
        lr, _ = Degradation("realesrgan")(hr, 4, torch.Generator().manual_seed(seed))
        mse = float(((lr - bic) ** 2).mean())
        psnrs.append(10 * math.log10(1 / max(mse, 1e-12)))
    assert np.mean(psnrs) < 35  # the pipeline does change the image
