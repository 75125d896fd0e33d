"""Which formats srkit reads and writes, and how it tells them apart.

Owns the format knowledge the rest of srkit relies on: recognising a file's format from its first bytes
(:func:`sniff`, also used by :mod:`srkit.domains` to tell HEIF/AVIF stills from video), the suffixes of image
files (:data:`IMAGE_SUFFIXES`, :data:`READ_ONLY_SUFFIXES`), format names by suffix (:data:`FORMAT_NAMES`), the
bit depths and layouts each writable format stores (:data:`WRITABLE`), the HEIF/AVIF side limit
(:data:`HEIF_MAX_SIDE`), and the output format of a write (:func:`write_format`).
"""

from __future__ import annotations

from pathlib import Path

from srkit.io.checks import write_error

__all__ = [
    "FORMAT_NAMES",
    "HEIF_MAX_SIDE",
    "IMAGE_SUFFIXES",
    "PNG_SIGNATURE",
    "READ_ONLY_SUFFIXES",
    "SNIFF_BYTES",
    "WRITABLE",
    "sniff",
    "write_format",
]

#: The first 8 bytes of every PNG file.
PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"


#: ISOBMFF brands (``ftyp``) of HEIF images and of AVIF images.
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"hevm", b"hevs"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})
_GENERIC_HEIF_BRANDS = frozenset({b"mif1", b"msf1", b"miaf", b"mif2"})

#: How many leading bytes :func:`sniff` looks at (an ISOBMFF ``ftyp`` box lists its brands there).
SNIFF_BYTES = 64


def _ftyp_format(head: bytes) -> str | None:
    """``HEIF`` or ``AVIF`` from an ISOBMFF ``ftyp`` box at the start of ``head``, or None."""
    if head[4:8] != b"ftyp" or len(head) < 12:
        return None
    size = int.from_bytes(head[:4], "big")
    major = head[8:12]
    compatible = {head[i:i + 4] for i in range(16, min(max(size, 16), len(head)) - 3, 4)}
    if major in _AVIF_BRANDS:
        return "AVIF"
    if major in _HEIF_BRANDS:
        return "HEIF"
    if major in _GENERIC_HEIF_BRANDS or compatible & _GENERIC_HEIF_BRANDS:
        if compatible & _AVIF_BRANDS:
            return "AVIF"
        return "HEIF"
    return None


def sniff(head: bytes) -> str | None:
    """A file's format from its first :data:`SNIFF_BYTES` bytes (the magic numbers, never the name), or None.

    One of ``PNG``, ``JPEG``, ``WEBP``, ``TIFF``, ``GIF``, ``BMP``, ``HEIF``, ``AVIF``, ``JPEG2000`` (JP2
    container or bare codestream), ``JXL`` (JPEG XL, container or codestream), ``QOI``, ``PSD`` (PSD and PSB) and
    ``PNM`` (PBM, PGM, PPM: ``P1`` .. ``P6``).
    """
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
    if head[:12] == b"\x00\x00\x00\x0cjP  \r\n\x87\n" or head[:4] == b"\xff\x4f\xff\x51":
        return "JPEG2000"
    if head[:12] == b"\x00\x00\x00\x0cJXL \r\n\x87\n" or head[:2] == b"\xff\x0a":
        return "JXL"
    if head[:4] == b"qoif":
        return "QOI"
    if head[:4] == b"8BPS" and head[4:6] in (b"\x00\x01", b"\x00\x02"):
        return "PSD"
    if head[:1] == b"P" and head[1:2] in (b"1", b"2", b"3", b"4", b"5", b"6") and head[2:3] in (
        b" ", b"\t", b"\n", b"\r", b"#"
    ):
        return "PNM"
    return _ftyp_format(head)


#: Suffix (lower case, no dot) -> format name, for writing.
FORMAT_NAMES = {
    "png": "PNG",
    "jpg": "JPEG",
    "jpeg": "JPEG",
    "webp": "WEBP",
    "bmp": "BMP",
    "tif": "TIFF",
    "tiff": "TIFF",
    "heic": "HEIF",
    "heif": "HEIF",
    "avif": "AVIF",
    "jp2": "JPEG2000",
    "j2k": "JPEG2000",
}

#: Format name -> (bit depths, layouts) :func:`~srkit.io.write_image` can store in it.
WRITABLE = {
    "PNG": ((8, 16), ("L", "LA", "RGB", "RGBA")),
    "JPEG": ((8,), ("L", "RGB")),
    "WEBP": ((8,), ("L", "LA", "RGB", "RGBA")),
    "BMP": ((8,), ("L", "RGB")),
    "TIFF": ((8, 16, 32), ("L", "LA", "RGB", "RGBA")),
    "HEIF": ((8, 16), ("L", "LA", "RGB", "RGBA")),
    "AVIF": ((8,), ("L", "LA", "RGB", "RGBA")),
    "JPEG2000": ((8, 16), ("L", "LA", "RGB", "RGBA")),
}

#: HEIF (HEVC) and AVIF (AV1) images are written at most this many pixels a side (the codecs' frame limits).
HEIF_MAX_SIDE = 16384

#: Suffix (lower case, with the dot) -> format, of the formats :func:`~srkit.io.read_image` reads but srkit does
#: not write. `srkit upscale` writes them as PNG (TIFF for 16-bit or float) unless told otherwise.
READ_ONLY_SUFFIXES = {
    ".gif": "GIF",
    ".psd": "PSD",
    ".psb": "PSD",
    ".pbm": "PNM",
    ".pgm": "PNM",
    ".ppm": "PNM",
    ".pnm": "PNM",
    ".qoi": "QOI",
    ".jxl": "JXL",
}


#: File suffixes (lower case, with the dot) of the formats :func:`~srkit.io.read_image` reads: every writable
#: format's suffixes, and the read-only ones (:data:`READ_ONLY_SUFFIXES`). `srkit upscale` walks folders for these.
IMAGE_SUFFIXES = frozenset({f".{key}" for key in FORMAT_NAMES} | set(READ_ONLY_SUFFIXES))


def write_format(target: Path, format: str | None) -> str:
    """The format :func:`~srkit.io.write_image` writes: from ``format``, else from the suffix of ``target``."""
    if format is not None:
        key = str(format).lower().lstrip(".")
        if key not in FORMAT_NAMES:
            raise write_error(
                target, f"unsupported format {format!r} (use png, jpeg, webp, bmp, tiff, heic, avif or jp2)"
            )
        return FORMAT_NAMES[key]
    key = target.suffix.lower().lstrip(".")
    if key not in FORMAT_NAMES:
        raise write_error(
            target, f"cannot tell the format from suffix {target.suffix!r} (use .png .jpg "
            ".jpeg .webp .bmp .tif .tiff .heic .heif .avif .jp2 .j2k, or name the format: --format / format=)"
        )
    return FORMAT_NAMES[key]
