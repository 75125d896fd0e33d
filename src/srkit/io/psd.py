"""PSD and PSB (Photoshop): the composite (merged) image, read by srkit itself with Pillow's PackBits decoder.

Pillow's PSD plugin reads 8-bit composites only and drops gray + alpha, so srkit parses the file itself: the
header (size, depth, colour mode), the image resources (ICC profile 1039, resolution 1005, EXIF 1058,
transparency index 1047, alpha identifiers 1053), the layer section only as far as it says whether the composite
has transparency, and the image data section (raw or PackBits, the latter decoded by Pillow; Photoshop writes no other).
Layers themselves are not read: the composite is what Photoshop saved ("Maximize compatibility" off leaves it
blank for layered files).

* Depths: 1-bit (bitmap: 1 = black -> 8-bit 0/255), 8-bit, 16-bit and 32-bit float (float32, as stored: linear).
* Colour modes: bitmap, grayscale and duotone (its gray channel) -> L; indexed -> RGB (RGBA with a transparent
  index); RGB; CMYK -> RGB through the ICC profile (else the naive formula with a warning; see
  :mod:`srkit.io.convert`); Lab (D50) -> sRGB (:func:`srkit.io.convert.lab_to_srgb`). Multichannel is refused.
* Alpha: the channel after the colour channels is the composite's transparency when the layer section says so
  (negative layer count, or a ``Mtrn``/``Mt16``/``Mt32`` block), when the alpha identifiers name it, or, in a file
  without layers or identifiers, always (as Pillow and psd-tools do); other extra channels (saved selections,
  spot colours) are dropped.
* Kept: ICC profile (gray and RGB; converted CMYK/Lab are sRGB, so it is dropped), EXIF (orientation applied),
  DPI.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from srkit.io.checks import check_cap, read_error
from srkit.io.convert import cmyk_to_rgb, lab_to_srgb
from srkit.io.meta import ImageMeta, clean_dpi, normalize_exif, orient

__all__ = ["psd_depth", "read_psd"]

#: Colour mode -> (name, colour channels).
_MODES = {0: ("bitmap", 1), 1: ("gray", 1), 2: ("indexed", 1), 3: ("RGB", 3), 4: ("CMYK", 4), 8: ("duotone", 1),
          9: ("Lab", 3)}
_TRANSPARENCY_KEYS = (b"Mtrn", b"Mt16", b"Mt32")
_LONG_KEYS_PSB = frozenset({b"LMsk", b"Lr16", b"Lr32", b"Layr", b"Mt16", b"Mt32", b"Mtrn", b"Alph", b"FMsk",
                            b"lnk2", b"FEid", b"FXid", b"PxSD"})


@dataclass
class _Psd:
    psb: bool
    channels: int
    height: int
    width: int
    depth: int
    mode: int
    palette: bytes = b""
    resources: dict[int, bytes] = field(default_factory=dict)
    layer_count: int = 0
    merged_transparency: bool = False
    data_offset: int = 0


def psd_depth(head: bytes) -> int:
    """Bits per channel from the first 26 bytes of a PSD/PSB file (0 when unknown)."""
    return struct.unpack_from(">H", head, 22)[0] if len(head) >= 26 else 0


def _section(data: bytes, pos: int, wide: bool = False) -> tuple[int, int]:
    """(start, end) of the length-prefixed section at ``pos`` (8-byte length when ``wide``)."""
    if wide:
        (length,) = struct.unpack_from(">Q", data, pos)
        start = pos + 8
    else:
        (length,) = struct.unpack_from(">I", data, pos)
        start = pos + 4
    if start + length > len(data):
        raise ValueError(f"truncated PSD data (a section at byte {pos} needs {length} bytes)")
    return start, start + length


def _parse(data: bytes) -> _Psd:
    if len(data) < 26:
        raise ValueError("truncated PSD header")
    version, channels, height, width, depth, mode = struct.unpack_from(">H6xHIIHH", data, 4)
    psd = _Psd(version == 2, channels, height, width, depth, mode)
    start, end = _section(data, 26)
    psd.palette = bytes(data[start:end])
    start, end = _section(data, end)
    pos = start
    while pos + 12 <= end and data[pos:pos + 4] == b"8BIM":
        (rid,) = struct.unpack_from(">H", data, pos + 4)
        name_len = data[pos + 6]
        pos += 6 + ((name_len + 2) & ~1)
        (size,) = struct.unpack_from(">I", data, pos)
        psd.resources[rid] = bytes(data[pos + 4:pos + 4 + size])
        pos += 4 + size + (size & 1)
    start, end = _section(data, end, psd.psb)
    _parse_layers(data, start, end, psd)
    psd.data_offset = end
    return psd


def _parse_layers(data: bytes, start: int, end: int, psd: _Psd) -> None:
    """Layer count and merged-transparency blocks of the layer and mask information section."""
    if end - start < 4:
        return
    info_start, info_end = _section(data, start, psd.psb)
    if info_end - info_start >= 2:
        (psd.layer_count,) = struct.unpack_from(">h", data, info_start)
    if info_end + 4 > end:
        return
    _, pos = _section(data, info_end)  # global layer mask info
    while pos + 12 <= end and data[pos:pos + 4] in (b"8BIM", b"8B64"):
        key = data[pos + 4:pos + 8]
        if psd.psb and key in _LONG_KEYS_PSB:
            (size,) = struct.unpack_from(">Q", data, pos + 8)
            body = pos + 16
        else:
            (size,) = struct.unpack_from(">I", data, pos + 8)
            body = pos + 12
        if key in _TRANSPARENCY_KEYS:
            psd.merged_transparency = True
        elif key in (b"Lr16", b"Lr32") and size >= 2 and not psd.layer_count:
            (psd.layer_count,) = struct.unpack_from(">h", data, body)
        pos = body + size + (-size % 4)


def _alpha_index(psd: _Psd, colour: int) -> int | None:
    """The channel holding the composite's transparency, or None (the rule psd-tools follows)."""
    if psd.channels <= colour:
        return None
    if psd.layer_count < 0 or psd.merged_transparency:
        return colour
    ids_raw = psd.resources.get(1053, b"")
    ids = list(struct.unpack(f">{len(ids_raw) // 4}I", ids_raw[:len(ids_raw) // 4 * 4])) if ids_raw else []
    if ids:
        index = psd.channels - len(ids) + ids.index(0) if 0 in ids else -1
        return index if colour <= index < psd.channels else None
    return None if psd.layer_count > 0 else colour


def _planes(path: Path, data: bytes, psd: _Psd, wanted: list[int]) -> list[np.ndarray]:
    """The channels ``wanted`` of the composite, each (H, W) of the file's sample type (bytes for 1-bit)."""
    pos = psd.data_offset
    if pos + 2 > len(data):
        raise read_error(path, "truncated PSD data (no image data section)")
    (compression,) = struct.unpack_from(">H", data, pos)
    pos += 2
    h, w, depth = psd.height, psd.width, psd.depth
    row = (w + 7) // 8 if depth == 1 else w * depth // 8
    plane_bytes = row * h
    if compression == 0:
        raw = data[pos:pos + plane_bytes * psd.channels]
        if len(raw) < plane_bytes * (max(wanted) + 1):
            raise read_error(path, "truncated PSD data (image data section)")
        planes = [raw[c * plane_bytes:(c + 1) * plane_bytes] for c in wanted]
    elif compression == 1:
        planes = _packbits_planes(path, data, pos, psd, row, wanted)
    else:
        raise read_error(path, f"unsupported PSD image data compression {compression}")
    if depth == 1:
        return [np.frombuffer(p, np.uint8).reshape(h, row) for p in planes]
    dtype = np.dtype({8: "u1", 16: ">u2", 32: ">f4"}[depth])
    return [np.frombuffer(p, dtype).reshape(h, w).astype(dtype.newbyteorder("=")) for p in planes]


def _packbits_planes(path: Path, data: bytes, pos: int, psd: _Psd, row: int, wanted: list[int]) -> list[bytes]:
    from PIL import Image

    h = psd.height
    count_size = 4 if psd.psb else 2
    n = psd.channels * h
    if pos + n * count_size > len(data):
        raise read_error(path, "truncated PSD data (RLE row lengths)")
    counts = np.frombuffer(data, ">u4" if psd.psb else ">u2", n, pos).astype(np.int64)
    starts = pos + n * count_size + np.concatenate([[0], np.cumsum(counts)])
    planes = []
    for c in wanted:
        a, b = int(starts[c * h]), int(starts[(c + 1) * h])
        if b > len(data):
            raise read_error(path, f"truncated PSD data (channel {c} needs bytes {a}..{b}, file has {len(data)})")
        im = Image.frombytes("L", (row, h), data[a:b], "packbits", "L")
        planes.append(im.tobytes())
    return planes


def read_psd(path: Path, cap: int | None) -> tuple[np.ndarray, ImageMeta]:
    """Read the composite image of a PSD/PSB file."""
    data = path.read_bytes()
    try:
        psd = _parse(data)
    except (ValueError, struct.error) as exc:
        raise read_error(path, f"invalid PSD data ({exc})") from None
    check_cap(path, psd.width, psd.height, cap)
    if psd.mode not in _MODES:
        raise read_error(path, f"unsupported PSD colour mode {psd.mode} (srkit reads bitmap, gray, duotone, "
                         "indexed, RGB, CMYK and Lab)")
    name, colour = _MODES[psd.mode]
    if psd.depth not in (1, 8, 16, 32) or (psd.depth == 1) != (psd.mode == 0):
        raise read_error(path, f"unsupported PSD: {psd.depth}-bit {name}")
    if psd.depth == 32 and psd.mode in (2, 4, 9) or psd.depth != 8 and psd.mode == 2:
        raise read_error(path, f"unsupported PSD: {psd.depth}-bit {name}")
    if psd.channels < colour:
        raise read_error(path, f"invalid PSD: {psd.channels} channels for {name}")
    alpha = _alpha_index(psd, colour)
    wanted = list(range(colour)) + ([alpha] if alpha is not None else [])
    planes = _planes(path, data, psd, wanted)
    icc = psd.resources.get(1039) or None
    if psd.mode == 0:
        bits = np.unpackbits(planes[0], axis=1)[:, :psd.width]
        planes = [np.where(bits == 1, np.uint8(0), np.uint8(255))]
    colour_planes, alpha_plane = planes[:colour], planes[colour:]
    if psd.mode == 2:
        pal = np.frombuffer(psd.palette[:768].ljust(768, b"\0"), np.uint8).reshape(3, 256).T
        idx = colour_planes[0]
        rgb = pal[idx]
        transparent = psd.resources.get(1047)
        if transparent and len(transparent) >= 2 and not alpha_plane:
            (index,) = struct.unpack_from(">H", transparent)
            alpha_plane = [np.where(idx == index, np.uint8(0), np.uint8(255))]
        colour_planes = [rgb[..., i] for i in range(3)]
    elif psd.mode == 4:
        most = np.iinfo(colour_planes[0].dtype).max  # Photoshop stores CMYK inverted: max = no ink
        ink = np.stack([most - p for p in colour_planes], axis=-1)
        rgb = cmyk_to_rgb(path, ink, icc)
        colour_planes, icc = [rgb[..., i] for i in range(3)], None
    elif psd.mode == 9:
        top = float(np.iinfo(colour_planes[0].dtype).max)  # L* 0..100; a*, b*: 128 (8-bit) or 32768 is 0
        lab = np.stack([colour_planes[0] / top * 100.0, colour_planes[1] * (256.0 / (top + 1)) - 128.0,
                        colour_planes[2] * (256.0 / (top + 1)) - 128.0], axis=-1)
        rgb = lab_to_srgb(lab, colour_planes[0].dtype)
        colour_planes, icc = [rgb[..., i] for i in range(3)], None
    stack = colour_planes + alpha_plane
    array = stack[0].copy() if len(stack) == 1 else np.stack(stack, axis=-1)
    layout = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[len(stack)]
    exif = normalize_exif(psd.resources.get(1058))
    array, exif = orient(np.ascontiguousarray(array), exif)
    res = psd.resources.get(1005, b"")
    dpi = None
    if len(res) >= 16:
        hres, vres = struct.unpack_from(">I", res, 0)[0] / 65536, struct.unpack_from(">I", res, 8)[0] / 65536
        dpi = clean_dpi((hres, vres))
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(array.dtype, 32)
    mode = f"{name};{psd.depth}" + ("+alpha" if alpha is not None else "")
    return array, ImageMeta(depth, layout, icc, exif, dpi, "PSD", mode)
