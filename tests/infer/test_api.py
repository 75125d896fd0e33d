"""Image-level API: every input kind comes back as the same kind, alpha without dark fringes, files keep metadata."""


import numpy as np
import pytest
import torch
from PIL import Image

from srkit.archs import build
from srkit.errors import ConfigError, ImageReadError, ImageWriteError, ShapeError
from srkit.infer import Upscaler
from srkit.infer.api import load_upscaler, upscale
from srkit.infer.engine import fill_transparent
from srkit.infer.files import upscale_file
from srkit.io import ImageMeta, read_image, write_image
from srkit.models import load_model, save_model
from srkit.ops import imresize_matlab

H, W = 12, 10


def _tiny_edsr(scale=2):
    with torch.random.fork_rng():  # deterministic init without touching the global RNG
        torch.manual_seed(0)
        m = build("edsr-baseline", scale=scale, num_block=1, num_feat=8)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)
    return m.eval()


@pytest.fixture(scope="module")
def edsr_path(tmp_path_factory):
    return save_model(_tiny_edsr(), tmp_path_factory.mktemp("m") / "tiny-edsr-x2.safetensors")


def _rand(shape, dtype, seed=0):
    r = np.random.default_rng(seed).random(shape)
    if dtype == np.uint8:
        return (r * 255).round().astype(np.uint8)
    if dtype == np.uint16:
        return (r * 65535).round().astype(np.uint16)
    return r.astype(dtype)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32, np.float64])
@pytest.mark.parametrize("shape", [(H, W), (H, W, 1), (H, W, 2), (H, W, 3), (H, W, 4)])
def test_numpy_keeps_dtype_and_layout(edsr_path, dtype, shape):
    out = upscale(_rand(shape, dtype), edsr_path, tile=None, dtype="fp32")
    assert isinstance(out, np.ndarray)
    assert out.dtype == dtype and out.shape == (2 * H, 2 * W) + shape[2:]
    if out.dtype.kind == "f":
        assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("mode,expected", [
    ("L", "L"), ("LA", "LA"), ("RGB", "RGB"), ("RGBA", "RGBA"), ("I;16", "I;16"), ("1", "L"), ("I", "I"),
    ("F", "F"), ("CMYK", "RGB"),
])
def test_pil_modes(mode, expected):
    base = Image.fromarray(_rand((H, W, 4), np.uint8), "RGBA")
    if mode == "I;16":
        im = Image.fromarray(_rand((H, W), np.uint16))
    elif mode == "I":
        im = Image.fromarray(_rand((H, W), np.uint16).astype(np.int32))
    elif mode == "F":
        im = Image.fromarray(_rand((H, W), np.float32))
    else:
        im = base.convert(mode)
    assert im.mode == mode
    out = upscale(im, "bicubic", scale=2)
    assert isinstance(out, Image.Image) and out.mode == expected and out.size == (2 * W, 2 * H)
    if mode == "I;16":  # 16-bit data stays 16-bit (not squeezed to 8 bits)
        assert np.asarray(out).dtype == np.uint16 and np.asarray(out).max() > 255


def test_pil_palette_becomes_rgb_or_rgba_and_keeps_info():
    p = Image.fromarray(_rand((H, W, 3), np.uint8)).convert("P", palette=Image.Palette.ADAPTIVE, colors=8)
    assert upscale(p, "bicubic", scale=2).mode == "RGB"
    p.info["transparency"] = 0
    p.info["dpi"] = (72, 72)
    p.info["icc_profile"] = b"fake-icc"
    out = upscale(p, "bicubic", scale=2)
    assert out.mode == "RGBA" and out.size == (2 * W, 2 * H)
    assert out.info["dpi"] == (144.0, 144.0) and out.info["icc_profile"] == b"fake-icc"


@pytest.mark.parametrize("shape", [(3, H, W), (2, 4, H, W), (1, 1, H, W)])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_tensor_keeps_rank_dtype_device(edsr_path, shape, dtype):
    x = torch.rand(shape, dtype=dtype, generator=torch.Generator().manual_seed(0))
    y = upscale(x, edsr_path, dtype="fp32")
    assert isinstance(y, torch.Tensor) and y.dtype == dtype and y.device == x.device
    assert y.shape == shape[:-2] + (2 * H, 2 * W) and 0 <= y.min() and y.max() <= 1


def test_path_returns_array(tmp_path):
    p = tmp_path / "a.png"
    Image.fromarray(_rand((H, W, 3), np.uint8)).save(p)
    for src in (p, str(p)):
        out = upscale(src, "bicubic", scale=3)
        assert isinstance(out, np.ndarray) and out.shape == (3 * H, 3 * W, 3) and out.dtype == np.uint8
    with pytest.raises(ImageReadError):
        upscale(tmp_path / "missing.png", "bicubic")


