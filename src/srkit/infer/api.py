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
* Big outputs are streamed (`upscale_file(stream=...)`, automatic by default): upscaled in strips and written
  without ever holding the whole output, with the same pixels and metadata (see `upscale_file`).
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Iterator
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
    "STREAM_CAP_BYTES",
    "STREAM_MEMORY_SHARE",
    "WEBP_MAX_SIDE",
    "WHOLE_IMAGE_COPIES",
    "available_memory",
    "fill_transparent",
    "load_upscaler",
    "upscale",
    "upscale_array",
    "upscale_file",
    "whole_image_peak_bytes",
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


def _upscale_bchw(up: Upscaler, x: torch.Tensor, alpha: str, tta: bool, fill: bool = True) -> torch.Tensor:
    """(B, C, H, W) float32 [0, 1], C = 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA) -> (B, C, sH, sW) float32 in [0, 1].

    `fill` False: the colour under transparent pixels is already filled (the streaming path fills the whole
    image once, then upscales strips of it)."""
    c = x.shape[1]
    if c not in (1, 2, 3, 4):
        raise ShapeError(f"expected 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA) channels, got {c}")
    if c in (2, 4):
        color, a = x[:, :-1], x[:, -1:]
        if fill:
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


def _peak(arr: np.ndarray) -> float:
    """The value of full intensity for an image array's dtype (uint8 / uint16: their maximum; float: 1)."""
    if arr.dtype.kind == "u" and arr.dtype.itemsize in (1, 2):
        return float(np.iinfo(arr.dtype).max)
    if arr.dtype.kind == "f":
        return 1.0
    raise ShapeError(f"image arrays must be uint8, uint16 or float, got {arr.dtype}")


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
    peak = _peak(arr)
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


# --- when to stream ----------------------------------------------------------------------------

#: The whole-image path of `upscale_file` peaks at about this many float32 copies of the output (working
#: channels): the model's output, its clipped/scaled/rounded copies, the integer result and the encoder's copy,
#: plus the model's tile activations. Measured with tiny-x4 (Y-only ECBSR) on RGB: 2000 x 2000 -> 8000 x 8000
#: peaks at 3.4 GB RSS for 0.77 GB of float32 output (4.4 copies).
WHOLE_IMAGE_COPIES = 4.5
#: Automatic mode streams when the whole-image estimate exceeds this share of the available memory ...
STREAM_MEMORY_SHARE = 0.5
#: ... or this many bytes, whichever is smaller.
STREAM_CAP_BYTES = 4 << 30
#: WebP stores at most this many pixels a side.
WEBP_MAX_SIDE = 16383
# Side of the tiles of streamed TIFFs (final, or the temporary one libvips converts to PNG/JPEG).
_STREAM_TILE = 256
_LAYOUT_NAMES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


