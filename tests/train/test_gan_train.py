"""GAN training: smoke run with every G/D term logged, bit-identical resume, D-only warm-up, config checks."""

from __future__ import annotations

import csv
import math
from pathlib import Path

import pytest
import torch

from srkit.errors import ConfigError
from srkit.models import load_model, save_model
from srkit.train import fit
from srkit.train.checkpoint import load_checkpoint
from srkit.train.config import GanCfg, load_config, parse_config
from srkit.train.gan import build_discriminator

from helpers import write_tiny_images

SMALL_VGG = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0}
GAN_COLUMNS = {"l1", "perceptual", "g_adv", "fm", "ldl", "d_real", "d_fake"}


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return write_tiny_images(tmp_path_factory.mktemp("data"))


def gan_cfg(root: Path, gan: dict | None = None, **train) -> dict:
    """ECBSR-M4C16 x4 (Y), 8 px LR patches; a U-Net discriminator with 8 features; random-init VGG19."""
    return {
        "model": {"arch": "ecbsr-m4c16", "scale": 4},
        "data": {"root": str(root), "train_sets": ["A"], "val_count": 2, "patch_size": 8, "batch_size": 4,
                 "samples_per_epoch": 16},
        "loss": [{"name": "l1"}, {"name": "perceptual", "layers": SMALL_VGG, "weights": "random"}],
        "train": {"steps": 20, "val_every": 10, "log_every": 5, "checkpoint_every": 10, "device": "cpu", **train},
        "gan": {"discriminator": {"options": {"num_feat": 8}}, "loss": "vanilla", "weight": 0.1,
                "feature_matching": 0.5, "ldl": 1.0, "warmup_steps": 2, "grad_clip": 10.0, **(gan or {})},
    }


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


@pytest.fixture(scope="module")
def gan_run(data_root, tmp_path_factory) -> Path:
    run = tmp_path_factory.mktemp("gan") / "run"
    res = fit(parse_config(gan_cfg(data_root)), run, progress=False)
    assert res.final_step == 20 and res.stopped_by is None
    return run


def test_gan_smoke_run_logs_d_and_g(gan_run):
    rows = read_rows(gan_run / "log.csv")
    assert [int(r["step"]) for r in rows] == [5, 10, 15, 20]
    assert GAN_COLUMNS <= set(rows[0])
    for r in rows:
        assert all(math.isfinite(float(r[k])) for k in GAN_COLUMNS | {"loss"})
        assert float(r["d_real"]) > 0 and float(r["d_fake"]) > 0 and float(r["perceptual"]) > 0
    assert rows[1]["val_psnr"] and math.isfinite(float(rows[1]["val_psnr"]))
    st = load_checkpoint(gan_run / "checkpoints" / "last.pt")
    assert st["step"] == 20
    assert {"conv0.weight", "conv1.weight_orig", "conv1.weight_u", "conv9.bias"} <= set(st["gan"]["discriminator"])
    assert st["gan"]["discriminator"]["conv0.weight"].shape == (8, 1, 3, 3)  # Y model: a 1-channel D
    assert len(st["gan"]["optimizer"]["state"]) == len(st["gan"]["discriminator"]) - 16  # not u, v
    assert int(st["optimizer"]["state"][0]["step"]) == 18  # G: 20 steps minus the 2 D-only warm-up steps
    assert int(st["gan"]["optimizer"]["state"][0]["step"]) == 20  # D: every step
    m = load_model(gan_run / "final.safetensors")
    assert m.info.arch == "ecbsr-m4c16" and m(torch.rand(1, 1, 8, 8)).shape == (1, 1, 32, 32)
    cfg = load_config(gan_run / "config.yaml")
    assert cfg.gan is not None and cfg.gan.ldl == 1.0 and cfg.gan.discriminator.options == {"num_feat": 8}


def test_plot_draws_the_gan_panel(gan_run, tmp_path):
    pytest.importorskip("matplotlib")
    from PIL import Image

    from srkit.cli.plot import plot_command

    plot_command(gan_run, tmp_path / "curves.png")
    with Image.open(tmp_path / "curves.png") as im:
        assert im.format == "PNG" and im.size[1] >= 1000  # three panels (loss, D/G, PSNR): 9 in at 120 dpi


def test_resume_needs_the_same_gan_setting(gan_run, data_root):
    d = gan_cfg(data_root, steps=22)
    del d["gan"]
    with pytest.raises(ConfigError, match="trained with a gan section, the config has none"):
        fit(parse_config(d), gan_run, resume=True, progress=False)


def state_tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    """G, EMA, D, both optimisers' tensors (moments, step counts) and final.safetensors, flattened by key."""
    from safetensors.torch import load_file

    st = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    out = {f"model.{k}": v for k, v in st["model"].items()}
    out.update({f"ema.{k}": v for k, v in st["ema"]["module"].items()})
    out.update({f"d.{k}": v for k, v in st["gan"]["discriminator"].items()})
    for name, opt in (("opt_g", st["optimizer"]), ("opt_d", st["gan"]["optimizer"])):
        for pid, s in opt["state"].items():
            out.update({f"{name}.{pid}.{k}": v for k, v in s.items() if isinstance(v, torch.Tensor)})
    out.update({f"final.{k}": v for k, v in load_file(run_dir / "final.safetensors").items()})
    return out


