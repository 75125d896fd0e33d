"""Frictions a new user met (issue 17): stale outputs, output paths, export paths, any output scale, float range."""

import numpy as np
import pytest

import srkit
from srkit.errors import ShapeError
from srkit.infer import Upscaler, engine
from srkit.io import read_image, write_image
from srkit.models import load_model


def _rand(shape, seed=0):
    return (np.random.default_rng(seed).random(shape) * 255).astype(np.uint8)


def test_rerun_with_other_settings_redoes_stale_outputs(tmp_path, srkit_cli):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    write_image(src / "a.png", _rand((10, 12, 3)))
    r = srkit_cli("upscale", src, "-o", out, "--model", "bicubic", "--scale", "2")
    assert r.returncode == 0 and "1 written" in r.stdout
    r = srkit_cli("upscale", src, "-o", out, "--model", "bicubic", "--scale", "2")
    assert "0 written, 1 skipped" in r.stdout  # the same request: skipped
    r = srkit_cli("upscale", src, "-o", out, "--model", "bicubic", "--scale", "3")
    assert "1 written, 0 skipped" in r.stdout and "redone" in r.stdout  # another scale: redone, not kept stale
    assert read_image(out / "a.png")[0].shape == (30, 36, 3)
    r = srkit_cli("upscale", src, "-o", out, "--model", "bicubic", "--scale", "3", "-q", "80")
    assert "1 written" in r.stdout  # the quality is part of the request too (conservative: redone)
    # An output with no record (another tool made it) is left alone.
    write_image(out / "b.png", _rand((4, 4, 3)))
    write_image(src / "b.png", _rand((10, 12, 3), 1))
    r = srkit_cli("upscale", src, "-o", out, "--model", "bicubic", "--scale", "3")
    assert read_image(out / "b.png")[0].shape == (4, 4, 3)


def test_bare_classical_name_says_its_scale(tmp_path, srkit_cli):
    write_image(tmp_path / "a.png", _rand((8, 8, 3)))
    r = srkit_cli("upscale", tmp_path / "a.png", "-o", tmp_path / "b.png", "--model", "bicubic")
    assert r.returncode == 0 and "bicubic upscales x4" in r.stderr


def test_several_inputs_refuse_a_file_like_output(tmp_path, srkit_cli):
    for n in ("a", "b"):
        write_image(tmp_path / f"{n}.png", _rand((8, 8, 3)))
    r = srkit_cli("upscale", tmp_path / "a.png", tmp_path / "b.png", "-o", tmp_path / "out" / "two.png",
                  "--model", "bicubic")
    assert r.returncode == 2 and "looks like a file name" in r.stderr
    assert not (tmp_path / "out").exists()
    r = srkit_cli("upscale", tmp_path / "a.png", tmp_path / "b.png", "-o", f"{tmp_path / 'two.png'}/",
                  "--model", "bicubic")
    assert r.returncode == 0 and (tmp_path / "two.png" / "a.png").is_file()


def test_export_creates_its_folder_and_checks_the_suffix(tmp_path, srkit_cli):
    pytest.importorskip("onnxruntime")
    r = srkit_cli("export", "tiny-x4", "--format", "torchscript", "-o", tmp_path / "b.onnx")
    assert r.returncode != 0 and "does not match the output name" in r.stderr
    r = srkit_cli("export", "tiny-x4", "-o", tmp_path / "new" / "deeper" / "t.pt")
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "new" / "deeper" / "t.pt").is_file()


@pytest.mark.parametrize("outscale,passes", [(2.0, 1), (3.0, 1), (8.0, 2), (4.0, 1)])
def test_outscale_is_model_passes_then_bicubic(outscale, passes):
    up = Upscaler(load_model("bicubic", scale=4))
    img = _rand((10, 14, 3))
    out = engine.run_array_outscale(up, img, engine.Request(), outscale)
    assert out.shape == (round(10 * outscale), round(14 * outscale), 3) and out.dtype == np.uint8
    assert engine.outscale_passes(4, outscale) == passes
    if outscale == 4.0:
        assert np.array_equal(out, up.upscale(img))  # the model's own scale: no resampling


def test_outscale_through_the_cli(tmp_path, srkit_cli):
    write_image(tmp_path / "a.png", _rand((10, 14, 3)))
    r = srkit_cli("upscale", tmp_path / "a.png", "-o", tmp_path / "b.png", "--model", "tiny-x4", "--outscale", "2")
    assert r.returncode == 0, r.stderr
    assert read_image(tmp_path / "b.png")[0].shape == (20, 28, 3)


def test_float_images_outside_0_1_are_an_error_not_clipped():
    img = np.random.default_rng(0).random((8, 8, 3)).astype(np.float32) * 255
    with pytest.raises(ShapeError, match=r"values in \[0, 1\]"):
        srkit.upscale(img, model="bicubic", scale=2)
    ok = np.clip(img / 255, 0, 1)
    ok[0, 0, 0] = 1 + 1e-6  # rounding slack is accepted
    assert srkit.upscale(ok, model="bicubic", scale=2).shape == (16, 16, 3)


def test_unknown_output_suffix_fails_fast_naming_the_cli_option(tmp_path, srkit_cli):
    write_image(tmp_path / "a.png", _rand((8, 8, 3)))
    r = srkit_cli("upscale", tmp_path / "a.png", "-o", tmp_path / "b.xyz")
    assert r.returncode == 2 and "--format" in r.stderr and "format=" not in r.stderr
    r = srkit_cli("upscale", tmp_path / "a.png", "-o", tmp_path / "b.xyz", "--format", "png", "--model", "bicubic")
    assert r.returncode == 0
