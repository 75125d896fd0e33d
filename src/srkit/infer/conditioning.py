"""Restoration levels for conditioned models: ``strength`` / ``noise`` / ``jpeg`` -> the call's `Request.inputs`.

A conditioned model (``ModelInfo.inputs`` holds ``"noise"`` and ``"jpeg"``, e.g. ``real-x4-ctrl``) is told how much
to clean:

* ``noise``: the Gaussian noise sigma of the input on the 0-255 scale (>= 0; trained on 0-50, 0 = keep every grain);
* ``jpeg``: the JPEG quality of the input, 1..100 (trained on 10-100; 100 = no JPEG artefacts to remove);
* ``strength`` s in [0, 1] sets both along one line: ``noise = 50 s``, ``jpeg = 100 - 90 s`` (0: clean input,
  nothing removed; 1: sigma 50 and quality 10, the strongest cleaning trained).

What is not given is estimated from the image once, before tiling (`srkit.degrade.estimate.estimate_levels`; the
quality is read from a JPEG file's own quantisation tables when the input is one), so the model behaves like a
blind model and every tile gets the same levels. A model without these inputs refuses all three with one line.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from srkit.errors import ConfigError

if TYPE_CHECKING:  # not imported at run time: the CLI checks levels before torch is loaded
    from srkit.srmodel import ModelInfo

__all__ = [
    "LEVELS",
    "check_levels",
    "file_jpeg_quality",
    "level_inputs",
    "needs_estimate",
    "levels_at",
    "strength_levels",
    "takes_levels",
]

#: The per-call inputs a conditioned model takes.
LEVELS = ("noise", "jpeg")


def _number(value: Any) -> float | None:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        return None
    v = float(value)
    return v if math.isfinite(v) else None


def check_strength(value: Any) -> float:
    v = _number(value)
    if v is None or not 0.0 <= v <= 1.0:
        raise ConfigError(f"strength must be a number in [0, 1], got {value!r}")
    return v


def check_noise(value: Any) -> float:
    v = _number(value)
    if v is None or v < 0.0:
        raise ConfigError(f"noise must be a number >= 0 (noise sigma on the 0-255 scale; 0-50 trained), "
                          f"got {value!r}")
    return v


def check_jpeg(value: Any) -> float:
    v = _number(value)
    if v is None or not 1.0 <= v <= 100.0:
        raise ConfigError(f"jpeg must be a JPEG quality in 1..100 (100 = no JPEG), got {value!r}")
    return v


def check_levels(strength: Any = None, noise: Any = None, jpeg: Any = None) -> None:
    """Validate the user's levels (before anything is loaded).

    Raises:
        ConfigError: one line: strength outside [0, 1], noise < 0, jpeg outside 1..100, a value that is not a
            number, or strength given together with noise or jpeg.
    """
    if strength is not None:
        check_strength(strength)
        if noise is not None or jpeg is not None:
            raise ConfigError("give strength, or noise and/or jpeg, not both")
    if noise is not None:
        check_noise(noise)
    if jpeg is not None:
        check_jpeg(jpeg)


def levels_at(s):
    """``(noise, jpeg) = (50 s, 100 - 90 s)`` for strength s: a float or a tensor of strengths, unchecked (the
    one formula; training draws strengths as tensors, `strength_levels` checks a user's)."""
    return 50.0 * s, 100.0 - 90.0 * s


def strength_levels(strength: float) -> dict[str, float]:
    """``{"noise": 50 s, "jpeg": 100 - 90 s}`` for strength s in [0, 1]."""
    noise, jpeg = levels_at(check_strength(strength))
    return {"noise": noise, "jpeg": jpeg}


def takes_levels(info: ModelInfo) -> bool:
    """Whether the model takes the noise and JPEG levels."""
    return all(name in info.inputs for name in LEVELS)


def needs_estimate(info: ModelInfo, inputs: Mapping[str, float] | None = None, *, strength: Any = None,
                   noise: Any = None, jpeg: Any = None) -> bool:
    """Whether a call leaves a conditioned model's level(s) to be estimated from the image."""
    if not takes_levels(info) or strength is not None:
        return False
    given = set(inputs or {}) | ({"noise"} if noise is not None else set()) | ({"jpeg"} if jpeg is not None else set())
    return not set(LEVELS) <= given


def file_jpeg_quality(source: Any) -> int | None:
    """The quality of a JPEG file (path) or a PIL image opened from one, from its quantisation tables; None for
    anything else (other formats, arrays, unreadable files)."""
    from srkit.degrade.estimate import jpeg_quality_from_tables

    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        return None
    if isinstance(source, Image.Image):
        if getattr(source, "format", None) != "JPEG":
            return None
        return jpeg_quality_from_tables(getattr(source, "quantization", None))
    if not isinstance(source, (str, os.PathLike)):
        return None
    try:
        with Image.open(os.fspath(source)) as im:  # reads the header (and the tables) only
            if im.format != "JPEG":
                return None
            return jpeg_quality_from_tables(getattr(im, "quantization", None))
    except Exception:  # noqa: BLE001 - not an image Pillow opens: no quality to read
        return None


def level_inputs(
    info: ModelInfo,
    inputs: Mapping[str, float] | None = None,
    *,
    strength: float | None = None,
    noise: float | None = None,
    jpeg: float | None = None,
    image: Any = None,
    quality: int | None = None,
) -> dict[str, float]:
    """The inputs of one call: `inputs` plus the levels, given or estimated.

    Args:
        info: the model's `ModelInfo`.
        inputs: the call's other inputs by name (``noise`` / ``jpeg`` may be given here too, validated alike).
        strength, noise, jpeg: as in the module docstring (`check_levels` rules).
        image: the input image (array, (H, W[, C]) uint8 / uint16 / float in [0, 1]) to estimate missing levels
            from; None: missing levels are left to the model (which estimates them per call, i.e. per tile).
        quality: the input's known JPEG quality (`file_jpeg_quality`), used instead of the pixel estimate.

    Returns:
        name -> value for `Request.inputs`.

    Raises:
        ConfigError: bad values; levels for a model that takes none; a level given twice.
    """
    check_levels(strength, noise, jpeg)
    out = {str(k): v for k, v in (inputs or {}).items()}
    given = strength is not None or noise is not None or jpeg is not None
    if not takes_levels(info):
        if given:
            raise ConfigError(f"model {info.name} takes no noise or JPEG level: strength, noise and jpeg are for "
                              "conditioned models such as real-x4-ctrl")
        return out
    levels: dict[str, float] = {}
    if strength is not None:
        levels = strength_levels(strength)
    if noise is not None:
        levels["noise"] = check_noise(noise)
    if jpeg is not None:
        levels["jpeg"] = check_jpeg(jpeg)
    for name in levels:
        if name in out:
            raise ConfigError(f"{name} given twice (as {name}= or strength=, and in inputs)")
    if "noise" in out:
        out["noise"] = check_noise(out["noise"])
    if "jpeg" in out:
        out["jpeg"] = check_jpeg(out["jpeg"])
    out.update(levels)
    missing = [name for name in LEVELS if name not in out]
    if missing and image is not None:
        from srkit.degrade.estimate import estimate_levels

        est_noise, est_jpeg = estimate_levels(image, quality=quality)
        estimated = {"noise": est_noise, "jpeg": float(est_jpeg)}
        out.update({name: estimated[name] for name in missing})
    return out
