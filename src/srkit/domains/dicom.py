"""DICOM super-resolution (`pip install 'srkit[medical]'`: pydicom).

`upscale_dicom(src, dst, up, request, options)` upscales a DICOM file into the file `dst`, or every image of a
series folder into the folder `dst` (same file names; files that are not DICOM images are left out), in-plane,
frame by frame, and keeps the object true:

* Pixels: 8 to 16 (or 32) bits, signed or unsigned, MONOCHROME1, MONOCHROME2, RGB (either planar
  configuration; written interleaved, PlanarConfiguration 0) or YCbCr (decoded as RGB and written as RGB), single
  or multi-frame. PALETTE COLOR is put through its palette (pydicom's `apply_color_lut`, segmented palettes
  included) and written as RGB, as the standard has derived colour images: SamplesPerPixel 3, BitsAllocated /
  BitsStored the palette's entry size (8 or 16), the palette tables removed. Float pixel data (FloatPixelData,
  DoubleFloatPixelData: parametric maps) is upscaled as floats and written back in the same element; NaN / inf
  pixels are holes, like padding. Integer values go through the Modality LUT (RescaleSlope / RescaleIntercept:
  Hounsfield units for CT), are mapped to [0, 1] by their own min..max (per file) or `options.value_range` (in
  those units), and back, then are stored with the same slope, intercept, BitsAllocated / BitsStored /
  PixelRepresentation (clipped to the stored range). MONOCHROME1 is inverted for the model (so it sees the
  displayed image) and back. PixelPaddingValue pixels are holes: the model sees them filled from their
  neighbours, and they come out as padding again (nearest).
* Geometry: Rows / Columns x scale; PixelSpacing, ImagerPixelSpacing and NominalScannedPixelSpacing (also in
  the functional groups of enhanced objects) / scale; ImagePositionPatient moved to the centre of the new
  top-left pixel (half an old pixel minus half a new one along the row and column directions), so a point keeps
  its patient coordinates and distances in mm stay the same; ultrasound regions scaled.
* Identity: new SOPInstanceUID (and MediaStorageSOPInstanceUID); a new SeriesInstanceUID per source series
  (shared by the files of one call); Study and Frame of Reference kept; ImageType DERIVED\\SECONDARY;
  DerivationDescription says what was done (model, scale, value range); SourceImageSequence points at the
  source image; overlays (60xx), whose size no longer matches, are dropped; Smallest/Largest pixel values dropped.
* Transfer syntax: uncompressed input is written uncompressed (Explicit VR Little Endian; Deflated input stays
  Deflated). Compressed input is decoded when pydicom has a decoder for it (pylibjpeg, python-gdcm), else refused
  with one line naming them, and written compressed: in its own transfer syntax when that is lossless and pydicom
  has an encoder for it (RLE Lossless always; JPEG-LS Lossless with pyjpegls, JPEG 2000 Lossless with
  pylibjpeg-openjpeg), otherwise in RLE Lossless (pydicom's own encoder: lossy JPEG, JPEG 2000 or a syntax
  without an encoder are never re-encoded lossily); Explicit VR Little Endian when RLE cannot hold the pixels.
  Input in a lossy syntax gets LossyImageCompression "01" (once lossy, always flagged). Float pixel data is
  always written uncompressed (the standard allows no other).
* Bad input: a DICOM without pixel data is one line (ImageReadError); a series folder is all or nothing (built
  in a hidden temp folder, renamed at the end).
"""

from __future__ import annotations

import math
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from srkit.domains import sniff
from srkit.domains._common import data_range, from_unit, model_label, nearest, one_line, remove_path, temp_path
from srkit.domains._common import to_unit
from srkit.errors import ConfigError, ImageReadError, ImageWriteError
from srkit.infer.engine import run_array

if TYPE_CHECKING:
    from srkit.domains import DomainOptions
    from srkit.infer.engine import Request
    from srkit.infer.upscaler import Upscaler

__all__ = ["DECODERS", "output_syntax", "upscale_dicom"]

#: What to install to read compressed DICOM pixel data.
DECODERS = "pip install pylibjpeg pylibjpeg-libjpeg pylibjpeg-openjpeg (or python-gdcm)"
_SPACINGS = ("PixelSpacing", "ImagerPixelSpacing", "NominalScannedPixelSpacing")
_FLOAT_ELEMENTS = {4: ("FloatPixelData", "OF"), 8: ("DoubleFloatPixelData", "OD")}  # by item size
_PALETTE_ELEMENTS = tuple(f"{pre}{c}PaletteColorLookupTable{part}" for pre in ("", "Segmented", "Large")
                          for c in ("Red", "Green", "Blue", "Alpha") for part in ("Descriptor", "Data")
                          if not (pre == "Segmented" and part == "Descriptor") and not (pre == "Large" and c == "Alpha")
                          ) + ("PaletteColorLookupTableUID", "LargePaletteColorLookupTableUID")
