"""Recognise domain files by content, with the standard library and tifffile only (no domain extra needed)."""

from __future__ import annotations

from pathlib import Path

__all__ = ["is_dicom", "is_geotiff", "is_nifti", "is_video"]

_GEO_TAGS = (33550, 33922, 34264, 34735)  # ModelPixelScale, ModelTiepoint, ModelTransformation, GeoKeyDirectory
_AUDIO_BRANDS = (b"M4A ", b"M4B ", b"M4P ", b"F4A ", b"F4B ")  # ISO-BMFF major brands of audio-only files


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
    """An ISO-BMFF (MP4/MOV, not an AVIF/HEIF still image), Matroska/WebM, AVI, MPEG-TS/M2TS or Ogg container;
    not an audio-only M4A or Ogg Vorbis/Opus/FLAC file (a folder walk must not take music for video)."""
    if not path.is_file():
        return False
    head = _head(path, 64)
    if head[4:8] == b"ftyp":  # HEIF/AVIF stills (major or compatible brands) are srkit.io's to recognise
        from srkit.io.formats import sniff as image_format

        if head[8:12] in _AUDIO_BRANDS:  # .m4a / .m4b: audio only
            return False
        return image_format(head) not in ("HEIF", "AVIF")
    if head[:4] == b"\x1a\x45\xdf\xa3":  # EBML: Matroska / WebM
        return True
    if head[:4] == b"RIFF" and head[8:12] == b"AVI ":
        return True
    if head[:4] == b"OggS":  # Ogg Vorbis / Opus / FLAC / Speex audio starts with its audio stream's header
        first = head[27 + head[26]:] if len(head) > 27 else b""
        return not first.startswith((b"\x01vorbis", b"OpusHead", b"\x7fFLAC", b"Speex   "))
    return _ts_sync(_head(path, 4 * 192 + 1))


def _ts_sync(head: bytes) -> bool:
    """MPEG-TS (188-byte packets) or M2TS (192: a 4-byte timestamp first): the sync byte 0x47 at the start of each
    of the first packets (at least two, up to four), so a text file that happens to start with "G" is not a video."""
    for size, first in ((188, 0), (192, 4)):
        starts = [first + k * size for k in range(4) if first + k * size < len(head)]
        if len(starts) >= 2 and all(head[i] == 0x47 for i in starts):
            return True
    return False
