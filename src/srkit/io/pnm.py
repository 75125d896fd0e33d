"""PNM (Netpbm PBM, PGM, PPM; plain and raw), read by srkit itself.

Pillow reduces 16-bit PPM to 8 bits, so srkit parses the header (magic, width, height, maxval; ``#`` comments
allowed between the fields) and decodes the samples with numpy:

* PBM (``P1``/``P4``, 1 bit, 1 = black) -> 8-bit gray, black 0 and white 255;
* PGM (``P2``/``P5``) -> gray, PPM (``P3``/``P6``) -> RGB: maxval 255 -> 8-bit and 65535 -> 16-bit as stored;
  any other maxval m is scaled to 8 bits (m < 255) or 16 bits (m > 255) with ``round(v * full / m)``.

Samples above maxval are clipped to it. PNM carries no ICC profile, EXIF or resolution. Only the first image of a
file is read (Netpbm allows several in a row).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from srkit.io.checks import check_cap, read_error
from srkit.io.convert import rescale
from srkit.io.meta import ImageMeta

__all__ = ["pnm_header", "read_pnm"]

_WHITESPACE = b" \t\n\r\v\f"


def pnm_header(data: bytes) -> tuple[str, int, int, int, int]:
    """(magic, width, height, maxval, offset of the first sample) of a PNM file; maxval is 1 for PBM.

    Raises ValueError for a malformed header.
    """
    magic = data[:2].decode("latin-1")
    fields = 2 if magic in ("P1", "P4") else 3
    values: list[int] = []
    pos = 2
    n = len(data)
    while len(values) < fields:
        while pos < n and (data[pos] in _WHITESPACE or data[pos] == 0x23):
            if data[pos] == 0x23:  # '#' comment to the end of the line
                while pos < n and data[pos] not in b"\r\n":
                    pos += 1
            else:
                pos += 1
        start = pos
        while pos < n and 0x30 <= data[pos] <= 0x39:
            pos += 1
        if pos == start:
            got = data[pos:pos + 1]
            raise ValueError("truncated PNM header" if not got else f"invalid PNM header (unexpected {got!r})")
        values.append(int(data[start:pos]))
    if pos >= n or data[pos] not in _WHITESPACE:
        raise ValueError("truncated PNM header" if pos >= n else "invalid PNM header (no whitespace after it)")
    width, height = values[0], values[1]
    maxval = values[2] if fields == 3 else 1
    if not 1 <= maxval <= 65535:
        raise ValueError(f"invalid PNM maxval {maxval} (must be 1..65535)")
    return magic, width, height, maxval, pos + 1


def _plain_tokens(body: bytes) -> list[bytes]:
    """The whitespace-separated tokens of a plain (ASCII) raster, ``#`` comments removed."""
    lines = [line.split(b"#", 1)[0] for line in body.splitlines()]
    return b" ".join(lines).split()


def read_pnm(path: Path, cap: int | None) -> tuple[np.ndarray, ImageMeta]:
    """Read the first image of a PBM/PGM/PPM file (plain or raw)."""
    data = path.read_bytes()
    try:
        magic, width, height, maxval, offset = pnm_header(data)
    except ValueError as exc:
        raise read_error(path, str(exc)) from None
    check_cap(path, width, height, cap)
    channels = 3 if magic in ("P3", "P6") else 1
    count = width * height * channels
    body = data[offset:]
    if magic == "P4":
        row = (width + 7) // 8
        if len(body) < row * height:
            raise read_error(path, f"truncated PNM data ({len(body)} of {row * height} raster bytes)")
        bits = np.unpackbits(np.frombuffer(body, np.uint8, row * height).reshape(height, row), axis=1)
        array = np.where(bits[:, :width] == 1, np.uint8(0), np.uint8(255))
        return array, ImageMeta(8, "L", None, None, None, "PNM", "1")
    if magic == "P1":
        digits = bytes(b for b in b"".join(_plain_tokens(body)) if b in b"01")
        if len(digits) < count:
            raise read_error(path, f"truncated PNM data ({len(digits)} of {count} samples)")
        ones = np.frombuffer(digits, np.uint8, count).reshape(height, width) == ord("1")
        return np.where(ones, np.uint8(0), np.uint8(255)), ImageMeta(8, "L", None, None, None, "PNM", "1")
    if magic in ("P5", "P6"):
        dtype = np.dtype(">u2") if maxval > 255 else np.dtype(np.uint8)
        if len(body) < count * dtype.itemsize:
            raise read_error(path, f"truncated PNM data ({len(body)} of {count * dtype.itemsize} raster bytes)")
        samples = np.frombuffer(body, dtype, count).astype(dtype.newbyteorder("="))
    else:
        tokens = _plain_tokens(body)
        if len(tokens) < count:
            raise read_error(path, f"truncated PNM data ({len(tokens)} of {count} samples)")
        try:
            samples = np.array([int(t) for t in tokens[:count]], dtype=np.int64)
        except ValueError:
            raise read_error(path, "invalid PNM data (a sample is not a number)") from None
    shape = (height, width) if channels == 1 else (height, width, 3)
    array = rescale(samples.reshape(shape), maxval)
    layout = "L" if channels == 1 else "RGB"
    mode = f"{layout};maxval={maxval}"
    return array, ImageMeta(8 if array.dtype == np.uint8 else 16, layout, None, None, None, "PNM", mode)