#: Lossless compressed transfer syntaxes an output may be written in again (when pydicom has an encoder).
_LOSSLESS = ("1.2.840.10008.1.2.5",  # RLE Lossless
             "1.2.840.10008.1.2.4.80",  # JPEG-LS Lossless
             "1.2.840.10008.1.2.4.90",  # JPEG 2000 Lossless Only
             "1.2.840.10008.1.2.4.201",  # HTJ2K Lossless Only
             "1.2.840.10008.1.2.4.57", "1.2.840.10008.1.2.4.70")  # JPEG Lossless (Process 14, SV1)
#: Lossy transfer syntaxes -> LossyImageCompressionMethod.
_LOSSY = {"1.2.840.10008.1.2.4.50": "ISO_10918_1", "1.2.840.10008.1.2.4.51": "ISO_10918_1",
          "1.2.840.10008.1.2.4.81": "ISO_14495_1"}


def _pydicom_major() -> int:
    import pydicom

    return int(pydicom.__version__.split(".")[0])


def _read(path: Path, *, skip_non_images: bool = False) -> Any:
    """The dataset at `path` (with its pixel data); without pixel data: ImageReadError, or None when
    `skip_non_images` (DICOMDIR, structured reports, presentation states in a series folder)."""
    import pydicom
    from pydicom.errors import InvalidDicomError

    try:
        ds = pydicom.dcmread(path)
    except (InvalidDicomError, OSError, ValueError, EOFError, KeyError) as e:
        raise ImageReadError(f"cannot read '{path}': {one_line(e)}") from None
    if not any(kw in ds for kw in ("PixelData", "FloatPixelData", "DoubleFloatPixelData")):
        if skip_non_images:
            return None
        raise ImageReadError(f"cannot read '{path}': it has no pixel data (no image to upscale)")
    return ds


def _decoder_available(ts: Any) -> bool | None:
    try:
        from pydicom.pixels import get_decoder

        return bool(get_decoder(ts).is_available)
    except Exception:  # noqa: BLE001 - pydicom < 3, or a syntax without a decoder: unknown
        return None


def _pixels(ds: Any, path: Path) -> np.ndarray:
    """(frames, rows, cols[, 3]) stored values."""
    meta = getattr(ds, "file_meta", None)
    ts = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    try:
        arr = np.asarray(ds.pixel_array)
    except Exception as e:  # noqa: BLE001 - pydicom raises several kinds for undecodable data
        if ts is not None and ts.is_compressed and not _decoder_available(ts):
            raise ConfigError(f"cannot read '{path}': its pixel data is compressed ({ts.name}) and no decoder for it "
                              f"is installed: {DECODERS}") from None
        raise ImageReadError(f"cannot read '{path}': {one_line(e)}") from None
    frames = int(ds.get("NumberOfFrames", 1) or 1)
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    if frames == 1:
        arr = arr[None]
    floats = "PixelData" not in ds  # FloatPixelData / DoubleFloatPixelData
    if arr.ndim != 3 + (spp > 1) or arr.dtype.kind not in ("f" if floats else "ui"):
        raise ImageReadError(f"cannot read '{path}': unexpected pixel array {arr.shape} {arr.dtype}")
    return arr


def _limits(ds: Any, dtype: np.dtype) -> tuple[int, int]:
    bits = int(ds.get("BitsStored", np.dtype(dtype).itemsize * 8) or 8)
    if int(ds.get("PixelRepresentation", 0) or 0):
        return -(1 << (bits - 1)), (1 << (bits - 1)) - 1
    return 0, (1 << bits) - 1


def _padding(ds: Any, stored: np.ndarray) -> np.ndarray | None:
    """Where the stored values are PixelPaddingValue (up to PixelPaddingRangeLimit); None when not set."""
    if "PixelPaddingValue" not in ds or int(ds.get("SamplesPerPixel", 1) or 1) != 1:
        return None
    a = int(ds.PixelPaddingValue)
    b = int(ds.get("PixelPaddingRangeLimit", a))
    lo, hi = min(a, b), max(a, b)
    hole = (stored >= lo) & (stored <= hi)
    return hole if hole.any() else None


