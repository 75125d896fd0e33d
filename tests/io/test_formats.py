"""Tests for the formats beyond PNG/JPEG/WebP/BMP/plain TIFF: HEIF, AVIF, JPEG 2000, JPEG XL, QOI, PSD, PNM, the
TIFF variants scanners and GIS tools write, their colour conversions, and the writers for HEIF, AVIF, JPEG 2000.

Every file is made here, by the library that writes that format (pillow-heif, Pillow, imagecodecs, tifffile,
psd-tools) or, for what no library writes (16-bit PSD, plain PNM), by a few lines of this file, then read back
through `srkit.io.read_image` and checked against the source: lossless codecs exactly, lossy ones within the
tolerances measured for them. Conversions are checked against values computed independently (scikit-image's
CIELAB, the published Bradford matrix, littleCMS through Pillow).
"""

from __future__ import annotations

import io
import struct
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest
import tifffile
from PIL import Image, ImageCms

from srkit.errors import ConfigError, ImageReadError, ImageTooLargeError, ImageWriteError
from srkit.io import ImageMeta, output_suffix, read_image, write_image
from srkit.io.formats import SNIFF_BYTES, sniff
from helpers import exif_bytes, srgb_icc

# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------


def _smooth(h: int = 24, w: int = 32, channels: int = 3, dtype: type = np.uint8) -> np.ndarray:
    """Smooth gradients (what lossy codecs are made for), full range of ``dtype``; alpha a ramp."""
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = [xx / (w - 1), yy / (h - 1), (xx + yy) / (h + w - 2), 1.0 - 0.8 * xx / (w - 1)]
    top = np.iinfo(dtype).max
    a = np.stack(planes[:channels], axis=-1) * (0.8 * top) + 0.1 * top
    a = np.rint(a).astype(dtype)
    return a[..., 0] if channels == 1 else a


def _noise(shape: tuple[int, ...], dtype: type = np.uint8, seed: int = 0) -> np.ndarray:
    top = np.iinfo(dtype).max
    return np.random.default_rng(seed).integers(0, top + 1, shape, dtype=dtype)


def _err(a: np.ndarray, b: np.ndarray) -> tuple[int, float]:
    """(max, mean) absolute difference."""
    assert a.shape == b.shape, (a.shape, b.shape)
    d = np.abs(a.astype(np.int64) - b.astype(np.int64))
    return int(d.max()), float(d.mean())


def _srgb_icc() -> bytes:
    return srgb_icc()


def _exif(orientation: int | None = None) -> bytes:
    return exif_bytes(orientation)


def _orientation(exif: bytes | None) -> int:
    assert exif is not None
    e = Image.Exif()
    e.load(exif)
    assert e.get(0x010F) == "srkit-test"
    return int(e.get(0x0112, 1))


def _rescale(v: np.ndarray, maxval: int, full: int = 65535) -> np.ndarray:
    """Independent n-bit -> full-range scaling: round half up of v * full / maxval."""
    return np.floor(v.astype(np.float64) * full / maxval + 0.5).astype(np.uint16 if full > 255 else np.uint8)


# --- CIELAB -> sRGB, computed independently (scikit-image + the published Bradford matrix) ---------------------

_BRADFORD_D50_TO_D65 = np.array([  # Lindbloom, http://www.brucelindbloom.com/Eqn_ChromAdapt.html
    [0.9555766, -0.0230393, 0.0631636],
    [-0.0282895, 1.0099416, 0.0210077],
    [0.0122982, -0.0204830, 1.3299098],
])


def _lab_to_srgb(lab: np.ndarray, white: str = "D50") -> np.ndarray:
    """sRGB in [0, 1] of CIE L*a*b* relative to ``white`` ("D50": Bradford-adapted to D65; "D65": as is)."""
    from skimage import color

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-image warns when it clips negative Z of out-of-gamut colours
        xyz = color.lab2xyz(lab, illuminant=white)
    if white == "D50":
        xyz = xyz @ _BRADFORD_D50_TO_D65.T
    return np.clip(color.xyz2rgb(xyz), 0.0, 1.0)


# --- a CMYK ICC profile (v2 printer profile, A2B0 lut16 to Lab) with known Lab values at the grid corners ----------


def _lab_of_inks(c: int, m: int, y: int, k: int) -> tuple[float, float, float]:
    """The Lab (D50) the test profile gives full ink combinations: far from the naive formula, neutral black."""
    return max(100 - 25 * c - 25 * m - 8 * y - 60 * k, 0), -30 * c + 40 * m - 10 * y, -30 * c - 10 * m + 40 * y


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _cmyk_icc() -> bytes:
    text = b"srkit test CMYK\0"
    desc = b"desc" + b"\0" * 4 + struct.pack(">I", len(text)) + text + b"\0" * 8 + b"\0" * 70
    wtpt = b"XYZ " + b"\0" * 4 + _s15(0.9642) + _s15(1.0) + _s15(0.8249)
    cprt = b"text" + b"\0" * 4 + b"public domain\0"
    clut: list[int] = []
    for c in (0, 1):
        for m in (0, 1):
            for y in (0, 1):
                for k in (0, 1):
                    lab = _lab_of_inks(c, m, y, k)  # v2 16-bit Lab encoding: L 0..0xFF00, a/b 0x8000 = 0
                    clut += [round(lab[0] / 100 * 65280), round((lab[1] + 128) * 256), round((lab[2] + 128) * 256)]
    a2b0 = (b"mft2" + b"\0" * 4 + bytes((4, 3, 2, 0)) + b"".join(_s15(v) for v in (1, 0, 0, 0, 1, 0, 0, 0, 1))
            + struct.pack(">HH", 2, 2) + struct.pack(">8H", *([0, 65535] * 4))
            + struct.pack(f">{len(clut)}H", *clut) + struct.pack(">6H", *([0, 65535] * 3)))
    tags = [(b"desc", desc), (b"wtpt", wtpt), (b"cprt", cprt), (b"A2B0", a2b0)]
    offset = 128 + 4 + 12 * len(tags)
    table, body = b"", b""
    for sig, data in tags:
        data += b"\0" * (-len(data) % 4)
        table += sig + struct.pack(">II", offset + len(body), len(data))
        body += data
    header = (struct.pack(">I", offset + len(body)) + b"lcms" + struct.pack(">I", 0x02100000) + b"prtrCMYKLab "
              + b"\0" * 12 + b"acsp" + b"\0" * 28 + _s15(0.9642) + _s15(1.0) + _s15(0.8249) + b"\0" * 48)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + body


