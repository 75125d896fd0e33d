"""The one inference path: image array or tensor in, upscaled image out.

`srkit.upscale`, `Upscaler`, `upscale_file` (whole or streamed), evaluation and the CLI all end here, so alpha,
gray, bit depth, self-ensemble (TTA), tiling and a model's extra inputs are handled once:

* `run_model` — the network on a (B, C, H, W) float tensor of the model's colour channels: padding to the size
  multiple, tiles (exact for finite receptive fields, feathered otherwise), batching of same-shaped tiles,
  out-of-memory fallback, x8 dihedral TTA, per-call scalar inputs (`Request.inputs`, for conditioned models) and
  one noise field per image for stochastic models (`Request.seed`). Not clipped.
* `run_image` — any image layout: gray (through an RGB model as 3 equal channels, mean taken back), gray+alpha,
  RGB, RGBA (alpha upscaled by MATLAB bicubic or through the model; the colour under fully transparent pixels
  filled from the visible ones first, `fill_transparent`). Clipped to [0, 1].
* `run_array` — numpy (H, W[, C]) uint8 / uint16 / float in, the same dtype and layout out.
* `iter_strips` — `run_array` of a (possibly memory-mapped) image, produced as strips of output rows, each equal
  to the same rows of the whole result for models with a finite receptive field.

What is coming extends this rather than forking it: a conditioned model declares its scalar inputs in
`ModelInfo.inputs` and gets them in every tile; a stochastic model declares `ModelInfo.noise_channels` and gets
its crop of one LR-resolution noise field (stacked with the image as extra channels before tiling, so tiles,
TTA and strips all see the same field); a multi-frame model (`ModelInfo.frames` > 1) gets its window of frames
stacked the same way, along the channels (`run_model(..., frames=T)`, unstacked to (B, T, C, h, w) around each
network call), so tiles and TTA treat a window as one image; `srkit.infer.clips` cuts a clip into such windows.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, replace
from typing import Literal, Protocol, get_args

import numpy as np
import torch
import torch.nn.functional as F

from srkit.errors import ConfigError, ShapeError
from srkit.infer.network import PreparedNetwork
from srkit.ops.dihedral import dihedral, dihedral_inverse
from srkit.srmodel import SRModel

__all__ = [
    "AlphaMode",
    "Request",
    "TileSetting",
    "Tiling",
    "auto_tile_side",
    "available_memory",
    "fill_nonfinite",
    "fill_transparent",
    "iter_strips",
    "noise_field",
    "restore_nonfinite",
    "run_array",
    "run_image",
    "run_model",
]

#: How the alpha channel is upscaled: MATLAB bicubic (smooth, no ringing), or through the model.
AlphaMode = Literal["bicubic", "model"]
#: Tiling: None (whole image), an LR tile core side >= 8, or "auto" (a side chosen from free memory).
TileSetting = int | Literal["auto"] | None

# Alpha at or below this (half an 8-bit step) counts as fully transparent: its colour is invisible.
TRANSPARENT = 0.5 / 255.0


@dataclass(frozen=True)
class Request:
    """Per-call options of one upscale.

    Attributes:
        alpha: "bicubic" or "model".
        tta: x8 dihedral self-ensemble (8x the time; a small PSNR gain; exact with tiling).
        inputs: (name, value) pairs for the model's `ModelInfo.inputs` (e.g. a conditioned model's noise level);
            a name the model does not take is a ConfigError; a missing one is the model's to default.
        seed: seeds the noise field of stochastic models (None: a random seed per call); ignored otherwise.
        progress: called with the fraction of the image done (0..1] after each tile (and each strip when
            streamed), for progress bars on big images; not part of the result.
    """

    alpha: AlphaMode = "bicubic"
    tta: bool = False
    inputs: tuple[tuple[str, float], ...] = ()
    seed: int | None = None
    progress: Callable[[float], None] | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        if self.alpha not in get_args(AlphaMode):
            raise ConfigError(f"alpha must be one of {', '.join(get_args(AlphaMode))}, got {self.alpha!r}")
        if not isinstance(self.tta, bool):
            raise ConfigError(f"tta must be True or False, got {self.tta!r}")
        if self.seed is not None and (isinstance(self.seed, bool) or not isinstance(self.seed, int)):
            raise ConfigError(f"seed must be an integer, got {self.seed!r}")

    @classmethod
    def make(cls, *, alpha: AlphaMode = "bicubic", tta: bool = False, inputs: Mapping[str, float] | None = None,
             seed: int | None = None, progress: Callable[[float], None] | None = None) -> Request:
        """A Request from keyword arguments (`inputs` as a mapping), validated."""
        pairs = tuple(sorted((str(k), float(v)) for k, v in (inputs or {}).items()))
        return cls(alpha=alpha, tta=bool(tta), inputs=pairs, seed=seed, progress=progress)


@dataclass(frozen=True)
class Tiling:
    """How the network is run over an image: `tile` None (whole image), an int >= 8 (LR tile core side) or
    "auto" (from free memory); `overlap` the blend width for whole-image-receptive-field models (default
    tile // 8, at least 8); `batch` same-shaped tiles per call."""

    tile: TileSetting = None
    overlap: int | None = None
    batch: int = 1

    def __post_init__(self) -> None:
        t = self.tile
        if not (t is None or t == "auto" or (isinstance(t, int) and not isinstance(t, bool) and t >= 8)):
            raise ConfigError(f"tile must be None, 'auto' or an integer >= 8, got {t!r}")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise ConfigError(f"batch must be an integer >= 1, got {self.batch!r}")
        if self.overlap is not None and (not isinstance(self.overlap, int) or self.overlap < 0):
            raise ConfigError(f"overlap must be None or an integer >= 0, got {self.overlap!r}")


class Runner(Protocol):
    """What the engine needs from an `Upscaler`."""

    @property
    def model(self) -> SRModel: ...
    @property
    def prepared(self) -> PreparedNetwork: ...
    @property
    def tiling(self) -> Tiling: ...
    @property
    def device(self) -> torch.device: ...


# --------------------------------------------------------------------------------------------
# memory
# --------------------------------------------------------------------------------------------


def available_memory() -> int | None:
    """Bytes of memory available to new allocations: MemAvailable from /proc/meminfo, else the free physical
    pages (`os.sysconf`); None when neither can be read."""
    import os

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


def auto_tile_side(model: SRModel, device: torch.device) -> int:
    """LR tile side that keeps activations within a memory budget (1/4 of free memory, at most 4 GiB).

    Estimate: the widest layer's channels x 4 bytes x 8 live tensors per LR pixel, times scale^2 for the output
    end; rounded down to a multiple of 16 and clamped to [64, 2048].
    """
    width = max([m.out_channels for m in model.module.modules() if isinstance(m, torch.nn.Conv2d)] + [64])
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
    else:
        free = available_memory() or 2 * 1024**3
    budget = min(free / 4, 4 * 1024**3)
    per_px = width * 4 * 8 + 4 * 3 * model.info.scale**2 * 4
    if model.info.multi_frame:  # a window of frames and its context at once
        per_px *= model.info.frames + 2 * model.info.frame_context
    side = int((budget / per_px) ** 0.5) // 16 * 16
    return max(64, min(side, 2048))


def tile_side(up: Runner) -> int | None:
    """The LR tile core side `up` uses (None = whole image)."""
    tile = up.tiling.tile
    if tile is None:
        return None
    if tile == "auto":
        return auto_tile_side(up.model, up.device)
    return int(tile)


# --------------------------------------------------------------------------------------------
# the network over an image: padding, tiles, TTA, extra inputs
# --------------------------------------------------------------------------------------------


def noise_field(model: SRModel, batch: int, height: int, width: int, seed: int | None) -> torch.Tensor | None:
    """The (batch, noise_channels, height, width) standard normal field of a stochastic model, drawn on the CPU
    from `seed` (so a seed gives the same image on every device); None for deterministic models."""
    k = model.info.noise_channels
    if k <= 0:
        return None
    gen = torch.Generator(device="cpu")
    gen.manual_seed(int(seed) if seed is not None else int(torch.randint(0, 2**62, (1,)).item()))
    return torch.randn((batch, k, height, width), generator=gen)


def _check_inputs(model: SRModel, request: Request) -> dict[str, float]:
    names = model.info.inputs
    unknown = [k for k, _ in request.inputs if k not in names]
    if unknown:
        takes = f"takes {', '.join(names)}" if names else "takes no extra inputs"
        raise ConfigError(f"model {model.info.name} {takes}; got {', '.join(unknown)}")
    return dict(request.inputs)


def _tile_fn(up: Runner, colour: int, inputs: dict[str, float], frames: int = 1):
    """(B, colour [+ noise], h, w) -> (B, C', sh, sw): reflect-pad to the size multiple, split off the noise
    channels, run the network, crop. `frames` > 1: the colour channels are that many frames stacked, run as one
    clip (B, frames, colour / frames, h, w) and stacked back."""
    info = up.model.info
    net = up.prepared

    def run(x: torch.Tensor) -> torch.Tensor:
        h, w = x.shape[-2:]
        m = info.size_multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
        extra: dict = dict(inputs)
        if x.shape[1] > colour:
            extra["noise"] = x[:, colour:]
            x = x[:, :colour]
        if frames > 1:
            y = net(x.unflatten(1, (frames, colour // frames)).contiguous(), **extra).flatten(1, 2)
        else:
            y = net(x.contiguous(), **extra)
        return y[..., : h * info.scale, : w * info.scale]

    return run


def _tta_fn(fn, tta: bool):
    """`fn`, or the mean of `fn` over the 8 dihedral transforms of its input, each transformed back (rotations
    and flips commute with a translation-equivariant model's tiling, so tiled TTA stays exact)."""
    if not tta:
        return fn

    def run(x: torch.Tensor) -> torch.Tensor:
        acc = None
        for k in range(8):
            y = dihedral_inverse(fn(dihedral(x, k)), k)
            acc = y if acc is None else acc.add_(y)
        assert acc is not None
        return acc.div_(8.0)

    return run


def _counted(fn, images: int, total: int, progress: Callable[[float], None]):
    """`fn`, reporting the fraction of `total` tiles done after each call (a call may hold several tiles of
    `images` images each, batched), and within a call what the model reports (`srkit.srmodel.report_progress`,
    e.g. a diffusion sampler's steps; never backwards)."""
    from srkit.srmodel import progress_callback

    done = 0
    shown = 0.0

    def show(fraction: float) -> None:
        nonlocal shown
        if fraction > shown:
            shown = fraction
            progress(fraction)

    def run(x: torch.Tensor) -> torch.Tensor:
        nonlocal done, shown
        n = max(1, x.shape[0] // max(1, images))
        start = done
        with progress_callback(lambda f: show(min(1.0, (start + min(max(f, 0.0), 1.0) * n) / max(1, total)))):
            y = fn(x)
        done += n
        shown = max(shown, min(1.0, done / max(1, total)))
        progress(min(1.0, done / max(1, total)))
        return y

    return run


def _tiled(fn, x: torch.Tensor, up: Runner, side: int | None, batch: int,
           progress: Callable[[float], None] | None = None) -> torch.Tensor:
    from srkit.infer.tiling import blend_regions, plan_tiles, run_tiled_blend, run_tiled_exact

    h, w = x.shape[-2:]
    info = up.model.info
    whole = side is None or (h <= side and w <= side)
    rf = info.receptive_field
    overlap = 0
    if not whole and rf is None:
        assert side is not None
        overlap = min(up.tiling.overlap if up.tiling.overlap is not None else max(8, side // 8), side // 2)
        m = info.size_multiple
        if m > 1:
            # A whole-image model with a size multiple (attention windows, stride-2 levels) works on a grid anchored
            # at the image origin: pad the image to the multiple once, as the whole-image call does, and put tiles
            # and overlaps on that grid, so each tile computes what the whole image computes there (up to its
            # borders, which the blending hides).
            side = max(m, side // m * m)
            overlap = min(-(-overlap // m) * m, side // 2 // m * m)
            ph, pw = (-h) % m, (-w) % m
            if ph or pw:
                x = F.pad(x, (0, pw, 0, ph), mode="reflect" if ph < h and pw < w else "replicate")
                s = info.scale
                return _tiled(fn, x, up, side, batch, progress)[..., : h * s, : w * s]
    if progress is not None:
        total = 1
        if side is not None and not whole:
            total = len(plan_tiles(h, w, side, rf) if rf is not None else blend_regions(h, w, side, overlap))
        fn = _counted(fn, x.shape[0], total, progress)
    if whole:
        return fn(x)
    assert side is not None
    if rf is not None:
        return run_tiled_exact(fn, x, info.scale, side, rf, batch)
    return run_tiled_blend(fn, x, info.scale, side, overlap, batch)


@torch.inference_mode()
def run_model(up: Runner, x: torch.Tensor, request: Request = Request(),
              noise: torch.Tensor | None = None, *, frames: int = 1) -> torch.Tensor:
    """The network of `up` on (B, C, H, W) float [0, 1] colour channels -> (B, C', sH, sW) float32, not clipped,
    contiguous, on the input's device.

    Tiled as `up.tiling` says; on out-of-memory batching is switched off first, then the tile side is halved and
    the image retried (down to 32 px). `noise`: the stochastic model's field for exactly this region (default:
    drawn from `request.seed`). `frames` > 1: `x` is a multi-frame model's window, (B, frames * C, H, W) frames
    stacked along the channels (frame-major), and so is the result (`srkit.infer.clips.run_clip`).
    """
    if x.ndim != 4 or not x.is_floating_point():
        raise ShapeError(f"expected a float (B, C, H, W) tensor, got {tuple(x.shape)} {x.dtype}")
    inputs = _check_inputs(up.model, request)
    xin = x.to(up.device, torch.float32)
    colour = xin.shape[1]
    if noise is None:
        noise = noise_field(up.model, xin.shape[0], xin.shape[2], xin.shape[3], request.seed)
    if noise is not None:
        xin = torch.cat([xin, noise.to(xin.device, torch.float32)], dim=1)
    if frames > 1 and (not up.model.info.multi_frame or colour % frames):
        raise ShapeError(f"{frames} stacked frames need a multi-frame model and C * {frames} channels; got "
                         f"{up.model.info.name} and {colour} channels")
    fn = _tta_fn(_tile_fn(up, colour, inputs, frames), request.tta)
    side = tile_side(up)
    batch = up.tiling.batch
    while True:
        try:
            return _tiled(fn, xin, up, side, batch, request.progress).to(x.device).contiguous()
        except torch.OutOfMemoryError:
            if batch > 1:
                batch = 1
            else:
                h, w = xin.shape[-2:]
                side = max(h, w) // 2 if side is None else side // 2
                if side < 32:
                    raise
            if up.device.type == "cuda":
                torch.cuda.empty_cache()


def fill_transparent(color: torch.Tensor, alpha: torch.Tensor, threshold: float = TRANSPARENT) -> torch.Tensor:
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
    return torch.where(hole & any_visible, filled.to(color.dtype), color)


def fill_nonfinite(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(B, C, H, W) float with its NaN / +-Inf pixels filled from the finite pixels around them, and the
    (B, C, H, W) bool mask of the non-finite values; (`x`, None) when every value is finite.

    A pixel with any non-finite channel is a hole and gets the pull-push fill of `fill_transparent` (finite
    pixels weigh 1, holes 0), so the model sees neither NaN (which poisons every output its receptive field
    touches) nor Inf.
    """
    bad = ~torch.isfinite(x)
    if not bool(bad.any()):
        return x, None
    holes = bad.any(dim=1, keepdim=True)
    zeroed = torch.where(bad, torch.zeros((), dtype=x.dtype, device=x.device), x)
    return fill_transparent(zeroed, (~holes).to(x.dtype), threshold=0.5), bad


def restore_nonfinite(y: torch.Tensor, source: torch.Tensor, bad: torch.Tensor, scale: int) -> torch.Tensor:
    """`y` (B, C, sH, sW) with the non-finite values of `source` (B, C, H, W) put back where `bad` says, each over
    its scale x scale block (nearest upscaling of the mask and the values)."""
    up_bad = bad.repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)
    up_src = source.to(y.dtype).repeat_interleave(scale, dim=-2).repeat_interleave(scale, dim=-1)
    return torch.where(up_bad.to(y.device), up_src.to(y.device), y)


def _colour(up: Runner, x: torch.Tensor, request: Request, noise: torch.Tensor | None) -> torch.Tensor:
    """`run_model` on 1 or 3 colour channels: gray through an RGB model as 3 equal channels, mean taken back."""
    info = up.model.info
    gray_to_rgb = x.shape[1] == 1 and not info.channel_agnostic and info.in_channels == 3
    y = run_model(up, x.expand(-1, 3, -1, -1) if gray_to_rgb else x, request, noise)
    return y.mean(dim=1, keepdim=True) if gray_to_rgb else y


@torch.inference_mode()
def run_image(up: Runner, x: torch.Tensor, request: Request = Request(), *, fill: bool = True,
              noise: torch.Tensor | None = None) -> torch.Tensor:
    """(B, C, H, W) float32 [0, 1], C = 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA) -> (B, C, sH, sW) float32 in [0, 1].

    NaN / +-Inf values are masked: the model runs on a copy whose non-finite pixels are filled from the finite
    ones around them (`fill_nonfinite`), and the non-finite values are put back where they were, each over its
    scale x scale output block (the mask upscaled by nearest): never a tile poisoned by a NaN.

    `fill` False: the colour under transparent pixels is already filled (the streaming path fills the whole
    image once, then upscales strips of it). `noise` as in `run_model`.
    """
    c = x.shape[1]
    if x.ndim != 4 or c not in (1, 2, 3, 4):
        raise ShapeError(f"expected 1 (L), 2 (LA), 3 (RGB) or 4 (RGBA) channels, got shape {tuple(x.shape)}")
    filled, bad = fill_nonfinite(x)
    if bad is not None:
        y = run_image(up, filled, request, fill=fill, noise=noise)
        return restore_nonfinite(y, x, bad, up.model.info.scale)
    if c in (2, 4):
        color, a = x[:, :-1], x[:, -1:]
        if fill:
            color = fill_transparent(color, a)
        yc = _colour(up, color, request, noise)
        if request.alpha == "bicubic":
            from srkit.ops import imresize_matlab

            ya = imresize_matlab(a, float(up.model.info.scale))
        else:
            ya = _colour(up, a, request, noise)
        y = torch.cat([yc, ya.to(yc.device, yc.dtype)], dim=1)
    else:
        y = _colour(up, x, request, noise)
    return y.clamp_(0.0, 1.0)


# --------------------------------------------------------------------------------------------
# arrays and strips
# --------------------------------------------------------------------------------------------


def peak_value(dtype: np.dtype) -> float:
    """The value of full intensity for an image dtype (uint8 / uint16: their maximum; float: 1)."""
    dtype = np.dtype(dtype)
    if dtype.kind == "u" and dtype.itemsize in (1, 2):
        return float(np.iinfo(dtype).max)
    if dtype.kind == "f":
        return 1.0
    raise ShapeError(f"image arrays must be uint8, uint16 or float, got {dtype}")


def _check_array(arr: np.ndarray) -> None:
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)):
        raise ShapeError(f"expected an (H, W) or (H, W, C) image with C in 1..4, got shape {arr.shape}")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise ShapeError(f"image is empty (shape {arr.shape})")
    if arr.dtype.kind == "f" and not isinstance(arr, np.memmap):
        lo, hi = float(arr.min()), float(arr.max())
        if -_FLOAT_SLACK <= lo and hi <= 1 + _FLOAT_SLACK:  # the usual case: no copy made
            return
        finite = arr[np.isfinite(arr)]  # NaN / Inf are masked later (run_image); judge the finite values
        if finite.size and (float(finite.min()) < -_FLOAT_SLACK or float(finite.max()) > 1 + _FLOAT_SLACK):
            raise ShapeError(f"float images must hold values in [0, 1], got {float(finite.min()):.4g} .. "
                             f"{float(finite.max()):.4g}: scale the image first (nothing is clipped silently)")


# Float images a hair outside [0, 1] (rounding in a conversion) are accepted; more is an error.
_FLOAT_SLACK = 1e-4


def _to_float(block: np.ndarray, peak: float) -> np.ndarray:
    x = block.astype(np.float32)
    if peak != 1.0:
        x /= np.float32(peak)
    return x


def _from_float(y: np.ndarray, dtype: np.dtype, peak: float) -> np.ndarray:
    out_dtype = np.dtype(dtype).newbyteorder("=")
    if peak == 1.0:
        return y.astype(out_dtype, copy=False)
    return np.rint(y * np.float32(peak)).astype(out_dtype)  # already clipped to [0, 1]


def _bchw(x: np.ndarray) -> torch.Tensor:
    x3 = x[..., None] if x.ndim == 2 else x
    return torch.from_numpy(np.ascontiguousarray(x3.transpose(2, 0, 1)))[None]


def run_array(up: Runner, image: np.ndarray, request: Request = Request()) -> np.ndarray:
    """Upscale an image array.

    Args:
        image: (H, W), (H, W, 1), (H, W, 2) LA, (H, W, 3) RGB or (H, W, 4) RGBA; uint8, uint16, or float in
            [0, 1] (float16/32/64). NaN / +-Inf in a float image are masked (see `run_image`).

    Returns:
        (sH, sW[, C]) with the input's dtype and layout, clipped to the dtype's range ([0, 1] for floats),
        integers rounded half to even.

    Raises:
        ShapeError: another shape or dtype.
    """
    arr = np.asarray(image)
    _check_array(arr)
    peak = peak_value(arr.dtype)
    y = run_image(up, _bchw(_to_float(arr, peak)), request)[0].permute(1, 2, 0).cpu().numpy()
    if arr.ndim == 2:
        y = y[..., 0]
    return _from_float(y, arr.dtype, peak)


def outscale_passes(scale: int, outscale: float) -> int:
    """Model passes for an output scale: the fewest k >= 1 with scale ** k >= outscale."""
    k = 1
    while scale**k < outscale * (1 - 1e-9):
        k += 1
    return k


def run_array_outscale(up: Runner, image: np.ndarray, request: Request, outscale: float) -> np.ndarray:
    """`run_array` to any output scale (Real-ESRGAN's `--outscale`): `outscale_passes` model passes, then MATLAB
    bicubic (antialiased when shrinking) to exactly round(outscale * H) x round(outscale * W). E.g. an x4 model at
    outscale 2 is one pass and a halving, at 8 two passes; the same dtype and layout come back."""
    if not outscale > 0:
        raise ConfigError(f"outscale must be > 0, got {outscale!r}")
    arr = np.asarray(image)
    h, w = arr.shape[:2]
    out = arr
    for _ in range(outscale_passes(up.model.info.scale, outscale)):
        out = run_array(up, out, request)
    target = (max(1, round(h * outscale)), max(1, round(w * outscale)))
    if out.shape[:2] == target:
        return out
    from srkit.ops import imresize_matlab

    resized = imresize_matlab(out, output_shape=target)
    if out.dtype.kind == "f":
        resized = np.clip(resized, 0.0, 1.0).astype(out.dtype)
    return resized


def strip_context(up: Runner) -> int:
    """LR rows of context each strip is read with: the receptive field (at least 4, for bicubic alpha and chroma),
    or for whole-image models 16 / the tiling overlap (then strips are close to, not equal to, the whole)."""
    info = up.model.info
    context = int(info.receptive_field) if info.receptive_field is not None else max(16, up.tiling.overlap or 0)
    return max(context, 4)


def _within(progress: Callable[[float], None], part: int, parts: int) -> Callable[[float], None]:
    """`progress` for part `part` of `parts` equal parts: a fraction f of that part reports (part + f) / parts."""
    return lambda f: progress((part + f) / parts)


def iter_strips(up: Runner, image: np.ndarray, request: Request = Request(), *, rows: int,
                context: int | None = None) -> Iterator[np.ndarray]:
    """`run_array(up, image, request)`, produced as strips of `rows` LR rows (rows * scale output rows) each.

    `image` may be memory-mapped: only a strip (with `context` rows above and below; default `strip_context`)
    is converted at a time, so memory stays bounded by the strip. For models with a finite receptive field every
    strip equals the same rows of the whole-image result. Whole-image state is computed once on the whole LR
    image: the colour under fully transparent pixels (`fill_transparent`) and a stochastic model's noise field.
    """
    arr = image
    _check_array(arr)
    peak = peak_value(arr.dtype)
    if context is None:
        context = strip_context(up)
    h, w = arr.shape[:2]
    c = 1 if arr.ndim == 2 else arr.shape[2]
    s = up.model.info.scale
    # Whole-image state, computed once on the LR image: non-finite values filled, transparent colour filled.
    base = bad = None
    if arr.dtype.kind == "f":
        whole = _to_float(np.asarray(arr), peak)
        filled_t, bad_t = fill_nonfinite(_bchw(whole))
        if bad_t is not None:
            base = filled_t[0].permute(1, 2, 0).numpy()
            base = base[..., 0] if arr.ndim == 2 else base
            bad = bad_t
        del whole, filled_t
    filled: np.ndarray | None = None
    if c in (2, 4):
        a = base[..., -1] if base is not None else _to_float(np.asarray(arr[..., -1]), peak)
        if bool((a <= TRANSPARENT).any()):
            colour = base[..., :-1] if base is not None else _to_float(np.asarray(arr[..., :-1]), peak)
            with torch.inference_mode():
                ft = fill_transparent(_bchw(colour), torch.from_numpy(np.ascontiguousarray(a))[None, None])
            filled = ft[0].permute(1, 2, 0).numpy()
            del colour, ft
        del a
    noise = noise_field(up.model, 1, h, w, request.seed)
    starts = range(0, h, max(1, rows))
    for i, r0 in enumerate(starts):
        strip_request = request
        if request.progress is not None:
            strip_request = replace(request, progress=_within(request.progress, i, len(starts)))
        r1 = min(r0 + rows, h)
        a0, a1 = max(r0 - context, 0), min(r1 + context, h)
        x = base[a0:a1].copy() if base is not None else _to_float(np.asarray(arr[a0:a1]), peak)
        if filled is not None:
            x[..., :-1] = filled[a0:a1]
        t = _bchw(x)
        del x
        strip_noise = None if noise is None else noise[..., a0:a1, :]
        yt = run_image(up, t, strip_request, fill=filled is None, noise=strip_noise)
        del t
        yt = yt[..., (r0 - a0) * s : (r1 - a0) * s, :]
        if bad is not None:
            yt = restore_nonfinite(yt, _bchw(_to_float(np.asarray(arr[r0:r1]), peak)), bad[..., r0:r1, :], s)
        y = yt[0].permute(1, 2, 0).cpu().numpy()
        del yt
        if arr.ndim == 2:
            y = y[..., 0]
        yield _from_float(y, arr.dtype, peak)
        del y

