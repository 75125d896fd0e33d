"""Training a conditioned model (issue 19): each sample's (noise, jpeg) levels come from its degradation record and
reach the network, in the loader (`on: loader`) and per batch (`on: batch`), in validation too; the run starts from
the blind model (`model.init`); what cannot give levels is refused with one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from srkit.archs.conditioned import ConditionedECBSR
from srkit.data.folders import HRFolder, ValidationImages, list_images
from srkit.degrade.pipeline import Degradation, degrade_image, image_seed, record_levels
from srkit.errors import ConfigError
from srkit.models import load_model, save_model
from srkit.train import fit
from srkit.train.config import parse_config

from helpers import write_tiny_images
from test_train import read_rows

OPTIONS = {"module_nums": 2, "channel_nums": 8, "colors": 3, "deploy": True}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return write_tiny_images(tmp_path_factory.mktemp("data"), n=6, side=72)


def ctrl_cfg(root: Path, on: str = "loader", **extra) -> dict:
    return {
        "model": {"arch": "ecbsr-ctrl", "scale": 4, "options": OPTIONS},
        "data": {"root": str(root), "train_sets": ["A"], "val_count": 1, "patch_size": 8, "batch_size": 4,
                 "samples_per_epoch": 16, "degradation": {"preset": "controllable", "margin": 2, "on": on}},
        "train": {"steps": 4, "val_every": 2, "log_every": 2, "checkpoint_every": 100, "device": "cpu"},
        **extra,
    }


@pytest.fixture()
def spy(monkeypatch):
    """Records the levels of every training-mode forward of a ConditionedECBSR (validation runs in eval mode)."""
    seen: dict[str, list] = {"train": [], "eval": []}
    forward = ConditionedECBSR.forward

    def recording(self, x, noise=None, jpeg=None):
        seen["train" if self.training else "eval"].append((x.shape[0], noise, jpeg))
        return forward(self, x, noise, jpeg)

    monkeypatch.setattr(ConditionedECBSR, "forward", recording)
    return seen


def test_hr_folder_gives_each_samples_levels(data_root):
    files = list_images([data_root / "A"])
    deg = Degradation("controllable")
    ds = HRFolder(files, scale=4, patch_size=8, seed=0, samples_per_epoch=40, degradation=deg, levels=True)
    plain = HRFolder(files, scale=4, patch_size=8, seed=0, samples_per_epoch=40, degradation=deg)
    clean = 0
    for i in range(40):
        lr, hr, levels = ds[i]
        lr2, hr2 = plain[i]
        assert torch.equal(lr, lr2) and torch.equal(hr, hr2)  # the same sample, plus its levels
        assert levels.shape == (2,) and levels.dtype == torch.float32
        assert 0 <= levels[0] <= 50 and 10 <= levels[1] <= 100
        clean += bool(levels[0] == 0 and levels[1] == 100)
    assert 0 < clean < 40
    with pytest.raises(ConfigError, match="on: loader"):
        HRFolder(files, scale=4, patch_size=8, levels=True)


def test_validation_images_give_their_records_levels(data_root):
    files = list_images([data_root / "A"])[:3]
    deg = Degradation("controllable")
    val = ValidationImages(files, scale=4, degradation=deg, seed=0, levels=True)
    for i, f in enumerate(files):
        lr, _, name, levels = val[i]
        _, record = degrade_image(val._load(f)[0], deg, 4, image_seed(0, f.stem))
        assert name == f.stem and tuple(levels.tolist()) == pytest.approx(record_levels(record))
    assert len(ValidationImages(files, scale=4, degradation=deg, seed=0)[0]) == 3  # unchanged without levels


@pytest.mark.parametrize("on", ["loader", "batch"])
def test_conditioned_run_passes_each_samples_levels(data_root, tmp_path, spy, on):
    res = fit(parse_config(ctrl_cfg(data_root, on)), tmp_path / "run", progress=False)
    assert res.final_step == 4 and res.best_psnr is not None
    assert len(spy["train"]) == 4
    for batch, noise, jpeg in spy["train"]:
        assert isinstance(noise, torch.Tensor) and noise.shape == (batch,) == jpeg.shape
        assert ((noise >= 0) & (noise <= 50)).all() and ((jpeg >= 10) & (jpeg <= 100)).all()
    levels = torch.stack([torch.stack([n, j], 1) for _, n, j in spy["train"]])
    assert len({tuple(r) for r in levels.view(-1, 2).tolist()}) > 1  # per sample, not one for all
    assert spy["eval"] and all(n is not None and j is not None for _, n, j in spy["eval"])  # validation too
    rows = read_rows(tmp_path / "run" / "log.csv")
    assert rows[-1]["val_psnr"] != ""
    back = load_model(tmp_path / "run" / "final.safetensors")
    assert back.info.inputs == ("noise", "jpeg")


def test_fine_tune_starts_from_the_blind_model(data_root, tmp_path):
    from helpers import rand_model

    blind = rand_model("ecbsr-m16c64", 4, module_nums=2, channel_nums=8, colors=3, deploy=True)
    path = save_model(blind, tmp_path / "blind.safetensors")
    cfg = ctrl_cfg(data_root, model={"arch": "ecbsr-ctrl", "scale": 4, "options": OPTIONS, "init": str(path)})
    cfg["train"]["steps"] = 1
    cfg["optim"] = {"lr": 1e-12}
    fit(parse_config(cfg), tmp_path / "run", progress=False)
    tuned = load_model(tmp_path / "run" / "final.safetensors")
    x = torch.rand(1, 3, 10, 9)
    with torch.no_grad():
        for noise, jpeg in ((0.0, 100.0), (40.0, 20.0)):
            assert torch.allclose(tuned(x, noise=noise, jpeg=jpeg), blind(x), atol=1e-5)
    wrong = save_model(rand_model("ecbsr-m16c64", 4, module_nums=2, channel_nums=16, colors=3, deploy=True),
                       tmp_path / "wrong.safetensors")
    cfg["model"]["init"] = str(wrong)
    with pytest.raises(ConfigError, match="neither this network nor its blind counterpart"):
        fit(parse_config(cfg), tmp_path / "run2", progress=False)


@pytest.mark.parametrize("change,match", [
    ({"degradation": None}, "give a degradation whose records hold them"),
    ({"degradation": {"preset": "realesrgan"}}, "poisson_scale"),
])
def test_runs_that_cannot_give_levels_are_refused(data_root, tmp_path, change, match):
    cfg = ctrl_cfg(data_root)
    cfg["data"].update(change)
    with pytest.raises(ConfigError, match=match) as e:
        fit(parse_config(cfg), tmp_path / "run", progress=False)
    assert "\n" not in str(e.value)


def test_the_shipped_config_builds_and_starts_as_real_x4(tmp_path):
    from srkit.archs import build
    from srkit.train.config import load_config
    from srkit.train.loop import _load_init

    cfg = load_config(Path(__file__).resolve().parents[2] / "configs" / "real-x4-ctrl.yaml", [f"data.root={tmp_path}"])
    assert cfg.model.init == "real-x4" and cfg.data.degradation is not None
    assert cfg.data.degradation.preset == "controllable"
    m = build(cfg.model.arch, cfg.model.scale, **cfg.model.options)
    _load_init(m, cfg.model.init)
    x = torch.rand(1, 3, 12, 12)
    with torch.no_grad():
        assert torch.equal(m.eval()(x, noise=30.0, jpeg=40.0), load_model("real-x4")(x))