def test_bicubic_model_equals_imresize_matlab():
    rgb = _rand((17, 23, 3), np.uint8, seed=1)
    out = upscale(rgb, "bicubic", scale=2)
    assert np.array_equal(out, imresize_matlab(rgb, 2.0))
    # Opaque RGBA: colour channels and alpha are each the MATLAB bicubic result.
    rgba = np.concatenate([rgb, np.full((17, 23, 1), 255, np.uint8)], axis=2)
    rgba[3:9, 4:12, 3] = 128
    out = upscale(rgba, "bicubic", scale=2, alpha="bicubic")
    assert np.array_equal(out[..., :3], imresize_matlab(rgb, 2.0))
    assert np.array_equal(out[..., 3], imresize_matlab(rgba[..., 3], 2.0))
    # alpha="model" through a classical model is the same MATLAB kernel.
    assert np.array_equal(upscale(rgba, "bicubic", scale=2, alpha="model"), out)


def _red_disc(n=32, radius=10.0):
    yy, xx = np.mgrid[:n, :n]
    disc = (yy - n / 2 + 0.5) ** 2 + (xx - n / 2 + 0.5) ** 2 < radius**2
    rgba = np.zeros((n, n, 4), np.uint8)  # transparent black around the disc
    rgba[disc] = (255, 0, 0, 255)
    return rgba


@pytest.mark.parametrize("model", ["bicubic", "lanczos"])
def test_alpha_edges_have_no_dark_fringe(model):
    rgba = _red_disc()
    out = upscale(rgba, model, scale=4)
    visible = out[..., 3] > 127
    assert visible.sum() > 0.2 * visible.size
    assert out[..., 0][visible].min() >= 250  # red stays red up to the edge
    assert out[..., 1:3][visible].max() <= 5
    # Control: upscaling the stored (black) colour under the transparent pixels darkens the edge.
    naive = imresize_matlab(rgba[..., :3], 4.0)
    assert naive[..., 0][visible].min() < 200


def test_fill_transparent_pulls_nearby_colour():
    color = torch.zeros(1, 3, 16, 16)
    color[:, 2, :, :8] = 1.0  # blue left half (visible), black right half (transparent)
    alpha = torch.zeros(1, 1, 16, 16)
    alpha[..., :8] = 1.0
    filled = fill_transparent(color, alpha)
    assert torch.equal(filled[..., :8], color[..., :8])  # visible pixels untouched
    assert filled[:, 2, :, 8:].min() > 0.99 and filled[:, :2].abs().max() < 1e-6
    # Nothing visible: nothing to pull from, colour kept; nothing transparent: unchanged.
    assert torch.equal(fill_transparent(color, torch.zeros_like(alpha)), color)
    assert torch.equal(fill_transparent(color, torch.ones_like(alpha)), color)
    with pytest.raises(ShapeError):
        fill_transparent(color, alpha[0])


def test_gray_through_rgb_model_is_mean_of_replicated(edsr_path):
    g = _rand((H, W), np.float32, seed=2)
    out = upscale(g, edsr_path, dtype="fp32")
    rgb = upscale(np.repeat(g[..., None], 3, axis=2), edsr_path, dtype="fp32")
    assert out.shape == (2 * H, 2 * W)
    # The mean is taken before clipping, so compare where no channel was clipped.
    inside = ((rgb > 0.001) & (rgb < 0.999)).all(axis=2)
    assert inside.mean() > 0.5
    assert np.abs(out - rgb.mean(axis=2))[inside].max() < 1e-5


def test_tiles_and_model_kinds_agree(edsr_path):
    m = load_model(edsr_path)
    x = _rand((40, 36, 3), np.float32, seed=3)
    whole = upscale(x, m, tile=None, dtype="fp32")
    tiled = upscale(x, m, tile=16, dtype="fp32")
    assert np.abs(whole - tiled).max() < 1e-5
    up = Upscaler(m)
    assert np.array_equal(upscale(x, up), whole)
    assert np.array_equal(upscale(x, str(edsr_path), dtype="fp32"), whole)


def test_tta_shape_and_symmetric_kernel():
    x = _rand((H, W, 3), np.float32, seed=4)
    # The bicubic kernel commutes with flips and rotations: the self-ensemble changes nothing.
    assert np.abs(upscale(x, "bicubic", scale=2, tta=True) - upscale(x, "bicubic", scale=2)).max() < 1e-5
    y = upscale(x, _tiny_edsr(), tta=True, dtype="fp32")
    assert y.shape == (2 * H, 2 * W, 3) and y.dtype == np.float32


def test_scale_is_checked(edsr_path):
    x = _rand((H, W, 3), np.uint8)
    with pytest.raises(ConfigError, match="x2"):
        upscale(x, edsr_path, scale=3)
    with pytest.raises(ConfigError, match="x2"):
        upscale(x, load_model(edsr_path), scale=4)
    with pytest.raises(ConfigError):
        upscale(x, "bicubic-x2", scale=3)
    assert upscale(x, edsr_path, scale=2).shape == (2 * H, 2 * W, 3)
    assert upscale(x, "bicubic", scale=3).shape == (3 * H, 3 * W, 3)


