"""QOI (Pillow, else ``imagecodecs``) and JPEG XL (``imagecodecs``), read only.

* QOI: 8-bit RGB or RGBA as stored; the header's colour space flag (sRGB or linear) is reported in
  ``ImageMeta.source_mode`` (``"RGB;srgb"``/``"RGBA;linear"``), the samples are not converted.
* JPEG XL (codestream or ISOBMFF container): srkit parses the codestream's size header and image metadata
  itself (size for the pixel cap before decoding, bits per sample, animation), then ``imagecodecs`` (libjxl)
  decodes. libjxl applies the orientation, so the EXIF orientation (``Exif`` box, kept) is reset to 1.
  Samples: 8 bits -> uint8, 16 bits -> uint16, other depths n scaled to 8 (n < 8) or 16 bits with
  ``round(v * full / (2^n - 1))``, float -> float32. Animated files are refused. The colour profile is not
  kept: imagecodecs does not return it, and the pixels are those of the file's colour space (sRGB for almost
  every file).
"""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np

from srkit.io.checks import check_cap, read_error, refuse_frames
from srkit.io.convert import require, rescale
from srkit.io.meta import ImageMeta, _exif_reset_orientation, normalize_exif
from srkit.io.pillow import from_pillow

__all__ = ["JxlHeader", "jxl_header", "read_jxl", "read_qoi"]


# --------------------------------------------------------------------------------------------
# QOI
# --------------------------------------------------------------------------------------------


_QOI_END = b"\x00" * 7 + b"\x01"


def read_qoi(path: Path, cap: int | None) -> tuple[np.ndarray, ImageMeta]:
    """Read a QOI image (Pillow's plugin; imagecodecs when this Pillow has none)."""
    with open(path, "rb") as fh:
        head = fh.read(14)
    if len(head) < 14:
        raise read_error(path, "truncated QOI header")
    width, height, channels, colorspace = struct.unpack_from(">IIBB", head, 4)
    check_cap(path, width, height, cap)
    if channels not in (3, 4):
        raise read_error(path, f"invalid QOI header ({channels} channels)")
    space = "linear" if colorspace == 1 else "srgb"
    try:
        from PIL import QoiImagePlugin
    except ImportError:
        imagecodecs = require(path, "imagecodecs", "QOI (with this Pillow)")
        array = np.ascontiguousarray(imagecodecs.qoi_decode(path.read_bytes()), dtype=np.uint8)
        layout = "RGBA" if array.ndim == 3 and array.shape[2] == 4 else "RGB"
    else:
        with open(path, "rb") as fh, QoiImagePlugin.QoiImageFile(fh) as im:
            im.load()
            array, layout, _ = from_pillow(path, im)
        if array.shape[:2] != (height, width):
            raise read_error(path, "truncated QOI data")
    with open(path, "rb") as fh:
        fh.seek(-8, 2)
        if fh.read(8) != _QOI_END:
            raise read_error(path, "truncated QOI data (no end marker)")
    return array, ImageMeta(8, layout, None, None, None, "QOI", f"{layout};{space}")


# --------------------------------------------------------------------------------------------
# JPEG XL
# --------------------------------------------------------------------------------------------

_JXL_CONTAINER = b"\x00\x00\x00\x0cJXL \r\n\x87\n"


class JxlHeader:
    """What srkit reads from a JPEG XL codestream header before decoding."""

    def __init__(self, width: int, height: int, bits: int, is_float: bool, animated: bool) -> None:
        self.width, self.height, self.bits, self.is_float, self.animated = width, height, bits, is_float, animated


class _Bits:
    """LSB-first bit reader over a JPEG XL codestream."""

    def __init__(self, data: bytes) -> None:
        self.data, self.pos = data, 0

    def u(self, n: int) -> int:
        value = 0
        for i in range(n):
            byte = self.pos >> 3
            if byte >= len(self.data):
                raise ValueError("truncated JPEG XL header")
            value |= ((self.data[byte] >> (self.pos & 7)) & 1) << i
            self.pos += 1
        return value

    def u32(self, *dist: tuple[int, int]) -> int:
        """U32(d0, d1, d2, d3): each distribution is (offset, bits)."""
        offset, bits = dist[self.u(2)]
        return offset + (self.u(bits) if bits else 0)


def _jxl_size(b: _Bits) -> tuple[int, int]:
    small = b.u(1)
    if small:
        height = (b.u(5) + 1) * 8
    else:
        height = b.u32((1, 9), (1, 13), (1, 18), (1, 30))
    ratio = b.u(3)
    if ratio:
        num, den = ((1, 1), (12, 10), (4, 3), (3, 2), (16, 9), (5, 4), (2, 1))[ratio - 1]
        return height * num // den, height
    width = (b.u(5) + 1) * 8 if small else b.u32((1, 9), (1, 13), (1, 18), (1, 30))
    return width, height


