"""Synthetic clips from still images (`srkit.data.clips`): reproducible per seed, frames that differ, shapes, the
centre frame an exact crop whose LR is its degradation, the other frames the image under the drawn motion."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from srkit.data.clips import ClipCfg, ClipFolder, ValidationClips, benchmark_clip, clip_motion, synthetic_clip, \
    warp_frames
from srkit.degrade.pipeline import Degradation
from srkit.errors import ConfigError, ShapeError
from srkit.ops import imresize_matlab

from helpers import write_tiny_images


def _image(h: int = 120, w: int = 160, seed: int = 0) -> np.ndarray:
    """A textured uint8 RGB image (smooth noise, so resampling is well defined)."""
    rng = np.random.default_rng(seed)
    small = (rng.random((h // 4, w // 4, 3)) * 255).astype(np.float32)
    return np.clip(cv2.resize(small, (w, h), interpolation=cv2.INTER_CUBIC), 0, 255).round().astype(np.uint8)


def _clip(seed: int, **kw):
    kw.setdefault("size", (48, 64))
    return synthetic_clip(_image(), scale=4, cfg=ClipCfg(), generator=torch.Generator().manual_seed(seed),
                          degradation=Degradation("video"), **kw)


def test_shapes_ranges_and_reproducible_per_seed():
    lr, hr = _clip(3)
    assert lr.shape == (7, 3, 12, 16) and hr.shape == (7, 3, 48, 64)
    assert lr.dtype == hr.dtype == torch.float32
    assert 0 <= float(lr.min()) and float(lr.max()) <= 1 and 0 <= float(hr.min()) and float(hr.max()) <= 1
    lr2, hr2 = _clip(3)
    assert torch.equal(lr, lr2) and torch.equal(hr, hr2)
    lr3, hr3 = _clip(4)
    assert not torch.equal(lr, lr3)


def test_frames_differ_and_the_centre_is_the_reference():
    lr, hr = _clip(5, size=None)
    c = hr.shape[0] // 2
    for t in range(hr.shape[0]):
        if t != c:
            assert float((hr[t] - hr[c]).abs().mean()) > 1e-3, t  # moved
            assert float((lr[t] - lr[c]).abs().mean()) > 1e-3, t
    # size=None: the largest centred window; the centre frame is the exact crop of the image (no resampling)
    image = _image()
    h, w = hr.shape[-2:]
    top, left = (image.shape[0] - h) // 2, (image.shape[1] - w) // 2
    crop = torch.from_numpy(image[top : top + h, left : left + w]).permute(2, 0, 1).float() / 255
    assert torch.equal(hr[c], crop)


def test_centre_lr_is_the_degradation_of_the_centre_hr():
    image = _image()
    lr, hr = synthetic_clip(image, scale=4, cfg=ClipCfg(frames=5), generator=torch.Generator().manual_seed(1),
                            size=None)  # default degradation: MATLAB bicubic
    c = 2
    want = (imresize_matlab(hr[c : c + 1], 0.25).clamp(0, 1) * 255).round() / 255
    torch.testing.assert_close(lr[c : c + 1], want, atol=1.5 / 255, rtol=0)


def test_motion_is_bounded_and_the_centre_frame_is_the_identity():
    cfg = ClipCfg(frames=9, speed=3.0, accel=0.5, shift=1.0, rotation=2.0, zoom=0.03)
    m = clip_motion(cfg, torch.Generator().manual_seed(0))
    assert m.shape == (9, 2, 3) and m.dtype == torch.float64
    assert torch.equal(m[4], torch.tensor([[1.0, 0, 0], [0, 1.0, 0]], dtype=torch.float64))
    lin = m[:, :, :2]
    zoom = torch.linalg.det(lin).sqrt()
    angle = torch.atan2(lin[:, 1, 0], lin[:, 0, 0])
    assert float((zoom - 1).abs().max()) <= 0.03 + 1e-12
    assert float(angle.abs().max()) <= math.radians(2.0) + 1e-12
    tau = torch.arange(9.0, dtype=torch.float64) - 4
    bound = 3.0 * tau.abs() + 0.25 * tau**2 + 1.0
    assert bool((m[:, :, 2].abs() <= bound[:, None] + 1e-9).all())
    # the same generator state gives the same motion; the draws do not depend on the ranges
    g1, g2 = torch.Generator().manual_seed(7), torch.Generator().manual_seed(7)
    clip_motion(ClipCfg(), g1)
    clip_motion(ClipCfg(speed=0, rotation=0), g2)
    assert torch.equal(torch.rand(3, generator=g1), torch.rand(3, generator=g2))


def test_each_frame_is_the_image_under_its_motion():
    """Warping frame t back by its motion gives the centre frame (the image) in the interior."""
    image = _image(160, 200)
    cfg = ClipCfg(frames=5)
    motion = clip_motion(cfg, torch.Generator().manual_seed(2))
    size = (96, 128)
    centre = ((image.shape[0] - 1) / 2, (image.shape[1] - 1) / 2)
    frames = warp_frames(image, motion, centre, size)
    ref = frames[2].astype(np.float64)
    oy, ox = (size[0] - 1) / 2, (size[1] - 1) / 2
    for t in (0, 1, 3, 4):
        lin, d = motion[t, :, :2].numpy(), motion[t, :, 2].numpy()
        # centre-frame pixel p shows the source at p; frame t shows the source at lin q + d: q = lin^-1 (p - d)
        inv = np.linalg.inv(lin)
        off = np.array([ox, oy]) - inv @ (np.array([ox, oy]) + d)
        back = cv2.warpAffine(frames[t], np.concatenate([inv, off[:, None]], 1), (size[1], size[0]),
                              flags=cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP).astype(np.float64)
        err = (back - ref)[16:-16, 16:-16]
        psnr = 10 * math.log10(255**2 / float((err**2).mean()))
        assert psnr > 35, (t, psnr)


def test_bad_inputs_refused():
    with pytest.raises(ShapeError):
        synthetic_clip(_image()[..., 0], scale=4, cfg=ClipCfg(), generator=torch.Generator())
    with pytest.raises(ShapeError, match="multiples"):
        _clip(0, size=(50, 64))


def test_benchmark_clip_is_fixed_by_its_seed():
    image = _image()
    a = benchmark_clip(image, scale=4, seed=11, degradation=Degradation("video"))
    b = benchmark_clip(image, scale=4, seed=11, degradation=Degradation("video"))
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert a[1].shape[-1] % 4 == 0 and a[1].shape[-2] % 4 == 0


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_tiny_images(tmp_path_factory.mktemp("clips"), n=3, side=72) / "A"


def test_clip_folder_samples_are_a_function_of_seed_epoch_index(folder):
    files = sorted(folder.iterdir())
    deg = Degradation({"preset": "video", "margin": 2})
    ds = ClipFolder(files, scale=4, patch_size=8, cfg=ClipCfg(frames=5), degradation=deg, samples_per_epoch=6,
                    seed=1)
    lr, hr = ds[4]
    assert lr.shape == (5, 3, 8, 8) and hr.shape == (5, 3, 32, 32)
    again = ClipFolder(files, scale=4, patch_size=8, cfg=ClipCfg(frames=5), degradation=deg, samples_per_epoch=6,
                       seed=1)
    assert all(torch.equal(x, y) for x, y in zip(ds[4], again[4]))
    again.set_epoch(1)
    assert not torch.equal(again[4][0], lr)
    with pytest.raises(ConfigError, match="on"):
        ClipFolder(files, scale=4, patch_size=8, cfg=ClipCfg(), degradation=Degradation({"preset": "video",
                                                                                          "on": "batch"}))
    val = ValidationClips(files[:2], scale=4, cfg=ClipCfg(frames=3), degradation=deg, seed=0)
    lr, hr, name = val[0]
    assert lr.shape[:2] == (3, 3) and hr.shape[-1] == 4 * lr.shape[-1] and name == files[0].stem
