"""Faithful image I/O: see :mod:`srkit.io.images` for conventions and policies."""

from __future__ import annotations

from srkit.io.images import (
    DEFAULT_MAX_PIXELS,
    ImageMeta,
    atomic_write,
    from_float,
    read_image,
    to_float,
    write_image,
)

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "ImageMeta",
    "atomic_write",
    "from_float",
    "read_image",
    "to_float",
    "write_image",
]
