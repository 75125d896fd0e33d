"""HEIF/HEIC (``pillow-heif``) and AVIF (Pillow; ``imagecodecs`` for more than 8 bits), read and written.

Reading: the pixel cap is checked from the header before decoding. HEIF: the primary image is read (as the
primary image of an MPO JPEG is; thumbnails, depth maps, gain maps and the other items of a collection are not);
animated AVIF is refused like other multi-frame files. HEIF: libheif applies the file's rotation and mirroring
(``irot``/``imir``) while decoding, so the EXIF orientation tag is reset to 1 and not applied again. AVIF: Pillow
reports ``irot``/``imir`` as the EXIF orientation, which srkit applies like every other format's. 10/12-bit
images become 16-bit (``round(v * 65535 / 1023)`` / ``/ 4095``); a 10/12-bit AVIF needs ``imagecodecs`` for
that (Pillow decodes AVIF to 8 bits), and without it is read as 8 bits with a warning. Premultiplied alpha
becomes straight alpha. Kept: ICC profile (``prof``/``rICC``), EXIF; HEIF and AVIF have no DPI.

Writing (:func:`encode_heif`): at most :data:`~srkit.io.formats.HEIF_MAX_SIDE` pixels a side. HEIF: HEVC with
``pillow-heif``; ``quality`` 100 is lossless (RGB stored as RGB, 4:4:4: exact for 8-bit data), 90..99 4:4:4
chroma, below 90 4:2:0; 16-bit data is stored at 10 bits (HEVC Main 10, what phones and OS viewers decode).
AVIF: AV1 with Pillow, 8-bit only, never exactly lossless (``quality`` 100 at 4:4:4 is within a few levels);
4:4:4 chroma from ``quality`` 90, gray stored as 4:0:0. Both keep the ICC profile and EXIF; gray + alpha is
stored as RGBA (read back as RGBA), except 8-bit gray + alpha to HEIF (monochrome + alpha, read back as LA).
"""

from __future__ import annotations

import struct
import warnings
from pathlib import Path
from typing import IO, Any

import numpy as np

from srkit.io.checks import check_cap, read_error, refuse_frames
from srkit.io.convert import FORMATS_EXTRA, require, rescale, unpremultiply
from srkit.io.meta import ImageMeta, _exif_reset_orientation, exif_tiff_block, normalize_exif, orient
from srkit.io.pillow import from_pillow

__all__ = ["avif_bit_depth", "encode_heif", "read_avif", "read_heif"]

_LAYOUT_OF_CHANNELS = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


# --------------------------------------------------------------------------------------------
# reading
# --------------------------------------------------------------------------------------------


def read_heif(path: Path, cap: int | None) -> tuple[np.ndarray, ImageMeta]:
    """Read the primary image of a HEIF/HEIC file with pillow-heif."""
    pillow_heif = require(path, "pillow_heif", "HEIC/HEIF")
    heif = pillow_heif.open_heif(path, convert_hdr_to_8bit=False)
    img = heif[heif.primary_index]  # the image every viewer shows; other top-level items are alternatives
    width, height = (int(v) for v in img.size)
    check_cap(path, width, height, cap)
    info: dict[str, Any] = img.info
    mode = str(img.mode)
    bits = int(info.get("bit_depth") or 8)
    array = np.array(img)  # decodes; a copy the caller owns
    base = mode.split(";")[0]
    if base not in ("L", "I", "LA", "RGB", "RGBA", "RGBa", "La"):
        raise read_error(path, f"unsupported HEIF image mode {mode!r}")
    if array.dtype == np.uint16 and bits < 16:  # pillow-heif shifts 10/12-bit samples to the top of 16 bits
        array = rescale(array >> (16 - bits), (1 << bits) - 1)
    if base in ("RGBa", "La"):
        array = unpremultiply(array)
    channels = 1 if array.ndim == 2 else array.shape[2]
    if channels == 4 and "chroma" not in info and np.array_equal(array[..., 0], array[..., 1]) and np.array_equal(
        array[..., 0], array[..., 2]
    ):  # libheif hands monochrome + alpha over as RGBA
        array = np.ascontiguousarray(array[..., [0, 3]])
        channels = 2
    icc = info.get("icc_profile") if info.get("icc_profile_type") in ("prof", "rICC") else None
    exif = normalize_exif(info.get("exif"))
    if exif is not None:
        exif = _exif_reset_orientation(exif)  # libheif has applied irot/imir already
    depth = 8 if array.dtype == np.uint8 else 16
    source = f"{mode};{bits}" if bits not in (8, 16) else mode
    return array, ImageMeta(depth, _LAYOUT_OF_CHANNELS[channels], bytes(icc) if icc else None, exif, None,
                            "HEIF", source)


