"""Streaming upscale into a tiled BigTIFF equals the whole-image upscale, reads strips, keeps metadata, is atomic."""

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

from srkit.errors import ConfigError, ImageReadError
from srkit.infer import Upscaler, engine
from srkit.infer.streaming import default_strip_rows, upscale_tiff_streaming
from srkit.models import load_model
from helpers import rand_model


def _fsrcnn_s(scale):
    return rand_model("fsrcnn-s", scale)


class Spy:
    """Records the LR strip heights the one inference path (`engine.run_image`) is given; `fail_after` strips it
    raises instead."""

    def __init__(self, monkeypatch, fail_after=None):
        self.heights = []
        real = engine.run_image

        def spy(up, x, *args, **kwargs):
            if fail_after is not None and len(self.heights) >= fail_after:
                raise RuntimeError("disk on fire")
            self.heights.append(x.shape[-2])
            return real(up, x, *args, **kwargs)

        monkeypatch.setattr(engine, "run_image", spy)


def _rgb(h, w, seed=0, dtype=np.uint8):
    rng = np.random.default_rng(seed)
    peak = np.iinfo(dtype).max
    return (rng.random((h, w, 3)) * peak).astype(dtype)


@pytest.mark.parametrize("model", ["bicubic", "fsrcnn-s"])
def test_streamed_tiff_equals_whole_image(tmp_path, model, monkeypatch):
    img = _rgb(200, 300)
    src, dst = tmp_path / "in.tif", tmp_path / "out.tif"
    tifffile.imwrite(src, img, photometric="rgb")
    m = load_model("bicubic", scale=2) if model == "bicubic" else _fsrcnn_s(2)
    spy = Spy(monkeypatch)
    rep = upscale_tiff_streaming(src, dst, Upscaler(m), strip_rows=32, tile=64)
    assert rep["lazy_input"] and rep["strips"] == 7 and rep["strip_rows"] == 32
    # Strips of 32 core rows + receptive-field context: the image is never upscaled whole.
    assert max(spy.heights) <= 32 + 2 * rep["context"] and len(spy.heights) == 7
    out = tifffile.imread(dst)
    ref = Upscaler(m).upscale(img)
    assert out.shape == ref.shape == (400, 600, 3) and out.dtype == np.uint8
    # Equal before rounding up to float summation order (convolution algorithms differ with the strip shape), so
    # a value sitting on .5 may round the other way: at most 1 level, on a vanishing fraction of values.
    diff = np.abs(out.astype(int) - ref.astype(int))
    assert diff.max() <= 1 and (diff > 0).mean() < 1e-4
    with tifffile.TiffFile(dst) as tf:
        assert tf.is_bigtiff and tf.pages[0].is_tiled and tf.pages[0].tilewidth == 64
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif", "out.tif"]


def test_png_rgba_input_keeps_alpha_icc_and_dpi(tmp_path):
    rgba = np.concatenate([_rgb(40, 52, 1), np.full((40, 52, 1), 200, np.uint8)], axis=2)
    rgba[:10, :10, 3] = 0
    icc = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()
    src, dst = tmp_path / "in.png", tmp_path / "out.tiff"
    Image.fromarray(rgba, "RGBA").save(src, icc_profile=icc, dpi=(150, 150))
    up = Upscaler(load_model("bicubic", scale=3))
    rep = upscale_tiff_streaming(src, dst, up, strip_rows=8, tile=48)
    assert not rep["lazy_input"] and rep["strips"] == 3
    out = tifffile.imread(dst)
    assert np.array_equal(out, up.upscale(rgba))
    with tifffile.TiffFile(dst) as tf:
        tags = tf.pages[0].tags
        assert bytes(tags["InterColorProfile"].value) == icc
        x = tags["XResolution"].value
        assert abs(x[0] / x[1] - 450) < 0.1  # DPI x scale: same printed size (PNG stores pixels/metre)
        assert tuple(tf.pages[0].extrasamples) == (2,)  # unassociated alpha


def test_compressed_16bit_gray_tiff(tmp_path):
    img = (np.random.default_rng(3).random((45, 37)) * 65535).astype(np.uint16)
    src, dst = tmp_path / "in.tif", tmp_path / "out.tif"
    tifffile.imwrite(src, img, compression="zlib")
    up = Upscaler(_fsrcnn_s(2))
    rep = upscale_tiff_streaming(src, dst, up, strip_rows=16, tile=32, compression="zlib")
    assert not rep["lazy_input"]
    out = tifffile.imread(dst)
    ref = up.upscale(img)
    assert out.dtype == np.uint16 and out.shape == (90, 74)
    assert np.abs(out.astype(int) - ref.astype(int)).max() <= 1


def test_refusals_and_failures_leave_no_file(tmp_path, monkeypatch):
    src = tmp_path / "in.tif"
    tifffile.imwrite(src, _rgb(20, 20), photometric="rgb")
    up = Upscaler(load_model("bicubic", scale=2))
    with pytest.raises(ConfigError):
        upscale_tiff_streaming(src, src, up)
    with pytest.raises(ConfigError):
        upscale_tiff_streaming(src, tmp_path / "out.png", up)
    with pytest.raises(ImageReadError):
        upscale_tiff_streaming(tmp_path / "missing.tif", tmp_path / "o.tif", up)
    Spy(monkeypatch, fail_after=1)
    with pytest.raises(RuntimeError, match="disk on fire"):
        upscale_tiff_streaming(src, tmp_path / "o.tif", up, strip_rows=4, tile=16)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]


def test_default_strip_rows():
    rows = default_strip_rows(8000, 3, 4, 36)
    assert rows % 64 == 0 and rows >= 4 * 36
    assert default_strip_rows(10**6, 3, 4, 5) == 64  # very wide: memory cap wins, one output tile row
    assert default_strip_rows(300, 1, 3, 5) % 256 == 0
