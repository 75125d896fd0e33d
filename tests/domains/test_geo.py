"""GeoTIFF / COG through srkit (srkit.domains.geo): georeferencing, CRS, nodata, bands, value ranges, windows, COG,
bad input and the missing-extra refusal, on small rasters made here with rasterio."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

rasterio = pytest.importorskip("rasterio")
from affine import Affine  # noqa: E402  (after the importorskip)

from srkit.domains import DomainOptions  # noqa: E402
from srkit.infer.api import load_upscaler  # noqa: E402
from srkit.infer.files import upscale_file  # noqa: E402

CRS = "EPSG:32633"
# A rotated/sheared transform: a pixel-size bug or a moved origin cannot hide behind axis alignment.
TRANSFORM = Affine(10.0, 1.5, 500000.0, -2.0, -10.0, 4100000.0)


def write_scene(path: Path, data: np.ndarray, *, crs: str | None = CRS, transform: Affine = TRANSFORM,
                nodata: float | None = None, colorinterp=None, **profile) -> Path:
    bands, h, w = data.shape
    with rasterio.open(path, "w", driver="GTiff", width=w, height=h, count=bands, dtype=data.dtype.name, crs=crs,
                       transform=transform, nodata=nodata, **profile) as ds:
        ds.write(data)
        if colorinterp is not None:
            ds.colorinterp = colorinterp
    return path


def smooth(rng: np.random.Generator, bands: int, h: int, w: int, low: float, high: float) -> np.ndarray:
    """Smooth random bands (bilinear upsampling of a coarse grid) in low..high, float64."""
    coarse = torch.from_numpy(rng.random((1, bands, h // 6 + 2, w // 6 + 2)))
    fine = torch.nn.functional.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False)[0].numpy()
    return low + (high - low) * fine


@pytest.fixture()
def y_model():
    """A tiny 1-channel (Y) x2 model with random weights (finite receptive field)."""
    from helpers import rand_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return load_upscaler(rand_model("fsrcnn-s", 2))


@pytest.fixture()
def rgb_model():
    from helpers import rand_model

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return load_upscaler(rand_model("fsrcnn-s", 2, num_channels=3))


def test_georeferencing_crs_and_shape(tmp_path, tiny_sr_model):
    rng = np.random.default_rng(0)
    src = write_scene(tmp_path / "scene.tif", smooth(rng, 2, 30, 40, 200, 9000).astype(np.uint16))
    dst = upscale_file(src, tmp_path / "out.tif", tiny_sr_model)
    s = 4
    with rasterio.open(src) as a, rasterio.open(dst) as b:
        assert (b.height, b.width, b.count) == (a.height * s, a.width * s, a.count)
        assert b.crs == a.crs
        assert b.dtypes == a.dtypes
        # the target: pixel (i, j) of the output maps to the map coordinate of pixel (i / s, j / s) of the input
        for i, j in [(0, 0), (1, 3), (57, 101), (b.height, b.width), (119, 0)]:
            out_xy = b.transform @ (j, i)
            in_xy = a.transform @ (j / s, i / s)
            assert out_xy == pytest.approx(in_xy, abs=1e-6)
            xs, ys = rasterio.transform.xy(b.transform, [i], [j], offset="ul")
            assert (xs[0], ys[0]) == pytest.approx(in_xy, abs=1e-6)
        assert b.transform.c == a.transform.c and b.transform.f == a.transform.f  # origin unchanged
        assert b.res == pytest.approx((a.res[0] / s, a.res[1] / s))
        assert b.tags()["SRKIT_SCALE"] == "4"
        assert b.tags()["SRKIT_SOURCE_BANDS"] == "1 2"


def test_uint16_keeps_its_physical_range(tmp_path):
    """No 8-bit squeeze: values stay in the band's own range (recorded in its tags), at full precision."""
    rng = np.random.default_rng(1)
    data = smooth(rng, 1, 40, 40, 1200, 1800).astype(np.uint16)
    src = write_scene(tmp_path / "s.tif", data)
    dst = upscale_file(src, tmp_path / "o.tif", "bicubic", scale=2)
    with rasterio.open(dst) as b:
        out = b.read(1)
        low, high = map(float, b.tags(1)["SRKIT_VALUE_RANGE"].split())
    assert (low, high) == (data.min(), data.max())
    assert out.dtype == np.uint16 and low <= out.min() and out.max() <= high
    assert len(np.unique(out)) > 400  # finer than 8 bits (the band spans 600 values)
    assert abs(float(out.mean()) - float(data.mean())) < 2.0


def test_value_range_option_is_used_and_recorded(tmp_path, y_model):
    data = np.full((1, 16, 16), -300, np.int16)
    data[0, 8:] = 400
    src = write_scene(tmp_path / "s.tif", data)
    dst = upscale_file(src, tmp_path / "o.tif", y_model, domain_options=DomainOptions(value_range=(-1000, 1000)))
    with rasterio.open(dst) as b:
        assert b.tags(1)["SRKIT_VALUE_RANGE"] == "-1000.0 1000.0"
        assert b.read(1).min() >= -1000 and b.read(1).max() <= 1000


