"""TIFF through tifffile (Pillow as the fallback decoder).

Owns reading TIFF (first page, thumbnails ignored, more pages refused; gray, RGB, palette, 1/8/16-bit and float
samples, associated-alpha flagged; the Orientation tag applied; ICC and DPI kept), the TIFF resolution tags as
DPI (:func:`tiff_dpi`, also used by the streaming writer) and writing TIFF (:func:`encode_tiff`: Deflate,
contiguous samples, unassociated alpha, ICC and DPI).
"""

from __future__ import annotations

from pathlib import Path
from typing import IO, Any

import numpy as np

from srkit.errors import ImageTooLargeError, SrkitError
from srkit.io.checks import check_cap, one_line, read_error, refuse_frames
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


def _tiff_pixels(path: Path, page: Any) -> tuple[np.ndarray, str, str]:
    photometric = int(page.photometric)
    spp = int(page.samplesperpixel)
    bps = page.bitspersample
    bps = int(bps[0] if isinstance(bps, tuple | list) else bps)
    extras = tuple(int(e) for e in (page.extrasamples or ()))
    names = {0: "MINISWHITE", 1: "MINISBLACK", 2: "RGB", 3: "PALETTE"}
    if photometric not in names:
        raise read_error(
            path, f"unsupported TIFF photometric interpretation {photometric} "
            "(srkit reads gray, RGB and palette TIFFs)"
        )
    mode = names[photometric]
    base = 3 if photometric == 2 else 1
    if spp not in (base, base + 1) or (photometric == 3 and spp != 1):
        raise read_error(path, f"unsupported TIFF: {spp} samples per pixel for {mode}")
    if spp == base + 1 and extras[:1] == (1,):
        mode += "+associated-alpha"
    try:
        raw = page.asarray()
    except Exception as exc:  # e.g. LZW/JPEG/CCITT compression needs the optional imagecodecs
        layout = LAYOUTS[spp] if photometric != 3 else "RGB"
        return _tiff_pixels_pillow(path, page, exc, layout, mode, bps)
    shaped = tuple(int(s) for s in page.shaped)  # (separate samples, depth, H, W, contig samples)
    a = raw.reshape(shaped)[:, 0]  # (S1, H, W, S2); one of S1/S2 is 1
    a = np.moveaxis(a, 0, -1).reshape(shaped[2], shaped[3], spp)
    if photometric == 3:
        cmap = None if page.colormap is None else np.asarray(page.colormap)
        if cmap is None or cmap.ndim != 2 or cmap.shape[0] != 3:
            raise read_error(path, "palette TIFF without a valid colour map")
        table = cmap.T.astype(np.uint16)
        if np.all(table % 257 == 0):
            table = (table // 257).astype(np.uint8)
        idx = a[..., 0].astype(np.intp)
        if idx.max(initial=0) >= table.shape[0]:
            raise read_error(path, "palette TIFF index outside its colour map")
        return table[idx], "RGB", mode
    if bps == 1:
        a = (a.astype(bool).astype(np.uint8)) * np.uint8(255)
    elif a.dtype in (np.dtype(np.float16), np.dtype(np.float64)):
        a = a.astype(np.float32)
    elif a.dtype.newbyteorder("=") in DEPTH_OF_DTYPE:
        a = a.astype(a.dtype.newbyteorder("="), copy=False)
    else:
        raise read_error(
            path, f"unsupported TIFF sample format {a.dtype} ({bps} bits per sample); srkit "
            "reads uint8, uint16 and float TIFFs"
        )
    if bps not in (1, 8, 16, 32, 64) or (bps == 16 and a.dtype == np.uint8):
        raise read_error(path, f"unsupported TIFF: {bps} bits per sample")
    if photometric == 0:  # min-is-white: invert the gray sample, keep alpha
        g = a[..., 0]
        a = a.copy()
        a[..., 0] = (1.0 - g) if a.dtype.kind == "f" else (np.iinfo(a.dtype).max - g)
    layout = LAYOUTS[spp]
    if spp == 1:
        a = a[..., 0]
    return np.ascontiguousarray(a), layout, mode


def _tiff_pixels_pillow(
    path: Path, page: Any, exc: Exception, layout: str, mode: str, bps: int
) -> tuple[np.ndarray, str, str]:
    """Decode a TIFF page that tifffile could not decode with Pillow (libtiff), where Pillow
    keeps the samples exact: 1/8-bit data, 16-bit gray and 32-bit float gray."""
    sample_format = int(getattr(page, "sampleformat", 1))
    dtype = {1: np.uint8, 8: np.uint8, 16: np.uint16, 32: np.float32}.get(bps)
    ok = bps in (1, 8) or (layout == "L" and (bps, sample_format) in ((16, 1), (32, 3)))
    tifffile_cause = f"{type(exc).__name__}: {one_line(exc)}"
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