def _jxl_codestream(data: bytes) -> tuple[bytes, bytes | None]:
    """(start of the codestream, EXIF box body) of a JPEG XL file."""
    if data[:2] == b"\xff\x0a":
        return data, None
    pos, stream, exif = 0, None, None
    while pos + 8 <= len(data):
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = len(data) - pos
        body = data[pos + header:pos + size]
        if kind == b"jxlc" and stream is None:
            stream = body
        elif kind == b"jxlp" and stream is None:
            stream = body[4:]
        elif kind == b"Exif" and exif is None and len(body) >= 4:
            (offset,) = struct.unpack_from(">I", body)
            exif = body[4 + offset:]
        if size < header:
            break
        pos += size
    if stream is None:
        raise ValueError("no codestream box (jxlc/jxlp) in the JPEG XL container")
    return stream, exif


def jxl_header(data: bytes) -> JxlHeader:
    """Size, bits per sample, float-ness and animation of a JPEG XL file (codestream or container)."""
    stream, _ = _jxl_codestream(data)
    if stream[:2] != b"\xff\x0a":
        raise ValueError("invalid JPEG XL codestream signature")
    b = _Bits(stream[2:66])
    width, height = _jxl_size(b)
    animated = False
    if b.u(1):  # all_default: 8-bit integer samples
        return JxlHeader(width, height, 8, False, False)
    if b.u(1):  # extra_fields
        b.u(3)  # orientation
        if b.u(1):  # intrinsic size
            _jxl_size(b)
        if b.u(1):  # preview
            div8 = b.u(1)
            if div8:
                b.u32((16, 0), (32, 0), (1, 5), (33, 9))
            else:
                b.u32((1, 6), (65, 8), (321, 10), (1345, 12))
            if b.u(3) == 0:
                if div8:
                    b.u32((16, 0), (32, 0), (1, 5), (33, 9))
                else:
                    b.u32((1, 6), (65, 8), (321, 10), (1345, 12))
        animated = bool(b.u(1))
        if animated:
            b.u32((100, 0), (1000, 0), (1, 10), (1, 30))
            b.u32((1, 0), (1001, 0), (1, 8), (1, 10))
            b.u32((0, 0), (0, 3), (0, 16), (0, 32))
            b.u(1)
    is_float = bool(b.u(1))
    if is_float:
        bits = b.u32((32, 0), (16, 0), (24, 0), (1, 6))
        b.u(4)
    else:
        bits = b.u32((8, 0), (10, 0), (12, 0), (1, 6))
    return JxlHeader(width, height, bits, is_float, animated)


def read_jxl(path: Path, cap: int | None) -> tuple[np.ndarray, ImageMeta]:
    """Read a still JPEG XL image with imagecodecs (libjxl)."""
    data = path.read_bytes()
    try:
        header = jxl_header(data)
        _, exif_raw = _jxl_codestream(data)
    except (ValueError, struct.error) as exc:
        raise read_error(path, f"invalid JPEG XL data ({exc})") from None
    check_cap(path, header.width, header.height, cap)
    if header.animated:
        raise read_error(path, "animated JPEG XL; srkit reads single images")
    imagecodecs = require(path, "imagecodecs", "JPEG XL")
    array = np.asarray(imagecodecs.jpegxl_decode(data))
    if array.ndim == 4:
        refuse_frames(path, array.shape[0])
        array = array[0]
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[..., 0]
    if array.dtype.kind == "f":
        array = array.astype(np.float32)
    elif array.dtype.kind == "u" and not header.is_float and header.bits not in (8, 16) and header.bits <= 16:
        array = rescale(array, (1 << header.bits) - 1)
    elif array.dtype not in (np.dtype(np.uint8), np.dtype(np.uint16)):
        raise read_error(path, f"unsupported JPEG XL sample type {array.dtype}")
    channels = 1 if array.ndim == 2 else array.shape[2]
    if channels > 4:
        raise read_error(path, f"unsupported JPEG XL: {channels} channels")
    layout = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    exif = normalize_exif(exif_raw)
    if exif is not None:
        exif = _exif_reset_orientation(exif)
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(array.dtype, 32)
    mode = f"{layout};{'float' if header.is_float else ''}{header.bits}"
    return np.ascontiguousarray(array), ImageMeta(depth, layout, None, exif, None, "JXL", mode)
