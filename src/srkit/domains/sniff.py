"""Recognise domain files by content, with the standard library and tifffile only (no domain extra needed)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["is_dicom", "is_geotiff", "is_nifti", "is_video"]

_GEO_TAGS = (33550, 33922, 34264, 34735)  # ModelPixelScale, ModelTiepoint, ModelTransformation, GeoKeyDirectory


def _head(path: Path, n: int) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read(n)
    except OSError:
        return b""


def is_geotiff(path: Path) -> bool:
    """A TIFF whose first page carries GeoTIFF tags (a georeferencing transform or GeoKeys)."""
    if not path.is_file() or _head(path, 4)[:4] not in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+"):
        return False
    try:
        import tifffile

        with tifffile.TiffFile(path) as tif:
            tags = tif.pages.first.tags
            return any(code in tags for code in _GEO_TAGS)
    except Exception:  # noqa: BLE001 - unreadable TIFF: not ours to judge here; read_image reports it
        return False


def is_dicom(path: Path) -> bool:
    """A DICOM Part 10 file ("DICM" at byte 128), or a folder holding such files (a series)."""
    if path.is_dir():
        try:
            return any(is_dicom(p) for p in sorted(path.iterdir())[:16] if p.is_file())
        except OSError:
            return False
    return _head(path, 132)[128:132] == b"DICM"


def is_nifti(path: Path) -> bool:
    """A NIfTI-1/2 file (plain or gzip-compressed): the magic at byte 344 (NIfTI-1) or 4 (NIfTI-2)."""
    if not path.is_file():
        return False
    head = _head(path, 352)
    if head[:2] == b"\x1f\x8b":
        import gzip

        try:
            with gzip.open(path, "rb") as f:
                head = f.read(352)
        except (OSError, EOFError):
            return False
    return head[344:348] in (b"n+1\x00", b"ni1\x00") or head[4:12] in (b"n+2\x00\r\n\x1a\n", b"ni2\x00\r\n\x1a\n")


def is_video(path: Path) -> bool:
    """An ISO-BMFF (MP4/MOV, not an AVIF/HEIF still image), Matroska/WebM, AVI, MPEG-TS or Ogg container."""
    if not path.is_file():
        return False
    head = _head(path, 64)
    if head[4:8] == b"ftyp":  # HEIF/AVIF stills (major or compatible brands) are srkit.io's to recognise
        from srkit.io.formats import sniff as image_format

        return image_format(head) not in ("HEIF", "AVIF")
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska / WebM
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return True
    if head[:4] == b"OggS":
        return True
    return len(head) > 0 and head[0] == 0x47 and _head(path, 189)[188:189] == b"\x47"  # MPEG-TS sync bytes
