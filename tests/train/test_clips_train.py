"""Clip mode of the trainer (`data.clips`, `srkit.train.clips`): a multi-frame model trains on synthetic clips and
a single-image model on their frames, with validation on the clips' centre frames; the run resumes bit for bit;
what clip mode does not support is refused in one line."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from srkit.errors import ConfigError
from srkit.models import load_model
from srkit.train import fit
from srkit.train.config import parse_config

from helpers import write_tiny_images
from test_train import read_rows


@pytest.fixture(scope="module")
def data_root(tmp_path_factory) -> Path:
    return write_tiny_images(tmp_path_factory.mktemp("data"), n=5, side=72)


def clip_cfg(root: Path, arch: str = "recurrent-vsr", options: dict | None = None, **extra) -> dict:
    data = {"root": str(root), "train_sets": ["A"], "val_count": 1, "patch_size": 8, "batch_size": 2,
            "samples_per_epoch": 8, "degradation": {"preset": "video", "margin": 2}, "clips": {"frames": 3},
            **extra.pop("data", {})}
    return {
        "model": {"arch": arch, "scale": 4, "options": options or {"channels": 8, "blocks": 1, "flow_width": 8}},
        "data": data,
        "train": {"steps": 4, "val_every": 2, "log_every": 2, "checkpoint_every": 2, "device": "cpu",
                  "ema_decay": 0.9},
        **extra,
    }


@pytest.mark.parametrize("arch, options", [("recurrent-vsr", {"channels": 8, "blocks": 1, "flow_width": 8,
                                                              "align_loss": 0.1}),
                                           ("recurrent-vsr-single", {"channels": 8, "blocks": 1})])
def test_both_models_train_on_clips(data_root, tmp_path, arch, options):
    cfg = parse_config(clip_cfg(data_root, arch, options))
    result = fit(cfg, tmp_path / "run", progress=False)
    assert result.final_step == 4 and result.best_psnr is not None
    rows = read_rows(tmp_path / "run" / "log.csv")
    assert rows[-1]["val_psnr"] != ""
    assert ("aux" in rows[-1]) == (arch == "recurrent-vsr")  # the flow's alignment loss, logged
    model = load_model(result.final_weights)
    assert model.info.arch == arch and model.info.multi_frame == (arch == "recurrent-vsr")
    assert "clips" in (tmp_path / "run" / "config.yaml").read_text()


def test_resumed_clip_run_equals_the_uninterrupted_one(data_root, tmp_path):
    cfg = parse_config(clip_cfg(data_root))
    whole = fit(cfg, tmp_path / "whole", progress=False)
    part = fit(cfg, tmp_path / "part", progress=False, stop_at=2)
    assert part.stopped_by == "stop_at"
    resumed = fit(cfg, tmp_path / "part", progress=False, resume=True)
    a, b = load_model(whole.final_weights), load_model(resumed.final_weights)
    for (k, x), (_, y) in zip(a.state_dict().items(), b.state_dict().items()):
        assert torch.equal(x, y), k


def test_what_clip_mode_refuses(data_root, tmp_path):
    with pytest.raises(ConfigError, match="multi-frame model: give data.clips"):
        fit(parse_config(clip_cfg(data_root, data={"clips": None})), tmp_path / "a", progress=False)
    with pytest.raises(ConfigError, match="on: loader"):
        fit(parse_config(clip_cfg(data_root, data={"degradation": {"preset": "video", "on": "batch"}})),
            tmp_path / "b", progress=False)
    with pytest.raises(ConfigError, match="not supported on clips"):
        fit(parse_config(clip_cfg(data_root, "recurrent-vsr-single", {"channels": 8, "blocks": 1},
                                  gan={"discriminator": {"arch": "unet-discriminator", "options": {"num_feat": 8}}})),
            tmp_path / "c", progress=False)
    with pytest.raises(ConfigError, match="data.clips.frames"):
        parse_config(clip_cfg(data_root, data={"clips": {"frames": 0}}))
