"""Trainer: smoke run, bit-identical resume, SIGINT, distillation, CLI (train, plot)."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srkit.errors import ConfigError
from srkit.models import load_model, save_model
from srkit.train import fit
from srkit.train.checkpoint import load_checkpoint
from srkit.train.config import DistillCfg, dump_config, load_config, parse_config
from srkit.train.distill import Distiller

from helpers import subprocess_env, write_tiny_images


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return write_tiny_images(tmp_path_factory.mktemp("data"))


def tiny_cfg(root: Path, **train) -> dict:
    return {
        "model": {"arch": "ecbsr-m4c16", "scale": 4},
        "data": {"root": str(root), "train_sets": ["A"], "val_count": 2, "patch_size": 8, "batch_size": 4,
                 "samples_per_epoch": 16},
        "train": {"steps": 20, "val_every": 10, "log_every": 5, "checkpoint_every": 10, **train},
    }


def read_rows(path: Path) -> list[dict]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def state_tensors(run_dir: Path) -> dict[str, torch.Tensor]:
    """Every tensor of last.pt (model, EMA, optimiser moments) and of final.safetensors, flattened by key."""
    from safetensors.torch import load_file

    st = load_checkpoint(run_dir / "checkpoints" / "last.pt")
    out = {f"model.{k}": v for k, v in st["model"].items()}
    out.update({f"ema.{k}": v for k, v in st["ema"]["module"].items()})
    for pid, s in st["optimizer"]["state"].items():
        out.update({f"opt.{pid}.{k}": v for k, v in s.items() if isinstance(v, torch.Tensor)})
    out.update({f"final.{k}": v for k, v in load_file(run_dir / "final.safetensors").items()})
    return out


def test_smoke_run_writes_everything(data_root, tmp_path):
    run = tmp_path / "run"
    res = fit(parse_config(tiny_cfg(data_root)), run, progress=False)
    assert res.final_step == 20 and res.stopped_by is None
    assert res.best_step in (10, 20) and np.isfinite(res.best_psnr)
    rows = read_rows(run / "log.csv")
    assert [int(r["step"]) for r in rows] == [5, 10, 15, 20]
    losses = [float(r["loss"]) for r in rows]
    assert all(np.isfinite(losses)) and losses[-1] < losses[0]
    assert rows[1]["val_psnr"] and not rows[0]["val_psnr"]
    for name in ("best.safetensors", "final.safetensors"):
        m = load_model(run / name)
        assert m.info.arch == "ecbsr-m4c16" and m.info.scale == 4
        assert m(torch.rand(1, 1, 8, 8)).shape == (1, 1, 32, 32)
    again = load_config(run / "config.yaml")
    assert again.data.color == "y" and again.data.root == data_root
    with pytest.raises(ConfigError, match="use --resume or a new folder"):
        fit(parse_config(tiny_cfg(data_root)), run, progress=False)


def test_max_minutes_ends_the_run_with_its_weights(data_root, tmp_path):
    # A budget of 0.01 min (0.6 s) ends a 100000-step run long before its steps: final weights, a validation,
    # a checkpoint, and a rate already annealed on the clock.
    run = tmp_path / "run"
    cfg = tiny_cfg(data_root, steps=100000, max_minutes=0.01, val_every=100000, checkpoint_every=100000)
    res = fit(parse_config(cfg), run, progress=False)
    assert res.stopped_by is None and 1 <= res.final_step < 100000
    rows = read_rows(run / "log.csv")
    assert int(rows[-1]["step"]) == res.final_step and rows[-1]["val_psnr"]
    # base lr 5e-4, no warm-up: the cosine has moved on the clock (how far depends on the machine's speed)
    assert float(rows[-1]["lr"]) < 5e-4 and float(rows[-1]["seconds"]) >= 0.6
    assert (run / "final.safetensors").exists() and (run / "checkpoints" / "last.pt").exists()


@pytest.mark.parametrize("arch", ["ecbsr-m4c16", "swinir-light"])
def test_resume_is_bit_identical(data_root, tmp_path, arch):
    d = tiny_cfg(data_root, steps=12, val_every=4, log_every=3, checkpoint_every=100, device="cpu")
    if arch == "swinir-light":
        # RGB, with stochastic depth: the per-step RNG must replay exactly too.
        d["model"] = {"arch": arch, "scale": 4, "options": {
            "embed_dim": 8, "depths": [2], "num_heads": [2], "window_size": 4, "drop_path_rate": 0.5}}
    cfg = parse_config(d)
    fit(cfg, tmp_path / "once", progress=False)
    part = fit(cfg, tmp_path / "twice", progress=False, stop_at=6)
    assert part.stopped_by == "stop_at" and part.final_step == 6
    assert not (tmp_path / "twice" / "final.safetensors").exists()
    with open(tmp_path / "twice" / "log.csv", "a") as f:  # as if a crash came after rows past the checkpoint
        f.write("9,1.0,1.0,0.1,,,1.0\n")
    rest = fit(cfg, tmp_path / "twice", resume=True, progress=False)
    assert rest.final_step == 12
    a, b = state_tensors(tmp_path / "once"), state_tensors(tmp_path / "twice")
    assert a.keys() == b.keys()
    different = [k for k in a if not torch.equal(a[k], b[k])]
    assert not different, different[:5]
    strip = lambda rows: [{k: v for k, v in r.items() if k != "seconds"} for r in rows]  # noqa: E731
    assert strip(read_rows(tmp_path / "once" / "log.csv")) == strip(read_rows(tmp_path / "twice" / "log.csv"))


def test_resume_needs_a_checkpoint(data_root, tmp_path):
    with pytest.raises(ConfigError, match="nothing to resume"):
        fit(parse_config(tiny_cfg(data_root)), tmp_path / "empty", resume=True, progress=False)


def test_color_must_fit_the_model(data_root, tmp_path):
    d = tiny_cfg(data_root)
    d["data"]["color"] = "rgb"
    with pytest.raises(ConfigError, match="data.color"):
        fit(parse_config(d), tmp_path / "run", progress=False)


def test_distill_term_decreases(data_root, tmp_path):
    from srkit.archs import build

    with torch.random.fork_rng():  # nn.init draws from the global RNG: seed it here only
        torch.manual_seed(0)
        teacher = build("fsrcnn-s", 4)
        save_model(teacher, tmp_path / "teacher.safetensors")
        student = build("ecbsr-m4c16", 4)
        # ECB blocks give 16 channels, FSRCNN-s's first part 32: a 1x1 adapter is learned.
        cfg = DistillCfg(teacher=str(tmp_path / "teacher.safetensors"), weight=1.0, feature_weight=1.0,
                         feature_layers=[("backbone.0", "first_part")])
        dist = Distiller(cfg, student, in_channels=1)
    assert len(list(dist.parameters())) == 2  # the adapter's weight and bias; the teacher is not trained
    opt = torch.optim.Adam(list(student.parameters()) + list(dist.parameters()), lr=2e-3)
    lr = torch.rand(4, 1, 12, 12, generator=torch.Generator().manual_seed(1))
    history = []
    for _ in range(15):
        dist.teach(lr)
        loss, terms = dist.loss(student(lr))
        opt.zero_grad()
        loss.backward()
        opt.step()
        history.append(terms)
    assert history[-1]["distill"] < 0.7 * history[0]["distill"]
    assert history[-1]["distill_feat"] < history[0]["distill_feat"]
    dist.close()
    bad = DistillCfg(teacher=cfg.teacher, feature_weight=1.0, feature_layers=[("nope", "first_part")])
    with pytest.raises(ConfigError, match="no module 'nope'"):
        Distiller(bad, student, in_channels=1)


def test_fit_with_distillation(data_root, tmp_path, tiny_sr_model):
    save_model(tiny_sr_model, tmp_path / "teacher.safetensors")  # any weights will do
    d = tiny_cfg(data_root, steps=4, log_every=2)
    d["distill"] = {"teacher": str(tmp_path / "teacher.safetensors"), "feature_weight": 0.5,
                    "feature_layers": [["backbone.0", "first_part"]]}
    fit(parse_config(d), tmp_path / "run", progress=False)
    rows = read_rows(tmp_path / "run" / "log.csv")
    assert {"l1", "distill", "distill_feat"} <= set(rows[0])
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["distill"]


@pytest.fixture()
def cli(srkit_cli):
    """`srkit ARGS` in this process (exit codes, messages and outputs need no subprocess)."""
    return srkit_cli


def test_sigint_checkpoints_and_resume_finishes(cli, data_root, tmp_path):
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(dump_config(parse_config(tiny_cfg(data_root, steps=100000, checkpoint_every=100000))))
    run = tmp_path / "run"
    env = subprocess_env()
    proc = subprocess.Popen([sys.executable, "-m", "srkit", "train", str(cfg_path), "--out", str(run),
                             "--no-progress"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        deadline = time.monotonic() + 60
        while not (run / "log.csv").exists():  # the first log row: training is under way
            assert proc.poll() is None, proc.communicate()
            assert time.monotonic() < deadline, "training did not start"
            time.sleep(0.1)
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "Traceback" not in err and "--resume" in err
    step = load_checkpoint(run / "checkpoints" / "last.pt")["step"]
    assert 5 <= step < 100000
    r = cli("train", "--resume", str(run), "--set", f"train.steps={step + 2}", "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "best validation PSNR" in r.stdout and (run / "final.safetensors").exists()
    assert load_checkpoint(run / "checkpoints" / "last.pt")["step"] == step + 2


def test_cli_train_and_plot(cli, data_root, tmp_path):
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(dump_config(parse_config(tiny_cfg(data_root))))
    run = tmp_path / "run"
    r = cli("train", str(cfg_path), "--out", str(run), "--set", "train.steps=6", "--set", "train.val_every=3",
            "--no-progress")
    assert r.returncode == 0, r.stderr
    assert "best validation PSNR" in r.stdout and str(run / "best.safetensors") in r.stdout
    assert load_config(run / "config.yaml").train.steps == 6
    r = cli("train", str(cfg_path), "--out", str(run))  # the folder holds a run now
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "use --resume" in r.stderr
    r = cli("train", str(cfg_path), "--set", "train.stepz=3")
    assert r.returncode == 1 and "train.stepz: unknown key" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    r = cli("plot", str(tmp_path))  # no log.csv there
    assert r.returncode == 1 and "no log.csv" in r.stderr and len(r.stderr.strip().splitlines()) == 1
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        r = cli("plot", str(run))
        assert r.returncode == 1 and "matplotlib" in r.stderr and len(r.stderr.strip().splitlines()) == 1
        return
    r = cli("plot", str(run), "-o", str(tmp_path / "curves.png"))
    assert r.returncode == 0, r.stderr
    with Image.open(tmp_path / "curves.png") as im:
        assert im.format == "PNG" and im.size[0] > 100


def test_init_weights_start_the_run(data_root, tmp_path):
    from safetensors.torch import load_file

    fit(parse_config(tiny_cfg(data_root, seed=1)), tmp_path / "a", progress=False)  # another random start
    src = tmp_path / "a" / "best.safetensors"
    d = tiny_cfg(data_root, steps=3, val_every=3)
    d["optim"] = {"lr": 1e-12}  # the weights barely move: what comes out is what went in
    d["schedule"] = {"min_lr": 0.0}
    d["model"]["init"] = str(src)
    fit(parse_config(d), tmp_path / "b", progress=False)
    want, got = load_file(src), load_file(tmp_path / "b" / "final.safetensors")
    assert want.keys() == got.keys()
    assert max((want[k] - got[k]).abs().max().item() for k in want) < 1e-6
    del d["model"]["init"]
    fit(parse_config(d), tmp_path / "c", progress=False)  # without init: a fresh random network
    fresh = load_file(tmp_path / "c" / "final.safetensors")
    assert max((want[k] - fresh[k]).abs().max().item() for k in want) > 1e-2


def test_init_weights_must_fit_the_network(data_root, tmp_path):
    d = tiny_cfg(data_root)
    d["model"]["init"] = "tiny-x4"  # shipped deployed (plain convs): not the multi-branch training form
    with pytest.raises(ConfigError, match="model.init: 'tiny-x4' is not the network"):
        fit(parse_config(d), tmp_path / "a", progress=False)
    d["model"]["init"] = str(tmp_path / "missing.safetensors")
    with pytest.raises(ConfigError, match="model.init"):
        fit(parse_config(d), tmp_path / "b", progress=False)
