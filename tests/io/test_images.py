"""Tests for srkit.io: faithful image reading/writing, metadata, caps, failures, atomic writes."""

from __future__ import annotations

import os
import struct
import time
import zlib
from pathlib import Path

import cv2
import numpy as np
import pytest
import tifffile
from PIL import Image, ImageOps

import srkit.io.images as images_mod
import srkit.io.pillow as pillow_mod
import srkit.io.png as png_mod
from srkit.errors import ImageReadError, ImageTooLargeError, ImageWriteError, ShapeError
from srkit.io import DEFAULT_MAX_PIXELS, ImageMeta, from_float, read_image, to_float, write_image
from helpers import exif_bytes, srgb_icc

SHAPES = {"L": (6, 9), "LA": (6, 9, 2), "RGB": (6, 9, 3), "RGBA": (6, 9, 4)}


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _u8(layout: str, seed: int = 0, shape: dict | None = None) -> np.ndarray:
    return _rng(seed).integers(0, 256, (shape or SHAPES)[layout], dtype=np.uint8)


def _u16(layout: str, seed: int = 0) -> np.ndarray:
    a = _rng(seed).integers(0, 65536, SHAPES[layout], dtype=np.uint16)
    a.flat[0] = 65535  # make sure values above 255 are present
    return a


def _smooth_rgb(h: int = 32, w: int = 48, seed: int = 0) -> np.ndarray:
    yy, xx = np.mgrid[0:h, 0:w]
    base = np.stack([xx * 4, yy * 6, (xx + yy) * 2], axis=-1).astype(np.float64)
    noise = _rng(seed).normal(0, 2, base.shape)
    return np.clip(base + 30 + noise, 0, 255).astype(np.uint8)


def _srgb_icc() -> bytes:
    return srgb_icc()


def _exif(orientation: int | None = None) -> bytes:
    return exif_bytes(orientation)


def _exif_tags(exif: bytes | None) -> Image.Exif:
    assert exif is not None
    e = Image.Exif()
    e.load(exif)
    return e


def _pil(path: Path, convert: str | None = None, *, transpose: bool = False) -> np.ndarray:
    """What Pillow itself decodes (optionally converted or EXIF-transposed), for comparison."""
    with Image.open(path) as im:
        out = ImageOps.exif_transpose(im) if transpose else im
        return np.asarray(out.convert(convert) if convert else out).copy()


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def _png_bytes(w: int, h: int, depth: int, ctype: int, rows: bytes, extra: bytes = b"") -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, depth, ctype, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + extra
        + _png_chunk(b"IDAT", zlib.compress(rows))
        + _png_chunk(b"IEND", b"")
    )


def _png16_rows(a: np.ndarray) -> bytes:
    h = a.shape[0]
    raw = a.astype(">u2").reshape(h, -1).view(np.uint8)
    return np.concatenate([np.zeros((h, 1), np.uint8), raw], axis=1).tobytes()


def _png_chunks(data: bytes) -> list[tuple[bytes, bytes, bool]]:
    """(type, body, crc ok) of every chunk."""
    out, pos = [], 8
    while pos < len(data):
        (n,) = struct.unpack_from(">I", data, pos)
        ctype, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + n]
        (crc,) = struct.unpack_from(">I", data, pos + 8 + n)
        out.append((ctype, body, crc == zlib.crc32(ctype + body)))
        pos += 12 + n
    return out


def _no_temp_files(directory: Path) -> bool:
    return not [p for p in directory.iterdir() if p.name.endswith(".tmp")]


def _read_fails(path: Path, exc: type[Exception] = ImageReadError, match: str | None = None) -> str:
    with pytest.raises(exc) as info:
        read_image(path)
    msg = str(info.value)
    assert path.name in msg
    assert "\n" not in msg
    if match is not None:
        assert match in msg, msg
    return msg


# --------------------------------------------------------------------------------------------
# round trips
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["L", "LA", "RGB", "RGBA"])
def test_png_8bit_roundtrip(tmp_path: Path, layout: str) -> None:
    a = _u8(layout)
    p = write_image(tmp_path / f"x_{layout}.png", a)
    b, meta = read_image(p)
    assert b.dtype == np.uint8 and np.array_equal(a, b)
    assert (meta.bit_depth, meta.layout, meta.format) == (8, layout, "PNG")
    assert meta.channels == len(layout) and meta.has_alpha == layout.endswith("A")
    assert np.array_equal(_pil(p), a)  # the file itself is right


