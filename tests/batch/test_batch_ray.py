"""`srkit batch --engine ray` on a local Ray (2 CPUs): the same outputs, byte for byte and name for name, as
`srkit upscale`; failures listed with exit 1; a rerun skips finished outputs, redoes missing ones and removes a
killed worker's temp files."""

from __future__ import annotations

import logging
import os
import shutil
import time
from pathlib import Path

import pytest

ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'srkit[ray]')")
pytest.importorskip("ray.data", reason="Ray Data is not installed (pip install 'srkit[ray]')")

from helpers import write_tiny_images  # noqa: E402

# Ray Data reads its own deprecated settings when it pickles its context: not ours to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module")
def local_ray():
    """A local Ray with 2 CPUs for this module (the batch command reuses a Ray this process started)."""
    started = not ray.is_initialized()
    if started:
        ray.init(num_cpus=2, include_dashboard=False, logging_level=logging.WARNING)
    yield
    if started:
        ray.shutdown()


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_ray_batch_matches_upscale_and_runs_exactly_once(srkit_cli, local_ray, tmp_path):
    src = write_tiny_images(tmp_path / "in", n=4, side=40) / "A"
    (src / "sub").mkdir()
    shutil.copy(src / "img0.png", src / "sub" / "deep.png")
    (src / "broken.png").write_text("this is not an image")
    ray_out, local_out = tmp_path / "ray_out", tmp_path / "local_out"

    r = srkit_cli("batch", src, "-o", ray_out, "--engine", "ray", "--model", "bicubic", "--num-workers", "2",
                  "--suffix", "_x4")
    assert r.returncode == 1, r.stderr
    assert "5 written, 0 skipped, 1 failed" in r.stdout
    failed = [ln for ln in r.stderr.splitlines() if ln.startswith("srkit: error:")]
    assert len(failed) == 1 and "broken.png" in failed[0] and "unrecognised format" in failed[0]

    r = srkit_cli("upscale", src, "-o", local_out, "--model", "bicubic", "--suffix", "_x4")
    assert r.returncode == 1
    ray_files, local_files = _tree(ray_out), _tree(local_out)
    assert sorted(ray_files) == sorted(local_files) == ["img0_x4.png", "img1_x4.png", "img2_x4.png", "img3_x4.png",
                                                        "sub/deep_x4.png"]
    assert ray_files == local_files  # byte for byte

    # a killed run: one output missing, its worker's temp file left behind; the rest must not be touched
    (ray_out / "img2_x4.png").unlink()
    stale = ray_out / ".img2_x4.png.0123456789ab.tmp"
    stale.write_bytes(b"half a PNG")
    before = {p: p.stat().st_mtime_ns for p in ray_out.rglob("*.png")}
    time.sleep(0.05)
    r = srkit_cli("batch", src, "-o", ray_out, "--engine", "ray", "--model", "bicubic", "--suffix", "_x4")
    assert r.returncode == 1 and "1 written, 4 skipped, 1 failed" in r.stdout, r.stdout + r.stderr
    assert not stale.exists()
    assert _tree(ray_out) == local_files
    assert all(p.stat().st_mtime_ns == t for p, t in before.items())
    assert not [p for p in ray_out.rglob(".*") if p.is_file()]


def test_batch_refuses_a_bad_model_before_starting_ray(srkit_cli, tmp_path):
    src = write_tiny_images(tmp_path / "in", n=1, side=16)
    r = srkit_cli("batch", src, "-o", tmp_path / "out", "--engine", "ray", "--model", "no-such-model")
    assert r.returncode == 1 and "unknown model 'no-such-model'" in r.stderr
    assert not (tmp_path / "out").exists() or not os.listdir(tmp_path / "out")
