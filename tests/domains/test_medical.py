"""DICOM and NIfTI through srkit (srkit.domains.dicom / nifti): Hounsfield units, distances in mm, spacing,
UIDs, MONOCHROME1, series folders, NIfTI affine and scaling, bad input and the missing-extra refusal, on small
files made here with pydicom and nibabel."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

pydicom = pytest.importorskip("pydicom")
nib = pytest.importorskip("nibabel")

from domains.dicom_files import encapsulate_as, write_ct  # noqa: E402  (after the importorskips)

from srkit.domains import DomainOptions  # noqa: E402
from srkit.errors import ConfigError, ImageReadError  # noqa: E402
from srkit.infer.files import upscale_file  # noqa: E402


def phantom(h: int = 48, w: int = 56) -> np.ndarray:
    """Stored CT values (intercept -1024): air (-1000 HU) on the left, soft tissue (40 HU) on the right, and two
    bright 2 x 2 markers (1976 HU) in the tissue."""
    px = np.full((h, w), 24, np.int16)
    px[:, w // 2:] = 1064
    px[10:12, 34:36] = 3000
    px[36:38, 46:48] = 3000
    return px


def markers(hu: np.ndarray, threshold: float = 1000.0) -> list[np.ndarray]:
    """Intensity-weighted centroids (row, col) of the bright markers, top one first."""
    mask = hu > threshold
    rows = np.nonzero(mask.any(axis=1))[0]
    split = rows[np.argmax(np.diff(rows))] + 1  # the gap between the two markers' rows
    out = []
    for part in (slice(0, split), slice(split, hu.shape[0])):
        m = np.zeros_like(mask)
        m[part] = mask[part]
        w = np.where(m, hu - threshold, 0.0)
        r, c = np.indices(hu.shape)
        out.append(np.array([(w * r).sum() / w.sum(), (w * c).sum() / w.sum()]))
    return out


def patient_xyz(ds, rc: np.ndarray) -> np.ndarray:
    """Patient coordinates (mm) of the pixel position (row, col)."""
    ipp = np.array([float(v) for v in ds.ImagePositionPatient])
    iop = np.array([float(v) for v in ds.ImageOrientationPatient])
    dr, dc = (float(v) for v in ds.PixelSpacing)
    return ipp + iop[:3] * rc[1] * dc + iop[3:] * rc[0] * dr


def hu_of(ds) -> np.ndarray:
    return ds.pixel_array.astype(np.float64) * float(ds.RescaleSlope) + float(ds.RescaleIntercept)


def test_ct_keeps_hounsfield_units_and_geometry(tmp_path):
    """The targets with a trained model (tiny-x2): flat air stays -1000 +- 5 HU; the distance in mm between the
    two markers is the same before and after; spacing, UIDs, ImageType, derivation updated."""
    src = write_ct(tmp_path / "ct.dcm", phantom(), spacing=(0.7, 0.8), position=(-100.0, -120.0, 30.0))
    dst = upscale_file(src, tmp_path / "out.dcm", "tiny-x2")
    a, b = pydicom.dcmread(src), pydicom.dcmread(dst)
    hu = hu_of(b)
    assert (b.Rows, b.Columns) == (96, 112)
    air = hu[8:88, 6:44]  # far from the tissue edge
    assert np.abs(air + 1000).max() <= 5
    assert b.pixel_array.dtype == np.int16 and b.BitsStored == a.BitsStored
    assert [float(v) for v in b.PixelSpacing] == pytest.approx([0.35, 0.4])
    assert (float(b.RescaleSlope), float(b.RescaleIntercept)) == (1.0, -1024.0)
    # identity
    assert b.SOPInstanceUID != a.SOPInstanceUID and b.SeriesInstanceUID != a.SeriesInstanceUID
    assert b.file_meta.MediaStorageSOPInstanceUID == b.SOPInstanceUID
    assert b.StudyInstanceUID == a.StudyInstanceUID and b.FrameOfReferenceUID == a.FrameOfReferenceUID
    assert list(b.ImageType)[:2] == ["DERIVED", "SECONDARY"]
    assert "x2" in b.DerivationDescription and "ecbsr" in b.DerivationDescription
    assert b.SourceImageSequence[0].ReferencedSOPInstanceUID == a.SOPInstanceUID
    assert b.file_meta.TransferSyntaxUID == pydicom.uid.ExplicitVRLittleEndian


def test_distances_and_positions_in_mm(tmp_path):
    src = write_ct(tmp_path / "ct.dcm", phantom(), spacing=(0.7, 0.8), position=(-100.0, -120.0, 30.0),
                   orientation=(0.0, 1.0, 0.0, 0.0, 0.0, -1.0))  # a sagittal plane: both axes matter
    dst = upscale_file(src, tmp_path / "out.dcm", "bicubic", scale=2)
    a, b = pydicom.dcmread(src), pydicom.dcmread(dst)
    pa = [patient_xyz(a, m) for m in markers(hu_of(a))]
    pb = [patient_xyz(b, m) for m in markers(hu_of(b))]
    assert np.linalg.norm(pb[1] - pb[0]) == pytest.approx(np.linalg.norm(pa[1] - pa[0]), abs=0.02)
    for p, q in zip(pa, pb):  # each marker stays where it is in the patient (ImagePositionPatient moved)
        assert np.abs(p - q).max() < 0.05


def test_imager_spacing_unsigned_8bit_and_monochrome1(tmp_path):
    px = np.tile(np.linspace(10, 240, 32).astype(np.uint8), (24, 1))
    src = write_ct(tmp_path / "cr.dcm", px, slope=1.0, intercept=0.0, photometric="MONOCHROME1", modality="CR")
    ds = pydicom.dcmread(src)
    ds.ImagerPixelSpacing = [0.2, 0.2]
    ds.save_as(src, enforce_file_format=True)
    dst = upscale_file(src, tmp_path / "out.dcm", "bicubic", scale=2)
    b = pydicom.dcmread(dst)
    assert b.PhotometricInterpretation == "MONOCHROME1"
    assert [float(v) for v in b.ImagerPixelSpacing] == pytest.approx([0.1, 0.1])
    out = b.pixel_array
    assert out.dtype == np.uint8 and out.shape == (48, 64)
    # the gradient keeps its direction and range (not inverted)
    assert out[:, 2].mean() < 30 and out[:, -3].mean() > 220


def test_signed_values_and_value_range(tmp_path):
    """Signed 12-bit storage with slope 2: the value range (in HU) is used and the stored range respected."""
    px = np.full((16, 16), -500, np.int16)
    px[:, 8:] = 700
    src = write_ct(tmp_path / "s.dcm", px, slope=2.0, intercept=0.0, bits_stored=12)
    dst = upscale_file(src, tmp_path / "o.dcm", "bicubic", scale=2,
                       domain_options=DomainOptions(value_range=(-2000.0, 2000.0)))
    b = pydicom.dcmread(dst)
    assert "[-2000, 2000]" in b.DerivationDescription
    out = b.pixel_array
    assert out.min() >= -1000 and out.max() <= 1000  # [-2000, 2000] HU / slope 2, inside 12 signed bits
    assert out[:, :12].min() == -500 and out[:, -12:].max() == 700


def test_series_folder_to_a_folder(tmp_path, srkit_cli):
    series = tmp_path / "series"
    series.mkdir()
    uid = pydicom.uid.generate_uid()
    for k in range(3):
        write_ct(series / f"IM{k:04d}", phantom(16, 16), series_uid=uid, instance=k + 1,
                 position=(0.0, 0.0, 2.5 * k))
    (series / "notes.txt").write_text("not DICOM")
    write_ct(series / "NOPIXELS", phantom(16, 16), pixel_data=False, series_uid=uid)  # e.g. a report: skipped
    r = srkit_cli("upscale", series, "-o", tmp_path / "out", "--model", "bicubic", "--scale", "2")
    assert r.returncode == 0, r.stderr
    out = tmp_path / "out" / "series"
    assert sorted(p.name for p in out.iterdir()) == ["IM0000", "IM0001", "IM0002"]
    dss = [pydicom.dcmread(p) for p in sorted(out.iterdir())]
    assert len({d.SeriesInstanceUID for d in dss}) == 1 and dss[0].SeriesInstanceUID != uid
    assert len({d.SOPInstanceUID for d in dss}) == 3
    assert [float(d.ImagePositionPatient[2]) for d in dss] == [0.0, 2.5, 5.0]
    assert all((d.Rows, d.Columns) == (32, 32) for d in dss)
    assert not [p for p in (tmp_path / "out").iterdir() if p.name.startswith(".")]


def test_missing_pixel_data_is_one_line(tmp_path, srkit_cli):
    src = write_ct(tmp_path / "empty.dcm", phantom(8, 8), pixel_data=False)
    with pytest.raises(ImageReadError, match="no pixel data"):
        upscale_file(src, tmp_path / "o.dcm", "bicubic", scale=2)
    r = srkit_cli("upscale", src, "-o", tmp_path / "o.dcm", "--model", "bicubic", "--scale", "2")
    assert r.returncode == 1
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("srkit: error")]
    assert len(err) == 1 and "no pixel data" in err[0]
    assert not (tmp_path / "o.dcm").exists()



def test_compressed_without_a_decoder_is_refused(tmp_path):
    from pydicom.uid import JPEGLSLossless

    try:
        from pydicom.pixels import get_decoder

        if get_decoder(JPEGLSLossless).is_available:
            pytest.skip("a JPEG-LS decoder is installed")
    except ImportError:
        pass
    src = write_ct(tmp_path / "j.dcm", phantom(8, 8).astype(np.uint16), slope=1.0, intercept=0.0)
    encapsulate_as(src, JPEGLSLossless, b"\xff\xd8\xff\xf7\xff\xd9")
    with pytest.raises(ConfigError, match="pylibjpeg") as e:
        upscale_file(src, tmp_path / "o.dcm", "bicubic", scale=2)
    assert "\n" not in str(e.value) and "python-gdcm" in str(e.value) and "JPEG-LS" in str(e.value)
    assert not (tmp_path / "o.dcm").exists()


def test_compressed_with_a_decoder_is_decoded(tmp_path):
    """JPEG Baseline (Pillow decodes it): upscaled and written compressed, losslessly (RLE: JPEG is never
    re-encoded); more syntaxes in test_dicom_pixels.py."""
    import io

    from PIL import Image
    from pydicom.uid import JPEGBaseline8Bit, RLELossless

    try:
        from pydicom.pixels import get_decoder

        if not get_decoder(JPEGBaseline8Bit).is_available:
            pytest.skip("no JPEG decoder")
    except ImportError:
        pytest.skip("pydicom < 3")
    px = np.tile(np.linspace(20, 230, 16).astype(np.uint8), (16, 1))
    src = write_ct(tmp_path / "j.dcm", px, slope=1.0, intercept=0.0)
    buf = io.BytesIO()
    Image.fromarray(px).save(buf, format="JPEG", quality=100)
    encapsulate_as(src, JPEGBaseline8Bit, buf.getvalue())
    b = pydicom.dcmread(upscale_file(src, tmp_path / "o.dcm", "bicubic", scale=2))
    assert b.file_meta.TransferSyntaxUID == RLELossless
    assert b.pixel_array.shape == (32, 32) and abs(float(b.pixel_array.mean()) - float(px.mean())) < 3


def write_nifti(path: Path, data: np.ndarray, affine: np.ndarray, slope=None, inter=None, cls=None) -> Path:
    img = (cls or nib.Nifti1Image)(data, affine)
    img.header.set_qform(affine, code=1)
    img.header.set_sform(affine, code=2)
    if slope is not None:
        img.header.set_slope_inter(slope, inter)
    img.to_filename(path)
    return path


AFFINE = np.array([[-0.9, 0.0, 0.0, 90.0], [0.0, 1.1, 0.0, -120.0], [0.0, 0.0, 3.0, -60.0], [0.0, 0.0, 0.0, 1.0]])


def test_nifti_affine_voxel_sizes_dtype_and_scaling_kept(tmp_path):
    rng = np.random.default_rng(0)
    data = (rng.random((12, 14, 3, 2)) * 1000).astype(np.int16)  # 4-D: every slice of every volume
    src = write_nifti(tmp_path / "v.nii.gz", data, AFFINE, slope=0.5, inter=-100.0)
    dst = upscale_file(src, tmp_path / "o.nii.gz", "bicubic", scale=2)
    a, b = nib.load(src), nib.load(dst)
    assert b.shape == (24, 28, 3, 2)
    assert b.get_data_dtype() == np.int16
    assert (b.dataobj.slope, b.dataobj.inter) == (0.5, -100.0)
    assert b.header.get_zooms()[:3] == pytest.approx((0.45, 0.55, 3.0))
    assert b.header.get_sform(coded=True)[1] == 2 and b.header.get_qform(coded=True)[1] == 1
    # voxel centres: output (i, j) is input ((i + 1/2) / 2 - 1/2, (j + 1/2) / 2 - 1/2) in world coordinates
    for ijk in [(0, 0, 0), (5, 9, 2), (23, 27, 1)]:
        world_out = b.affine @ np.array([*ijk, 1.0])
        src_ijk = [(ijk[0] + 0.5) / 2 - 0.5, (ijk[1] + 0.5) / 2 - 0.5, ijk[2], 1.0]
        np.testing.assert_allclose(world_out, a.affine @ np.array(src_ijk), atol=1e-4)
    fa, fb = a.get_fdata(), b.get_fdata()
    assert fa.min() <= fb.min() and fb.max() <= fa.max()  # the physical range, not a squeeze
    assert "srkit" in b.header.extensions[-1].get_content().decode()


def test_nifti_through_plane(tmp_path):
    data = np.linspace(0, 1, 8 * 8 * 4, dtype=np.float32).reshape(8, 8, 4)
    src = write_nifti(tmp_path / "v.nii", data, AFFINE)
    dst = upscale_file(src, tmp_path / "o.nii", "bicubic", scale=2,
                       domain_options=DomainOptions(through_plane=True))
    b = nib.load(dst)
    assert b.shape == (16, 16, 8) and b.get_data_dtype() == np.float32
    assert b.header.get_zooms() == pytest.approx((0.45, 0.55, 1.5))
    np.testing.assert_allclose(b.affine @ [0, 0, 0, 1], AFFINE @ [-0.25, -0.25, -0.25, 1], atol=1e-4)


def test_nifti_zero_voxel_size_is_one_line(tmp_path, srkit_cli):
    src = write_nifti(tmp_path / "z.nii", np.ones((6, 6, 2), np.int16), np.diag([1.0, 1.0, 1.0, 1.0]))
    raw = bytearray(src.read_bytes())
    raw[80:84] = np.float32(0.0).tobytes()  # pixdim[1] (x voxel size) = 0
    raw[252:254] = np.int16(0).tobytes()  # qform_code 0
    raw[254:256] = np.int16(0).tobytes()  # sform_code 0: the affine comes from pixdim
    src.write_bytes(bytes(raw))
    with pytest.raises(ConfigError, match="zero"):
        upscale_file(src, tmp_path / "o.nii", "bicubic", scale=2)
    r = srkit_cli("upscale", src, "-o", tmp_path / "o.nii", "--model", "bicubic", "--scale", "2")
    assert r.returncode == 1
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("srkit: error")]
    assert len(err) == 1 and "voxel size" in err[0]
    assert not (tmp_path / "o.nii").exists()


def test_cli_output_names(tmp_path, srkit_cli):
    folder = tmp_path / "in"
    folder.mkdir()
    write_nifti(folder / "brain.nii.gz", np.ones((6, 6, 2), np.int16), AFFINE)
    write_ct(folder / "scan.dcm", phantom(8, 8))
    r = srkit_cli("upscale", folder, "-o", tmp_path / "out", "--model", "bicubic", "--scale", "2", "--suffix", "_x2")
    assert r.returncode == 0, r.stderr
    # a folder holding other volumes too is walked file by file; each keeps its kind
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["brain_x2.nii.gz", "scan_x2.dcm"]
    (folder / "brain.nii.gz").unlink()
    r = srkit_cli("upscale", folder, "-o", tmp_path / "out2", "--model", "bicubic", "--scale", "2", "--suffix", "_x2")
    assert r.returncode == 0, r.stderr
    assert [p.name for p in (tmp_path / "out2").iterdir()] == ["in_x2"]  # a folder of DICOM only: a series
    assert [p.name for p in (tmp_path / "out2" / "in_x2").iterdir()] == ["scan.dcm"]


@pytest.mark.parametrize("module, extra", [("pydicom", "medical"), ("nibabel", "medical")])
def test_missing_extra_is_refused_in_one_line(tmp_path, srkit_cli, monkeypatch, module, extra):
    if module == "pydicom":
        src = write_ct(tmp_path / "ct.dcm", phantom(8, 8))
        dst = tmp_path / "o.dcm"
    else:
        src = write_nifti(tmp_path / "v.nii", np.ones((4, 4, 2), np.int16), AFFINE)
        dst = tmp_path / "o.nii"
    monkeypatch.setitem(sys.modules, module, None)  # `import <module>` now raises ImportError
    r = srkit_cli("upscale", src, "-o", dst, "--model", "bicubic", "--scale", "2")
    assert r.returncode == 1
    err = [ln for ln in r.stderr.splitlines() if ln.startswith("srkit: error")]
    assert len(err) == 1 and f"pip install 'srkit[{extra}]'" in err[0]
    assert not dst.exists()
