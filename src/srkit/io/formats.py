"""Which formats srkit reads and writes, and how it tells them apart.

Owns the format knowledge the rest of srkit relies on: recognising a file's format from its first bytes
(:func:`sniff`), the suffixes of image files (:data:`IMAGE_SUFFIXES`), format names by suffix
(:data:`FORMAT_NAMES`), the bit depths and layouts each writable format stores (:data:`WRITABLE`), and the
output format of a write (:func:`write_format`).
"""

from __future__ import annotations

from pathlib import Path

from srkit.io.checks import write_error

__all__ = [
    "FORMAT_NAMES",
    "IMAGE_SUFFIXES",
    "PNG_SIGNATURE",
    "WRITABLE",
    "sniff",
    "write_format",
]

#: The first 8 bytes of every PNG file.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


def sniff(head: bytes) -> str | None:
    """A file's format from its first 16 bytes: ``PNG``, ``JPEG``, ``WEBP``, ``TIFF``, ``GIF``, ``BMP`` or None."""
    if head.startswith(PNG_SIGNATURE):
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


#: Suffix (lower case, no dot) -> format name, for writing.
FORMAT_NAMES = {
    "png": "PNG",
    "jpg": "JPEG",
    "jpeg": "JPEG",
    "webp": "WEBP",
    "bmp": "BMP",
    "tif": "TIFF",
    "tiff": "TIFF",
}

#: Format name -> (bit depths, layouts) :func:`~srkit.io.write_image` can store in it.
WRITABLE = {
    "PNG": ((8, 16), ("L", "LA", "RGB", "RGBA")),
    "JPEG": ((8,), ("L", "RGB")),
    "WEBP": ((8,), ("L", "LA", "RGB", "RGBA")),
    "BMP": ((8,), ("L", "RGB")),
    "TIFF": ((8, 16, 32), ("L", "LA", "RGB", "RGBA")),
}


#: File suffixes (lower case, with the dot) of the formats :func:`~srkit.io.read_image` reads: every writable
#: format's suffixes, and GIF (read only). `srkit upscale` walks folders for these.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})


def write_format(target: Path, format: str | None) -> str:
    """The format :func:`~srkit.io.write_image` writes: from ``format``, else from the suffix of ``target``."""
    if format is not None:
        key = str(format).lower().lstrip(".")
        if key not in FORMAT_NAMES:
            raise write_error(
                target, f"unsupported format {format!r} (use png, jpeg, webp, bmp or tiff)"
            )
        return FORMAT_NAMES[key]
    key = target.suffix.lower().lstrip(".")
    if key not in FORMAT_NAMES:
        raise write_error(
            target, f"cannot tell the format from suffix {target.suffix!r} (use .png .jpg "
            ".jpeg .webp .bmp .tif .tiff, or pass format=)"
        )
    return FORMAT_NAMES[key]