def test_gan_resume_is_bit_identical(data_root, tmp_path):
    d = gan_cfg(data_root, gan={"loss": "ragan", "warmup_steps": 3}, steps=12, val_every=4, log_every=3,
                checkpoint_every=100)
    cfg = parse_config(d)
    fit(cfg, tmp_path / "once", progress=False)
    part = fit(cfg, tmp_path / "twice", progress=False, stop_at=6)
    assert part.stopped_by == "stop_at" and part.final_step == 6
    rest = fit(cfg, tmp_path / "twice", resume=True, progress=False)
    assert rest.final_step == 12
    a, b = state_tensors(tmp_path / "once"), state_tensors(tmp_path / "twice")
    assert a.keys() == b.keys() and any(k.startswith("opt_d.") for k in a) and any(k.startswith("d.") for k in a)
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]
    rows = read_rows(tmp_path / "once" / "log.csv")
    assert [{k: v for k, v in r.items() if k != "seconds"} for r in rows] == [
        {k: v for k, v in r.items() if k != "seconds"} for r in read_rows(tmp_path / "twice" / "log.csv")]
    assert GAN_COLUMNS <= set(rows[0])


def test_warmup_trains_only_d_and_init_from_fidelity_weights(data_root, tmp_path):
    from safetensors.torch import load_file

    from srkit.archs import build

    with torch.random.fork_rng():
        torch.manual_seed(5)  # not the run seed: a different network than the run would draw
        save_model(build("ecbsr-m4c16", 4), tmp_path / "fidelity.safetensors")
    want = load_file(tmp_path / "fidelity.safetensors")
    d = gan_cfg(data_root, gan={"warmup_steps": 3, "loss": "hinge", "feature_matching": 0.0, "ldl": 0.0},
                steps=5, checkpoint_every=100)
    d["model"]["init"] = str(tmp_path / "fidelity.safetensors")
    fit(parse_config(d), tmp_path / "run", progress=False, stop_at=3)
    st = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    g = {k.removeprefix("module."): v for k, v in st["model"].items()}  # SRModel wraps the network
    assert g.keys() == want.keys()
    assert all(torch.equal(g[k], want[k]) for k in want)  # G untouched by the warm-up ...
    assert st["optimizer"]["state"] == {} and st["ema"]["updates"] == 0
    assert int(st["gan"]["optimizer"]["state"][0]["step"]) == 3  # ... while D trained
    rows = read_rows(tmp_path / "run" / "log.csv")
    assert {"g_adv", "d_real", "d_fake"} <= set(rows[0]) and not {"fm", "ldl"} & set(rows[0])
    fit(parse_config(d), tmp_path / "run", resume=True, progress=False)
    st = load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")
    assert any(not torch.equal(st["model"][f"module.{k}"], want[k]) for k in want)  # then G trains
    assert int(st["optimizer"]["state"][0]["step"]) == 2


def test_discriminator_init_file(tmp_path):
    cfg = GanCfg(discriminator={"options": {"num_feat": 4}})
    src = build_discriminator(cfg, 3, seed=1)
    torch.save({"params": src.state_dict()}, tmp_path / "netD.pth")  # BasicSR / Real-ESRGAN layout
    cfg = GanCfg(discriminator={"options": {"num_feat": 4}, "init": str(tmp_path / "netD.pth")})
    got = build_discriminator(cfg, 3, seed=2).state_dict()
    assert all(torch.equal(got[k], v) for k, v in src.state_dict().items())
    assert not torch.equal(build_discriminator(cfg, 3, seed=2, load_init=False).state_dict()["conv0.weight"],
                           got["conv0.weight"])
    bad = GanCfg(discriminator={"options": {"num_feat": 8}, "init": str(tmp_path / "netD.pth")})
    with pytest.raises(ConfigError, match="gan.discriminator.init: .* does not fit"):
        build_discriminator(bad, 3)
    with pytest.raises(ConfigError, match="gan.discriminator.options.num_in_ch: 3 channels, but the generator"):
        build_discriminator(GanCfg(discriminator={"options": {"num_in_ch": 3}}), 1)


@pytest.mark.parametrize(
    ("override", "expected"),
    [
        ("gan.loss=wgan", "gan.loss: Input should be 'vanilla', 'lsgan', 'hinge' or 'ragan'"),
        ("gan.discriminator.arch=edsr", "gan.discriminator.arch: 'edsr' is not a discriminator"),
        ("gan.optim.betas=[0.9, 1.0]", "gan.optim.betas: betas must be in [0, 1)"),
        ("gan.weight=-1", "gan.weight: Input should be greater than or equal to 0"),
        ("gan.ldl_kernel=6", "gan.ldl_kernel: ldl_kernel must be odd"),
        ("gan.bogus=1", "gan.bogus: unknown key (known: discriminator, loss, weight,"),
        ("gan.warmup_steps=20", "gan.warmup_steps (20) leaves no generator step"),
        ("train.ema_decay=null", "gan.ldl > 0 compares with the EMA generator: set train.ema_decay"),
        ("gan.discriminator.arch=vgg-discriminator", "vgg-discriminator takes 128 px patches, but HR patches are 32"),
        ("data.patch_size=9", "unet-discriminator needs HR patches that are a multiple of 8 px, got 36"),
        ("loss.1.layers={conv6_1: 1}", "loss[1].layers: unknown VGG19 layer 'conv6_1'"),
    ],
)
def test_gan_config_problems_are_one_line(data_root, tmp_path, override, expected):
    import yaml

    p = tmp_path / "cfg.yaml"
    p.write_text(yaml.safe_dump(gan_cfg(data_root)))
    with pytest.raises(ConfigError) as e:
        load_config(p, [override])
    assert "\n" not in str(e.value) and expected in str(e.value)
