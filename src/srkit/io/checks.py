"""Checks shared by srkit's image readers and writers.

Owns the one-line error messages (``cannot read '<path>': <cause>`` / ``cannot write '<path>': <cause>``), the
pixel cap (:data:`DEFAULT_MAX_PIXELS`, ``$SRKIT_MAX_PIXELS``, checked from the header before any pixel is
decoded) and the refusal of animated and multi-page files. See :mod:`srkit.io.images` for the policies.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from srkit.errors import ConfigError, ImageReadError, ImageTooLargeError, ImageWriteError

__all__ = [
    "DEFAULT_MAX_PIXELS",
    "check_cap",
    "is_int",
    "one_line",
    "read_error",
    "refuse_frames",
    "resolve_cap",
    "write_error",
]


class _DefaultMaxPixels(int):
    """The default pixel cap; ``read_image`` uses ``$SRKIT_MAX_PIXELS`` instead when it is set."""

    __slots__ = ()


#: Default cap on width * height for :func:`read_image` (overridable with ``$SRKIT_MAX_PIXELS``).
DEFAULT_MAX_PIXELS: int = _DefaultMaxPixels(200_000_000)

_ENV_MAX_PIXELS = "SRKIT_MAX_PIXELS"


def one_line(text: object) -> str:
    """``text`` as one line: every run of whitespace (newlines included) becomes one space."""
    return " ".join(str(text).split())


def read_error(path: Path, cause: str) -> ImageReadError:
    """``ImageReadError("cannot read '<path>': <cause>")``, the cause on one line."""
    return ImageReadError(f"cannot read '{path}': {one_line(cause)}")


def write_error(path: Path, cause: str) -> ImageWriteError:
    """``ImageWriteError("cannot write '<path>': <cause>")``, the cause on one line."""
    return ImageWriteError(f"cannot write '{path}': {one_line(cause)}")


def resolve_cap(max_pixels: int | None) -> int | None:
    """The pixel cap to apply: ``max_pixels``, or ``$SRKIT_MAX_PIXELS`` when it is the default; None = no cap."""
    if isinstance(max_pixels, _DefaultMaxPixels):
        env = os.environ.get(_ENV_MAX_PIXELS, "").strip()
        if not env:
            return int(max_pixels)
        if env.lower() in ("none", "off", "0"):
            return None
        try:
            value = int(env)
        except ValueError:
            value = 0
        if value <= 0:
            raise ConfigError(
                f"{_ENV_MAX_PIXELS} must be a positive integer or 'none', got {env!r}"
            )
        return value
    if max_pixels is None:
        return None
    if not is_int(max_pixels) or max_pixels <= 0:
        raise ConfigError(f"max_pixels must be a positive integer or None, got {max_pixels!r}")
    return int(max_pixels)


def is_int(value: object) -> bool:
    """True for Python and numpy integers, False for bool."""
    return isinstance(value, int | np.integer) and not isinstance(value, bool)


def check_cap(path: Path, width: int, height: int, cap: int | None) -> None:
    """Refuse a header size that is not positive or is over ``cap`` pixels (before decoding)."""
    if width <= 0 or height <= 0:
        raise read_error(path, f"invalid image size {width}x{height} in header")
    if cap is not None and width * height > cap:
        raise ImageTooLargeError(
            f"cannot read '{path}': image is {width}x{height} = {width * height:,} pixels, "
            f"over the cap of {cap:,} pixels (pass max_pixels=None or set {_ENV_MAX_PIXELS} "
            "to allow it)"
        )


def refuse_frames(path: Path, frames: int) -> None:
    """Refuse animated and multi-page files (more than one frame)."""
    if frames > 1:
        raise read_error(path, f"file has {frames} frames; srkit reads single images")
