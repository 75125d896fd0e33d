"""Faithful image reading and writing.

This module owns the two entry points and their dispatch: :func:`read_image` recognises the format
(:mod:`srkit.io.formats`) and hands the file to :mod:`srkit.io.png`, :mod:`srkit.io.tiff`,
:mod:`srkit.io.pillow`, :mod:`srkit.io.heif`, :mod:`srkit.io.jpeg2000`, :mod:`srkit.io.psd`, :mod:`srkit.io.pnm`
or :mod:`srkit.io.codecs`; :func:`write_image` checks the array against what the format stores and has those
modules encode it through :func:`srkit.io.atomic.atomic_write`. :class:`ImageMeta`, :func:`to_float`,
:func:`from_float` and EXIF orientation live in :mod:`srkit.io.meta`; the pixel cap and the one-line errors in
:mod:`srkit.io.checks`. The conventions and policies below hold for all of :mod:`srkit.io`.

Conventions
-----------
* Arrays are numpy, channels last, channel order always RGB(A) (OpenCV's BGR(A) is converted):

  ========  =============  ==============
  layout    shape          meaning
  ========  =============  ==============
  ``L``     ``(H, W)``     gray
  ``LA``    ``(H, W, 2)``  gray + alpha
  ``RGB``   ``(H, W, 3)``  colour
  ``RGBA``  ``(H, W, 4)``  colour + alpha
  ========  =============  ==============

* dtype encodes the bit depth: ``uint8`` (8-bit, 0..255), ``uint16`` (16-bit, 0..65535) and
  ``float32`` (32-bit float TIFF, PSD and JPEG XL, values as stored, usually but not necessarily 0..1).
  Other depths are scaled to the nearest of these: n-bit samples (10/12-bit HEIF, AVIF, JPEG 2000 and JPEG XL,
  PNM with any maxval) become ``round(v * 255 / (2^n - 1))`` (n < 8) or ``round(v * 65535 / (2^n - 1))``.
* Alpha is always straight: associated (premultiplied) alpha (TIFF ``ExtraSamples`` 1, JPEG 2000 ``cdef``
  type 2, HEIF) is converted with ``c = round(c * max / alpha)`` (colour 0 where alpha is 0), and
  ``ImageMeta.source_mode`` says so (e.g. ``"RGB+associated-alpha"``).
* :func:`to_float` / :func:`from_float` convert between the stored integers and float32 in [0, 1].

Reading (:func:`read_image`)
----------------------------
* The format is recognised from the file's first bytes, never its name: PNG, JPEG, WebP, BMP, TIFF,
  HEIF/HEIC, AVIF and JPEG 2000, and (read only) GIF, PSD/PSB, PNM (PBM/PGM/PPM), QOI and JPEG XL. Anything
  else raises :class:`~srkit.errors.ImageReadError`.
* Decoders: Pillow (JPEG, WebP, BMP, GIF, AVIF, QOI, 8-bit JPEG 2000, the PackBits of PSD), tifffile (TIFF),
  OpenCV (16-bit PNG), srkit itself (PNG chunks, PNM, PSD), and the optional ``srkit[formats]`` extra:
  ``pillow-heif`` (HEIF/HEIC), ``imagecodecs`` (JPEG XL; JPEG 2000 and AVIF deeper than Pillow decodes; the
  TIFF compressions tifffile needs it for: JPEG, WebP, LZW, ZSTD, ...). A file whose decoder is not installed
  raises one line naming the package and ``pip install 'srkit[formats]'`` (a 10/12-bit AVIF without
  imagecodecs is read as 8 bits, with a warning). Details in each module's docstring.
* Colour conversions (:mod:`srkit.io.convert`): CMYK (TIFF, JPEG, PSD) -> RGB through the file's ICC profile
  with littleCMS (Pillow's ImageCms, perceptual intent, to sRGB), else ``R = (1 - C)(1 - K)`` with a
  ``RuntimeWarning``; CIELAB/ICCLAB (TIFF) and Lab (PSD) -> sRGB (Bradford-adapted from the file's white, D50
  by default, to D65); the converted pixels are sRGB, so the source ICC profile is dropped. Palette + alpha ->
  RGBA; 2-sample TIFF -> LA; 1-bit -> 8-bit gray (0/255).
* PNG is parsed chunk by chunk by srkit itself (size, bit depth, animation, iCCP, eXIf, pHYs,
  tRNS, truncation); pixels of 8-bit and smaller PNGs are decoded by Pillow, 16-bit PNGs by
  OpenCV (Pillow silently reduces 16-bit colour PNGs to 8 bits). Palette images become RGB, or
  RGBA when they carry transparency (tRNS); a gray/RGB colour key (tRNS) becomes an alpha
  channel; 1/2/4-bit gray is scaled to 8 bits.
* JPEG: EXIF orientation is applied (same result as ``PIL.ImageOps.exif_transpose``), and the
  orientation tag in the kept EXIF is reset to 1 in place (every other EXIF byte is kept).
  CMYK/YCCK JPEGs are converted to RGB the way Pillow's ``convert("RGB")`` does (no colour
  management unless the file has a CMYK ICC profile: see the conversions above). Orientation from EXIF (PNG, WebP,
  JPEG, AVIF, PSD) or from the TIFF Orientation tag is applied for every format; HEIF and JPEG XL decoders
  apply their own (the EXIF tag is reset to 1).
* TIFF is read with tifffile: 8/16-bit unsigned, 32-bit float (16-bit float is widened,
  64-bit float narrowed to float32), 1-bit bilevel (becomes 0/255 uint8), gray, gray+alpha, RGB,
  RGBA, palette (becomes RGB, or RGBA with an alpha sample), CMYK, CIELAB/ICCLAB and JPEG-compressed
  YCbCr (become RGB). Other photometric interpretations and sample formats are refused. Compressions
  tifffile cannot decode without the optional ``imagecodecs`` package (LZW, JPEG, WebP, ZSTD, CCITT, ...)
  are decoded by Pillow instead where Pillow keeps the samples exact (1/8-bit data, 16-bit gray, float32
  gray); otherwise the error names the package to install.
* Pixel cap: the width and height are read from the header *before* any pixel is decoded;
  more than ``max_pixels`` pixels raises :class:`~srkit.errors.ImageTooLargeError`. The default
  cap is :data:`DEFAULT_MAX_PIXELS` (200 million) or the environment variable
  ``SRKIT_MAX_PIXELS`` (a positive integer, or ``none``/``off``/``0`` for no cap). srkit's cap
  replaces Pillow's decompression-bomb check: the Pillow plugin classes are instantiated
  directly instead of through ``Image.open`` (no global Pillow state is changed). Only the WebP
  and GIF plugins still apply Pillow's limit (``2 * PIL.Image.MAX_IMAGE_PIXELS``, about 179
  million pixels by default) themselves; that error is raised as ``ImageTooLargeError`` too.
* Animated and multi-page files are refused, not silently cut to their first frame:
  an animated PNG (APNG), animated WebP or GIF with more than one frame, or a TIFF with more
  than one page (reduced-resolution thumbnail pages are ignored) raises
  ``ImageReadError("... has N frames; srkit reads single images")``; so are animated AVIF and JPEG XL.
  The primary image of a JPEG with appended MPO images is read as a plain JPEG, and the primary
  image of a HEIF file (not its thumbnails, depth or gain maps, or the other items of a collection).
* Truncated and corrupt files raise (Pillow's ``ImageFile.LOAD_TRUNCATED_IMAGES`` must be left
  at its default ``False``; srkit never changes it). Every read error is one line:
  ``cannot read '<path>': <cause>``.

Metadata (:class:`ImageMeta`)
-----------------------------
``icc_profile`` (raw ICC bytes), ``exif`` (``b"Exif\\0\\0"`` + TIFF-structured EXIF, the same
layout as ``PIL.Image.Exif().tobytes()``) and ``dpi`` are read and written back as far as the
format can hold them:

=========  ====  ====  =====================================================
format     ICC   EXIF  DPI
=========  ====  ====  =====================================================
PNG        yes   yes   yes (pHYs, stored as integer pixels per metre)
JPEG       yes   yes   yes (JFIF density, stored as integer dots per inch)
WebP       yes   yes   no: WebP has no resolution field (dropped on write)
BMP        no    no    yes (integer pixels per metre); ICC/EXIF dropped on write
TIFF       yes   no    yes (XResolution/YResolution, unit inch); EXIF dropped on write
HEIF       yes   yes   no: no resolution field (dropped on write)
AVIF       yes   yes   no: no resolution field (dropped on write)
JPEG 2000  yes   no    yes (``res``/``resc`` box); a bare ``.j2k`` codestream keeps none; EXIF dropped
GIF        no    no    no (read only)
PSD        yes   yes   yes (resources 1039, 1058, 1005; read only)
PNM, QOI   no    no    no (read only)
JPEG XL    no    yes   no (read only; its colour profile is not returned by imagecodecs)
=========  ====  ====  =====================================================

ICC profiles of CMYK and Lab files are not kept: those pixels are converted to sRGB.

Text chunks, XMP, IPTC, gamma/chromaticity chunks and thumbnails are not kept.

Writing (:func:`write_image`)
-----------------------------
* Format from the ``format`` argument, else from the suffix (``.png .jpg .jpeg .webp .bmp
  .tif .tiff .heic .heif .avif .jp2 .j2k``). Bit depth and layout come from the array; only ``icc_profile``,
  ``exif`` and ``dpi`` are taken from ``meta``.
* Supported: PNG 8/16-bit, any layout (8-bit via Pillow, zlib level 6; 16-bit via OpenCV, or
  srkit's own encoder for gray+alpha, zlib level 3, with the iCCP/pHYs/eXIf chunks inserted by
  srkit); JPEG 8-bit L/RGB; WebP 8-bit (L is stored as RGB and LA as RGBA since WebP has no
  gray mode; ``quality=100`` means lossless and exact); BMP 8-bit L/RGB; TIFF 8/16-bit and
  float32, any layout (Deflate compressed, photometric MINISBLACK or RGB, unassociated alpha); HEIF 8/16-bit
  (16-bit stored at 10 bits; ``quality=100`` lossless, exact for 8-bit) and AVIF 8-bit (never exactly
  lossless), any layout, at most :data:`~srkit.io.formats.HEIF_MAX_SIDE` (16384) pixels a side (a larger image
  is refused: write PNG or TIFF); JPEG 2000 8/16-bit, any layout (``quality=100`` lossless and exact, else a
  PSNR target of ``20 + 0.3 * quality`` dB). HEIF needs ``pillow-heif`` and 16-bit colour JPEG 2000
  ``imagecodecs`` (``srkit[formats]``). Any other combination
  (float to PNG, 16-bit to JPEG/WebP/BMP, alpha to JPEG/BMP, ...) raises
  :class:`~srkit.errors.ImageWriteError` before anything is created.
* Writes are atomic: the data goes to ``.<name>.<random>.tmp`` in the target's directory, is
  fsync'ed and then moved over the target with ``os.replace``. On failure the temporary file is
  removed and an existing target is left untouched.
"""

