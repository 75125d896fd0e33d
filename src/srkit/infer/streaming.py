"""Upscale huge images in bounded memory: LR strips in, a tiled BigTIFF out, the full output never in memory.

`upscale_tiff_streaming` walks the LR image in horizontal strips. Each strip is read with `context` extra rows
above and below (the model's receptive field, as in `srkit.infer.tiling`), upscaled by the `Upscaler` (which may
tile the strip further), and only the strip's core rows are kept; for a model with a finite receptive field that
is exactly what the whole-image upscale gives for those rows. The core rows are cut into 256 x 256 tiles and
handed to `tifffile.TiffWriter.write` as a generator, so at any time only one LR strip (with context) and one HR
strip are in memory.

Memory: an uncompressed, single-page TIFF input (the usual way to store huge images) is memory-mapped and read one
strip at a time. Any other input (compressed TIFF, PNG, JPEG, WebP, ...) cannot be read partially with the
libraries at hand and is read whole; it is s^2 times smaller than the output (16x at x4).
"""

from __future__ import annotations

import math
import os
import time
import uuid
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from srkit.errors import ConfigError, ImageReadError, ImageWriteError

__all__ = ["upscale_tiff_streaming", "default_strip_rows"]

_STRIP_BYTES = 256 << 20  # target size of one HR strip as float32 (the Upscaler's output dtype)


def default_strip_rows(width: int, channels: int, scale: int, context: int, tile: int = 256) -> int:
    """LR rows per strip: a multiple of `tile / gcd(tile, scale)` (so each strip fills whole output tile rows),
    at least 4 x `context` (so re-reading context costs <= 50 %), and small enough that the strip's float32 HR
    output stays near 256 MB."""
    unit = tile // math.gcd(tile, scale)
    by_memory = _STRIP_BYTES // max(1, width * scale * scale * channels * 4)
    rows = max(unit, min(max(64, 4 * context), by_memory))
    return int(math.ceil(rows / unit) * unit)


def _open_tiff_lazily(src: Path):
    """(memmap (H, W[, C]), icc, dpi) for an uncompressed single-page gray/RGB(A) TIFF in orientation 1, else None."""
    import tifffile

    try:
        with tifffile.TiffFile(src) as tif:
            pages = tif.pages
            page = pages.first
            if len(tif.series) != 1 or len(pages) != 1 or int(getattr(page, "imagedepth", 1)) != 1:
                return None
            if int(page.photometric) not in (1, 2) or int(page.compression) != 1:
                return None
            spp = int(page.samplesperpixel)
            if spp > 1 and int(page.planarconfig) != 1:
                return None
            extras = tuple(int(e) for e in (page.extrasamples or ()))
            if extras and extras[0] == 1:  # associated (premultiplied) alpha: let read_image handle it
                return None
            orient = page.tags.get(274)
            if orient is not None and int(orient.value) != 1:
                return None
            if page.dtype not in (np.dtype(np.uint8), np.dtype(np.uint16), np.dtype(np.float32)):
                return None
            icc_tag = page.tags.get(34675)
            icc = bytes(icc_tag.value) if icc_tag is not None and icc_tag.value else None
            from srkit.io.images import _tiff_dpi

            dpi = _tiff_dpi(page.tags)
        arr = tifffile.memmap(str(src), mode="r")
    except (ValueError, OSError, KeyError, IndexError, TypeError):  # not memory-mappable / not a plain TIFF
        return None
    if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)):
        return None
    return arr, icc, dpi


def _is_tiff(src: Path) -> bool:
    try:
        with open(src, "rb") as f:
            head = f.read(4)
    except OSError as e:
        raise ImageReadError(f"cannot read {str(src)!r}: {e.strerror or e}") from None
    return head in (b"II*\x00", b"MM\x00*", b"II+\x00", b"MM\x00+")