def test_bad_arguments():
    with pytest.raises(ShapeError):
        upscale([[1, 2], [3, 4]], "bicubic")
    with pytest.raises(ShapeError):
        upscale(np.zeros((4, 4), np.int32), "bicubic")
    with pytest.raises(ShapeError):
        upscale(np.zeros((4, 4, 5), np.uint8), "bicubic")
    with pytest.raises(ShapeError):
        upscale(torch.zeros(4, 4), "bicubic")
    with pytest.raises(ConfigError):
        upscale(np.zeros((4, 4), np.uint8), "bicubic", alpha="premultiplied")


def test_backend_passes_through_or_is_refused():
    assert load_upscaler("bicubic", backend="torch").backend == "torch"
    with pytest.raises(ConfigError, match="unknown backend 'tensorrt'"):
        load_upscaler("bicubic", backend="tensorrt")


def test_lazy_top_level_name():
    import srkit

    assert srkit.upscale is upscale


# --- files -------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def icc() -> bytes:
    from PIL import ImageCms

    # Made once: the profile's header holds its creation time.
    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def _exif() -> bytes:
    ex = Image.Exif()
    ex[0x010F] = "srkit-test-camera"  # Make
    return ex.tobytes()


@pytest.mark.parametrize("suffix,layout,dtype", [
    (".png", "RGB", np.uint8), (".png", "RGBA", np.uint16), (".png", "L", np.uint16),
    (".jpg", "RGB", np.uint8), (".jpg", "L", np.uint8), (".tif", "LA", np.uint16),
])
def test_upscale_file_keeps_metadata(tmp_path, icc, suffix, layout, dtype):
    arr = _rand((H, W, len(layout)) if layout != "L" else (H, W), dtype)
    src = tmp_path / f"in{suffix}"
    write_image(src, arr, ImageMeta(8, layout, icc_profile=icc, exif=_exif(), dpi=(72.0, 96.0)))
    dst = upscale_file(src, tmp_path / f"out{suffix}", "bicubic", scale=2)
    out, meta = read_image(dst)
    assert out.shape == (2 * H, 2 * W) + arr.shape[2:] and out.dtype == dtype and meta.layout == layout
    assert meta.icc_profile == icc
    assert meta.dpi is not None and np.allclose(meta.dpi, (144.0, 192.0), atol=0.6)
    if suffix != ".tif":  # TIFF does not keep EXIF (srkit.io policy)
        assert meta.exif is not None and b"srkit-test-camera" in meta.exif


def test_upscale_file_formats_and_refusals(tmp_path):
    src = tmp_path / "a.png"
    rgba = _rand((H, W, 4), np.uint16)
    write_image(src, rgba)
    # 16-bit to WebP: reduced to 8 bits, alpha kept.
    out, meta = read_image(upscale_file(src, tmp_path / "a.webp", "bicubic", scale=2, quality=100))
    assert out.dtype == np.uint8 and meta.layout == "RGBA"
    # Alpha is never dropped silently.
    with pytest.raises(ImageWriteError):
        upscale_file(src, tmp_path / "a.jpg", "bicubic", scale=2)
    assert not (tmp_path / "a.jpg").exists()
    # Float TIFF to PNG: 16-bit PNG.
    tif = tmp_path / "f.tif"
    write_image(tif, _rand((H, W, 3), np.float32))
    out, _ = read_image(upscale_file(tif, tmp_path / "f.png", "bicubic", scale=2))
    assert out.dtype == np.uint16
    # Palette PNG with transparency: RGBA out.
    pal = Image.fromarray(_rand((H, W, 3), np.uint8)).convert("P", palette=Image.Palette.ADAPTIVE, colors=4)
    pal.save(tmp_path / "p.png", transparency=0)
    out, meta = read_image(upscale_file(tmp_path / "p.png", tmp_path / "p_x2.png", "bicubic", scale=2))
    assert meta.layout == "RGBA" and out.shape == (2 * H, 2 * W, 4)
    # Output == input: refused, input untouched.
    before = src.read_bytes()
    with pytest.raises(ImageWriteError, match="input file"):
        upscale_file(src, tmp_path / "sub" / ".." / "a.png", "bicubic", scale=2)
    assert src.read_bytes() == before
    # format= overrides the suffix.
    upscale_file(src, tmp_path / "a.out", "bicubic", scale=2, format="tiff")
    assert read_image(tmp_path / "a.out")[1].format == "TIFF"


def test_animated_input_is_refused(tmp_path):
    frames = [Image.fromarray(_rand((H, W, 3), np.uint8, seed=s)) for s in range(2)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    with pytest.raises(ImageReadError, match="frames"):
        upscale_file(tmp_path / "anim.gif", tmp_path / "anim.png", "bicubic", scale=2)
    assert not (tmp_path / "anim.png").exists()


def test_threads_share_one_upscaler(edsr_path):
    from concurrent.futures import ThreadPoolExecutor

    up = load_upscaler(edsr_path, dtype="fp32", tile=16)
    images = [_rand((20 + i, 18, 4), np.uint8, seed=i) for i in range(4)]
    sequential = [upscale(im, up) for im in images]
    with ThreadPoolExecutor(2) as pool:
        parallel = list(pool.map(lambda im: upscale(im, up), images))
    assert all(np.array_equal(a, b) for a, b in zip(sequential, parallel))
