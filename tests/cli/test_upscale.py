"""`srkit upscale`: metadata survives, folders keep their layout, reruns resume, bad files fail alone."""

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srkit.cli.jobs import plan_jobs, remove_stale_temps
from srkit.io import ImageMeta, read_image, write_image


@pytest.fixture()
def run(srkit_cli):
    """`srkit upscale ARGS` in this process (exit codes, messages and files need no subprocess)."""
    return lambda *args: srkit_cli("upscale", *args)


def _rand(shape, dtype=np.uint8, seed=0):
    r = np.random.default_rng(seed).random(shape)
    return (r * np.iinfo(dtype).max).round().astype(dtype)


def _tiny_model(path, num_block=1, num_feat=8):
    from srkit.archs import build
    from srkit.models import save_model

    with torch.random.fork_rng():
        torch.manual_seed(0)
        return save_model(build("edsr-baseline", scale=2, num_block=num_block, num_feat=num_feat), path)


def _files(root: Path) -> list[str]:
    return sorted(str(p.relative_to(root)) for p in root.rglob("*") if p.is_file())


def _mtimes(root: Path) -> dict[str, int]:
    return {str(p.relative_to(root)): p.stat().st_mtime_ns for p in root.rglob("*") if p.is_file()}


def _error_lines(stderr: str) -> list[str]:
    return [ln for ln in stderr.splitlines() if ln.startswith("srkit: error:")]


@pytest.fixture(scope="module")
def icc() -> bytes:
    from PIL import ImageCms

    return ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_cli_defaults_match_api():
    from srkit.cli import upscale as cli
    from srkit.infer import api

    assert cli.DEFAULT_MODEL == api.DEFAULT_MODEL


def test_folder_metadata_layout_and_resume(run, tmp_path, icc):
    src, out = tmp_path / "in", tmp_path / "out"
    (src / "sub" / "deeper").mkdir(parents=True)
    ex = Image.Exif()
    ex[0x010F] = "srkit-test-camera"
    exif = ex.tobytes()
    h, w = 10, 14
    write_image(src / "photo.png", _rand((h, w, 3)), ImageMeta(8, "RGB", icc_profile=icc, exif=exif, dpi=(72, 72)))
    write_image(src / "sub" / "photo.jpg", _rand((h, w, 3), seed=1),
                ImageMeta(8, "RGB", icc_profile=icc, exif=exif, dpi=(300, 300)))
    write_image(src / "sub" / "deep16.png", _rand((h, w, 3), np.uint16, seed=2))
    write_image(src / "sub" / "deeper" / "gray.png", _rand((h, w), seed=3))
    write_image(src / "alpha.png", _rand((h, w, 4), seed=4))
    (src / "README.txt").write_text("not an image, skipped silently")
    r = run(src, "-o", out, "--model", "bicubic", "--scale", "2")
    assert r.returncode == 0, r.stderr
    assert _error_lines(r.stderr) == [] and "5 written, 0 skipped, 0 failed" in r.stdout
    assert _files(out) == ["alpha.png", "photo.png", "sub/deep16.png", "sub/deeper/gray.png", "sub/photo.jpg"]
    for name, dpi in (("photo.png", 144), ("sub/photo.jpg", 600)):
        a, meta = read_image(out / name)
        assert a.shape == (2 * h, 2 * w, 3)
        assert meta.icc_profile == icc and b"srkit-test-camera" in meta.exif
        assert np.allclose(meta.dpi, (dpi, dpi), atol=0.6)
    a, meta = read_image(out / "sub" / "deep16.png")
    assert a.dtype == np.uint16 and meta.bit_depth == 16 and a.shape == (2 * h, 2 * w, 3)
    a, meta = read_image(out / "sub" / "deeper" / "gray.png")
    assert meta.layout == "L" and a.shape == (2 * h, 2 * w)
    a, meta = read_image(out / "alpha.png")
    assert meta.layout == "RGBA" and a.shape == (2 * h, 2 * w, 4)

    # Rerun: everything exists, nothing is written.
    before = _mtimes(out)
    r = run(src, "-o", out, "--model", "bicubic", "--scale", "2")
    assert r.returncode == 0 and "0 written, 5 skipped" in r.stdout
    assert _mtimes(out) == before
    # Delete one output: only that one is written again.
    (out / "sub" / "deep16.png").unlink()
    r = run(src, "-o", out, "--model", "bicubic", "--scale", "2", "--skip-existing")
    assert r.returncode == 0 and "1 written, 4 skipped" in r.stdout
    after = _mtimes(out)
    assert after.pop("sub/deep16.png") and after == {k: v for k, v in before.items() if k != "sub/deep16.png"}
    # --overwrite replaces them all; --format/--suffix rename; a glob keeps the layout under its fixed part.
    r = run(src / "**" / "*.png", "-o", tmp_path / "g", "--model", "bicubic", "--scale", "2", "--format", "tif",
            "--suffix", "_x2")
    assert r.returncode == 0, r.stderr
    assert _files(tmp_path / "g") == ["alpha_x2.tif", "photo_x2.tif", "sub/deep16_x2.tif",
                                      "sub/deeper/gray_x2.tif"]
    r = run(src, "-o", out, "--model", "bicubic", "--scale", "2", "--overwrite")
    assert r.returncode == 0 and "5 written, 0 skipped" in r.stdout


