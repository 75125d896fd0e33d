"""NIfTI super-resolution (`pip install 'srkit[medical]'`: nibabel).

`upscale_nifti(src, dst, up, request, options)` upscales a 2-D, 3-D or 4-D NIfTI-1/2 volume (`.nii`, `.nii.gz`,
`.hdr`/`.img` pairs) slice by slice in the plane of its first two axes (every slice of every volume of a 4-D
series), and keeps it true:

* Values: the physical values (stored x scl_slope + scl_inter) are mapped to [0, 1] by the volume's finite
  min..max (one range for the whole file, so slices stay consistent) or `options.value_range`, and back; the
  output keeps the header's data type and scl_slope / scl_inter (integers rounded and clipped to the type).
  NaN / Inf voxels are masked by the engine and kept.
* Geometry: the sform and qform (codes kept) map output voxel (i, j) to the point of input voxel
  ((i + 1/2) / s - 1/2, (j + 1/2) / s - 1/2): the in-plane voxel sizes (pixdim and the affine's columns) are
  divided by the scale and the origin moves to the centre of the new first voxel, so every point keeps its
  world coordinates.
* `options.through_plane`: the third axis too. Each plane along the first axis of the in-plane result (second
  axis x slices) goes through the model, and its rows, now upscaled twice, are averaged back in groups of s:
  isotropic x s in 3-D (s^2 times the in-plane cost); the third voxel size is divided by the scale as well.
* What was done (model, scale, range) is recorded in a NIfTI comment extension (`srkit: {...}` JSON).
* A zero (or non-finite) voxel size is refused with one line: the geometry would be undefined.

The volume is read whole and the output built whole in memory (float32 working copies of one volume).
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from srkit.domains._common import data_range, from_unit, model_label, one_line, remove_path, temp_path, to_unit
from srkit.errors import ConfigError, ImageReadError, ImageWriteError
from srkit.infer.engine import run_array

if TYPE_CHECKING:
    from srkit.domains import DomainOptions
    from srkit.infer.engine import Request
    from srkit.infer.upscaler import Upscaler

__all__ = ["upscale_nifti", "voxel_map"]

_SUFFIXES = (".nii", ".nii.gz", ".hdr", ".img", ".hdr.gz", ".img.gz")


def voxel_map(s: int, axes: int) -> np.ndarray:
    """The 4 x 4 map from output voxel indices to input voxel indices for a x`s` upscale of the first `axes` axes:
    i -> (i + 1/2) / s - 1/2 (voxel centres)."""
    m = np.eye(4)
    for a in range(axes):
        m[a, a] = 1.0 / s
        m[a, 3] = (1.0 / s - 1.0) / 2.0
    return m


def _load(src: Path) -> Any:
    import logging

    import nibabel as nib

    log = logging.getLogger("nibabel.global")
    level = log.level
    log.setLevel(logging.ERROR)  # its header fixes ("setting 0 dims to 1") are checked and reported by `_check`
    try:
        img = nib.load(src)
    except Exception as e:  # noqa: BLE001 - nibabel raises many kinds for a bad file
        raise ImageReadError(f"cannot read '{src}': {one_line(e)}") from None
    finally:
        log.setLevel(level)
    if not isinstance(img, (nib.Nifti1Image, nib.Nifti1Pair, nib.Nifti2Image, nib.Nifti2Pair)):
        raise ImageReadError(f"cannot read '{src}': not a NIfTI image ({type(img).__name__})")
    return img


def _stored_pixdim(img: Any) -> list[float]:
    """The voxel sizes as stored (nibabel's loader quietly turns a zero pixdim into 1)."""
    from nibabel.openers import ImageOpener

    holder = img.file_map.get("header") or img.file_map["image"]
    try:
        with ImageOpener(holder.filename) as f:
            raw = type(img).header_class.from_fileobj(f, check=False)
        return [float(v) for v in raw["pixdim"][1:8]]
    except Exception:  # noqa: BLE001 - the header was readable a moment ago: fall back to nibabel's view
        return [float(z) for z in img.header.get_zooms()]


def _check(img: Any, src: Path, through_plane: bool) -> int:
    """The number of spatial axes the upscale touches; ConfigError for what cannot be upscaled."""
    shape = img.shape
    if not 2 <= len(shape) <= 4:
        raise ConfigError(f"cannot read '{src}': {len(shape)}-D data (2-D, 3-D or 4-D volumes only)")
    if min(shape) == 0:
        raise ConfigError(f"cannot read '{src}': empty data {shape}")
    spatial = min(len(shape), 3)
    zooms = [float(z) for z in _stored_pixdim(img)[:spatial]]
    if any(z == 0 or not math.isfinite(z) for z in zooms):
        raise ConfigError(f"cannot read '{src}': a voxel size is zero or not finite (pixdim {zooms}): its "
                          "geometry is undefined; fix the header first")
    if abs(float(np.linalg.det(img.affine[:3, :3]))) < 1e-12:
        raise ConfigError(f"cannot read '{src}': its affine is degenerate (a zero voxel size): fix the header first")
    if np.dtype(img.get_data_dtype()).kind not in "uif":
        raise ConfigError(f"cannot read '{src}': data type {img.get_data_dtype()} is not supported")
    if through_plane and len(shape) == 2:
        raise ConfigError(f"--through-plane needs a 3-D or 4-D volume; '{src}' is 2-D")
    return 3 if through_plane else 2


def _through_plane(u: np.ndarray, up: Upscaler, request: Request) -> np.ndarray:
    """(X, Y, Z) unit volume, X and Y already upscaled -> (X, Y, sZ): each (Y, Z) plane through the model, its
    upscaled Y rows averaged back in groups of s."""
    s = up.scale
    x, y, z = u.shape
    out = np.empty((x, y, z * s), np.float32)
    for i in range(x):
        plane = run_array(up, np.ascontiguousarray(u[i]), request)  # (sY, sZ)
        out[i] = plane.reshape(y, s, z * s).mean(axis=1)
    return out


def _upscale_volume(raw: np.ndarray, up: Upscaler, request: Request, axes: int, st_range: tuple[float, float],
                    dtype: np.dtype) -> np.ndarray:
    """(X, Y, Z) stored values -> upscaled stored values (first `axes` axes x s)."""
    s = up.scale
    st_low, st_high = st_range
    x, y, z = raw.shape
    u = np.empty((x * s, y * s, z), np.float32)
    for k in range(z):
        u[:, :, k] = run_array(up, to_unit(raw[:, :, k], st_low, st_high), request)
    if axes == 3:
        u = _through_plane(u, up, request)
    return from_unit(u, st_low, st_high, dtype)


def _header(img: Any, shape: tuple[int, ...], s: int, axes: int) -> Any:
    hdr = img.header.copy()
    m = voxel_map(s, axes)
    sform, scode = img.header.get_sform(coded=True)
    qform, qcode = img.header.get_qform(coded=True)
    hdr.set_data_shape(shape)
    zooms = list(img.header.get_zooms())
    for a in range(axes):
        zooms[a] = zooms[a] / s
    if sform is not None:
        hdr.set_sform(sform @ m, code=int(scode))
    if qform is not None:
        hdr.set_qform(qform @ m, code=int(qcode))
    hdr.set_zooms(zooms)
    return hdr


def _suffix(p: Path) -> str:
    name = p.name.lower()
    return next((x for x in sorted(_SUFFIXES, key=len, reverse=True) if name.endswith(x)), "")


def upscale_nifti(src: Path, dst: Path, up: Upscaler, request: Request, options: DomainOptions) -> Path:
    """Upscale the NIfTI volume `src` into `dst` (`.nii`, `.nii.gz`, or a `.hdr`/`.img` pair); see the module doc.

    Raises:
        ImageReadError: `src` unreadable. ConfigError: zero voxel size, degenerate affine, 5-D+ data, a bad value
        range. ImageWriteError: `dst` is not a NIfTI name or cannot be written.
    """
    import nibabel as nib

    src, dst = Path(src), Path(dst)
    suffix = _suffix(dst)
    if suffix not in (".nii", ".nii.gz", ".hdr", ".hdr.gz"):
        raise ImageWriteError(f"cannot write '{dst}': a NIfTI output name ends in .nii, .nii.gz or .hdr")
    if dst.is_dir() or not dst.parent.is_dir():
        raise ImageWriteError(f"cannot write '{dst}': " + ("is a directory" if dst.is_dir() else
                                                            f"directory '{dst.parent}' does not exist"))
    img = _load(src)
    axes = _check(img, src, options.through_plane)
    s = up.scale
    proxy = img.dataobj
    slope = float(getattr(proxy, "slope", 1.0) or 1.0)
    inter = float(getattr(proxy, "inter", 0.0) or 0.0)
    raw = np.asanyarray(proxy.get_unscaled() if hasattr(proxy, "get_unscaled") else proxy)
    dtype = np.dtype(img.get_data_dtype()).newbyteorder("=")
    if options.value_range is not None:
        low, high = (float(v) for v in options.value_range)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ConfigError(f"--value-range: LOW must be below HIGH (both finite), got {low} {high}")
    else:
        r = data_range(raw) or (0.0, 1.0)
        low, high = sorted((r[0] * slope + inter, r[1] * slope + inter))
        if high == low:
            high = low + 1.0
    st_range = ((low - inter) / slope, (high - inter) / slope)
    vols = raw.reshape(*raw.shape[:2], -1, 1) if raw.ndim == 2 else raw
    vols = vols[..., None] if vols.ndim == 3 else vols
    out = None
    for t in range(vols.shape[3]):
        vol = _upscale_volume(vols[..., t], up, request, axes, st_range, dtype)
        if out is None:
            out = np.empty((*vol.shape, vols.shape[3]), dtype)
        out[..., t] = vol
    assert out is not None
    out_shape = tuple(out.shape[: raw.ndim]) if raw.ndim >= 3 else tuple(out.shape[:2])
    out = out.reshape(out_shape)
    hdr = _header(img, out_shape, s, axes)
    result = type(img)(out, None, header=hdr)
    if slope != 1.0 or inter != 0.0:
        result.header.set_slope_inter(slope, inter)  # the source's scaling, not one nibabel would choose
    note = {"srkit": {"model": model_label(up), "scale": s, "through_plane": axes == 3,
                      "value_range": [low, high], "source": src.name}}
    result.header.extensions.append(nib.nifti1.Nifti1Extension("comment", json.dumps(note).encode()))
    tmp = temp_path(dst)
    try:
        tmp.mkdir()
        target = tmp / dst.name
        result.to_filename(target)
        produced = sorted(tmp.iterdir())
        for p in produced:  # a pair: the .img first, so the .hdr never names missing data
            if p.name != dst.name:
                os.replace(p, dst.parent / p.name)
        os.replace(target, dst)
    except OSError as e:
        raise ImageWriteError(f"cannot write '{dst}': {e.strerror or e}") from None
    except Exception as e:  # noqa: BLE001 - nibabel's writers raise many kinds
        raise ImageWriteError(f"cannot write '{dst}': {one_line(e)}") from None
    finally:
        remove_path(tmp)
    return dst
