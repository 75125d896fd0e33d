"""`srkit iqa score` / `srkit iqa fit-niqe`, and `srkit eval --metrics ... niqe`."""

import json

import numpy as np
import pytest
from helpers import run_cli as cli

from srkit.io import read_image, write_image
from srkit.metrics import fit_niqe_params, load_niqe_params, niqe
from srkit.ops import imresize_matlab


def _texture(h=192, w=192, seed=0):
    rng = np.random.default_rng(seed)
    base = imresize_matlab(rng.random((h // 12, w // 12, 3)), output_shape=(h, w))
    return np.rint(np.clip(base + rng.normal(0, 0.03, (h, w, 3)), 0, 1) * 255).astype(np.uint8)


@pytest.fixture()
def folder(tmp_path):
    d = tmp_path / "photos"
    (d / "sub").mkdir(parents=True)
    write_image(d / "a.png", _texture(seed=1))
    write_image(d / "sub" / "b.webp", _texture(200, 210, seed=2), quality=100)
    (d / "notes.txt").write_text("not an image")
    write_image(d / ".hidden.png", _texture(seed=3))
    return d


def test_score_folder_json(folder, tmp_path, capsys):
    out = tmp_path / "scores.json"
    code, stdout, err = cli(capsys, "iqa", "score", str(folder), "--metrics", "niqe", "--json", str(out))
    assert code == 0, err
    lines = stdout.strip().splitlines()
    assert len(lines) == 3 and lines[-1].startswith("mean of 2 image(s)") and "niqe model: srkit" in lines[-1]
    doc = json.loads(out.read_text())
    assert doc["models"] == {"niqe": "srkit"} and doc["failed"] == []
    names = [row["image"] for row in doc["images"]]
    assert names == [str(folder / "a.png"), str(folder / "sub" / "b.webp")]
    for row in doc["images"]:
        assert row["niqe"] == niqe(read_image(row["image"])[0])
    assert doc["mean"]["niqe"] == pytest.approx(np.mean([row["niqe"] for row in doc["images"]]))


def test_fit_niqe_then_score_with_it(tmp_path, capsys):
    train = tmp_path / "train" / "HR"
    train.mkdir(parents=True)
    images = [_texture(192, 288, seed=s) for s in range(3)]
    for i, img in enumerate(images):
        write_image(train / f"t{i}.png", img)
    model = tmp_path / "model.npz"
    code, out, err = cli(capsys, "iqa", "fit-niqe", str(train), "-o", str(model))
    assert code == 0, err
    assert "3 images" in out and str(model) in out
    fitted = load_niqe_params(model)
    direct = fit_niqe_params(images)
    assert np.array_equal(fitted.mu, direct["mu"]) and np.array_equal(fitted.cov, direct["cov"])
    assert fitted.meta["sources"] == [str(train)]
    probe = tmp_path / "probe.png"
    write_image(probe, _texture(seed=7))
    code, out, err = cli(capsys, "iqa", "score", str(probe), "--params", str(model), "--metrics", "niqe")
    assert code == 0, err
    assert f"niqe {niqe(_texture(seed=7), params=direct):.4f}" in out.splitlines()[0]
    assert f"niqe model: {model}" in out


def test_fit_niqe_refuses_benchmark_sets(tmp_path, capsys):
    d = tmp_path / "Set14" / "HR"
    d.mkdir(parents=True)
    write_image(d / "x.png", _texture())
    code, out, err = cli(capsys, "iqa", "fit-niqe", str(d), "-o", str(tmp_path / "m.npz"))
    assert code == 1 and len(err.strip().splitlines()) == 1 and "benchmark set 'Set14'" in err
    # also through a glob reaching into it
    code, out, err = cli(capsys, "iqa", "fit-niqe", str(tmp_path / "**" / "*.png"), "-o", str(tmp_path / "m.npz"))
    assert code == 1 and "benchmark set" in err
    assert not (tmp_path / "m.npz").exists()


def test_score_errors(folder, tmp_path, capsys):
    bad = tmp_path / "bad.npz"
    np.savez(bad, mu_pris_param=np.zeros((1, 36)), cov_pris_param=np.eye(35))
    code, out, err = cli(capsys, "iqa", "score", str(folder), "--params", str(bad))
    assert code == 1 and len(err.strip().splitlines()) == 1 and "36x36" in err and out == ""
    code, out, err = cli(capsys, "iqa", "score", str(folder), "--metrics", "psnr")
    assert code == 1 and "reference" in err
    code, out, err = cli(capsys, "iqa", "score", str(folder), "--metrics", "nope")
    assert code == 1 and "unknown metric" in err
    # one image too small, one good: the good one is scored, exit code 1, one error line
    write_image(folder / "small.png", _texture(80, 80))
    code, out, err = cli(capsys, "iqa", "score", str(folder / "a.png"), str(folder / "small.png"))
    assert code == 1
    assert out.splitlines()[0].startswith(str(folder / "a.png"))
    assert [ln for ln in err.splitlines() if "error" in ln] == [
        f"srkit: error: {folder / 'small.png'}: niqe needs at least one 96x96 block; the image is 80x80"]


def test_eval_metrics_adds_columns(tmp_path, capsys):
    hr = tmp_path / "Tiny" / "HR"
    hr.mkdir(parents=True)
    write_image(hr / "i0.png", _texture(200, 208, seed=4))
    out_json = tmp_path / "eval.json"
    code, out, err = cli(capsys, "eval", "--model", "bicubic", "--data", str(tmp_path), "--sets", "Tiny",
                         "--scales", "2", "--metrics", "psnr", "niqe", "--json", str(out_json))
    assert code == 0, err
    assert "PSNR (dB)" in out and "NIQE" in out and "SSIM" not in out
    doc = json.loads(out_json.read_text())
    assert set(doc["summary"][0]) >= {"psnr", "niqe"} and "ssim" not in doc["summary"][0]
    assert np.isfinite(doc["images"][0]["niqe"])


def test_score_with_references(tmp_path, capsys):
    from srkit.metrics import psnr, ssim

    imgs, refs = tmp_path / "sr", tmp_path / "hr"
    imgs.mkdir()
    refs.mkdir()
    hr = _texture(seed=5)
    noisy = np.clip(hr.astype(int) + np.random.default_rng(0).integers(-6, 7, hr.shape), 0, 255).astype(np.uint8)
    write_image(imgs / "a.png", noisy)
    write_image(refs / "a.webp", hr, quality=100)  # matched by stem, any suffix (lossless WebP: same pixels)
    code, out, err = cli(capsys, "iqa", "score", str(imgs / "a.png"), "--metrics", "psnr", "ssim", "niqe",
                         "--ref", str(refs), "--json", str(tmp_path / "s.json"))
    assert code == 0, err
    row = json.loads((tmp_path / "s.json").read_text())["images"][0]
    assert row["psnr"] == pytest.approx(psnr(noisy, hr)) and row["ssim"] == pytest.approx(ssim(noisy, hr))
    assert row["niqe"] == pytest.approx(niqe(noisy))
    # An image without a reference fails on its own line; the others are still scored.
    write_image(imgs / "b.png", noisy)
    code, out, err = cli(capsys, "iqa", "score", str(imgs), "--metrics", "psnr", "--ref", str(refs))
    assert code == 1 and "no reference named b.*" in err and out.count("psnr") == 2  # a's line and the mean
    code, _, err = cli(capsys, "iqa", "score", str(imgs), "--metrics", "psnr")
    assert code != 0 and "--ref DIR" in err and "Traceback" not in err
