"""Well-defined levels: the `controllable` preset, the `choice` step, Poisson noise by sigma, `record_levels`."""

from __future__ import annotations

import pytest
import torch

from srkit.degrade.pipeline import Degradation, describe, level_problem, parse_degradation, record_levels
from srkit.degrade.steps import POISSON_SIGMA_PER_SCALE
from srkit.errors import ConfigError


def test_controllable_records_give_every_samples_levels():
    d = Degradation("controllable")
    assert level_problem(d.steps) is None
    hr = torch.rand(1, 3, 32, 32)
    gen = torch.Generator().manual_seed(0)
    levels, clean = [], 0
    for _ in range(400):
        rec = d.sample((32, 32), 4, gen)
        sigma, quality = record_levels(rec)
        levels.append((sigma, quality))
        ops = [r["op"] for r in rec]
        if ops == ["resize"] and rec[0]["mode"] == "matlab":
            clean += 1
            assert (sigma, quality) == (0.0, 100.0)  # bicubic only
        assert 0.0 <= sigma <= 50.0 and (quality == 100.0 or 10 <= quality <= 95)
        assert ops.count("noise") <= 1 and ops.count("jpeg") <= 1
    assert 0.18 <= clean / 400 <= 0.32  # a quarter clean
    noisy = [s for s, _ in levels if s > 0]
    assert min(noisy) >= 1.0 and max(noisy) > 45.0
    compressed = [q for _, q in levels if q < 100]
    assert min(compressed) < 15 and max(compressed) > 90
    lr, _ = d(hr, 4, torch.Generator().manual_seed(1))
    assert lr.shape == (1, 3, 8, 8)


def test_poisson_noise_by_sigma_records_both():
    d = Degradation({"steps": [{"op": "to_target", "modes": {"bicubic": 1}},
                               {"op": "noise", "gaussian_prob": 0.0, "poisson_sigma": [20, 20], "gray_prob": 0}]})
    rec = d.sample((16, 16), 2, torch.Generator().manual_seed(0))
    noise = rec[-1]
    assert noise["kind"] == "poisson" and noise["sigma"] == pytest.approx(20.0)
    assert noise["scale"] == pytest.approx(20.0 / POISSON_SIGMA_PER_SCALE)
    assert describe(rec)[-1] == "poisson noise s=20.0"
    # mid-gray, all 256 levels used: the noise std is about sigma
    hr = torch.full((1, 3, 256, 256), 0.5)
    hr[0, 0, 0] = torch.linspace(0, 1, 256)  # 256 distinct levels
    lr, recs = d(hr, 1, torch.Generator().manual_seed(3))
    std = float((lr[0, 1, 8:, :] - 0.5).std()) * 255
    assert std == pytest.approx(recs[0][-1]["sigma"], rel=0.1)
    # applied, the record holds the std the image got, and that is its level
    assert recs[0][-1]["std"] == pytest.approx(std, rel=0.02)
    assert record_levels(recs[0])[0] == recs[0][-1]["std"]


def test_applied_noise_records_the_std_the_image_got():
    d = Degradation({"steps": [{"op": "to_target", "modes": {"bicubic": 1}},
                               {"op": "noise", "gaussian_prob": 0.0, "poisson_scale": [2, 2], "gray_prob": 0}]})
    hr = torch.rand(2, 3, 64, 64) * 0.5 + 0.25
    before = Degradation({"steps": [{"op": "to_target", "modes": {"bicubic": 1}}]})(hr, 2, torch.Generator())[0]
    lr, recs = d(hr, 2, torch.Generator().manual_seed(0))
    for i, rec in enumerate(recs):  # Poisson drawn by scale: the applied record still has its level
        got = float((lr[i] - before[i]).std(correction=0)) * 255
        assert record_levels(rec)[0] == pytest.approx(got, abs=0.6)  # LR quantised to 8 bits afterwards
    sampled = d.sample((64, 64), 2, torch.Generator().manual_seed(0))
    with pytest.raises(ConfigError, match="poisson_scale"):
        record_levels(sampled)  # not applied: no level to read


def test_record_levels_rules():
    assert record_levels([]) == (0.0, 100.0)
    rec = [{"op": "noise", "kind": "gaussian", "sigma": 3.0}, {"op": "noise", "kind": "gaussian", "sigma": 4.0},
           {"op": "jpeg", "quality": 70}, {"op": "jpeg", "quality": 40}]
    assert record_levels(rec) == (pytest.approx(5.0), 40.0)  # variances add; the lowest quality counts
    with pytest.raises(ConfigError, match="poisson_sigma"):
        record_levels([{"op": "noise", "kind": "poisson", "scale": 1.0}])


def test_level_problem_names_poisson_by_scale():
    assert level_problem(Degradation("realesrgan").steps) is not None
    assert level_problem(Degradation("bicubic").steps) is None
    gauss = parse_degradation({"steps": [{"op": "to_target"}, {"op": "noise", "gaussian_prob": 1.0}]})
    assert level_problem(gauss.resolved_steps()) is None


def test_choice_step_validation_and_target():
    with pytest.raises(ConfigError, match="weights for"):
        parse_degradation({"steps": [{"op": "choice", "weights": [1], "steps": [{"op": "to_target"},
                                                                                {"op": "to_target"}]}]})
    with pytest.raises(ConfigError, match="weight > 0"):
        parse_degradation({"steps": [{"op": "choice", "weights": [0], "steps": [{"op": "to_target"}]}]})
    # a branch that never reaches the LR size
    with pytest.raises(ConfigError, match="to_target"):
        parse_degradation({"steps": [{"op": "choice", "weights": [1, 1],
                                      "steps": [{"op": "to_target"}, {"op": "jpeg"}]}]})
    # a branch of weight 0 does not count
    parse_degradation({"steps": [{"op": "choice", "weights": [1, 0], "steps": [{"op": "to_target"}, {"op": "jpeg"}]}]})


def test_training_batch_returns_the_records_of_training_pair():
    d = Degradation({"preset": "controllable", "on": "batch"})
    hr = torch.rand(3, 3, 32, 32)
    lr, target, records = d.training_batch(hr, 4, seed=5)
    lr2, target2 = d.training_pair(hr, 4, seed=5)
    assert torch.equal(lr, lr2) and torch.equal(target, target2) and len(records) == 3
    replay = Degradation.replay(hr, 4, records)
    assert torch.equal(replay, lr)