def test_single_file_and_refusals(run, tmp_path):
    src = tmp_path / "a.png"
    write_image(src, _rand((8, 9, 3)))
    before = src.read_bytes()
    r = run(src, "-o", tmp_path / "a_x3.png", "--model", "bicubic", "--scale", "3")
    assert r.returncode == 0, r.stderr
    assert read_image(tmp_path / "a_x3.png")[0].shape == (24, 27, 3)
    # Output == input (also spelled differently): refused, one error line, input untouched.
    for dst in (src, tmp_path / "sub" / ".." / "a.png"):
        r = run(src, "-o", dst, "--model", "bicubic", "--scale", "2", "--overwrite")
        assert r.returncode == 1
        errors = _error_lines(r.stderr)
        assert len(errors) == 1 and "a.png" in errors[0] and "input" in errors[0] and "Traceback" not in r.stderr
        assert src.read_bytes() == before
    # Folder output == input folder without a suffix: every output would be its input.
    r = run(tmp_path, "-o", tmp_path, "--model", "bicubic", "--overwrite")
    assert r.returncode == 1 and src.read_bytes() == before


def test_scale_mismatch_and_bad_arguments(run, tmp_path):
    model = _tiny_model(tmp_path / "x2.safetensors")
    src = tmp_path / "a.png"
    write_image(src, _rand((8, 9, 3)))
    r = run(src, "-o", tmp_path / "o.png", "--model", model, "--scale", "3")
    assert r.returncode in (1, 2) and len(r.stderr.strip().splitlines()) == 1 and "x2" in r.stderr
    assert not (tmp_path / "o.png").exists()
    for bad in (["--tile", "3"], ["--dtype", "fp64"], ["--format", "gif"], ["--quality", "0"]):
        r = run(src, "-o", tmp_path / "o.png", "--model", "bicubic", *bad)
        assert r.returncode == 2 and len(r.stderr.strip().splitlines()) == 1, (bad, r.stderr)


def test_one_corrupt_file_fails_alone(run, tmp_path):
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    for i in range(3):
        write_image(src / f"good{i}.png", _rand((8, 8, 3), seed=i))
    (src / "bad.png").write_text("this is text, not a PNG")
    r = run(src, "-o", out, "--model", "bicubic", "--scale", "2")
    assert r.returncode == 1
    errors = _error_lines(r.stderr)
    assert len(errors) == 1 and "bad.png" in errors[0] and "Traceback" not in r.stderr
    assert "3 written, 0 skipped, 1 failed" in r.stdout
    assert sorted(os.listdir(out)) == ["good0.png", "good1.png", "good2.png"]  # no partial or temp file


