"""Restoration levels through the one inference path: strength / noise / jpeg -> `Request.inputs`, validated,
estimated once per image when not given (a JPEG file's quality from its tables), the same in every tile and strip;
refused with one line by models that take none; and the same on the CLI (`--strength`, `--noise`, `--jpeg`)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image
from torch import nn

import srkit
from srkit.degrade.estimate import estimate_levels
from srkit.errors import ConfigError
from srkit.infer.conditioning import check_levels, level_inputs, strength_levels
from srkit.infer.files import upscale_file
from srkit.models import save_model
from srkit.srmodel import ModelInfo, SRModel


class Spy(nn.Module):
    """x2 nearest upscaler that records the levels of every call (every tile)."""

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[tuple[float, float]] = []
        self.zero = nn.Parameter(torch.zeros(()))

    def forward(self, x, noise=None, jpeg=None):
        self.calls.append((float(noise), float(jpeg)))
        return F.interpolate(x, scale_factor=2, mode="nearest") + self.zero


def spy_model() -> SRModel:
    info = ModelInfo(arch="spy", scale=2, receptive_field=0, inputs=("noise", "jpeg"), safe_dtypes=("fp32",))
    return SRModel(Spy(), info).eval()


def textured(side: int = 48, sigma: float = 0.0, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    small = (rng.random((side // 6, side // 6, 3)) * 255).astype(np.uint8)
    img = np.asarray(Image.fromarray(small).resize((side, side), Image.BICUBIC), np.float64)
    return np.clip(np.round(img + rng.normal(0, sigma, img.shape)), 0, 255).astype(np.uint8)


def one_line(e: pytest.ExceptionInfo) -> str:
    msg = str(e.value)
    assert "\n" not in msg and msg
    return msg


def test_strength_maps_to_noise_and_jpeg():
    assert strength_levels(0) == {"noise": 0.0, "jpeg": 100.0}
    assert strength_levels(0.5) == {"noise": 25.0, "jpeg": 55.0}
    assert strength_levels(1) == {"noise": 50.0, "jpeg": 10.0}
    assert strength_levels(0.25) == {"noise": 12.5, "jpeg": 77.5}


@pytest.mark.parametrize("kwargs,match", [
    ({"strength": 1.5}, "strength must be a number in \\[0, 1\\]"),
    ({"strength": -0.1}, "strength must be"),
    ({"strength": float("nan")}, "strength must be"),
    ({"strength": "0.5"}, "strength must be"),
    ({"strength": True}, "strength must be"),
    ({"noise": -1}, "noise must be a number >= 0"),
    ({"noise": float("inf")}, "noise must be"),
    ({"jpeg": 0}, "jpeg must be a JPEG quality in 1..100"),
    ({"jpeg": 101}, "jpeg must be"),
    ({"strength": 0.5, "noise": 3}, "not both"),
    ({"strength": 0.5, "jpeg": 30}, "not both"),
])
def test_bad_levels_are_one_line_config_errors(kwargs, match):
    with pytest.raises(ConfigError, match=match) as e:
        check_levels(**kwargs)
    one_line(e)
    with pytest.raises(ConfigError, match=match):  # before any model is loaded
        srkit.upscale(np.zeros((8, 8, 3), np.uint8), model="no-such-model", **kwargs)


def test_good_levels_pass():
    check_levels(strength=0)
    check_levels(strength=1)
    check_levels(noise=0, jpeg=100)
    check_levels(noise=75.0, jpeg=1)  # beyond the trained range: allowed, the model extrapolates
    check_levels(noise=np.float32(3), jpeg=np.int64(40))


def test_models_without_levels_refuse_them(tiny_sr_model):
    img = textured(16)
    for kw in ({"strength": 0.2}, {"noise": 5}, {"jpeg": 50}):
        with pytest.raises(ConfigError, match="takes no noise or JPEG level") as e:
            srkit.upscale(img, model=tiny_sr_model, **kw)
        one_line(e)
    assert srkit.upscale(img, model=tiny_sr_model).shape == (64, 64, 3)  # and nothing is estimated


def test_given_levels_reach_every_tile():
    m = spy_model()
    out = srkit.upscale(textured(40), model=m, tile=16, strength=0.3)
    assert out.shape == (80, 80, 3)
    assert len(m.module.calls) >= 9  # 3 x 3 tiles
    assert set(m.module.calls) == {(15.0, 73.0)}
    m.module.calls.clear()
    srkit.upscale(textured(40), model=m, tile=16, noise=7, jpeg=33)
    assert set(m.module.calls) == {(7.0, 33.0)}
    m.module.calls.clear()
    srkit.upscale(textured(40), model=m, tile=16, inputs={"noise": 2, "jpeg": 90})
    assert set(m.module.calls) == {(2.0, 90.0)}


def test_missing_levels_are_estimated_once_per_image():
    m = spy_model()
    img = textured(40, sigma=12)
    noise, quality = estimate_levels(img)
    srkit.upscale(img, model=m, tile=16)
    assert len(m.module.calls) >= 9 and len(set(m.module.calls)) == 1
    assert m.module.calls[0] == (pytest.approx(noise, abs=1e-5), float(quality))
    m.module.calls.clear()
    srkit.upscale(img, model=m, tile=16, noise=4)  # jpeg alone estimated
    assert set(m.module.calls) == {(4.0, float(quality))}


def test_a_batch_of_tensors_gets_one_estimate_per_image():
    m = spy_model()
    a, b = textured(24, sigma=1, seed=1), textured(24, sigma=30, seed=2)
    x = torch.from_numpy(np.stack([a, b])).permute(0, 3, 1, 2).float() / 255
    y = srkit.upscale(x, model=m)
    assert y.shape == (2, 3, 48, 48)
    (n0, _), (n1, _) = m.module.calls
    for n, img in ((n0, x[0]), (n1, x[1])):
        assert n == pytest.approx(estimate_levels(img.permute(1, 2, 0).numpy())[0], abs=1e-4)
    assert n0 < n1


def jpeg_file(path, quality: int, sigma: float = 8.0):
    Image.fromarray(textured(64, sigma=sigma)).save(path, "JPEG", quality=quality)
    return path


def test_a_jpeg_files_quality_comes_from_its_tables(tmp_path):
    src = jpeg_file(tmp_path / "a.jpg", 37)
    m = spy_model()
    srkit.upscale(src, model=m)
    assert m.module.calls[0][1] == 37.0
    m.module.calls.clear()
    with Image.open(src) as im:
        srkit.upscale(im, model=m)
    assert m.module.calls[0][1] == 37.0
    m.module.calls.clear()
    upscale_file(src, tmp_path / "out.png", m, tile=16)
    assert (tmp_path / "out.png").exists() and {c[1] for c in m.module.calls} == {37.0}
    # a PNG holding the same JPEG-decoded pixels: estimated from the pixels, close
    png = tmp_path / "b.png"
    with Image.open(src) as im:
        im.convert("RGB").save(png)
    m.module.calls.clear()
    srkit.upscale(png, model=m)
    assert abs(m.module.calls[0][1] - 37) <= 2


def test_streamed_files_get_one_estimate_for_all_strips(tmp_path):
    src = jpeg_file(tmp_path / "a.jpg", 60)
    m = spy_model()
    upscale_file(src, tmp_path / "out.tif", m, stream=True, tile=16)
    assert len(m.module.calls) > 1 and len(set(m.module.calls)) == 1 and m.module.calls[0][1] == 60.0
    m.module.calls.clear()
    upscale_file(src, tmp_path / "out2.tif", m, stream=True, strength=1.0)
    assert set(m.module.calls) == {(50.0, 10.0)}


def test_levels_given_twice_are_refused():
    info = spy_model().info
    with pytest.raises(ConfigError, match="noise given twice"):
        level_inputs(info, {"noise": 3}, noise=4)
    with pytest.raises(ConfigError, match="given twice"):
        level_inputs(info, {"jpeg": 30}, strength=0.5)
    with pytest.raises(ConfigError, match="jpeg must be"):
        level_inputs(info, {"jpeg": 300})
    assert level_inputs(info, {"noise": 3}) == {"noise": 3.0}  # the model estimates the rest per call


def ctrl_model():
    from helpers import rand_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return rand_model("ecbsr-ctrl", 4, module_nums=2, channel_nums=8)


def test_a_real_conditioned_model_end_to_end():
    m = ctrl_model()
    img = textured(20, sigma=10)
    outs = [srkit.upscale(img, model=m, strength=s, dtype="fp32") for s in (0.0, 1.0)]
    assert outs[0].shape == (80, 80, 3) and not np.array_equal(outs[0], outs[1])
    tiled = srkit.upscale(img, model=m, strength=1.0, dtype="fp32", tile=8)
    # exact tiles (float rounding of other conv shapes aside): the levels are the same everywhere
    assert np.abs(tiled.astype(int) - outs[1]).max() <= 1


# --- CLI ---------------------------------------------------------------------------------------------------


@pytest.fixture()
def ctrl_file(tmp_path):
    return save_model(ctrl_model(), tmp_path / "ctrl.safetensors")


def png(path, side=16):
    Image.fromarray(textured(side, sigma=5)).save(path)
    return path


def test_cli_strength_noise_jpeg(srkit_cli, tmp_path, ctrl_file):
    src = png(tmp_path / "a.png")
    outs = {}
    for name, args in {"s0": ["--strength", "0"], "s1": ["--strength", "1"], "nj": ["--noise", "50", "--jpeg", "10"],
                       "est": []}.items():
        r = srkit_cli("upscale", src, "-o", tmp_path / f"{name}.png", "--model", ctrl_file, "--dtype", "fp32", *args)
        assert r.returncode == 0, r.stderr
        outs[name] = np.asarray(Image.open(tmp_path / f"{name}.png"))
    assert outs["s0"].shape == (64, 64, 3)
    assert np.array_equal(outs["s1"], outs["nj"]) and not np.array_equal(outs["s0"], outs["s1"])


@pytest.mark.parametrize("args,match", [
    (["--strength", "1.5"], "strength must be a number in [0, 1]"),
    (["--strength", "-1"], "strength must be"),
    (["--noise", "-2"], "noise must be a number >= 0"),
    (["--jpeg", "0"], "jpeg must be a JPEG quality in 1..100"),
    (["--jpeg", "120"], "jpeg must be"),
    (["--strength", "0.5", "--noise", "3"], "not both"),
])
def test_cli_bad_levels_one_line_exit_2(srkit_cli, tmp_path, ctrl_file, args, match):
    src = png(tmp_path / "a.png")
    r = srkit_cli("upscale", src, "-o", tmp_path / "o.png", "--model", ctrl_file, *args)
    assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert match in r.stderr and not (tmp_path / "o.png").exists()


def test_cli_levels_for_a_model_without_them(srkit_cli, tmp_path):
    src = png(tmp_path / "a.png")
    r = srkit_cli("upscale", src, "-o", tmp_path / "o.png", "--model", "bicubic", "--strength", "0.5")
    assert r.returncode != 0 and len(r.stderr.strip().splitlines()) == 1, r.stderr
    assert "takes no noise or JPEG level" in r.stderr and not (tmp_path / "o.png").exists()


def test_needs_estimate():
    from srkit.infer.conditioning import needs_estimate

    info = spy_model().info
    assert needs_estimate(info) and needs_estimate(info, noise=3) and needs_estimate(info, {"jpeg": 40})
    assert not needs_estimate(info, strength=0.2) and not needs_estimate(info, noise=3, jpeg=50)
    assert not needs_estimate(info, {"noise": 1}, jpeg=50)
    assert not needs_estimate(ModelInfo(arch="plain", scale=2))