def _shift_position(position: Any, orientation: Any, spacing: Any, s: int) -> list[float]:
    """ImagePositionPatient of the new top-left pixel's centre: the old one moved by (1/s - 1)/2 old pixels along
    the row and column directions."""
    t = (1.0 / s - 1.0) / 2.0
    row_dir = np.asarray([float(v) for v in orientation[:3]])  # along a row: increasing column index
    col_dir = np.asarray([float(v) for v in orientation[3:6]])  # down a column: increasing row index
    p = np.asarray([float(v) for v in position]) + t * (row_dir * float(spacing[1]) + col_dir * float(spacing[0]))
    return [round(float(v), 6) for v in p]


def _first(item: Any, seq: str, keyword: str) -> Any:
    if seq in item and len(item[seq].value) and keyword in item[seq].value[0]:
        return item[seq].value[0].get(keyword)
    return None


def _update_geometry(ds: Any, s: int) -> None:
    """Spacings / s and positions moved, at the top level and in the functional groups of enhanced objects."""
    if "ImagePositionPatient" in ds and "ImageOrientationPatient" in ds and "PixelSpacing" in ds:
        ds.ImagePositionPatient = _shift_position(ds.ImagePositionPatient, ds.ImageOrientationPatient,
                                                  ds.PixelSpacing, s)
    shared = ds.SharedFunctionalGroupsSequence[0] if "SharedFunctionalGroupsSequence" in ds else None
    for item in ds.get("PerFrameFunctionalGroupsSequence", []) or []:
        pos = _first(item, "PlanePositionSequence", "ImagePositionPatient")
        groups = [g for g in (item, shared) if g is not None]
        orient = next((v for g in groups if (v := _first(g, "PlaneOrientationSequence", "ImageOrientationPatient"))
                       is not None), None)
        spacing = next((v for g in groups if (v := _first(g, "PixelMeasuresSequence", "PixelSpacing")) is not None),
                       None)
        if pos is not None and orient is not None and spacing is not None:
            item.PlanePositionSequence[0].ImagePositionPatient = _shift_position(pos, orient, spacing, s)
    holders = [ds] + [g for seq in ("SharedFunctionalGroupsSequence", "PerFrameFunctionalGroupsSequence")
                      for g in (ds.get(seq, []) or [])]
    for h in holders:
        targets = [h] + (list(h.PixelMeasuresSequence) if h is not ds and "PixelMeasuresSequence" in h else [])
        for t in targets:
            for kw in _SPACINGS:
                if kw in t and t.get(kw) is not None:
                    t[kw].value = [round(float(v) / s, 10) for v in t.get(kw)]
    for region in ds.get("SequenceOfUltrasoundRegions", []) or []:
        for kw in ("RegionLocationMinX0", "RegionLocationMinY0", "ReferencePixelX0", "ReferencePixelY0"):
            if kw in region:
                region[kw].value = int(region[kw].value) * s
        for kw in ("RegionLocationMaxX1", "RegionLocationMaxY1"):
            if kw in region:
                region[kw].value = int(region[kw].value) * s + s - 1
        for kw in ("PhysicalDeltaX", "PhysicalDeltaY"):
            if kw in region:
                region[kw].value = float(region[kw].value) / s


def _palette_to_rgb(ds: Any, stored: np.ndarray, path: Path) -> np.ndarray:
    """PALETTE COLOR indices (frames, rows, cols) -> RGB (frames, rows, cols, 3) through the dataset's palette."""
    from pydicom.pixels import apply_color_lut

    try:
        rgb = np.asarray(apply_color_lut(stored, ds))
    except Exception as e:  # noqa: BLE001 - a missing or malformed palette: one line
        raise ImageReadError(f"cannot read '{path}': its PALETTE COLOR lookup table cannot be applied: "
                             f"{one_line(e)}") from None
    if rgb.shape != (*stored.shape, 3) or rgb.dtype.kind != "u":
        raise ImageReadError(f"cannot read '{path}': unexpected palette output {rgb.shape} {rgb.dtype}")
    return rgb


