"""The monotonic-cleaning term (`srkit.train.strength`): its HF measure is the strength report's, it is zero for a
model that smooths more at higher strength and positive for one that sharpens, it trains a conditioned run that
resumes bit-identically, and it is refused for a model that takes no levels."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from srkit.errors import ConfigError
from srkit.train import fit
from srkit.train.config import MonotoneCfg, parse_config
from srkit.train.strength import MonotoneStrength, hf_energy, strength_pairs

from helpers import write_tiny_images

REPO = Path(__file__).resolve().parents[2]


def report_module():
    spec = importlib.util.spec_from_file_location("strength_report", REPO / "scripts" / "strength_report.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_hf_energy_is_the_strength_reports_measure():
    g = np.random.default_rng(0)
    for c in (3, 1):
        img = g.integers(0, 256, (c, 20, 17)).astype(np.float32) / 255.0  # on the 8-bit grid: no rounding gap
        ours = hf_energy(torch.from_numpy(img)[None]).item()
        theirs = report_module().hf_energy(img.transpose(1, 2, 0))
        assert ours == pytest.approx(theirs, rel=1e-5)
    flat = torch.full((2, 3, 9, 9), 0.4)
    assert torch.equal(hf_energy(flat), torch.zeros(2))


def test_strength_pairs_are_ordered_apart_and_seeded():
    a, b = strength_pairs(1000, 3)
    assert (a >= 0).all() and (b <= 1 + 1e-6).all() and ((b - a) >= 0.1 - 1e-6).all()
    assert a.max() > 0.8 and (b - a).max() > 0.8
    a2, b2 = strength_pairs(1000, 3)
    assert torch.equal(a, a2) and torch.equal(b, b2)
    assert not torch.equal(strength_pairs(1000, 4)[0], a)


class Blur(nn.Module):
    """A toy conditioned model: x4 nearest, then mixes toward a box blur by `sign * noise / 50`."""

    def __init__(self, sign: float):
        super().__init__()
        self.sign = sign

    def forward(self, x, noise, jpeg):
        up = torch.nn.functional.interpolate(x, scale_factor=4, mode="nearest")
        blur = torch.nn.functional.avg_pool2d(up, 5, 1, 2, count_include_pad=False)
        t = (noise / 50.0).view(-1, 1, 1, 1)
        t = t if self.sign > 0 else 1 - t
        return up + t * (blur - up)


def test_the_term_is_zero_when_smoothing_rises_with_strength_and_positive_when_it_falls():
    x = torch.rand(4, 3, 12, 12)
    term = MonotoneStrength(MonotoneCfg(weight=2.0, samples=4, margin=0.0))
    good, terms = term.loss(Blur(+1), x, seed=0)
    assert good.item() == 0.0 and terms["monotone_violations"] == 0.0
    bad, terms = term.loss(Blur(-1), x, seed=0)
    assert bad.item() > 0 and terms["monotone_violations"] == 1.0
    assert bad.item() == pytest.approx(2.0 * terms["monotone"])
    # a margin asks for more than "not sharper": a model that smooths too little per unit of strength pays
    assert MonotoneStrength(MonotoneCfg(samples=4, margin=0.99)).loss(Blur(+1), x, seed=0)[0].item() > 0


def test_the_term_drives_a_gradient_into_the_model():
    net = nn.Conv2d(5, 48, 3, padding=1)

    class Tiny(nn.Module):
        def forward(self, x, noise, jpeg):
            maps = torch.stack([noise / 50, (100 - jpeg) / 90], 1).view(-1, 2, 1, 1).expand(-1, 2, *x.shape[-2:])
            return torch.nn.functional.pixel_shuffle(net(torch.cat([x, maps], 1)), 4)

    with torch.no_grad():
        net.weight[:, 3:].normal_(0, 1.0)  # the levels sharpen: the term must push back
    loss, _ = MonotoneStrength(MonotoneCfg(samples=2)).loss(Tiny(), torch.rand(2, 3, 8, 8), seed=1)
    loss.backward()
    assert loss.item() > 0 and net.weight.grad is not None and net.weight.grad[:, 3:].abs().sum() > 0


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return write_tiny_images(tmp_path_factory.mktemp("data"), n=6, side=72)


def gated_cfg(root: Path, steps: int = 4) -> dict:
    return {
        "model": {"arch": "ecbsr-ctrl-gated", "scale": 4,
                  "options": {"module_nums": 2, "channel_nums": 8, "clean_module_nums": 2, "clean_channel_nums": 6}},
        "data": {"root": str(root), "train_sets": ["A"], "val_count": 1, "patch_size": 8, "batch_size": 4,
                 "samples_per_epoch": 16, "degradation": {"preset": "controllable", "margin": 2}},
        "monotone": {"weight": 0.5, "samples": 2},
        "train": {"steps": steps, "val_every": 2, "log_every": 1, "checkpoint_every": 2, "device": "cpu"},
    }


def test_a_gated_run_logs_the_term_and_resumes_bit_identically(data_root, tmp_path):
    from safetensors.torch import load_file

    from test_train import read_rows

    fit(parse_config(gated_cfg(data_root)), tmp_path / "whole", progress=False)
    rows = read_rows(tmp_path / "whole" / "log.csv")
    assert "monotone" in rows[0] and "monotone_violations" in rows[0]
    fit(parse_config(gated_cfg(data_root)), tmp_path / "split", progress=False, stop_at=2)
    fit(parse_config(gated_cfg(data_root)), tmp_path / "split", progress=False, resume=True)
    a = load_file(tmp_path / "whole" / "final.safetensors")
    b = load_file(tmp_path / "split" / "final.safetensors")
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    start = load_file(tmp_path / "whole" / "final.safetensors")
    assert any(k.startswith("module.clean.") or k.startswith("clean.") for k in start)


def test_the_term_is_refused_for_a_model_without_levels(data_root, tmp_path):
    cfg = gated_cfg(data_root)
    cfg["model"] = {"arch": "ecbsr-m4c16", "scale": 4}
    cfg["data"]["degradation"] = {"preset": "bicubic"}
    with pytest.raises(ConfigError, match="monotone: ecbsr-m4c16 takes no noise / JPEG levels") as e:
        fit(parse_config(cfg), tmp_path / "run", progress=False)
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="monotone.margin"):
        parse_config({**gated_cfg(data_root), "monotone": {"margin": 1.5}})
