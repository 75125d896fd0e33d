"""Image-level upscaling: `upscale` (any image kind in, the same kind out) and `upscale_file` (file to file).

Both run one shared, stateless `Upscaler`; everything here works on the call's own arrays, so the functions may be
called from several threads with the same `Upscaler`.

Image handling (the same for every input kind):

* Colour: (H, W, 3) RGB goes through the model as is. Gray (H, W) / (H, W, 1) stays gray: for an RGB model the
  channel is replicated to 3, upscaled, and the mean of the 3 outputs taken back (a Y-only or channel-agnostic
  model gets the single channel directly).
* Alpha: a 2nd of 2 (LA) or 4th of 4 (RGBA) channel is straight (not premultiplied) alpha and is upscaled
  separately from the colour: ``alpha="bicubic"`` (MATLAB bicubic, the default: smooth, no ringing from a model
  trained on photos) or ``alpha="model"`` (alpha replicated to the model's channels, mean taken back).
  Before the colour is upscaled, the colour of fully transparent pixels (whatever the file stored there, often
  black) is replaced by a smooth fill pulled from the nearby visible pixels (`fill_transparent`), so the
  model's/kernel's support never mixes invisible black into visible edge pixels: no dark fringes.
* Depth: uint8 in -> uint8 out, uint16 -> uint16, float -> the same float dtype; the work is done in float32
  in [0, 1] and the result is clipped to [0, 1] and rounded (ties to even) back to integers.
* Output size: exactly (scale * H, scale * W).

Files (`upscale_file`):

* ICC profile and EXIF are copied (`read_image` has already applied the EXIF orientation and reset the tag to
  1); DPI is multiplied by the scale, so the printed size stays the same.
* Bit depth and layout are kept where the output format can hold them; otherwise the depth is reduced to the
  deepest the format stores (float32 -> 16-bit PNG, 16-bit -> 8-bit JPEG/WebP/BMP). Alpha is never dropped
  silently: RGBA/LA to JPEG or BMP is refused (`ImageWriteError`), write PNG, WebP or TIFF instead.
* Palette (P) images are read as RGB, or RGBA when they carry transparency, and written that way.
* Animated and multi-page files (APNG, animated WebP/GIF, multi-page TIFF) are refused by `read_image` with a
  clear `ImageReadError`: extract the frames first, then upscale them as single images.
* The output is written atomically (`write_image`); an output path that is the input file is refused.
"""

from __future__ import annotations

import dataclasses
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from srkit.errors import ConfigError, ImageWriteError, ShapeError
from srkit.infer.upscaler import Upscaler
from srkit.models import SRModel

__all__ = [
    "ALPHA_MODES",
    "DEFAULT_MODEL",
    "IMAGE_SUFFIXES",
    "fill_transparent",
    "load_upscaler",
    "upscale",
    "upscale_array",
    "upscale_file",
]

#: The model `upscale`, `upscale_file` and `srkit upscale` use when none is named.
DEFAULT_MODEL = "balanced-x4"

#: How the alpha channel is upscaled: MATLAB bicubic, or through the model.
ALPHA_MODES = ("bicubic", "model")

#: File suffixes (lower case) that `srkit upscale` treats as images when walking folders.
IMAGE_SUFFIXES = frozenset({".png", ".jpg", ".jpeg", ".webp", ".bmp", ".tif", ".tiff", ".gif"})

# Alpha at or below this (half an 8-bit step) counts as fully transparent: its colour is invisible.
_TRANSPARENT = 0.5 / 255.0

# Output format -> bit depths it stores (what `write_image` accepts), deepest last.
_FORMAT_DEPTHS = {"PNG": (8, 16), "TIFF": (8, 16, 32), "JPEG": (8,), "WEBP": (8,), "BMP": (8,)}
_FORMAT_KEYS = {"png": "PNG", "jpg": "JPEG", "jpeg": "JPEG", "webp": "WEBP", "bmp": "BMP", "tif": "TIFF",
                "tiff": "TIFF"}