def test_resume_after_kill(run, tmp_path):
    model = _tiny_model(tmp_path / "slow.safetensors", num_block=2, num_feat=16)
    src, out = tmp_path / "in", tmp_path / "out"
    src.mkdir()
    names = [f"img{i}.png" for i in range(6)]
    for i, n in enumerate(names):
        write_image(src / n, _rand((96, 96, 3), seed=i))
    cmd = [sys.executable, "-m", "srkit", "upscale", str(src), "-o", str(out), "--model", str(model),
           "--tile", "none", "--dtype", "fp32"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and proc.poll() is None:
            if out.is_dir() and any(n in names for n in os.listdir(out)):
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    done = [n for n in names if (out / n).exists()]
    assert done  # the first output appeared before the kill
    for n in done:  # what exists under a final name is complete
        assert read_image(out / n)[0].shape == (192, 192, 3)
    missing = [n for n in names if n not in done]
    if missing:  # a temp file a kill during the write would leave behind
        (out / f".{missing[0]}.0123456789ab.tmp").write_bytes(b"partial")
    r = run(*cmd[4:])  # the rerun that resumes needs no process of its own
    assert r.returncode == 0, r.stderr
    assert f"{len(missing)} written, {len(done)} skipped, 0 failed" in r.stdout
    assert sorted(os.listdir(out)) == names  # no .tmp left
    for n in names:
        assert read_image(out / n)[0].shape == (192, 192, 3)


def test_backend_option(run, tmp_path):
    src = tmp_path / "a.png"
    write_image(src, _rand((12, 10, 3)))
    pytest.importorskip("onnxruntime")
    model = _tiny_model(tmp_path / "m.safetensors")
    r = run(src, "-o", tmp_path / "ort.png", "--model", model, "--backend", "onnxruntime", "--tile", "none")
    assert r.returncode == 0, r.stderr
    from srkit.infer.files import upscale_file

    upscale_file(src, tmp_path / "pt.png", model, dtype="fp32")
    a, b = read_image(tmp_path / "ort.png")[0], read_image(tmp_path / "pt.png")[0]
    assert a.shape == (24, 20, 3) and np.abs(a.astype(int) - b).max() <= 1


# --- planning, in process (no model) -----------------------------------------------------------


def test_plan_jobs_layout_and_collisions(tmp_path):
    (tmp_path / "a" / "s").mkdir(parents=True)
    (tmp_path / "b").mkdir()
    for p in ("a/x.png", "a/s/y.JPG", "a/.hidden.png", "a/notes.txt", "b/x.png", "b/z.webp"):
        (tmp_path / p).write_bytes(b"")
    out = tmp_path / "a" / "out"
    (out).mkdir()
    (out / "old.png").write_bytes(b"")  # an earlier run's output inside the input folder: not an input
    jobs, failures, notes = plan_jobs([str(tmp_path / "a"), str(tmp_path / "b"), str(tmp_path / "nope.png")],
                                      str(out), "png", "_x4")
    got = {str(j.src.relative_to(tmp_path)): str(j.dst.relative_to(out)) for j in jobs}
    assert got == {"a/x.png": "x_x4.png", "a/s/y.JPG": "s/y_x4.png", "b/z.webp": "z_x4.png"}
    assert [(Path(f).name, "also the output" in r) for f, r in failures] == [("nope.png", False), ("x.png", True)]
    # A single existing file with a file -o is file mode; with a folder -o it goes inside.
    jobs, _, _ = plan_jobs([str(tmp_path / "b" / "x.png")], str(tmp_path / "one.png"), None, "")
    assert [j.dst for j in jobs] == [tmp_path / "one.png"]
    for folder in (str(out) + os.sep, str(tmp_path / "new")):  # trailing separator, or no suffix
        jobs, _, _ = plan_jobs([str(tmp_path / "b" / "x.png")], folder, None, "")
        assert [j.dst for j in jobs] == [Path(folder) / "x.png"]


def test_remove_stale_temps(tmp_path):
    dst = tmp_path / "a.png"
    keep = [tmp_path / ".b.png.0123456789ab.tmp", tmp_path / ".a.png.xyz.tmp", tmp_path / "a.png.tmp"]
    stale = tmp_path / ".a.png.0123456789ab.tmp"
    for p in [*keep, stale]:
        p.write_bytes(b"x")
    assert remove_stale_temps(dst) == 1
    assert not stale.exists() and all(p.exists() for p in keep)


def test_stream_and_no_stream(run, tmp_path, icc):
    pytest.importorskip("pyvips")
    src = tmp_path / "in.png"
    rng = np.random.default_rng(5)
    arr = np.asarray(Image.fromarray(_rand((12, 10, 3), seed=5)).resize((90, 150), Image.BICUBIC))
    arr = np.clip(arr + rng.integers(-3, 4, arr.shape), 0, 255).astype(np.uint8)
    write_image(src, arr, ImageMeta(8, "RGB", icc_profile=icc, dpi=(100.0, 100.0)))
    outs = {}
    for flag in ("--stream", "--no-stream"):
        dst = tmp_path / f"out{flag}.png"
        r = run(src, "-o", dst, "--model", "tiny-x4", flag)
        assert r.returncode == 0, r.stderr
        outs[flag] = read_image(dst)
    (a, ma), (b, mb) = outs.values()
    assert a.shape == (600, 360, 3) and np.array_equal(a, b)
    assert ma.icc_profile == mb.icc_profile == icc and ma.dpi == mb.dpi
    # WebP cannot be streamed: one error line naming the way out.
    r = run(src, "-o", tmp_path / "out.webp", "--model", "tiny-x4", "--stream")
    errors = _error_lines(r.stderr)
    assert r.returncode == 1 and len(errors) == 1 and "TIFF or PNG" in errors[0] and "Traceback" not in r.stderr
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.png", "out--no-stream.png", "out--stream.png"]