def _ink_corners() -> np.ndarray:
    """(1, 16, 4) uint8: every full-ink combination of C, M, Y, K."""
    rows = [[c, m, y, k] for c in (0, 1) for m in (0, 1) for y in (0, 1) for k in (0, 1)]
    return (np.array(rows, np.uint8) * 255)[None]


def _corner_srgb() -> np.ndarray:
    """What the test profile's corners are in 8-bit sRGB, computed independently of littleCMS."""
    lab = np.array([_lab_of_inks(*(int(v) // 255 for v in row)) for row in _ink_corners()[0]], np.float64)
    return np.rint(_lab_to_srgb(lab) * 255).astype(np.uint8)[None]


# --- PSD and PackBits written by hand (nothing else writes 16/32-bit or Lab composites) -----------------------


def _packbits(row: bytes) -> bytes:
    """PackBits (runs of 3+ equal bytes as repeats, the rest as literals)."""
    out, i, n = bytearray(), 0, len(row)
    while i < n:
        j = i
        while j < n and j - i < 128 and row[j] == row[i]:
            j += 1
        if j - i >= 3:
            out += bytes((257 - (j - i),)) + row[i:i + 1]
            i = j
            continue
        j = i
        while j < n and j - i < 128 and not (j + 2 < n and row[j] == row[j + 1] == row[j + 2]):
            j += 1
        out += bytes((j - i - 1,)) + row[i:j]
        i = j
    return bytes(out)


def _psd(planes: list[np.ndarray], mode: int, depth: int, *, rle: bool = False, palette: bytes = b"",
         resources: dict[int, bytes] | None = None) -> bytes:
    """A PSD with no layers whose composite holds ``planes`` (each (H, W) of the file's sample type)."""
    h, w = planes[0].shape[:2]
    if depth == 1:
        h, w = planes[0].shape[0], planes[0].shape[1] * 8
    head = b"8BPS" + struct.pack(">H6xHIIHH", 1, len(planes), h, w, depth, mode)
    res = b""
    for rid, data in (resources or {}).items():
        res += b"8BIM" + struct.pack(">HHI", rid, 0, len(data)) + data + b"\0" * (len(data) & 1)
    big = {8: ">u1", 16: ">u2", 32: ">f4"}.get(depth, ">u1")
    rows = [np.ascontiguousarray(p.astype(big)).tobytes() for p in planes]
    if rle:
        row_len = len(rows[0]) // planes[0].shape[0]
        packed = [[_packbits(r[i:i + row_len]) for i in range(0, len(r), row_len)] for r in rows]
        counts = b"".join(struct.pack(">H", len(x)) for ch in packed for x in ch)
        data = struct.pack(">H", 1) + counts + b"".join(x for ch in packed for x in ch)
    else:
        data = struct.pack(">H", 0) + b"".join(rows)
    return (head + struct.pack(">I", len(palette)) + palette + struct.pack(">I", len(res)) + res
            + struct.pack(">I", 0) + data)


def _resolution_resource(dpi: float) -> bytes:
    fixed = round(dpi * 65536)
    return struct.pack(">IHHIHH", fixed, 1, 1, fixed, 1, 1)


# --------------------------------------------------------------------------------------------
# recognition by content
# --------------------------------------------------------------------------------------------


def test_sniff_every_format_from_its_first_bytes() -> None:
    heads = {
        b"\x00\x00\x00\x1cftypheic\x00\x00\x00\x00mif1heicmiaf": "HEIF",
        b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1heic": "HEIF",
        b"\x00\x00\x00\x20ftypavif\x00\x00\x00\x00avifmif1miafMA1B": "AVIF",
        b"\x00\x00\x00\x18ftypmif1\x00\x00\x00\x00mif1avif": "AVIF",
        b"\x00\x00\x00\x0cjP  \r\n\x87\n\x00\x00\x00\x14": "JPEG2000",
        b"\xff\x4f\xff\x51\x00\x29": "JPEG2000",
        b"\xff\x0a\xfa\x7f": "JXL",
        b"\x00\x00\x00\x0cJXL \r\n\x87\n": "JXL",
        b"qoif\x00\x00\x00\x10": "QOI",
        b"8BPS\x00\x01\x00\x00": "PSD",
        b"8BPS\x00\x02\x00\x00": "PSD",
        b"P6\n3 2\n255\n": "PNM",
        b"P4 # comment": "PNM",
        b"P1#x\n": "PNM",
        b"\x00\x00\x00\x18ftypisom\x00\x00\x00\x00isommp41": None,  # an MP4 video
        b"P7\nWIDTH 3\n": None,  # PAM: not read
        b"PK\x03\x04": None,
    }
    for head, fmt in heads.items():
        assert sniff(head[:SNIFF_BYTES]) == fmt, head


def test_format_comes_from_content_not_name(tmp_path: Path) -> None:
    a = _smooth(16, 20)
    made = {
        "JPEG2000": lambda p: Image.fromarray(a).save(p, format="JPEG2000", irreversible=False),
        "AVIF": lambda p: Image.fromarray(a).save(p, format="AVIF"),
        "PNM": lambda p: Image.fromarray(a).save(p, format="PPM"),
        "PSD": lambda p: p.write_bytes(_psd([a[..., i] for i in range(3)], 3, 8)),
    }
    for fmt, make in made.items():
        p = tmp_path / f"{fmt.lower()}.png"  # a lying suffix
        make(p)
        assert read_image(p)[1].format == fmt


# --------------------------------------------------------------------------------------------
# HEIF / HEIC (pillow-heif)
# --------------------------------------------------------------------------------------------


def _heic(path: Path, a: np.ndarray, mode: str, **kwargs: object) -> Path:
    pillow_heif = pytest.importorskip("pillow_heif")
    heif = pillow_heif.from_bytes(mode=mode, size=(a.shape[1], a.shape[0]), data=np.ascontiguousarray(a).tobytes())
    heif.save(path, **kwargs)
    return path


LOSSLESS_HEIF = {"quality": -1, "chroma": 444, "matrix_coefficients": 0}


@pytest.mark.parametrize(("mode", "channels"), [("L", 1), ("LA", 2), ("RGB", 3), ("RGBA", 4)])
def test_heif_lossless_read_exactly(tmp_path: Path, mode: str, channels: int) -> None:
    a = _noise((18, 26, channels)[: 2 if channels == 1 else 3])
    b, meta = read_image(_heic(tmp_path / "x.heic", a, mode, **LOSSLESS_HEIF))
    assert b.dtype == np.uint8 and np.array_equal(a, b)
    assert (meta.format, meta.bit_depth, meta.layout, meta.dpi) == ("HEIF", 8, mode, None)


def test_heif_lossy_icc_exif_and_rotation(tmp_path: Path) -> None:
    a = _smooth(24, 32)
    icc = _srgb_icc()
    p = _heic(tmp_path / "x.heic", a, "RGB", quality=90, icc_profile=icc, exif=_exif(orientation=6))
    b, meta = read_image(p)
    # pillow-heif turns EXIF orientation 6 into an irot box; libheif rotates while decoding, srkit does not again
    expect = np.rot90(a, k=-1)
    assert b.shape == expect.shape
    mx, mean = _err(b, expect)
    assert mx <= 10 and mean <= 2.5, (mx, mean)  # measured: 7, 1.9 (quality 90, 4:2:0)
    assert meta.icc_profile == icc and _orientation(meta.exif) == 1


def test_heif_10_bit_becomes_16_bit(tmp_path: Path) -> None:
    a = _smooth(16, 24, 3, np.uint16)
    b, meta = read_image(_heic(tmp_path / "x.heic", a, "RGB;16", **LOSSLESS_HEIF))  # stored at 10 bits
    assert (b.dtype, meta.bit_depth, meta.source_mode) == (np.uint16, 16, "RGB;16;10")
    assert np.array_equal(b, _rescale(a >> 6, 1023))  # 10-bit samples scaled to the full 16-bit range


# --------------------------------------------------------------------------------------------
# AVIF (Pillow; imagecodecs for 10/12 bits)
# --------------------------------------------------------------------------------------------


def test_avif_read_alpha_gray_icc_exif_orientation(tmp_path: Path) -> None:
    a = _smooth(24, 32, 4)
    icc = _srgb_icc()
    Image.fromarray(a).save(tmp_path / "x.avif", quality=90, icc_profile=icc, exif=_exif(orientation=6))
    b, meta = read_image(tmp_path / "x.avif")
    expect = np.rot90(a, k=-1)  # Pillow reports irot as the EXIF orientation; srkit applies it
    mx, mean = _err(b, expect)
    assert mx <= 9 and mean <= 1.5, (mx, mean)  # measured: 6, 0.8 (quality 90, 4:2:0)
    assert (meta.format, meta.layout, meta.bit_depth, meta.icc_profile) == ("AVIF", "RGBA", 8, icc)
    assert _orientation(meta.exif) == 1
    g = _smooth(20, 24, 1)
    Image.fromarray(g).save(tmp_path / "g.avif", quality=100)
    b, meta = read_image(tmp_path / "g.avif")
    assert meta.layout == "L" and _err(b, g)[0] <= 2


def test_avif_10_bit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    imagecodecs = pytest.importorskip("imagecodecs")
    a10 = _smooth(16, 24, 3, np.uint16) >> 6
    p = tmp_path / "x.avif"
    p.write_bytes(imagecodecs.avif_encode(a10, level=100, bitspersample=10))
    b, meta = read_image(p)
    assert (b.dtype, meta.bit_depth, meta.source_mode) == (np.uint16, 16, "RGB;10")
    assert np.array_equal(b, _rescale(a10, 1023))  # lossless 10-bit AV1, scaled to the full 16-bit range
    monkeypatch.setitem(sys.modules, "imagecodecs", None)  # without imagecodecs: Pillow's 8 bits and a warning
    with pytest.warns(RuntimeWarning, match="10-bit AVIF read as 8 bits.*srkit\\[formats\\]"):
        b8, meta = read_image(p)
    assert b8.dtype == np.uint8 and meta.bit_depth == 8


# --------------------------------------------------------------------------------------------
# JPEG 2000
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("layout", ["L", "LA", "RGB", "RGBA"])
def test_jpeg2000_8_bit_read_exactly(tmp_path: Path, layout: str) -> None:
    a = _noise((14, 22, len(layout))[: 2 if layout == "L" else 3])
    for name in ("x.jp2", "x.j2k"):
        Image.fromarray(a).save(tmp_path / name, irreversible=False)
        b, meta = read_image(tmp_path / name)
        assert np.array_equal(a, b) and (meta.format, meta.layout, meta.bit_depth) == ("JPEG2000", layout, 8)


def test_jpeg2000_deep_samples(tmp_path: Path) -> None:
    imagecodecs = pytest.importorskip("imagecodecs")
    rgb16 = _noise((14, 22, 3), np.uint16)  # Pillow reduces 16-bit colour JPEG 2000 to 8 bits; srkit does not
    (tmp_path / "rgb16.jp2").write_bytes(imagecodecs.jpeg2k_encode(rgb16, level=0, codecformat="jp2"))
    g16 = _noise((14, 22), np.uint16, seed=1)
    (tmp_path / "g16.j2k").write_bytes(imagecodecs.jpeg2k_encode(g16, level=0, codecformat="j2k"))
    g12 = _noise((14, 22), np.uint16, seed=2) >> 4
    (tmp_path / "g12.jp2").write_bytes(imagecodecs.jpeg2k_encode(g12, level=0, codecformat="jp2", bitspersample=12))
    for name, expect, mode in (("rgb16.jp2", rgb16, "RGB;16"), ("g16.j2k", g16, "I;16"),
                               ("g12.jp2", _rescale(g12, 4095), "L;12")):
        b, meta = read_image(tmp_path / name)
        assert b.dtype == np.uint16 and meta.bit_depth == 16 and np.array_equal(b, expect), name
        assert meta.source_mode == mode


def test_jpeg2000_lossy_read(tmp_path: Path) -> None:
    a = _smooth(32, 40)
    Image.fromarray(a).save(tmp_path / "x.jp2", quality_mode="dB", quality_layers=[45])
    mx, mean = _err(read_image(tmp_path / "x.jp2")[0], a)
    assert mx <= 20 and mean <= 2.0, (mx, mean)  # measured: 15, 1.2 (45 dB)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16])
@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_jpeg2000_write_round_trip(tmp_path: Path, dtype: type, channels: int) -> None:
    if dtype == np.uint16 and channels > 1:
        pytest.importorskip("imagecodecs")
    a = _noise((12, 18, channels)[: 2 if channels == 1 else 3], dtype)
    icc = _srgb_icc()
    meta_in = ImageMeta(8, "RGB", icc, _exif(), (300.0, 150.0))
    p = write_image(tmp_path / "x.jp2", a, meta_in, quality=100)
    b, meta = read_image(p)
    assert b.dtype == a.dtype and np.array_equal(a, b)
    assert meta.icc_profile == icc and meta.exif is None  # JP2 has no EXIF
    assert meta.dpi is not None and np.allclose(meta.dpi, (300.0, 150.0))
    with Image.open(p) as im:  # Pillow reads srkit's JP2 boxes too (size, resolution)
        assert im.size == (a.shape[1], a.shape[0]) and np.allclose(im.info["dpi"], (300.0, 150.0))
    b, meta = read_image(write_image(tmp_path / "x.j2k", a, meta_in, quality=100))  # bare codestream
    assert np.array_equal(a, b) and meta.icc_profile is None and meta.dpi is None


def test_jpeg2000_write_lossy(tmp_path: Path) -> None:
    for dtype, tol in ((np.uint8, (10, 1.5)), (np.uint16, (10 * 257, 1.5 * 257))):
        if dtype == np.uint16:
            pytest.importorskip("imagecodecs")
        a = _smooth(40, 48, 3, dtype)
        p = write_image(tmp_path / f"x{np.dtype(dtype).itemsize}.jp2", a, quality=95)
        mx, mean = _err(read_image(p)[0], a)
        assert mx <= tol[0] and mean <= tol[1], (dtype, mx, mean)  # measured 8-bit: 6, 0.6; 16-bit: 1179, 194


# --------------------------------------------------------------------------------------------
# HEIF / AVIF writers, side limit
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels", [1, 2, 3, 4])
def test_heif_write_round_trip(tmp_path: Path, channels: int) -> None:
    pillow_heif = pytest.importorskip("pillow_heif")
    a = _noise((16, 24, channels)[: 2 if channels == 1 else 3])
    icc = _srgb_icc()
    p = write_image(tmp_path / "x.heic", a, ImageMeta(8, "RGB", icc, _exif()), quality=100)
    b, meta = read_image(p)
    assert np.array_equal(a, b)  # quality 100: lossless
    layout = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    assert (meta.format, meta.layout, meta.icc_profile) == ("HEIF", layout, icc)
    assert _orientation(meta.exif) == 1
    assert pillow_heif.open_heif(p).size == (24, 16)
    s = _smooth(32, 40, channels)
    mx, mean = _err(read_image(write_image(tmp_path / "y.heic", s, quality=90))[0], s)
    assert mx <= 6 and mean <= 1.0, (mx, mean)  # measured: <= 3, <= 0.5 (4:4:4)


def test_heif_write_16_bit_stores_10_bits(tmp_path: Path) -> None:
    pytest.importorskip("pillow_heif")
    a = _smooth(16, 24, 3, np.uint16)
    b, meta = read_image(write_image(tmp_path / "x.heic", a, quality=100))
    assert b.dtype == np.uint16 and meta.source_mode == "RGB;16;10"
    mx, _ = _err(b, a)
    assert mx <= 64, mx  # measured: 53 (10-bit quantisation: 64 levels of 16 bits)


def test_avif_write_round_trip(tmp_path: Path) -> None:
    icc = _srgb_icc()
    for channels, layout in ((1, "L"), (2, "RGBA"), (3, "RGB"), (4, "RGBA")):
        a = _smooth(24, 32, channels)
        b, meta = read_image(write_image(tmp_path / "x.avif", a, ImageMeta(8, "L", icc, _exif()), quality=100))
        expect = a if channels != 2 else a[..., [0, 0, 0, 1]]  # gray + alpha is stored as RGBA
        mx, mean = _err(b, expect)
        assert mx <= 3 and mean <= 1.0, (channels, mx, mean)  # measured: <= 2, <= 0.7 (AV1 in YUV: not lossless)
        assert (meta.format, meta.layout, meta.icc_profile) == ("AVIF", layout, icc) and _orientation(meta.exif) == 1
    a = _smooth(24, 32)
    mx, mean = _err(read_image(write_image(tmp_path / "q.avif", a, quality=60))[0], a)
    assert mx <= 10 and mean <= 2.0, (mx, mean)  # measured: 6, 1.1
    with pytest.raises(ImageWriteError, match="16-bit data cannot be stored as AVIF"):
        write_image(tmp_path / "d.avif", _smooth(8, 8, 3, np.uint16))


@pytest.mark.parametrize("name", ["big.heic", "big.avif"])
def test_heif_avif_side_limit(tmp_path: Path, name: str) -> None:
    with pytest.raises(ImageWriteError) as e:
        write_image(tmp_path / name, np.zeros((2, 16385, 3), np.uint8))
    assert "16384 px side limit; write PNG or TIFF" in str(e.value) and "\n" not in str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_upscale_file_heif_avif_output_and_limit(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pillow_heif")
    from srkit.infer import files
    from srkit.infer.files import upscale_file

    src = write_image(tmp_path / "in.png", _smooth(20, 24, 3, np.uint16))
    b, meta = read_image(upscale_file(src, tmp_path / "out.heic", "bicubic", scale=2))
    assert b.shape == (40, 48, 3) and b.dtype == np.uint16 and meta.format == "HEIF"  # 16-bit kept (at 10 bits)
    b, meta = read_image(upscale_file(src, tmp_path / "out.jp2", "bicubic", scale=2, quality=100))
    assert b.dtype == np.uint16 and meta.format == "JPEG2000"
    b, meta = read_image(upscale_file(src, tmp_path / "out.bin", "bicubic", scale=2, format="avif"))
    assert b.dtype == np.uint8 and meta.format == "AVIF"  # AVIF stores 8 bits: reduced
    monkeypatch.setattr(files, "HEIF_MAX_SIDE", 40)
    for name in ("big.heic", "big.avif"):
        with pytest.raises(ConfigError, match="48 x 40 is over (HEIF|AVIF)'s 40 px side limit; write TIFF or PNG"):
            upscale_file(src, tmp_path / name, "bicubic", scale=2)
        assert not (tmp_path / name).exists()
    with pytest.raises(ConfigError, match="cannot be streamed"):
        upscale_file(src, tmp_path / "s.jp2", "bicubic", scale=2, stream=True)


# --------------------------------------------------------------------------------------------
# JPEG XL, QOI (imagecodecs)
# --------------------------------------------------------------------------------------------


def test_jxl_read(tmp_path: Path) -> None:
    imagecodecs = pytest.importorskip("imagecodecs")
    from srkit.io.codecs import jxl_header

    cases = [
        (_noise((13, 27, 3)), {}, "RGB", 8),
        (_noise((16, 8, 4)), {}, "RGBA", 8),
        (_noise((64, 48)), {}, "L", 8),
        (_noise((9, 11, 3), np.uint16), {}, "RGB", 16),
        (np.random.default_rng(3).random((7, 10, 3)).astype(np.float32), {}, "RGB", 32),
        (_noise((13, 27, 3)), {"usecontainer": True}, "RGB", 8),
    ]
    for i, (a, kwargs, layout, depth) in enumerate(cases):
        p = tmp_path / f"{i}.jxl"
        p.write_bytes(imagecodecs.jpegxl_encode(a, lossless=True, **kwargs))
        b, meta = read_image(p)
        assert b.dtype == a.dtype and np.array_equal(a, b), i
        assert (meta.format, meta.layout, meta.bit_depth) == ("JXL", layout, depth)
        h = jxl_header(p.read_bytes())
        assert (h.height, h.width) == a.shape[:2]
    a12 = _noise((9, 11, 3), np.uint16) >> 4
    (tmp_path / "12.jxl").write_bytes(imagecodecs.jpegxl_encode(a12, lossless=True, bitspersample=12))
    b, meta = read_image(tmp_path / "12.jxl")
    assert np.array_equal(b, _rescale(a12, 4095)) and meta.source_mode == "RGB;12"


def test_qoi_read(tmp_path: Path) -> None:
    imagecodecs = pytest.importorskip("imagecodecs")
    for channels in (3, 4):
        a = _noise((15, 21, channels))
        (tmp_path / "x.qoi").write_bytes(imagecodecs.qoi_encode(a))
        b, meta = read_image(tmp_path / "x.qoi")
        assert np.array_equal(a, b) and (meta.format, meta.bit_depth) == ("QOI", 8)
        space = "linear" if (tmp_path / "x.qoi").read_bytes()[13] == 1 else "srgb"  # the header's flag
        assert meta.source_mode == f"{'RGBA' if channels == 4 else 'RGB'};{space}"


# --------------------------------------------------------------------------------------------
# PSD
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("mode", ["L", "LA", "RGB", "RGBA"])
def test_psd_from_psd_tools(tmp_path: Path, mode: str) -> None:
    from psd_tools import PSDImage

    a = _noise((17, 23, len(mode))[: 2 if mode == "L" else 3])
    im = Image.fromarray(a) if mode != "LA" else Image.merge("LA", [Image.fromarray(a[..., i]) for i in (0, 1)])
    PSDImage.frompil(im).save(tmp_path / "x.psd")
    b, meta = read_image(tmp_path / "x.psd")
    assert np.array_equal(a, b) and (meta.format, meta.layout, meta.bit_depth) == ("PSD", mode, 8)


@pytest.mark.parametrize("rle", [False, True])
def test_psd_16_bit_alpha_icc_dpi(tmp_path: Path, rle: bool) -> None:
    a = _smooth(19, 25, 4, np.uint16)
    a[3:6, 4:9] = 65535  # runs for PackBits
    icc = _srgb_icc()
    data = _psd([a[..., i] for i in range(4)], 3, 16, rle=rle, resources={1039: icc, 1005: _resolution_resource(240)})
    (tmp_path / "x.psd").write_bytes(data)
    b, meta = read_image(tmp_path / "x.psd")
    assert b.dtype == np.uint16 and np.array_equal(a, b)
    assert (meta.layout, meta.bit_depth, meta.icc_profile, meta.dpi) == ("RGBA", 16, icc, (240.0, 240.0))


def test_psd_bitmap_float_indexed_lab(tmp_path: Path) -> None:
    bits = _noise((6, 2))  # 6 x 16 pixels, 1 = black
    (tmp_path / "bits.psd").write_bytes(_psd([bits], 0, 1))
    b, meta = read_image(tmp_path / "bits.psd")
    assert np.array_equal(b, np.where(np.unpackbits(bits, axis=1) == 1, 0, 255)) and meta.layout == "L"
    f = np.random.default_rng(0).random((5, 7)).astype(np.float32) * 2
    (tmp_path / "f.psd").write_bytes(_psd([f], 1, 32))
    b, meta = read_image(tmp_path / "f.psd")
    assert b.dtype == np.float32 and np.array_equal(b, f) and meta.bit_depth == 32
    pal = _noise((3, 256), seed=4)
    idx = _noise((5, 7), seed=5)
    transparent = {1047: struct.pack(">H", idx[0, 0])}
    (tmp_path / "p.psd").write_bytes(_psd([idx], 2, 8, palette=pal.tobytes(), resources=transparent))
    b, meta = read_image(tmp_path / "p.psd")
    assert meta.layout == "RGBA" and np.array_equal(b[..., :3], pal.T[idx])
    assert np.array_equal(b[..., 3], np.where(idx == idx[0, 0], 0, 255))
    lab8 = np.stack([_noise((6, 9), seed=6), 88 + _noise((6, 9), seed=7) // 3, 88 + _noise((6, 9), seed=8) // 3], -1)
    (tmp_path / "lab.psd").write_bytes(_psd([lab8[..., i] for i in range(3)], 9, 8, resources={1039: _srgb_icc()}))
    b, meta = read_image(tmp_path / "lab.psd")
    lab = np.stack([lab8[..., 0] / 255 * 100, lab8[..., 1] - 128.0, lab8[..., 2] - 128.0], axis=-1)
    assert _err(b, np.rint(_lab_to_srgb(lab) * 255))[0] <= 1 and meta.icc_profile is None


def test_psd_cmyk_with_and_without_icc(tmp_path: Path) -> None:
    ink = np.concatenate([_ink_corners(), _noise((1, 16, 4))], axis=0)
    stored = [255 - ink[..., i] for i in range(4)]  # Photoshop stores CMYK inverted (255 = no ink)
    (tmp_path / "n.psd").write_bytes(_psd(stored, 4, 8))
    with pytest.warns(RuntimeWarning, match="naive formula"):
        b, meta = read_image(tmp_path / "n.psd")
    naive = np.rint((255.0 - ink[..., :3]) * (255.0 - ink[..., 3:]) / 255.0)
    assert np.array_equal(b, naive) and meta.layout == "RGB"
    (tmp_path / "i.psd").write_bytes(_psd(stored, 4, 8, resources={1039: _cmyk_icc()}))
    b, meta = read_image(tmp_path / "i.psd")
    assert _err(b[:1], _corner_srgb())[0] <= 1 and meta.icc_profile is None


# --------------------------------------------------------------------------------------------
# PNM
# --------------------------------------------------------------------------------------------


def test_pnm_from_pillow(tmp_path: Path) -> None:
    cases = {"x.pbm": ("1", None), "x.pgm": ("L", None), "x.ppm": ("RGB", None), "x16.pgm": ("I;16", None)}
    for name, (mode, _) in cases.items():
        if mode == "1":
            a = np.where(_noise((9, 13)) > 127, 255, 0).astype(np.uint8)
            Image.fromarray(a).convert("1").save(tmp_path / name)
        elif mode == "I;16":
            a = _noise((9, 13), np.uint16)
            Image.fromarray(a).save(tmp_path / name)  # mode I;16
        else:
            a = _noise((9, 13, 3) if mode == "RGB" else (9, 13))
            Image.fromarray(a).save(tmp_path / name)
        b, meta = read_image(tmp_path / name)
        assert b.dtype == a.dtype and np.array_equal(a, b), name
        assert meta.format == "PNM" and meta.bit_depth == (16 if mode == "I;16" else 8)


def test_pnm_written_by_hand(tmp_path: Path) -> None:
    rgb16 = _noise((5, 7, 3), np.uint16)
    (tmp_path / "a.ppm").write_bytes(b"P6\n# 16-bit\n7 5\n65535\n" + rgb16.astype(">u2").tobytes())
    g10 = _noise((5, 7), np.uint16) >> 6
    (tmp_path / "b.pgm").write_bytes(b"P5 7 5 1023\n" + g10.astype(">u2").tobytes())
    g4 = _noise((5, 7)) >> 4
    (tmp_path / "c.pgm").write_bytes(b"P2\n7 5 # comment\n15\n" + " ".join(map(str, g4.ravel())).encode() + b"\n")
    c3 = _noise((2, 3, 3))
    (tmp_path / "d.ppm").write_bytes(b"P3 3 2 255\n" + "\n".join(map(str, c3.ravel())).encode())
    (tmp_path / "e.pbm").write_bytes(b"P1\n# x\n3 2\n010\n1 1 0\n")
    expect = {
        "a.ppm": rgb16,
        "b.pgm": _rescale(g10, 1023),
        "c.pgm": _rescale(g4, 15, 255),
        "d.ppm": c3,
        "e.pbm": np.array([[255, 0, 255], [0, 0, 255]], np.uint8),
    }
    for name, a in expect.items():
        b, _ = read_image(tmp_path / name)
        assert b.dtype == a.dtype and np.array_equal(a, b), name
    (tmp_path / "t.ppm").write_bytes(b"P6 7 5 255\n" + bytes(50))
    with pytest.raises(ImageReadError, match="truncated PNM data"):
        read_image(tmp_path / "t.ppm")


# --------------------------------------------------------------------------------------------
# TIFF variants
# --------------------------------------------------------------------------------------------


def test_tiff_palette_alpha_gray_alpha_rgba16(tmp_path: Path) -> None:
    idx = _noise((9, 12))
    pim = Image.frombytes("P", (12, 9), idx.tobytes())
    pim.putpalette(_noise((768,), seed=3).tobytes())
    pa = pim.convert("PA")
    pa.putalpha(Image.fromarray(_noise((9, 12), seed=4)))
    pa.save(tmp_path / "pa.tif")  # photometric palette + an extra (alpha) sample
    b, meta = read_image(tmp_path / "pa.tif")
    assert (meta.layout, meta.source_mode) == ("RGBA", "PALETTE") and np.array_equal(b, np.asarray(pa.convert("RGBA")))
    for dtype in (np.uint8, np.uint16):
        la = _noise((9, 12, 2), dtype)
        tifffile.imwrite(tmp_path / "la.tif", la, photometric="minisblack", extrasamples=["unassalpha"])
        b, meta = read_image(tmp_path / "la.tif")
        assert np.array_equal(b, la) and meta.layout == "LA"
    rgba = _noise((9, 12, 4), np.uint16)
    tifffile.imwrite(tmp_path / "rgba.tif", rgba, photometric="rgb", extrasamples=["unassalpha"])
    b, meta = read_image(tmp_path / "rgba.tif")
    assert np.array_equal(b, rgba) and (meta.layout, meta.bit_depth) == ("RGBA", 16)


@pytest.mark.parametrize("dtype", [np.uint8, np.uint16, np.float32])
def test_tiff_associated_alpha_becomes_straight(tmp_path: Path, dtype: type) -> None:
    rng = np.random.default_rng(0)
    if dtype == np.float32:
        straight = rng.random((10, 14, 4)).astype(np.float32)
        straight[0, :, 3] = 0.0
        stored = straight.copy()
        stored[..., :3] *= stored[..., 3:]
    else:
        top = int(np.iinfo(dtype).max)
        straight = _noise((10, 14, 4), dtype)
        straight[0, :, 3], straight[1, :, 3] = 0, top
        stored = straight.copy()  # premultiplied: round(c * a / max)
        stored[..., :3] = np.rint(straight[..., :3] * (straight[..., 3:] / top)).astype(dtype)
    tifffile.imwrite(tmp_path / "a.tif", stored, photometric="rgb", extrasamples=["assocalpha"])
    b, meta = read_image(tmp_path / "a.tif")
    assert meta.source_mode == "RGB+associated-alpha" and meta.layout == "RGBA" and b.dtype == dtype
    assert np.array_equal(b[..., 3], stored[..., 3]) and np.all(b[0, :, :3] == 0)  # alpha 0: colour 0
    ok = stored[..., 3] > 0
    if dtype == np.float32:
        assert np.allclose(b[..., :3][ok], straight[..., :3][ok], rtol=1e-5, atol=1e-6)
        return
    # back to the straight source within the rounding the premultiplication did: max / (2 alpha), plus 1
    alpha = stored[..., 3:].astype(np.float64)
    with np.errstate(divide="ignore"):
        bound = top / (2 * alpha) + 1
    assert np.all((np.abs(b[..., :3].astype(np.float64) - straight[..., :3]) <= bound)[ok])
    assert np.array_equal(b[1, :, :3], straight[1, :, :3])  # opaque: unchanged


def test_tiff_cielab_and_icclab(tmp_path: Path) -> None:
    lab = np.stack([np.linspace(0, 100, 24).reshape(4, 6), np.linspace(-60, 70, 24).reshape(4, 6),
                    np.linspace(50, -80, 24).reshape(4, 6)], axis=-1)
    lab[0, 0] = (100, 0, 0)
    lab[0, 1] = (0, 0, 0)
    # 8-bit CIELAB: L* 0..255, a*/b* signed bytes; white point absent: D50
    stored8 = np.stack([np.rint(lab[..., 0] * 255 / 100), np.rint(lab[..., 1]) % 256, np.rint(lab[..., 2]) % 256],
                       axis=-1).astype(np.uint8)
    tifffile.imwrite(tmp_path / "lab8.tif", stored8, photometric="cielab")
    b, meta = read_image(tmp_path / "lab8.tif")
    lab8 = np.stack([stored8[..., 0] / 255 * 100, stored8[..., 1].view(np.int8), stored8[..., 2].view(np.int8)], -1)
    assert (meta.layout, meta.source_mode, meta.icc_profile) == ("RGB", "CIELAB", None)
    assert _err(b, np.rint(_lab_to_srgb(lab8) * 255))[0] <= 1
    assert b[0, 0].tolist() == [255, 255, 255] and b[0, 1].tolist() == [0, 0, 0]
    # 16-bit CIELAB with a D65 WhitePoint tag: no adaptation
    stored16 = np.stack([np.rint(lab[..., 0] * 65535 / 100), np.rint(lab[..., 1] * 256) % 65536,
                         np.rint(lab[..., 2] * 256) % 65536], axis=-1).astype(np.uint16)
    d65 = (31271, 100000, 32902, 100000)
    tifffile.imwrite(tmp_path / "lab16.tif", stored16, photometric="cielab", extratags=[(318, "2I", 2, d65, True)])
    b, meta = read_image(tmp_path / "lab16.tif")
    lab16 = np.stack([stored16[..., 0] / 65535 * 100, stored16[..., 1].view(np.int16) / 256,
                      stored16[..., 2].view(np.int16) / 256], -1)
    assert b.dtype == np.uint16 and _err(b, np.rint(_lab_to_srgb(lab16, "D65") * 65535))[0] <= 40
    # 8-bit ICCLAB: a*/b* offset by 128, D50
    icclab = np.stack([stored8[..., 0], (lab8[..., 1] + 128).astype(np.uint8), (lab8[..., 2] + 128).astype(np.uint8)],
                      -1)
    tifffile.imwrite(tmp_path / "icclab.tif", icclab, photometric=9)
    b, meta = read_image(tmp_path / "icclab.tif")
    assert meta.source_mode == "ICCLAB" and _err(b, np.rint(_lab_to_srgb(lab8) * 255))[0] <= 1


def test_tiff_cmyk_with_and_without_icc(tmp_path: Path) -> None:
    ink = np.concatenate([_ink_corners(), _noise((3, 16, 4))], axis=0)
    tifffile.imwrite(tmp_path / "n.tif", ink, photometric="separated", planarconfig="contig")
    with pytest.warns(RuntimeWarning, match="naive formula"):
        b, meta = read_image(tmp_path / "n.tif")
    naive = np.rint((255.0 - ink[..., :3]) * (255.0 - ink[..., 3:]) / 255.0)
    assert np.array_equal(b, naive) and (meta.layout, meta.source_mode) == ("RGB", "CMYK")
    icc = _cmyk_icc()
    tifffile.imwrite(tmp_path / "i.tif", ink, photometric="separated", planarconfig="contig", iccprofile=icc)
    b, meta = read_image(tmp_path / "i.tif")
    assert _err(b[:1], _corner_srgb())[0] <= 1  # independently computed corners
    lcms = ImageCms.profileToProfile(Image.frombytes("CMYK", (16, 4), ink.tobytes()),
                                     ImageCms.ImageCmsProfile(io.BytesIO(icc)), ImageCms.createProfile("sRGB"),
                                     outputMode="RGB")
    assert np.array_equal(b, np.asarray(lcms)) and meta.icc_profile is None
    inka = np.concatenate([ink, _noise((4, 16, 1))], axis=-1)  # + alpha
    tifffile.imwrite(tmp_path / "a.tif", inka, photometric="separated", planarconfig="contig", iccprofile=icc,
                     extrasamples=["unassalpha"])
    b, meta = read_image(tmp_path / "a.tif")
    assert meta.layout == "RGBA" and np.array_equal(b[..., 3], inka[..., 4])
    pytest.importorskip("imagecodecs")  # 16-bit CMYK through the profile: imagecodecs' littleCMS
    tifffile.imwrite(tmp_path / "d.tif", ink.astype(np.uint16) * 257, photometric="separated", planarconfig="contig",
                     iccprofile=icc)
    b, meta = read_image(tmp_path / "d.tif")
    assert b.dtype == np.uint16 and _err(np.rint(b / 257), np.asarray(lcms))[0] <= 1


@pytest.mark.parametrize(
    ("compression", "kwargs", "tolerance"),
    [
        ("lzw", {}, 0),
        ("deflate", {}, 0),
        ("zstd", {}, 0),
        ("zstd", {"tile": (16, 16)}, 0),
        ("webp", {"compressionargs": {"lossless": True}}, 0),
        ("jpeg", {"compressionargs": {"level": 95}}, 8),  # measured: 5
    ],
)
def test_tiff_compressions(tmp_path: Path, compression: str, kwargs: dict, tolerance: int) -> None:
    pytest.importorskip("imagecodecs")
    a = _smooth(32, 48)
    tifffile.imwrite(tmp_path / "c.tif", a, photometric="rgb", compression=compression, **kwargs)
    b, meta = read_image(tmp_path / "c.tif")
    assert _err(b, a)[0] <= tolerance and meta.layout == "RGB"
    if compression in ("lzw", "zstd"):
        a16 = _noise((9, 12, 4), np.uint16)
        tifffile.imwrite(tmp_path / "d.tif", a16, photometric="rgb", compression=compression,
                         extrasamples=["unassalpha"])
        assert np.array_equal(read_image(tmp_path / "d.tif")[0], a16)


# --------------------------------------------------------------------------------------------
# missing decoders, caps, truncation
# --------------------------------------------------------------------------------------------


def test_missing_decoder_is_one_line_naming_the_extra(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("pillow_heif")
    imagecodecs = pytest.importorskip("imagecodecs")
    heic = write_image(tmp_path / "x.heic", _smooth(8, 8))
    (tmp_path / "x.jxl").write_bytes(imagecodecs.jpegxl_encode(_smooth(8, 8), lossless=True))
    j2k = write_image(tmp_path / "x.jp2", _smooth(8, 8, 3, np.uint16), quality=100)
    monkeypatch.setitem(sys.modules, "pillow_heif", None)
    monkeypatch.setitem(sys.modules, "imagecodecs", None)
    for path, package in ((heic, "pillow-heif"), (tmp_path / "x.jxl", "imagecodecs"), (j2k, "imagecodecs")):
        with pytest.raises(ImageReadError) as e:
            read_image(path)
        msg = str(e.value)
        assert "\n" not in msg and f"'{package}'" in msg and "pip install 'srkit[formats]'" in msg, msg
    with pytest.raises(ImageWriteError, match="pillow-heif.*srkit\\[formats\\]"):
        write_image(tmp_path / "y.heic", _smooth(8, 8))
    with pytest.raises(ImageWriteError, match="imagecodecs.*srkit\\[formats\\]"):
        write_image(tmp_path / "y.jp2", _smooth(8, 8, 3, np.uint16))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["x.heic", "x.jp2", "x.jxl"]


def test_tiff_compression_without_imagecodecs_names_the_extra(tmp_path: Path) -> None:
    import subprocess

    tifffile.imwrite(tmp_path / "z.tif", _noise((8, 8, 3), np.uint16), photometric="rgb", compression="zstd")
    code = ("import sys; sys.modules['imagecodecs'] = None\n"  # a fresh process: tifffile has cached no codec
            "from srkit.io import read_image\n"
            "try:\n    read_image(sys.argv[1])\nexcept Exception as e:\n    print(type(e).__name__, e)\n")
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path / "z.tif")], capture_output=True, text=True,
                         timeout=120).stdout.strip()
    assert out.startswith("ImageReadError cannot read") and "\n" not in out
    assert "ZSTD compression needs the optional package 'imagecodecs' (pip install 'srkit[formats]')" in out


def test_animated_avif_and_jxl_refused(tmp_path: Path) -> None:
    frames = [_smooth(16, 16), 255 - _smooth(16, 16)]
    ims = [Image.fromarray(f) for f in frames]
    ims[0].save(tmp_path / "a.avif", save_all=True, append_images=ims[1:], duration=100)
    with pytest.raises(ImageReadError, match="2 frames; srkit reads single images"):
        read_image(tmp_path / "a.avif")
    imagecodecs = pytest.importorskip("imagecodecs")
    (tmp_path / "a.jxl").write_bytes(imagecodecs.jpegxl_encode(np.stack(frames), lossless=True))
    with pytest.raises(ImageReadError, match="animated JPEG XL; srkit reads single images"):
        read_image(tmp_path / "a.jxl")


def _one_of_each(tmp_path: Path) -> list[Path]:
    a = _smooth(24, 32)
    paths = [write_image(tmp_path / "a.avif", a), write_image(tmp_path / "a.jp2", a)]
    Image.fromarray(a).save(tmp_path / "a.ppm")
    (tmp_path / "a.psd").write_bytes(_psd([a[..., i] for i in range(3)], 3, 8, rle=True))
    paths += [tmp_path / "a.ppm", tmp_path / "a.psd"]
    try:
        import imagecodecs
    except ImportError:
        return paths
    (tmp_path / "a.jxl").write_bytes(imagecodecs.jpegxl_encode(a, lossless=True))
    (tmp_path / "a.qoi").write_bytes(imagecodecs.qoi_encode(a))
    paths += [tmp_path / "a.jxl", tmp_path / "a.qoi"]
    try:
        paths.append(write_image(tmp_path / "a.heic", a))
    except ImageWriteError:
        pass
    return paths


def test_pixel_cap_and_truncation(tmp_path: Path) -> None:
    for p in _one_of_each(tmp_path):
        with pytest.raises(ImageTooLargeError, match="24x32|32x24"):
            read_image(p, max_pixels=100)
        data = p.read_bytes()
        for cut in (len(data) // 2, len(data) - 8):
            t = tmp_path / f"t{p.suffix}"
            t.write_bytes(data[:cut])
            with pytest.raises(ImageReadError) as e:
                read_image(t)
            assert "\n" not in str(e.value), p.name


# --------------------------------------------------------------------------------------------
# output names: read-only formats become PNG (TIFF for 16-bit or float)
# --------------------------------------------------------------------------------------------


def test_output_suffix(tmp_path: Path) -> None:
    a = _smooth(8, 8)
    (tmp_path / "a.psd").write_bytes(_psd([a[..., i] for i in range(3)], 3, 8))
    (tmp_path / "b.psd").write_bytes(_psd([a[..., 0].astype(np.uint16)], 1, 16))
    Image.fromarray(a[..., 0]).save(tmp_path / "c.pgm")
    (tmp_path / "d.pgm").write_bytes(b"P5 2 1 65535\n" + bytes(4))
    (tmp_path / "e.gif").write_bytes(b"GIF89a")
    (tmp_path / "f.jpeg").write_bytes(b"")  # a writable suffix is kept whatever the content
    write_image(tmp_path / "g.bin", a, format="jp2")  # an unknown suffix: the content's format
    expect = {"a.psd": ".png", "b.psd": ".tif", "c.pgm": ".png", "d.pgm": ".tif", "e.gif": ".png",
              "f.jpeg": ".jpeg", "g.bin": ".jp2"}
    for name, suffix in expect.items():
        assert output_suffix(tmp_path / name) == suffix, name


def test_cli_upscale_read_only_inputs_become_png(tmp_path: Path, srkit_cli) -> None:
    src = tmp_path / "in"
    src.mkdir()
    a = _smooth(10, 12)
    (src / "a.psd").write_bytes(_psd([a[..., i] for i in range(3)], 3, 8, rle=True))
    Image.fromarray(a).save(src / "b.ppm")
    g16 = _smooth(10, 12, 1, np.uint16)
    (src / "c.pgm").write_bytes(b"P5 12 10 65535\n" + g16.astype(">u2").tobytes())
    names = ["a.png", "b.png", "c.tif"]
    try:
        import imagecodecs

        (src / "d.qoi").write_bytes(imagecodecs.qoi_encode(a))
        names.append("d.png")
    except ImportError:
        pass
    out = tmp_path / "out"
    r = srkit_cli("upscale", src, "-o", out, "--model", "bicubic", "--scale", "2")
    assert r.returncode == 0, r.stderr
    assert sorted(p.name for p in out.iterdir()) == names
    b, meta = read_image(out / "a.png")
    assert b.shape == (20, 24, 3) and meta.format == "PNG"
    b, meta = read_image(out / "c.tif")
    assert b.dtype == np.uint16 and meta.format == "TIFF"
    r = srkit_cli("upscale", src / "a.psd", "-o", tmp_path / "o2", "--model", "bicubic", "--scale", "2",
                  "--format", "jp2")
    assert r.returncode == 0 and read_image(tmp_path / "o2" / "a.jp2")[1].format == "JPEG2000"
