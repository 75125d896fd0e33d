"""scripts/strength_report.py runs end to end on a tiny stand-in dataset and model, prints its tables and targets,
writes its JSON and the figure; its high-frequency measure and level parsing behave."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from helpers import load_script, textured

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "strength_report.py"


def _load():
    return load_script(SCRIPT)


def _textured(side: int, seed: int) -> np.ndarray:
    return textured(side, seed)


def test_report_end_to_end(tmp_path, monkeypatch, capsys):
    from helpers import rand_model

    from srkit.models import save_model

    monkeypatch.setenv("SRKIT_CACHE", str(tmp_path / "cache"))
    for i, s in enumerate(("Set14", "B100")):
        (tmp_path / "data" / s / "HR").mkdir(parents=True)
        Image.fromarray(_textured(64, i)).save(tmp_path / "data" / s / "HR" / f"img{i}.png")
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = save_model(rand_model("ecbsr-ctrl", 4, module_nums=2, channel_nums=8), tmp_path / "ctrl.safetensors")
    report = _load()
    rc = report.main(["--model", str(model), "--blind", "bicubic", "--clean-ref", "bicubic", "--data",
                      str(tmp_path / "data"), "--figure", str(tmp_path / "fig.png"), "--figure-image", "B100/img1",
                      "--crop", "48", "--json", str(tmp_path / "r.json"), "--threads", "1"])
    out = capsys.readouterr().out
    assert rc in (0, 1)  # a random network meets some targets and misses others
    assert "| Set14 | 5 / 90 |" in out and "| B100 | 30 / 30 |" in out and "clean Set14 x4" in out
    assert out.count("PASS") + out.count("MISS") == 2 * 2 * 3 + 2
    data = json.loads((tmp_path / "r.json").read_text())
    assert len(data["degraded"]) == 6 and len(data["monotonic"]) == 3 and data["clean"]["images"] == 1
    assert (rc == 0) == all(t["met"] for t in data["targets"])
    fig = np.asarray(Image.open(tmp_path / "fig.png"))
    assert fig.shape[0] == 48 + 46 and fig.shape[1] == 7 * (48 + 6) + 6  # input, blind, 5 strengths


def test_hf_energy_and_levels():
    report = _load()
    flat = np.full((16, 16, 3), 0.5)
    assert report.hf_energy(flat) == pytest.approx(0.0, abs=1e-9)
    rng = np.random.default_rng(0)
    assert report.hf_energy(flat + rng.normal(0, 0.05, flat.shape)) > report.hf_energy(
        flat + rng.normal(0, 0.01, flat.shape))
    assert report.parse_level("15/60") == (15.0, 60)
    for bad in ("15", "60/15/1", "-1/50", "20/5"):
        with pytest.raises(argparse.ArgumentTypeError):
            report.parse_level(bad)
