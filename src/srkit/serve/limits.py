"""What the service refuses before any pixel is decoded: the upload size (413), non-images (415, content sniffed
by `srkit.io.formats.sniff`, never the name or Content-Type) and images whose header claims more pixels than the
cap (413: decompression bombs and 50000 x 50000 headers cost a few header bytes, not their pixels).

The size comes from the header bytes alone: PNG IHDR, JPEG SOFn, GIF logical screen, BMP DIB header, WebP
VP8/VP8L/VP8X, QOI, PSD, PNM (`srkit.io.pnm.pnm_header`), JPEG XL (`srkit.io.codecs.jxl_header`), JPEG 2000 SIZ /
JP2 ``ihdr``, HEIF/AVIF ``ispe`` (the largest item); TIFF through Pillow's ``Image.open``, which reads the first
IFD only. `srkit.io.read_image` checks the cap from the header again when it decodes.
"""

from __future__ import annotations

import io
import struct
import warnings
from dataclasses import dataclass

from srkit.io.checks import DEFAULT_MAX_PIXELS, resolve_cap
from srkit.io.formats import SNIFF_BYTES, sniff

__all__ = ["ApiError", "DeadlineExpired", "Header", "check_pixels", "image_header", "pixel_cap", "read_body"]

#: Formats the service names in its 415 message.
READABLE = ("PNG, JPEG, WebP, BMP, TIFF, GIF, HEIF, AVIF, JPEG 2000, JPEG XL, QOI, PSD or PNM")


class ApiError(Exception):
    """An HTTP error with one-line message: the service answers ``{"error": message, "status": status}``."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status = status
        self.message = " ".join(str(message).split())
        self.headers = headers or {}


@dataclass(frozen=True)
class Header:
    """An upload's format (as `sniff` names it) and its size as the header states it."""

    format: str
    width: int
    height: int

    @property
    def pixels(self) -> int:
        return self.width * self.height


def pixel_cap(max_pixels: int | None) -> int | None:
    """The service's input pixel cap: `max_pixels`, never above `srkit.io`'s own (``$SRKIT_MAX_PIXELS``)."""
    io_cap = resolve_cap(DEFAULT_MAX_PIXELS)
    caps = [c for c in (max_pixels, io_cap) if c is not None]
    return min(caps) if caps else None


def check_pixels(header: Header, cap: int | None) -> None:
    """413 when the header claims more than `cap` pixels; 422 for a zero size."""
    if header.width <= 0 or header.height <= 0:
        raise ApiError(422, f"invalid image size {header.width}x{header.height} in the {header.format} header")
    if cap is not None and header.pixels > cap:
        raise ApiError(413, f"image is {header.width}x{header.height} = {header.pixels:,} pixels, over this "
                            f"server's cap of {cap:,} pixels")


def _png(data: bytes) -> tuple[int, int]:
    if len(data) < 24 or data[12:16] != b"IHDR":
        raise ValueError("no IHDR chunk")
    w, h = struct.unpack_from(">II", data, 16)
    return w, h


# JPEG start-of-frame markers: C0..CF but C4 (DHT), C8 (JPG) and CC (DAC).
_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}


def _jpeg(data: bytes) -> tuple[int, int]:
    pos, n = 2, len(data)
    while pos + 4 <= n:
        if data[pos] != 0xFF:
            raise ValueError(f"no marker at byte {pos}")
        marker = data[pos + 1]
        if marker == 0xFF:  # fill byte
            pos += 1
            continue
        if marker in (0x01, 0xD0, 0xD1, 0xD2, 0xD3, 0xD4, 0xD5, 0xD6, 0xD7):  # no length
            pos += 2
            continue
        (length,) = struct.unpack_from(">H", data, pos + 2)
        if marker in _SOF:
            if pos + 9 > n:
                break
            h, w = struct.unpack_from(">HH", data, pos + 5)
            return w, h
        if marker == 0xD9 or length < 2:
            raise ValueError("no frame header before the end of the image")
        pos += 2 + length
    raise ValueError("truncated before the frame header")


def _gif(data: bytes) -> tuple[int, int]:
    w, h = struct.unpack_from("<HH", data, 6)
    return w, h


def _bmp(data: bytes) -> tuple[int, int]:
    (size,) = struct.unpack_from("<I", data, 14)
    if size == 12:  # BITMAPCOREHEADER
        w, h = struct.unpack_from("<HH", data, 18)
        return w, h
    w, h = struct.unpack_from("<ii", data, 18)
    return w, abs(h)


def _webp(data: bytes) -> tuple[int, int]:
    chunk = data[12:16]
    if chunk == b"VP8X":
        return int.from_bytes(data[24:27], "little") + 1, int.from_bytes(data[27:30], "little") + 1
    if chunk == b"VP8 " and data[23:26] == b"\x9d\x01\x2a":
        w, h = struct.unpack_from("<HH", data, 26)
        return w & 0x3FFF, h & 0x3FFF
    if chunk == b"VP8L" and len(data) > 24 and data[20] == 0x2F:
        (bits,) = struct.unpack_from("<I", data, 21)
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    raise ValueError("no VP8/VP8L/VP8X header")


