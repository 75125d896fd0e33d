"""File to file: `upscale_file` reads an image, upscales it through the one inference path
(`srkit.infer.engine`) and writes it atomically with its metadata, whole or streamed in bounded memory.

Streaming is chosen automatically when the whole-image path would need more memory than a budget (see
`upscale_file`), or forced with `stream=True/False` (`srkit upscale --stream/--no-stream`). It is also the
faster path for big outputs on a CPU (smaller working sets): 2000 x 2000 -> 8000 x 8000 with tiny-x4 took 12.5 s
and 0.85 GB streamed against 32 s and 3.43 GB whole, which is why the automatic budget is capped at 1 GiB.
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from srkit.errors import ConfigError, ImageWriteError
from srkit.infer.api import DEFAULT_MODEL, load_upscaler
from srkit.infer.engine import AlphaMode, Request, TileSetting, available_memory, iter_strips, run_array, strip_context
from srkit.infer.network import DtypePolicy
from srkit.infer.upscaler import Upscaler
from srkit.io.atomic import same_file
from srkit.io.checks import is_int
from srkit.io.formats import FORMAT_NAMES, HEIF_MAX_SIDE, WRITABLE, write_format
from srkit.srmodel import SRModel

if TYPE_CHECKING:
    from srkit.domains import DomainOptions

__all__ = [
    "STREAM_CAP_BYTES",
    "STREAM_MEMORY_SHARE",
    "HEIF_MAX_SIDE",
    "WEBP_MAX_SIDE",
    "WHOLE_IMAGE_COPIES",
    "stream_budget",
    "upscale_file",
    "whole_image_peak_bytes",
]



def _output_format(dst: Path, format: str | None) -> str | None:
    key = (format if format is not None else dst.suffix).lower().lstrip(".")
    return FORMAT_NAMES.get(key)


def _fit_depth(arr: np.ndarray, fmt: str | None) -> np.ndarray:
    """Reduce the bit depth to the deepest `fmt` stores (float32 -> 16 -> 8); unknown formats: unchanged."""
    from srkit.io import from_float, to_float

    if fmt is None:
        return arr
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(arr.dtype, 32)
    depths = WRITABLE[fmt][0]
    if depth in depths:
        return arr
    return from_float(to_float(arr), max(d for d in depths if d < depth))


# --- when to stream ----------------------------------------------------------------------------

#: The whole-image path of `upscale_file` peaks at about this many float32 copies of the output (working
#: channels): the model's output, its clipped/scaled/rounded copies, the integer result and the encoder's copy,
#: plus the model's tile activations. Measured with tiny-x4 (Y-only ECBSR) on RGB: 2000 x 2000 -> 8000 x 8000
#: peaks at 3.4 GB RSS for 0.77 GB of float32 output (4.4 copies).
WHOLE_IMAGE_COPIES = 4.5
#: Automatic mode streams when the whole-image estimate exceeds this share of the available memory ...
STREAM_MEMORY_SHARE = 0.5
#: ... or this many bytes, whichever is smaller.
STREAM_CAP_BYTES = 1 << 30
#: WebP stores at most this many pixels a side.
WEBP_MAX_SIDE = 16383
#: Output formats built whole in memory only (libvips encodes PNG and JPEG from strips; TIFF is written in tiles).
_NOT_STREAMED = ("WEBP", "BMP", "HEIF", "AVIF", "JPEG2000")
# Side of the tiles of streamed TIFFs (final, or the temporary one libvips converts to PNG/JPEG).
_STREAM_TILE = 256
_LAYOUT_NAMES = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}


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


def _upscale_file_streaming(
    up: Upscaler, arr: np.ndarray, meta: Any, dst: Path, fmt: str, *, quality: int, request: Request
) -> Path:
    """`upscale_file`'s streaming path: strips of the output go to a tiled TIFF (the output itself, or a
    temporary uncompressed one that libvips then converts to PNG/JPEG reading it sequentially)."""
    import secrets
    import warnings

    from srkit.infer.streaming import default_strip_rows, import_pyvips, vips_encode, write_tiled_tiff
    from srkit.io import atomic_write

    h, w = arr.shape[:2]
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    layout = _LAYOUT_NAMES[channels]
    if layout not in WRITABLE[fmt][1]:
        raise ImageWriteError(f"cannot write '{dst}': {fmt} cannot store layout {layout} (drop the alpha "
                              "channel, or write PNG, WebP or TIFF)")
    if not is_int(quality) or not 1 <= quality <= 100:
        raise ImageWriteError(f"cannot write '{dst}': quality must be an integer in 1..100, got {quality!r}")
    if not dst.parent.is_dir():
        raise ImageWriteError(f"cannot write '{dst}': directory '{dst.parent}' does not exist")
    if dst.is_dir():
        raise ImageWriteError(f"cannot write '{dst}': is a directory")
    if fmt != "TIFF":
        import_pyvips()  # fail before the upscale, not after

    s, info = up.scale, up.model.info
    context = strip_context(up)
    if info.receptive_field is None:
        warnings.warn(f"{info.name} sees the whole image: streamed strips get {context} rows of context and the "
                      "output is close to, not equal to, a whole-image upscale", RuntimeWarning, stacklevel=3)
    rows = default_strip_rows(w, _work_channels(up, channels), s, context, _STREAM_TILE)
    out_dtype = _fit_dtype(arr.dtype, fmt)
    shape = (h * s, w * s) if channels == 1 else (h * s, w * s, channels)
    dpi = tuple(v * s for v in meta.dpi) if meta.dpi else None
    strips = (_fit_depth(strip, fmt) for strip in iter_strips(up, arr, request, rows=rows, context=context))
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


def _upscale_file_outscale(up: Upscaler, arr: np.ndarray, meta: Any, dst: Path, request: Request, outscale: float,
                           *, format: str | None, quality: int) -> Path:
    """`upscale_file` at an output scale other than the model's: built whole (`run_array_outscale`)."""
    from srkit.infer.engine import run_array_outscale
    from srkit.io import write_image

    fmt = _output_format(dst, format)
    h, w = arr.shape[:2]
    side = max(round(h * outscale), round(w * outscale))
    cap = {"WEBP": WEBP_MAX_SIDE, "HEIF": HEIF_MAX_SIDE, "AVIF": HEIF_MAX_SIDE}.get(fmt or "")
    if cap is not None and side > cap:
        raise ConfigError(f"cannot write '{dst}': {side} px a side is over {fmt}'s {cap} px limit; write TIFF or PNG")
    out = _fit_depth(run_array_outscale(up, arr, request, outscale), fmt)
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(out.dtype, 32)
    dpi = (meta.dpi[0] * outscale, meta.dpi[1] * outscale) if meta.dpi else None
    return write_image(dst, out, dataclasses.replace(meta, bit_depth=depth, dpi=dpi), format=format, quality=quality)


