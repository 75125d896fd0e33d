"""Atomic file writes: every file srkit writes (images, streamed outputs, fitted models) goes through here.

Owns :func:`atomic_write`: the data goes to a hidden ``.<name>.<random>.tmp`` next to the target, is fsync'ed,
then renamed over the target; on failure the temporary file is removed and an existing target stays intact.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Callable
from pathlib import Path
from typing import IO

from srkit.errors import SrkitError
from srkit.io.checks import write_error

__all__ = ["atomic_write", "same_file"]


def atomic_write(target: Path, encode: Callable[[IO[bytes]], None],
                 wrap: tuple[type[BaseException], ...] = (Exception,)) -> None:
    """`encode(fh)` into a hidden temp file next to `target`, fsync, rename over `target` (then fsync the folder).

    On any failure the temp file is removed. Exceptions of the `wrap` types (not srkit's own) become a one-line
    ImageWriteError naming `target`; everything else passes through as it is (a streaming writer passes
    ``(OSError,)``: a failing model is not a failing disk).
    """
    tmp = target.parent / f".{target.name[:200]}.{secrets.token_hex(6)}.tmp"
    try:
        fh = open(tmp, "xb")  # noqa: SIM115 - O_CREAT | O_EXCL, mode 0o666 & ~umask; closed below
    except OSError as exc:
        raise write_error(
            target, f"cannot create a file in '{target.parent}' ({exc.strerror or exc})"
        ) from exc
    try:
        with fh:
            encode(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException as exc:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        if isinstance(exc, SrkitError | MemoryError) or not isinstance(exc, wrap):
            raise
        raise write_error(target, f"{type(exc).__name__}: {exc}") from exc
    with contextlib.suppress(OSError, AttributeError):  # make the rename durable (POSIX)
        dfd = os.open(target.parent, os.O_RDONLY)
        try:
            os.fsync(dfd)
        finally:
            os.close(dfd)


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when paths `a` and `b` name the same file (same resolved path, or the same inode if both exist)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False
