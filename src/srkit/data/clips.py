"""Synthetic clips made from still images: the training and test data of multi-frame super-resolution.

A still HR image becomes a short clip as a hand-held camera would film it (issue 14, deliverable 4): every frame is
the image seen through a small random affine motion (sub-pixel translation, a rotation of a few degrees, a zoom of
a few percent) around a smooth random trajectory, resampled with 8x8 Lanczos (OpenCV's ``INTER_LANCZOS4``) and
quantised to 8 bits, then degraded on its own (`srkit.degrade`: each frame draws its own blur, resize, noise and
JPEG from the pipeline), so the frames carry different, aliased samples of one scene - the information a
multi-frame model can gather and a single-frame model cannot.

The centre frame (index ``frames // 2``) is the reference: its motion is the identity, so its HR frame is exactly
the crop of the still image (no resampling) and its LR frame is the degradation of that crop; the other frames'
motions are relative to it.

* `clip_motion(cfg, generator) -> (T, 2, 3)` - the frames' affine motions (pure function of the generator).
* `warp_frames(image, motion, centre, size) -> (T, H, W, C)` - the HR frames a motion makes of an image.
* `synthetic_clip(hr, ...) -> (lr (T, C, h, w), hr (T, C, H, W))` - motion, warp, degradation, crop.
* `ClipFolder` (training samples) and `ValidationClips` / `benchmark_clip` (whole-image clips, fixed per seed).

Every random number comes from the explicit `torch.Generator` given (motion first, then the window position, then
each frame's degradation parameters in frame order), so a seed gives the same clip on any machine.

Reference: K. C. K. Chan, X. Wang, K. Yu, C. Dong, C. C. Loy, "BasicVSR: The Search for Essential Components in
Video Super-Resolution and Beyond", CVPR 2021 (the task); S. Farsiu, M. D. Robinson, M. Elad, P. Milanfar, "Fast
and Robust Multiframe Super Resolution", IEEE TIP 2004 (synthetic shifted, blurred, decimated, noisy frames of one
still image as multi-frame SR test data).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import torch
from pydantic import BaseModel, ConfigDict, Field
from torch.utils.data import Dataset

from srkit.errors import ConfigError, DatasetError, ShapeError

if TYPE_CHECKING:
    from srkit.degrade.pipeline import Degradation

__all__ = [
    "ClipCfg",
    "ClipFolder",
    "ValidationClips",
    "benchmark_clip",
    "clip_motion",
    "motion_reach",
    "synthetic_clip",
    "warp_frames",
]

# Lanczos-4 reads 4 source pixels on each side of a sample position.
_TAPS = 4


class ClipCfg(BaseModel):
    """How a clip is made from a still image (``data.clips`` of a training config; the benchmark's defaults).

    Attributes:
        frames: frames per clip (T); the centre frame ``T // 2`` is the reference.
        speed: the trajectory's velocity, uniform in [-speed, speed] HR px per frame on each axis.
        accel: the trajectory's acceleration, uniform in [-accel, accel] HR px per frame^2 on each axis.
        shift: each frame's translation off the trajectory, uniform in [-shift, shift] HR px on each axis.
        rotation: each frame's rotation about the window centre, uniform in [-rotation, rotation] degrees.
        zoom: each frame's zoom factor, uniform in [1 - zoom, 1 + zoom].
        reverse: training only: play half the clips backwards (augmentation; the centre stays the centre).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    frames: int = Field(default=7, ge=1, le=64)
    speed: float = Field(default=4.0, ge=0.0, le=64.0)
    accel: float = Field(default=0.5, ge=0.0, le=16.0)
    shift: float = Field(default=2.0, ge=0.0, le=32.0)
    rotation: float = Field(default=2.0, ge=0.0, le=30.0)
    zoom: float = Field(default=0.03, ge=0.0, le=0.5)
    reverse: bool = True


# ----------------------------------------------------------------------------------------------- motion


def clip_motion(cfg: ClipCfg, generator: torch.Generator) -> torch.Tensor:
    """The frames' affine motions: (T, 2, 3) float64 matrices ``[A | d]``.

    Frame t shows, at its pixel p (relative to the window centre, in HR px), the source image at
    ``A_t @ p + d_t`` (relative to the same centre): ``A_t = z_t R(theta_t)``, ``d_t = v tau + a tau^2 / 2 + j_t``
    with ``tau = t - T // 2``, one velocity v and acceleration a per clip (the smooth trajectory) and per-frame
    jitter j_t, rotation theta_t and zoom z_t (`ClipCfg`). The centre frame's matrix is the identity.

    Draws exactly ``4 + 4 T`` uniform numbers from `generator`, whatever the values of `cfg`.
    """
    t = cfg.frames

    def u(*shape: int) -> torch.Tensor:
        return torch.rand(shape, generator=generator, dtype=torch.float64) * 2.0 - 1.0

    v, a = u(2) * cfg.speed, u(2) * cfg.accel
    jitter = u(t, 2) * cfg.shift
    theta = u(t) * math.radians(cfg.rotation)
    zoom = 1.0 + u(t) * cfg.zoom
    c = t // 2
    tau = (torch.arange(t, dtype=torch.float64) - c)[:, None]
    d = v * tau + 0.5 * a * tau**2 + jitter
    d[c], theta[c], zoom[c] = 0.0, 0.0, 1.0
    cos, sin = torch.cos(theta) * zoom, torch.sin(theta) * zoom
    rows = torch.stack([torch.stack([cos, -sin, d[:, 0]], -1), torch.stack([sin, cos, d[:, 1]], -1)], 1)
    return rows  # (T, 2, 3): x' = cos x - sin y + dx, y' = sin x + cos y + dy


def motion_reach(motion: torch.Tensor, half: tuple[float, float]) -> tuple[float, float, float, float]:
    """How far beyond a window of half-size ``half = (hh, hw)`` (HR px, about its centre) the frames of `motion`
    read the source: (top, bottom, left, right) in px, >= 0, Lanczos taps included."""
    hh, hw = half
    corners = torch.tensor([[-hw, -hh], [hw, -hh], [-hw, hh], [hw, hh]], dtype=torch.float64)
    src = torch.einsum("tij,kj->tki", motion[:, :, :2], corners) + motion[:, None, :, 2]  # (T, 4, 2) x, y
    x, y = src[..., 0], src[..., 1]
    return (max(0.0, float(-y.min()) - hh) + _TAPS, max(0.0, float(y.max()) - hh) + _TAPS,
            max(0.0, float(-x.min()) - hw) + _TAPS, max(0.0, float(x.max()) - hw) + _TAPS)


def warp_frames(image: np.ndarray, motion: torch.Tensor, centre: tuple[float, float],
                size: tuple[int, int]) -> np.ndarray:
    """The HR frames of a clip: `image` seen through each frame's motion.

    Args:
        image: uint8 (H, W, C) source image (C <= 4).
        motion: (T, 2, 3) matrices from `clip_motion`.
        centre: (y, x) of the window centre in `image`'s pixel coordinates (pixel centres at integers).
        size: (h, w) of each frame.

    Returns:
        uint8 (T, h, w, C): 8x8 Lanczos resampling (OpenCV ``INTER_LANCZOS4``, rounded), source borders mirrored
        (``BORDER_REFLECT_101``). A frame whose motion is the identity at an integer-aligned window is an exact
        crop (no resampling), so the reference frame is the image itself.
    """
    import cv2

    if image.dtype != np.uint8 or image.ndim != 3:
        raise ShapeError(f"warp_frames expects a uint8 (H, W, C) image, got {image.dtype} {image.shape}")
    h, w = int(size[0]), int(size[1])
    cy, cx = float(centre[0]), float(centre[1])
    oy, ox = (h - 1) / 2.0, (w - 1) / 2.0
    out = np.empty((motion.shape[0], h, w, image.shape[2]), np.uint8)
    top, left = cy - oy, cx - ox
    for k, m in enumerate(motion.numpy()):
        lin, d = m[:, :2], m[:, 2]
        exact = top == int(top) and left == int(left) and 0 <= top and 0 <= left
        exact = exact and top + h <= image.shape[0] and left + w <= image.shape[1]
        if exact and np.array_equal(lin, np.eye(2)) and not d.any():
            out[k] = image[int(top) : int(top) + h, int(left) : int(left) + w]
            continue
        # dst pixel (x, y) -> src = c + A (p - o) + d, with p - o relative to the window centre.
        off = np.array([cx, cy]) + d - lin @ np.array([ox, oy])
        mat = np.concatenate([lin, off[:, None]], axis=1)
        warped = cv2.warpAffine(image, mat, (w, h), flags=cv2.INTER_LANCZOS4 | cv2.WARP_INVERSE_MAP,
                                borderMode=cv2.BORDER_REFLECT_101)
        out[k] = warped.reshape(h, w, image.shape[2])
    return out


# ----------------------------------------------------------------------------------------------- one clip


def _window(shape: tuple[int, int], size: tuple[int, int] | None, reach, scale: int, margin: int,
            generator: torch.Generator) -> tuple[tuple[int, int], tuple[float, float]]:
    """(h, w) of the degraded window and its centre (y, x) in the image."""
    ih, iw = shape
    if size is None:
        h, w = ih, iw
    else:
        h, w = int(size[0]) + 2 * margin * scale, int(size[1]) + 2 * margin * scale
    top_r, bottom_r, left_r, right_r = reach
    # the window's top-left range that keeps every frame's samples inside the image (else: centred, mirrored)
    lo_y, hi_y = math.ceil(top_r), math.floor(ih - h - bottom_r)
    lo_x, hi_x = math.ceil(left_r), math.floor(iw - w - right_r)
    pick = torch.rand(2, generator=generator, dtype=torch.float64)
    y0 = lo_y + int(pick[0] * (hi_y - lo_y + 1)) if hi_y >= lo_y else (ih - h) // 2
    x0 = lo_x + int(pick[1] * (hi_x - lo_x + 1)) if hi_x >= lo_x else (iw - w) // 2
    return (h, w), (y0 + (h - 1) / 2.0, x0 + (w - 1) / 2.0)


def _largest_window(shape: tuple[int, int], motion: torch.Tensor, scale: int) -> tuple[int, int]:
    """The largest centred window, multiple of `scale`, whose frames read only inside an image of `shape`."""
    ih, iw = shape
    hh, hw = ih / 2.0, iw / 2.0
    for _ in range(4):  # the reach grows with the window (rotation, zoom): a few fixed-point steps
        t, b, lf, r = motion_reach(motion, (hh, hw))
        hh, hw = ih / 2.0 - max(t, b), iw / 2.0 - max(lf, r)
    h = int(2 * hh) // scale * scale
    w = int(2 * hw) // scale * scale
    if h < scale or w < scale:
        raise ShapeError(f"a {iw}x{ih} image leaves no room for the clip's motion")
    return h, w


def synthetic_clip(hr: np.ndarray, *, scale: int, cfg: ClipCfg, generator: torch.Generator,
                   degradation: Degradation | None = None, size: tuple[int, int] | None = None,
                   margin: int = 4) -> tuple[torch.Tensor, torch.Tensor]:
    """A synthetic clip of a still image: its frames through small random motions, each degraded on its own.

    Args:
        hr: uint8 (H, W, 3) still image.
        scale: SR factor (LR frames are 1/scale of the HR frames).
        cfg: frames and motion ranges (`ClipCfg`).
        generator: draws the motion (`clip_motion`), then the window position, then each frame's degradation.
        degradation: `srkit.degrade.Degradation` run on the HR frames (batched; each frame draws its own
            parameters); None: MATLAB bicubic.
        size: (H', W') of the HR frames, multiples of `scale`, at a random position where every frame's motion
            stays inside the image (centred and mirrored at the borders when the image is too small); None: the
            largest centred window whose frames read only inside the image (test clips).
        margin: LR pixels of context degraded around a `size` window and cut away after (no border effects of
            blur and resize inside the clip); not used with ``size=None``.

    Returns:
        ``(lr, hr)``: float32 (T, 3, H'/s, W'/s) and (T, 3, H', W') in [0, 1] on 8-bit levels; frame ``T // 2``
        of ``hr`` is the crop of `hr` itself (no resampling).

    Raises:
        ShapeError: not a uint8 RGB image, a size that is not a multiple of `scale`, or an image too small.
    """
    from srkit.degrade.pipeline import Degradation

    if not isinstance(hr, np.ndarray) or hr.dtype != np.uint8 or hr.ndim != 3 or hr.shape[2] != 3:
        raise ShapeError(f"synthetic_clip expects a uint8 (H, W, 3) image, got {getattr(hr, 'shape', type(hr))}")
    if size is not None and (size[0] % scale or size[1] % scale or min(size) < scale):
        raise ShapeError(f"clip size {tuple(size)} must be positive multiples of the scale {scale}")
    motion = clip_motion(cfg, generator)
    shape = (hr.shape[0], hr.shape[1])
    if size is None:
        window = _largest_window(shape, motion, scale)
        margin = 0
        # centred (a fixed pixel grid: the reference frame is an exact crop); the generator still draws the pick
        torch.rand(2, generator=generator, dtype=torch.float64)
        centre = ((shape[0] - window[0]) // 2 + (window[0] - 1) / 2.0, (shape[1] - window[1]) // 2
                  + (window[1] - 1) / 2.0)
    else:
        full = (size[0] + 2 * margin * scale, size[1] + 2 * margin * scale)
        reach = motion_reach(motion, (full[0] / 2.0, full[1] / 2.0))
        window, centre = _window(shape, size, reach, scale, margin, generator)
    frames = warp_frames(hr, motion, centre, window)
    hr_t = torch.from_numpy(frames).permute(0, 3, 1, 2).float().div_(255.0)
    deg = degradation if degradation is not None else Degradation("bicubic")
    lr_t, _ = deg(hr_t, scale, generator)
    target = deg.target(hr_t)
    if margin:
        m = margin
        lr_t = lr_t[..., m:-m, m:-m]
        target = target[..., m * scale : -m * scale, m * scale : -m * scale]
    return lr_t.contiguous(), target.contiguous()


def benchmark_clip(hr: np.ndarray, *, scale: int, seed: int, cfg: ClipCfg | None = None,
                   degradation: Degradation | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """The test clip of one benchmark image: `synthetic_clip` of the whole image (the largest window its motion
    allows, ``size=None``) with ``torch.Generator().manual_seed(seed)``; the same seed gives the same clip."""
    return synthetic_clip(hr, scale=scale, cfg=cfg or ClipCfg(), generator=torch.Generator().manual_seed(int(seed)),
                          degradation=degradation, size=None)


# ----------------------------------------------------------------------------------------------- datasets


def _read(path: Path) -> np.ndarray:
    from srkit.data.folders import read_rgb8

    return read_rgb8(path)


def _clip_augment(lr: torch.Tensor, hr: torch.Tensor, rng: np.random.Generator,
                  reverse: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """One dihedral transform for all frames alike, and (with `reverse`) half the clips played backwards."""
    from srkit.ops.dihedral import dihedral

    k = int(rng.integers(8))
    lr, hr = dihedral(lr, k), dihedral(hr, k)
    if reverse and rng.integers(2):
        lr, hr = lr.flip(0), hr.flip(0)
    return lr.contiguous(), hr.contiguous()


class ClipFolder(Dataset):
    """Training clips made on the fly from HR images: sample i of epoch e is `synthetic_clip` of image
    ``i % n_images`` with a generator seeded by ``(seed, e, i)``, at a random window, plus one dihedral transform of
    all frames (and a time reversal, `ClipCfg.reverse`).

    Args:
        files: HR image paths (read once, kept in memory as uint8 RGB).
        scale: SR factor.
        patch_size: LR side p of each frame (HR frames are p * scale).
        cfg: frames and motion.
        degradation: per-frame degradation (``on: loader``); None: MATLAB bicubic.
        samples_per_epoch: ``len(self)``; default one per image.
        seed: with the epoch and the index, determines every sample.
        augment: dihedral transform and time reversal.

    Items:
        ``(lr, hr)``: float32 (T, 3, p, p) and (T, 3, p s, p s) in [0, 1].

    Raises:
        DatasetError: no files, or none at least one HR frame large.
        ConfigError: a degradation run per batch (``on: batch``): clips are degraded here.
    """

    def __init__(self, files: Sequence[Path], *, scale: int, patch_size: int, cfg: ClipCfg,
                 degradation: Degradation | None = None, samples_per_epoch: int | None = None, seed: int = 0,
                 augment: bool = True) -> None:
        if degradation is not None and degradation.cfg.on != "loader":
            raise ConfigError("clips are degraded frame by frame in the loader: degradation.on must be 'loader'")
        self.scale, self.patch_size, self.cfg = int(scale), int(patch_size), cfg
        self.degradation, self.seed, self.augment = degradation, int(seed), bool(augment)
        side = self.patch_size * self.scale
        images = [(Path(f).stem, _read(Path(f))) for f in files]
        self.images = [(n, im) for n, im in images if min(im.shape[:2]) >= side]
        self.skipped = len(images) - len(self.images)
        if not self.images:
            raise DatasetError(f"no usable image for clips: need HR images of at least {side} px a side")
        self.samples_per_epoch = int(samples_per_epoch) if samples_per_epoch is not None else len(self.images)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return self.samples_per_epoch

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor]:
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} samples")
        index = int(index) % n
        _, image = self.images[index % len(self.images)]
        seq = np.random.SeedSequence([self.seed, self.epoch, index])
        gen = torch.Generator().manual_seed(int(seq.generate_state(1, np.uint64)[0] >> 1))
        side = self.patch_size * self.scale
        margin = self.degradation.cfg.margin if self.degradation is not None else 4
        lr, hr = synthetic_clip(image, scale=self.scale, cfg=self.cfg, generator=gen, degradation=self.degradation,
                                size=(side, side), margin=margin)
        if self.augment:
            lr, hr = _clip_augment(lr, hr, np.random.default_rng(seq.spawn(1)[0]), self.cfg.reverse)
        return lr, hr


class ValidationClips(Dataset):
    """Whole validation clips, one per image and fixed by the run seed: `synthetic_clip` (``size=None``) of each
    image, centre-cropped to `max_side` first, with a generator seeded by ``(seed, file stem)``.

    Items:
        ``(lr, hr, name)``: float32 (T, 3, h, w) and (T, 3, h s, w s) in [0, 1], and the file stem.
    """

    def __init__(self, files: Sequence[Path], *, scale: int, cfg: ClipCfg, degradation: Degradation | None = None,
                 max_side: int | None = None, seed: int = 0) -> None:
        from srkit.degrade.pipeline import image_seed

        self.items = []
        for f in files:
            image = _read(Path(f))
            if max_side is not None:
                h, w = image.shape[:2]
                ch, cw = min(h, max_side), min(w, max_side)
                image = np.ascontiguousarray(image[(h - ch) // 2 : (h - ch) // 2 + ch, (w - cw) // 2 : (w - cw) // 2
                                                   + cw])
            lr, hr = synthetic_clip(image, scale=scale, cfg=cfg,
                                    generator=torch.Generator().manual_seed(image_seed(seed, Path(f).stem)),
                                    degradation=degradation, size=None)
            self.items.append((lr, hr, Path(f).stem))
        if not self.items:
            raise DatasetError("ValidationClips needs at least one image file")

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, torch.Tensor, str]:
        return self.items[index]
