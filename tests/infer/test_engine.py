"""The one inference path (`srkit.infer.engine`): extra model inputs and seeded noise reach every tile and strip,
`srkit.upscale` and a reused `Upscaler` are the same computation, and prepared networks are cached per model."""

import gc
import weakref

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

import srkit
from srkit.errors import ConfigError
from srkit.infer import Upscaler, engine
from srkit.infer.api import load_upscaler, upscale_array
from srkit.infer.network import prepare_network
from srkit.srmodel import ModelInfo, SRModel
from helpers import rand_model


class Conditioned(nn.Module):
    """x2 with a 3x3 conv, output scaled by (1 + strength): a model with a per-call scalar input."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 12, 3, padding=1)

    def forward(self, x, strength=0.0):
        return F.pixel_shuffle(self.conv(x), 2) * (1.0 + strength)


class Noisy(nn.Module):
    """x2: a 3x3 conv of the image plus the (upsampled) noise field: a stochastic model."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 12, 3, padding=1)

    def forward(self, x, noise):
        return F.pixel_shuffle(self.conv(x), 2) + 0.05 * F.interpolate(noise, scale_factor=2, mode="nearest")


def _model(module, **info):
    return SRModel(module, ModelInfo(arch="toy", scale=2, receptive_field=1, safe_dtypes=("fp32",), **info)).eval()


def _image(h=40, w=52, c=3, seed=0):
    return (np.random.default_rng(seed).random((h, w, c)) * 255).astype(np.uint8)


def test_model_inputs_reach_every_tile():
    m = _model(Conditioned(), inputs=("strength",))
    img = _image()
    whole = Upscaler(m).upscale(img, inputs={"strength": 0.5}, tta=False)
    tiled = Upscaler(m, tile=16).upscale(img, inputs={"strength": 0.5})
    plain = Upscaler(m).upscale(img)
    assert np.array_equal(whole, tiled)
    assert not np.array_equal(whole, plain)  # the input changes the result
    # The same through srkit.upscale, with TTA too (tiled TTA stays exact for a finite receptive field).
    assert np.array_equal(srkit.upscale(img, model=m, inputs={"strength": 0.5}), whole)
    a = srkit.upscale(img, model=m, inputs={"strength": 0.5}, tta=True)
    b = srkit.upscale(img, model=m, inputs={"strength": 0.5}, tta=True, tile=16)
    assert np.abs(a.astype(int) - b).max() <= 1
    with pytest.raises(ConfigError, match="toy takes strength; got noise_level"):
        srkit.upscale(img, model=m, inputs={"noise_level": 5})
    with pytest.raises(ConfigError, match="takes no extra inputs"):
        srkit.upscale(img, model="bicubic", inputs={"strength": 1})


def test_seeded_noise_is_one_field_for_all_tiles_and_strips():
    m = _model(Noisy(), noise_channels=1)
    img = _image(64, 48)
    whole = Upscaler(m).upscale(img, seed=7)
    assert np.array_equal(Upscaler(m, tile=16).upscale(img, seed=7), whole)  # tiles share one field
    assert np.array_equal(Upscaler(m).upscale(img, seed=7), whole)  # a seed is reproducible
    assert not np.array_equal(Upscaler(m).upscale(img, seed=8), whole)
    strips = np.concatenate(list(engine.iter_strips(Upscaler(m), img, engine.Request(seed=7), rows=10)))
    assert np.array_equal(strips, whole)  # streamed strips crop the same field


def test_strips_equal_whole_image_with_alpha_and_gray():
    m = rand_model("fsrcnn-s", 2)
    up = Upscaler(m)
    rgba = _image(50, 30, 4)
    rgba[10:20, 5:15, 3] = 0  # transparent: its colour is filled from the whole image, before the strips
    gray = _image(50, 30, 1)[..., 0]
    for img in (rgba, gray):
        whole = up.upscale(img)
        strips = np.concatenate(list(engine.iter_strips(up, img, up.request(), rows=8)))
        assert np.abs(strips.astype(int) - whole).max() <= 1


def test_upscaler_upscale_is_the_api_path():
    m = rand_model("fsrcnn-s", 2)
    up = Upscaler(m)
    rgba = _image(24, 20, 4)
    rgba[:8, :8, 3] = 0
    for img in (rgba, _image(24, 20, 1)[..., 0], _image(24, 20, 2)):
        assert np.array_equal(up.upscale(img), upscale_array(up, img))
        assert np.array_equal(up.upscale(img), srkit.upscale(img, model=m, dtype="fp32"))


