"""Training the diffusion model (issue 18): x0 prediction from x_t of a random timestep, on LR made by the
realesrgan preset, EMA and bf16 as any run; bit-identical resume; the shipped config is valid; what the mode does
not support is refused with one line."""

from __future__ import annotations

import math
from pathlib import Path

import pytest
import torch

from srkit.errors import ConfigError
from srkit.models import load_model
from srkit.train import fit
from srkit.train.checkpoint import load_checkpoint
from srkit.train.config import load_config, parse_config
from srkit.train.diffusion import DiffusionSteps

from helpers import write_tiny_images
from test_train import read_rows

REPO = Path(__file__).resolve().parents[2]
OPTIONS = {"channels": [8, 16], "prior": "ecbsr", "prior_modules": 1, "prior_channels": 8, "sample_steps": 2}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return write_tiny_images(tmp_path_factory.mktemp("data"), n=6, side=72)


def diffusion_cfg(root: Path, **train) -> dict:
    return {
        "model": {"arch": "resshift-unet", "scale": 4, "options": OPTIONS},
        "data": {"root": str(root), "train_sets": ["A"], "val_count": 1, "patch_size": 8, "batch_size": 4,
                 "samples_per_epoch": 16, "degradation": {"preset": "realesrgan", "margin": 2}},
        "loss": [{"name": "mse"}],
        "train": {"steps": 8, "val_every": 4, "log_every": 2, "checkpoint_every": 100, "device": "cpu", **train},
    }


def test_inputs_are_a_function_of_the_seed():
    from srkit.archs import build

    cfg = parse_config(diffusion_cfg(Path("/nonexistent")))
    steps = DiffusionSteps(cfg, build("resshift-unet", 4, **OPTIONS))
    lr, hr = torch.rand(3, 3, 8, 8), torch.rand(3, 3, 32, 32)
    a, b, c = steps.inputs(lr, hr, 5), steps.inputs(lr, hr, 5), steps.inputs(lr, hr, 6)
    assert torch.equal(a["x_t"], b["x_t"]) and torch.equal(a["t"], b["t"])
    assert not torch.equal(a["x_t"], c["x_t"])
    assert a["x_t"].shape == (3, 48, 8, 8) and a["t"].dtype == torch.int64
    assert all(1 <= int(t) <= 15 for t in torch.cat([steps.inputs(lr, hr, s)["t"] for s in range(20)]))


def test_smoke_run_and_bit_identical_resume(data_root, tmp_path):
    from safetensors.torch import load_file

    cfg = parse_config(diffusion_cfg(data_root))
    once = fit(cfg, tmp_path / "once", progress=False)
    assert once.final_step == 8 and once.best_psnr is not None and math.isfinite(once.best_psnr)
    part = fit(cfg, tmp_path / "twice", progress=False, stop_at=4)
    assert part.stopped_by == "stop_at" and part.final_step == 4
    fit(cfg, tmp_path / "twice", resume=True, progress=False)
    a, b = (load_checkpoint(tmp_path / r / "checkpoints" / "last.pt") for r in ("once", "twice"))
    for key in ("model",):
        assert all(torch.equal(a[key][k], b[key][k]) for k in a[key])
    assert all(torch.equal(a["ema"]["module"][k], b["ema"]["module"][k]) for k in a["ema"]["module"])
    fa, fb = load_file(tmp_path / "once" / "final.safetensors"), load_file(tmp_path / "twice" / "final.safetensors")
    assert fa.keys() == fb.keys() and all(torch.equal(fa[k], fb[k]) for k in fa)
    strip = [{k: v for k, v in r.items() if k != "seconds"} for r in read_rows(tmp_path / "once" / "log.csv")]
    assert strip == [{k: v for k, v in r.items() if k != "seconds"} for r in read_rows(tmp_path / "twice" / "log.csv")]
    assert "mse" in strip[0] and all(math.isfinite(float(r["mse"])) for r in strip)
    # the weights are a sampler: load them and draw
    m = load_model(tmp_path / "once" / "final.safetensors")
    assert m.info.noise_channels == 2 and m.info.inputs == ("steps",)
    with torch.no_grad():
        y = m(torch.rand(1, 3, 8, 8), noise=torch.randn(1, 2, 8, 8), steps=2)
    assert y.shape == (1, 3, 32, 32) and torch.isfinite(y).all()


def test_unet_learns_and_prior_can_be_frozen(data_root, tmp_path):
    d = diffusion_cfg(data_root, steps=3, val_every=100)
    d["model"]["options"] = {**OPTIONS, "freeze_prior": True}
    fit(parse_config(d), tmp_path / "run", progress=False)
    st = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    from srkit.archs import build

    torch.manual_seed(0)  # the run's init seed (train.seed 0): the same prior weights as the run started from
    fresh = build("resshift-unet", 4, **d["model"]["options"]).state_dict()
    prior = [k for k in fresh if k.startswith("module.prior.")]
    assert prior and all(torch.equal(st["model"][k], fresh[k]) for k in prior)
    assert not torch.equal(st["model"]["module.unet.tail.weight"], fresh["module.unet.tail.weight"])


@pytest.mark.parametrize(("extra", "message"), [
    ({"gan": {}}, "gan: adversarial training of the diffusion model resshift-unet is not supported"),
    ({"distill": {"teacher": "bicubic"}}, "distill: distillation into the diffusion model"),
])
def test_unsupported_combinations_are_refused(data_root, tmp_path, extra, message):
    with pytest.raises(ConfigError, match=message):
        fit(parse_config({**diffusion_cfg(data_root), **extra}), tmp_path / "run", progress=False)


def test_shipped_configs_parse():
    cfg = load_config(REPO / "configs" / "diffusion-x4.yaml", ["data.root=/tmp"])
    assert cfg.model.arch == "resshift-unet" and cfg.model.init == "real-x4"
    assert cfg.data.train_sets == ["T91", "BSDS200", "BSDS500test", "General100"]
    assert cfg.data.degradation is not None and cfg.data.degradation.preset == "realesrgan"
    assert cfg.train.max_minutes is not None and cfg.train.bf16 and cfg.train.ema_decay
    cfg = load_config(REPO / "configs" / "swinir-light-x4.yaml", ["data.root=/tmp"])
    assert cfg.model.arch == "swinir-light" and cfg.model.scale == 4 and cfg.train.bf16