def _upscale_pixels(ds: Any, path: Path, up: Upscaler, request: Request,
                    options: DomainOptions) -> tuple[np.ndarray, tuple[float, float], str]:
    """(upscaled stored values (frames, sR, sC[, 3]), the value range used, the photometric interpretation)."""
    photometric = str(ds.get("PhotometricInterpretation", "MONOCHROME2")).strip().upper()
    spp = int(ds.get("SamplesPerPixel", 1) or 1)
    if photometric.startswith("YBR") and spp == 3 and _pydicom_major() >= 3:
        photometric = "RGB"  # pydicom 3 decodes YCbCr to RGB
    supported = ((1, "MONOCHROME1"), (1, "MONOCHROME2"), (3, "RGB"), (1, "PALETTE COLOR"))
    if (spp, photometric) not in supported:
        raise ConfigError(f"cannot read '{path}': photometric interpretation {photometric} with {spp} sample(s) "
                          "per pixel is not supported (MONOCHROME1, MONOCHROME2, RGB, YBR, PALETTE COLOR)")
    stored = _pixels(ds, path)
    slope = float(ds.get("RescaleSlope", 1) or 1)
    intercept = float(ds.get("RescaleIntercept", 0) or 0)
    holes = _padding(ds, stored)
    if photometric == "PALETTE COLOR":  # indices -> the colours they stand for; written as RGB
        stored = _palette_to_rgb(ds, stored, path)
        photometric, slope, intercept, holes = "RGB", 1.0, 0.0, None
    if stored.dtype.kind == "f":  # float pixel data: physical values as they are; NaN / inf are holes
        if stored.ndim != 3:
            raise ConfigError(f"cannot read '{path}': float pixel data with {spp} samples per pixel is not "
                              "supported (the standard has it gray: 1 sample)")
        slope, intercept = 1.0, 0.0
        bad = ~np.isfinite(stored)
        for kw in ("FloatPixelPaddingValue", "DoubleFloatPixelPaddingValue"):
            if ds.get(kw) is not None:
                bad |= stored == float(ds.get(kw))
        holes = bad if bad.any() else None
    if options.value_range is not None:
        low, high = (float(v) for v in options.value_range)
        if not (math.isfinite(low) and math.isfinite(high) and low < high):
            raise ConfigError(f"--value-range: LOW must be below HIGH (both finite), got {low} {high}")
    else:
        r = data_range(stored, None if holes is None else ~holes)
        r = r if r is not None else (0.0, 1.0)
        low, high = sorted((r[0] * slope + intercept, r[1] * slope + intercept))
        if high == low:
            high = low + 1.0
    # stored -> physical -> [0, 1] in one linear step (and back with the same slope and intercept)
    st_low, st_high = (low - intercept) / slope, (high - intercept) / slope
    if stored.dtype.kind == "f":
        limits = None
    elif str(ds.get("PhotometricInterpretation", "")).strip().upper() == "PALETTE COLOR":
        limits = (0, int(np.iinfo(stored.dtype).max))  # the palette's entries fill their 8 or 16 bits
    else:
        limits = _limits(ds, stored.dtype)
    s = up.scale
    out = np.empty((stored.shape[0], stored.shape[1] * s, stored.shape[2] * s, *stored.shape[3:]), stored.dtype)
    for f in range(stored.shape[0]):
        x = to_unit(stored[f], st_low, st_high)  # a negative slope gives st_low > st_high: still linear
        if photometric == "MONOCHROME1":
            x = 1.0 - x  # the model sees the displayed image
        if holes is not None:
            x[holes[f]] = np.nan
        y = run_array(up, x, request)
        if photometric == "MONOCHROME1":
            y = 1.0 - y
        out[f] = from_unit(y, st_low, st_high, stored.dtype, limits)
        if holes is not None:
            hole_hr = nearest(holes[f], s)
            out[f][hole_hr] = nearest(stored[f], s)[hole_hr]
    return out, (low, high), photometric


