"""Distributed training: 2 CPU ranks (gloo, via torchrun) compute what one process computes."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import torch

from srkit.errors import ConfigError
from srkit.train import fit
from srkit.train.config import dump_config, parse_config
from srkit.train.loop import StepBatchSampler

from helpers import subprocess_env, write_tiny_images


def test_rank_slices_make_up_the_global_batch():
    one = StepBatchSampler(16, 4, 0, 9, seed=3)
    ranks = [StepBatchSampler(16, 4, 0, 9, seed=3, rank=r, world=2) for r in range(2)]
    for step in range(9):  # crosses two epoch boundaries (4 steps per epoch)
        assert ranks[0].batch(step) + ranks[1].batch(step) == one.batch(step)
        assert one.batch(step)[0][0] == step // 4  # the epoch
    # A sampler started mid-way yields the same batches as the tail of a full one.
    assert list(StepBatchSampler(16, 4, 5, 9, seed=3)) == list(one)[5:]
    with pytest.raises(ConfigError, match="not divisible"):
        StepBatchSampler(16, 4, 0, 9, seed=3, rank=0, world=3)


def test_two_ranks_match_one_process(tmp_path, tiny_sr_model):
    from srkit.models import save_model

    root = write_tiny_images(tmp_path / "data")
    # Distillation with a learned feature adapter: its gradients are averaged outside DDP, by hand.
    save_model(tiny_sr_model, tmp_path / "teacher.safetensors")
    cfg = parse_config({
        "model": {"arch": "ecbsr-m4c16", "scale": 4},
        "data": {"root": str(root), "train_sets": ["A"], "val_count": 2, "patch_size": 8, "batch_size": 4,
                 "samples_per_epoch": 8},
        "optim": {"grad_clip": 0.5},
        "train": {"steps": 5, "bf16": False, "channels_last": False, "val_every": 5, "log_every": 1,
                  "device": "cpu"},  # gloo on CPU, whatever GPUs the machine has
        "distill": {"teacher": str(tmp_path / "teacher.safetensors"), "weight": 0.5, "feature_weight": 0.1,
                    "feature_layers": [["backbone.1", "first_part"]]},
    })
    cfg_path = tmp_path / "cfg.yaml"
    cfg_path.write_text(dump_config(cfg))
    env = subprocess_env()
    env.pop("WORLD_SIZE", None)
    r = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
         "-m", "srkit", "train", str(cfg_path), "--out", str(tmp_path / "ddp"), "--no-progress"],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert r.returncode == 0, r.stderr[-3000:]
    assert r.stdout.count("best validation PSNR") == 1  # only rank 0 reports
    fit(cfg, tmp_path / "single", progress=False)

    from safetensors.torch import load_file

    from srkit.train.checkpoint import load_checkpoint

    for name in ("final.safetensors", "best.safetensors"):
        a, b = load_file(tmp_path / "ddp" / name), load_file(tmp_path / "single" / name)
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-5, msg=f"{name}: {k}")
    ca = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt")
    cb = load_checkpoint(tmp_path / "single" / "checkpoints" / "last.pt")
    for part in ("model", "distill"):
        assert ca[part].keys() == cb[part].keys() and ca[part]
        for k in ca[part]:
            torch.testing.assert_close(ca[part][k], cb[part][k], rtol=0, atol=1e-5, msg=f"{part}: {k}")
    # The logged loss is the mean over both ranks, so it matches the single-process loss too.
    rows_a = (tmp_path / "ddp" / "log.csv").read_text().splitlines()
    rows_b = (tmp_path / "single" / "log.csv").read_text().splitlines()
    la = [float(x.split(",")[1]) for x in rows_a[1:]]
    lb = [float(x.split(",")[1]) for x in rows_b[1:]]
    np.testing.assert_allclose(la, lb, rtol=1e-4)