def upscale_file(
    src: str | os.PathLike[str],
    dst: str | os.PathLike[str],
    model: str | os.PathLike[str] | SRModel | Upscaler = DEFAULT_MODEL,
    *,
    format: str | None = None,
    quality: int = 95,
    scale: int | None = None,
    tile: TileSetting = None,
    dtype: DtypePolicy = "auto",
    device: str = "cpu",
    alpha: AlphaMode = "bicubic",
    tta: bool | None = None,
    inputs: Mapping[str, float] | None = None,
    seed: int | None = None,
    stream: bool | None = None,
    domain_options: DomainOptions | None = None,
    progress: Callable[[float], None] | None = None,
    strength: float | None = None,
    noise: float | None = None,
    jpeg: float | None = None,
    outscale: float | None = None,
    steps: int | None = None,
) -> Path:
    """Read `src`, upscale it, write `dst` (atomically) with its metadata; returns `Path(dst)`.

    Domain files (a georeferenced TIFF, DICOM file or series folder, NIfTI volume, video), recognised by content
    (`srkit.domains.route`), go to their domain's writer, which keeps their metadata true; without the domain's
    extra installed they are refused (ConfigError naming the extra), never processed as plain images.

    Args:
        format: output format ("png", "jpg"/"jpeg", "webp", "bmp", "tif"/"tiff", "heic"/"heif", "avif",
            "jp2"/"j2k"); default: from `dst`'s suffix.
        quality: JPEG/WebP/HEIF/AVIF/JPEG 2000 quality 1..100 (100 = lossless WebP, HEIF and JPEG 2000; see
            `srkit.io.write_image`).
        model, scale, tile, dtype, device, alpha, tta, inputs, seed, steps: as in `srkit.infer.api.upscale`; pass
            an `Upscaler` to share one model over many files.
        outscale: any output scale (Real-ESRGAN's `--outscale`): the model's passes, then MATLAB bicubic to
            round(outscale * size) (`srkit.infer.engine.run_array_outscale`); whole-image path only.
        progress: called with the fraction of the image done after each tile / strip (a progress bar for big
            images).
        strength, noise, jpeg: a conditioned model's levels, as in `srkit.infer.api.upscale`; what is not given
            is estimated once from the whole image (a JPEG file's quality from its quantisation tables), before
            it is tiled or streamed. Domain files (video, DICOM, ...) get only the levels given.
        domain_options: options of the domain writers (`srkit.domains.DomainOptions`: bands, value range, COG,
            video codec and quality, ...), used when `src` is a domain file.
        stream: True: build the output strip by strip in bounded memory; False: build it whole in memory;
            None (default): stream when the whole-image path would need more than min(`STREAM_MEMORY_SHARE`
            (1/2) x available memory (MemAvailable), `STREAM_CAP_BYTES` (1 GiB)), estimated as
            `WHOLE_IMAGE_COPIES` (4.5) float32 copies of the output (`whole_image_peak_bytes`).

    Streaming: the input is read whole (it is scale^2 times smaller than the output) and upscaled in strips of
    LR rows with the model's receptive field as context, so the pixels equal the whole-image path's for models
    with a finite receptive field (whole-image models get 16 rows of context: close, not equal; a warning says
    so). TIFF is written tiled (256 x 256, Deflate, BigTIFF). PNG and JPEG go through a temporary uncompressed
    tiled TIFF next to `dst` (hidden `.<name>.<hex>.tmp`, needs the output's uncompressed size on disk, removed
    on any failure) that libvips (`pyvips`) converts reading it sequentially: PNG at zlib level 3 with adaptive
    row filters (the whole-image path: Pillow's level 6 for 8 bits, level 3 for 16 bits; same pixels, files a
    few % apart), JPEG at the same quality and chroma subsampling as the whole-image path. The metadata bytes
    (ICC, EXIF, DPI) are the whole-image path's. WebP, BMP, HEIF, AVIF and JPEG 2000 cannot be streamed:
    ConfigError, write TIFF or PNG. WebP is also refused (ConfigError) over 16383 px a side, HEIF and AVIF over
    `HEIF_MAX_SIDE` (16384) px a side, before the model runs.

    Kept: ICC profile, EXIF (orientation already applied), DPI x scale, bit depth and layout as far as the
    format stores them (see the module docstring). Animated/multi-page input is refused (extract frames first).

    Raises:
        ImageReadError: `src` unreadable, animated or multi-page. ImageWriteError: `dst` is `src`, or cannot be
        written in that format (e.g. alpha to JPEG). ModelLoadError / ConfigError: model problems, WebP/BMP/HEIF/
        AVIF/JPEG 2000 output that would need streaming, WebP/HEIF/AVIF output over its side limit, pyvips missing
        for a streamed PNG/JPEG.
    """
    from srkit.io import read_image, write_image

    src_p, dst_p = Path(os.fspath(src)), Path(os.fspath(dst))
    if same_file(src_p, dst_p):
        raise ImageWriteError(f"cannot write '{dst_p}': it is the input file (choose another output name)")
    from srkit.infer import conditioning, sampling

    conditioning.check_levels(strength, noise, jpeg)
    sampling.check_steps(steps)
    seed = sampling.check_seed(seed)
    Request.make(alpha=alpha, tta=bool(tta), inputs=inputs, seed=seed)  # validate before loading anything
    if stream not in (None, True, False):
        raise ConfigError(f"stream must be True, False or None (automatic), got {stream!r}")
    from srkit.domains import route, upscale_domain_file

    domain = route(src_p)  # GeoTIFF, DICOM, NIfTI, video: their own writers keep their metadata true
    if domain is not None:
        up = load_upscaler(model, scale=scale, tile=tile, dtype=dtype, device=device, tta=bool(tta))
        call_inputs = conditioning.level_inputs(up.model.info, inputs, strength=strength, noise=noise, jpeg=jpeg)
        call_inputs = sampling.step_inputs(up.model, call_inputs, steps)
        request = up.request(alpha=alpha, tta=tta, inputs=call_inputs, seed=seed, progress=progress)
        return upscale_domain_file(domain, src_p, dst_p, up, request, domain_options)
    fmt = _output_format(dst_p, format)
    if stream and fmt is None:
        write_format(dst_p, format)  # raises: unknown format
    up = load_upscaler(model, scale=scale, tile=tile, dtype=dtype, device=device, tta=bool(tta))
    if steps is not None:
        sampling.step_inputs(up.model, inputs, steps)  # a model that takes no steps, or too many: before reading
    arr, meta = read_image(src_p)
    # a conditioned model's missing levels: estimated once from the whole image, a JPEG's quality from its tables
    estimate = conditioning.needs_estimate(up.model.info, inputs, strength=strength, noise=noise, jpeg=jpeg)
    src_quality = conditioning.file_jpeg_quality(src_p) if estimate else None
    call_inputs = conditioning.level_inputs(up.model.info, inputs, strength=strength, noise=noise, jpeg=jpeg,
                                            image=arr, quality=src_quality)
    call_inputs = sampling.step_inputs(up.model, call_inputs, steps)
    request = up.request(alpha=alpha, tta=tta, inputs=call_inputs, seed=seed, progress=progress)
    if outscale is not None and not outscale > 0:
        raise ConfigError(f"outscale must be > 0, got {outscale!r}")
    if outscale is not None and abs(outscale - up.scale) < 1e-9:
        outscale = None  # the model's own scale: nothing to resample
    s = up.scale
    h, w = arr.shape[:2]
    channels = 1 if arr.ndim == 2 else arr.shape[2]
    if outscale is not None:
        return _upscale_file_outscale(up, arr, meta, dst_p, request, outscale, format=format, quality=quality)
    if stream is None:
        need = whole_image_peak_bytes(h, w, _work_channels(up, channels), s)
        streaming = fmt is not None and need > stream_budget()
    else:
        streaming = bool(stream)
    if fmt == "WEBP" and max(h, w) * s > WEBP_MAX_SIDE:
        raise ConfigError(f"cannot write '{dst_p}': {w * s} x {h * s} is over WebP's {WEBP_MAX_SIDE} px side "
                          "limit; write TIFF or PNG instead")
    if fmt in ("HEIF", "AVIF") and max(h, w) * s > HEIF_MAX_SIDE:
        raise ConfigError(f"cannot write '{dst_p}': {w * s} x {h * s} is over {fmt}'s {HEIF_MAX_SIDE} px side "
                          "limit; write TIFF or PNG instead")
    if streaming and fmt in _NOT_STREAMED:
        why = "streaming was asked for" if stream else (
            f"a whole-image upscale would need ~{need / 2**30:.1f} GiB (budget {stream_budget() / 2**30:.1f} GiB)")
        name = {"WEBP": "WebP", "JPEG2000": "JPEG 2000"}.get(fmt, fmt)
        raise ConfigError(f"cannot write '{dst_p}': {name} output cannot be streamed and {why}; write TIFF or PNG "
                          "instead")
    if streaming:
        assert fmt is not None
        return _upscale_file_streaming(up, arr, meta, dst_p, fmt, quality=quality, request=request)
    out = _fit_depth(run_array(up, arr, request), fmt)
    depth = {np.dtype(np.uint8): 8, np.dtype(np.uint16): 16}.get(out.dtype, 32)
    dpi = (meta.dpi[0] * s, meta.dpi[1] * s) if meta.dpi else None
    out_meta = dataclasses.replace(meta, bit_depth=depth, dpi=dpi)
    return write_image(dst_p, out, out_meta, format=format, quality=quality)
