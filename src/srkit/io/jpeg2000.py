"""JPEG 2000: JP2 files and bare codestreams, read and written (Pillow, ``imagecodecs`` where Pillow loses bits).

Reading: srkit parses the boxes (``ihdr``, ``colr``, ``cdef``, ``res``) and the codestream's SIZ marker itself,
so the size (pixel cap), the depth of every component, the ICC profile (``colr`` method 2/3), the resolution
(``resc``, else ``resd``) and premultiplied alpha (``cdef`` type 2) are known before decoding. Pixels: Pillow
(OpenJPEG) when it keeps them exactly, i.e. 8-bit components or one 16-bit gray component; ``imagecodecs``
(also OpenJPEG) for the rest, which Pillow would reduce or shift (16-bit colour, 12-bit gray, ...). Components
of n bits other than 8 and 16 are scaled to 8 (n < 8) or 16 (8 < n < 16) bits with ``round(v * full / (2^n - 1))``.
Signed components, and images of more than 4 components, are refused.

Writing (:func:`encode_jpeg2000`): a JP2 file (``.jp2``; with ``ihdr``, ``colr`` (the ICC profile, else sRGB
or gray), ``cdef`` for alpha and ``res``/``resc`` for the DPI) or, for ``.j2k``/``format="j2k"``, a bare
codestream (no metadata). 8/16-bit, L, LA, RGB, RGBA. ``quality`` 100: reversible 5/3 wavelet, lossless (exact);
below 100: irreversible 9/7 wavelet at a PSNR target of ``20 + 0.3 * quality`` dB (95 -> 48.5 dB), colour
transform on for RGB. The codestream comes from Pillow (8-bit, 16-bit gray) or ``imagecodecs`` (16-bit gray +
alpha and colour).
"""

from __future__ import annotations

import io
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any

import numpy as np

from srkit.io.checks import check_cap, read_error
from srkit.io.convert import require, unpremultiply
from srkit.io.meta import ImageMeta, clean_dpi
from srkit.io.pillow import from_pillow

__all__ = ["encode_jpeg2000", "jpeg2000_psnr", "read_jpeg2000"]

_JP2_SIGNATURE = b"\x00\x00\x00\x0cjP  \r\n\x87\n"
_CODESTREAM = b"\xff\x4f\xff\x51"


@dataclass
class _J2kInfo:
    width: int = 0
    height: int = 0
    bits: list[int] = field(default_factory=list)
    signed: bool = False
    icc: bytes | None = None
    enum_cs: int | None = None
    dpi: tuple[float, float] | None = None
    premultiplied: bool = False
    palette: bool = False
    codestream: int = 0