def upscale_tiff_streaming(
    src: str | os.PathLike,
    dst: str | os.PathLike,
    upscaler,
    *,
    strip_rows: int | None = None,
    tile: int = 256,
    compression: str | None = None,
    max_pixels: int | None = None,
) -> dict:
    """Upscale the image file `src` into a tiled BigTIFF `dst`, strip by strip, in bounded memory.

    The output equals `upscaler.upscale(whole image)` (exactly for models with a finite receptive field, up to
    float rounding; for whole-image models each strip sees 16 LR rows of context and the result is close, not
    equal). uint8 / uint16 / float32 and gray / gray+alpha / RGB / RGBA are kept, as `Upscaler.upscale` does.
    The ICC profile is copied and the DPI multiplied by the scale (same printed size); EXIF is not copied.
    The write is atomic (a temp file in `dst`'s folder, renamed at the end; removed on failure).

    Args:
        src: input image (TIFF read strip by strip when uncompressed, anything `read_image` reads otherwise).
        dst: output path, `.tif` / `.tiff`; written as BigTIFF with `tile` x `tile` tiles.
        upscaler: an `srkit.infer.Upscaler`; give it `tile` (e.g. "auto") for big models: a strip is as wide as
            the image.
        strip_rows: LR rows per strip (rounded up to fill whole output tile rows); default `default_strip_rows`.
        compression: tifffile compression name for the output ("zlib", "lzw", ...); default uncompressed.
        max_pixels: pixel cap for inputs read whole (default: `read_image`'s).

    Returns:
        {"path", "shape", "dtype", "strips", "strip_rows", "context", "lazy_input", "seconds"}.

    Raises:
        ImageReadError: `src` cannot be read.  ImageWriteError: `dst` cannot be written.
        ConfigError: `dst` is not a .tif/.tiff path, is `src`, or a bad `strip_rows` / `tile`.
    """
    import tifffile

    t0 = time.perf_counter()
    src, dst = Path(src), Path(dst)
    if dst.suffix.lower() not in (".tif", ".tiff"):
        raise ConfigError(f"streamed output is a BigTIFF: {str(dst)!r} must end in .tif or .tiff")
    if not src.is_file():
        raise ImageReadError(f"cannot read {str(src)!r}: no such file")
    if dst.resolve() == src.resolve() or (dst.exists() and os.path.samefile(src, dst)):
        raise ConfigError(f"output {str(dst)!r} is the input; choose another path")
    if tile < 16 or tile % 16:
        raise ConfigError(f"tile must be a multiple of 16, got {tile}")
    if strip_rows is not None and strip_rows < 1:
        raise ConfigError(f"strip_rows must be >= 1, got {strip_rows}")

    lazy = _open_tiff_lazily(src) if _is_tiff(src) else None
    if lazy is not None:
        image, icc, dpi = lazy
    else:
        from srkit.io.images import DEFAULT_MAX_PIXELS, read_image

        image, meta = read_image(src, max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels)
        icc, dpi = meta.icc_profile, meta.dpi
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]

    s = upscaler.scale
    info = upscaler.model.info
    h, w = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    if info.receptive_field is not None:
        context = int(info.receptive_field)
    else:
        context = max(16, upscaler.overlap or 0)
        warnings.warn(f"{info.arch} sees the whole image: strips get {context} rows of context and the output is "
                      "close to, not equal to, a whole-image upscale", RuntimeWarning, stacklevel=2)
    context = max(context, 4)  # the bicubic alpha path reads 2 px around each pixel
    unit = tile // math.gcd(tile, s)
    rows = default_strip_rows(w, channels, s, context, tile) if strip_rows is None else strip_rows
    rows = int(math.ceil(rows / unit) * unit)
    out_dtype = np.dtype(np.float32) if image.dtype.kind == "f" else image.dtype
    out_shape = (h * s, w * s) if image.ndim == 2 else (h * s, w * s, channels)
    strips = math.ceil(h / rows)

    def tiles() -> Iterator[np.ndarray]:
        for r0 in range(0, h, rows):
            r1 = min(r0 + rows, h)
            a0, a1 = max(r0 - context, 0), min(r1 + context, h)
            hr = upscaler.upscale(np.asarray(image[a0:a1]))
            core = hr[(r0 - a0) * s : (r1 - a0) * s]
            del hr
            for ty in range(0, core.shape[0], tile):
                for tx in range(0, w * s, tile):
                    yield core[ty : ty + tile, tx : tx + tile]

    kwargs: dict = {}
    if channels >= 3:
        kwargs["photometric"] = "rgb"
    else:
        kwargs["photometric"] = "minisblack"
    if channels in (2, 4):
        kwargs["extrasamples"] = ("unassalpha",)
    if icc:
        kwargs["iccprofile"] = icc
    if dpi:
        kwargs["resolution"] = (float(dpi[0]) * s, float(dpi[1]) * s)
        kwargs["resolutionunit"] = "INCH"
    if compression:
        kwargs["compression"] = compression

    tmp = dst.with_name(f".{dst.name}.{uuid.uuid4().hex[:12]}.tmp")
    try:
        with tifffile.TiffWriter(tmp, bigtiff=True) as tw:
            tw.write(data=tiles(), shape=out_shape, dtype=out_dtype, tile=(tile, tile), metadata=None, **kwargs)
        os.replace(tmp, dst)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ImageWriteError(f"cannot write {str(dst)!r}: {e.strerror or e}") from None
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return {"path": str(dst), "shape": list(out_shape), "dtype": str(out_dtype), "strips": strips,
            "strip_rows": rows, "context": context, "lazy_input": lazy is not None,
            "seconds": time.perf_counter() - t0}