from __future__ import annotations

import os
import struct
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

import numpy as np

from srkit.errors import ShapeError, SrkitError
from srkit.io.atomic import atomic_write
from srkit.io.checks import DEFAULT_MAX_PIXELS, is_int, one_line, read_error, resolve_cap, write_error
from srkit.io.codecs import jxl_header, read_jxl, read_qoi
from srkit.io.formats import FORMAT_NAMES, HEIF_MAX_SIDE, SNIFF_BYTES, WRITABLE, sniff, write_format
from srkit.io.heif import encode_heif, read_avif, read_heif
from srkit.io.jpeg2000 import encode_jpeg2000, read_jpeg2000
from srkit.io.meta import DEPTH_OF_DTYPE, LAYOUTS, ImageMeta, from_float, to_float
from srkit.io.pillow import encode_pillow, read_pillow
from srkit.io.png import encode_png16, read_png
from srkit.io.pnm import pnm_header, read_pnm
from srkit.io.psd import psd_depth, read_psd
from srkit.io.tiff import encode_tiff, read_tiff

# The names srkit.io.images exported before it was split into modules (to_float/from_float: re-exported).
__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageMeta",
    "from_float",
    "output_suffix",
    "read_image",
    "to_float",
    "write_image",
]


#: Format -> reader, for the formats not read through :func:`srkit.io.pillow.read_pillow`.
_READERS: dict[str, Callable[[Path, int | None], tuple[np.ndarray, ImageMeta]]] = {
    "PNG": read_png,
    "TIFF": read_tiff,
    "HEIF": read_heif,
    "AVIF": read_avif,
    "JPEG2000": read_jpeg2000,
    "JXL": read_jxl,
    "QOI": read_qoi,
    "PSD": read_psd,
    "PNM": read_pnm,
}