def _qoi(data: bytes) -> tuple[int, int]:
    w, h = struct.unpack_from(">II", data, 4)
    return w, h


def _psd(data: bytes) -> tuple[int, int]:
    h, w = struct.unpack_from(">II", data, 14)
    return w, h


def _pnm(data: bytes) -> tuple[int, int]:
    from srkit.io.pnm import pnm_header

    _, w, h, _, _ = pnm_header(data[:4096])
    return w, h


def _jxl(data: bytes) -> tuple[int, int]:
    from srkit.io.codecs import jxl_header

    hdr = jxl_header(data[: 1 << 16])
    return hdr.width, hdr.height


def _jpeg2000(data: bytes) -> tuple[int, int]:
    if data[:4] == b"\xff\x4f\xff\x51":  # bare codestream: SIZ right after SOC
        xs, ys, xo, yo = struct.unpack_from(">IIII", data, 8)
        return xs - xo, ys - yo
    pos = data.find(b"ihdr", 0, 1 << 16)
    if pos < 0:
        raise ValueError("no ihdr box")
    h, w = struct.unpack_from(">II", data, pos + 4)
    return w, h


def _ispe(data: bytes) -> tuple[int, int]:
    """The largest ``ispe`` (image spatial extents) property of a HEIF/AVIF file's meta box."""
    best: tuple[int, int] | None = None
    limit = min(len(data), 1 << 20)
    pos = data.find(b"ispe", 0, limit)
    while pos >= 0:
        if pos + 16 <= len(data):
            w, h = struct.unpack_from(">II", data, pos + 8)  # after 4 bytes of version and flags
            if best is None or w * h > best[0] * best[1]:
                best = (w, h)
        pos = data.find(b"ispe", pos + 4, limit)
    if best is None:
        raise ValueError("no ispe property")
    return best


def _pillow(data: bytes) -> tuple[int, int]:
    """Size through Pillow's ``Image.open``, which parses the header only (no pixel is decoded)."""
    from PIL import Image

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DecompressionBombWarning: the service's cap decides
        try:
            with Image.open(io.BytesIO(data)) as im:
                return im.size
        except Image.DecompressionBombError as exc:  # over 2 x MAX_IMAGE_PIXELS: report it as huge
            raise _Huge(str(exc)) from None


class _Huge(Exception):
    pass


_SIZERS = {
    "PNG": _png, "JPEG": _jpeg, "GIF": _gif, "BMP": _bmp, "WEBP": _webp, "QOI": _qoi, "PSD": _psd, "PNM": _pnm,
    "JXL": _jxl, "JPEG2000": _jpeg2000, "HEIF": _ispe, "AVIF": _ispe, "TIFF": _pillow,
}


def image_header(data: bytes) -> Header:
    """The format and header size of an upload, without decoding it.

    Raises:
        ApiError: 400 empty, 415 not an image srkit reads, 422 a recognised format whose header is broken,
            413 a header so large Pillow refuses to parse it.
    """
    if not data:
        raise ApiError(400, "empty body: send an image file (raw body or multipart field 'file')")
    fmt = sniff(data[:SNIFF_BYTES])
    if fmt is None:
        raise ApiError(415, f"not an image this server reads (content starts with {data[:8]!r}; send {READABLE})")
    try:
        w, h = _SIZERS[fmt](data)
    except _Huge as exc:
        raise ApiError(413, f"{fmt} header claims a decompression-bomb size ({exc})") from None
    except (ValueError, struct.error, IndexError, OSError, SyntaxError) as exc:
        raise ApiError(422, f"cannot read the {fmt} header: {' '.join(str(exc).split()) or type(exc).__name__}") \
            from None
    return Header(fmt, int(w), int(h))


async def read_body(receive_chunks, limit: int, declared: str | None) -> bytes:
    """The request body, at most `limit` bytes (413 as soon as the declared Content-Length or the bytes read so far
    exceed it; the rest is never read)."""
    if declared is not None:
        try:
            n = int(declared)
        except ValueError:
            raise ApiError(400, f"invalid Content-Length {declared!r}") from None
        if n > limit:
            raise ApiError(413, f"upload is {n:,} bytes, over this server's limit of {limit:,} bytes")
    buf = bytearray()
    async for chunk in receive_chunks:
        buf += chunk
        if len(buf) > limit:
            raise ApiError(413, f"upload is over this server's limit of {limit:,} bytes")
    return bytes(buf)


class DeadlineExpired(Exception):
    """A task's deadline passed before a worker could start it (raised into its future by the worker pool)."""