def _boxes(data: bytes, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, body start, body end) of the boxes in ``data[start:end]``."""
    out = []
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        header = 8
        if size == 1:
            if pos + 16 > end:
                break
            size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
        elif size == 0:
            size = end - pos
        if size < header or pos + size > end:
            raise ValueError(f"truncated JPEG 2000 data ({kind!r} box at byte {pos} needs {size} bytes)")
        out.append((kind, pos + header, pos + size))
        pos += size
    return out


def _resolution(data: bytes, start: int) -> tuple[float, float] | None:
    """(horizontal, vertical) dots per inch of a ``resc``/``resd`` box body (pixels per metre in the file)."""
    vn, vd, hn, hd, ve, he = struct.unpack_from(">HHHHbb", data, start)
    if not (vd and hd):
        return None
    return clean_dpi((hn / hd * 10.0**he * 0.0254, vn / vd * 10.0**ve * 0.0254))


def _parse(data: bytes) -> _J2kInfo:
    info = _J2kInfo()
    if data.startswith(_CODESTREAM):
        _parse_siz(data, 0, info)
        return info
    codestream = None
    for kind, body, end in _boxes(data, 0, len(data)):
        if kind == b"jp2h":
            for sub, sb, se in _boxes(data, body, end):
                if sub == b"colr" and info.icc is None and info.enum_cs is None and se - sb >= 3:
                    method = data[sb]
                    if method == 1 and se - sb >= 7:
                        info.enum_cs = struct.unpack_from(">I", data, sb + 3)[0]
                    elif method in (2, 3):
                        info.icc = bytes(data[sb + 3:se]) or None
                elif sub == b"cdef" and se - sb >= 2:
                    (n,) = struct.unpack_from(">H", data, sb)
                    for i in range(n):
                        if sb + 2 + 6 * i + 6 <= se:
                            _, typ, _ = struct.unpack_from(">HHH", data, sb + 2 + 6 * i)
                            info.premultiplied |= typ == 2
                elif sub == b"pclr":
                    info.palette = True
                elif sub == b"res ":
                    found: dict[bytes, tuple[float, float] | None] = {}
                    for rk, rb, re in _boxes(data, sb, se):
                        if rk in (b"resc", b"resd") and re - rb >= 10:
                            found[rk] = _resolution(data, rb)
                    info.dpi = found.get(b"resc") or found.get(b"resd")
        elif kind == b"jp2c" and codestream is None:
            codestream = body
    if codestream is None:
        raise ValueError("no codestream (jp2c box) in the JP2 file")
    _parse_siz(data, codestream, info)
    info.codestream = codestream
    return info


def _parse_siz(data: bytes, pos: int, info: _J2kInfo) -> None:
    if data[pos:pos + 4] != _CODESTREAM or len(data) < pos + 42:
        raise ValueError("invalid JPEG 2000 codestream (no SIZ marker)")
    xs, ys, xo, yo = struct.unpack_from(">IIII", data, pos + 8)
    (n,) = struct.unpack_from(">H", data, pos + 40)
    if len(data) < pos + 42 + 3 * n:
        raise ValueError("truncated JPEG 2000 data (SIZ marker)")
    info.width, info.height = xs - xo, ys - yo
    ssiz = [data[pos + 42 + 3 * i] for i in range(n)]
    info.bits = [(s & 0x7F) + 1 for s in ssiz]
    info.signed = any(s & 0x80 for s in ssiz)


def read_jpeg2000(path: Path, cap: int | None) -> tuple[np.ndarray, ImageMeta]:
    """Read a JP2 file or JPEG 2000 codestream."""
    data = path.read_bytes()
    try:
        info = _parse(data)
    except (ValueError, struct.error) as exc:
        raise read_error(path, str(exc) if "JPEG 2000" in str(exc) else f"invalid JPEG 2000 data ({exc})") from None
    check_cap(path, info.width, info.height, cap)
    n = len(info.bits)
    if info.signed:
        raise read_error(path, "unsupported JPEG 2000: signed samples")
    if not 1 <= n <= 4 or max(info.bits) > 16:
        raise read_error(path, f"unsupported JPEG 2000: {n} components of {info.bits} bits")
    pillow_exact = all(b == 8 for b in info.bits) or info.bits == [16] or info.palette
    if pillow_exact:
        from PIL import Jpeg2KImagePlugin

        with Jpeg2KImagePlugin.Jpeg2KImageFile(io.BytesIO(data)) as im:
            im.load()
            if info.icc:  # a CMYK image is converted through it (Pillow does not read the colr box's profile)
                im.info["icc_profile"] = info.icc
            array, layout, mode = from_pillow(path, im)
    else:
        if info.enum_cs in (12, 18):  # CMYK, sYCC: not converted by imagecodecs
            raise read_error(path, f"unsupported JPEG 2000: {info.bits}-bit components in colour space "
                             f"{info.enum_cs}")
        imagecodecs = require(path, "imagecodecs", f"JPEG 2000 with {max(info.bits)}-bit components")
        # the bare codestream: OpenJPEG would otherwise apply the ICC profile, which srkit keeps as metadata
        raw = np.asarray(imagecodecs.jpeg2k_decode(data[info.codestream:]))
        array = _scale_components(raw, info.bits)
        layout = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[1 if array.ndim == 2 else array.shape[2]]
        mode = f"{layout};{max(info.bits)}"
    if info.premultiplied and layout.endswith("A"):
        array = unpremultiply(array)
    depth = 8 if array.dtype == np.uint8 else 16
    icc = None if mode == "CMYK" else info.icc  # converted to sRGB: the CMYK profile no longer applies
    return np.ascontiguousarray(array), ImageMeta(depth, layout, icc, None, info.dpi, "JPEG2000", mode)


def _scale_components(raw: np.ndarray, bits: list[int]) -> np.ndarray:
    """Components of the given depths as uint8 (all <= 8 bits) or uint16, each scaled to the full range."""
    deep = max(bits) > 8
    full, dtype = (65535, np.uint16) if deep else (255, np.uint8)
    planes = raw[..., None] if raw.ndim == 2 else raw
    out = np.empty(planes.shape, dtype)
    for c in range(planes.shape[2]):
        top = (1 << bits[min(c, len(bits) - 1)]) - 1
        v = np.minimum(planes[..., c], top).astype(np.uint32)
        out[..., c] = (v * full + top // 2) // top
    return out[..., 0] if raw.ndim == 2 else out


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def jpeg2000_psnr(quality: int) -> float:
    """The PSNR target (dB) of a lossy JPEG 2000 write at ``quality`` (1..99)."""
    return 20.0 + 0.3 * quality


def _box(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I4s", 8 + len(body), kind) + body


def _ppm(dpi: float) -> tuple[int, int] | None:
    """(N, E) with N / 127 * 10^E pixels per metre = ``dpi`` dots per inch (N = dpi * 5000 / 10^E), N in 16 bits."""
    for e in (2, 3, 4, 5, 6):
        num = round(dpi * 5000 / 10**e)
        if 0 < num <= 0xFFFF:
            return num, e
    return None


def _jp2(codestream: bytes, arr: np.ndarray, layout: str, icc: bytes | None,
         dpi: tuple[float, float] | None) -> bytes:
    h, w = arr.shape[:2]
    n = len(layout)
    bits = 16 if arr.dtype == np.uint16 else 8
    ihdr = struct.pack(">IIHBBBB", h, w, n, bits - 1, 7, 0, 0)
    if icc:
        colr = bytes((2, 0, 0)) + icc
    else:
        colr = bytes((1, 0, 0)) + struct.pack(">I", 17 if layout in ("L", "LA") else 16)
    header = _box(b"ihdr", ihdr) + _box(b"colr", colr)
    if layout.endswith("A"):
        entries = [(i, 0, i + 1) for i in range(n - 1)] + [(n - 1, 1, 0)]
        header += _box(b"cdef", struct.pack(">H", n) + b"".join(struct.pack(">HHH", *e) for e in entries))
    if dpi:
        hx, vy = _ppm(dpi[0]), _ppm(dpi[1])
        if hx and vy:  # resc: VR_N, VR_D, HR_N, HR_D, VR_E, HR_E
            header += _box(b"res ", _box(b"resc", struct.pack(">HHHHbb", vy[0], 127, hx[0], 127, vy[1], hx[1])))
    ftyp = b"jp2 " + struct.pack(">I", 0) + b"jp2 "
    return _JP2_SIGNATURE + _box(b"ftyp", ftyp) + _box(b"jp2h", header) + _box(b"jp2c", codestream)


def _codestream(target: Path, arr: np.ndarray, layout: str, quality: int) -> bytes:
    lossless = quality == 100
    if arr.dtype == np.uint8 or layout == "L":
        from PIL import Image

        params: dict[str, Any] = {"no_jp2": True, "irreversible": not lossless, "mct": int(layout.startswith("RGB"))}
        if not lossless:
            params.update(quality_mode="dB", quality_layers=[jpeg2000_psnr(quality)])
        im = Image.fromarray(arr)  # uint8 L/LA/RGB/RGBA or uint16 gray (I;16)
        buf = io.BytesIO()
        im.save(buf, format="JPEG2000", **params)
        return buf.getvalue()
    imagecodecs = require(target, "imagecodecs", f"writing 16-bit {layout} JPEG 2000", write=True)
    encoded: bytes = imagecodecs.jpeg2k_encode(
        np.ascontiguousarray(arr), level=0 if lossless else jpeg2000_psnr(quality), codecformat="j2k",
        reversible=lossless, mct=layout.startswith("RGB"), bitspersample=16,
    )
    return bytes(encoded)


def encode_jpeg2000(
    fh: IO[bytes],
    target: Path,
    arr: np.ndarray,
    layout: str,
    icc: bytes | None,
    dpi: tuple[float, float] | None,
    quality: int,
    codestream_only: bool,
) -> None:
    """Write ``arr`` to ``fh`` as a JP2 file (ICC, alpha, DPI) or a bare codestream."""
    stream = _codestream(target, arr, layout, quality)
    fh.write(stream if codestream_only else _jp2(stream, arr, layout, icc, dpi))
