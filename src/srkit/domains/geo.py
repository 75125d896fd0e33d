"""GeoTIFF / COG super-resolution (`pip install 'srkit[geo]'`: rasterio).

`upscale_file(src, dst, up, request, options)` upscales a georeferenced raster and keeps it true on the map:

* Bands: uint8, uint16, int16 (and u/int32, float32/64); 1 to N bands. `options.bands` picks and orders bands
  (1-based; `--bands 4 3 2`); the output holds the picked bands in that order (all bands, in order, by default).
  A 1-channel (Y) or channel-agnostic model gets every band on its own. An RGB model gets the picked bands in
  groups of 3 when `options.bands` has 3k of them, the source's own red/green/blue triple when its colour
  interpretation says so, and every other band on its own as gray. Alpha bands are upscaled by nearest.
* Values keep their physical range (no 8-bit squeeze): a band goes to [0, 1] by its own valid min..max (a
  group of 3 by their common range) or `options.value_range` (values outside it are clipped), and back. The
  range used is recorded in the band's tags (`SRKIT_VALUE_RANGE`), the model and scale in the dataset's
  (`SRKIT_MODEL`, `SRKIT_SCALE`, `SRKIT_SOURCE_BANDS`).
* Masked pixels (the nodata value, NaN/Inf, the per-dataset mask, alpha 0) are holes: the model sees them
  filled from their valid neighbours (the engine's non-finite masking), and each comes out as its s x s block
  with its own value (nearest): nodata stays nodata. A valid output that rounds to the nodata value is moved one
  step off it.
* Georeferencing: CRS kept; the affine transform's pixel size is divided by the scale, its origin (the outer
  corner) unchanged, so output pixel (i, j) lies where input pixel (i / s, j / s) does. GCPs are scaled the same
  way. RPCs are not carried (a warning says so). A raster without a CRS works, with a warning.
* Memory: read in LR windows (with the model's receptive field as context on every side), written in HR
  windows to a tiled (256 x 256) BigTIFF-if-needed GeoTIFF with the input's compression; the scene is never
  whole in memory (a GDAL block cache of `GDAL_CACHE_MB`). `options.cog`: the tiled file is then copied to a
  Cloud-Optimized GeoTIFF with overviews (average). The write is atomic (hidden temp file, renamed).
"""

from __future__ import annotations

import math
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from srkit.domains._common import from_unit, model_label, nearest, one_line, remove_path, temp_path, to_unit
from srkit.errors import ConfigError, ImageReadError, ImageWriteError
from srkit.infer.engine import run_array, strip_context

if TYPE_CHECKING:
    from srkit.domains import DomainOptions
    from srkit.infer.engine import Request
    from srkit.infer.upscaler import Upscaler

__all__ = ["GDAL_CACHE_MB", "HR_WINDOW", "upscale_file"]

#: GDAL's block cache while a scene is upscaled (MB): bounds what GDAL holds of the input and output.
GDAL_CACHE_MB = 256
#: Target side of the HR windows written at a time (the LR window core is HR_WINDOW / scale, rounded to whole
#: output tiles).
HR_WINDOW = 1024
_TILE = 256
_SCAN_BYTES = 64 << 20  # rows read at a time when scanning the bands' value ranges
_DTYPES = ("uint8", "uint16", "int16", "uint32", "int32", "float32", "float64")


@dataclass
class _Plan:
    bands: tuple[int, ...]  # source band indices (1-based), in output order
    groups: list[tuple[int, ...]]  # positions in `bands` run through the model together
    alpha: list[int]  # positions in `bands` upscaled by nearest
    ranges: list[tuple[float, float]]  # per position: the physical values mapped to [0, 1]
    nodata: float | None
    dataset_mask: bool
    alpha_sources: list[int]  # source bands whose 0 masks the others


def _is_rgb_model(up: Upscaler) -> bool:
    info = up.model.info
    return info.in_channels == 3 and not info.channel_agnostic


def _plan_bands(ds: Any, up: Upscaler, options: DomainOptions) -> tuple[tuple[int, ...], list[tuple[int, ...]],
                                                                        list[int]]:
    from rasterio.enums import ColorInterp

    n = ds.count
    if options.bands is not None:
        if not options.bands:
            raise ConfigError("--bands needs at least one band")
        bad = [b for b in options.bands if isinstance(b, bool) or not isinstance(b, int) or not 1 <= b <= n]
        if bad:
            raise ConfigError(f"--bands: no band {bad[0]!r} (the file has {n} band{'s' * (n != 1)}, numbered 1..{n})")
        bands = tuple(options.bands)
    else:
        bands = tuple(range(1, n + 1))
    ci = ds.colorinterp
    alpha = [i for i, b in enumerate(bands) if ci[b - 1] == ColorInterp.alpha]
    data = [i for i in range(len(bands)) if i not in alpha]
    groups: list[tuple[int, ...]] = []
    if _is_rgb_model(up):
        if options.bands is not None and data and len(data) % 3 == 0:
            groups = [tuple(data[k:k + 3]) for k in range(0, len(data), 3)]
        elif options.bands is None and len(data) >= 3 and [ci[bands[i] - 1] for i in data[:3]] == [
                ColorInterp.red, ColorInterp.green, ColorInterp.blue]:
            groups = [tuple(data[:3])] + [(i,) for i in data[3:]]
    if not groups:
        groups = [(i,) for i in data]
    return bands, groups, alpha