@pytest.mark.parametrize("layout", ["L", "LA", "RGB", "RGBA"])
def test_png_16bit_roundtrip(tmp_path: Path, layout: str) -> None:
    a = _u16(layout)
    p = write_image(tmp_path / f"x_{layout}.png", a)
    b, meta = read_image(p)
    assert b.dtype == np.uint16 and b.max() > 255 and np.array_equal(a, b)
    assert (meta.bit_depth, meta.layout, meta.format) == (16, layout, "PNG")
    # check the file with independent decoders
    c = cv2.imread(str(p), cv2.IMREAD_UNCHANGED)
    assert c.dtype == np.uint16
    if layout == "LA":
        assert np.array_equal(c[..., 0], a[..., 0]) and np.array_equal(c[..., 3], a[..., 1])
        pil = _pil(p)  # Pillow reads 16-bit LA as 8-bit RGBA
        assert np.array_equal(pil[..., 0], (a[..., 0] >> 8).astype(np.uint8))
        assert np.array_equal(pil[..., 3], (a[..., 1] >> 8).astype(np.uint8))
    elif layout == "L":
        assert np.array_equal(c, a)
    else:
        code = cv2.COLOR_BGR2RGB if layout == "RGB" else cv2.COLOR_BGRA2RGBA
        assert np.array_equal(cv2.cvtColor(c, code), a)
    assert all(ok for _, _, ok in _png_chunks(p.read_bytes()))


def test_png_16bit_gray_alpha_encoder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # smooth + noisy content exercises every PNG filter type of srkit's gray+alpha encoder
    yy, xx = np.mgrid[0:40, 0:50]
    g = (xx * 1000 + yy * 300).astype(np.uint16)
    a = np.stack([g, (xx * 7 + yy * 900).astype(np.uint16)], axis=-1)
    a[20:30] = _rng(4).integers(0, 65536, a[20:30].shape, dtype=np.uint16)
    a[30:, :, 1] = 65535
    raw = a.astype(">u2").reshape(40, -1).view(np.uint8)
    filters = png_mod._png_filter(raw, np.zeros(raw.shape[1], np.uint8), 4)[:, 0]
    assert len(set(filters.tolist())) >= 3
    for block_bytes in (1 << 22, 7 * raw.shape[1], 1):  # one block, 7-row blocks, single rows
        monkeypatch.setattr(png_mod, "_PNG_BLOCK_BYTES", block_bytes)
        b, _ = read_image(write_image(tmp_path / "la.png", a))
        assert np.array_equal(a, b)
        c = cv2.imread(str(tmp_path / "la.png"), cv2.IMREAD_UNCHANGED)
        assert np.array_equal(c[..., 1], a[..., 0]) and np.array_equal(c[..., 3], a[..., 1])


@pytest.mark.parametrize("transparent", [False, True])
def test_palette_png(tmp_path: Path, transparent: bool) -> None:
    idx = _rng(1).integers(0, 16, (7, 5), dtype=np.uint8)
    im = Image.fromarray(idx, "P")
    im.putpalette(_rng(2).integers(0, 256, 16 * 3, dtype=np.uint8).tobytes())
    p = tmp_path / "pal.png"
    if transparent:
        im.save(p, transparency=bytes(range(0, 256, 16)))
    else:
        im.save(p)
    b, meta = read_image(p)
    expected = _pil(p, "RGBA" if transparent else "RGB")
    assert np.array_equal(b, expected)
    assert meta.layout == ("RGBA" if transparent else "RGB") and meta.bit_depth == 8
    assert meta.source_mode == "P"


def test_png_bilevel_and_colour_key(tmp_path: Path) -> None:
    bits = _rng(5).integers(0, 2, (6, 9)).astype(bool)
    Image.fromarray(bits).save(tmp_path / "bits.png")
    b, meta = read_image(tmp_path / "bits.png")
    assert meta.layout == "L" and set(np.unique(b)) <= {0, 255}
    assert np.array_equal(b, bits.astype(np.uint8) * 255)

    rgb = _u8("RGB")
    rgb[0, 0] = (1, 2, 3)
    Image.fromarray(rgb).save(tmp_path / "key.png", transparency=(1, 2, 3))
    b, meta = read_image(tmp_path / "key.png")
    assert meta.layout == "RGBA"
    assert np.array_equal(b, _pil(tmp_path / "key.png", "RGBA"))
    assert b[0, 0, 3] == 0


