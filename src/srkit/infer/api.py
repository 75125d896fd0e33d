"""Image-level upscaling: `upscale` (any image kind in, the same kind out) and `load_upscaler`; files are
`srkit.infer.files.upscale_file`.

Everything runs through one `Upscaler` and the one inference path (`srkit.infer.engine`), on the call's own arrays,
so the functions may be called from several threads with the same `Upscaler`.

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

import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, get_args

import numpy as np
import torch

from srkit.errors import ConfigError, ShapeError
from srkit.infer.engine import AlphaMode, Request, TileSetting, run_array, run_image
from srkit.infer.network import Backend, DtypePolicy
from srkit.infer.upscaler import Upscaler
from srkit.srmodel import SRModel

__all__ = [
    "ALPHA_MODES",
    "DEFAULT_MODEL",
    "load_upscaler",
    "upscale",
    "upscale_array",
]

#: The model `upscale`, `upscale_file` and `srkit upscale` use when none is named.
DEFAULT_MODEL = "balanced-x4"

#: How the alpha channel is upscaled: MATLAB bicubic, or through the model.
ALPHA_MODES: tuple[str, ...] = get_args(AlphaMode)

ModelRef = str | os.PathLike[str] | SRModel

# Models loaded by name or path, most recently used last: `srkit.upscale(img, model="balanced-x4")` in a loop
# loads the weights once (and so finds its prepared network in `prepare_network`'s cache). A file's
# modification time is part of the key, so rewritten weights are read again.
_LOADED: OrderedDict[tuple, SRModel] = OrderedDict()
_LOADED_MAX = 4
_LOADED_LOCK = threading.Lock()


# --------------------------------------------------------------------------------------------
# the Upscaler
# --------------------------------------------------------------------------------------------


def _is_classical_name(name: str) -> bool:
    from srkit.models import CLASSICAL_KERNELS

    return name in CLASSICAL_KERNELS


def _load(model: str | os.PathLike[str], scale: int | None) -> SRModel:
    """`load_model`, remembered for the last few (name or path, scale, file mtime) keys."""
    from srkit.models import load_model

    ref = os.fspath(model)  # load_model takes a name or a path
    try:
        mtime = os.stat(ref).st_mtime_ns
    except (OSError, ValueError):
        mtime = None
    key = (ref, scale, mtime)
    with _LOADED_LOCK:
        hit = _LOADED.get(key)
        if hit is not None:
            _LOADED.move_to_end(key)
            return hit
    m = load_model(ref, scale=scale) if scale is not None else load_model(ref)
    with _LOADED_LOCK:
        _LOADED[key] = m
        while len(_LOADED) > _LOADED_MAX:
            _LOADED.popitem(last=False)
    return m


def _resolve_model(model: ModelRef, scale: int | None) -> SRModel:
    """`load_model`, with the scale checked against the model (ConfigError) rather than used to pick it, except for
    scale-free models (classical upsamplers, weights whose shapes do not say their scale)."""
    from srkit.errors import ModelLoadError

    if scale is not None and (not isinstance(scale, int) or isinstance(scale, bool) or scale < 1):
        raise ConfigError(f"scale must be a positive integer, got {scale!r}")
    if isinstance(model, SRModel):
        m = model
    elif isinstance(model, str) and _is_classical_name(model):
        m = _load(model, scale)  # a bare classical name takes any scale
    else:
        try:
            m = _load(model, None)
        except ModelLoadError:
            if scale is None:
                raise
            # Some authors' checkpoints do not reveal their scale: the caller's scale is the missing piece.
            m = _load(model, scale)
    if scale is not None and m.info.scale != scale:
        raise ConfigError(f"model {m.info.name} is x{m.info.scale}, but scale {scale} was asked for")
    return m


def load_upscaler(
    model: ModelRef | Upscaler = DEFAULT_MODEL,
    *,
    scale: int | None = None,
    tile: TileSetting = None,
    dtype: DtypePolicy = "auto",
    device: str = "cpu",
    tta: bool = False,
    backend: Backend | None = None,
) -> Upscaler:
    """The `Upscaler` for a model name, weights path, `SRModel` or `Upscaler` (returned as is after the scale
    check; `tile`, `dtype`, `device`, `tta` and `backend` are then ignored).

    Cheap to call again for the same model: names and paths are loaded once (a small most-recently-used
    cache) and the prepared network is cached per model and settings (`srkit.infer.network.prepare_network`).

    Args:
        scale: expected scale; a model of another scale raises ConfigError (for classical upsamplers, which take
            any scale, it picks the scale; default 4).
        tile: None (whole image), an int >= 8 (LR tile side) or "auto" (from free memory).
        dtype: "auto", "fp32", "bf16" or "fp16".
        tta: the Upscaler's default for the 8-fold dihedral self-ensemble.
        backend: None ("torch") or "onnxruntime".

    Raises:
        ModelLoadError: the model cannot be resolved. ConfigError: scale mismatch, bad tile/dtype/device/backend.
    """
    if isinstance(model, Upscaler):
        if scale is not None and model.scale != scale:
            raise ConfigError(f"model {model.model.info.name} is x{model.scale}, but scale {scale} was asked for")
        return model
    try:
        dev = torch.device(device)
    except (RuntimeError, ValueError, TypeError):
        raise ConfigError(f"unknown device {device!r}; use cpu, cuda, cuda:1, ...") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"device {device!r} asked for, but CUDA is not available")
    m = _resolve_model(model, scale)
    return Upscaler(m, device=device, dtype=dtype, tile=tile, tta=tta, backend=backend or "torch")


# --------------------------------------------------------------------------------------------
# arrays, PIL images, tensors
# --------------------------------------------------------------------------------------------


def upscale_array(up: Upscaler, image: np.ndarray, *, alpha: AlphaMode = "bicubic", tta: bool | None = None,
                  inputs: Mapping[str, float] | None = None, seed: int | None = None) -> np.ndarray:
    """Upscale an image array with a ready `Upscaler` (the same as `up.upscale(image, ...)`).

    Args:
        image: (H, W), (H, W, 1), (H, W, 2) LA, (H, W, 3) RGB or (H, W, 4) RGBA; uint8, uint16, or float in
            [0, 1] (float16/32/64).
        alpha: "bicubic" or "model" (see the module docstring).
        tta: x8 self-ensemble; None: the Upscaler's default.
        inputs, seed: a conditioned model's extra inputs, a stochastic model's seed (`srkit.infer.engine.Request`).

    Returns:
        (sH, sW[, C]) with the input's dtype and layout, clipped to the dtype's range ([0, 1] for floats).

    Raises:
        ShapeError: another shape or dtype. ConfigError: a bad alpha mode or input name.
    """
    return run_array(up, image, up.request(alpha=alpha, tta=tta, inputs=inputs, seed=seed))


def _upscale_tensor(up: Upscaler, x: torch.Tensor, request: Request) -> torch.Tensor:
    if not x.is_floating_point() or x.ndim not in (3, 4):
        raise ShapeError(f"expected a float (C, H, W) or (B, C, H, W) tensor, got {tuple(x.shape)} {x.dtype}")
    y = run_image(up, (x[None] if x.ndim == 3 else x).float(), request)
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


def _upscale_pil(up: Upscaler, im: Any, request: Request | Callable[[np.ndarray], Request]) -> Any:
    """PIL image -> PIL image of the same mode family (P -> RGB/RGBA, 1 -> L, other modes -> RGB/RGBA).

    `request` may be a function of the pixel array that is upscaled (a conditioned model's levels estimated)."""
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
    out = run_array(up, arr, request if isinstance(request, Request) else request(arr))
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
    tile: TileSetting = None,
    dtype: DtypePolicy = "auto",
    device: str = "cpu",
    alpha: AlphaMode = "bicubic",
    tta: bool | None = None,
    inputs: Mapping[str, float] | None = None,
    seed: int | None = None,
    strength: float | None = None,
    noise: float | None = None,
    jpeg: float | None = None,
    steps: int | None = None,
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
        tta: 8-fold dihedral self-ensemble (8x slower, a little more accurate); None: off, or the given
            Upscaler's default.
        inputs: a conditioned model's extra inputs by name (`ModelInfo.inputs`); ConfigError for other names.
        seed: seeds a stochastic model's noise, the sampler of a diffusion model (ignored by deterministic
            models); None: a random seed per call. A seed that is not an integer is a ConfigError.
        strength: how much a conditioned model (real-x4-ctrl) cleans, 0 (nothing: clean input) .. 1 (noise sigma
            50, JPEG quality 10); sets noise = 50 strength, jpeg = 100 - 90 strength.
        noise, jpeg: the input's noise sigma (0-255 scale, >= 0) and JPEG quality (1..100) for a conditioned
            model, instead of strength. What is not given is estimated from the image (a JPEG file's quality from
            its tables); see `srkit.infer.conditioning`. Models without these inputs refuse them (ConfigError).
        steps: sampling steps of a diffusion model (``diffusion-x4``), 1 .. T (the chain it was trained with);
            None: the model's default. Other models refuse it (ConfigError); see `srkit.infer.sampling`.

    Returns:
        The upscaled image, (scale * H, scale * W), values clipped to the valid range.

    Raises:
        ModelLoadError, ConfigError, ShapeError (unsupported image kind/shape/dtype), ImageReadError (path input).
    """
    from srkit.infer import conditioning, sampling

    conditioning.check_levels(strength, noise, jpeg)
    sampling.check_steps(steps)
    seed = sampling.check_seed(seed)
    Request.make(alpha=alpha, tta=bool(tta), inputs=inputs, seed=seed)  # validate before loading anything
    is_path = isinstance(image, str | os.PathLike)
    if not (is_path or _is_pil(image) or isinstance(image, np.ndarray | torch.Tensor)):
        raise ShapeError(
            f"image must be a path, PIL image, numpy array or torch tensor, got {type(image).__name__}"
        )
    up = load_upscaler(model, scale=scale, tile=tile, dtype=dtype, device=device, tta=bool(tta))

    def request_for(pixels: Any = None, quality: int | None = None) -> Request:
        call_inputs = conditioning.level_inputs(up.model.info, inputs, strength=strength, noise=noise, jpeg=jpeg,
                                                image=pixels, quality=quality)
        return up.request(alpha=alpha, tta=tta, inputs=sampling.step_inputs(up.model, call_inputs, steps), seed=seed)

    if steps is not None:
        sampling.step_inputs(up.model, inputs, steps)  # a model that takes no steps, or too many: before any work

    # a conditioned model's levels not given: estimated from each image (a JPEG file's quality from its tables)
    estimate = conditioning.needs_estimate(up.model.info, inputs, strength=strength, noise=noise, jpeg=jpeg)
    if is_path:
        from srkit.io import read_image

        arr, _ = read_image(image)
        quality = conditioning.file_jpeg_quality(image) if estimate else None
        return run_array(up, arr, request_for(arr, quality))
    if isinstance(image, torch.Tensor):
        if not estimate or not image.is_floating_point() or image.ndim not in (3, 4):
            return _upscale_tensor(up, image, request_for())
        batch = image[None] if image.ndim == 3 else image
        # one estimate per image: run the images of a batch one by one
        out = [_upscale_tensor(up, batch[i : i + 1], request_for(batch[i].detach().permute(1, 2, 0).float().cpu()
                                                                   .numpy()))
               for i in range(batch.shape[0])]
        return out[0][0] if image.ndim == 3 else torch.cat(out)
    if isinstance(image, np.ndarray):
        return run_array(up, image, request_for(image))
    if not estimate:
        return _upscale_pil(up, image, request_for())
    quality = conditioning.file_jpeg_quality(image)
    return _upscale_pil(up, image, lambda arr: request_for(arr, quality))