def test_nodata_kept_and_mask_upscaled_by_nearest(tmp_path, y_model):
    rng = np.random.default_rng(2)
    data = smooth(rng, 2, 24, 28, 1, 5000).astype(np.uint16)
    data[:, :6, :9] = 0  # a nodata corner
    data[1, 15, 20] = 0  # one nodata pixel in one band only
    src = write_scene(tmp_path / "s.tif", data, nodata=0)
    dst = upscale_file(src, tmp_path / "o.tif", y_model)
    with rasterio.open(dst) as b:
        assert b.nodata == 0
        out = b.read()
    hole = data == 0
    expected = np.repeat(np.repeat(hole, 2, axis=1), 2, axis=2)
    np.testing.assert_array_equal(out == 0, expected)  # nodata exactly where the nearest-upscaled mask says


def test_float_nan_and_nodata(tmp_path, y_model):
    rng = np.random.default_rng(3)
    data = smooth(rng, 1, 20, 20, -5.0, 35.0).astype(np.float32)
    data[0, 2:5, 2:5] = np.nan
    data[0, 10, 10:12] = -9999.0
    src = write_scene(tmp_path / "s.tif", data, nodata=-9999.0)
    dst = upscale_file(src, tmp_path / "o.tif", y_model)
    with rasterio.open(dst) as b:
        out = b.read(1)
    up = lambda m: np.repeat(np.repeat(m, 2, axis=0), 2, axis=1)  # noqa: E731
    np.testing.assert_array_equal(np.isnan(out), up(np.isnan(data[0])))
    np.testing.assert_array_equal(out == -9999.0, up(data[0] == -9999.0))
    valid = np.isfinite(out) & (out != -9999.0)
    assert out[valid].min() >= np.nanmin(np.where(data[0] == -9999, np.nan, data[0])) - 1e-3
    assert out[valid].max() <= np.nanmax(data[0]) + 1e-3


def test_bands_mapping_to_an_rgb_model(tmp_path, rgb_model):
    rng = np.random.default_rng(4)
    data = smooth(rng, 4, 20, 24, 100, 4000).astype(np.uint16)
    src = write_scene(tmp_path / "s.tif", data)
    dst = upscale_file(src, tmp_path / "o.tif", rgb_model, domain_options=DomainOptions(bands=(4, 3, 2)))
    with rasterio.open(dst) as b:
        assert b.count == 3
        assert b.tags()["SRKIT_SOURCE_BANDS"] == "4 3 2"
        assert [b.tags(i)["SRKIT_SOURCE_BAND"] for i in (1, 2, 3)] == ["4", "3", "2"]
        # one group of 3: the common range of the three bands
        ranges = {b.tags(i)["SRKIT_VALUE_RANGE"] for i in (1, 2, 3)}
        assert len(ranges) == 1
        out = b.read()
    # the same three bands as an RGB image through the one inference path
    from srkit.infer.engine import run_array

    low, high = (float(v) for v in ranges.pop().split())
    x = ((data[[3, 2, 1]].astype(np.float64) - low) / (high - low)).astype(np.float32).transpose(1, 2, 0)
    ref = np.rint(run_array(rgb_model, np.ascontiguousarray(x)).astype(np.float64) * (high - low) + low)
    np.testing.assert_array_equal(out, ref.transpose(2, 0, 1).astype(np.uint16))


def test_rgba_alpha_by_nearest_and_rgb_triple_together(tmp_path, rgb_model):
    rng = np.random.default_rng(9)
    data = smooth(rng, 4, 20, 20, 0, 255).astype(np.uint8)
    data[3] = 255
    data[3, :5, :5] = 0
    src = write_scene(tmp_path / "rgba.tif", data, photometric="RGB", alpha="YES")
    dst = upscale_file(src, tmp_path / "o.tif", rgb_model)
    with rasterio.open(dst) as b:
        out = b.read()
        assert [c.name for c in b.colorinterp] == ["red", "green", "blue", "alpha"]
        assert len({b.tags(i)["SRKIT_VALUE_RANGE"] for i in (1, 2, 3)}) == 1  # one RGB group
    up = lambda a: np.repeat(np.repeat(a, 2, axis=-2), 2, axis=-1)  # noqa: E731
    np.testing.assert_array_equal(out[3], up(data[3]))  # alpha: nearest
    np.testing.assert_array_equal(out[:3, :10, :10], up(data[:3, :5, :5]))  # colour under alpha 0: kept (nearest)


def test_every_band_alone_through_a_y_model(tmp_path, y_model):
    """A 1-channel model gets each band on its own: band k of a 3-band file equals the 1-band file of band k."""
    rng = np.random.default_rng(5)
    data = smooth(rng, 3, 18, 18, 0, 255).astype(np.uint8)
    src = write_scene(tmp_path / "s.tif", data)
    out = upscale_file(src, tmp_path / "o.tif", y_model)
    one = upscale_file(write_scene(tmp_path / "b2.tif", data[1:2]), tmp_path / "o2.tif", y_model)
    with rasterio.open(out) as a, rasterio.open(one) as b:
        np.testing.assert_array_equal(a.read(2), b.read(1))