# --------------------------------------------------------------------------------------------
# the Upscaler
# --------------------------------------------------------------------------------------------


def _upscaler_fields() -> set[str]:
    return {f.name for f in dataclasses.fields(Upscaler)}


def _is_classical_name(name: str) -> bool:
    from srkit.models import CLASSICAL_KERNELS

    return name in CLASSICAL_KERNELS


def _resolve_model(model: str | os.PathLike[str] | SRModel, scale: int | None) -> SRModel:
    """`load_model`, with the scale checked against the model (ConfigError) rather than used to pick it, except for
    scale-free models (classical upsamplers, weights whose shapes do not say their scale)."""
    from srkit.errors import ModelLoadError
    from srkit.models import load_model

    if scale is not None and (not isinstance(scale, int) or isinstance(scale, bool) or scale < 1):
        raise ConfigError(f"scale must be a positive integer, got {scale!r}")
    if isinstance(model, SRModel):
        m = model
    elif isinstance(model, str) and _is_classical_name(model):
        m = load_model(model, scale=scale)  # a bare classical name takes any scale
    else:
        try:
            m = load_model(model)
        except ModelLoadError:
            if scale is None:
                raise
            # Some authors' checkpoints do not reveal their scale: the caller's scale is the missing piece.
            m = load_model(model, scale=scale)
    if scale is not None and m.info.scale != scale:
        raise ConfigError(f"model {m.info.arch} is x{m.info.scale}, but scale {scale} was asked for")
    return m


def load_upscaler(
    model: str | os.PathLike[str] | SRModel | Upscaler = DEFAULT_MODEL,
    *,
    scale: int | None = None,
    tile: int | str | None = None,
    dtype: str = "auto",
    device: str = "cpu",
    tta: bool = False,
    backend: str | None = None,
) -> Upscaler:
    """The `Upscaler` for a model name, weights path, `SRModel` or `Upscaler` (returned as is after the scale
    check; `tile`, `dtype`, `device`, `tta` and `backend` are then ignored).

    Args:
        scale: expected scale; a model of another scale raises ConfigError (for classical upsamplers, which take
            any scale, it picks the scale; default 4).
        tile: None (whole image), an int >= 8 (LR tile side) or "auto" (from free memory).
        dtype: "auto", "fp32", "bf16" or "fp16".
        tta: 8-fold dihedral self-ensemble (passed to `Upscaler` where it supports it, else done here).
        backend: None (the Upscaler's default) or a backend name the Upscaler supports ("torch", "onnxruntime").

    Raises:
        ModelLoadError: the model cannot be resolved. ConfigError: scale mismatch, bad tile/dtype/device/backend.
    """
    if isinstance(model, Upscaler):
        if scale is not None and model.scale != scale:
            raise ConfigError(f"model {model.model.info.arch} is x{model.scale}, but scale {scale} was asked for")
        return model
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"unknown device {device!r}; use cpu, cuda, cuda:1, ...") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but CUDA is not available")
    m = _resolve_model(model, scale)
    kwargs: dict[str, Any] = {"device": device, "dtype": dtype, "tile": tile}
    fields = _upscaler_fields()
    if tta and "tta" in fields:
        kwargs["tta"] = True
    if backend is not None:
        if "backend" in fields:
            kwargs["backend"] = backend
        elif backend != "torch":
            raise ConfigError(f"{backend} backend not available (this Upscaler runs torch only)")
    return Upscaler(m, **kwargs)


# --------------------------------------------------------------------------------------------
# tensor core
# --------------------------------------------------------------------------------------------


