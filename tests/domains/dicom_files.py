"""Small DICOM files made with pydicom for the medical tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np


def new_dataset(sop_class, series_uid: str | None = None):
    """An empty explicit-VR-little-endian dataset of `sop_class` with its file meta and fresh UIDs (one study)."""
    from pydicom.dataset import Dataset, FileMetaDataset
    from pydicom.uid import ExplicitVRLittleEndian, generate_uid

    meta = FileMetaDataset()
    meta.MediaStorageSOPClassUID = sop_class
    meta.MediaStorageSOPInstanceUID = generate_uid()
    meta.TransferSyntaxUID = ExplicitVRLittleEndian
    ds = Dataset()
    ds.file_meta = meta
    ds.SOPClassUID = sop_class
    ds.SOPInstanceUID = meta.MediaStorageSOPInstanceUID
    ds.StudyInstanceUID = "1.2.826.0.1.3680043.8.498.1"
    ds.SeriesInstanceUID = series_uid or generate_uid()
    return ds


def write_ct(path: Path, pixels: np.ndarray, *, slope: float = 1.0, intercept: float = -1024.0,
             spacing: tuple[float, float] = (0.7, 0.8), position=(-100.0, -120.0, 30.0),
             orientation=(1.0, 0.0, 0.0, 0.0, 1.0, 0.0), photometric: str = "MONOCHROME2",
             series_uid: str | None = None, instance: int = 1, pixel_data: bool = True,
             bits_stored: int | None = None, modality: str = "CT") -> Path:
    """A CT image (explicit VR little endian) with `pixels` as stored values (uint16/int16/uint8)."""
    from pydicom.uid import CTImageStorage

    ds = new_dataset(CTImageStorage, series_uid)
    ds.FrameOfReferenceUID = "1.2.826.0.1.3680043.8.498.2"
    ds.Modality = modality
    ds.PatientName = "Test^Phantom"
    ds.PatientID = "0001"
    ds.InstanceNumber = instance
    ds.ImageType = ["ORIGINAL", "PRIMARY", "AXIAL"]
    ds.ImagePositionPatient = list(position)
    ds.ImageOrientationPatient = list(orientation)
    ds.PixelSpacing = list(spacing)
    ds.SliceThickness = 2.5
    ds.RescaleSlope = slope
    ds.RescaleIntercept = intercept
    ds.SamplesPerPixel = 1
    ds.PhotometricInterpretation = photometric
    ds.Rows, ds.Columns = pixels.shape
    ds.BitsAllocated = pixels.dtype.itemsize * 8
    ds.BitsStored = bits_stored or ds.BitsAllocated
    ds.HighBit = ds.BitsStored - 1
    ds.PixelRepresentation = 1 if pixels.dtype.kind == "i" else 0
    if pixel_data:
        ds.PixelData = pixels.astype(pixels.dtype.newbyteorder("<")).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def encapsulate_as(path: Path, syntax, frame: bytes) -> Path:
    """Rewrite the DICOM file at `path` in place with one encapsulated (compressed) `frame` under transfer syntax
    `syntax` (the bytes are not checked against it)."""
    import pydicom
    from pydicom.encaps import encapsulate

    ds = pydicom.dcmread(path)
    ds.file_meta.TransferSyntaxUID = syntax
    ds.PixelData = encapsulate([frame])
    ds["PixelData"].VR = "OB"
    ds["PixelData"].is_undefined_length = True
    ds.save_as(path, enforce_file_format=True)
    return path
