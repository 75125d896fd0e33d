"""Temporal consistency of a video: the warping error.

For each frame t >= 1, the previous frame is warped onto frame t by optical flow and the mean absolute difference
is taken; the clip's warping error is the mean over frames (lower is steadier; flicker and temporally
inconsistent detail raise it). The flow is OpenCV's DIS flow (preset "medium") computed on the *input* frames
(8-bit luma), so an upscaled clip and its input are judged against the same motion: for an output `scale` times
larger the flow is resized (bilinear) to the output size and multiplied by `scale`.

Pixels whose source falls outside the previous frame, or that are occluded (the forward and backward flows
disagree: |b + f(x + b)|^2 > 0.01 (|b|^2 + |f(x + b)|^2) + 0.5 LR px^2, the usual consistency test of Sundaram et
al. 2010), are left out. Values are on the [0, 1] intensity scale, averaged over the colour channels.

`warping_error(frames, flow_frames)` scores a sequence; `WarpingError` does the same one frame at a time (two frames
in memory), as `srkit eval --video` uses it.
"""

from __future__ import annotations

from collections.abc import Iterable

import cv2
import numpy as np

from srkit.errors import ShapeError

__all__ = ["WarpingError", "warping_error"]


def _float(frame: np.ndarray) -> np.ndarray:
    """An (H, W[, C]) frame as float32 in [0, 1] (`srkit.io.to_float`, which refuses other sample types)."""
    from srkit.io import to_float

    a = np.asarray(frame)
    if a.ndim not in (2, 3):
        raise ShapeError(f"expected an (H, W) or (H, W, C) frame, got shape {a.shape}")
    return to_float(a)


def _gray8(frame: np.ndarray) -> np.ndarray:
    f = _float(frame)
    if f.ndim == 3 and f.shape[2] >= 3:
        f = f[..., 0] * 0.299 + f[..., 1] * 0.587 + f[..., 2] * 0.114
    elif f.ndim == 3:
        f = f[..., 0]
    return np.clip(np.rint(f * 255), 0, 255).astype(np.uint8)


def _sample(field: np.ndarray, map_x: np.ndarray, map_y: np.ndarray) -> np.ndarray:
    return cv2.remap(field, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


class WarpingError:
    """The warping error, fed one frame at a time: `update(frame, flow_frame)` in display order, then `value`.

    Args:
        occlusion: leave out pixels where the forward and backward flows disagree (default True).
    """

    def __init__(self, occlusion: bool = True):
        self.occlusion = occlusion
        self._dis = cv2.DISOpticalFlow.create(cv2.DISOpticalFlow_PRESET_MEDIUM)
        self._prev: np.ndarray | None = None
        self._prev_gray: np.ndarray | None = None
        self._total = 0.0
        self._pairs = 0

    @property
    def pairs(self) -> int:
        """Frame pairs scored so far (frames - 1)."""
        return self._pairs

    @property
    def value(self) -> float:
        """Mean over the pairs scored so far of the pair's warping error; NaN before two frames."""
        return self._total / self._pairs if self._pairs else float("nan")

    def _flow(self, a: np.ndarray, b: np.ndarray) -> np.ndarray:
        """DIS flow: a(x) ~ b(x + flow(x)), (H, W, 2) float32."""
        out = np.zeros((*a.shape, 2), dtype=np.float32)
        return np.asarray(self._dis.calc(a, b, out), dtype=np.float32)

    def update(self, frame: np.ndarray, flow_frame: np.ndarray | None = None) -> float | None:
        """Add the next frame (uint8, uint16 or float [0, 1]; (H, W) or (H, W, C)) and the frame the flow is
        computed on (the input frame; default `frame` itself), an integer factor smaller. Returns this pair's
        error (None for the first frame)."""
        cur = _float(frame)
        gray = _gray8(frame if flow_frame is None else flow_frame)
        h, w = cur.shape[:2]
        gh, gw = gray.shape
        if h % gh or w % gw or h // gh != w // gw:
            raise ShapeError(f"frame {w} x {h} is not an integer multiple of its flow frame {gw} x {gh}")
        prev, prev_gray = self._prev, self._prev_gray
        self._prev, self._prev_gray = cur, gray
        if prev is None or prev_gray is None:
            return None
        if prev.shape != cur.shape or prev_gray.shape != gray.shape:
            raise ShapeError(f"frame size changed: {prev.shape} -> {cur.shape}")
        scale = h // gh
        backward = self._flow(gray, prev_gray)  # cur(x) ~ prev(x + backward(x))
        gx, gy = np.meshgrid(np.arange(gw, dtype=np.float32), np.arange(gh, dtype=np.float32))
        valid = np.ones((gh, gw), dtype=bool)
        if self.occlusion:
            forward = self._flow(prev_gray, gray)  # prev(x) ~ cur(x + forward(x))
            fw = _sample(forward, gx + backward[..., 0], gy + backward[..., 1])
            diff = ((backward + fw) ** 2).sum(axis=2)
            valid &= diff <= 0.01 * ((backward ** 2).sum(axis=2) + (fw ** 2).sum(axis=2)) + 0.5
        if scale > 1:
            flow = cv2.resize(backward, (w, h), interpolation=cv2.INTER_LINEAR) * np.float32(scale)
            valid = cv2.resize(valid.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool)
            gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        else:
            flow = backward
        map_x, map_y = gx + flow[..., 0], gy + flow[..., 1]
        valid &= (map_x >= 0) & (map_x <= w - 1) & (map_y >= 0) & (map_y <= h - 1)
        if not valid.any():
            return None
        warped = _sample(prev, map_x, map_y)
        err = np.abs(cur - warped.reshape(cur.shape))
        err = err.mean(axis=2) if err.ndim == 3 else err
        e = float(err[valid].mean())
        self._total += e
        self._pairs += 1
        return e


def warping_error(frames: Iterable[np.ndarray], flow_frames: Iterable[np.ndarray] | None = None, *,
                  occlusion: bool = True) -> float:
    """The warping error of a clip (see the module docstring): mean over frames t >= 1 of the mean absolute
    difference between frame t and frame t - 1 warped onto it by the DIS flow of `flow_frames` (default: `frames`;
    pass the input frames to score an upscaled clip, whose frames are then an integer factor larger).

    Returns NaN for fewer than two frames. ShapeError: frames of different sizes, or not a multiple of their flow
    frames.
    """
    meter = WarpingError(occlusion=occlusion)
    if flow_frames is None:
        for f in frames:
            meter.update(f)
    else:
        for f, g in zip(frames, flow_frames, strict=True):
            meter.update(f, g)
    return meter.value
