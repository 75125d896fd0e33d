import json
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from srkit.cli.app import expand_multi_value
from srkit.metrics import psnr, ssim
from srkit.ops import imresize_matlab


@pytest.fixture()
def run(srkit_cli):
    """`srkit ARGS` in this process (exit code, messages and outputs need no subprocess)."""
    return srkit_cli


def _smooth_image(rng, h, w, c=3):
    # Smooth content so bicubic scores are realistic (not noise).
    base = rng.random((h // 4 + 2, w // 4 + 2, c))
    img = imresize_matlab(base, output_shape=(h, w))
    return np.clip(img * 255, 0, 255).astype(np.uint8) if c > 1 else np.clip(img[..., 0] * 255, 0, 255).astype(np.uint8)


@pytest.fixture()
def tiny_set(tmp_path):
    rng = np.random.default_rng(0)
    hr_dir = tmp_path / "Tiny" / "HR"
    hr_dir.mkdir(parents=True)
    for i, (h, w) in enumerate([(37, 45), (40, 40)]):
        Image.fromarray(_smooth_image(rng, h, w)).save(hr_dir / f"img{i}.png")
    Image.fromarray(_smooth_image(rng, 30, 34, c=1)).save(hr_dir / "gray.png")
    return tmp_path


def test_expand_multi_value():
    assert expand_multi_value(["eval", "--sets", "A", "B", "--scales", "2", "3", "--rgb"]) == [
        "eval", "--sets", "A", "--sets", "B", "--scales", "2", "--scales", "3", "--rgb"]


def test_help_has_example(run):
    r = run("eval", "--help")
    assert r.returncode == 0 and "Example" in r.stdout
    r = run("--version")
    assert r.returncode == 0 and r.stdout.startswith("srkit ")


def test_python_m_srkit_entry_point():
    """`python -m srkit` itself (srkit/__main__.py): a real process, its exit codes and one-line errors."""

    def srkit(*args):
        return subprocess.run([sys.executable, "-m", "srkit", *args], capture_output=True, text=True, timeout=120)

    r = srkit("--version")
    assert r.returncode == 0 and r.stdout.startswith("srkit ")
    r = srkit("no-such-command")
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_bad_argument_is_one_line_exit_2(run):
    r = run("eval", "--scales", "two")
    assert r.returncode == 2
    assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


def test_missing_data_is_one_line_exit_1(run, tmp_path):
    r = run("eval", "--data", str(tmp_path / "nope"), "--sets", "Set5")
    assert r.returncode == 1
    assert len(r.stderr.strip().splitlines()) == 1 and "does not exist" in r.stderr
    r = run("eval", "--data", str(tmp_path), "--sets", "Set5")
    assert r.returncode == 1 and "no benchmark set" in r.stderr and "Traceback" not in r.stderr


def test_unknown_model_is_one_line_exit_1(run, tiny_set):
    r = run("eval", "--model", "no-such-model", "--data", str(tiny_set), "--sets", "Tiny", "--scales", "2")
    assert r.returncode == 1 and len(r.stderr.strip().splitlines()) == 1 and "unknown model" in r.stderr


def test_eval_json_matches_direct_computation(run, tiny_set, tmp_path):
    out = tmp_path / "r.json"
    csv = tmp_path / "r.csv"
    r = run("eval", "--model", "bicubic", "--data", str(tiny_set), "--sets", "Tiny", "--scales", "2", "3",
            "--json", str(out), "--csv", str(csv))
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    assert [(s["set"], s["scale"]) for s in rep["summary"]] == [("Tiny", 2), ("Tiny", 3)]
    assert {"set", "scale", "psnr", "ssim"} <= set(rep["summary"][0])
    assert len(rep["images"]) == 6 and len(csv.read_text().strip().splitlines()) == 7
    # Recompute one image by hand from the public building blocks.
    hr = np.asarray(Image.open(tiny_set / "Tiny" / "HR" / "img0.png"))
    s = 3
    hr = hr[: hr.shape[0] // s * s, : hr.shape[1] // s * s]
    lr = imresize_matlab(hr, 1 / s)
    sr = imresize_matlab(lr.astype(np.float64) / 255, float(s))
    row = next(x for x in rep["images"] if x["image"] == "img0" and x["scale"] == 3)
    assert row["psnr"] == pytest.approx(psnr(sr, hr, border=s), abs=1e-4)
    assert row["ssim"] == pytest.approx(ssim(sr, hr, border=s), abs=1e-6)
    # Summary = mean of per-image scores.
    mean = np.mean([x["psnr"] for x in rep["images"] if x["scale"] == 3])
    assert rep["summary"][1]["psnr"] == pytest.approx(mean, abs=1e-9)


def test_eval_lr_from_disk(run, tiny_set, tmp_path):
    s = 2
    lr_dir = tiny_set / "Tiny" / "LR_bicubic" / f"X{s}"
    lr_dir.mkdir(parents=True)
    for p in (tiny_set / "Tiny" / "HR").iterdir():
        hr = np.asarray(Image.open(p))
        hr = hr[: hr.shape[0] // s * s, : hr.shape[1] // s * s]
        Image.fromarray(imresize_matlab(hr, 1 / s, convention="legacy")).save(lr_dir / f"{p.stem}x{s}.png")
    out = tmp_path / "d.json"
    r = run("eval", "--data", str(tiny_set), "--sets", "Tiny", "--scales", "2", "--lr-from-disk", "--json", str(out))
    assert r.returncode == 0, r.stderr
    rep = json.loads(out.read_text())
    assert rep["lr_source"] == "disk"
    hr = np.asarray(Image.open(tiny_set / "Tiny" / "HR" / "img1.png"))
    lr = np.asarray(Image.open(lr_dir / "img1x2.png"))
    expected = psnr(imresize_matlab(lr.astype(np.float64) / 255, 2.0), hr, border=2)
    row = next(x for x in rep["images"] if x["image"] == "img1")
    assert row["psnr"] == pytest.approx(expected, abs=1e-4)
    # A missing LR file is a clear error.
    (lr_dir / "img0x2.png").unlink()
    r = run("eval", "--data", str(tiny_set), "--sets", "Tiny", "--scales", "2", "--lr-from-disk")
    assert r.returncode == 1 and "missing LR image" in r.stderr


# Published bicubic table (EDSR / SAFMN papers): (PSNR, SSIM) per set and scale.
PUBLISHED_BICUBIC = {
    ("Set5", 2): (33.66, 0.9299), ("Set5", 3): (30.39, 0.8682), ("Set5", 4): (28.42, 0.8104),
    ("Set14", 2): (30.24, 0.8688), ("Set14", 3): (27.55, 0.7742), ("Set14", 4): (26.00, 0.7027),
    ("B100", 2): (29.56, 0.8431), ("B100", 3): (27.21, 0.7385), ("B100", 4): (25.96, 0.6675),
}


@pytest.mark.data
def test_bicubic_reproduces_published_table(run, data_dir, tmp_path):
    out = tmp_path / "bicubic.json"
    r = run("eval", "--model", "bicubic", "--data", str(data_dir), "--json", str(out))
    assert r.returncode == 0, r.stderr
    rows = {(s["set"], s["scale"]): s for s in json.loads(out.read_text())["summary"]}
    assert set(rows) == set(PUBLISHED_BICUBIC)
    for key, (p, s) in PUBLISHED_BICUBIC.items():
        assert abs(rows[key]["psnr"] - p) <= 0.025, (key, rows[key]["psnr"], p)
        assert abs(rows[key]["ssim"] - s) <= 0.001, (key, rows[key]["ssim"], s)
