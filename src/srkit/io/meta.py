"""What srkit knows about an image besides its pixels, and the conversions of those pixels.

Owns :class:`ImageMeta`, the layouts (``L``, ``LA``, ``RGB``, ``RGBA``) and bit depths of image arrays,
:func:`to_float` / :func:`from_float`, EXIF handling (the ``Exif\\0\\0`` prefix, the orientation tag and applying
it to the pixels) and DPI validation. Format-independent: no decoder is imported here.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass
from typing import Any

import numpy as np

from srkit.errors import ShapeError

__all__ = [
    "DEPTH_OF_DTYPE",
    "EXIF_PREFIX",
    "LAYOUTS",
    "ImageMeta",
    "apply_orientation",
    "clean_dpi",
    "exif_tiff_block",
    "from_float",
    "normalize_exif",
    "orient",
    "to_float",
]

#: Number of channels -> layout name.
LAYOUTS = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}
#: Array dtype -> bit depth (32 = float32).
DEPTH_OF_DTYPE = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16, np.dtype(np.float32): 32}


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
        format: ``"PNG"``, ``"JPEG"``, ``"WEBP"``, ``"BMP"``, ``"TIFF"``, ``"GIF"``, ``"HEIF"``,
            ``"AVIF"``, ``"JPEG2000"``, ``"JXL"``, ``"QOI"``, ``"PSD"`` or ``"PNM"``; None for metadata not
            read from a file.
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
        if self.layout not in LAYOUTS.values():
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


# --- EXIF -----------------------------------------------------------------------------------

EXIF_PREFIX = b"Exif\x00\x00"
_TIFF_HEADERS = (b"II*\x00", b"MM\x00*")


def normalize_exif(raw: bytes | None) -> bytes | None:
    """EXIF as ``b"Exif\\0\\0"`` + TIFF block (adds the prefix when a file stores it bare)."""
    if not raw:
        return None
    raw = bytes(raw)
    if raw[:4] in _TIFF_HEADERS:
        return EXIF_PREFIX + raw
    return raw


def exif_tiff_block(exif: bytes) -> bytes:
    """The TIFF-structured EXIF block of ``exif`` (without the ``Exif\\0\\0`` prefix)."""
    return exif[6:] if exif.startswith(EXIF_PREFIX) else exif


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
    tiff = exif_tiff_block(exif)
    slot = _exif_orientation_slot(tiff)
    if slot is None:
        return 1
    offset, e, typ = slot
    (value,) = struct.unpack_from(e + ("H" if typ == 3 else "I"), tiff, offset)
    return value if 1 <= value <= 8 else 1


def _exif_reset_orientation(exif: bytes) -> bytes:
    """``exif`` with the IFD0 orientation value overwritten by 1; all other bytes unchanged."""
    prefix = exif[:6] if exif.startswith(EXIF_PREFIX) else b""
    tiff = bytearray(exif_tiff_block(exif))
    slot = _exif_orientation_slot(bytes(tiff))
    if slot is None:
        return exif
    offset, e, typ = slot
    struct.pack_into(e + ("H" if typ == 3 else "I"), tiff, offset, 1)
    return prefix + bytes(tiff)


def apply_orientation(array: np.ndarray, orientation: int) -> np.ndarray:
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


def orient(array: np.ndarray, exif: bytes | None) -> tuple[np.ndarray, bytes | None]:
    """Apply the EXIF orientation to ``array``; returns it and ``exif`` with the orientation reset to 1."""
    orientation = _exif_orientation(exif)
    if orientation == 1 or exif is None:
        return array, exif
    return apply_orientation(array, orientation), _exif_reset_orientation(exif)


def clean_dpi(dpi: Any) -> tuple[float, float] | None:
    """``dpi`` as two positive finite floats, or None when it is not that."""
    try:
        x, y = (float(v) for v in dpi)
    except (TypeError, ValueError):
        return None
    if not (np.isfinite(x) and np.isfinite(y) and x > 0 and y > 0):
        return None
    return (x, y)
