"""Colour and sample conversions applied while reading: the documented ones of :mod:`srkit.io.images`.

Owns scaling n-bit samples to 8 or 16 bits (:func:`rescale`), associated (premultiplied) alpha to straight alpha
(:func:`unpremultiply`), CIELAB to sRGB (:func:`lab_to_srgb`) and CMYK to RGB (:func:`cmyk_to_rgb`: through the
file's ICC profile with littleCMS, else the naive formula with a warning), and the one-line error for a missing
optional decoder (:func:`require`).

* ``rescale``: an n-bit sample v (or one with maximum value m, as PNM's maxval) becomes
  ``round(v * 255 / m)`` for m <= 255, else ``round(v * 65535 / m)`` (uint8 / uint16): 0 stays 0, the maximum
  becomes 255 / 65535.
* ``unpremultiply``: straight colour ``c = round(c_premultiplied * max / alpha)``, clipped to ``max`` (255,
  65535, or 1.0 for float, where float colours are divided without clipping); pixels with ``alpha == 0``
  get colour 0.
* ``lab_to_srgb``: CIE 1976 L*a*b* relative to the file's white point (D50 unless the file says otherwise) ->
  XYZ -> Bradford chromatic adaptation to D65 (none when the white is already D65) -> linear sRGB (IEC 61966-2-1
  matrix) -> clipped to [0, 1] -> sRGB transfer curve -> the input's bit depth, rounded.
* ``cmyk_to_rgb``: CMYK samples are ink amounts (0 = no ink). With an ICC profile: littleCMS (Pillow's
  ``ImageCms``, perceptual intent) from the file's CMYK profile to sRGB; 16-bit samples use ``imagecodecs``'s
  littleCMS binding (Pillow's CMYK mode has 8 bits). Without a profile (or with one littleCMS refuses):
  ``R = (1 - C)(1 - K)``, ``G = (1 - M)(1 - K)``, ``B = (1 - Y)(1 - K)`` (Pillow's ``convert("RGB")``), with a
  ``RuntimeWarning`` saying the colours are approximate.
"""

from __future__ import annotations

import importlib
import io
import warnings
from pathlib import Path
from types import ModuleType

import numpy as np

from srkit.io.checks import one_line, read_error

__all__ = [
    "D50",
    "D65",
    "FORMATS_EXTRA",
    "cmyk_to_rgb",
    "lab_to_srgb",
    "require",
    "rescale",
    "unpremultiply",
]

#: The pip extra that installs srkit's optional decoders and encoders (pillow-heif, imagecodecs).
FORMATS_EXTRA = "srkit[formats]"


def require(path: Path, module: str, what: str, *, write: bool = False) -> ModuleType:
    """Import ``module`` (an optional decoder) or raise one line naming the extra that installs it."""
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        package = {"pillow_heif": "pillow-heif"}.get(module, module)
        cause = (f"{what} needs the optional package '{package}', which is not installed "
                 f"(pip install '{FORMATS_EXTRA}'); {type(exc).__name__}: {one_line(exc)}")
        if write:
            from srkit.io.checks import write_error

            raise write_error(path, cause) from None
        raise read_error(path, cause) from None


# --------------------------------------------------------------------------------------------
# bit depth
# --------------------------------------------------------------------------------------------


