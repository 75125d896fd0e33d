"""Faithful image reading and writing.

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
  ``float32`` (32-bit float TIFF, values as stored, usually but not necessarily 0..1).
  Alpha is straight (not premultiplied), except for TIFFs whose alpha is marked "associated":
  those are returned as stored and ``ImageMeta.source_mode`` says so.
* :func:`to_float` / :func:`from_float` convert between the stored integers and float32 in [0, 1].

Reading (:func:`read_image`)
----------------------------
* The format is recognised from the file's first bytes, not its name: PNG, JPEG, WebP, BMP,
  TIFF and (read-only) GIF. Anything else raises :class:`~srkit.errors.ImageReadError`.
* PNG is parsed chunk by chunk by srkit itself (size, bit depth, animation, iCCP, eXIf, pHYs,
  tRNS, truncation); pixels of 8-bit and smaller PNGs are decoded by Pillow, 16-bit PNGs by
  OpenCV (Pillow silently reduces 16-bit colour PNGs to 8 bits). Palette images become RGB, or
  RGBA when they carry transparency (tRNS); a gray/RGB colour key (tRNS) becomes an alpha
  channel; 1/2/4-bit gray is scaled to 8 bits.
* JPEG: EXIF orientation is applied (same result as ``PIL.ImageOps.exif_transpose``), and the
  orientation tag in the kept EXIF is reset to 1 in place (every other EXIF byte is kept).
  CMYK/YCCK JPEGs are converted to RGB the way Pillow's ``convert("RGB")`` does (no colour
  management: the CMYK ICC profile is dropped). Orientation from EXIF (PNG, WebP, JPEG) or from
  the TIFF Orientation tag is applied for every format.
* TIFF is read with tifffile: 8/16-bit unsigned, 32-bit float (16-bit float is widened,
  64-bit float narrowed to float32), 1-bit bilevel (becomes 0/255 uint8), gray, gray+alpha, RGB,
  RGBA and palette (becomes RGB). Other photometric interpretations (CMYK, YCbCr, Lab, ...)
  and sample formats are refused. Compressions tifffile cannot decode without the optional
  ``imagecodecs`` package (LZW, JPEG, CCITT, ...) are decoded by Pillow instead where Pillow
  keeps the samples exact (1/8-bit data, 16-bit gray, float32 gray); otherwise the error says
  what is missing.
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
  ``ImageReadError("... has N frames; srkit reads single images")``. The primary image of a
  JPEG with appended MPO images is read as a plain JPEG.
* Truncated and corrupt files raise (Pillow's ``ImageFile.LOAD_TRUNCATED_IMAGES`` must be left
  at its default ``False``; srkit never changes it). Every read error is one line:
  ``cannot read '<path>': <cause>``.

Metadata (:class:`ImageMeta`)
-----------------------------
``icc_profile`` (raw ICC bytes), ``exif`` (``b"Exif\\0\\0"`` + TIFF-structured EXIF, the same
layout as ``PIL.Image.Exif().tobytes()``) and ``dpi`` are read and written back as far as the
format can hold them:

======  ====  ====  =====================================================
format  ICC   EXIF  DPI
======  ====  ====  =====================================================
PNG     yes   yes   yes (pHYs, stored as integer pixels per metre)
JPEG    yes   yes   yes (JFIF density, stored as integer dots per inch)
WebP    yes   yes   no: WebP has no resolution field (dropped on write)
BMP     no    no    yes (integer pixels per metre); ICC/EXIF dropped on write
TIFF    yes   no    yes (XResolution/YResolution, unit inch); EXIF dropped on write
GIF     no    no    no (read only)
======  ====  ====  =====================================================

Text chunks, XMP, IPTC, gamma/chromaticity chunks and thumbnails are not kept.

Writing (:func:`write_image`)
-----------------------------
* Format from the ``format`` argument, else from the suffix (``.png .jpg .jpeg .webp .bmp
  .tif .tiff``). Bit depth and layout come from the array; only ``icc_profile``, ``exif`` and
  ``dpi`` are taken from ``meta``.
* Supported: PNG 8/16-bit, any layout (8-bit via Pillow, zlib level 6; 16-bit via OpenCV, or
  srkit's own encoder for gray+alpha, zlib level 3, with the iCCP/pHYs/eXIf chunks inserted by
  srkit); JPEG 8-bit L/RGB; WebP 8-bit (L is stored as RGB and LA as RGBA since WebP has no
  gray mode; ``quality=100`` means lossless and exact); BMP 8-bit L/RGB; TIFF 8/16-bit and
  float32, any layout (Deflate compressed, photometric MINISBLACK or RGB, unassociated alpha). Any other combination
  (float to PNG, 16-bit to JPEG/WebP/BMP, alpha to JPEG/BMP, ...) raises
  :class:`~srkit.errors.ImageWriteError` before anything is created.
* Writes are atomic: the data goes to ``.<name>.<random>.tmp`` in the target's directory, is
  fsync'ed and then moved over the target with ``os.replace``. On failure the temporary file is
  removed and an existing target is left untouched.
"""

from __future__ import annotations

import contextlib
import io
import os
import secrets
import struct
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import numpy as np

from srkit.errors import (
    ConfigError,
    ImageReadError,
    ImageTooLargeError,
    ImageWriteError,
    ShapeError,
    SrkitError,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageMeta",
    "from_float",
    "read_image",
    "to_float",
    "write_image",
]


class _DefaultMaxPixels(int):
    """The default pixel cap; ``read_image`` uses ``$SRKIT_MAX_PIXELS`` instead when it is set."""

    __slots__ = ()


#: Default cap on width * height for :func:`read_image` (overridable with ``$SRKIT_MAX_PIXELS``).
DEFAULT_MAX_PIXELS: int = _DefaultMaxPixels(200_000_000)