@pytest.mark.parametrize("depth", [1, 2, 4, 8])
def test_png_low_bit_gray_colour_key(tmp_path: Path, depth: int) -> None:
    levels = 1 << depth
    v = _rng(depth).integers(0, levels, (5, 16), dtype=np.uint8)
    v[0, 0] = key = levels - 2 if depth > 1 else 1
    per_byte = 8 // depth
    packed = np.zeros((5, 16 // per_byte), np.uint8)
    for i in range(per_byte):
        packed |= v[:, i::per_byte] << (8 - depth * (i + 1))
    rows = np.concatenate([np.zeros((5, 1), np.uint8), packed], axis=1).tobytes()
    trns = _png_chunk(b"tRNS", struct.pack(">H", key))
    (tmp_path / "g.png").write_bytes(_png_bytes(16, 5, depth, 0, rows, trns))
    b, meta = read_image(tmp_path / "g.png")
    scale = 255 // (levels - 1)
    assert meta.layout == "LA" and meta.bit_depth == 8
    assert np.array_equal(b[..., 0], v * scale)
    assert np.array_equal(b[..., 1], np.where(v == key, 0, 255))


def test_png_16bit_colour_key(tmp_path: Path) -> None:
    g = _u16("L")
    g[1, 2] = 4242
    (tmp_path / "g.png").write_bytes(
        _png_bytes(9, 6, 16, 0, _png16_rows(g), _png_chunk(b"tRNS", struct.pack(">H", 4242)))
    )
    b, meta = read_image(tmp_path / "g.png")
    assert meta.layout == "LA" and b.dtype == np.uint16
    assert np.array_equal(b[..., 0], g)
    assert np.array_equal(b[..., 1], np.where(g == 4242, 0, 65535))

    rgb = _u16("RGB")
    rgb[2, 3] = (1000, 2000, 3000)
    trns = _png_chunk(b"tRNS", struct.pack(">HHH", 1000, 2000, 3000))
    (tmp_path / "c.png").write_bytes(_png_bytes(9, 6, 16, 2, _png16_rows(rgb), trns))
    b, meta = read_image(tmp_path / "c.png")
    assert meta.layout == "RGBA" and np.array_equal(b[..., :3], rgb)
    key = np.all(rgb == (1000, 2000, 3000), axis=-1)
    assert np.array_equal(b[..., 3], np.where(key, 0, 65535))


@pytest.mark.parametrize("layout", ["L", "RGB"])
def test_jpeg_roundtrip(tmp_path: Path, layout: str) -> None:
    a = _smooth_rgb()
    if layout == "L":
        a = a[..., 1].copy()
    b, meta = read_image(write_image(tmp_path / "x.jpg", a, quality=95))
    assert b.shape == a.shape and b.dtype == np.uint8
    assert np.abs(b.astype(int) - a.astype(int)).mean() < 3
    assert (meta.layout, meta.format, meta.bit_depth) == (layout, "JPEG", 8)


def test_cmyk_jpeg_becomes_rgb(tmp_path: Path) -> None:
    cmyk = _smooth_rgb(16, 24)
    cmyk = np.concatenate([cmyk, cmyk[..., :1] // 2], axis=-1)
    p = tmp_path / "cmyk.jpg"
    Image.fromarray(cmyk, "CMYK").save(p, quality=95)
    with pytest.warns(RuntimeWarning, match="naive formula"):  # no ICC profile in the file
        b, meta = read_image(p)
    assert b.shape == (16, 24, 3) and meta.layout == "RGB" and meta.source_mode == "CMYK"
    assert np.array_equal(b, _pil(p, "RGB"))


def test_webp(tmp_path: Path) -> None:
    for layout in ("RGB", "RGBA"):
        a = _u8(layout)
        b, meta = read_image(write_image(tmp_path / f"{layout}.webp", a, quality=100))
        assert np.array_equal(a, b) and meta.layout == layout and meta.format == "WEBP"
    g = _u8("L")
    b, meta = read_image(write_image(tmp_path / "g.webp", g, quality=100))
    assert meta.layout == "RGB" and all(np.array_equal(b[..., i], g) for i in range(3))
    s = _smooth_rgb()
    b, _ = read_image(write_image(tmp_path / "lossy.webp", s, quality=90))
    assert b.shape == s.shape and np.abs(b.astype(int) - s.astype(int)).mean() < 4


@pytest.mark.parametrize("layout", ["L", "RGB"])
def test_bmp_roundtrip(tmp_path: Path, layout: str) -> None:
    a = _u8(layout)
    b, meta = read_image(write_image(tmp_path / "x.bmp", a))
    assert np.array_equal(a, b) and meta.layout == layout and meta.format == "BMP"


@pytest.mark.parametrize("layout", ["L", "LA", "RGB", "RGBA"])
@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiff_roundtrip(tmp_path: Path, layout: str, dtype: type) -> None:
    if dtype is np.float32:
        a = _rng(7).normal(0.5, 0.7, SHAPES[layout]).astype(np.float32)  # outside [0, 1] too
    elif dtype is np.uint16:
        a = _u16(layout)
    else:
        a = _u8(layout)
    p = write_image(tmp_path / "x.tif", a)
    b, meta = read_image(p)
    assert b.dtype == a.dtype and np.array_equal(a, b)
    assert meta.layout == layout and meta.format == "TIFF"
    assert meta.bit_depth == {np.uint8: 8, np.uint16: 16, np.float32: 32}[dtype]
    assert np.array_equal(tifffile.imread(p), a)


def test_tiff_variants(tmp_path: Path) -> None:
    # planar RGB
    a = _u16("RGB")
    tifffile.imwrite(tmp_path / "be.tif", a, photometric="rgb", byteorder=">")
    b, _ = read_image(tmp_path / "be.tif")
    assert b.dtype == np.uint16 and np.array_equal(a, b)
    b, _ = read_image(write_image(tmp_path / "be.png", a.astype(">u2")))  # big-endian input
    assert np.array_equal(a, b)
    planar = np.moveaxis(a, -1, 0)
    tifffile.imwrite(tmp_path / "planar.tif", planar, photometric="rgb", planarconfig="separate")
    b, _ = read_image(tmp_path / "planar.tif")
    assert np.array_equal(a, b)
    # min-is-white gray
    g = _u8("L")
    tifffile.imwrite(tmp_path / "white.tif", g, photometric="miniswhite")
    b, meta = read_image(tmp_path / "white.tif")
    assert np.array_equal(b, 255 - g) and meta.source_mode == "MINISWHITE"
    # palette
    idx = _rng(8).integers(0, 256, (6, 9), dtype=np.uint8)
    cmap = (_rng(9).integers(0, 256, (3, 256)) * 257).astype(np.uint16)
    tifffile.imwrite(tmp_path / "pal.tif", idx, photometric="palette", colormap=cmap)
    b, meta = read_image(tmp_path / "pal.tif")
    assert meta.layout == "RGB" and b.dtype == np.uint8
    assert np.array_equal(b, (cmap // 257).T[idx])
    # a reduced-resolution second page is a thumbnail, not a frame
    with tifffile.TiffWriter(tmp_path / "thumb.tif") as tw:
        tw.write(a, photometric="rgb")
        tw.write(a[::2, ::2], photometric="rgb", subfiletype=1)
    b, _ = read_image(tmp_path / "thumb.tif")
    assert np.array_equal(a, b)


def test_tiff_compressions_decoded_by_pillow(tmp_path: Path) -> None:
    # LZW needs the optional imagecodecs package in tifffile; srkit then decodes with Pillow
    rgba, g16 = _u8("RGBA"), _u16("L")
    f32 = _rng(12).random((6, 9)).astype(np.float32)
    cases = (("rgba.tif", rgba), ("rgb.tif", rgba[..., :3]), ("g16.tif", g16), ("f.tif", f32))
    for name, a in cases:
        Image.fromarray(a).save(tmp_path / name, compression="tiff_lzw")
        b, meta = read_image(tmp_path / name)
        assert b.dtype == a.dtype and np.array_equal(a, b), name
        assert meta.format == "TIFF"


def test_tiff_orientation_tag(tmp_path: Path) -> None:
    a = _u16("RGB")
    tifffile.imwrite(tmp_path / "o.tif", a, photometric="rgb", extratags=[(274, "H", 1, 6, True)])
    b, _ = read_image(tmp_path / "o.tif")
    assert np.array_equal(b, np.rot90(a, k=-1))


def test_gif_single_frame(tmp_path: Path) -> None:
    idx = _rng(10).integers(0, 8, (5, 7), dtype=np.uint8)
    im = Image.fromarray(idx, "P")
    im.putpalette(_rng(11).integers(0, 256, 8 * 3, dtype=np.uint8).tobytes())
    im.save(tmp_path / "a.gif")
    im.save(tmp_path / "t.gif", transparency=3)
    b, meta = read_image(tmp_path / "a.gif")
    assert meta.format == "GIF" and np.array_equal(b, _pil(tmp_path / "a.gif", "RGB"))
    b, meta = read_image(tmp_path / "t.gif")
    assert meta.layout == "RGBA"
    assert np.array_equal(b, _pil(tmp_path / "t.gif", "RGBA"))


def test_format_is_sniffed_and_unicode_paths(tmp_path: Path) -> None:
    a = _u16("RGB")
    p = tmp_path / "图像 é.png"
    write_image(p, a)
    b, _ = read_image(p)
    assert np.array_equal(a, b)
    misnamed = tmp_path / "really_png.jpg"
    write_image(misnamed, _u8("RGB"), format="png")
    b, meta = read_image(misnamed)
    assert meta.format == "PNG" and np.array_equal(b, _u8("RGB"))
    assert Path(write_image(str(tmp_path / "é.tiff"), a)).exists()


# --------------------------------------------------------------------------------------------
# metadata
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("suffix", "array"),
    [
        (".png", _u8("RGB")),
        (".png", _u16("RGB")),
        (".png", _u16("LA")),
        (".jpg", _smooth_rgb()),
        (".webp", _u8("RGBA")),
        (".tif", _u16("RGBA")),
        (".tif", np.ones((4, 5, 3), np.float32)),
    ],
)
def test_icc_survives(tmp_path: Path, suffix: str, array: np.ndarray) -> None:
    icc = _srgb_icc()
    meta = ImageMeta(bit_depth=8, layout="RGB", icc_profile=icc)
    p = write_image(tmp_path / f"x{suffix}", array, meta)
    assert read_image(p)[1].icc_profile == icc


@pytest.mark.parametrize(
    ("suffix", "array"),
    [(".png", _u8("RGB")), (".png", _u16("RGB")), (".jpg", _smooth_rgb()), (".webp", _u8("RGB"))],
)
def test_exif_survives(tmp_path: Path, suffix: str, array: np.ndarray) -> None:
    exif = _exif()
    p = write_image(tmp_path / f"x{suffix}", array, ImageMeta(bit_depth=8, layout="RGB", exif=exif))
    _, meta = read_image(p)
    assert meta.exif is not None and meta.exif.startswith(b"Exif\x00\x00")
    assert _exif_tags(meta.exif)[0x010F] == "srkit-test"
    assert meta.exif == exif  # no orientation to apply: byte-identical


@pytest.mark.parametrize(
    ("suffix", "array", "dpi", "tol"),
    [
        (".png", _u8("RGB"), (300.0, 150.0), 0.02),
        (".png", _u16("L"), (300.0, 150.0), 0.02),
        (".jpg", _smooth_rgb(), (300.0, 150.0), 0.0),
        (".bmp", _u8("RGB"), (300.0, 150.0), 0.02),
        (".tif", _u8("RGB"), (300.0, 72.5), 1e-6),
    ],
)
def test_dpi_survives(
    tmp_path: Path, suffix: str, array: np.ndarray, dpi: tuple, tol: float
) -> None:
    p = write_image(tmp_path / f"x{suffix}", array, ImageMeta(bit_depth=8, layout="RGB", dpi=dpi))
    _, meta = read_image(p)
    assert meta.dpi is not None and np.allclose(meta.dpi, dpi, atol=tol)
    # a second round trip keeps exactly the same value
    _, meta2 = read_image(write_image(tmp_path / f"y{suffix}", array, meta))
    assert meta2.dpi == meta.dpi


def test_full_meta_roundtrip_and_dropped_fields(tmp_path: Path) -> None:
    icc, exif = _srgb_icc(), _exif()
    a = _u8("RGB")
    full = ImageMeta(8, "RGB", icc_profile=icc, exif=exif, dpi=(200, 200))
    src = write_image(tmp_path / "src.png", a, full)
    b, meta = read_image(src)
    _, meta16 = read_image(write_image(tmp_path / "16.png", b.astype(np.uint16) * 257, meta))
    assert (meta16.icc_profile, meta16.exif, meta16.dpi) == (meta.icc_profile, meta.exif, meta.dpi)
    chunks = [c for c, _, _ in _png_chunks((tmp_path / "16.png").read_bytes())]
    assert max(chunks.index(b"iCCP"), chunks.index(b"eXIf")) < chunks.index(b"IDAT")
    # formats that cannot hold a field drop it without failing
    _, m = read_image(write_image(tmp_path / "x.bmp", a, meta))
    assert m.icc_profile is None and m.exif is None and m.dpi is not None
    _, m = read_image(write_image(tmp_path / "x.tif", a, meta))
    assert m.icc_profile == icc and m.exif is None
    _, m = read_image(write_image(tmp_path / "x.webp", a, meta))
    assert m.icc_profile == icc and m.exif == exif and m.dpi is None


def test_exif_orientation_jpeg(tmp_path: Path) -> None:
    a = _smooth_rgb(16, 40)
    p = tmp_path / "rot.jpg"
    Image.fromarray(a).save(p, quality=95, exif=_exif(orientation=6))
    b, meta = read_image(p)
    assert b.shape == (40, 16, 3)
    expected = _pil(p, transpose=True)
    assert np.array_equal(b, expected)
    tags = _exif_tags(meta.exif)
    assert tags[0x0112] == 1 and tags[0x010F] == "srkit-test"
    # writing it back and reading again does not rotate a second time
    c, _ = read_image(write_image(tmp_path / "back.png", b, meta))
    assert np.array_equal(b, c)


@pytest.mark.parametrize("orientation", range(1, 9))
def test_exif_orientation_png_matches_pillow(tmp_path: Path, orientation: int) -> None:
    a = _u8("RGB", shape={"RGB": (5, 8, 3)})
    p = tmp_path / "o.png"
    Image.fromarray(a).save(p, exif=_exif(orientation=orientation))
    b, meta = read_image(p)
    assert np.array_equal(b, _pil(p, transpose=True))
    assert _exif_tags(meta.exif)[0x0112] == 1


def test_exif_orientation_png16(tmp_path: Path) -> None:
    a = _u16("RGBA")
    p = write_image(tmp_path / "o16.png", a, ImageMeta(16, "RGBA", exif=_exif(orientation=6)))
    b, meta = read_image(p)
    assert np.array_equal(b, np.rot90(a, k=-1))
    assert _exif_tags(meta.exif)[0x0112] == 1


# --------------------------------------------------------------------------------------------
# read failures
# --------------------------------------------------------------------------------------------


def test_read_missing_directory_empty_text(tmp_path: Path) -> None:
    _read_fails(tmp_path / "missing.png", match="no such file")
    (tmp_path / "folder.png").mkdir()
    _read_fails(tmp_path / "folder.png", match="directory")
    (tmp_path / "empty.png").write_bytes(b"")
    _read_fails(tmp_path / "empty.png", match="empty")
    (tmp_path / "text.png").write_text("hello, I am not an image\n")
    _read_fails(tmp_path / "text.png", match="unsupported")
    Image.fromarray(_u8("RGB")).save(tmp_path / "img.tga")  # Targa: no magic number, not read
    _read_fails(tmp_path / "img.tga", match="unsupported")


@pytest.mark.parametrize("array", [_u8("RGB"), _u16("RGB")])
def test_read_truncated_png(tmp_path: Path, array: np.ndarray) -> None:
    big = np.tile(array, (20, 20, 1))
    full = write_image(tmp_path / "full.png", big).read_bytes()
    (tmp_path / "cut.png").write_bytes(full[: len(full) // 2])
    _read_fails(tmp_path / "cut.png", match="truncated")
    (tmp_path / "noend.png").write_bytes(full[:-12])  # IEND missing
    _read_fails(tmp_path / "noend.png", match="truncated")


def test_read_corrupt_png_data(tmp_path: Path) -> None:
    ok = write_image(tmp_path / "ok.png", _u8("RGB", shape={"RGB": (40, 40, 3)}))
    data = bytearray(ok.read_bytes())
    idat = bytes(data).index(b"IDAT")
    data[idat + 10 : idat + 30] = b"\xff" * 20  # garble the compressed stream, keep the length
    (tmp_path / "bad.png").write_bytes(bytes(data))
    _read_fails(tmp_path / "bad.png")


def test_read_truncated_jpeg_and_tiff(tmp_path: Path) -> None:
    full = write_image(tmp_path / "full.jpg", _smooth_rgb(64, 64)).read_bytes()
    (tmp_path / "cut.jpg").write_bytes(full[: len(full) // 2])
    _read_fails(tmp_path / "cut.jpg", match="truncated")
    tifffile.imwrite(tmp_path / "full.tif", _u16("RGB"), photometric="rgb")
    data = (tmp_path / "full.tif").read_bytes()
    (tmp_path / "cut.tif").write_bytes(data[: len(data) - 100])
    _read_fails(tmp_path / "cut.tif", match="truncated")
    data = write_image(tmp_path / "full.webp", _smooth_rgb(64, 64), quality=80).read_bytes()
    (tmp_path / "cut.webp").write_bytes(data[: len(data) // 2])
    _read_fails(tmp_path / "cut.webp", match="truncated")


def test_huge_header_refused_before_decoding(tmp_path: Path) -> None:
    rows = zlib.compress(b"\x00" * 100)
    ihdr = struct.pack(">IIBBBBB", 50000, 50000, 8, 2, 0, 0, 0)
    data = (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", rows)
        + _png_chunk(b"IEND", b"")
    )
    p = tmp_path / "bomb.png"
    p.write_bytes(data)
    t0 = time.perf_counter()
    msg = _read_fails(p, ImageTooLargeError, match="50000x50000")
    assert time.perf_counter() - t0 < 1.0
    assert "200,000,000" in msg


def test_pixel_cap_every_format(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    a = _u8("RGB")  # 6 x 9 = 54 pixels
    paths = [write_image(tmp_path / f"x{s}", a) for s in (".png", ".jpg", ".webp", ".bmp", ".tif")]
    paths.append(write_image(tmp_path / "x16.png", _u16("RGB")))
    Image.fromarray(a[..., 0]).save(tmp_path / "x.gif")
    paths.append(tmp_path / "x.gif")
    for p in paths:
        with pytest.raises(ImageTooLargeError, match=p.name):
            read_image(p, max_pixels=53)
        assert read_image(p, max_pixels=54)[0].shape[:2] == (6, 9)
        assert read_image(p, max_pixels=None)[0].shape[:2] == (6, 9)
    monkeypatch.setenv("SRKIT_MAX_PIXELS", "50")
    with pytest.raises(ImageTooLargeError, match="50 pixels"):
        read_image(paths[0])
    assert read_image(paths[0], max_pixels=100)[0].shape[:2] == (6, 9)  # explicit wins
    monkeypatch.setenv("SRKIT_MAX_PIXELS", "none")
    assert read_image(paths[0])[0].shape[:2] == (6, 9)
    monkeypatch.setenv("SRKIT_MAX_PIXELS", "lots")
    with pytest.raises(Exception, match="SRKIT_MAX_PIXELS"):
        read_image(paths[0])
    assert DEFAULT_MAX_PIXELS == 200_000_000


def test_pillow_bomb_limit_not_in_the_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(Image, "MAX_IMAGE_PIXELS", 4)
    for s in (".png", ".jpg", ".bmp", ".tif"):
        b, _ = read_image(write_image(tmp_path / f"x{s}", _u8("RGB")))
        assert b.shape == (6, 9, 3)
    # Pillow's WebP plugin checks its own limit while opening: that becomes our error type
    p = write_image(tmp_path / "x.webp", _u8("RGB"))
    with pytest.raises(ImageTooLargeError, match="x.webp"):
        read_image(p)


@pytest.mark.parametrize(
    ("layout", "quality", "exif", "chunk"),
    [("RGB", 80, None, b"VP8 "), ("RGB", 100, None, b"VP8L"), ("RGB", 80, _exif(), b"VP8X")],
)
def test_webp_header_size(
    tmp_path: Path, layout: str, quality: int, exif: bytes | None, chunk: bytes
) -> None:
    a = _u8(layout, shape={"RGB": (13, 300, 3)})
    p = write_image(tmp_path / "x.webp", a, ImageMeta(8, layout, exif=exif), quality=quality)
    head = p.read_bytes()[:30]
    assert head[12:16] == chunk
    assert pillow_mod._webp_size(head) == (300, 13)
    with pytest.raises(ImageTooLargeError, match="300x13"):
        read_image(p, max_pixels=300 * 13 - 1)


def test_animated_and_multipage_refused(tmp_path: Path) -> None:
    frames = [Image.fromarray(_u8("RGB", seed=s)) for s in range(3)]
    frames[0].save(tmp_path / "anim.gif", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "anim.png", save_all=True, append_images=frames[1:])
    frames[0].save(tmp_path / "anim.webp", save_all=True, append_images=frames[1:], lossless=True)
    with tifffile.TiffWriter(tmp_path / "pages.tif") as tw:
        for s in range(3):
            tw.write(_u8("L", seed=s))
    for name in ("anim.gif", "anim.png", "anim.webp", "pages.tif"):
        _read_fails(tmp_path / name, match="has 3 frames; srkit reads single images")


# --------------------------------------------------------------------------------------------
# write failures and atomicity
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "array", "kwargs", "match"),
    [
        ("f.png", np.zeros((4, 4, 3), np.float32), {}, "float32 data cannot be stored as PNG"),
        ("h.jpg", np.zeros((4, 4, 3), np.uint16), {}, "16-bit data cannot be stored as JPEG"),
        ("h.webp", np.zeros((4, 4), np.uint16), {}, "16-bit data cannot be stored as WEBP"),
        ("h.bmp", np.zeros((4, 4), np.uint16), {}, "16-bit data cannot be stored as BMP"),
        ("a.jpg", np.zeros((4, 4, 4), np.uint8), {}, "JPEG cannot store layout RGBA"),
        ("a.bmp", np.zeros((4, 4, 2), np.uint8), {}, "BMP cannot store layout LA"),
        ("x.gif", np.zeros((4, 4), np.uint8), {}, "suffix '.gif'"),
        ("x.png", np.zeros((4, 4), np.uint8), {"format": "xyz"}, "unsupported format"),
        ("q.jpg", np.zeros((4, 4), np.uint8), {"quality": 0}, "quality"),
        ("missing_dir/x.png", np.zeros((4, 4), np.uint8), {}, "does not exist"),
    ],
)
def test_write_refused_leaves_nothing(
    tmp_path: Path, name: str, array: np.ndarray, kwargs: dict, match: str
) -> None:
    target = tmp_path / name
    with pytest.raises(ImageWriteError) as info:
        write_image(target, array, **kwargs)
    assert target.name in str(info.value) and match in str(info.value)
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(
    "array",
    [
        np.zeros((4, 4), np.float64),
        np.zeros((4, 4), bool),
        np.zeros((4, 4, 5), np.uint8),
        np.zeros((0, 4), np.uint8),
    ],
)
def test_write_rejects_non_image_arrays(tmp_path: Path, array: np.ndarray) -> None:
    with pytest.raises(ShapeError):
        write_image(tmp_path / "x.tif", array)
    assert list(tmp_path.iterdir()) == []


def test_atomic_overwrite_and_failure(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "img.png"
    write_image(target, _u8("RGB", seed=1))
    write_image(target, _u8("RGB", seed=2))
    assert np.array_equal(read_image(target)[0], _u8("RGB", seed=2))
    old = target.read_bytes()

    def broken(fh, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        fh.write(b"half an image")
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(images_mod, "encode_pillow", broken)
    with pytest.raises(ImageWriteError, match="disk on fire") as info:
        write_image(target, _u8("RGB", seed=3))
    assert target.name in str(info.value)
    assert target.read_bytes() == old
    assert _no_temp_files(tmp_path) and [p.name for p in tmp_path.iterdir()] == ["img.png"]
    with pytest.raises(ImageWriteError):
        write_image(tmp_path / "new.png", _u8("RGB"))
    assert not (tmp_path / "new.png").exists() and _no_temp_files(tmp_path)
    # an invalid combination does not touch the existing file either
    with pytest.raises(ImageWriteError):
        write_image(target, np.zeros((3, 3), np.float32))
    assert target.read_bytes() == old


def test_write_returns_path_and_default_permissions(tmp_path: Path) -> None:
    out = write_image(str(tmp_path / "p.PNG"), _u8("L"))
    assert isinstance(out, Path) and out.exists()
    umask = os.umask(0)
    os.umask(umask)
    assert out.stat().st_mode & 0o777 == 0o666 & ~umask


# --------------------------------------------------------------------------------------------
# float helpers and ImageMeta
# --------------------------------------------------------------------------------------------


def test_to_float_from_float_roundtrip() -> None:
    u8 = np.arange(256, dtype=np.uint8)
    u16 = np.arange(65536, dtype=np.uint16)
    f8, f16 = to_float(u8), to_float(u16)
    assert f8.dtype == np.float32 and f8.min() == 0.0 and f8.max() == 1.0
    assert np.array_equal(from_float(f8, 8), u8) and from_float(f8, 8).dtype == np.uint8
    assert np.array_equal(from_float(f16, 16), u16) and from_float(f16, 16).dtype == np.uint16
    x = np.array([-0.5, 0.0, 0.5, 1.0, 2.0, np.nan], np.float64)
    assert from_float(x, 8).tolist() == [0, 0, 128, 255, 255, 0]
    assert from_float(x, 16).tolist() == [0, 0, 32768, 65535, 65535, 0]
    y = from_float(x, 32)
    assert y.dtype == np.float32 and y[4] == 2.0
    with pytest.raises(ShapeError):
        from_float(u8, 8)
    with pytest.raises(ShapeError):
        to_float(np.zeros(3, np.int32))
    with pytest.raises(ValueError):
        from_float(f8, 12)


def test_image_meta() -> None:
    m = ImageMeta(bit_depth=8, layout="RGB")
    assert (m.icc_profile, m.exif, m.dpi, m.has_alpha, m.channels) == (None, None, None, False, 3)
    assert ImageMeta(16, "LA").has_alpha and ImageMeta(16, "LA").channels == 2
    assert ImageMeta(8, "L", dpi=(72, 96)).dpi == (72.0, 96.0)
    with pytest.raises(AttributeError):
        m.layout = "L"  # type: ignore[misc]
    for bad in ({"bit_depth": 12, "layout": "RGB"}, {"bit_depth": 8, "layout": "BGR"}):
        with pytest.raises(ValueError):
            ImageMeta(**bad)
    with pytest.raises(ValueError):
        ImageMeta(8, "RGB", dpi=(0, 72))


def test_read_result_is_writable_and_contiguous(tmp_path: Path) -> None:
    for s in (".png", ".jpg", ".tif"):
        b, _ = read_image(write_image(tmp_path / f"x{s}", _smooth_rgb(8, 8)))
        assert b.flags.c_contiguous and b.flags.writeable
        b[0, 0, 0] = 1


def test_image_suffixes_are_the_readable_formats() -> None:
    from srkit.io import IMAGE_SUFFIXES
    from srkit.io.formats import FORMAT_NAMES, READ_ONLY_SUFFIXES, WRITABLE

    assert IMAGE_SUFFIXES == {f".{key}" for key in FORMAT_NAMES} | set(READ_ONLY_SUFFIXES)  # GIF, PSD, ...: read only
    assert set(FORMAT_NAMES.values()) == set(WRITABLE)
