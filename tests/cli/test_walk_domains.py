"""Folder and glob inputs of `srkit upscale` take every file srkit routes by content (video, DICOM with or without
a suffix, NIfTI, GeoTIFF) beside the images, named as the same file given alone would be; a DICOM series folder
inside is one input; text, JSON, a DICOMDIR index, hidden files and audio are skipped as before."""

from __future__ import annotations

import os
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from srkit.cli.jobs import find_images, plan_jobs
from srkit.domains import sniff


def make_clip(path: Path, n: int = 4, w: int = 32, h: int = 24) -> Path:
    av = pytest.importorskip("av")
    with av.open(str(path), "w") as out:
        vs = out.add_stream("libx264", rate=10)
        vs.width, vs.height, vs.pix_fmt = w, h, "yuv420p"
        vs.codec_context.time_base = Fraction(1, 10)
        for i in range(n):
            img = np.full((h, w, 3), 40 * i, np.uint8)
            img[:, : w // 2] = 200
            out.mux(vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")))
        out.mux(vs.encode())
    return path


def _text_like_ts(path: Path) -> Path:
    """Text with "G" at bytes 0 and 188 (the old one-packet MPEG-TS test took it for a video), not at 376."""
    body = bytearray(b"Good morning. " * 40)
    body[188] = ord("G")
    body[376] = ord("x")
    path.write_bytes(bytes(body))
    return path


@pytest.fixture()
def mixed(tmp_path) -> Path:
    """A folder of everything: image, video, DICOM with and without suffix, NIfTI, a DICOM series, and files
    that are not inputs."""
    pydicom = pytest.importorskip("pydicom")
    from domains.dicom_files import write_ct

    folder = tmp_path / "in"
    folder.mkdir()
    Image.fromarray(np.full((12, 16, 3), 90, np.uint8)).save(folder / "photo.png")
    make_clip(folder / "clip.mp4")
    px = np.full((8, 8), 1000, np.int16)
    write_ct(folder / "IM0001", px)  # DICOM without a suffix, as scanners write them
    write_ct(folder / "DICOMDIR", px, pixel_data=False)  # a media index: not an image
    series = folder / "series"
    series.mkdir()
    uid = pydicom.uid.generate_uid()
    for k in range(2):
        write_ct(series / f"IM{k:04d}", px, series_uid=uid, instance=k + 1, position=(0.0, 0.0, 2.5 * k))
    (folder / "notes.txt").write_text("not an input\n")
    (folder / "record.json").write_text('{"model": "tiny-x4"}\n')
    _text_like_ts(folder / "log")
    make_clip(folder / ".hidden.mp4")
    return folder


def test_folder_walk_takes_every_routable_file(mixed, tmp_path):
    out = tmp_path / "out"
    jobs, failures, notes = plan_jobs([str(mixed)], str(out), None, "_x2", domains=True)
    assert not failures and not notes
    got = {j.src.name: j.dst.relative_to(out).as_posix() for j in jobs}
    assert got == {"photo.png": "photo_x2.png", "clip.mp4": "clip_x2.mp4", "IM0001": "IM0001_x2.dcm",
                   "series": "series_x2"}  # the series folder: one input, written to one folder
    # each named exactly as the same file given alone
    for j in jobs:
        alone, _, _ = plan_jobs([str(j.src)], str(tmp_path / "alone") + os.sep, None, "_x2", domains=True)
        assert [a.dst.name for a in alone] == [j.dst.name]
    # image-only commands (srkit iqa, srkit degrade) take what they took before: no video, no suffix-less DICOM
    images, _, _ = find_images([str(mixed)])
    assert sorted(f.name for f, _ in images) == ["photo.png", "series"]


def test_nifti_and_geotiff_in_a_folder(tmp_path):
    nib = pytest.importorskip("nibabel")
    rasterio = pytest.importorskip("rasterio")
    from rasterio.transform import Affine

    folder = tmp_path / "in"
    folder.mkdir()
    nib.save(nib.Nifti1Image(np.ones((6, 6, 2), np.int16), np.eye(4)), folder / "brain.nii.gz")
    hdr = nib.Nifti1Pair(np.ones((6, 6, 2), np.int16), np.eye(4))
    nib.save(hdr, folder / "pair.img")  # pair.hdr (routed by content) + pair.img (its data: not an input)
    with rasterio.open(folder / "scene.TIFF", "w", driver="GTiff", width=8, height=8, count=1, dtype="uint16",
                       crs="EPSG:32633", transform=Affine(10, 0, 500000, 0, -10, 4000000)) as ds:
        ds.write(np.ones((1, 8, 8), np.uint16))
    jobs, failures, _ = plan_jobs([str(folder)], str(tmp_path / "out"), None, "_x2", domains=True)
    assert not failures
    assert sorted(j.dst.name for j in jobs) == ["brain_x2.nii.gz", "pair_x2.hdr", "scene_x2.tif"]


def test_glob_takes_videos_and_skips_text(mixed, tmp_path, monkeypatch):
    monkeypatch.chdir(mixed.parent)
    jobs, failures, _ = plan_jobs(["in/*"], str(tmp_path / "out"), None, "", domains=True)
    assert not failures
    assert sorted(j.dst.relative_to(tmp_path / "out").as_posix() for j in jobs) == [
        "IM0001.dcm", "clip.mp4", "photo.png", "series"]
    jobs, failures, _ = plan_jobs(["in/*.txt"], str(tmp_path / "out"), None, "", domains=True)
    assert not jobs and failures == [("in/*.txt", "no image matches this pattern")]  # reported as before


def test_cli_upscales_a_mixed_folder(mixed, tmp_path, srkit_cli):
    pytest.importorskip("av")
    out = tmp_path / "out"
    r = srkit_cli("upscale", mixed, "-o", out, "--model", "bicubic", "--scale", "2")
    assert r.returncode == 0, r.stderr
    assert not [ln for ln in r.stderr.splitlines() if ln.startswith("srkit: error")]
    assert "4 written, 0 skipped, 0 failed" in r.stdout
    assert sorted(p.name for p in out.iterdir()) == ["IM0001.dcm", "clip.mp4", "photo.png", "series"]
    assert sorted(p.name for p in (out / "series").iterdir()) == ["IM0000", "IM0001"]
    import av
    import pydicom

    with av.open(str(out / "clip.mp4")) as c:
        frames = list(c.decode(video=0))
    assert len(frames) == 4 and (frames[0].width, frames[0].height) == (64, 48)
    assert (pydicom.dcmread(out / "IM0001.dcm").Rows, pydicom.dcmread(out / "series" / "IM0000").Rows) == (16, 16)
    r = srkit_cli("upscale", mixed, "-o", out, "--model", "bicubic", "--scale", "2")  # a rerun: nothing to do
    assert r.returncode == 0 and "0 written, 4 skipped" in r.stdout, r.stdout + r.stderr


def test_sniff_keeps_text_and_audio_out_of_video(tmp_path):
    assert not sniff.is_video(_text_like_ts(tmp_path / "log.txt"))
    m4a = tmp_path / "song.m4a"
    m4a.write_bytes(b"\x00\x00\x00\x20ftypM4A \x00\x00\x02\x00M4A isomiso2" + bytes(64))
    assert not sniff.is_video(m4a)
    opus = tmp_path / "voice.ogg"
    opus.write_bytes(b"OggS\x00\x02" + bytes(20) + b"\x01\x13" + b"OpusHead\x01\x01" + bytes(32))
    assert not sniff.is_video(opus)
    av = pytest.importorskip("av")
    ts = tmp_path / "clip.ts"
    with av.open(str(ts), "w", format="mpegts") as out:
        vs = out.add_stream("mpeg2video", rate=10)
        vs.width, vs.height, vs.pix_fmt = 32, 24, "yuv420p"
        for i in range(3):
            out.mux(vs.encode(av.VideoFrame.from_ndarray(np.full((24, 32, 3), 60 * i, np.uint8), format="rgb24")))
        out.mux(vs.encode())
    assert sniff.is_video(ts)
    m2ts = tmp_path / "clip.m2ts"  # 192-byte packets: a 4-byte time stamp before each TS packet
    data = ts.read_bytes()
    m2ts.write_bytes(b"".join(b"\x00\x00\x00\x00" + data[i:i + 188] for i in range(0, len(data), 188)))
    assert sniff.is_video(m2ts)