_ENV_MAX_PIXELS = "SRKIT_MAX_PIXELS"
_LAYOUTS = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
_DEPTH_OF_DTYPE = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16, np.dtype(np.float32): 32}
_MAX_ICC_BYTES = 64 << 20  # refuse iCCP chunks that inflate to more than this
_PNG_BLOCK_BYTES = 4 << 20  # srkit's PNG encoder filters about this many bytes of rows at a time
_PNG16_ZLIB_LEVEL = 3  # 16-bit PNGs: ~1-2 % larger than level 6 and several times faster


# --------------------------------------------------------------------------------------------
# ImageMeta
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ImageMeta:
    """What :func:`read_image` learnt about a file besides its pixels.

    Attributes:
        bit_depth: 8, 16 or 32 (32 = float32 TIFF); matches the array's dtype.
        layout: ``"L"``, ``"LA"``, ``"RGB"`` or ``"RGBA"``; matches the array's channels.
        icc_profile: raw ICC profile bytes, or None.
        exif: ``b"Exif\\0\\0"`` followed by the TIFF-structured EXIF block (the layout of
            ``PIL.Image.Exif().tobytes()``), with the orientation tag reset to 1 once the
            orientation has been applied to the pixels; or None.
        dpi: (horizontal, vertical) dots per inch, or None when the file has none.
        format: ``"PNG"``, ``"JPEG"``, ``"WEBP"``, ``"BMP"``, ``"TIFF"`` or ``"GIF"``; None for
            metadata not read from a file.
        source_mode: how the file stored the pixels before srkit normalised them (a Pillow
            mode such as ``"P"``, ``"CMYK"`` or ``"1"``, ``"RGB;16"`` for 16-bit PNG, the
            photometric interpretation for TIFF); informational only.

    Only ``icc_profile``, ``exif`` and ``dpi`` are used by :func:`write_image`.
    Raises ValueError on an invalid bit depth, layout or dpi.
    """

    bit_depth: int
    layout: str
    icc_profile: bytes | None = None
    exif: bytes | None = None
    dpi: tuple[float, float] | None = None
    format: str | None = None
    source_mode: str | None = None

    def __post_init__(self) -> None:
        if self.bit_depth not in (8, 16, 32):
            raise ValueError(f"ImageMeta.bit_depth must be 8, 16 or 32, got {self.bit_depth!r}")
        if self.layout not in _LAYOUTS.values():
            raise ValueError(f"ImageMeta.layout must be L, LA, RGB or RGBA, got {self.layout!r}")
        for name in ("icc_profile", "exif"):
            value = getattr(self, name)
            if value is not None:
                if not isinstance(value, bytes | bytearray | memoryview):
                    raise ValueError(
                        f"ImageMeta.{name} must be bytes or None, got {type(value).__name__}"
                    )
                object.__setattr__(self, name, bytes(value) or None)
        if self.dpi is not None:
            try:
                dpi = tuple(float(v) for v in self.dpi)
            except (TypeError, ValueError):
                dpi = ()
            if len(dpi) != 2 or not all(np.isfinite(v) and v > 0 for v in dpi):
                raise ValueError(
                    f"ImageMeta.dpi must be two positive numbers or None, got {self.dpi!r}"
                )
            object.__setattr__(self, "dpi", dpi)

    @property
    def has_alpha(self) -> bool:
        """True for ``LA`` and ``RGBA``."""
        return self.layout.endswith("A")

    @property
    def channels(self) -> int:
        """Number of channels: 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA)."""
        return len(self.layout)


# --------------------------------------------------------------------------------------------
# float conversion
# --------------------------------------------------------------------------------------------


def to_float(array: np.ndarray) -> np.ndarray:
    """Convert image samples to float32 in [0, 1].

    Args:
        array: any shape; ``uint8`` (divided by 255), ``uint16`` (divided by 65535) or a float
            dtype (returned as float32 unchanged in value, no clipping: float TIFFs may hold
            values outside [0, 1]).

    Returns:
        A new float32 array of the same shape (a float32 input is returned as is, not copied).

    Raises:
        ShapeError: for any other dtype (bool, signed or wider integers, complex, object).
    """
    a = np.asarray(array)
    if a.dtype == np.uint8:
        return a.astype(np.float32) / np.float32(255.0)
    if a.dtype == np.uint16:
        return a.astype(np.float32) / np.float32(65535.0)
    if a.dtype.kind == "f":
        return a.astype(np.float32, copy=False)
    raise ShapeError(f"to_float expects uint8, uint16 or float samples, got dtype {a.dtype}")


def from_float(array: np.ndarray, bit_depth: int) -> np.ndarray:
    """Convert float samples in [0, 1] to the dtype of ``bit_depth``.

    Args:
        array: float array of any shape (nominal range [0, 1]).
        bit_depth: 8 -> ``uint8`` 0..255, 16 -> ``uint16`` 0..65535: values are clipped to
            [0, 1], NaN becomes 0, then scaled and rounded with ``np.rint`` (ties to even).
            32 -> ``float32`` unchanged in value (no clipping).

    Returns:
        A new array of the same shape (for 32, a float32 input is returned as is).

    Raises:
        ShapeError: if ``array`` is not floating point.
        ValueError: if ``bit_depth`` is not 8, 16 or 32.
    """
    a = np.asarray(array)
    if a.dtype.kind != "f":
        raise ShapeError(f"from_float expects a float array, got dtype {a.dtype}")
    if bit_depth == 32:
        return a.astype(np.float32, copy=False)
    if bit_depth not in (8, 16):
        raise ValueError(f"bit_depth must be 8, 16 or 32, got {bit_depth!r}")
    if a.dtype.itemsize < 4:
        a = a.astype(np.float32)
    scale, dtype = (255.0, np.uint8) if bit_depth == 8 else (65535.0, np.uint16)
    out = np.clip(a, 0.0, 1.0)  # new array; NaN stays NaN here
    np.nan_to_num(out, copy=False, nan=0.0)
    out *= scale
    np.rint(out, out=out)
    return out.astype(dtype)