def _same_type(value: float, dtype: np.dtype) -> Any:
    """`value` as the band's float type (so a float32 nodata matches exactly); integers compared as they are (an
    out-of-range nodata then matches nothing instead of wrapping around)."""
    return dtype.type(value) if dtype.kind == "f" else value


def _holes(ds: Any, arr: np.ndarray, plan: _Plan, window: Any) -> np.ndarray:
    """(bands, h, w) bool: pixels that carry no value (nodata, non-finite, masked, alpha 0)."""
    holes = np.zeros(arr.shape, dtype=bool)
    if plan.nodata is not None:
        holes |= np.isnan(arr) if math.isnan(plan.nodata) else arr == _same_type(plan.nodata, arr.dtype)
    if arr.dtype.kind == "f":
        holes |= ~np.isfinite(arr)
    if plan.dataset_mask:
        holes |= (ds.read_masks(plan.bands[0], window=window) == 0)[None]
    for b in plan.alpha_sources:
        holes |= (ds.read(b, window=window) == 0)[None]
    return holes


def _scan_ranges(ds: Any, plan: _Plan, options: DomainOptions) -> list[tuple[float, float]]:
    """Per output band: `options.value_range`, or its valid min..max (a group: the common range of its bands)."""
    from rasterio.windows import Window

    nb = len(plan.bands)
    if options.value_range is not None:
        low, high = (float(v) for v in options.value_range)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ConfigError(f"--value-range: LOW must be below HIGH (both finite), got {low} {high}")
        return [(low, high)] * nb
    lo = np.full(nb, np.inf)
    hi = np.full(nb, -np.inf)
    h, w = ds.height, ds.width
    step = max(1, _SCAN_BYTES // max(1, w * nb * np.dtype(ds.dtypes[0]).itemsize))
    for r0 in range(0, h, step):
        win = Window(0, r0, w, min(step, h - r0))
        arr = ds.read(list(plan.bands), window=win)
        holes = _holes(ds, arr, plan, win)
        for i in range(nb):
            v = arr[i][~holes[i]]
            if v.size:
                lo[i] = min(lo[i], float(v.min()))
                hi[i] = max(hi[i], float(v.max()))
    ranges = [(float(a), float(b)) if a <= b else (0.0, 1.0) for a, b in zip(lo, hi)]
    for g in plan.groups:
        common = (min(ranges[i][0] for i in g), max(ranges[i][1] for i in g))
        for i in g:
            ranges[i] = common
    return ranges


def _window_side(s: int) -> int:
    """LR core side of a window: whole 256-px output tiles, about HR_WINDOW output pixels a side."""
    unit = _TILE // math.gcd(_TILE, s)
    return max(unit, (HR_WINDOW // s) // unit * unit)


def _off_nodata(out: np.ndarray, valid: np.ndarray, nodata: float, low: float, high: float) -> None:
    """Move valid values that equal the nodata value one step off it (towards the band's range)."""
    hit = valid & (out == _same_type(nodata, out.dtype))
    if not hit.any():
        return
    toward = 1 if nodata <= (low + high) / 2 else -1
    if out.dtype.kind == "f":
        out[hit] = np.nextafter(out.dtype.type(nodata), out.dtype.type(toward * np.inf))
    else:
        out[hit] = nodata + toward


def _upscale_window(ds: Any, plan: _Plan, up: Upscaler, request: Request, core: tuple[int, int, int, int],
                    context: int) -> tuple[np.ndarray, np.ndarray | None]:
    """The HR (bands, rows, cols) block of the LR window `core` = (row0, row1, col0, col1), and its HR mask."""
    from rasterio.windows import Window

    r0, r1, c0, c1 = core
    a0, a1 = max(r0 - context, 0), min(r1 + context, ds.height)
    b0, b1 = max(c0 - context, 0), min(c1 + context, ds.width)
    win = Window(b0, a0, b1 - b0, a1 - a0)
    arr = ds.read(list(plan.bands), window=win)
    holes = _holes(ds, arr, plan, win)
    s = up.scale
    crop = (slice((r0 - a0) * s, (r1 - a0) * s), slice((c0 - b0) * s, (c1 - b0) * s))
    core_lr = (slice(r0 - a0, r1 - a0), slice(c0 - b0, c1 - b0))
    out = nearest(arr[(slice(None), *core_lr)], s)  # holes and alpha bands: nearest
    hole_hr = nearest(holes[(slice(None), *core_lr)], s)
    for g in plan.groups:
        idx = list(g)
        if holes[idx].all():
            continue
        low, high = plan.ranges[idx[0]]
        x = to_unit(arr[idx], low, high)
        x[holes[idx]] = np.nan  # the engine fills them from their neighbours and puts them back (nearest)
        img = x[0] if len(idx) == 1 else np.ascontiguousarray(x.transpose(1, 2, 0))
        y = run_array(up, img, request)[crop]
        y = y[None] if y.ndim == 2 else y.transpose(2, 0, 1)
        vals = from_unit(y, low, high, out.dtype)
        keep = ~hole_hr[idx]
        block = out[idx]
        block[keep] = vals[keep]
        if plan.nodata is not None and not math.isnan(plan.nodata):
            _off_nodata(block, keep, plan.nodata, low, high)
        out[idx] = block
    mask = None
    if plan.dataset_mask:
        mask = nearest(ds.read_masks(plan.bands[0], window=win)[core_lr], s)
    return out, mask


def _profile(ds: Any, plan: _Plan, s: int, transform: Any) -> dict[str, Any]:
    structure = ds.tags(ns="IMAGE_STRUCTURE")
    prof: dict[str, Any] = {
        "driver": "GTiff", "width": ds.width * s, "height": ds.height * s, "count": len(plan.bands),
        "dtype": ds.dtypes[plan.bands[0] - 1], "crs": ds.crs, "nodata": plan.nodata, "tiled": True,
        "blockxsize": _TILE, "blockysize": _TILE, "BIGTIFF": "IF_SAFER",
        "interleave": "band" if str(structure.get("INTERLEAVE", "PIXEL")).upper() == "BAND" else "pixel",
    }
    if transform is not None:
        prof["transform"] = transform
    compress = ds.profile.get("compress")
    if compress:
        prof["compress"] = compress
        if structure.get("PREDICTOR"):
            prof["predictor"] = int(structure["PREDICTOR"])
    return prof


def _copy_metadata(ds: Any, out: Any, plan: _Plan, up: Upscaler, gcps: Any) -> None:
    """Tags, band descriptions, colour interpretation, scales/offsets, units, GCPs; plus what srkit did."""
    tags = dict(ds.tags())
    tags.update(SRKIT_MODEL=model_label(up), SRKIT_SCALE=str(up.scale),
                SRKIT_SOURCE_BANDS=" ".join(map(str, plan.bands)))
    out.update_tags(**tags)
    for i, b in enumerate(plan.bands, start=1):
        btags = {k: v for k, v in ds.tags(b).items() if not k.startswith("STATISTICS_")}
        low, high = plan.ranges[i - 1]
        if i - 1 not in plan.alpha:
            btags["SRKIT_VALUE_RANGE"] = f"{low!r} {high!r}"
        btags["SRKIT_SOURCE_BAND"] = str(b)
        out.update_tags(i, **btags)
        if ds.descriptions[b - 1]:
            out.set_band_description(i, ds.descriptions[b - 1])
        if ds.units[b - 1]:
            out.set_band_unit(i, ds.units[b - 1])
    out.scales = [ds.scales[b - 1] for b in plan.bands]
    out.offsets = [ds.offsets[b - 1] for b in plan.bands]
    try:
        out.colorinterp = [ds.colorinterp[b - 1] for b in plan.bands]
    except Exception:  # noqa: BLE001 - a combination GTiff cannot store (e.g. RGB on 16-bit): keep GDAL's default
        pass
    if gcps is not None:
        out.gcps = gcps


def _georeferencing(ds: Any, src: Path, s: int) -> tuple[Any, Any]:
    """(output transform or None, output (gcps, crs) or None); warns for what is not carried."""
    from affine import Affine
    from rasterio.control import GroundControlPoint

    points, gcrs = ds.gcps
    if points:
        scaled = [GroundControlPoint(row=p.row * s, col=p.col * s, x=p.x, y=p.y, z=p.z, id=p.id, info=p.info)
                  for p in points]
        return None, (scaled, gcrs)
    if ds.crs is None:
        warnings.warn(f"'{src}' has no CRS: the output keeps its transform (pixel size / {s}) but has no "
                      "coordinate reference system either", UserWarning, stacklevel=4)
    if getattr(ds, "rpcs", None):
        warnings.warn(f"'{src}': its RPCs are not carried to the output", UserWarning, stacklevel=4)
    t, k = ds.transform, Affine.scale(1.0 / s)
    return (t @ k if hasattr(t, "__matmul__") else t * k), None  # affine >= 2.4 has `@`; `*` is deprecated


def _write(ds: Any, src: Path, tmp: Path, plan: _Plan, up: Upscaler, request: Request) -> None:
    import rasterio

    s = up.scale
    transform, gcps = _georeferencing(ds, src, s)
    context = strip_context(up)
    if up.model.info.receptive_field is None:
        warnings.warn(f"{up.model.info.arch} sees the whole image: windows get {context} pixels of context and the "
                      "output is close to, not equal to, a whole-image upscale", RuntimeWarning, stacklevel=4)
    side = _window_side(s)
    with rasterio.open(tmp, "w", **_profile(ds, plan, s, transform)) as out:
        _copy_metadata(ds, out, plan, up, gcps)
        from rasterio.windows import Window

        for r0 in range(0, ds.height, side):
            r1 = min(r0 + side, ds.height)
            for c0 in range(0, ds.width, side):
                c1 = min(c0 + side, ds.width)
                block, mask = _upscale_window(ds, plan, up, request, (r0, r1, c0, c1), context)
                win = Window(c0 * s, r0 * s, (c1 - c0) * s, (r1 - r0) * s)
                out.write(block, window=win)
                if mask is not None:
                    out.write_mask(mask, window=win)


def _to_cog(tmp: Path, cog: Path, compress: str | None) -> None:
    import rasterio.shutil

    rasterio.shutil.copy(str(tmp), str(cog), driver="COG", BLOCKSIZE=_TILE, BIGTIFF="IF_SAFER",
                         COMPRESS=(compress or "DEFLATE").upper(), OVERVIEW_RESAMPLING="AVERAGE")


def upscale_file(src: Path, dst: Path, up: Upscaler, request: Request, options: DomainOptions) -> Path:
    """Upscale the GeoTIFF `src` into `dst` (a tiled GeoTIFF, or a COG with `options.cog`); see the module doc.

    Raises:
        ImageReadError: `src` cannot be read by GDAL. ImageWriteError: `dst` cannot be written.
        ConfigError: bad `options.bands` / `options.value_range`, an unsupported data type.
    """
    import rasterio
    from rasterio.enums import ColorInterp, MaskFlags
    from rasterio.errors import RasterioError

    src, dst = Path(src), Path(dst)
    if dst.is_dir():
        raise ImageWriteError(f"cannot write '{dst}': is a directory")
    if dst.suffix.lower() not in (".tif", ".tiff"):
        raise ImageWriteError(f"cannot write '{dst}': a GeoTIFF output name ends in .tif or .tiff")
    if not dst.parent.is_dir():
        raise ImageWriteError(f"cannot write '{dst}': directory '{dst.parent}' does not exist")
    tmp, cog = temp_path(dst), temp_path(dst, ".cog")
    with rasterio.Env(GDAL_CACHEMAX=GDAL_CACHE_MB):
        try:
            ds = rasterio.open(src)
        except RasterioError as e:
            raise ImageReadError(f"cannot read '{src}': {one_line(e)}") from None
        with ds:
            kinds = set(ds.dtypes)
            if not kinds <= set(_DTYPES):
                raise ConfigError(f"cannot read '{src}': band data type {sorted(kinds - set(_DTYPES))[0]} is not "
                                  f"supported ({', '.join(_DTYPES)})")
            if len(kinds) > 1:
                raise ConfigError(f"cannot read '{src}': its bands have different data types")
            bands, groups, alpha = _plan_bands(ds, up, options)
            flags = ds.mask_flag_enums[bands[0] - 1]
            plan = _Plan(bands, groups, alpha, [], ds.nodata, MaskFlags.per_dataset in flags
                         and MaskFlags.alpha not in flags and MaskFlags.nodata not in flags,
                         [i + 1 for i, c in enumerate(ds.colorinterp) if c == ColorInterp.alpha])
            plan.ranges = _scan_ranges(ds, plan, options)
            try:
                _write(ds, src, tmp, plan, up, request)
                if options.cog:
                    _to_cog(tmp, cog, ds.profile.get("compress"))
                    os.replace(cog, dst)
                else:
                    os.replace(tmp, dst)
            except RasterioError as e:
                raise ImageWriteError(f"cannot write '{dst}': {one_line(e)}") from None
            except OSError as e:
                raise ImageWriteError(f"cannot write '{dst}': {e.strerror or e}") from None
            finally:
                for p in (tmp, cog):
                    remove_path(p)
                    remove_path(p.with_name(p.name + ".aux.xml"))
    return dst