def fill_transparent(color: torch.Tensor, alpha: torch.Tensor, threshold: float = _TRANSPARENT) -> torch.Tensor:
    """Replace the colour of fully transparent pixels by a smooth fill from the visible pixels around them.

    Pull-push (push-pull) interpolation: the colour is averaged down an image pyramid with alpha as the weight
    (each level's confidence is its children's summed weight, capped at 1), then pushed back up, each level
    filling its low-confidence pixels from the coarser level. Transparent pixels thus get the alpha-weighted colour
    of their nearest visible neighbours, blending smoothly further away; visible pixels are not changed.

    Args:
        color: (B, C, H, W) float, straight (not premultiplied) colour.
        alpha: (B, 1, H, W) float in [0, 1].
        threshold: alpha at or below this is fully transparent.

    Returns:
        (B, C, H, W) float, a new tensor; an image with no visible pixel, or none transparent, keeps its colour.
    """
    if color.ndim != 4 or alpha.shape != (color.shape[0], 1, *color.shape[2:]):
        raise ShapeError(f"fill_transparent expects (B, C, H, W) colour and (B, 1, H, W) alpha, got "
                         f"{tuple(color.shape)} and {tuple(alpha.shape)}")
    hole = alpha <= threshold
    if not bool(hole.any()):
        return color.clone()
    w = torch.where(hole, torch.zeros_like(alpha), alpha.clamp(0, 1)).float()
    c = color.float()
    # Pull: per level, the confidence-weighted mean colour of the children and their summed confidence
    # (capped at 1). avg_pool's divisor cancels in the mean; at ragged borders the sum is approximate.
    col, conf = c, w
    levels = [(col, conf)]
    while max(col.shape[-2:]) > 1:
        num = F.avg_pool2d(col * conf, 2, ceil_mode=True)
        den = F.avg_pool2d(conf, 2, ceil_mode=True)
        col = num / den.clamp(min=1e-12)
        conf = (den * 4.0).clamp(max=1.0)
        levels.append((col, conf))
    # Push: fill each level's unconfident part from the (upsampled) coarser level.
    filled = levels[-1][0]
    for col, conf in reversed(levels[:-1]):
        up = F.interpolate(filled, size=col.shape[-2:], mode="bilinear", align_corners=False)
        filled = conf * col + (1.0 - conf) * up
    # An image without any visible pixel has nothing to pull from: keep its colour.
    any_visible = (~hole).flatten(1).any(dim=1).view(-1, 1, 1, 1)
    out = torch.where(hole & any_visible, filled.to(color.dtype), color)
    return out


def _dihedral(x: torch.Tensor, k: int, inverse: bool = False) -> torch.Tensor:
    """The k-th (0..7) of the 8 rotations/flips of the last two axes, or its inverse."""
    rot, flip = k % 4, k >= 4
    if inverse:
        x = torch.rot90(x, -rot, (-2, -1))
        return x.flip(-1) if flip else x
    if flip:
        x = x.flip(-1)
    return torch.rot90(x, rot, (-2, -1))


def _infer(up: Upscaler, x: torch.Tensor, tta: bool) -> torch.Tensor:
    """(B, C, H, W) float32 -> (B, C, sH, sW) float32 (not clipped); gray through an RGB model as 3 equal
    channels, mean taken back; 8-fold self-ensemble when `tta` and the Upscaler does not do it itself."""
    info = up.model.info
    gray_to_rgb = x.shape[1] == 1 and not info.channel_agnostic and info.in_channels == 3
    if gray_to_rgb:
        x = x.expand(-1, 3, -1, -1)
    if tta and not getattr(up, "tta", False):
        y = None
        for k in range(8):
            yk = _dihedral(up.upscale_tensor(_dihedral(x, k).contiguous()), k, inverse=True)
            y = yk if y is None else y.add_(yk)
        assert y is not None
        y = y.div_(8.0)
    else:
        y = up.upscale_tensor(x.contiguous())
    if gray_to_rgb:
        y = y.mean(dim=1, keepdim=True)
    return y


def _upscale_bchw(up: Upscaler, x: torch.Tensor, alpha: str, tta: bool) -> torch.Tensor:
    """(B, C, H, W) float32 [0, 1], C = 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA) -> (B, C, sH, sW) float32 in [0, 1]."""
    c = x.shape[1]
    if c not in (1, 2, 3, 4):
        raise ShapeError(f"expected 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA) channels, got {c}")
    if c in (2, 4):
        color, a = x[:, :-1], x[:, -1:]
        color = fill_transparent(color, a)
        yc = _infer(up, color, tta)
        if alpha == "bicubic":
            from srkit.ops import imresize_matlab

            ya = imresize_matlab(a, float(up.scale))
        else:
            ya = _infer(up, a, tta)
        y = torch.cat([yc, ya.to(yc.device, yc.dtype)], dim=1)
    else:
        y = _infer(up, x, tta)
    return y.clamp_(0.0, 1.0)