# --------------------------------------------------------------------------------------------
# small helpers
# --------------------------------------------------------------------------------------------


def _one_line(text: object) -> str:
    return " ".join(str(text).split())


def _read_error(path: Path, cause: str) -> ImageReadError:
    return ImageReadError(f"cannot read '{path}': {_one_line(cause)}")


def _write_error(path: Path, cause: str) -> ImageWriteError:
    return ImageWriteError(f"cannot write '{path}': {_one_line(cause)}")


def _describe(exc: BaseException, fmt: str) -> str:
    msg = _one_line(exc) or type(exc).__name__
    if "truncated" in msg.lower() or isinstance(exc, EOFError):
        return f"truncated {fmt} data ({msg})"
    return f"invalid {fmt} data ({type(exc).__name__}: {msg})"


def _resolve_cap(max_pixels: int | None) -> int | None:
    if isinstance(max_pixels, _DefaultMaxPixels):
        env = os.environ.get(_ENV_MAX_PIXELS, "").strip()
        if not env:
            return int(max_pixels)
        if env.lower() in ("none", "off", "0"):
            return None
        try:
            value = int(env)
        except ValueError:
            value = 0
        if value <= 0:
            raise ConfigError(
                f"{_ENV_MAX_PIXELS} must be a positive integer or 'none', got {env!r}"
            )
        return value
    if max_pixels is None:
        return None
    if not _is_int(max_pixels) or max_pixels <= 0:
        raise ConfigError(f"max_pixels must be a positive integer or None, got {max_pixels!r}")
    return int(max_pixels)


def _is_int(value: object) -> bool:
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def _check_cap(path: Path, width: int, height: int, cap: int | None) -> None:
    if width <= 0 or height <= 0:
        raise _read_error(path, f"invalid image size {width}x{height} in header")
    if cap is not None and width * height > cap:
        raise ImageTooLargeError(
            f"cannot read '{path}': image is {width}x{height} = {width * height:,} pixels, "
            f"over the cap of {cap:,} pixels (pass max_pixels=None or set {_ENV_MAX_PIXELS} "
            "to allow it)"
        )


def _refuse_frames(path: Path, frames: int) -> None:
    if frames > 1:
        raise _read_error(path, f"file has {frames} frames; srkit reads single images")


# --- EXIF -----------------------------------------------------------------------------------

_EXIF_PREFIX = b"Exif\x00\x00"
_TIFF_HEADERS = (b"II*\x00", b"MM\x00*")


def _normalize_exif(raw: bytes | None) -> bytes | None:
    """EXIF as ``b"Exif\\0\\0"`` + TIFF block (adds the prefix when a file stores it bare)."""
    if not raw:
        return None
    raw = bytes(raw)
    if raw[:4] in _TIFF_HEADERS:
        return _EXIF_PREFIX + raw
    return raw


def _exif_tiff_block(exif: bytes) -> bytes:
    return exif[6:] if exif.startswith(_EXIF_PREFIX) else exif


def _exif_orientation_slot(tiff: bytes) -> tuple[int, str, int] | None:
    """(offset of the value, byte-order char, TIFF type) of IFD0's Orientation tag, if any."""
    if len(tiff) < 8 or tiff[:4] not in _TIFF_HEADERS:
        return None
    e = "<" if tiff[:2] == b"II" else ">"
    (ifd,) = struct.unpack_from(e + "I", tiff, 4)
    if ifd + 2 > len(tiff):
        return None
    (count,) = struct.unpack_from(e + "H", tiff, ifd)
    for i in range(count):
        entry = ifd + 2 + 12 * i
        if entry + 12 > len(tiff):
            return None
        tag, typ, n = struct.unpack_from(e + "HHI", tiff, entry)
        if tag == 0x0112:
            return (entry + 8, e, typ) if typ in (3, 4) and n >= 1 else None
    return None


def _exif_orientation(exif: bytes | None) -> int:
    """The EXIF orientation (1..8), 1 when absent or invalid."""
    if not exif:
        return 1
    tiff = _exif_tiff_block(exif)
    slot = _exif_orientation_slot(tiff)
    if slot is None:
        return 1
    offset, e, typ = slot
    (value,) = struct.unpack_from(e + ("H" if typ == 3 else "I"), tiff, offset)
    return value if 1 <= value <= 8 else 1


def _exif_reset_orientation(exif: bytes) -> bytes:
    """``exif`` with the IFD0 orientation value overwritten by 1; all other bytes unchanged."""
    prefix = exif[:6] if exif.startswith(_EXIF_PREFIX) else b""
    tiff = bytearray(_exif_tiff_block(exif))
    slot = _exif_orientation_slot(bytes(tiff))
    if slot is None:
        return exif
    offset, e, typ = slot
    struct.pack_into(e + ("H" if typ == 3 else "I"), tiff, offset, 1)
    return prefix + bytes(tiff)


def _apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
    """Transform (H, W, ...) pixels like ``PIL.ImageOps.exif_transpose`` for ``orientation``."""
    if orientation == 2:
        array = array[:, ::-1]
    elif orientation == 3:
        array = array[::-1, ::-1]
    elif orientation == 4:
        array = array[::-1]
    elif orientation == 5:
        array = array.swapaxes(0, 1)
    elif orientation == 6:
        array = array[::-1].swapaxes(0, 1)  # 90 degrees clockwise
    elif orientation == 7:
        array = array[::-1, ::-1].swapaxes(0, 1)
    elif orientation == 8:
        array = array[:, ::-1].swapaxes(0, 1)  # 90 degrees counter-clockwise
    else:
        return array
    return np.ascontiguousarray(array)