def available_memory() -> int | None:
    """Bytes of memory available to new allocations: MemAvailable from /proc/meminfo, else the free physical
    pages (`os.sysconf`); None when neither can be read."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return int(os.sysconf("SC_AVPHYS_PAGES")) * int(os.sysconf("SC_PAGE_SIZE"))
    except (OSError, ValueError, AttributeError):
        return None


def _work_channels(up: Upscaler, channels: int) -> int:
    """Channels of the float32 working copies: gray through an RGB model runs as 3, alpha adds 1."""
    info = up.model.info
    has_alpha = channels in (2, 4)
    color = channels - has_alpha
    if color == 1 and not info.channel_agnostic and info.in_channels == 3:
        color = 3
    return color + has_alpha


def whole_image_peak_bytes(height: int, width: int, channels: int, scale: int) -> int:
    """Estimated peak memory of a whole-image `upscale_file`: `WHOLE_IMAGE_COPIES` float32 copies of the
    (scale * height) x (scale * width) x `channels` output."""
    return int(WHOLE_IMAGE_COPIES * (height * scale) * (width * scale) * channels * 4)


def stream_budget(available: int | None = None) -> int:
    """Bytes a whole-image upscale may use before automatic mode streams: min(`STREAM_MEMORY_SHARE` x
    available memory, `STREAM_CAP_BYTES`); `available` defaults to `available_memory()`."""
    if available is None:
        available = available_memory()
    if available is None:
        return STREAM_CAP_BYTES
    return int(min(STREAM_MEMORY_SHARE * available, STREAM_CAP_BYTES))


# --- streamed outputs ------------------------------------------------------------------------


def _fit_dtype(dtype: np.dtype, fmt: str | None) -> np.dtype:
    return _fit_depth(np.zeros((1, 1), dtype), fmt).dtype


def _hr_strips(
    up: Upscaler, arr: np.ndarray, *, alpha: str, tta: bool, fmt: str, rows: int, context: int
) -> Iterator[np.ndarray]:
    """The output of `_fit_depth(upscale_array(up, arr), fmt)`, as HR strips of `rows` LR rows each.

    Each strip is upscaled with `context` LR rows above and below (at least the model's receptive field), so for
    models with a finite receptive field every strip equals the same rows of the whole-image result. The colour
    under fully transparent pixels depends on the whole image (`fill_transparent`): it is filled once, on the
    whole LR image, before the strips are cut.
    """
    peak = _peak(arr)
    x3 = arr[..., None] if arr.ndim == 2 else arr
    h, c, s = x3.shape[0], x3.shape[2], up.scale
    out_dtype = arr.dtype.newbyteorder("=")

    def to_float(block: np.ndarray) -> np.ndarray:
        x = block.astype(np.float32)
        if peak != 1.0:
            x /= np.float32(peak)
        return x

    filled = None
    if c in (2, 4):
        a = to_float(x3[..., -1])
        if bool((a <= _TRANSPARENT).any()):
            color = torch.from_numpy(np.ascontiguousarray(to_float(x3[..., :-1]).transpose(2, 0, 1)))[None]
            with torch.inference_mode():
                filled = fill_transparent(color, torch.from_numpy(a)[None, None])[0].permute(1, 2, 0).numpy()
            del color
        del a
    for r0 in range(0, h, rows):
        r1 = min(r0 + rows, h)
        a0, a1 = max(r0 - context, 0), min(r1 + context, h)
        x = to_float(x3[a0:a1])
        if filled is not None:
            x[..., :-1] = filled[a0:a1]
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
        del x
        with torch.inference_mode():
            y = _upscale_bchw(up, t, alpha, tta, fill=filled is None)
        del t
        y = y[0, :, (r0 - a0) * s : (r1 - a0) * s].permute(1, 2, 0).cpu().numpy()
        if arr.ndim == 2:
            y = y[..., 0]
        if peak == 1.0:
            out = y.astype(out_dtype, copy=False)
        else:
            out = np.rint(y * np.float32(peak)).astype(out_dtype)
        del y
        yield _fit_depth(out, fmt)


def _upscale_file_streaming(
    up: Upscaler, arr: np.ndarray, meta: Any, dst: Path, fmt: str, *, quality: int, alpha: str, tta: bool
) -> Path:
    """`upscale_file`'s streaming path: strips of the output go to a tiled TIFF (the output itself, or a
    temporary uncompressed one that libvips then converts to PNG/JPEG reading it sequentially)."""
    import secrets
    import warnings

    from srkit.infer.streaming import default_strip_rows, import_pyvips, vips_encode, write_tiled_tiff
    from srkit.io.images import _WRITABLE, _is_int, atomic_write

    h, w = arr.shape[:2]
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    layout = _LAYOUT_NAMES[channels]
    if layout not in _WRITABLE[fmt][1]:
        raise ImageWriteError(f"cannot write '{dst}': {fmt} cannot store layout {layout} (drop the alpha "
                              "channel, or write PNG, WebP or TIFF)")
    if not _is_int(quality) or not 1 <= quality <= 100:
        raise ImageWriteError(f"cannot write '{dst}': quality must be an integer in 1..100, got {quality!r}")
    if not dst.parent.is_dir():
        raise ImageWriteError(f"cannot write '{dst}': directory '{dst.parent}' does not exist")
    if dst.is_dir():
        raise ImageWriteError(f"cannot write '{dst}': is a directory")
    if fmt != "TIFF":
        import_pyvips()  # fail before the upscale, not after

    s, info = up.scale, up.model.info
    if info.receptive_field is not None:
        context = int(info.receptive_field)
    else:
        context = max(16, up.overlap or 0)
        warnings.warn(f"{info.arch} sees the whole image: streamed strips get {context} rows of context and the "
                      "output is close to, not equal to, a whole-image upscale", RuntimeWarning, stacklevel=3)
    context = max(context, 4)  # bicubic alpha (and chroma) read 2 LR pixels around each pixel
    rows = default_strip_rows(w, _work_channels(up, channels), s, context, _STREAM_TILE)
    out_dtype = _fit_dtype(arr.dtype, fmt)
    shape = (h * s, w * s) if channels == 1 else (h * s, w * s, channels)
    dpi = tuple(v * s for v in meta.dpi) if meta.dpi else None
    strips = _hr_strips(up, arr, alpha=alpha, tta=tta, fmt=fmt, rows=rows, context=context)
    if fmt == "TIFF":  # as write_image: Deflate, ICC, DPI, no EXIF; tiled BigTIFF
        atomic_write(dst, lambda fh: write_tiled_tiff(fh, strips, shape, out_dtype, tile=_STREAM_TILE,
                                                      compression="zlib", icc=meta.icc_profile, dpi=dpi),
                     wrap=(OSError,))
        return dst
    tmp = dst.parent / f".{dst.name[:200]}.{secrets.token_hex(6)}.tmp"
    try:
        try:
            with open(tmp, "xb") as fh:
                write_tiled_tiff(fh, strips, shape, out_dtype, tile=_STREAM_TILE)
        except OSError as e:
            raise ImageWriteError(f"cannot write '{dst}': temporary TIFF '{tmp.name}': {e.strerror or e}") from None

        def encode(fh) -> None:
            try:
                vips_encode(tmp, fh, fmt, quality=quality, icc=meta.icc_profile, exif=meta.exif, dpi=dpi)
            except ImageWriteError as e:
                raise ImageWriteError(f"cannot write '{dst}': {e}") from None

        atomic_write(dst, encode, wrap=(OSError,))
    finally:
        tmp.unlink(missing_ok=True)
    return dst


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
    stream: bool | None = None,
) -> Path:
    """Read `src`, upscale it, write `dst` (atomically) with its metadata; returns `Path(dst)`.

    Args:
        format: output format ("png", "jpg"/"jpeg", "webp", "bmp", "tif"/"tiff"); default: from `dst`'s suffix.
        quality: JPEG/WebP quality 1..100 (100 = lossless WebP).
        model, scale, tile, dtype, device, alpha, tta: as in `upscale`; pass an `Upscaler` to share one model
            over many files.
        stream: True: build the output strip by strip in bounded memory; False: build it whole in memory;
            None (default): stream when the whole-image path would need more than min(`STREAM_MEMORY_SHARE`
            (1/2) x available memory (MemAvailable), `STREAM_CAP_BYTES` (4 GiB)), estimated as
            `WHOLE_IMAGE_COPIES` (4.5) float32 copies of the output (`whole_image_peak_bytes`).

    Streaming: the input is read whole (it is scale^2 times smaller than the output) and upscaled in strips of
    LR rows with the model's receptive field as context, so the pixels equal the whole-image path's for models
    with a finite receptive field (whole-image models get 16 rows of context: close, not equal; a warning says
    so). TIFF is written tiled (256 x 256, Deflate, BigTIFF). PNG and JPEG go through a temporary uncompressed
    tiled TIFF next to `dst` (hidden `.<name>.<hex>.tmp`, needs the output's uncompressed size on disk, removed
    on any failure) that libvips (`pyvips`) converts reading it sequentially: PNG at zlib level 3 with adaptive
    row filters (the whole-image path: Pillow's level 6 for 8 bits, level 3 for 16 bits; same pixels, files a
    few % apart), JPEG at the same quality and chroma subsampling as the whole-image path. The metadata bytes
    (ICC, EXIF, DPI) are the whole-image path's. WebP and BMP cannot be streamed: ConfigError, write TIFF or
    PNG. WebP is also refused (ConfigError) over 16383 px a side.

    Kept: ICC profile, EXIF (orientation already applied), DPI x scale, bit depth and layout as far as the
    format stores them (see the module docstring). Animated/multi-page input is refused (extract frames first).

    Raises:
        ImageReadError: `src` unreadable, animated or multi-page. ImageWriteError: `dst` is `src`, or cannot be
        written in that format (e.g. alpha to JPEG). ModelLoadError / ConfigError: model problems, WebP/BMP that
        would need streaming, pyvips missing for a streamed PNG/JPEG.
    """
    from srkit.io import read_image, write_image
    from srkit.io.images import _write_format

    src_p, dst_p = Path(os.fspath(src)), Path(os.fspath(dst))
    if same_file(src_p, dst_p):
        raise ImageWriteError(f"cannot write '{dst_p}': it is the input file (choose another output name)")
    _check_alpha(alpha)
    if stream not in (None, True, False):
        raise ConfigError(f"stream must be True, False or None (automatic), got {stream!r}")
    fmt = _output_format(dst_p, format)
    if stream and fmt is None:
        _write_format(dst_p, format)  # raises: unknown format
    up = load_upscaler(model, scale=scale, tile=tile, dtype=dtype, device=device, tta=tta)
    arr, meta = read_image(src_p)
    s = up.scale
    h, w = arr.shape[:2]
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    if stream is None:
        need = whole_image_peak_bytes(h, w, _work_channels(up, channels), s)
        streaming = fmt is not None and need > stream_budget()
    else:
        streaming = bool(stream)
    if fmt == "WEBP" and max(h, w) * s > WEBP_MAX_SIDE:
        raise ConfigError(f"cannot write '{dst_p}': {w * s} x {h * s} is over WebP's {WEBP_MAX_SIDE} px side "
                          "limit; write TIFF or PNG instead")
    if streaming and fmt in ("WEBP", "BMP"):
        why = "streaming was asked for" if stream else (
            f"a whole-image upscale would need ~{need / 2**30:.1f} GiB (budget {stream_budget() / 2**30:.1f} GiB)")
        name = {"WEBP": "WebP"}.get(fmt, fmt)
        raise ConfigError(f"cannot write '{dst_p}': {name} output cannot be streamed and {why}; write TIFF or PNG "
                          "instead")
    if streaming:
        assert fmt is not None
        return _upscale_file_streaming(up, arr, meta, dst_p, fmt, quality=quality, alpha=alpha, tta=tta)
    out = _fit_depth(upscale_array(up, arr, alpha=alpha, tta=tta), fmt)
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(out.dtype, 32)
    dpi = tuple(v * s for v in meta.dpi) if meta.dpi else None
    out_meta = dataclasses.replace(meta, bit_depth=depth, dpi=dpi)
    return write_image(dst_p, out, out_meta, format=format, quality=quality)
