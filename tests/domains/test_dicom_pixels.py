"""DICOM pixel formats and transfer syntaxes (srkit.domains.dicom): RGB in either planar configuration, PALETTE
COLOR written as RGB, float pixel data, and compressed input written compressed (its own lossless syntax when
pydicom can encode it, else RLE Lossless), on small files made here with pydicom (and Pillow for the JPEG and
JPEG 2000 codestreams)."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
if int(pydicom.__version__.split(".")[0]) < 3:
    pytest.skip("pydicom >= 3 (its pixel encoders and float pixel data)", allow_module_level=True)

from domains.dicom_files import encapsulate_as, new_dataset, write_ct  # noqa: E402  (after the importorskip)
from pydicom.dataset import Dataset  # noqa: E402
from pydicom.uid import (  # noqa: E402
    DeflatedExplicitVRLittleEndian,
    ExplicitVRLittleEndian,
    JPEG2000Lossless,
    JPEGBaseline8Bit,
    JPEGLSLossless,
    RLELossless,
    SecondaryCaptureImageStorage,
    generate_uid,
)

from srkit.domains import dicom as dicom_mod  # noqa: E402
from srkit.infer.files import upscale_file  # noqa: E402


def _base(rows: int, cols: int, **kw) -> Dataset:
    ds = new_dataset(SecondaryCaptureImageStorage)
    ds.Modality = "OT"
    ds.ImageType = ["ORIGINAL", "PRIMARY"]
    ds.PixelSpacing = [0.5, 0.5]
    ds.Rows, ds.Columns = rows, cols
    for k, v in kw.items():
        setattr(ds, k, v)
    return ds


def _rgb_picture(h: int = 12, w: int = 16) -> np.ndarray:
    y, x = np.mgrid[0:h, 0:w]
    return np.stack([x * 255 // (w - 1), y * 255 // (h - 1), (x + y) * 255 // (h + w - 2)], -1).astype(np.uint8)


def write_rgb(path: Path, rgb: np.ndarray, planar: int) -> Path:
    ds = _base(*rgb.shape[:2], SamplesPerPixel=3, PhotometricInterpretation="RGB", PlanarConfiguration=planar,
               BitsAllocated=8, BitsStored=8, HighBit=7, PixelRepresentation=0)
    ds.PixelData = (rgb.transpose(2, 0, 1) if planar else rgb).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def _palette(bits: int) -> dict[str, np.ndarray]:
    ramp = np.arange(256)
    top = (1 << bits) - 1
    return {"Red": ramp * top // 255, "Green": (255 - ramp) * top // 255, "Blue": (ramp * 7 % 256) * top // 255}


def write_palette(path: Path, index: np.ndarray, bits: int, **kw) -> Path:
    ds = _base(*index.shape, SamplesPerPixel=1, PhotometricInterpretation="PALETTE COLOR", BitsAllocated=8,
               BitsStored=8, HighBit=7, PixelRepresentation=0, PaletteColorLookupTableUID=generate_uid(), **kw)
    for colour, values in _palette(bits).items():
        setattr(ds, f"{colour}PaletteColorLookupTableDescriptor", [256, 0, bits])
        setattr(ds, f"{colour}PaletteColorLookupTableData", values.astype("<u2" if bits == 16 else "u1").tobytes())
    ds.PixelData = index.astype(np.uint8).tobytes()
    ds.save_as(path, enforce_file_format=True)
    return path


def _derived(ds) -> None:
    assert list(ds.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert "srkit super-resolution x2" in ds.DerivationDescription
    assert [float(v) for v in ds.PixelSpacing] == [0.25, 0.25]


@pytest.mark.parametrize("planar", [0, 1])
def test_rgb_either_planar_configuration(tmp_path, planar):
    rgb = _rgb_picture()
    src = write_rgb(tmp_path / f"p{planar}.dcm", rgb, planar)
    ref = write_rgb(tmp_path / "ref.dcm", rgb, 0)
    out = pydicom.dcmread(upscale_file(src, tmp_path / "o.dcm", "bicubic", scale=2))
    want = pydicom.dcmread(upscale_file(ref, tmp_path / "ref_o.dcm", "bicubic", scale=2)).pixel_array
    assert out.PhotometricInterpretation == "RGB" and out.SamplesPerPixel == 3 and out.PlanarConfiguration == 0
    assert out.pixel_array.shape == (24, 32, 3)
    np.testing.assert_array_equal(out.pixel_array, want)  # planar 1 read as the same picture
    # a smooth picture: each output pixel near the input pixel it lies in (no channel or plane mix-up)
    near = np.repeat(np.repeat(rgb, 2, 0), 2, 1).astype(int)
    assert np.abs(out.pixel_array.astype(int) - near).mean() < 12
    _derived(out)


@pytest.mark.parametrize("bits", [16, 8])
def test_palette_color_is_written_as_rgb(tmp_path, bits):
    from pydicom.pixels import apply_color_lut

    index = (np.add.outer(np.arange(10), np.arange(14)) * 9 % 256).astype(np.uint8)
    src = write_palette(tmp_path / "pal.dcm", index, bits, PixelPaddingValue=0)
    ds_in = pydicom.dcmread(src)
    rgb = np.asarray(apply_color_lut(ds_in.pixel_array, ds_in))
    out = pydicom.dcmread(upscale_file(src, tmp_path / "o.dcm", "bicubic", scale=2))
    assert out.PhotometricInterpretation == "RGB" and out.SamplesPerPixel == 3 and out.PlanarConfiguration == 0
    assert (out.BitsAllocated, out.BitsStored, out.HighBit, out.PixelRepresentation) == (bits, bits, bits - 1, 0)
    for kw in ("RedPaletteColorLookupTableDescriptor", "RedPaletteColorLookupTableData",
               "BluePaletteColorLookupTableData", "PaletteColorLookupTableUID", "PixelPaddingValue"):
        assert kw not in out
    px = out.pixel_array
    assert px.shape == (20, 28, 3) and px.dtype == (np.uint16 if bits == 16 else np.uint8)
    # the same as upscaling the palette's colours, value for value (range and rounding included)
    rgb_src = _base(10, 14, SamplesPerPixel=3, PhotometricInterpretation="RGB", PlanarConfiguration=0,
                    BitsAllocated=bits, BitsStored=bits, HighBit=bits - 1, PixelRepresentation=0)
    rgb_src.PixelData = rgb.astype(rgb.dtype.newbyteorder("<")).tobytes()
    rgb_src.save_as(tmp_path / "rgb.dcm", enforce_file_format=True)
    want = pydicom.dcmread(upscale_file(tmp_path / "rgb.dcm", tmp_path / "rgb_o.dcm", "bicubic", scale=2))
    np.testing.assert_array_equal(px, want.pixel_array)
    assert "PALETTE COLOR" in out.DerivationDescription
    _derived(out)


@pytest.mark.parametrize("keyword, dtype, vr", [("FloatPixelData", np.float32, "OF"),
                                                ("DoubleFloatPixelData", np.float64, "OD")])
def test_float_pixel_data_stays_float(tmp_path, keyword, dtype, vr):
    values = np.full((12, 12), 3.25, dtype)
    values[:, 6:] = -1.5e-3  # physical values, not [0, 1] or integers
    values[0, 0] = np.nan  # a hole: stays a hole
    bits = np.dtype(dtype).itemsize * 8
    ds = _base(12, 12, SamplesPerPixel=1, PhotometricInterpretation="MONOCHROME2", BitsAllocated=bits)
    setattr(ds, keyword, values.tobytes())
    ds.save_as(tmp_path / "f.dcm", enforce_file_format=True)
    out = pydicom.dcmread(upscale_file(tmp_path / "f.dcm", tmp_path / "o.dcm", "bicubic", scale=2))
    assert keyword in out and "PixelData" not in out and out[keyword].VR == vr
    assert out.file_meta.TransferSyntaxUID == ExplicitVRLittleEndian
    px = out.pixel_array
    assert px.dtype == dtype and px.shape == (24, 24)
    assert np.isnan(px[:2, :2]).all() and np.isfinite(px[2:]).all()
    assert np.allclose(px[4:, :8], 3.25, atol=1e-4) and np.allclose(px[:, 16:], -1.5e-3, atol=1e-4)
    _derived(out)


def _rle(path: Path, pixels: np.ndarray) -> Path:
    ds = pydicom.dcmread(path)
    ds.compress(RLELossless, pixels, generate_instance_uid=False)
    ds.save_as(path, enforce_file_format=True)
    return path


def test_rle_input_is_written_rle(tmp_path):
    px = np.zeros((3, 10, 12), np.int16)
    px[:, :, 6:] = 1064
    src = write_ct(tmp_path / "ct.dcm", px[0])
    ds = pydicom.dcmread(src)
    ds.NumberOfFrames = 3
    ds.PixelData = px.tobytes()
    ds.save_as(src, enforce_file_format=True)
    _rle(src, px)
    before = pydicom.dcmread(src)
    out = pydicom.dcmread(upscale_file(src, tmp_path / "o.dcm", "bicubic", scale=2))
    assert out.file_meta.TransferSyntaxUID == RLELossless and out["PixelData"].is_undefined_length
    hu = out.pixel_array.astype(float) * float(out.RescaleSlope) + float(out.RescaleIntercept)
    assert hu.shape == (3, 20, 24) and np.abs(hu[:, :, :10] + 1024).max() <= 1 and np.abs(hu[:, :, 14:] - 40).max() <= 1
    assert out.SOPInstanceUID != before.SOPInstanceUID
    assert out.file_meta.MediaStorageSOPInstanceUID == out.SOPInstanceUID
    assert [float(v) for v in out.PixelSpacing] == [0.35, 0.4] and int(out.NumberOfFrames) == 3
    assert list(out.ImageType)[:2] == ["DERIVED", "SECONDARY"] and "x2" in out.DerivationDescription


def _j2k(px: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    try:
        Image.fromarray(px).save(buf, format="JPEG2000", irreversible=False, no_jp2=True)  # reversible: lossless
    except (OSError, KeyError) as e:
        pytest.skip(f"Pillow cannot write JPEG 2000 here: {e}")
    return buf.getvalue()



def test_jpeg2000_lossless_input_written_in_its_syntax_or_rle(tmp_path):
    from pydicom.pixels import get_decoder

    if not get_decoder(JPEG2000Lossless).is_available:
        pytest.skip("no JPEG 2000 decoder")
    px = np.tile(np.linspace(10, 240, 16).astype(np.uint8), (16, 1))
    src = encapsulate_as(write_ct(tmp_path / "j.dcm", px, slope=1.0, intercept=0.0), JPEG2000Lossless, _j2k(px))
    out = pydicom.dcmread(upscale_file(src, tmp_path / "o.dcm", "bicubic", scale=2))
    want = JPEG2000Lossless if dicom_mod._encoder_available(JPEG2000Lossless) else RLELossless
    assert out.file_meta.TransferSyntaxUID == want
    assert "LossyImageCompression" not in out
    assert out.pixel_array.shape == (32, 32) and abs(float(out.pixel_array.mean()) - float(px.mean())) < 3


def test_lossy_jpeg_input_written_rle_and_flagged_lossy(tmp_path):
    from PIL import Image
    from pydicom.pixels import get_decoder

    if not get_decoder(JPEGBaseline8Bit).is_available:
        pytest.skip("no JPEG decoder")
    px = np.tile(np.linspace(20, 230, 16).astype(np.uint8), (16, 1))
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, format="JPEG", quality=95)
    src = encapsulate_as(write_ct(tmp_path / "j.dcm", px, slope=1.0, intercept=0.0), JPEGBaseline8Bit,
                        buf.getvalue())
    out = pydicom.dcmread(upscale_file(src, tmp_path / "o.dcm", "bicubic", scale=2))
    assert out.file_meta.TransferSyntaxUID == RLELossless  # never re-encoded lossily
    assert out.LossyImageCompression == "01" and out.LossyImageCompressionMethod == "ISO_10918_1"
    assert out.pixel_array.shape == (32, 32)


def test_output_syntax_rules(monkeypatch):
    explicit = str(ExplicitVRLittleEndian)
    assert dicom_mod.output_syntax(ExplicitVRLittleEndian) == [explicit]
    assert dicom_mod.output_syntax(None) == [explicit]
    assert dicom_mod.output_syntax(DeflatedExplicitVRLittleEndian) == [str(DeflatedExplicitVRLittleEndian), explicit]
    assert dicom_mod.output_syntax(RLELossless) == [str(RLELossless), explicit]
    assert dicom_mod.output_syntax(RLELossless, floats=True) == [explicit]
    assert dicom_mod.output_syntax(JPEGBaseline8Bit) == [str(RLELossless), explicit]
    monkeypatch.setattr(dicom_mod, "_encoder_available", lambda ts: False)
    assert dicom_mod.output_syntax(JPEGLSLossless) == [str(RLELossless), explicit]
    monkeypatch.setattr(dicom_mod, "_encoder_available", lambda ts: True)
    assert dicom_mod.output_syntax(JPEGLSLossless) == [str(JPEGLSLossless), str(RLELossless), explicit]
    assert dicom_mod.output_syntax(JPEGBaseline8Bit) == [str(RLELossless), explicit]  # lossy: never again


def test_an_encoder_that_fails_falls_back_to_rle(tmp_path, monkeypatch):
    """JPEG-LS said available but failing (e.g. pyjpegls broken): RLE Lossless, a readable file, nothing lost."""
    px = np.zeros((8, 8), np.int16)
    px[:, 4:] = 1064
    src = _rle(write_ct(tmp_path / "ct.dcm", px), px)
    ds = pydicom.dcmread(src)
    ds.file_meta.TransferSyntaxUID = JPEGLSLossless  # as if it came in JPEG-LS (the pixels are decoded by hand)
    monkeypatch.setattr(dicom_mod, "_encoder_available", lambda ts: True)

    def broken(self, *a, **k):
        if str(a[0]) == str(JPEGLSLossless):
            raise RuntimeError("encoder broken")
        return real(self, *a, **k)

    real = Dataset.compress
    monkeypatch.setattr(Dataset, "compress", broken)
    arr = np.repeat(np.repeat(px, 2, 0), 2, 1)[None]
    ds.Rows, ds.Columns = 16, 16
    ds.PixelData = arr.tobytes()
    dicom_mod._encode(ds, arr, JPEGLSLossless)
    assert ds.file_meta.TransferSyntaxUID == RLELossless
    ds.save_as(tmp_path / "o.dcm", enforce_file_format=True)
    np.testing.assert_array_equal(pydicom.dcmread(tmp_path / "o.dcm").pixel_array, arr[0])


def test_deflated_input_stays_deflated(tmp_path):
    px = np.zeros((8, 8), np.int16)
    px[:, 4:] = 1064
    src = write_ct(tmp_path / "ct.dcm", px)
    ds = pydicom.dcmread(src)
    ds.file_meta.TransferSyntaxUID = DeflatedExplicitVRLittleEndian
    ds.save_as(src, enforce_file_format=True)
    out = pydicom.dcmread(upscale_file(src, tmp_path / "o.dcm", "bicubic", scale=2))
    assert out.file_meta.TransferSyntaxUID == DeflatedExplicitVRLittleEndian and out.pixel_array.shape == (16, 16)
