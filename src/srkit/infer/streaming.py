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

`srkit.infer.files.upscale_file(..., stream=True)` (and `srkit upscale --stream`) builds on the pieces below:
`write_tiled_tiff` writes HR strips as a tiled BigTIFF, and `vips_encode` converts such a TIFF to PNG or JPEG with
libvips reading it sequentially, replacing libvips' metadata by exactly what `srkit.io.write_image` writes.
"""

from __future__ import annotations

import math
import os
import struct
import threading
import time
import uuid
import warnings
from collections.abc import Iterable, Iterator
from pathlib import Path

import numpy as np

from srkit.errors import ConfigError, ImageReadError, ImageWriteError
from srkit.infer.engine import iter_strips, strip_context

__all__ = ["default_strip_rows", "strip_tiles", "upscale_tiff_streaming", "vips_encode", "write_tiled_tiff"]

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
            from srkit.io.tiff import tiff_dpi

            dpi = tiff_dpi(page.tags)
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

    The output equals `upscaler.upscale(whole image)` (`srkit.infer.engine.iter_strips`: exactly for models
    with a finite receptive field, up to float rounding; for whole-image models each strip sees 16 LR rows of
    context and the result is close, not equal). uint8 / uint16 / float32 and gray / gray+alpha / RGB / RGBA
    are kept, as `Upscaler.upscale` does.
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
        from srkit.io import DEFAULT_MAX_PIXELS, read_image

        image, meta = read_image(src, max_pixels=DEFAULT_MAX_PIXELS if max_pixels is None else max_pixels)
        icc, dpi = meta.icc_profile, meta.dpi
    if image.ndim == 3 and image.shape[2] == 1:
        image = image[..., 0]

    s = upscaler.scale
    info = upscaler.model.info
    h, w = image.shape[:2]
    channels = 1 if image.ndim == 2 else image.shape[2]
    context = strip_context(upscaler)
    if info.receptive_field is None:
        warnings.warn(f"{info.name} sees the whole image: strips get {context} rows of context and the output is "
                      "close to, not equal to, a whole-image upscale", RuntimeWarning, stacklevel=2)
    unit = tile // math.gcd(tile, s)
    rows = default_strip_rows(w, channels, s, context, tile) if strip_rows is None else strip_rows
    rows = int(math.ceil(rows / unit) * unit)
    out_dtype = np.dtype(np.float32) if image.dtype.kind == "f" else image.dtype
    out_shape = (h * s, w * s) if image.ndim == 2 else (h * s, w * s, channels)
    strips = math.ceil(h / rows)

    def hr_strips() -> Iterator[np.ndarray]:
        for hr in iter_strips(upscaler, image, upscaler.request(), rows=rows, context=context):
            yield hr.astype(out_dtype, copy=False)

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
            tw.write(data=strip_tiles(hr_strips(), tile), shape=out_shape, dtype=out_dtype, tile=(tile, tile),
                     metadata=None, **kwargs)
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


# --------------------------------------------------------------------------------------------
# building blocks of `srkit.infer.files.upscale_file(..., stream=True)`
# --------------------------------------------------------------------------------------------


def strip_tiles(strips: Iterable[np.ndarray], tile: int) -> Iterator[np.ndarray]:
    """Cut HR strips (each a whole number of `tile` rows high, except the last) into `tile` x `tile` tiles in
    TIFF order (row-major; edge tiles smaller, tifffile pads them)."""
    for core in strips:
        width = core.shape[1]
        for ty in range(0, core.shape[0], tile):
            for tx in range(0, width, tile):
                yield core[ty : ty + tile, tx : tx + tile]


def write_tiled_tiff(
    fh,
    strips: Iterable[np.ndarray],
    shape: tuple[int, ...],
    dtype: np.dtype,
    *,
    tile: int = 256,
    compression: str | None = None,
    icc: bytes | None = None,
    dpi: tuple[float, float] | None = None,
) -> None:
    """Write the HR strips of a (H, W[, C]) image into a tiled BigTIFF (`fh`: path or seekable binary file).

    Tags as `srkit.io.write_image` writes them: photometric MINISBLACK (L, LA) or RGB (RGB, RGBA), contiguous
    samples, unassociated alpha, ICC profile, resolution in DPI; no EXIF, no tifffile metadata.
    """
    import tifffile

    channels = 1 if len(shape) == 2 else shape[2]
    kwargs: dict = {"photometric": "rgb" if channels >= 3 else "minisblack", "metadata": None}
    if channels > 1:
        kwargs["planarconfig"] = "contig"
    if channels in (2, 4):
        kwargs["extrasamples"] = ("unassalpha",)
    if icc:
        kwargs["iccprofile"] = icc
    if dpi:
        kwargs["resolution"] = (float(dpi[0]), float(dpi[1]))
        kwargs["resolutionunit"] = "INCH"
    if compression:
        kwargs["compression"] = compression
    with tifffile.TiffWriter(fh, bigtiff=True) as tw:
        tw.write(data=strip_tiles(strips, tile), shape=tuple(shape), dtype=np.dtype(dtype), tile=(tile, tile),
                 **kwargs)


#: libvips PNG settings for streamed PNGs: zlib level 3 with adaptive ("all") row filters. Measured (CPU seconds,
#: one thread) on an 8000 x 8000 RGB upscale (192 MB of pixels): level 3 4.8 s for 81.0 MB, level 6 9.2 s for
#: 78.3 MB, level 2 4.5 s / 84.1 MB, level 1 3.3 s / 129.8 MB, level 9 46 s / 74.1 MB; without row filters
#: (libvips' default) every level gives ~190 MB. The whole-image path (Pillow, level 6) takes 34 s for 74.3 MB
#: (Pillow level 3: 8.7 s, 82.4 MB); its 16-bit PNGs use level 3 too.
PNG_COMPRESSION = 3
PNG_FILTER = "all"

_VIPS_CACHE_LOCK = threading.Lock()


def import_pyvips():
    """`pyvips`, or ConfigError with one line saying how to get it (it streams PNG and JPEG outputs)."""
    try:
        import pyvips
    except Exception as e:  # noqa: BLE001 - ImportError, or OSError when libvips itself cannot be loaded
        msg = " ".join(str(e).split())[:160] or type(e).__name__
        raise ConfigError(f"streaming PNG/JPEG output needs pyvips ({msg}); pip install 'pyvips>=2.2' "
                          "'pyvips-binary>=8.16', or write TIFF, or turn streaming off") from None
    return pyvips


class _ChunkSink:
    """Base of the metadata rewriters: bytes from libvips in, the same stream with metadata replaced out."""

    def __init__(self, fh, extra: bytes):
        self.fh, self.extra = fh, extra
        self.head = bytearray()
        self.error: BaseException | None = None

    def write(self, data: bytes) -> int:
        if self.error is not None:
            return -1
        try:
            self._feed(memoryview(bytes(data)))
        except BaseException as e:  # noqa: BLE001 - re-raised by the caller after libvips returns
            self.error = e
            return -1
        return len(data)

    def _feed(self, mv: memoryview) -> None:  # pragma: no cover - overridden
        raise NotImplementedError


class PngMetaRewriter(_ChunkSink):
    """Streams a PNG through, dropping the metadata chunks the encoder wrote (iCCP, sRGB, gAMA, cHRM, pHYs,
    eXIf, text, tIME) and inserting `extra` (whole chunks) right after IHDR."""

    DROP = frozenset({b"iCCP", b"sRGB", b"gAMA", b"cHRM", b"pHYs", b"eXIf", b"tEXt", b"zTXt", b"iTXt", b"tIME"})

    def __init__(self, fh, extra: bytes):
        super().__init__(fh, extra)
        self.started = self.ended = False
        self.copy = self.skip = 0
        self.insert_after = False

    def _feed(self, mv: memoryview) -> None:
        i, n = 0, len(mv)
        while i < n:
            if self.copy:
                k = min(self.copy, n - i)
                self.fh.write(mv[i : i + k])
                self.copy -= k
                i += k
                if self.copy == 0 and self.insert_after:
                    self.fh.write(self.extra)
                    self.insert_after = False
                continue
            if self.skip:
                k = min(self.skip, n - i)
                self.skip -= k
                i += k
                continue
            k = min(8 - len(self.head), n - i)
            self.head += mv[i : i + k]
            i += k
            if len(self.head) < 8:
                break
            head = bytes(self.head)
            self.head.clear()
            if not self.started:
                if head != b"\x89PNG\r\n\x1a\n":
                    raise ImageWriteError("the PNG encoder wrote no PNG signature")
                self.fh.write(head)
                self.started = True
                continue
            length, ctype = struct.unpack(">I4s", head)
            if ctype in self.DROP:
                self.skip = length + 4  # data + CRC
            else:
                self.fh.write(head)
                self.copy = length + 4
                self.insert_after = ctype == b"IHDR"
                self.ended = ctype == b"IEND"

    def check(self) -> None:
        if not (self.started and self.ended) or self.head or self.copy or self.skip:
            raise ImageWriteError("the PNG encoder's output ended early")


class JpegMetaRewriter(_ChunkSink):
    """Streams a JPEG through, dropping the JFIF (APP0), Exif (APP1) and ICC (APP2) segments the encoder wrote
    and inserting `extra` (whole segments) right after SOI; everything from SOS on is copied as it comes."""

    def __init__(self, fh, extra: bytes):
        super().__init__(fh, extra)
        self.state = "soi"  # soi -> marker -> segment -> ... -> scan
        self.need = 2
        self.marker = b""
        self.tail = b""  # the last 2 bytes of the scan data: EOI when complete

    def _feed(self, mv: memoryview) -> None:
        i, n = 0, len(mv)
        while i < n:
            if self.state == "scan":
                self.fh.write(mv[i:])
                self.tail = (self.tail + bytes(mv[max(i, n - 2) :]))[-2:]
                return
            k = min(self.need - len(self.head), n - i)
            self.head += mv[i : i + k]
            i += k
            if len(self.head) < self.need:
                break
            buf = bytes(self.head)
            self.head.clear()
            if self.state == "soi":
                if buf != b"\xff\xd8":
                    raise ImageWriteError("the JPEG encoder wrote no SOI marker")
                self.fh.write(buf + self.extra)
                self.state, self.need = "marker", 4
            elif self.state == "marker":
                if buf[0] != 0xFF:
                    raise ImageWriteError("unexpected bytes between JPEG segments")
                if buf[1] == 0xDA:  # start of scan: the rest is image data
                    self.fh.write(buf)
                    self.state = "scan"
                    continue
                self.marker = buf
                self.state, self.need = "segment", struct.unpack(">H", buf[2:])[0] - 2
                if self.need == 0:
                    self.fh.write(buf)
                    self.state, self.need = "marker", 4
            else:
                m = self.marker[1]
                drop = ((m == 0xE0 and buf.startswith((b"JFIF\x00", b"JFXX\x00")))
                        or (m == 0xE1 and buf.startswith(b"Exif\x00\x00"))
                        or (m == 0xE2 and buf.startswith(b"ICC_PROFILE\x00")))
                if not drop:
                    self.fh.write(self.marker + buf)
                self.state, self.need = "marker", 4

    def check(self) -> None:
        if self.state != "scan" or self.tail != b"\xff\xd9":
            raise ImageWriteError("the JPEG encoder's output ended early")


def _jpeg_segment(marker: int, body: bytes) -> bytes:
    if len(body) + 2 > 0xFFFF:
        raise ImageWriteError(f"JPEG segment too long ({len(body)} bytes)")
    return bytes((0xFF, marker)) + struct.pack(">H", len(body) + 2) + body


def jpeg_meta_segments(icc: bytes | None, exif: bytes | None, dpi: tuple[float, float] | None) -> bytes:
    """The JFIF, Exif and ICC segments Pillow writes for `srkit.io.write_image` (same bytes, same order)."""
    from srkit.io.meta import EXIF_PREFIX, exif_tiff_block

    if dpi:
        unit, density = 1, tuple(min(0xFFFF, max(1, int(round(float(v))))) for v in dpi)
    else:
        unit, density = 0, (1, 1)
    out = _jpeg_segment(0xE0, b"JFIF\x00\x01\x01" + struct.pack(">BHHBB", unit, *density, 0, 0))
    if exif:
        block = EXIF_PREFIX + exif_tiff_block(exif)
        if len(block) > 0xFFFF - 2:
            raise ImageWriteError(f"EXIF data is too long for JPEG ({len(block)} bytes)")
        out += _jpeg_segment(0xE1, block)
    if icc:
        size = 0xFFFF - 2 - 14  # Pillow: 65519 profile bytes per APP2 segment
        parts = [icc[k : k + size] for k in range(0, len(icc), size)]
        if len(parts) > 255:
            raise ImageWriteError(f"ICC profile is too long for JPEG ({len(icc)} bytes)")
        for k, part in enumerate(parts, 1):
            out += _jpeg_segment(0xE2, b"ICC_PROFILE\x00" + bytes((k, len(parts))) + part)
    return out


def vips_encode(
    tiff: str | os.PathLike,
    fh,
    fmt: str,
    *,
    quality: int = 95,
    icc: bytes | None = None,
    exif: bytes | None = None,
    dpi: tuple[float, float] | None = None,
) -> None:
    """Convert the (uncompressed, tiled) TIFF `tiff` to PNG or JPEG on the open binary file `fh` with libvips,
    reading it sequentially (a few tile rows in memory at a time).

    The pixels are encoded as they are (8/16-bit PNG, gray/gray+alpha/RGB/RGBA; 8-bit gray/RGB JPEG with
    `quality` and 4:4:4 chroma at quality >= 90, 4:2:0 below, as `srkit.io.write_image`). Metadata is not taken
    from libvips: its chunks/segments are replaced on the fly by the ones `write_image` writes (ICC, EXIF
    verbatim, DPI), so both paths carry the same metadata bytes.
    """
    from srkit.io.png import png_meta_chunks

    if fmt == "PNG":
        sink: PngMetaRewriter | JpegMetaRewriter = PngMetaRewriter(fh, png_meta_chunks(icc, exif, dpi))
    elif fmt == "JPEG":
        sink = JpegMetaRewriter(fh, jpeg_meta_segments(icc, exif, dpi))
    else:
        raise ConfigError(f"libvips encodes PNG and JPEG here, not {fmt}")
    pyvips = import_pyvips()
    try:
        image = pyvips.Image.new_from_file(os.fspath(tiff), access="sequential")
        target = pyvips.TargetCustom()
        target.on_write(sink.write)
        # No metadata from libvips (`keep` is libvips >= 8.15; `strip` before).
        bare = {"keep": "none"} if pyvips.at_least_libvips(8, 15) else {"strip": True}
        if fmt == "PNG":
            bitdepth = 16 if image.format == "ushort" else 8
            image.pngsave_target(target, compression=PNG_COMPRESSION, filter=PNG_FILTER, bitdepth=bitdepth, **bare)
        else:
            image.jpegsave_target(target, Q=int(quality), subsample_mode="off" if quality >= 90 else "on",
                                  optimize_coding=False, interlace=False, **bare)
    except pyvips.Error as e:
        if sink.error is not None:
            raise sink.error from None
        raise ImageWriteError(f"libvips could not encode {fmt}: {' '.join(str(e).split())[:300]}") from None
    finally:
        image = target = None
        # libvips' operation cache keeps the loaded file open (a deleted temp file would keep its disk space):
        # trim the cache to nothing, then restore its size.
        with _VIPS_CACHE_LOCK:
            size = pyvips.cache_get_max()
            pyvips.cache_set_max(0)
            pyvips.cache_set_max(size)
    if sink.error is not None:
        raise sink.error
    sink.check()
