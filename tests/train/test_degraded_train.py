"""Training on degraded data: per-sample seeded LR, validation on degraded LR, bit-identical resume."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from srkit.data.folders import HRFolder, ValidationImages, list_images
from srkit.degrade.pipeline import Degradation
from srkit.train import fit
from srkit.train.config import parse_config

from helpers import write_tiny_images
from test_train import read_rows, state_tensors


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return write_tiny_images(tmp_path_factory.mktemp("data"), n=6, side=72)


def test_degraded_samples_are_a_function_of_seed_epoch_index(data_root):
    files = list_images([data_root / "A"])
    make = lambda seed: HRFolder(files, scale=4, patch_size=8, seed=seed, samples_per_epoch=12,  # noqa: E731
                                 degradation=Degradation("realesrgan"))
    a, b, c = make(0), make(0), make(1)
    for i in range(6):
        (la, ha), (lb, hb) = a[i], b[i]
        assert torch.equal(la, lb) and torch.equal(ha, hb)
        assert la.shape == (3, 8, 8) and ha.shape == (3, 32, 32)
    assert any(not torch.equal(a[i][0], c[i][0]) for i in range(6))
    plain = HRFolder(files, scale=4, patch_size=8, seed=0, samples_per_epoch=12)
    # Same patch positions and flips as the bicubic dataset (same HR), but other LR.
    assert all(torch.equal(a[i][1], plain[i][1]) for i in range(6))
    assert any(not torch.equal(a[i][0], plain[i][0]) for i in range(6))
    a.set_epoch(1)
    assert any(not torch.equal(a[i][0], b[i][0]) for i in range(6))


def test_bicubic_preset_without_margin_reproduces_the_cached_bicubic_patches(data_root):
    # The whole-image bicubic LR and the patch-wise one agree away from the patch border only when the patch
    # comes with context: compare interiors (the cubic kernel reaches 2 LR pixels at x4 after antialiasing).
    files = list_images([data_root / "A"])
    deg = HRFolder(files, scale=4, patch_size=12, seed=3, degradation=Degradation({"preset": "bicubic", "margin": 4}))
    plain = HRFolder(files, scale=4, patch_size=12, seed=3)
    for i in range(len(files)):
        ld, lp = deg[i][0], plain[i][0]
        assert (ld[:, 3:-3, 3:-3] - lp[:, 3:-3, 3:-3]).abs().max() <= 1 / 255 + 1e-6


def test_validation_images_use_the_degradation(data_root):
    files = list_images([data_root / "A"])[:2]
    bic = ValidationImages(files, scale=4)
    deg = ValidationImages(files, scale=4, degradation=Degradation("realesrgan"), seed=0)
    again = ValidationImages(files, scale=4, degradation=Degradation("realesrgan"), seed=0)
    for i in range(2):
        assert deg[i][0].shape == bic[i][0].shape and torch.equal(deg[i][1], bic[i][1])
        assert not torch.equal(deg[i][0], bic[i][0]) and torch.equal(deg[i][0], again[i][0])


def degraded_cfg(root: Path, **train) -> dict:
    return {
        "model": {"arch": "ecbsr-m4c16", "scale": 4, "options": {"colors": 3}},
        "data": {"root": str(root), "train_sets": ["A"], "val_count": 1, "patch_size": 8, "batch_size": 4,
                 "samples_per_epoch": 16, "degradation": {"preset": "realesrgan", "margin": 2}},
        "train": {"steps": 10, "val_every": 5, "log_every": 5, "checkpoint_every": 100, "device": "cpu", **train},
    }


def test_degraded_run_resumes_bit_identically(data_root, tmp_path):
    cfg = parse_config(degraded_cfg(data_root))
    fit(cfg, tmp_path / "once", progress=False)
    part = fit(cfg, tmp_path / "twice", progress=False, stop_at=4)
    assert part.stopped_by == "stop_at"
    fit(cfg, tmp_path / "twice", resume=True, progress=False)
    a, b = state_tensors(tmp_path / "once"), state_tensors(tmp_path / "twice")
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert a.keys() == b.keys() and not different, different[:5]
    rows = read_rows(tmp_path / "once" / "log.csv")
    assert rows[-1]["val_psnr"]
    assert "preset: realesrgan" in (tmp_path / "once" / "config.yaml").read_text()


def test_batch_mode_degrades_on_the_training_device_and_resumes(data_root, tmp_path):
    d = degraded_cfg(data_root, steps=8, val_every=4)
    d["model"] = {"arch": "ecbsr-m4c16", "scale": 4}  # Y model: the batch is degraded in RGB, then turned to Y
    d["data"]["degradation"] = {"preset": "bsrgan", "on": "batch"}
    cfg = parse_config(d)
    fit(cfg, tmp_path / "once", progress=False)
    fit(cfg, tmp_path / "twice", progress=False, stop_at=3)
    fit(cfg, tmp_path / "twice", resume=True, progress=False)
    a, b = state_tensors(tmp_path / "once"), state_tensors(tmp_path / "twice")
    assert not [k for k in a if not torch.equal(a[k], b[k])]
    assert float(read_rows(tmp_path / "once" / "log.csv")[-1]["loss"]) > 0


def test_training_pair_matches_the_loader_colour_conversion():
    hr = torch.rand(2, 3, 32, 32).mul(255).round().div(255)
    d = Degradation("bicubic")
    lr_rgb, t_rgb = d.training_pair(hr, 4, seed=0)
    lr_y, t_y = d.training_pair(hr, 4, seed=0, color="y")
    assert lr_rgb.shape == (2, 3, 8, 8) and t_rgb is hr
    assert lr_y.shape == (2, 1, 8, 8) and t_y.shape == (2, 1, 32, 32)
    from srkit.data.folders import _to_tensor

    img = (hr[0].permute(1, 2, 0).numpy() * 255).round().astype("uint8")
    assert torch.allclose(t_y[0], _to_tensor(img, "y"), atol=1e-6)


@pytest.mark.parametrize("value, message", [
    ("nope", "data.degradation: unknown preset 'nope'"),
    ({"steps": [{"op": "blur", "kernel_sizes": [7, 8]}, {"op": "to_target"}]},
     r"data.degradation.steps\[0\].kernel_sizes: 8 is even"),
    ({"steps": [{"op": "noise", "gray_prob": -0.1}, {"op": "to_target"}]}, r"data.degradation.steps\[0\].gray_prob"),
    ({"steps": [{"op": "to_target"}, {"op": "jpeg", "quality": [20, 101]}]},
     r"data.degradation.steps\[1\].quality: JPEG quality \[20, 101\] is outside 1..100"),
])
def test_bad_degradation_settings_fail_before_training(data_root, tmp_path, value, message):
    from srkit.errors import ConfigError

    d = degraded_cfg(data_root)
    d["data"]["degradation"] = value
    with pytest.raises(ConfigError, match=message):
        parse_config(d)
    assert not (tmp_path / "run").exists()
