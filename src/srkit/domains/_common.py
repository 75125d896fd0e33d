"""Pieces the domain writers share: physical values to [0, 1] and back, nearest upscaling of masks, temp names."""

from __future__ import annotations

import contextlib
import os
import secrets
import shutil
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from srkit.infer.upscaler import Upscaler

__all__ = ["data_range", "from_unit", "model_label", "nearest", "one_line", "remove_path", "temp_path", "to_unit"]


def one_line(exc: BaseException) -> str:
    """An exception's message on one line."""
    return " ".join(str(exc).split()) or type(exc).__name__


def model_label(up: Upscaler) -> str:
    """"<arch> x<scale>" for metadata that says what was done."""
    return f"{up.model.info.arch} x{up.scale}"


def temp_path(dst: Path, tag: str = "") -> Path:
    """A hidden `.<name>.<12 hex>.tmp` next to `dst` (the name `srkit upscale` removes when a killed run left it)."""
    return dst.parent / f".{dst.name[:200]}{tag}.{secrets.token_hex(6)}.tmp"


def remove_path(p: Path) -> None:
    """Remove a file or folder if it exists; errors ignored (clean-up after a failure)."""
    with contextlib.suppress(OSError):
        if p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        elif p.exists() or p.is_symlink():
            os.unlink(p)


def data_range(values: np.ndarray, valid: np.ndarray | None = None) -> tuple[float, float] | None:
    """(min, max) of the finite (and `valid`) values; None when there are none."""
    v = values if valid is None else values[valid]
    if v.dtype.kind == "f":
        v = v[np.isfinite(v)]
    if v.size == 0:
        return None
    return float(v.min()), float(v.max())


def to_unit(values: np.ndarray, low: float, high: float) -> np.ndarray:
    """float32 (values - low) / (high - low), clipped to [0, 1] (non-finite values stay non-finite)."""
    span = (high - low) or 1.0
    x = (values.astype(np.float64) - low) / span
    np.clip(x, 0.0, 1.0, out=x)
    return x.astype(np.float32)


def from_unit(y: np.ndarray, low: float, high: float, dtype: np.dtype,
              limits: tuple[float, float] | None = None) -> np.ndarray:
    """`y` in [0, 1] back to low..high in `dtype`: integers rounded half to even and clipped to `limits` (default the
    dtype's range); floats as they come (non-finite values kept)."""
    span = (high - low) or 1.0
    v = y.astype(np.float64) * span + low
    dtype = np.dtype(dtype)
    if dtype.kind in "ui":
        info = np.iinfo(dtype)
        lo, hi = limits if limits is not None else (info.min, info.max)
        v = np.nan_to_num(v, nan=lo)
        np.rint(v, out=v)
        np.clip(v, lo, hi, out=v)
    return v.astype(dtype)


def nearest(a: np.ndarray, s: int, axes: tuple[int, int] = (-2, -1)) -> np.ndarray:
    """`a` upscaled by nearest (each value repeated s x s) along `axes`."""
    return np.repeat(np.repeat(a, s, axis=axes[0]), s, axis=axes[1])