def rescale(a: np.ndarray, maxval: int) -> np.ndarray:
    """Integer samples in 0..``maxval`` as uint8 (``maxval`` <= 255) or uint16: ``round(v * full / maxval)``."""
    full, dtype = (255, np.uint8) if maxval <= 255 else (65535, np.uint16)
    if maxval == full and a.dtype == dtype:
        return np.ascontiguousarray(a)
    if maxval == full:
        return np.minimum(a, full).astype(dtype)
    v = np.minimum(a, maxval).astype(np.uint32)  # v * 65535 + maxval // 2 < 2^32
    return ((v * full + maxval // 2) // maxval).astype(dtype)


# --------------------------------------------------------------------------------------------
# alpha
# --------------------------------------------------------------------------------------------


def unpremultiply(a: np.ndarray) -> np.ndarray:
    """Associated (premultiplied) alpha -> straight alpha; the last channel is alpha. Returns a new array."""
    alpha = a[..., -1:]
    colour = a[..., :-1]
    if a.dtype.kind == "f":
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(alpha > 0, colour / np.where(alpha > 0, alpha, 1), 0).astype(a.dtype)
        return np.concatenate([out, alpha], axis=-1)
    top = int(np.iinfo(a.dtype).max)
    al = alpha.astype(np.uint32)  # colour * 65535 + alpha // 2 < 2^32
    num = colour.astype(np.uint32) * top + al // 2
    straight = np.where(al > 0, num // np.maximum(al, 1), 0)
    out = np.minimum(straight, top).astype(a.dtype)
    return np.concatenate([out, alpha], axis=-1)


# --------------------------------------------------------------------------------------------
# CIELAB
# --------------------------------------------------------------------------------------------

#: CIE standard illuminants as xy chromaticities (2 degree observer).
D50 = (0.34567, 0.35850)
D65 = (0.31271, 0.32902)

_BRADFORD = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
_XYZ_TO_SRGB = np.array([
    [3.2404542, -1.5371385, -0.4985314],
    [-0.9692660, 1.8760108, 0.0415560],
    [0.0556434, -0.2040259, 1.0572252],
])


def _white_xyz(xy: tuple[float, float]) -> np.ndarray:
    x, y = xy
    return np.array([x / y, 1.0, (1.0 - x - y) / y])


def _adaptation(src: tuple[float, float], dst: tuple[float, float]) -> np.ndarray:
    """Bradford chromatic adaptation matrix from white ``src`` to white ``dst`` (XYZ, Y = 1)."""
    if abs(src[0] - dst[0]) < 1e-4 and abs(src[1] - dst[1]) < 1e-4:
        return np.eye(3)
    s, d = _BRADFORD @ _white_xyz(src), _BRADFORD @ _white_xyz(dst)
    result: np.ndarray = np.linalg.inv(_BRADFORD) @ np.diag(d / s) @ _BRADFORD
    return result


def lab_to_srgb(
    lab: np.ndarray, dtype: np.dtype, white: tuple[float, float] = D50
) -> np.ndarray:
    """(..., 3) float L* (0..100), a*, b* relative to ``white`` -> sRGB of ``dtype`` (uint8, uint16 or float32)."""
    lab = lab.astype(np.float64)
    fy = (lab[..., 0] + 16.0) / 116.0
    fx = fy + lab[..., 1] / 500.0
    fz = fy - lab[..., 2] / 200.0
    eps, kappa = 216.0 / 24389.0, 24389.0 / 27.0

    def finv(f: np.ndarray) -> np.ndarray:
        f3 = f ** 3
        return np.where(f3 > eps, f3, (116.0 * f - 16.0) / kappa)

    xyz = np.stack([finv(fx), finv(fy), finv(fz)], axis=-1) * _white_xyz(white)
    matrix = _XYZ_TO_SRGB @ _adaptation(white, D65)
    linear = np.clip(xyz @ matrix.T, 0.0, 1.0)
    srgb = np.where(linear <= 0.0031308, 12.92 * linear, 1.055 * np.power(linear, 1 / 2.4) - 0.055)
    if np.dtype(dtype).kind == "f":
        return srgb.astype(np.float32)
    top = float(np.iinfo(dtype).max)
    return np.rint(srgb * top).astype(dtype)


# --------------------------------------------------------------------------------------------
# CMYK
# --------------------------------------------------------------------------------------------


def cmyk_to_rgb(path: Path, cmyk: np.ndarray, icc: bytes | None) -> np.ndarray:
    """(H, W, 4) uint8/uint16 ink amounts -> (H, W, 3) RGB of the same dtype (see the module docstring)."""
    why = "it has no ICC profile"
    if icc:
        try:
            if cmyk.dtype == np.uint8:
                return _cmyk_icc_pillow(cmyk, icc)
            return _cmyk_icc_imagecodecs(path, cmyk, icc)
        except (OSError, ValueError, RuntimeError, TypeError) as exc:  # a profile littleCMS refuses
            why = f"littleCMS refused its ICC profile ({type(exc).__name__}: {one_line(exc)})"
    warnings.warn(
        f"'{path}': CMYK converted to RGB with the naive formula R = (1-C)(1-K) because {why}; "
        "the colours are approximate", RuntimeWarning, stacklevel=4,
    )
    top = float(np.iinfo(cmyk.dtype).max)
    ink: np.ndarray = cmyk.astype(np.float32 if cmyk.dtype == np.uint8 else np.float64)  # products exact in float32
    inv = top - ink
    return np.rint(inv[..., :3] * inv[..., 3:4] / top).astype(cmyk.dtype)


def _cmyk_icc_pillow(cmyk: np.ndarray, icc: bytes) -> np.ndarray:
    from PIL import Image, ImageCms

    src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
    if src.profile.xcolor_space.strip() != "CMYK":
        raise ValueError(f"profile colour space is {src.profile.xcolor_space.strip()!r}, not CMYK")
    transform = ImageCms.buildTransform(
        src, ImageCms.createProfile("sRGB"), "CMYK", "RGB", ImageCms.Intent.PERCEPTUAL
    )
    im = Image.frombytes("CMYK", (cmyk.shape[1], cmyk.shape[0]), np.ascontiguousarray(cmyk).tobytes())
    out = ImageCms.applyTransform(im, transform)
    assert out is not None
    return np.asarray(out, dtype=np.uint8).copy()


def _cmyk_icc_imagecodecs(path: Path, cmyk: np.ndarray, icc: bytes) -> np.ndarray:
    imagecodecs = require(path, "imagecodecs", "16-bit CMYK with an ICC profile")
    srgb = imagecodecs.cms_profile("srgb")
    out = imagecodecs.cms_transform(
        np.ascontiguousarray(cmyk), icc, srgb, colorspace="cmyk", outcolorspace="rgb",
        outdtype=np.uint16, intent=0,
    )
    return np.ascontiguousarray(out, dtype=np.uint16)
