"""`upscale_file(..., stream=True)`: the same pixels and metadata as the whole-image path, in bounded memory.

PNG/JPEG are streamed through a temporary tiled TIFF that libvips converts sequentially; TIFF is written tiled
directly. Every streamed test checks that the image really went through the model in strips.
"""

import subprocess
import sys
import textwrap

import numpy as np
import pytest
import tifffile
import torch
import torch.nn.functional as F
from PIL import Image, ImageCms

from srkit.errors import ConfigError, ImageWriteError
from srkit.infer import engine, files
from srkit.infer.api import load_upscaler
from srkit.infer.files import upscale_file
from srkit.io import ImageMeta, read_image, write_image
from helpers import subprocess_env

pytest.importorskip("pyvips")

H, W = 150, 90  # x4 with 64-row strips: 3 strips (64, 64, 22 LR rows)


@pytest.fixture(scope="module")
def up():
    return load_upscaler("tiny-x4")


@pytest.fixture(scope="module")
def icc() -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif() -> bytes:
    ex = Image.Exif()
    ex[0x010F] = "srkit-stream-camera"  # Make
    return ex.tobytes()


def _smooth(h, w, c, dtype, seed=0):
    """Smooth random image with a little noise; alpha (if any) has a fully transparent block."""
    rng = np.random.default_rng(seed)
    small = torch.from_numpy(rng.random((1, c, h // 8 + 2, w // 8 + 2)))
    x = F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)[0].permute(1, 2, 0).numpy()
    x = np.clip(x + rng.normal(0, 0.02, x.shape), 0, 1)
    a = np.rint(x * np.iinfo(dtype).max).astype(dtype)
    if c in (2, 4):
        a[..., -1] = np.maximum(a[..., -1], np.iinfo(dtype).max // 3)
        a[20:60, 10:40, -1] = 0  # transparent block: its colour comes from the whole-image fill
    return a[..., 0] if c == 1 else a


class StripSpy:
    """Records the LR heights the model core is called with."""

    def __init__(self, monkeypatch):
        self.heights = []
        real = engine.run_image

        def spy(up, x, *args, **kwargs):
            self.heights.append(x.shape[-2])
            return real(up, x, *args, **kwargs)

        monkeypatch.setattr(engine, "run_image", spy)

    def streamed(self, h):
        return len(self.heights) >= 2 and max(self.heights) < h


def _both(tmp_path, up, src, ext, monkeypatch, **kw):
    whole = upscale_file(src, tmp_path / f"whole.{ext}", up, stream=False, **kw)
    spy = StripSpy(monkeypatch)
    streamed = upscale_file(src, tmp_path / f"stream.{ext}", up, stream=True, **kw)
    return read_image(whole), read_image(streamed), spy


@pytest.mark.parametrize("layout,dtype,ext", [
    ("RGB", np.uint8, "png"), ("RGB", np.uint16, "png"), ("RGBA", np.uint8, "png"), ("L", np.uint8, "png"),
    ("L", np.uint16, "png"), ("LA", np.uint8, "png"), ("RGB", np.uint8, "tif"), ("RGBA", np.uint16, "tif"),
])
def test_stream_equals_whole_image(tmp_path, up, icc, monkeypatch, layout, dtype, ext):
    arr = _smooth(H, W, len(layout), dtype)
    src = tmp_path / "in.png"
    profile = icc if layout.startswith("RGB") else None  # an RGB profile does not describe gray pixels
    write_image(src, arr, ImageMeta(8, layout, icc_profile=profile, exif=_exif(), dpi=(72.0, 96.0)))
    (a, ma), (b, mb), spy = _both(tmp_path, up, src, ext, monkeypatch)
    assert spy.streamed(H)
    assert a.shape == b.shape == (4 * H, 4 * W) + arr.shape[2:] and a.dtype == b.dtype == dtype
    assert np.array_equal(a, b)
    assert (ma.layout, ma.bit_depth, ma.icc_profile, ma.dpi) == (mb.layout, mb.bit_depth, mb.icc_profile, mb.dpi)
    assert mb.icc_profile == profile and np.allclose(mb.dpi, (288, 384), atol=0.1)
    if ext == "png":  # EXIF is kept byte for byte (TIFF keeps none, as write_image)
        assert ma.exif == mb.exif and b"srkit-stream-camera" in mb.exif
    else:
        with tifffile.TiffFile(tmp_path / "stream.tif") as tf:
            assert tf.is_bigtiff and tf.pages[0].is_tiled
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", f"stream.{ext}", f"whole.{ext}"]


@pytest.mark.parametrize("quality,layout", [(95, "RGB"), (80, "RGB"), (90, "L")])
def test_stream_jpeg_matches_whole_image(tmp_path, up, icc, monkeypatch, quality, layout):
    arr = _smooth(H, W, len(layout), np.uint16)  # 16-bit in: reduced to 8 bits on both paths
    src = tmp_path / "in.png"
    write_image(src, arr, ImageMeta(16, layout, icc_profile=icc if layout == "RGB" else None, exif=_exif(),
                                    dpi=(300.0, 300.0)))
    (a, ma), (b, mb), spy = _both(tmp_path, up, src, "jpg", monkeypatch, quality=quality)
    assert spy.streamed(H)
    assert a.shape == b.shape and a.dtype == b.dtype == np.uint8
    mse = np.mean((a.astype(np.float64) - b.astype(np.float64)) ** 2)
    assert mse == 0 or 10 * np.log10(255**2 / mse) >= 50
    assert (ma.layout, ma.icc_profile, ma.exif, ma.dpi) == (mb.layout, mb.icc_profile, mb.exif, mb.dpi)
    assert mb.dpi == (1200.0, 1200.0)
    # Same chroma subsampling: 4:4:4 at quality >= 90, 4:2:0 below (Pillow's JPEG layer names them 0 and 2).
    from PIL import JpegImagePlugin

    with Image.open(tmp_path / "whole.jpg") as iw, Image.open(tmp_path / "stream.jpg") as is_:
        if layout == "RGB":
            assert JpegImagePlugin.get_sampling(iw) == JpegImagePlugin.get_sampling(is_) == (0 if quality >= 90 else 2)


def test_webp_cannot_stream(tmp_path, up, monkeypatch):
    src = tmp_path / "in.png"
    write_image(src, _smooth(40, 30, 3, np.uint8))
    spy = StripSpy(monkeypatch)
    with pytest.raises(ConfigError, match="TIFF or PNG") as e:
        upscale_file(src, tmp_path / "out.webp", up, stream=True)
    assert "\n" not in str(e.value)
    # Automatic mode refuses too when the whole image would be over budget ...
    monkeypatch.setattr(files, "stream_budget", lambda available=None: 0)
    with pytest.raises(ConfigError, match="TIFF or PNG"):
        upscale_file(src, tmp_path / "out.webp", up)
    # ... and WebP's side limit holds whatever the mode.
    monkeypatch.setattr(files, "WEBP_MAX_SIDE", 100)
    with pytest.raises(ConfigError, match="over WebP's 100 px side limit; write TIFF or PNG"):
        upscale_file(src, tmp_path / "out.webp", up, stream=False)
    assert spy.heights == [] and sorted(p.name for p in tmp_path.iterdir()) == ["in.png"]


def test_automatic_rule(tmp_path, up, monkeypatch):
    assert files.whole_image_peak_bytes(2000, 2000, 3, 4) == int(files.WHOLE_IMAGE_COPIES * 8000 * 8000 * 3 * 4)
    assert files.stream_budget(10 << 30) == min(int(files.STREAM_MEMORY_SHARE * (10 << 30)), files.STREAM_CAP_BYTES)
    assert files.stream_budget(1 << 30) == (1 << 29)
    avail = engine.available_memory()
    assert avail is None or avail > 0
    src = tmp_path / "in.png"
    write_image(src, _smooth(H, W, 3, np.uint8))
    spy = StripSpy(monkeypatch)
    upscale_file(src, tmp_path / "small.png", up)  # far under budget: whole image
    assert spy.heights == [H]
    spy.heights.clear()
    monkeypatch.setattr(files, "stream_budget", lambda available=None: files.whole_image_peak_bytes(H, W, 3, 4) - 1)
    upscale_file(src, tmp_path / "big.png", up)  # just over budget: streamed
    assert spy.streamed(H)
    assert np.array_equal(read_image(tmp_path / "small.png")[0], read_image(tmp_path / "big.png")[0])


def test_failures_leave_no_file_and_never_touch_input(tmp_path, up, monkeypatch):
    src = tmp_path / "in.png"
    write_image(src, _smooth(H, W, 3, np.uint8))
    before = src.read_bytes()
    with pytest.raises(ImageWriteError, match="input file"):
        upscale_file(src, tmp_path / "." / "in.png", up, stream=True)
    assert src.read_bytes() == before
    (tmp_path / "out.png").write_bytes(b"old")
    real, calls = engine.run_image, []

    def boom(*args, **kwargs):
        calls.append(1)
        if len(calls) == 2:
            raise RuntimeError("disk on fire")
        return real(*args, **kwargs)

    monkeypatch.setattr(engine, "run_image", boom)
    for ext in ("png", "tif"):
        calls.clear()
        with pytest.raises(RuntimeError, match="disk on fire"):
            upscale_file(src, tmp_path / f"out.{ext}", up, stream=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.png"]
    assert (tmp_path / "out.png").read_bytes() == b"old" and src.read_bytes() == before
    # Alpha to JPEG is refused before any work, as on the whole-image path.
    write_image(tmp_path / "a.png", _smooth(40, 30, 4, np.uint8))
    calls.clear()
    with pytest.raises(ImageWriteError, match="JPEG cannot store layout RGBA"):
        upscale_file(tmp_path / "a.png", tmp_path / "a.jpg", up, stream=True)
    assert calls == [] and not (tmp_path / "a.jpg").exists()


def test_missing_pyvips_is_one_line(tmp_path, up, monkeypatch):
    src = tmp_path / "in.png"
    write_image(src, _smooth(40, 30, 3, np.uint8))
    monkeypatch.setitem(sys.modules, "pyvips", None)  # import pyvips -> ImportError
    spy = StripSpy(monkeypatch)
    with pytest.raises(ConfigError, match="pyvips") as e:
        upscale_file(src, tmp_path / "out.png", up, stream=True)
    assert "\n" not in str(e.value) and spy.heights == []
    upscale_file(src, tmp_path / "out.tif", up, stream=True)  # TIFF needs no pyvips
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out.tif"]


_RSS_CHILD = textwrap.dedent("""
    import resource, sys
    from srkit.infer.files import upscale_file
    upscale_file(sys.argv[1], sys.argv[2], "tiny-x4", tile="auto", stream=sys.argv[3] == "stream")
    print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
""")


def test_streaming_peak_memory_is_bounded(tmp_path):
    """2000 x 2000 -> 8000 x 8000 PNG with tiny-x4, forced streaming, in a fresh process. Measured: the streamed
    run peaks at 0.75-0.81 GB RSS alone (0.66 GB of it is Python, torch and the model) and once at 1.57 GB inside a
    loaded `pytest -n 2` run (libvips buffers more while its PNG writer is starved of CPU); the whole-image path
    (stream=False) at 3.1-3.6 GB. The bound sits between the two."""
    rng = np.random.default_rng(0)
    small = Image.fromarray((rng.random((250, 250, 3)) * 255).astype(np.uint8))
    src = tmp_path / "big.png"
    small.resize((2000, 2000), Image.BICUBIC).save(src, compress_level=1)
    r = subprocess.run([sys.executable, "-c", _RSS_CHILD, str(src), str(tmp_path / "out.png"), "stream"],
                       capture_output=True, text=True, timeout=300, env=subprocess_env())
    assert r.returncode == 0, r.stderr[-2000:]
    peak_mb = int(r.stdout.split()[-1]) / 1024  # ru_maxrss is in KiB on Linux
    assert peak_mb < 2200, f"streamed upscale peaked at {peak_mb:.0f} MB"
    with Image.open(tmp_path / "out.png") as im:  # header only: 64 Mpx
        assert im.size == (8000, 8000) and im.mode == "RGB"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["big.png", "out.png"]


@pytest.mark.parametrize("fmt", ["PNG", "JPEG"])
def test_metadata_rewriters_any_chunking(icc, fmt):
    """The on-the-fly metadata rewriters give the same bytes however libvips splits its writes, keep the pixels,
    and leave only srkit's metadata."""
    import io

    from srkit.infer.streaming import JpegMetaRewriter, PngMetaRewriter, jpeg_meta_segments
    from srkit.io.png import png_meta_chunks as _png_meta_chunks

    arr = _smooth(37, 23, 3, np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format=fmt, icc_profile=b"not-ours", dpi=(10, 10), exif=_exif())
    data = buf.getvalue()
    if fmt == "PNG":
        make = lambda fh: PngMetaRewriter(fh, _png_meta_chunks(icc, None, (300.0, 300.0)))  # noqa: E731
    else:
        make = lambda fh: JpegMetaRewriter(fh, jpeg_meta_segments(icc, None, (300.0, 300.0)))  # noqa: E731
    outs = []
    for step in (1, 7, 4096, len(data)):
        out = io.BytesIO()
        sink = make(out)
        for k in range(0, len(data), step):
            assert sink.write(data[k : k + step]) == len(data[k : k + step])
        sink.check()
        outs.append(out.getvalue())
    assert all(o == outs[0] for o in outs)
    with Image.open(io.BytesIO(outs[0])) as im:
        assert im.info["icc_profile"] == icc and np.allclose(im.info["dpi"], (300, 300), atol=0.1)
        assert "exif" not in im.info
        with Image.open(io.BytesIO(data)) as ref:
            assert np.array_equal(np.asarray(im), np.asarray(ref))
    # A truncated stream is an error, not a silently short file.
    for cut in (len(data) // 2, len(data) - 5):
        sink = make(io.BytesIO())
        sink.write(data[:cut])
        with pytest.raises(ImageWriteError):
            sink.check()