def avif_bit_depth(data: bytes) -> int:
    """The deepest AV1 sequence (``av1C`` property) of an AVIF file: 8, 10 or 12; 8 when none is found."""
    depth = 8

    def walk(start: int, end: int, parents: tuple[bytes, ...]) -> None:
        nonlocal depth
        pos = start
        while pos + 8 <= end:
            size, kind = struct.unpack_from(">I4s", data, pos)
            header = 8
            if size == 1 and pos + 16 <= end:
                size, header = struct.unpack_from(">Q", data, pos + 8)[0], 16
            elif size == 0:
                size = end - pos
            if size < header or pos + size > end:
                return
            body = pos + header
            if kind == b"meta":
                walk(body + 4, pos + size, parents + (kind,))  # full box: version and flags first
            elif kind in (b"iprp", b"ipco"):
                walk(body, pos + size, parents + (kind,))
            elif kind == b"av1C" and pos + size >= body + 3:
                flags = data[body + 2]
                bits = (12 if flags & 0x20 else 10) if flags & 0x40 else 8
                depth = max(depth, bits)
            pos += size

    walk(0, len(data), ())
    return depth


def read_avif(path: Path, cap: int | None) -> tuple[np.ndarray, ImageMeta]:
    """Read an AVIF still image with Pillow (header, 8-bit pixels) and imagecodecs (10/12-bit pixels)."""
    try:
        from PIL import AvifImagePlugin
    except ImportError:
        raise read_error(path, "AVIF needs Pillow >= 11.2 built with AVIF support (pip install -U pillow)") from None
    if not AvifImagePlugin.SUPPORTED:
        raise read_error(path, "this Pillow was built without AVIF support (pip install -U pillow)")
    data = path.read_bytes()
    bits = avif_bit_depth(data)
    with open(path, "rb") as fh, AvifImagePlugin.AvifImageFile(fh) as im:
        check_cap(path, im.width, im.height, cap)
        refuse_frames(path, int(getattr(im, "n_frames", 1)))
        icc = im.info.get("icc_profile") or None
        exif = normalize_exif(im.info.get("exif"))
        deep = _avif_deep_pixels(path, data, bits) if bits > 8 else None
        if deep is not None:
            array = deep
            layout = _LAYOUT_OF_CHANNELS[1 if array.ndim == 2 else array.shape[2]]
            mode = f"{layout};{bits}"
        else:
            im.load()
            array, layout, mode = from_pillow(path, im)
    array, exif = orient(array, exif)
    depth = 8 if array.dtype == np.uint8 else 16
    return array, ImageMeta(depth, layout, icc, exif, None, "AVIF", mode)


def _avif_deep_pixels(path: Path, data: bytes, bits: int) -> np.ndarray | None:
    """10/12-bit AVIF pixels as 16-bit with imagecodecs; None (and a warning) when it is not installed."""
    try:
        import imagecodecs
    except ImportError:
        warnings.warn(
            f"'{path}': {bits}-bit AVIF read as 8 bits (Pillow's decoder); pip install '{FORMATS_EXTRA}' "
            "(imagecodecs) to keep its depth", RuntimeWarning, stacklevel=4,
        )
        return None
    array = np.asarray(imagecodecs.avif_decode(data))
    if array.dtype != np.uint16:
        return np.ascontiguousarray(array, dtype=np.uint8)
    return rescale(array, (1 << bits) - 1)


# --------------------------------------------------------------------------------------------
# writing
# --------------------------------------------------------------------------------------------


def encode_heif(
    fh: IO[bytes],
    target: Path,
    arr: np.ndarray,
    layout: str,
    fmt: str,
    icc: bytes | None,
    exif: bytes | None,
    quality: int,
) -> None:
    """Write ``arr`` to ``fh`` as HEIF (pillow-heif) or AVIF (Pillow) with its ICC profile and EXIF."""
    if fmt == "AVIF":
        _encode_avif(fh, arr, layout, icc, exif, quality)
        return
    pillow_heif = require(target, "pillow_heif", "writing HEIC/HEIF", write=True)
    deep = arr.dtype == np.uint16
    if layout == "LA" and deep:  # pillow-heif has no 16-bit gray + alpha mode
        arr = np.ascontiguousarray(arr[..., [0, 0, 0, 1]])
        layout = "RGBA"
    mode = {"L": "I;16" if deep else "L", "LA": "LA", "RGB": "RGB;16" if deep else "RGB",
            "RGBA": "RGBA;16" if deep else "RGBA"}[layout]
    data = np.ascontiguousarray(arr).tobytes()
    heif = pillow_heif.from_bytes(mode=mode, size=(arr.shape[1], arr.shape[0]), data=data)
    params: dict[str, Any] = {"quality": quality, "bit_depth": 10 if deep else 8}
    if quality == 100:
        params.update(quality=-1, chroma=444, matrix_coefficients=0)
    elif quality >= 90:
        params["chroma"] = 444
    if icc:
        params["icc_profile"] = icc
    if exif:
        params["exif"] = exif
    heif.save(fh, **params)


def _encode_avif(
    fh: IO[bytes], arr: np.ndarray, layout: str, icc: bytes | None, exif: bytes | None, quality: int
) -> None:
    from PIL import Image

    im = Image.fromarray(arr)
    if layout == "LA":
        im = im.convert("RGBA")
    params: dict[str, Any] = {"quality": quality}
    if layout != "L":
        params["subsampling"] = "4:4:4" if quality >= 90 else "4:2:0"
    if icc:
        params["icc_profile"] = icc
    if exif:
        params["exif"] = exif_tiff_block(exif)
    im.save(fh, format="AVIF", **params)