def _orient(array: np.ndarray, exif: bytes | None) -> tuple[np.ndarray, bytes | None]:
    orientation = _exif_orientation(exif)
    if orientation == 1 or exif is None:
        return array, exif
    return _apply_orientation(array, orientation), _exif_reset_orientation(exif)


def _clean_dpi(dpi: Any) -> tuple[float, float] | None:
    try:
        x, y = (float(v) for v in dpi)
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(x) and np.isfinite(y) and x > 0 and y > 0):
        return None
    return (x, y)


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------

_PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def _sniff(head: bytes) -> str | None:
    if head.startswith(_PNG_SIGNATURE):
        return "PNG"
    if head.startswith(b"\xff\xd8\xff"):
        return "JPEG"
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return "WEBP"
    if head[:4] in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return "TIFF"
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return "GIF"
    if head[:2] == b"BM":
        return "BMP"
    return None


def read_image(
    path: str | os.PathLike[str], *, max_pixels: int | None = DEFAULT_MAX_PIXELS
) -> tuple[np.ndarray, ImageMeta]:
    """Read one still image exactly as stored.

    Args:
        path: file to read (format recognised from its content: PNG, JPEG, WebP, BMP, TIFF,
            GIF).
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
    cap = _resolve_cap(max_pixels)
    try:
        st = p.stat()
    except FileNotFoundError:
        raise _read_error(p, "no such file") from None
    except PermissionError:
        raise _read_error(p, "permission denied") from None
    except OSError as exc:
        raise _read_error(p, exc.strerror or str(exc)) from None
    if p.is_dir():
        raise _read_error(p, "is a directory, not an image file")
    if not p.is_file():
        raise _read_error(p, "not a regular file")
    if st.st_size == 0:
        raise _read_error(p, "empty file (0 bytes)")
    try:
        with open(p, "rb") as fh:
            head = fh.read(16)
    except OSError as exc:
        raise _read_error(p, exc.strerror or str(exc)) from None
    fmt = _sniff(head)
    if fmt is None:
        raise _read_error(
            p,
            f"unsupported or unrecognised format (not PNG, JPEG, WebP, BMP, TIFF or GIF; "
            f"file starts with {head[:8]!r})",
        )
    try:
        if fmt == "PNG":
            array, meta = _read_png(p, cap)
        elif fmt == "TIFF":
            array, meta = _read_tiff(p, cap)
        else:
            array, meta = _read_pillow(p, fmt, cap)
    except SrkitError:
        raise
    except MemoryError:
        raise
    except Exception as exc:  # decoder errors of every kind become ImageReadError
        raise _read_error(p, _describe(exc, fmt)) from exc
    if not array.flags.c_contiguous or not array.flags.writeable:
        array = np.array(array, order="C")
    return array, meta


# --- PNG ------------------------------------------------------------------------------------


@dataclass
class _PngInfo:
    width: int
    height: int
    bit_depth: int
    color_type: int
    frames: int = 1
    icc: bytes | None = None
    exif: bytes | None = None
    dpi: tuple[float, float] | None = None
    trns: bytes | None = None


_PNG_DEPTHS = {0: (1, 2, 4, 8, 16), 2: (8, 16), 3: (1, 2, 4, 8), 4: (8, 16), 6: (8, 16)}


def _parse_ihdr(path: Path, head: bytes) -> _PngInfo:
    if len(head) < 33 or head[12:16] != b"IHDR" or struct.unpack(">I", head[8:12])[0] != 13:
        raise _read_error(path, "truncated or invalid PNG data (missing or short IHDR chunk)")
    w, h, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", head[16:29])
    if ctype not in _PNG_DEPTHS or depth not in _PNG_DEPTHS[ctype] or comp or filt or interlace > 1:
        raise _read_error(
            path, f"invalid PNG header (bit depth {depth}, colour type {ctype}, "
            f"compression {comp}, filter {filt}, interlace {interlace})"
        )
    return _PngInfo(width=w, height=h, bit_depth=depth, color_type=ctype)


def _scan_png(path: Path, data: bytes, info: _PngInfo) -> None:
    """Walk the chunks after IHDR: collect metadata, detect truncation and animation."""
    pos, n = 33, len(data)
    seen_idat = False
    while True:
        if pos + 8 > n:
            raise _read_error(
                path, f"truncated PNG data (file ends at byte {n} before the IEND chunk)"
            )
        length, ctype = struct.unpack_from(">I4s", data, pos)
        end = pos + 8 + length + 4
        if end > n:
            name = ctype.decode("latin-1", "replace")
            raise _read_error(
                path, f"truncated PNG data ({name!r} chunk at byte {pos} needs {length} bytes, "
                f"file ends at byte {n})"
            )
        if ctype == b"IEND":
            break
        if ctype == b"IDAT":
            seen_idat = True
            pos = end
            continue
        body = data[pos + 8 : pos + 8 + length]
        if ctype == b"IHDR":
            raise _read_error(path, "invalid PNG data (second IHDR chunk)")
        if ctype == b"acTL" and length >= 4:
            info.frames = struct.unpack_from(">I", body)[0]
        elif ctype == b"iCCP" and info.icc is None:
            info.icc = _inflate_iccp(path, body)
        elif ctype == b"eXIf" and info.exif is None:
            info.exif = _normalize_exif(body)
        elif ctype == b"pHYs" and length == 9:
            ppx, ppy, unit = struct.unpack(">IIB", body)
            if unit == 1 and ppx and ppy:
                info.dpi = (ppx * 0.0254, ppy * 0.0254)
        elif ctype == b"tRNS":
            info.trns = body
        pos = end
    if not seen_idat:
        raise _read_error(path, "invalid PNG data (no IDAT chunk)")


def _inflate_iccp(path: Path, body: bytes) -> bytes | None:
    sep = body.find(b"\x00")
    if sep < 0 or sep + 2 > len(body) or body[sep + 1] != 0:
        raise _read_error(path, "invalid PNG data (malformed iCCP chunk)")
    d = zlib.decompressobj()
    try:
        profile = d.decompress(body[sep + 2 :], _MAX_ICC_BYTES)
    except zlib.error as exc:
        raise _read_error(path, f"invalid PNG data (corrupt iCCP chunk: {exc})") from None
    if d.unconsumed_tail:
        raise _read_error(
            path, f"invalid PNG data (iCCP profile larger than {_MAX_ICC_BYTES} bytes)"
        )
    return profile or None


def _read_png(path: Path, cap: int | None) -> tuple[np.ndarray, ImageMeta]:
    with open(path, "rb") as fh:
        head = fh.read(33)
        info = _parse_ihdr(path, head)
        _check_cap(path, info.width, info.height, cap)  # before reading or decoding the rest
        data = head + fh.read()
    _scan_png(path, data, info)
    _refuse_frames(path, info.frames)
    if info.bit_depth == 16:
        array, layout, mode = _decode_png16(path, data, info)
    else:
        from PIL import PngImagePlugin

        with PngImagePlugin.PngImageFile(io.BytesIO(data)) as im:
            im.load()
            gray_key = info.color_type == 0 and info.trns is not None and len(info.trns) >= 2
            if gray_key:  # Pillow compares 2/4-bit keys with the scaled samples; do it here
                im.info.pop("transparency", None)
            array, layout, mode = _from_pillow(path, im)
        if gray_key and layout == "L":
            key = struct.unpack(">H", info.trns[:2])[0] * (255 // ((1 << info.bit_depth) - 1))
            alpha = np.where(array == key, 0, 255).astype(np.uint8)
            array, layout = np.stack([array, alpha], axis=-1), "LA"
    array, exif = _orient(array, info.exif)
    depth = 16 if array.dtype == np.uint16 else 8
    meta = ImageMeta(depth, layout, info.icc, exif, info.dpi, "PNG", mode)
    return array, meta


def _decode_png16(path: Path, data: bytes, info: _PngInfo) -> tuple[np.ndarray, str, str]:
    import cv2

    a = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise _read_error(
            path, "OpenCV could not decode the 16-bit PNG data (corrupt data, or beyond "
            "OpenCV's own size limits)"
        )
    if a.dtype != np.uint16:
        raise _read_error(path, f"OpenCV decoded a 16-bit PNG as {a.dtype}")
    ct = info.color_type
    ch = 1 if a.ndim == 2 else a.shape[2]
    if ct == 0:
        mode = "I;16"
        if ch != 1:
            raise _read_error(path, f"OpenCV decoded a 16-bit gray PNG with {ch} channels")
        if info.trns is not None and len(info.trns) >= 2:
            (key,) = struct.unpack(">H", info.trns[:2])
            alpha = np.where(a == key, 0, 65535).astype(np.uint16)
            return np.stack([a, alpha], axis=-1), "LA", mode
        return a, "L", mode
    if ct == 4:  # OpenCV expands gray+alpha to BGRA with B = G = R = gray
        if ch != 4:
            raise _read_error(path, f"OpenCV decoded a 16-bit gray+alpha PNG with {ch} channels")
        return np.stack([a[..., 0], a[..., 3]], axis=-1), "LA", "LA;16"
    if ct == 2 and ch == 3:
        return np.ascontiguousarray(a[..., ::-1]), "RGB", "RGB;16"
    if ct in (2, 6) and ch == 4:  # RGBA, or RGB whose tRNS colour key OpenCV turned into alpha
        mode = "RGB;16" if ct == 2 else "RGBA;16"
        return np.ascontiguousarray(a[..., [2, 1, 0, 3]]), "RGBA", mode
    raise _read_error(path, f"OpenCV decoded a 16-bit PNG of colour type {ct} with {ch} channels")


# --- Pillow formats -------------------------------------------------------------------------


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


def _read_pillow(path: Path, fmt: str, cap: int | None) -> tuple[np.ndarray, ImageMeta]:
    from PIL import Image

    if fmt == "WEBP":  # Pillow's WebP plugin allocates the canvas when it opens the file
        with open(path, "rb") as fh:
            head = fh.read(30)
        size = _webp_size(head)
        if size is not None:
            _check_cap(path, *size, cap)
        declared, actual = struct.unpack_from("<I", head, 4)[0] + 8, path.stat().st_size
        if actual < declared:
            raise _read_error(
                path,
                f"truncated WebP data (RIFF header declares {declared} bytes, file has {actual})",
            )
    # The plugin class is instantiated directly rather than through Image.open: it parses the
    # header only (no pixels), and Image.open's decompression-bomb check is skipped so that
    # srkit's cap decides. The WebP and GIF plugins still check Pillow's own limit
    # (2 * Image.MAX_IMAGE_PIXELS) themselves; that error is mapped to ImageTooLargeError.
    try:
        with open(path, "rb") as fh, _pillow_class(fmt)(fh) as im:
            _check_cap(path, im.width, im.height, cap)
            _refuse_frames(path, int(getattr(im, "n_frames", 1)))
            im.load()
            array, layout, mode = _from_pillow(path, im)
            icc = im.info.get("icc_profile") or None
            exif = _normalize_exif(im.info.get("exif")) if fmt != "GIF" else None
            dpi = _clean_dpi(im.info.get("dpi"))
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            f"cannot read '{path}': over Pillow's decompression-bomb limit "
            f"(PIL.Image.MAX_IMAGE_PIXELS): {_one_line(exc)}"
        ) from exc
    if mode == "CMYK":
        icc = None  # the CMYK profile does not describe the converted RGB pixels
    array, exif = _orient(array, exif)
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


def _from_pillow(path: Path, im: Any) -> tuple[np.ndarray, str, str]:
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
    elif mode in ("CMYK", "YCbCr", "RGBX"):
        im = im.convert("RGB")
    elif mode in ("I;16", "I;16L", "I;16B"):
        array = np.array(im, dtype=np.uint16)
        return array, "L", mode
    elif mode in ("RGBa", "La"):  # associated (premultiplied) alpha, returned as stored
        return np.array(im, dtype=np.uint8), mode.upper(), mode
    elif mode not in ("L", "LA", "RGB", "RGBA"):
        raise _read_error(path, f"unsupported Pillow mode {mode!r}")
    array = np.array(im, dtype=np.uint8)
    return array, {"L": "L", "LA": "LA", "RGB": "RGB", "RGBA": "RGBA"}[im.mode], mode


# --- TIFF -----------------------------------------------------------------------------------


def _read_tiff(path: Path, cap: int | None) -> tuple[np.ndarray, ImageMeta]:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        pages = tif.pages
        page = pages.first
        width, height = int(page.imagewidth), int(page.imagelength)
        _check_cap(path, width, height, cap)
        frames = 1 + sum(
            1 for i in range(1, len(pages)) if not (int(getattr(pages[i], "subfiletype", 0)) & 1)
        )
        _refuse_frames(path, frames)
        if int(getattr(page, "imagedepth", 1)) != 1:
            raise _read_error(path, "volumetric TIFF (image depth > 1) is not a single image")
        size = tif.filehandle.size
        for off, count in zip(page.dataoffsets, page.databytecounts, strict=False):
            if off + count > size:
                raise _read_error(
                    path, f"truncated TIFF data (a strip/tile needs bytes {off}..{off + count}, "
                    f"file has {size})"
                )
        array, layout, mode = _tiff_pixels(path, page)
        tags = page.tags
        icc_tag = tags.get(34675)
        icc = bytes(icc_tag.value) if icc_tag is not None and icc_tag.value else None
        dpi = _tiff_dpi(tags)
        orient_tag = tags.get(274)
        orientation = int(orient_tag.value) if orient_tag is not None else 1
    array = _apply_orientation(array, orientation)
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(array.dtype, 32)
    return array, ImageMeta(depth, layout, icc, None, dpi, "TIFF", mode)


def _tiff_dpi(tags: Any) -> tuple[float, float] | None:
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
    return _clean_dpi((x, y))


def _tiff_pixels(path: Path, page: Any) -> tuple[np.ndarray, str, str]:
    photometric = int(page.photometric)
    spp = int(page.samplesperpixel)
    bps = page.bitspersample
    bps = int(bps[0] if isinstance(bps, tuple | list) else bps)
    extras = tuple(int(e) for e in (page.extrasamples or ()))
    names = {0: "MINISWHITE", 1: "MINISBLACK", 2: "RGB", 3: "PALETTE"}
    if photometric not in names:
        raise _read_error(
            path, f"unsupported TIFF photometric interpretation {photometric} "
            "(srkit reads gray, RGB and palette TIFFs)"
        )
    mode = names[photometric]
    base = 3 if photometric == 2 else 1
    if spp not in (base, base + 1) or (photometric == 3 and spp != 1):
        raise _read_error(path, f"unsupported TIFF: {spp} samples per pixel for {mode}")
    if spp == base + 1 and extras[:1] == (1,):
        mode += "+associated-alpha"
    try:
        raw = page.asarray()
    except Exception as exc:  # e.g. LZW/JPEG/CCITT compression needs the optional imagecodecs
        layout = _LAYOUTS[spp] if photometric != 3 else "RGB"
        return _tiff_pixels_pillow(path, page, exc, layout, mode, bps)
    shaped = tuple(int(s) for s in page.shaped)  # (separate samples, depth, H, W, contig samples)
    a = raw.reshape(shaped)[:, 0]  # (S1, H, W, S2); one of S1/S2 is 1
    a = np.moveaxis(a, 0, -1).reshape(shaped[2], shaped[3], spp)
    if photometric == 3:
        cmap = None if page.colormap is None else np.asarray(page.colormap)
        if cmap is None or cmap.ndim != 2 or cmap.shape[0] != 3:
            raise _read_error(path, "palette TIFF without a valid colour map")
        table = cmap.T.astype(np.uint16)
        if np.all(table % 257 == 0):
            table = (table // 257).astype(np.uint8)
        idx = a[..., 0].astype(np.intp)
        if idx.max(initial=0) >= table.shape[0]:
            raise _read_error(path, "palette TIFF index outside its colour map")
        return table[idx], "RGB", mode
    if bps == 1:
        a = (a.astype(bool).astype(np.uint8)) * np.uint8(255)
    elif a.dtype in (np.dtype(np.float16), np.dtype(np.float64)):
        a = a.astype(np.float32)
    elif a.dtype.newbyteorder("=") in _DEPTH_OF_DTYPE:
        a = a.astype(a.dtype.newbyteorder("="), copy=False)
    else:
        raise _read_error(
            path, f"unsupported TIFF sample format {a.dtype} ({bps} bits per sample); srkit "
            "reads uint8, uint16 and float TIFFs"
        )
    if bps not in (1, 8, 16, 32, 64) or (bps == 16 and a.dtype == np.uint8):
        raise _read_error(path, f"unsupported TIFF: {bps} bits per sample")
    if photometric == 0:  # min-is-white: invert the gray sample, keep alpha
        g = a[..., 0]
        a = a.copy()
        a[..., 0] = (1.0 - g) if a.dtype.kind == "f" else (np.iinfo(a.dtype).max - g)
    layout = _LAYOUTS[spp]
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
    tifffile_cause = f"{type(exc).__name__}: {_one_line(exc)}"
    if not ok or dtype is None:
        raise _read_error(path, f"cannot decode TIFF data ({tifffile_cause})")
    from PIL import Image, TiffImagePlugin

    try:
        with open(path, "rb") as fh, TiffImagePlugin.TiffImageFile(fh) as im:
            im.load()
            if im.mode == "F":
                array = np.array(im, dtype=np.float32)
            else:
                array, _, _ = _from_pillow(path, im)
    except SrkitError:
        raise
    except Image.DecompressionBombError as bomb:
        raise ImageTooLargeError(f"cannot read '{path}': {_one_line(bomb)}") from bomb
    except Exception as pil_exc:
        raise _read_error(
            path, f"cannot decode TIFF data (tifffile: {tifffile_cause}; Pillow: "
            f"{type(pil_exc).__name__}: {_one_line(pil_exc)})"
        ) from pil_exc
    want = (int(page.imagelength), int(page.imagewidth)) + ((len(layout),) if layout != "L" else ())
    if array.shape != want or array.dtype != dtype:
        raise _read_error(
            path, f"cannot decode TIFF data exactly ({tifffile_cause}; Pillow gave "
            f"{array.dtype} {array.shape} instead of {np.dtype(dtype)} {want})"
        )
    return np.ascontiguousarray(array), layout, mode


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------

_FORMAT_NAMES = {
    "png": "PNG",
    "jpg": "JPEG",
    "jpeg": "JPEG",
    "webp": "WEBP",
    "bmp": "BMP",
    "tif": "TIFF",
    "tiff": "TIFF",
}

# format -> (bit depths, layouts) it can store
_WRITABLE = {
    "PNG": ((8, 16), ("L", "LA", "RGB", "RGBA")),
    "JPEG": ((8,), ("L", "RGB")),
    "WEBP": ((8,), ("L", "LA", "RGB", "RGBA")),
    "BMP": ((8,), ("L", "RGB")),
    "TIFF": ((8, 16, 32), ("L", "LA", "RGB", "RGBA")),
}


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
        format: ``"png"``, ``"jpeg"``/``"jpg"``, ``"webp"``, ``"bmp"``, ``"tiff"``/``"tif"``
            (any case); default: from the suffix of ``path``.
        quality: 1..100 for JPEG (4:4:4 chroma at 90 and above) and WebP (100 = lossless,
            exact); ignored by the other formats.

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
    fmt = _write_format(target, format)
    arr, layout, depth = _image_array(array)
    depths, layouts = _WRITABLE[fmt]
    if depth not in depths:
        kind = "float32" if depth == 32 else f"{depth}-bit"
        hint = {
            32: "convert with from_float(array, 8 or 16), or write TIFF",
            16: "reduce to 8 bits, or write PNG or TIFF",
        }.get(depth, "")
        raise _write_error(target, f"{kind} data cannot be stored as {fmt}; {hint}")
    if layout not in layouts:
        raise _write_error(
            target, f"{fmt} cannot store layout {layout} (drop the alpha channel, e.g. "
            "array[..., :-1], or write PNG, WebP or TIFF)"
        )
    if not _is_int(quality) or not 1 <= quality <= 100:
        raise _write_error(target, f"quality must be an integer in 1..100, got {quality!r}")
    parent = target.parent
    if not parent.is_dir():
        raise _write_error(target, f"directory '{parent}' does not exist")
    if target.is_dir():
        raise _write_error(target, "is a directory")
    if meta is not None and not isinstance(meta, ImageMeta):
        raise TypeError(f"meta must be an ImageMeta or None, got {type(meta).__name__}")
    icc = meta.icc_profile if meta is not None else None
    exif = meta.exif if meta is not None else None
    dpi = meta.dpi if meta is not None else None

    def encode(fh: IO[bytes]) -> None:
        if fmt == "PNG" and depth == 16:
            fh.write(_encode_png16(arr, layout, icc, exif, dpi))
        elif fmt == "TIFF":
            _encode_tiff(fh, arr, layout, icc, dpi)
        else:
            _encode_pillow(fh, arr, layout, fmt, icc, exif, dpi, int(quality))

    atomic_write(target, encode)
    return target


def _write_format(target: Path, format: str | None) -> str:
    if format is not None:
        key = str(format).lower().lstrip(".")
        if key not in _FORMAT_NAMES:
            raise _write_error(
                target, f"unsupported format {format!r} (use png, jpeg, webp, bmp or tiff)"
            )
        return _FORMAT_NAMES[key]
    key = target.suffix.lower().lstrip(".")
    if key not in _FORMAT_NAMES:
        raise _write_error(
            target, f"cannot tell the format from suffix {target.suffix!r} (use .png .jpg "
            ".jpeg .webp .bmp .tif .tiff, or pass format=)"
        )
    return _FORMAT_NAMES[key]


def _image_array(array: Any) -> tuple[np.ndarray, str, int]:
    a = np.asarray(array)
    if a.dtype.kind in "uf":
        a = a.astype(a.dtype.newbyteorder("="), copy=False)
    depth = _DEPTH_OF_DTYPE.get(a.dtype)
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
        layout = _LAYOUTS[a.shape[2]]
    else:
        raise ShapeError(f"image arrays must be (H, W) or (H, W, 1..4), got shape {a.shape}")
    if a.shape[0] == 0 or a.shape[1] == 0:
        raise ShapeError(f"image array is empty (shape {a.shape})")
    return np.ascontiguousarray(a), layout, depth


def atomic_write(target: Path, encode: Callable[[IO[bytes]], None],
                 wrap: tuple[type[BaseException], ...] = (Exception,)) -> None:
    """`encode(fh)` into a hidden temp file next to `target`, fsync, rename over `target` (then fsync the folder).

    On any failure the temp file is removed. Exceptions of the `wrap` types (not srkit's own) become a one-line
    ImageWriteError naming `target`; everything else passes through as it is (a streaming writer passes
    ``(OSError,)``: a failing model is not a failing disk).
    """
    tmp = target.parent / f".{target.name[:200]}.{secrets.token_hex(6)}.tmp"
    try:
        fh = open(tmp, "xb")  # noqa: SIM115 - O_CREAT | O_EXCL, mode 0o666 & ~umask; closed below
    except OSError as exc:
        raise _write_error(
            target, f"cannot create a file in '{target.parent}' ({exc.strerror or exc})"
        ) from exc
    try:
        with fh:
            encode(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, SrkitError | MemoryError) or not isinstance(exc, wrap):
            raise
        raise _write_error(target, f"{type(exc).__name__}: {exc}") from exc
    with contextlib.suppress(OSError, AttributeError):  # make the rename durable (POSIX)
        dfd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def _encode_pillow(
    fh: IO[bytes],
    arr: np.ndarray,
    layout: str,
    fmt: str,
    icc: bytes | None,
    exif: bytes | None,
    dpi: tuple[float, float] | None,
    quality: int,
) -> None:
    from PIL import Image

    im = Image.fromarray(arr)
    params: dict[str, Any] = {}
    if fmt in ("PNG", "JPEG", "WEBP") and icc:
        params["icc_profile"] = icc
    if fmt in ("PNG", "JPEG", "WEBP") and exif:
        block = _exif_tiff_block(exif)
        params["exif"] = _EXIF_PREFIX + block if fmt == "JPEG" else block
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


# --- 16-bit PNG -----------------------------------------------------------------------------


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def _png_meta_chunks(
    icc: bytes | None, exif: bytes | None, dpi: tuple[float, float] | None
) -> bytes:
    out = b""
    if icc:
        out += _png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc))
    if dpi:
        ppm = [int(v / 0.0254 + 0.5) for v in dpi]  # same rounding as Pillow
        out += _png_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1))
    if exif:
        out += _png_chunk(b"eXIf", _exif_tiff_block(exif))
    return out


def _encode_png16(
    arr: np.ndarray,
    layout: str,
    icc: bytes | None,
    exif: bytes | None,
    dpi: tuple[float, float] | None,
) -> bytes:
    if layout == "LA":  # OpenCV cannot write gray+alpha
        png = _encode_png_raw(arr, color_type=4)
    else:
        import cv2

        order = {"L": None, "RGB": [2, 1, 0], "RGBA": [2, 1, 0, 3]}[layout]
        bgr = arr if order is None else arr[..., order]
        ok, buf = cv2.imencode(".png", np.ascontiguousarray(bgr), [cv2.IMWRITE_PNG_COMPRESSION, _PNG16_ZLIB_LEVEL])
        if not ok:
            raise RuntimeError("OpenCV failed to encode the 16-bit PNG")
        png = buf.tobytes()
    return _insert_png_chunks(png, _png_meta_chunks(icc, exif, dpi))


def _insert_png_chunks(png: bytes, extra: bytes) -> bytes:
    """Put ``extra`` right after IHDR, dropping chunks of the same kinds the encoder wrote."""
    if not extra:
        return png
    replaced = {b"iCCP", b"sRGB", b"pHYs", b"eXIf"}
    out = [png[:33], extra]
    pos = 33
    while pos + 8 <= len(png):
        length, ctype = struct.unpack_from(">I4s", png, pos)
        end = pos + 12 + length
        if ctype not in replaced:
            out.append(png[pos:end])
        pos = end
    return b"".join(out)


def _encode_png_raw(arr: np.ndarray, color_type: int) -> bytes:
    """Minimal 16-bit PNG encoder (per-row adaptive filter)."""
    h, w = arr.shape[:2]
    bpp = 2 * (arr.shape[2] if arr.ndim == 3 else 1)
    raw = arr.astype(">u2").reshape(h, -1).view(np.uint8)
    z = zlib.compressobj(_PNG16_ZLIB_LEVEL)
    idat = []
    block = max(1, _PNG_BLOCK_BYTES // raw.shape[1])
    for start in range(0, h, block):
        prev = raw[start - 1] if start else np.zeros(raw.shape[1], np.uint8)
        idat.append(z.compress(_png_filter(raw[start : start + block], prev, bpp).tobytes()))
    idat.append(z.flush())
    ihdr = struct.pack(">IIBBBBB", w, h, 16, color_type, 0, 0, 0)
    return (
        _PNG_SIGNATURE
        + _png_chunk(b"IHDR", ihdr)
        + _png_chunk(b"IDAT", b"".join(idat))
        + _png_chunk(b"IEND", b"")
    )


def _png_filter(raw: np.ndarray, prev: np.ndarray, bpp: int) -> np.ndarray:
    """Filter rows ``raw`` (``prev`` = the unfiltered row above them) with, per row, the PNG
    filter type (0..4) whose output has the least sum of absolute values (as signed bytes)."""
    h, n = raw.shape
    left = np.zeros_like(raw)
    left[:, bpp:] = raw[:, :-bpp]
    up = np.empty_like(raw)
    up[0] = prev
    up[1:] = raw[:-1]
    upleft = np.zeros_like(raw)
    upleft[:, bpp:] = up[:, :-bpp]
    a, b, c = (x.astype(np.int16) for x in (left, up, upleft))
    p = a + b - c
    pa, pb, pc = np.abs(p - a), np.abs(p - b), np.abs(p - c)
    paeth = np.where((pa <= pb) & (pa <= pc), left, np.where(pb <= pc, up, upleft))
    candidates = np.stack(
        [raw, raw - left, raw - up, raw - ((a + b) >> 1).astype(np.uint8), raw - paeth]
    )
    cost = np.abs(candidates.view(np.int8).astype(np.int32)).sum(axis=2)  # (5, h)
    choice = cost.argmin(axis=0)
    out = np.empty((h, n + 1), np.uint8)
    out[:, 0] = choice
    out[:, 1:] = candidates[choice, np.arange(h)]
    return out


# --- TIFF -----------------------------------------------------------------------------------


def _encode_tiff(
    fh: IO[bytes],
    arr: np.ndarray,
    layout: str,
    icc: bytes | None,
    dpi: tuple[float, float] | None,
) -> None:
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