def test_windows_stitch_exactly(tmp_path, y_model, monkeypatch):
    """Windowed read/write: small windows give the same pixels as one window (finite receptive field)."""
    from srkit.domains import geo

    rng = np.random.default_rng(6)
    data = smooth(rng, 2, 150, 170, 0, 60000).astype(np.uint16)
    src = write_scene(tmp_path / "s.tif", data)
    whole = upscale_file(src, tmp_path / "whole.tif", y_model)
    monkeypatch.setattr(geo, "HR_WINDOW", 64)  # 128 LR px windows (whole 256-px output tiles): 2 x 2 of them
    assert geo._window_side(2) == 128
    win = upscale_file(src, tmp_path / "win.tif", y_model)
    with rasterio.open(whole) as a, rasterio.open(win) as b:
        np.testing.assert_array_equal(a.read(), b.read())


def test_cog_with_overviews(tmp_path, y_model):
    rng = np.random.default_rng(7)
    data = smooth(rng, 1, 200, 200, 0, 1000).astype(np.int16)
    src = write_scene(tmp_path / "s.tif", data, nodata=-1)
    dst = upscale_file(src, tmp_path / "o.tif", y_model, domain_options=DomainOptions(cog=True))
    with rasterio.open(dst) as b:
        assert b.overviews(1)  # 400 x 400 with 256-px tiles: at least one overview
        assert b.profile["tiled"] and b.block_shapes[0] == (256, 256)
        assert b.tags(ns="IMAGE_STRUCTURE").get("LAYOUT") == "COG"
        assert b.crs.to_string() == CRS and b.nodata == -1
        assert b.tags()["SRKIT_SCALE"] == "2"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temp file left


def test_no_crs_works_and_warns(tmp_path, y_model, srkit_cli):
    data = np.arange(16 * 16, dtype=np.uint16).reshape(1, 16, 16)
    src = write_scene(tmp_path / "nocrs.tif", data, crs=None)
    with pytest.warns(UserWarning, match="has no CRS"):
        dst = upscale_file(src, tmp_path / "o.tif", y_model)
    with rasterio.open(dst) as b:
        assert b.crs is None
        assert b.transform == TRANSFORM @ Affine.scale(0.5)
    r = srkit_cli("upscale", src, "-o", tmp_path / "cli.tif", "--model", "bicubic", "--scale", "2")
    assert r.returncode == 0, r.stderr
    lines = [ln for ln in r.stderr.splitlines() if "warning" in ln]
    assert len(lines) == 1 and lines[0].startswith("srkit: warning: ") and "no CRS" in lines[0]
    assert (tmp_path / "cli.tif").is_file()


def test_cli_bands_value_range_and_naming(tmp_path, srkit_cli):
    rng = np.random.default_rng(8)
    data = smooth(rng, 4, 16, 16, 0, 3000).astype(np.uint16)
    (tmp_path / "in").mkdir()
    write_scene(tmp_path / "in" / "scene.tiff", data)
    r = srkit_cli("upscale", tmp_path / "in", "-o", tmp_path / "out", "--model", "bicubic", "--scale", "2",
                  "--bands", "4", "3", "2", "--value-range", "-10", "3000", "--format", "png")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out" / "scene.tif"  # a GeoTIFF stays a GeoTIFF (.tif), whatever --format says
    with rasterio.open(out) as b:
        assert b.count == 3 and b.tags()["SRKIT_SOURCE_BANDS"] == "4 3 2"
        assert b.tags(1)["SRKIT_VALUE_RANGE"] == "-10.0 3000.0"
    r = srkit_cli("upscale", tmp_path / "in" / "scene.tiff", "-o", tmp_path / "x.tif", "--model", "bicubic",
                  "--scale", "2", "--bands", "9")
    assert r.returncode == 1
    assert "no band 9" in r.stderr and not (tmp_path / "x.tif").exists()


def test_output_name_must_be_tif(tmp_path, y_model):
    from srkit.errors import ImageWriteError

    src = write_scene(tmp_path / "s.tif", np.ones((1, 8, 8), np.uint8))
    with pytest.raises(ImageWriteError, match=r"\.tif"):
        upscale_file(src, tmp_path / "o.png", y_model)


def test_missing_extra_is_refused_in_one_line(tmp_path, srkit_cli, monkeypatch):
    src = write_scene(tmp_path / "scene.tif", np.ones((1, 8, 8), np.uint8))
    monkeypatch.setitem(sys.modules, "rasterio", None)  # `import rasterio` now raises ImportError
    r = srkit_cli("upscale", src, "-o", tmp_path / "o.tif", "--model", "bicubic", "--scale", "2")
    assert r.returncode == 1
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("srkit: error")]
    assert len(err) == 1 and "pip install 'srkit[geo]'" in err[0]
    assert not (tmp_path / "o.tif").exists()