def _check_alpha(alpha: str) -> None:
    if alpha not in ALPHA_MODES:
        raise ConfigError(f"alpha must be one of {', '.join(ALPHA_MODES)}, got {alpha!r}")


# --------------------------------------------------------------------------------------------
# arrays, PIL images, tensors
# --------------------------------------------------------------------------------------------


def upscale_array(up: Upscaler, image: np.ndarray, *, alpha: str = "bicubic", tta: bool = False) -> np.ndarray:
    """Upscale an image array with a ready `Upscaler`.

    Args:
        image: (H, W), (H, W, 1), (H, W, 2) LA, (H, W, 3) RGB or (H, W, 4) RGBA; uint8, uint16, or float in
            [0, 1] (float16/32/64).
        alpha: "bicubic" or "model" (see the module docstring).

    Returns:
        (sH, sW[, C]) with the input's dtype and layout, clipped to the dtype's range ([0, 1] for floats).

    Raises:
        ShapeError: another shape or dtype.
    """
    _check_alpha(alpha)
    arr = np.asarray(image)
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)):
        raise ShapeError(f"expected an (H, W) or (H, W, C) image with C in 1..4, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ShapeError(f"image is empty (shape {arr.shape})")
    if arr.dtype.kind == "u" and arr.dtype.itemsize in (1, 2):
        peak = float(np.iinfo(arr.dtype).max)
    elif arr.dtype.kind == "f":
        peak = 1.0
    else:
        raise ShapeError(f"image arrays must be uint8, uint16 or float, got {arr.dtype}")
    x = arr.astype(np.float32)
    if peak != 1.0:
        x /= np.float32(peak)
    x3 = x[..., None] if x.ndim == 2 else x
    t = torch.from_numpy(np.ascontiguousarray(x3.transpose(2, 0, 1)))[None]
    with torch.inference_mode():
        y = _upscale_bchw(up, t, alpha, tta)[0].permute(1, 2, 0).cpu().numpy()
    if arr.ndim == 2:
        y = y[..., 0]
    if peak == 1.0:
        return y.astype(arr.dtype.newbyteorder("="), copy=False)
    y = np.rint(y * np.float32(peak))  # already clipped to [0, 1]
    return y.astype(arr.dtype.newbyteorder("="))


def _upscale_tensor(up: Upscaler, x: torch.Tensor, alpha: str, tta: bool) -> torch.Tensor:
    if not x.is_floating_point() or x.ndim not in (3, 4):
        raise ShapeError(f"expected a float (C, H, W) or (B, C, H, W) tensor, got {tuple(x.shape)} {x.dtype}")
    with torch.inference_mode():
        y = _upscale_bchw(up, (x[None] if x.ndim == 3 else x).float(), alpha, tta)
    y = y.to(device=x.device, dtype=x.dtype)
    return y[0] if x.ndim == 3 else y


# PIL mode -> (mode the pixels are taken in, mode the result is returned in)
_PIL_MODES = {
    "1": ("L", "L"),
    "L": ("L", "L"),
    "LA": ("LA", "LA"),
    "La": ("LA", "LA"),
    "RGB": ("RGB", "RGB"),
    "RGBA": ("RGBA", "RGBA"),
    "RGBa": ("RGBA", "RGBA"),
    "RGBX": ("RGB", "RGB"),
    "I;16": ("I;16", "I;16"),
    "I;16L": ("I;16", "I;16"),
    "I;16B": ("I;16", "I;16"),
    "I;16N": ("I;16", "I;16"),
    "I": ("I", "I"),
    "F": ("F", "F"),
}


def _upscale_pil(up: Upscaler, im: Any, alpha: str, tta: bool) -> Any:
    """PIL image -> PIL image of the same mode family (P -> RGB/RGBA, 1 -> L, other modes -> RGB/RGBA)."""
    from PIL import Image

    mode = im.mode
    if mode in _PIL_MODES:
        src_mode, out_mode = _PIL_MODES[mode]
    else:  # P, PA, CMYK, YCbCr, LAB, HSV, ...: colour, with alpha where the image has transparency
        has_alpha = "A" in im.getbands() or im.has_transparency_data
        src_mode = out_mode = "RGBA" if has_alpha else "RGB"
    if src_mode.startswith("I;16"):
        arr = np.asarray(im).astype(np.uint16)  # native byte order, whatever the I;16 variant
    elif src_mode == "I":
        # 32-bit integer images are taken as 16-bit data (what Pillow makes of 16-bit gray files).
        arr = np.clip(np.asarray(im), 0, 65535).astype(np.uint16)
    elif src_mode == "F":
        arr = np.asarray(im, dtype=np.float32)
    else:
        if mode == "L" and "transparency" in im.info:
            src_mode = out_mode = "LA"  # a gray colour key is alpha
        arr = np.asarray(im if im.mode == src_mode else im.convert(src_mode))
    out = upscale_array(up, arr, alpha=alpha, tta=tta)
    if out_mode == "I":
        res = Image.fromarray(out.astype(np.int32))
    else:
        res = Image.fromarray(out)
        if res.mode != out_mode:
            res = res.convert(out_mode)
    # Carry the colour profile, and the DPI scaled so the printed size stays the same.
    if im.info.get("icc_profile"):
        res.info["icc_profile"] = im.info["icc_profile"]
    dpi = im.info.get("dpi")
    if dpi:
        try:
            res.info["dpi"] = tuple(float(v) * up.scale for v in dpi)
        except (TypeError, ValueError):
            pass
    return res


def _is_pil(obj: Any) -> bool:
    try:
        from PIL import Image
    except ImportError:  # pragma: no cover - Pillow is a dependency
        return False
    return isinstance(obj, Image.Image)


def upscale(
    image: Any,
    model: str | os.PathLike[str] | SRModel | Upscaler = DEFAULT_MODEL,
    *,
    scale: int | None = None,
    tile: int | str | None = None,
    dtype: str = "auto",
    device: str = "cpu",
    alpha: str = "bicubic",
    tta: bool = False,
):
    """Upscale one image; the result has the same kind as the input.

    Args:
        image: one of
            * a path (str / PathLike) to an image file -> the upscaled array (as `read_image` returns it:
              (H, W[, C]) uint8 / uint16 / float32, RGB(A) order);
            * a PIL image -> a PIL image of the same mode family (L, LA, RGB, RGBA, I;16, I, F kept; P -> RGB or
              RGBA; 1 -> L; other modes -> RGB/RGBA); ICC profile kept, DPI scaled;
            * a numpy array (H, W), (H, W, 1..4), uint8 / uint16 / float in [0, 1] -> the same dtype and layout;
            * a torch tensor (C, H, W) or (B, C, H, W), float in [0, 1], C in 1..4 -> a tensor of the same rank,
              dtype and device.
            2 channels are gray + alpha, 4 are RGB + alpha (see the module docstring).
        model: a model name, weights path, `SRModel` or `Upscaler` (then `tile`, `dtype`, `device` are ignored).
        scale: checked against the model (ConfigError if different); picks the scale of classical upsamplers.
        tile: None (whole image), int >= 8 or "auto".
        dtype: "auto", "fp32", "bf16" or "fp16".
        device: "cpu", "cuda", ...
        alpha: "bicubic" or "model".
        tta: 8-fold dihedral self-ensemble (8x slower, a little more accurate).

    Returns:
        The upscaled image, (scale * H, scale * W), values clipped to the valid range.

    Raises:
        ModelLoadError, ConfigError, ShapeError (unsupported image kind/shape/dtype), ImageReadError (path input).
    """
    _check_alpha(alpha)
    if isinstance(image, str | os.PathLike):
        from srkit.io import read_image

        up = load_upscaler(model, scale=scale, tile=tile, dtype=dtype, device=device, tta=tta)
        arr, _ = read_image(image)
        return upscale_array(up, arr, alpha=alpha, tta=tta)
    if not (_is_pil(image) or isinstance(image, np.ndarray | torch.Tensor)):
        raise ShapeError(
            f"image must be a path, PIL image, numpy array or torch tensor, got {type(image).__name__}"
        )
    up = load_upscaler(model, scale=scale, tile=tile, dtype=dtype, device=device, tta=tta)
    if isinstance(image, torch.Tensor):
        return _upscale_tensor(up, image, alpha, tta)
    if isinstance(image, np.ndarray):
        return upscale_array(up, image, alpha=alpha, tta=tta)
    return _upscale_pil(up, image, alpha, tta)


# --------------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------------


def _output_format(dst: Path, format: str | None) -> str | None:
    key = (format if format is not None else dst.suffix).lower().lstrip(".")
    return _FORMAT_KEYS.get(key)


def _fit_depth(arr: np.ndarray, fmt: str | None) -> np.ndarray:
    """Reduce the bit depth to the deepest `fmt` stores (float32 -> 16 -> 8); unknown formats: unchanged."""
    from srkit.io import from_float, to_float

    if fmt is None:
        return arr
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(arr.dtype, 32)
    depths = _FORMAT_DEPTHS[fmt]
    if depth in depths:
        return arr
    return from_float(to_float(arr), max(d for d in depths if d < depth))


def same_file(a: str | os.PathLike[str], b: str | os.PathLike[str]) -> bool:
    """True when paths `a` and `b` name the same file (same resolved path, or the same inode if both exist)."""
    if os.path.realpath(a) == os.path.realpath(b):
        return True
    try:
        return os.path.samefile(a, b)
    except OSError:
        return False


def upscale_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    model: str | os.PathLike[str] | SRModel | Upscaler = DEFAULT_MODEL,
    *,
    format: str | None = None,
    quality: int = 95,
    scale: int | None = None,
    tile: int | str | None = None,
    dtype: str = "auto",
    device: str = "cpu",
    alpha: str = "bicubic",
    tta: bool = False,
) -> Path:
    """Read `src`, upscale it, write `dst` (atomically) with its metadata; returns `Path(dst)`.

    Args:
        format: output format ("png", "jpg"/"jpeg", "webp", "bmp", "tif"/"tiff"); default: from `dst`'s suffix.
        quality: JPEG/WebP quality 1..100 (100 = lossless WebP).
        model, scale, tile, dtype, device, alpha, tta: as in `upscale`; pass an `Upscaler` to share one model
            over many files.

    Kept: ICC profile, EXIF (orientation already applied), DPI x scale, bit depth and layout as far as the
    format stores them (see the module docstring). Animated/multi-page input is refused (extract frames first).

    Raises:
        ImageReadError: `src` unreadable, animated or multi-page. ImageWriteError: `dst` is `src`, or cannot be
        written in that format (e.g. alpha to JPEG). ModelLoadError / ConfigError: model problems.
    """
    from srkit.io import read_image, write_image

    src_p, dst_p = Path(os.fspath(src)), Path(os.fspath(dst))
    if same_file(src_p, dst_p):
        raise ImageWriteError(f"cannot write '{dst_p}': it is the input file (choose another output name)")
    _check_alpha(alpha)
    up = load_upscaler(model, scale=scale, tile=tile, dtype=dtype, device=device, tta=tta)
    arr, meta = read_image(src_p)
    out = _fit_depth(upscale_array(up, arr, alpha=alpha, tta=tta), _output_format(dst_p, format))
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(out.dtype, 32)
    dpi = tuple(v * up.scale for v in meta.dpi) if meta.dpi else None
    out_meta = dataclasses.replace(meta, bit_depth=depth, dpi=dpi)
    return write_image(dst_p, out, out_meta, format=format, quality=quality)
