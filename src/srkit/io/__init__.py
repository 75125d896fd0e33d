"""Faithful image I/O: see :mod:`srkit.io.images` for conventions and policies.

Modules: :mod:`~srkit.io.images` (``read_image`` / ``write_image`` and their dispatch), :mod:`~srkit.io.meta`
(``ImageMeta``, float conversion, EXIF orientation, DPI), :mod:`~srkit.io.formats` (sniffing, suffixes, what
each format stores), :mod:`~srkit.io.png`, :mod:`~srkit.io.tiff`, :mod:`~srkit.io.pillow`, :mod:`~srkit.io.heif`
(HEIF, AVIF), :mod:`~srkit.io.jpeg2000`, :mod:`~srkit.io.psd`, :mod:`~srkit.io.pnm`, :mod:`~srkit.io.codecs`
(QOI, JPEG XL) (one format family each), :mod:`~srkit.io.convert` (CMYK, CIELAB, premultiplied alpha, bit
depths, missing optional decoders), :mod:`~srkit.io.checks` (pixel cap, one-line errors), :mod:`~srkit.io.atomic`
(``atomic_write``) and :mod:`~srkit.io.uint8` (8-bit views for metrics and datasets).
"""

from __future__ import annotations

from srkit.io.atomic import atomic_write
from srkit.io.checks import DEFAULT_MAX_PIXELS
from srkit.io.formats import IMAGE_SUFFIXES
from srkit.io.images import output_suffix, read_image, write_image
from srkit.io.meta import ImageMeta, from_float, to_float

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "IMAGE_SUFFIXES",
    "ImageMeta",
    "atomic_write",
    "from_float",
    "output_suffix",
    "read_image",
    "to_float",
    "write_image",
]
