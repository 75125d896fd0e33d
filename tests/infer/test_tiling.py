"""Tiled inference equals whole-image inference for convolutional models; blended tiles are seam-free."""

import numpy as np
import pytest
import torch

from srkit.infer import Upscaler
from srkit.infer.tiling import plan_tiles
from srkit.models import load_model
from helpers import rand_model as _rand_model


def test_plan_covers_every_pixel_once():
    for h, w, t in [(200, 300, 64), (17, 23, 8), (64, 64, 64), (65, 1, 16), (300, 129, 128)]:
        cover = np.zeros((h, w), int)
        tiles = plan_tiles(h, w, t, 5)
        for tl in tiles:
            cover[tl.cy0 : tl.cy1, tl.cx0 : tl.cx1] += 1
            assert tl.y0 <= tl.cy0 and tl.cy1 <= tl.y1 and tl.cy0 - tl.y0 <= 5
        assert (cover == 1).all()
        # Fewest tiles with cores of at most t, and cores as equal as possible (no thin remainder tile).
        assert len(tiles) == -(-h // t) * -(-w // t)
        hs = {tl.cy1 - tl.cy0 for tl in tiles}
        ws = {tl.cx1 - tl.cx0 for tl in tiles}
        assert max(hs) <= t and max(ws) <= t and max(hs) - min(hs) <= 1 and max(ws) - min(ws) <= 1


@pytest.mark.parametrize("name,scale,opt", [
    ("edsr-baseline", 2, dict(num_block=2)),
    ("ecbsr-m4c16", 4, {}),
    ("fsrcnn", 3, {}),
    ("srvggnet-compact", 4, dict(num_conv=4)),
])
def test_tiled_equals_whole_image(name, scale, opt):
    m = _rand_model(name, scale, **opt)
    x = torch.rand(1, m.info.in_channels, 200, 300, generator=torch.Generator().manual_seed(1))
    whole = Upscaler(m).upscale_tensor(x)
    tiled = Upscaler(m, tile=64).upscale_tensor(x)
    assert tiled.shape == whole.shape == (1, m.info.in_channels, 200 * scale, 300 * scale)
    assert (tiled - whole).abs().max().item() <= 1e-5


def test_blended_tiles_for_global_models_are_close_and_seam_free():
    m = _rand_model("imdn", 2, num_modules=2)
    x = torch.rand(1, 3, 80, 96, generator=torch.Generator().manual_seed(2))
    whole = Upscaler(m).upscale_tensor(x)
    tiled = Upscaler(m, tile=48, overlap=16).upscale_tensor(x)
    assert tiled.shape == whole.shape
    assert torch.isfinite(tiled).all()
    # Global channel attention sees different statistics per tile: close, not equal.
    assert (tiled - whole).abs().mean().item() < 0.05


def test_classical_model_tiles_exactly():
    m = load_model("bicubic", scale=3)
    x = torch.rand(1, 3, 70, 50, generator=torch.Generator().manual_seed(3))
    a = Upscaler(m).upscale_tensor(x)
    b = Upscaler(m, tile=16).upscale_tensor(x)
    assert (a - b).abs().max().item() <= 1e-6


def test_auto_tile_and_bad_tile():
    from srkit.errors import ConfigError

    m = _rand_model("fsrcnn-s", 2)
    up = Upscaler(m, tile="auto")
    assert 64 <= up.tile_side(torch.zeros(1, 1, 8, 8)) <= 2048
    with pytest.raises(ConfigError):
        Upscaler(m, tile=3)
