"""JPEG, WebP, BMP and GIF through Pillow, and Pillow images as srkit arrays.

Owns reading those formats (header-only open with the pixel cap checked first, Pillow's plugin classes used
directly so that srkit's cap replaces Pillow's decompression-bomb check), turning a loaded Pillow image into an
array and layout (:func:`from_pillow`, also used by the PNG and TIFF readers), and writing every 8-bit
Pillow-encoded format (:func:`encode_pillow`: 8-bit PNG, JPEG, WebP, BMP) with its ICC, EXIF and DPI.
"""

from __future__ import annotations

import struct
from pathlib import Path
from typing import IO, Any

import numpy as np

from srkit.errors import ImageTooLargeError
from srkit.io.checks import check_cap, one_line, read_error, refuse_frames
from srkit.io.convert import cmyk_to_rgb, unpremultiply
from srkit.io.meta import EXIF_PREFIX, ImageMeta, clean_dpi, exif_tiff_block, normalize_exif, orient

__all__ = ["encode_pillow", "from_pillow", "read_pillow"]


def _pillow_class(fmt: str) -> Any:
    if fmt == "JPEG":
        from PIL import JpegImagePlugin

        return JpegImagePlugin.JpegImageFile
    if fmt == "WEBP":
        from PIL import WebPImagePlugin

        return WebPImagePlugin.WebPImageFile
    if fmt == "BMP":
        from PIL import BmpImagePlugin

        return BmpImagePlugin.BmpImageFile
    from PIL import GifImagePlugin

    return GifImagePlugin.GifImageFile


def read_pillow(path: Path, fmt: str, cap: int | None) -> tuple[np.ndarray, ImageMeta]:
    """Read a JPEG, WebP, BMP or GIF through Pillow's plugin class for ``fmt``."""
    from PIL import Image

    if fmt == "WEBP":  # Pillow's WebP plugin allocates the canvas when it opens the file
        with open(path, "rb") as fh:
            head = fh.read(30)
        size = _webp_size(head)
        if size is not None:
            check_cap(path, *size, cap)
        declared, actual = struct.unpack_from("<I", head, 4)[0] + 8, path.stat().st_size
        if actual < declared:
            raise read_error(
                path,
                f"truncated WebP data (RIFF header declares {declared} bytes, file has {actual})",
            )
    # The plugin class is instantiated directly rather than through Image.open: it parses the
    # header only (no pixels), and Image.open's decompression-bomb check is skipped so that
    # srkit's cap decides. The WebP and GIF plugins still check Pillow's own limit
    # (2 * Image.MAX_IMAGE_PIXELS) themselves; that error is mapped to ImageTooLargeError.
    try:
        with open(path, "rb") as fh, _pillow_class(fmt)(fh) as im:
            check_cap(path, im.width, im.height, cap)
            refuse_frames(path, int(getattr(im, "n_frames", 1)))
            im.load()
            array, layout, mode = from_pillow(path, im)
            icc = im.info.get("icc_profile") or None
            exif = normalize_exif(im.info.get("exif")) if fmt != "GIF" else None
            dpi = clean_dpi(im.info.get("dpi"))
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            f"cannot read '{path}': over Pillow's decompression-bomb limit "
            f"(PIL.Image.MAX_IMAGE_PIXELS): {one_line(exc)}"
        ) from exc
    if mode == "CMYK":
        icc = None  # the CMYK profile does not describe the converted RGB pixels
    array, exif = orient(array, exif)
    meta = ImageMeta(8 if array.dtype == np.uint8 else 16, layout, icc, exif, dpi, fmt, mode)
    return array, meta


def _webp_size(head: bytes) -> tuple[int, int] | None:
    """(width, height) from the first 30 bytes of a WebP file, or None if not recognised."""
    if len(head) < 30:
        return None
    chunk = head[12:16]
    if chunk == b"VP8X":
        w = int.from_bytes(head[24:27], "little") + 1
        h = int.from_bytes(head[27:30], "little") + 1
        return w, h
    if chunk == b"VP8 " and head[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack_from("<HH", head, 26)
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and head[20] == 0x2F:
        (bits,) = struct.unpack_from("<I", head, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    return None


def from_pillow(path: Path, im: Any) -> tuple[np.ndarray, str, str]:
    """Pixels of a loaded Pillow image as (array, layout, source mode)."""
    mode = im.mode
    transparent = im.info.get("transparency") is not None
    if mode in ("1", "L") and transparent:
        im = im.convert("LA")
    elif mode == "1":
        im = im.convert("L")
    elif mode == "RGB" and transparent:
        im = im.convert("RGBA")
    elif mode in ("P", "PA"):
        im = im.convert("RGBA" if transparent or mode == "PA" else "RGB")
    elif mode == "CMYK":  # through the file's ICC profile, else the naive formula (srkit.io.convert)
        return cmyk_to_rgb(path, np.asarray(im, dtype=np.uint8), im.info.get("icc_profile") or None), "RGB", mode
    elif mode in ("YCbCr", "RGBX"):
        im = im.convert("RGB")
    elif mode in ("I;16", "I;16L", "I;16B"):
        array = np.array(im, dtype=np.uint16)
        return array, "L", mode
    elif mode in ("RGBa", "La"):  # associated (premultiplied) alpha -> straight alpha
        return unpremultiply(np.array(im, dtype=np.uint8)), mode.upper(), mode
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        raise read_error(path, f"unsupported Pillow mode {mode!r}")
    array = np.array(im, dtype=np.uint8)
    return array, {"L": "L", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA"}[im.mode], mode


def encode_pillow(
    fh: IO[bytes],
    arr: np.ndarray,
    layout: str,
    fmt: str,
    icc: bytes | None,
    exif: bytes | None,
    dpi: tuple[float, float] | None,
    quality: int,
) -> None:
    """Write ``arr`` to ``fh`` with Pillow as ``fmt`` (8-bit PNG, JPEG, WebP, BMP)."""
    from PIL import Image

    im = Image.fromarray(arr)
    params: dict[str, Any] = {}
    if fmt in ("PNG", "JPEG", "WEBP") and icc:
        params["icc_profile"] = icc
    if fmt in ("PNG", "JPEG", "WEBP") and exif:
        block = exif_tiff_block(exif)
        params["exif"] = EXIF_PREFIX + block if fmt == "JPEG" else block
    if fmt in ("PNG", "JPEG", "BMP") and dpi:
        params["dpi"] = tuple(dpi)
    if fmt == "JPEG":
        params.update(quality=quality, subsampling=0 if quality >= 90 else 2)
    elif fmt == "WEBP":
        if layout in ("L", "LA"):
            im = im.convert("RGBA" if layout == "LA" else "RGB")
        if quality == 100:
            params.update(lossless=True, exact=True, quality=100)
        else:
            params.update(quality=quality)
    im.save(fh, format=fmt, **params)