def _describe(exc: BaseException, fmt: str) -> str:
    msg = one_line(exc) or type(exc).__name__
    if "truncated" in msg.lower() or isinstance(exc, EOFError):
        return f"truncated {fmt} data ({msg})"
    return f"invalid {fmt} data ({type(exc).__name__}: {msg})"


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def read_image(
    path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, ImageMeta]:
    """Read one still image exactly as stored.

    Args:
        path: file to read (format recognised from its content: PNG, JPEG, WebP, BMP, TIFF,
            GIF, HEIF/HEIC, AVIF, JPEG 2000, JPEG XL, QOI, PSD/PSB, PBM/PGM/PPM).
        max_pixels: refuse images with more than this many pixels (width * height), checked
            from the header before decoding. ``None`` disables the cap. The default is
            :data:`DEFAULT_MAX_PIXELS` unless the environment variable ``SRKIT_MAX_PIXELS`` is
            set (a positive integer, or ``none``/``off``/``0`` to disable).

    Returns:
        ``(array, meta)``: a C-contiguous, writable array of shape (H, W) for L, (H, W, 2) for
        LA, (H, W, 3) for RGB or (H, W, 4) for RGBA, channel order RGB(A); dtype ``uint8``
        (0..255), ``uint16`` (0..65535) or ``float32`` (float TIFF, values as stored), with
        EXIF/TIFF orientation already applied; and its :class:`ImageMeta`.

    Raises:
        ImageTooLargeError: the header claims more than ``max_pixels`` pixels.
        ImageReadError: missing file, directory, empty, truncated or corrupt file, unsupported
            format/mode, animated or multi-page file. The one-line message names the file and
            the cause.
        ConfigError: ``max_pixels`` or ``$SRKIT_MAX_PIXELS`` is not a positive integer.
    """
    p = Path(os.fspath(path))
    cap = resolve_cap(max_pixels)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise read_error(p, "no such file") from None
    except PermissionError:
        raise read_error(p, "permission denied") from None
    except OSError as exc:
        raise read_error(p, exc.strerror or str(exc)) from None
    if p.is_dir():
        raise read_error(p, "is a directory, not an image file")
    if not p.is_file():
        raise read_error(p, "not a regular file")
    if st.st_size == 0:
        raise read_error(p, "empty file (0 bytes)")
    try:
        with open(p, "rb") as fh:
            head = fh.read(SNIFF_BYTES)
    except OSError as exc:
        raise read_error(p, exc.strerror or str(exc)) from None
    fmt = sniff(head)
    if fmt is None:
        raise read_error(
            p,
            f"unsupported or unrecognised format (not PNG, JPEG, WebP, BMP, TIFF, GIF, HEIF, AVIF, JPEG 2000, "
            f"JPEG XL, QOI, PSD or PNM; file starts with {head[:8]!r})",
        )
    try:
        reader = _READERS.get(fmt)
        if reader is not None:
            array, meta = reader(p, cap)
        else:
            array, meta = read_pillow(p, fmt, cap)
    except SrkitError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # decoder errors of every kind become ImageReadError
        raise read_error(p, _describe(exc, fmt)) from exc
    if not array.flags.c_contiguous or not array.flags.writeable:
        array = np.array(array, order="C")
    return array, meta