def _derive(ds: Any, out: np.ndarray, photometric: str, value_range: tuple[float, float], up: Upscaler,
            series_uids: dict[str, str]) -> None:
    """Write the upscaled pixels into `ds` and update its geometry, identity and description."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.sequence import Sequence
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    s = up.scale
    source_sop = (str(ds.get("SOPClassUID", "")), str(ds.get("SOPInstanceUID", "")))
    meta = getattr(ds, "file_meta", None)
    source_ts = getattr(meta, "TransferSyntaxUID", None) if meta is not None else None
    frames = out.shape[0]
    ds.Rows, ds.Columns = int(out.shape[1]), int(out.shape[2])
    was_palette = str(ds.get("PhotometricInterpretation", "")).strip().upper() == "PALETTE COLOR"
    ds.PhotometricInterpretation = photometric
    if photometric == "RGB":
        ds.PlanarConfiguration = 0
    if was_palette:  # now true colour: 3 samples of the palette's entry size, no palette, no padding value
        bits = out.dtype.itemsize * 8
        ds.SamplesPerPixel = 3
        ds.BitsAllocated, ds.BitsStored, ds.HighBit, ds.PixelRepresentation = bits, bits, bits - 1, 0
        for kw in (*_PALETTE_ELEMENTS, "PixelPaddingValue", "PixelPaddingRangeLimit", "RescaleSlope",
                   "RescaleIntercept", "RescaleType", "WindowCenter", "WindowWidth", "VOILUTFunction"):
            if kw in ds:
                del ds[kw]
    _update_geometry(ds, s)
    for kw in ("SmallestImagePixelValue", "LargestImagePixelValue", "SmallestPixelValueInSeries",
               "LargestPixelValueInSeries"):
        if kw in ds:
            del ds[kw]
    for tag in [t for t in ds.keys() if 0x6000 <= t.group <= 0x601E and t.group % 2 == 0]:
        del ds[tag]
    sop = generate_uid()
    old_series = str(ds.get("SeriesInstanceUID", ""))
    ds.SOPInstanceUID = sop
    ds.SeriesInstanceUID = series_uids.setdefault(old_series, generate_uid())
    image_type = [str(v) for v in (ds.get("ImageType") or ["ORIGINAL", "PRIMARY"])]
    ds.ImageType = ["DERIVED", "SECONDARY", *image_type[2:]]
    low, high = value_range
    palette = "; PALETTE COLOR applied through its palette, written as RGB" if was_palette else ""
    ds.DerivationDescription = (
        f"srkit super-resolution x{s} in-plane ({model_label(up)}): {frames} frame(s) upscaled; values mapped "
        f"from [{low:g}, {high:g}] (after RescaleSlope/Intercept) to [0, 1] and back; Rows/Columns x{s}, pixel "
        f"spacing /{s}, ImagePositionPatient moved to the new first pixel centre{palette}")[:1024]
    if "SeriesDescription" in ds or "SeriesInstanceUID" in ds:
        ds.SeriesDescription = f"{ds.get('SeriesDescription', '') or ''} SR x{s}".strip()[-64:]
    if all(source_sop):
        ref = Dataset()
        ref.ReferencedSOPClassUID, ref.ReferencedSOPInstanceUID = source_sop
        ds.SourceImageSequence = Sequence([ref])
    data = out.astype(out.dtype.newbyteorder("<"), copy=False).tobytes()
    if out.dtype.kind == "f":
        keyword, vr = _FLOAT_ELEMENTS[out.dtype.itemsize]
        setattr(ds, keyword, data)
        ds[keyword].VR = vr
    else:
        ds.PixelData = data
        ds["PixelData"].VR = "OB" if out.dtype.itemsize == 1 else "OW"
        ds["PixelData"].is_undefined_length = False
    meta = ds.file_meta if getattr(ds, "file_meta", None) is not None else FileMetaDataset()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    meta.MediaStorageSOPInstanceUID = sop
    if "SOPClassUID" in ds:
        meta.MediaStorageSOPClassUID = ds.SOPClassUID
    ds.file_meta = meta
    if source_ts is not None and str(source_ts) in _LOSSY and str(ds.get("LossyImageCompression", "")) != "01":
        ds.LossyImageCompression = "01"  # the pixels went through a lossy codec once: flagged for good
        ds.LossyImageCompressionMethod = _LOSSY[str(source_ts)]
    _encode(ds, out, source_ts)


def output_syntax(source_ts: Any, *, floats: bool = False) -> list[str]:
    """The transfer syntaxes to try for an output whose source was in `source_ts`, best first (the last one always
    works): see the module docstring."""
    from pydicom.uid import DeflatedExplicitVRLittleEndian, ExplicitVRLittleEndian, RLELossless

    ts = str(source_ts) if source_ts is not None else ""
    if floats or not ts:
        return [str(ExplicitVRLittleEndian)]
    if ts == str(DeflatedExplicitVRLittleEndian):
        return [ts, str(ExplicitVRLittleEndian)]
    try:
        compressed = bool(source_ts.is_compressed)
    except AttributeError:
        compressed = False
    if not compressed:
        return [str(ExplicitVRLittleEndian)]
    tries = [ts] if ts in _LOSSLESS and _encoder_available(ts) else []
    return [*dict.fromkeys([*tries, str(RLELossless)]), str(ExplicitVRLittleEndian)]


def _encoder_available(ts: str) -> bool:
    try:
        from pydicom.pixels import get_encoder

        return bool(get_encoder(ts).is_available)
    except Exception:  # noqa: BLE001 - pydicom < 3, or no encoder at all for this syntax
        return False


def _encode(ds: Any, out: np.ndarray, source_ts: Any) -> None:
    """Compress `ds`'s native pixel data into the first of `output_syntax(...)` whose encoder takes these pixels
    (it stays Explicit VR Little Endian when none does)."""
    from pydicom.uid import UID, ExplicitVRLittleEndian

    native = ds.PixelData if "PixelData" in ds else None
    arr = out if out.shape[0] > 1 else out[0]
    for ts in output_syntax(source_ts, floats=out.dtype.kind == "f"):
        uid = UID(ts)
        if uid == ExplicitVRLittleEndian:
            return
        if not uid.is_compressed:  # Deflated: pydicom deflates the dataset when it writes it
            ds.file_meta.TransferSyntaxUID = uid
            return
        try:
            ds.compress(uid, arr, generate_instance_uid=False)
            return
        except Exception:  # noqa: BLE001 - this encoder refuses these pixels: the next syntax
            ds.PixelData = native
            ds["PixelData"].VR = "OB" if out.dtype.itemsize == 1 else "OW"
            ds["PixelData"].is_undefined_length = False
            ds.file_meta.TransferSyntaxUID = ExplicitVRLittleEndian


def _save(ds: Any, fh: Any) -> None:
    import pydicom

    if _pydicom_major() >= 3:
        pydicom.dcmwrite(fh, ds, enforce_file_format=True)
    else:  # pragma: no cover - pydicom 2.4
        ds.is_little_endian, ds.is_implicit_VR = True, False
        pydicom.dcmwrite(fh, ds, write_like_original=False)


def _one(path: Path, up: Upscaler, request: Request, options: DomainOptions, series_uids: dict[str, str], *,
         skip_non_images: bool = False) -> Any:
    ds = _read(path, skip_non_images=skip_non_images)
    if ds is None:
        return None
    out, value_range, photometric = _upscale_pixels(ds, path, up, request, options)
    _derive(ds, out, photometric, value_range, up, series_uids)
    return ds


def _write_file(ds: Any, dst: Path) -> None:
    from srkit.io.atomic import atomic_write

    atomic_write(dst, lambda fh: _save(ds, fh), wrap=(OSError, ValueError, TypeError, AttributeError))


def _series(src: Path, dst: Path, up: Upscaler, request: Request, options: DomainOptions) -> Path:
    files = [p for p in sorted(src.iterdir()) if p.is_file() and not p.name.startswith(".") and sniff.is_dicom(p)]
    if dst.exists() and not dst.is_dir():
        raise ImageWriteError(f"cannot write '{dst}': a DICOM series is written to a folder, and this is a file")
    if not dst.parent.is_dir():
        raise ImageWriteError(f"cannot write '{dst}': directory '{dst.parent}' does not exist")
    tmp = temp_path(dst)
    old = temp_path(dst, ".old")
    series_uids: dict[str, str] = {}
    written = 0
    try:
        tmp.mkdir()
        for p in files:  # one dataset in memory at a time
            ds = _one(p, up, request, options, series_uids, skip_non_images=True)
            if ds is not None:
                _write_file(ds, tmp / p.name)
                written += 1
        if not written:
            raise ImageReadError(f"cannot read '{src}': no DICOM image with pixel data in this folder")
        if dst.exists():
            os.replace(dst, old)
        os.replace(tmp, dst)
    except OSError as e:
        raise ImageWriteError(f"cannot write '{dst}': {e.strerror or e}") from None
    finally:
        remove_path(tmp)
        remove_path(old)
    return dst


def upscale_dicom(src: Path, dst: Path, up: Upscaler, request: Request, options: DomainOptions) -> Path:
    """Upscale the DICOM file `src` into the file `dst`, or the series folder `src` into the folder `dst`.

    Raises:
        ImageReadError: not readable, no pixel data (a folder: no image at all). ConfigError: compressed pixel
        data without a decoder, an unsupported photometric interpretation, a bad value range.
        ImageWriteError: `dst` cannot be written.
    """
    src, dst = Path(src), Path(dst)
    if src.is_dir():
        return _series(src, dst, up, request, options)
    if dst.is_dir():
        raise ImageWriteError(f"cannot write '{dst}': is a directory")
    ds = _one(src, up, request, options, {})
    _write_file(ds, dst)
    return dst
