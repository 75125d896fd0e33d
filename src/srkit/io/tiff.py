"""TIFF through tifffile (Pillow as the fallback decoder).

Owns reading TIFF (first page, thumbnails ignored, more pages refused; gray, gray + alpha (2 samples), RGB(A),
palette (+ alpha -> RGBA), CMYK (-> RGB through the ICC profile, else the naive formula with a warning), CIELAB
and ICCLAB (-> sRGB), JPEG-compressed YCbCr (-> RGB); 1/8/16-bit and float samples; associated (premultiplied)
alpha -> straight alpha; every compression tifffile + imagecodecs decode (JPEG, WebP, LZW, Deflate, ZSTD, ...);
the Orientation tag applied; ICC and DPI kept), the TIFF resolution tags as DPI (:func:`tiff_dpi`, also used by
the streaming writer) and writing TIFF (:func:`encode_tiff`: Deflate, contiguous samples, unassociated alpha, ICC
and DPI). The conversions are those of :mod:`srkit.io.convert`.
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import numpy as np

from srkit.errors import ImageTooLargeError, SrkitError
from srkit.io.checks import check_cap, one_line, read_error, refuse_frames
from srkit.io.convert import D50, FORMATS_EXTRA, cmyk_to_rgb, lab_to_srgb, unpremultiply
from srkit.io.meta import DEPTH_OF_DTYPE, LAYOUTS, ImageMeta, apply_orientation, clean_dpi
from srkit.io.pillow import from_pillow

__all__ = ["encode_tiff", "read_tiff", "tiff_dpi"]


def read_tiff(path: Path, cap: int | None) -> tuple[np.ndarray, ImageMeta]:
    """Read the first page of a TIFF with tifffile (Pillow where tifffile lacks the codec)."""
    import tifffile

    with tifffile.TiffFile(path) as tif:
        pages = tif.pages
        page = pages.first
        width, height = int(page.imagewidth), int(page.imagelength)
        check_cap(path, width, height, cap)
        frames = 1 + sum(
            1 for i in range(1, len(pages)) if not (int(getattr(pages[i], "subfiletype", 0)) & 1)
        )
        refuse_frames(path, frames)
        if int(getattr(page, "imagedepth", 1)) != 1:
            raise read_error(path, "volumetric TIFF (image depth > 1) is not a single image")
        size = tif.filehandle.size
        for off, count in zip(page.dataoffsets, page.databytecounts, strict=False):
            if off + count > size:
                raise read_error(
                    path, f"truncated TIFF data (a strip/tile needs bytes {off}..{off + count}, "
                    f"file has {size})"
                )
        array, layout, mode = _tiff_pixels(path, page)
        tags = page.tags
        icc_tag = tags.get(34675)
        icc = bytes(icc_tag.value) if icc_tag is not None and icc_tag.value else None
        dpi = tiff_dpi(tags)
        orient_tag = tags.get(274)
        orientation = int(orient_tag.value) if orient_tag is not None else 1
    if mode.startswith(("CMYK", "CIELAB", "ICCLAB")):
        icc = None  # converted to sRGB: the file's profile no longer describes the pixels
    array = apply_orientation(array, orientation)
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(array.dtype, 32)
    return array, ImageMeta(depth, layout, icc, None, dpi, "TIFF", mode)


def tiff_dpi(tags: Any) -> tuple[float, float] | None:
    """(x, y) dots per inch from the TIFF resolution tags of ``tags`` (a tifffile TiffTags), or None."""
    xt, yt, ut = tags.get(282), tags.get(283), tags.get(296)
    if xt is None or yt is None:
        return None
    unit = int(ut.value) if ut is not None else 2  # the TIFF default unit is the inch
    if unit not in (2, 3):
        return None

    def rational(v: Any) -> float:
        if isinstance(v, tuple | list):
            return v[0] / v[1] if len(v) == 2 and v[1] else 0.0
        return float(v)

    x, y = rational(xt.value), rational(yt.value)
    if unit == 3:
        x, y = x * 2.54, y * 2.54
    return clean_dpi((x, y))


_PHOTOMETRIC_NAMES = {0: "MINISWHITE", 1: "MINISBLACK", 2: "RGB", 3: "PALETTE", 5: "CMYK", 6: "YCBCR",
                      8: "CIELAB", 9: "ICCLAB"}
#: Colour samples per pixel of each photometric interpretation (one more is alpha).
_COLOUR_SAMPLES = {2: 3, 5: 4, 6: 3, 8: 3, 9: 3}


def _tiff_kind(path: Path, page: Any) -> tuple[int, int, int, int, str]:
    """(photometric, samples per pixel, colour samples, bits per sample, mode name); refuses what srkit cannot
    convert."""
    photometric = int(page.photometric)
    spp = int(page.samplesperpixel)
    bps = page.bitspersample
    bps = int(bps[0] if isinstance(bps, tuple | list) else bps)
    extras = tuple(int(e) for e in (page.extrasamples or ()))
    if photometric not in _PHOTOMETRIC_NAMES:
        raise read_error(
            path, f"unsupported TIFF photometric interpretation {photometric} "
            "(srkit reads gray, RGB, palette, CMYK, CIELAB and JPEG-compressed YCbCr TIFFs)"
        )
    mode = _PHOTOMETRIC_NAMES[photometric]
    base = _COLOUR_SAMPLES.get(photometric, 1)
    if spp not in (base, base + 1):
        raise read_error(path, f"unsupported TIFF: {spp} samples per pixel for {mode}")
    if photometric == 5 and int(getattr(page.tags.get(332), "value", 1)) != 1:
        raise read_error(path, "unsupported TIFF: separated (ink) samples that are not CMYK")
    if photometric == 6 and int(page.compression) not in (7, 34892):
        raise read_error(path, "unsupported TIFF: YCbCr samples without JPEG compression")
    if photometric in (5, 8, 9) and (bps not in (8, 16) or int(getattr(page, "sampleformat", 1)) not in (1, 2)):
        raise read_error(path, f"unsupported TIFF: {bps}-bit {mode} samples (srkit converts 8/16-bit integers)")
    if spp == base + 1 and extras[:1] == (1,):
        mode += "+associated-alpha"
    return photometric, spp, base, bps, mode


def _tiff_pixels(path: Path, page: Any) -> tuple[np.ndarray, str, str]:
    photometric, spp, base, bps, mode = _tiff_kind(path, page)
    try:
        raw = page.asarray()
    except Exception as exc:  # e.g. LZW/JPEG/CCITT compression needs the optional imagecodecs
        layout = LAYOUTS[spp] if photometric not in (3, 5, 8, 9) else ("RGBA" if spp == base + 1 else "RGB")
        return _tiff_pixels_pillow(path, page, exc, layout, mode, bps)
    shaped = tuple(int(s) for s in page.shaped)  # (separate samples, depth, H, W, contig samples)
    a = raw.reshape(shaped)[:, 0]  # (S1, H, W, S2); one of S1/S2 is 1
    a = np.moveaxis(a, 0, -1).reshape(shaped[2], shaped[3], spp)
    if photometric == 3:
        return _palette(path, page, a, bps), "RGBA" if spp == 2 else "RGB", mode
    if bps == 1:
        a = (a.astype(bool).astype(np.uint8)) * np.uint8(255)
    elif a.dtype in (np.dtype(np.float16), np.dtype(np.float64)):
        a = a.astype(np.float32)
    elif photometric in (8, 9) and a.dtype.kind == "i":
        a = a.view(a.dtype.str.replace("i", "u")).astype(a.dtype.newbyteorder("=").str.replace("i", "u"))
    elif a.dtype.newbyteorder("=") in DEPTH_OF_DTYPE:
        a = a.astype(a.dtype.newbyteorder("="), copy=False)
    else:
        raise read_error(
            path, f"unsupported TIFF sample format {a.dtype} ({bps} bits per sample); srkit "
            "reads uint8, uint16 and float TIFFs"
        )
    if bps not in (1, 8, 16, 32, 64) or (bps == 16 and a.dtype == np.uint8):
        raise read_error(path, f"unsupported TIFF: {bps} bits per sample")
    if mode.endswith("+associated-alpha"):  # premultiplied samples as stored -> straight alpha
        a = unpremultiply(a)
    if photometric == 0:  # min-is-white: invert the gray sample, keep alpha
        g = a[..., 0]
        a = a.copy()
        a[..., 0] = (1.0 - g) if a.dtype.kind == "f" else (np.iinfo(a.dtype).max - g)
    elif photometric == 5:
        icc_tag = page.tags.get(34675)
        icc = bytes(icc_tag.value) if icc_tag is not None and icc_tag.value else None
        a = np.concatenate([cmyk_to_rgb(path, a[..., :4], icc), a[..., 4:]], axis=-1)
    elif photometric in (8, 9):
        a = np.concatenate([_lab(page, a[..., :3], photometric), a[..., 3:]], axis=-1)
    layout = LAYOUTS[a.shape[2]]
    if a.shape[2] == 1:
        a = a[..., 0]
    return np.ascontiguousarray(a), layout, mode


def _palette(path: Path, page: Any, a: np.ndarray, bps: int) -> np.ndarray:
    """Palette indices (and an alpha sample) -> RGB (RGBA) through the colour map."""
    cmap = None if page.colormap is None else np.asarray(page.colormap)
    if cmap is None or cmap.ndim != 2 or cmap.shape[0] != 3:
        raise read_error(path, "palette TIFF without a valid colour map")
    table = cmap.T.astype(np.uint16)
    if np.all(table % 257 == 0):
        table = (table // 257).astype(np.uint8)
    elif bps <= 8 and np.all(table % 256 == 0):  # 8-bit colours written as v << 8 (Pillow, older libtiff)
        table = (table >> 8).astype(np.uint8)
    idx = a[..., 0].astype(np.intp)
    if idx.max(initial=0) >= table.shape[0]:
        raise read_error(path, "palette TIFF index outside its colour map")
    rgb = table[idx]
    if a.shape[2] == 1:
        return rgb
    top = (1 << bps) - 1
    alpha = a[..., 1].astype(np.uint32)
    full = int(np.iinfo(rgb.dtype).max)
    alpha_out = ((np.minimum(alpha, top) * full + top // 2) // top).astype(rgb.dtype)
    return np.concatenate([rgb, alpha_out[..., None]], axis=-1)


def _lab(page: Any, a: np.ndarray, photometric: int) -> np.ndarray:
    """CIELAB (8: a*, b* signed) or ICCLAB (9: a*, b* offset by 128) samples -> sRGB of the same depth."""
    deep = a.dtype == np.uint16
    f = a.astype(np.float64)
    if photometric == 8:  # L* 0..max -> 0..100; a*, b* two's complement, 8 bits (or 16 bits / 256)
        half, span = (32768.0, 65536.0) if deep else (128.0, 256.0)
        ab = np.where(f[..., 1:] >= half, f[..., 1:] - span, f[..., 1:]) / (256.0 if deep else 1.0)
        light = f[..., 0] * 100.0 / (65535.0 if deep else 255.0)
        white = _white_point(page)
    else:  # ICC L*a*b* (v2 encoding): L* 0..255 / 0..65280 -> 0..100; a*, b* offset 128 (32768)
        light = f[..., 0] * 100.0 / (65280.0 if deep else 255.0)
        ab = f[..., 1:] / (256.0 if deep else 1.0) - 128.0
        white = D50
    lab = np.concatenate([light[..., None], ab], axis=-1)
    return lab_to_srgb(lab, a.dtype, white)


def _white_point(page: Any) -> tuple[float, float]:
    """The WhitePoint tag (318) as xy chromaticity; D50 when absent (libtiff's and Adobe's default)."""
    tag = page.tags.get(318)
    if tag is None:
        return D50
    v = tuple(tag.value)
    try:
        if len(v) == 4:
            x, y = v[0] / v[1], v[2] / v[3]
        else:
            x, y = float(v[0]), float(v[1])
    except (ZeroDivisionError, TypeError, ValueError, IndexError):
        return D50
    return (x, y) if 0 < x < 1 and 0 < y < 1 else D50


def _tiff_pixels_pillow(
    path: Path, page: Any, exc: Exception, layout: str, mode: str, bps: int
) -> tuple[np.ndarray, str, str]:
    """Decode a TIFF page that tifffile could not decode with Pillow (libtiff), where Pillow
    keeps the samples exact: 1/8-bit data, 16-bit gray and 32-bit float gray."""
    sample_format = int(getattr(page, "sampleformat", 1))
    dtype = {1: np.uint8, 8: np.uint8, 16: np.uint16, 32: np.float32}.get(bps)
    ok = bps in (1, 8) or (layout == "L" and (bps, sample_format) in ((16, 1), (32, 3)))
    ok = ok and not mode.startswith(("CIELAB", "ICCLAB"))  # Pillow's LAB mode is not srkit's conversion
    tifffile_cause = f"{type(exc).__name__}: {one_line(exc)}"
    if "imagecodecs" in tifffile_cause or isinstance(exc, ImportError):
        name = getattr(page.compression, "name", page.compression)
        tifffile_cause += (f"; {name} compression needs the optional package 'imagecodecs' "
                           f"(pip install '{FORMATS_EXTRA}')")
    if not ok or dtype is None:
        raise read_error(path, f"cannot decode TIFF data ({tifffile_cause})")
    from PIL import Image, TiffImagePlugin

    try:
        with open(path, "rb") as fh, TiffImagePlugin.TiffImageFile(fh) as im:
            im.load()
            if im.mode == "F":
                array = np.array(im, dtype=np.float32)
            else:
                array, _, _ = from_pillow(path, im)
    except SrkitError:
        raise
    except Image.DecompressionBombError as bomb:
        raise ImageTooLargeError(f"cannot read '{path}': {one_line(bomb)}") from bomb
    except Exception as pil_exc:
        raise read_error(
            path, f"cannot decode TIFF data (tifffile: {tifffile_cause}; Pillow: "
            f"{type(pil_exc).__name__}: {one_line(pil_exc)})"
        ) from pil_exc
    want = (int(page.imagelength), int(page.imagewidth)) + ((len(layout),) if layout != "L" else ())
    if array.shape != want or array.dtype != dtype:
        raise read_error(
            path, f"cannot decode TIFF data exactly ({tifffile_cause}; Pillow gave "
            f"{array.dtype} {array.shape} instead of {np.dtype(dtype)} {want})"
        )
    return np.ascontiguousarray(array), layout, mode


def encode_tiff(
    fh: IO[bytes],
    arr: np.ndarray,
    layout: str,
    icc: bytes | None,
    dpi: tuple[float, float] | None,
) -> None:
    """Write ``arr`` to ``fh`` as a Deflate-compressed TIFF with its ICC profile and DPI."""
    import tifffile

    kwargs: dict[str, Any] = {
        "photometric": "rgb" if layout in ("RGB", "RGBA") else "minisblack",
        "planarconfig": "contig" if layout != "L" else None,
        "extrasamples": ("unassalpha",) if layout.endswith("A") else None,
        "compression": "zlib",
        "metadata": None,
    }
    if icc:
        kwargs["iccprofile"] = icc
    if dpi:
        kwargs["resolution"] = (float(dpi[0]), float(dpi[1]))
        kwargs["resolutionunit"] = "INCH"
    tifffile.imwrite(fh, arr, **kwargs)
