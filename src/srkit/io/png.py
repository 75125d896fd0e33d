"""PNG: srkit's own chunk parser and 16-bit encoder.

Owns reading PNG (IHDR, the pixel cap before decoding, truncation, APNG frames, iCCP/eXIf/pHYs/tRNS chunks;
8-bit and smaller pixels decoded by Pillow, 16-bit by OpenCV) and writing 16-bit PNG (OpenCV, or srkit's
encoder for gray+alpha) with iCCP/pHYs/eXIf chunks inserted by srkit (:func:`png_meta_chunks`, also used by
the streaming writer). 8-bit PNGs are written by :func:`srkit.io.pillow.encode_pillow`.
"""

from __future__ import annotations

import io
import struct
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srkit.io.checks import check_cap, read_error, refuse_frames
from srkit.io.formats import PNG_SIGNATURE
from srkit.io.meta import ImageMeta, exif_tiff_block, normalize_exif, orient
from srkit.io.pillow import from_pillow

__all__ = ["encode_png16", "png_meta_chunks", "read_png"]

_MAX_ICC_BYTES = 64 << 20  # refuse iCCP chunks that inflate to more than this
_PNG_BLOCK_BYTES = 4 << 20  # srkit's PNG encoder filters about this many bytes of rows at a time
_PNG16_ZLIB_LEVEL = 3  # 16-bit PNGs: ~1-2 % larger than level 6 and several times faster


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


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
        raise read_error(path, "truncated or invalid PNG data (missing or short IHDR chunk)")
    w, h, depth, ctype, comp, filt, interlace = struct.unpack(">IIBBBBB", head[16:29])
    if ctype not in _PNG_DEPTHS or depth not in _PNG_DEPTHS[ctype] or comp or filt or interlace > 1:
        raise read_error(
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
            raise read_error(
                path, f"truncated PNG data (file ends at byte {n} before the IEND chunk)"
            )
        length, ctype = struct.unpack_from(">I4s", data, pos)
        end = pos + 8 + length + 4
        if end > n:
            name = ctype.decode("latin-1", "replace")
            raise read_error(
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
            raise read_error(path, "invalid PNG data (second IHDR chunk)")
        if ctype == b"acTL" and length >= 4:
            info.frames = struct.unpack_from(">I", body)[0]
        elif ctype == b"iCCP" and info.icc is None:
            info.icc = _inflate_iccp(path, body)
        elif ctype == b"eXIf" and info.exif is None:
            info.exif = normalize_exif(body)
        elif ctype == b"pHYs" and length == 9:
            ppx, ppy, unit = struct.unpack(">IIB", body)
            if unit == 1 and ppx and ppy:
                info.dpi = (ppx * 0.0254, ppy * 0.0254)
        elif ctype == b"tRNS":
            info.trns = body
        pos = end
    if not seen_idat:
        raise read_error(path, "invalid PNG data (no IDAT chunk)")


def _inflate_iccp(path: Path, body: bytes) -> bytes | None:
    sep = body.find(b"\x00")
    if sep < 0 or sep + 2 > len(body) or body[sep + 1] != 0:
        raise read_error(path, "invalid PNG data (malformed iCCP chunk)")
    d = zlib.decompressobj()
    try:
        profile = d.decompress(body[sep + 2 :], _MAX_ICC_BYTES)
    except zlib.error as exc:
        raise read_error(path, f"invalid PNG data (corrupt iCCP chunk: {exc})") from None
    if d.unconsumed_tail:
        raise read_error(
            path, f"invalid PNG data (iCCP profile larger than {_MAX_ICC_BYTES} bytes)"
        )
    return profile or None


def read_png(path: Path, cap: int | None) -> tuple[np.ndarray, ImageMeta]:
    """Read a PNG (pixel cap checked from IHDR before anything else is read)."""
    with open(path, "rb") as fh:
        head = fh.read(33)
        info = _parse_ihdr(path, head)
        check_cap(path, info.width, info.height, cap)  # before reading or decoding the rest
        data = head + fh.read()
    _scan_png(path, data, info)
    refuse_frames(path, info.frames)
    if info.bit_depth == 16:
        array, layout, mode = _decode_png16(path, data, info)
    else:
        from PIL import PngImagePlugin

        with PngImagePlugin.PngImageFile(io.BytesIO(data)) as im:
            im.load()
            gray_key = info.color_type == 0 and info.trns is not None and len(info.trns) >= 2
            if gray_key:  # Pillow compares 2/4-bit keys with the scaled samples; do it here
                im.info.pop("transparency", None)
            array, layout, mode = from_pillow(path, im)
        if gray_key and layout == "L" and info.trns is not None:
            key = struct.unpack(">H", info.trns[:2])[0] * (255 // ((1 << info.bit_depth) - 1))
            alpha = np.where(array == key, 0, 255).astype(np.uint8)
            array, layout = np.stack([array, alpha], axis=-1), "LA"
    array, exif = orient(array, info.exif)
    depth = 16 if array.dtype == np.uint16 else 8
    meta = ImageMeta(depth, layout, info.icc, exif, info.dpi, "PNG", mode)
    return array, meta


def _decode_png16(path: Path, data: bytes, info: _PngInfo) -> tuple[np.ndarray, str, str]:
    import cv2

    a = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_UNCHANGED)
    if a is None:
        raise read_error(
            path, "OpenCV could not decode the 16-bit PNG data (corrupt data, or beyond "
            "OpenCV's own size limits)"
        )
    if a.dtype != np.uint16:
        raise read_error(path, f"OpenCV decoded a 16-bit PNG as {a.dtype}")
    ct = info.color_type
    ch = 1 if a.ndim == 2 else a.shape[2]
    if ct == 0:
        mode = "I;16"
        if ch != 1:
            raise read_error(path, f"OpenCV decoded a 16-bit gray PNG with {ch} channels")
        if info.trns is not None and len(info.trns) >= 2:
            (key,) = struct.unpack(">H", info.trns[:2])
            alpha = np.where(a == key, 0, 65535).astype(np.uint16)
            return np.stack([a, alpha], axis=-1), "LA", mode
        return a, "L", mode
    if ct == 4:  # OpenCV expands gray+alpha to BGRA with B = G = R = gray
        if ch != 4:
            raise read_error(path, f"OpenCV decoded a 16-bit gray+alpha PNG with {ch} channels")
        return np.stack([a[..., 0], a[..., 3]], axis=-1), "LA", "LA;16"
    if ct == 2 and ch == 3:
        return np.ascontiguousarray(a[..., ::-1]), "RGB", "RGB;16"
    if ct in (2, 6) and ch == 4:  # RGBA, or RGB whose tRNS colour key OpenCV turned into alpha
        mode = "RGB;16" if ct == 2 else "RGBA;16"
        return np.ascontiguousarray(a[..., [2, 1, 0, 3]]), "RGBA", mode
    raise read_error(path, f"OpenCV decoded a 16-bit PNG of colour type {ct} with {ch} channels")


# --------------------------------------------------------------------------------------------
# writing (16-bit)
# --------------------------------------------------------------------------------------------


def _png_chunk(ctype: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + ctype + body + struct.pack(">I", zlib.crc32(ctype + body))


def png_meta_chunks(
    icc: bytes | None, exif: bytes | None, dpi: tuple[float, float] | None
) -> bytes:
    """The iCCP, pHYs and eXIf chunks srkit writes for this metadata (empty when there is none)."""
    out = b""
    if icc:
        out += _png_chunk(b"iCCP", b"ICC Profile\x00\x00" + zlib.compress(icc))
    if dpi:
        ppm = [int(v / 0.0254 + 0.5) for v in dpi]  # same rounding as Pillow
        out += _png_chunk(b"pHYs", struct.pack(">IIB", ppm[0], ppm[1], 1))
    if exif:
        out += _png_chunk(b"eXIf", exif_tiff_block(exif))
    return out


def encode_png16(
    arr: np.ndarray,
    layout: str,
    icc: bytes | None,
    exif: bytes | None,
    dpi: tuple[float, float] | None,
) -> bytes:
    """A 16-bit PNG file of ``arr`` with srkit's metadata chunks right after IHDR."""
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
    return _insert_png_chunks(png, png_meta_chunks(icc, exif, dpi))


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
        PNG_SIGNATURE
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
