"""`srkit degrade` (LR files, JSON records, contact sheet, errors) and evaluation on degraded / paired data."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srkit.degrade.pipeline import Degradation
from srkit.errors import ConfigError, DatasetError
from srkit.evaluate import evaluate, evaluate_paired
from srkit.io import read_image

from helpers import write_tiny_images


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    root = write_tiny_images(tmp_path_factory.mktemp("imgs"), n=3, side=64)
    return root / "A"


@pytest.fixture()
def srkit(srkit_cli, monkeypatch):
    """`srkit ARGS` in this process, run from the folder `cwd`."""

    def run(*args: str, cwd: Path):
        monkeypatch.chdir(cwd)
        return srkit_cli(*args)

    return run


def test_degrade_cli_writes_lr_records_and_sheet(srkit, images, tmp_path):
    r = srkit("degrade", str(images), "-o", str(tmp_path / "lr"), "--preset", "realesrgan", "--scale", "4",
              "--seed", "3", "--sheet", str(tmp_path / "sheet.png"), "--variants", "3", "--crop", "48", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rec = json.loads((tmp_path / "lr" / "degradations.json").read_text())
    assert rec["preset"] == "realesrgan" and rec["scale"] == 4 and rec["seed"] == 3
    assert sorted(rec["images"]) == ["img0.png", "img1.png", "img2.png"]
    for name, entry in rec["images"].items():
        lr = read_image(tmp_path / "lr" / name)[0]
        assert lr.shape == (16, 16, 3) and lr.dtype == np.uint8
        # the record alone rebuilds the file
        hr = torch.from_numpy(read_image(images / name)[0]).permute(2, 0, 1)[None].float() / 255
        again = Degradation.replay(hr, 4, [entry["steps"]])
        assert np.array_equal((again[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8), lr)
    sheet = read_image(tmp_path / "sheet.png")[0]
    assert sheet.shape[1] >= 4 * 48 and sheet.shape[0] > 48  # HR crop + 3 variants, captions under them
    # same seed, same files
    r2 = srkit("degrade", str(images), "-o", str(tmp_path / "lr2"), "--preset", "realesrgan", "--seed", "3",
               cwd=tmp_path)
    assert r2.returncode == 0
    for name in rec["images"]:
        assert (tmp_path / "lr" / name).read_bytes() == (tmp_path / "lr2" / name).read_bytes()


def test_degrade_cli_rerun_adds_to_the_record_and_refuses_other_settings(srkit, images, tmp_path):
    one, rest = sorted(images.glob("*.png"))[0], sorted(images.glob("*.png"))[1:]
    assert srkit("degrade", str(one), "-o", str(tmp_path / "lr"), "--seed", "1", cwd=tmp_path).returncode == 0
    r = srkit("degrade", *map(str, rest), "-o", str(tmp_path / "lr"), "--seed", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    rec = json.loads((tmp_path / "lr" / "degradations.json").read_text())
    assert sorted(rec["images"]) == ["img0.png", "img1.png", "img2.png"]
    r = srkit("degrade", str(one), "-o", str(tmp_path / "lr"), "--seed", "2", cwd=tmp_path)
    assert r.returncode == 1 and "records other settings" in r.stderr
    assert json.loads((tmp_path / "lr" / "degradations.json").read_text()) == rec
    r = srkit("degrade", str(tmp_path / "missing.png"), "-o", str(tmp_path / "empty"), cwd=tmp_path)
    assert r.returncode == 1 and not (tmp_path / "empty" / "degradations.json").exists()


def test_degrade_cli_bad_input_is_one_line(srkit, images, tmp_path):
    r = srkit("degrade", str(images), "-o", str(tmp_path / "o"), "--preset", "nope", cwd=tmp_path)
    assert r.returncode == 1 and "unknown preset 'nope'" in r.stderr and "Traceback" not in r.stderr
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("steps:\n  - {op: blur, kernel_sizes: [8]}\n  - {op: to_target}\n")
    r = srkit("degrade", str(images), "-o", str(tmp_path / "o"), "--config", str(cfg), cwd=tmp_path)
    assert r.returncode == 1 and "kernel_sizes: 8 is even" in r.stderr and len(r.stderr.strip().splitlines()) == 1


def test_eval_on_degraded_lr_is_cached_and_identical(images, tmp_path):
    data = images.parent.parent / "sets"
    (data / "Tiny").mkdir(parents=True, exist_ok=True)
    if not (data / "Tiny" / "HR").exists():
        (data / "Tiny" / "HR").symlink_to(images)
    cache = tmp_path / "cache"
    a = evaluate("bicubic", data, ["Tiny"], [4], degradation="realesrgan", degradation_seed=0, cache=cache)
    files = sorted(cache.rglob("*.png"))
    assert len(files) == 3
    stamps = [f.stat().st_mtime_ns for f in files]
    b = evaluate("bicubic", data, ["Tiny"], [4], degradation="realesrgan", degradation_seed=0, cache=cache)
    c = evaluate("bicubic", data, ["Tiny"], [4], degradation="realesrgan", degradation_seed=0, cache=False)
    assert [f.stat().st_mtime_ns for f in files] == stamps  # read back, not rewritten
    assert [r.scores for r in a.images] == [r.scores for r in b.images]
    assert [r.scores for r in a.images] == [r.scores for r in c.images]
    clean = evaluate("bicubic", data, ["Tiny"], [4])
    assert a.summary[0].scores["psnr"] < clean.summary[0].scores["psnr"] - 1.0
    assert "realesrgan" in a.lr_source
    with pytest.raises(ConfigError):
        evaluate("bicubic", data, ["Tiny"], [4], degradation="nope")


def test_paired_eval_reads_the_scale_from_the_images(images, tmp_path):
    (tmp_path / "P" / "HR").mkdir(parents=True)
    (tmp_path / "P" / "LR").mkdir()
    for i, f in enumerate(sorted(images.glob("*.png"))):
        im = Image.open(f)
        im.save(tmp_path / "P" / "HR" / f.name)
        im.resize((32, 32), Image.BICUBIC).save(tmp_path / "P" / "LR" / f"{f.stem}x2.png")
    rep = evaluate_paired("bicubic", tmp_path / "P")
    assert [r.scale for r in rep.images] == [2, 2, 2] and rep.summary[0].images == 3
    assert 20 < rep.summary[0].scores["psnr"] < 60
    (tmp_path / "P" / "LR" / "extra.png").write_bytes((tmp_path / "P" / "LR" / "img0x2.png").read_bytes())
    with pytest.raises(DatasetError, match="without a partner"):
        evaluate_paired("bicubic", tmp_path / "P")
    with pytest.raises(DatasetError, match="not a folder"):
        evaluate_paired("bicubic", tmp_path / "nothing")