def test_upscaler_settings_are_read_only():
    up = Upscaler(rand_model("fsrcnn-s", 2), tile=32)
    for name in ("tile", "model", "device", "tta", "batch"):
        with pytest.raises(AttributeError):
            setattr(up, name, None)
    assert up.settings()["tile"] == 32
    with pytest.raises(ConfigError, match="tile must be"):
        Upscaler(up.model, tile=3)
    with pytest.raises(ConfigError, match="needs an SRModel"):
        Upscaler("tiny-x4")  # type: ignore[arg-type]


def test_prepared_network_is_cached_per_model_and_settings_and_freed_with_it():
    m = rand_model("ecbsr-m4c16", 2)  # re-parameterisable: preparing folds a copy
    a, b = Upscaler(m), Upscaler(m, tile=64)
    assert a.prepared is b.prepared and a.prepared.deployed
    assert Upscaler(m, dtype="bf16").prepared is not a.prepared
    # Weights changed after preparing: the next Upscaler prepares them again.
    with torch.no_grad():
        next(m.parameters()).add_(0.1)
    c = Upscaler(m)
    assert c.prepared is not a.prepared
    x = _image(16, 16)
    assert not np.array_equal(c.upscale(x), a.upscale(x))
    # Dropping the model frees its prepared forms.
    ref = weakref.ref(c.prepared)
    del a, b, c, m
    gc.collect()
    assert ref() is None


def test_names_are_loaded_once():
    a = load_upscaler("bicubic", scale=3)
    b = load_upscaler("bicubic", scale=3)
    assert a.model is b.model and a is not b
    assert load_upscaler("bicubic", scale=2).model is not a.model


def test_fp32_model_runs_in_place_and_is_not_cached():
    m = rand_model("fsrcnn-s", 2)
    net = prepare_network(m, dtype="fp32")
    assert net.net is m and not net.deployed


def test_nan_and_inf_are_masked_not_spread():
    up = Upscaler(rand_model("fsrcnn-s", 2))
    img = np.random.default_rng(3).random((30, 26, 3)).astype(np.float32)
    img[5:9, 4:10, :] = np.nan  # a nodata block
    img[20, 20, 1] = np.inf  # one channel of one pixel
    img[21, 3, 0] = -np.inf
    out = up.upscale(img)
    assert out.dtype == np.float32 and out.shape == (60, 52, 3)
    want_nan = np.repeat(np.repeat(np.isnan(img), 2, 0), 2, 1)
    assert np.array_equal(np.isnan(out), want_nan)  # NaN exactly over the nearest-upscaled blocks, nowhere else
    assert np.all(out[40:42, 40:42, 1] == np.inf) and np.all(out[42:44, 6:8, 0] == -np.inf)
    finite = np.isfinite(out)
    assert finite.sum() == out.size - want_nan.sum() - 8 and out[finite].min() >= 0 and out[finite].max() <= 1
    # The other channels of a pixel with one bad channel keep their upscaled values.
    assert np.isfinite(out[40:42, 40:42, [0, 2]]).all()
    # Streamed strips fill from the whole image, so they equal the whole result, NaN included.
    strips = np.concatenate(list(engine.iter_strips(up, img, up.request(), rows=6)))
    assert np.array_equal(np.isnan(strips), want_nan)
    assert np.allclose(strips[finite], out[finite], atol=1e-5)
    # Tensors take the same path.
    t = srkit.upscale(torch.from_numpy(img).permute(2, 0, 1), model=up)
    assert torch.equal(torch.isnan(t).permute(1, 2, 0), torch.from_numpy(want_nan))


def test_progress_reports_tiles_and_strips():
    up = Upscaler(rand_model("fsrcnn-s", 2), tile=16)
    img = _image(40, 52)
    seen: list[float] = []
    whole = engine.run_array(up, img, engine.Request(progress=seen.append))
    assert len(seen) == 3 * 4 and seen == sorted(seen) and seen[-1] == 1.0  # one report per 16 px tile
    seen.clear()
    strips = np.concatenate(list(engine.iter_strips(up, img, engine.Request(progress=seen.append), rows=20)))
    assert np.array_equal(strips, whole)
    # 2 strips of 20 rows; each, with its context rows, is 2 x 4 tiles
    assert seen == sorted(seen) and seen[-1] == 1.0 and len(seen) == 2 * 2 * 4
    assert engine.Request(progress=print) == engine.Request()  # not part of what a request computes