#: The suffix each writable format gets when srkit names a file for it.
_USUAL_SUFFIX = {"PNG": ".png", "JPEG": ".jpg", "WEBP": ".webp", "BMP": ".bmp", "TIFF": ".tif", "HEIF": ".heic",
                 "AVIF": ".avif", "JPEG2000": ".jp2"}


def output_suffix(path: str | os.PathLike[str]) -> str:
    """The suffix `srkit upscale` gives the output of the image ``path`` when no format is asked for.

    ``path``'s own suffix when it names a format srkit writes (``.png``, ``.jpg``, ``.heic``, ...). Otherwise the
    file's content decides (its first bytes and, for PSD, PNM and JPEG XL, its header): a writable format gets its
    usual suffix; a read-only one (GIF, PSD, PNM, QOI, JPEG XL) ``.png``, or ``.tif`` when its samples are 16-bit
    or float (``.png`` when the file cannot be read: reading it will say why).
    """
    p = Path(os.fspath(path))
    if p.suffix.lower().lstrip(".") in FORMAT_NAMES:
        return p.suffix
    try:
        with open(p, "rb") as fh:
            head = fh.read(1 << 16)
    except OSError:
        return ".png"
    fmt = sniff(head[:SNIFF_BYTES])
    if fmt in _USUAL_SUFFIX:
        return _USUAL_SUFFIX[fmt]
    deep = False
    try:
        if fmt == "PSD":
            deep = psd_depth(head) > 8
        elif fmt == "PNM":
            deep = pnm_header(head)[3] > 255
        elif fmt == "JXL":
            jxl = jxl_header(head)
            deep = jxl.is_float or jxl.bits > 8
    except (ValueError, IndexError, struct.error):
        deep = False
    return ".tif" if deep else ".png"


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def write_image(
    path: str | os.PathLike[str],
    array: np.ndarray,
    meta: ImageMeta | None = None,
    *,
    format: str | None = None,
    quality: int = 95,
) -> Path:
    """Write an image atomically, keeping what the format can hold of ``meta``.

    Args:
        path: target file; its directory must exist. An existing file is replaced atomically.
        array: (H, W) L, (H, W, 1) L, (H, W, 2) LA, (H, W, 3) RGB or (H, W, 4) RGBA, channel
            order RGB(A); dtype ``uint8`` (8-bit), ``uint16`` (16-bit) or ``float32`` (float
            TIFF only). The array decides bit depth and layout.
        meta: source of ``icc_profile``, ``exif`` and ``dpi`` (other fields are ignored).
            Metadata a format cannot store is dropped (see the module docstring).
        format: ``"png"``, ``"jpeg"``/``"jpg"``, ``"webp"``, ``"bmp"``, ``"tiff"``/``"tif"``,
            ``"heic"``/``"heif"``, ``"avif"``, ``"jp2"`` (JP2 file) or ``"j2k"`` (bare codestream), any
            case; default: from the suffix of ``path``.
        quality: 1..100 for JPEG (4:4:4 chroma at 90 and above), WebP (100 = lossless, exact),
            HEIF (100 = lossless; 4:4:4 chroma at 90 and above), AVIF (4:4:4 chroma at 90 and above)
            and JPEG 2000 (100 = lossless, else a PSNR target of 20 + 0.3 * quality dB); ignored by
            the other formats.

    Returns:
        ``Path(path)``.

    Raises:
        ShapeError: ``array`` is not an image array (wrong shape, empty, or a dtype other than
            uint8/uint16/float32).
        ImageWriteError: unknown format, a depth/layout the format cannot store (float to PNG,
            16-bit to JPEG/WebP/BMP, alpha to JPEG/BMP, ...), invalid quality, missing parent
            directory, or an encoder/OS failure. Nothing is left at ``path`` (nor any
            temporary file) unless the write succeeded; an existing file stays intact.
    """
    target = Path(os.fspath(path))
    fmt = write_format(target, format)
    arr, layout, depth = _image_array(array)
    depths, layouts = WRITABLE[fmt]
    if depth not in depths:
        kind = "float32" if depth == 32 else f"{depth}-bit"
        hint = {
            32: "convert with from_float(array, 8 or 16), or write TIFF",
            16: "reduce to 8 bits, or write PNG or TIFF",
        }.get(depth, "")
        raise write_error(target, f"{kind} data cannot be stored as {fmt}; {hint}")
    if layout not in layouts:
        raise write_error(
            target, f"{fmt} cannot store layout {layout} (drop the alpha channel, e.g. "
            "array[..., :-1], or write PNG, WebP or TIFF)"
        )
    if not is_int(quality) or not 1 <= quality <= 100:
        raise write_error(target, f"quality must be an integer in 1..100, got {quality!r}")
    if fmt in ("HEIF", "AVIF") and max(arr.shape[:2]) > HEIF_MAX_SIDE:
        raise write_error(
            target, f"{arr.shape[1]} x {arr.shape[0]} is over {fmt}'s {HEIF_MAX_SIDE} px side limit; "
            "write PNG or TIFF instead"
        )
    parent = target.parent
    if not parent.is_dir():
        raise write_error(target, f"directory '{parent}' does not exist")
    if target.is_dir():
        raise write_error(target, "is a directory")
    if meta is not None and not isinstance(meta, ImageMeta):
        raise TypeError(f"meta must be an ImageMeta or None, got {type(meta).__name__}")
    icc = meta.icc_profile if meta is not None else None
    exif = meta.exif if meta is not None else None
    dpi = meta.dpi if meta is not None else None
    codestream_only = (str(format) if format is not None else target.suffix).lower().lstrip(".") == "j2k"

    def encode(fh: IO[bytes]) -> None:
        if fmt == "PNG" and depth == 16:
            fh.write(encode_png16(arr, layout, icc, exif, dpi))
        elif fmt == "TIFF":
            encode_tiff(fh, arr, layout, icc, dpi)
        elif fmt in ("HEIF", "AVIF"):
            encode_heif(fh, target, arr, layout, fmt, icc, exif, int(quality))
        elif fmt == "JPEG2000":
            encode_jpeg2000(fh, target, arr, layout, icc, dpi, int(quality), codestream_only)
        else:
            encode_pillow(fh, arr, layout, fmt, icc, exif, dpi, int(quality))

    atomic_write(target, encode)
    return target


def _image_array(array: Any) -> tuple[np.ndarray, str, int]:
    a = np.asarray(array)
    if a.dtype.kind in "uf":
        a = a.astype(a.dtype.newbyteorder("="), copy=False)
    depth = DEPTH_OF_DTYPE.get(a.dtype)
    if depth is None:
        hint = ""
        if a.dtype.kind == "f":
            hint = " (use from_float(array, 32) or array.astype(np.float32))"
        raise ShapeError(f"image arrays must be uint8, uint16 or float32, got {a.dtype}{hint}")
    if a.ndim == 3 and a.shape[2] == 1:
        a = a[..., 0]
    if a.ndim == 2:
        layout = "L"
    elif a.ndim == 3 and a.shape[2] in (2, 3, 4):
        layout = LAYOUTS[a.shape[2]]
    else:
        raise ShapeError(f"image arrays must be (H, W) or (H, W, 1..4), got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ShapeError(f"image array is empty (shape {a.shape})")
    return np.ascontiguousarray(a), layout, depth
