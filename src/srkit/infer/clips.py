"""Clips through the one inference path: a multi-frame model sees a clip in windows of frames.

A multi-frame model (`ModelInfo.frames` > 1, e.g. ``video-x4``) is run on a clip in windows of `frames` output
frames, each with `frame_context` more frames on each side that it sees and whose outputs are discarded
(recurrent propagation needs them: a window then differs from a run on the whole clip only by what reaches further
than the context, measured for the shipped model in its model card). Memory is bounded by one window (window + 2
context frames at LR, its outputs), whatever the clip's length. Every window goes through
`srkit.infer.engine.run_model` as one image whose channels are the window's frames stacked (``frames=T``), so
spatial tiling (blended: a recurrent model has no finite receptive field), x8 TTA, the compute dtype and the
out-of-memory fallback are the engine's own.

* `run_clip(up, clip, request)` - one window: (T, C, H, W) float [0, 1] -> (T, C, sH, sW), clipped to [0, 1].
* `plan_windows(items, window, context, group)` - how a stream of frames is cut into windows (pure Python).
* `iter_clip(up, frames, request)` - (H, W, C) frames in, upscaled frames out, in order, one window in memory.
* `upscale_clip(up, frames, request)` - a (T, H, W[, C]) array of frames -> (T, sH, sW[, C]).

Single images given to a multi-frame model are one-frame clips (`srkit.upscale`, `srkit upscale photo.png`): the
model runs without neighbours, like its single-frame counterpart. A single-image model given a clip upscales each
frame on its own (the same as `srkit.upscale` of each).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable, Iterable, Iterator
from typing import TYPE_CHECKING, TypeVar

import numpy as np
import torch

from srkit.errors import ConfigError, ShapeError
from srkit.infer.engine import Request, peak_value, run_image, run_model

if TYPE_CHECKING:
    from srkit.infer.engine import Runner

__all__ = ["iter_clip", "plan_windows", "run_clip", "upscale_clip", "window_of"]

Item = TypeVar("Item")


def window_of(up: Runner, window: int | None = None, context: int | None = None) -> tuple[int, int]:
    """(window, context) for `up`'s model: the given values, else `ModelInfo.frames` / `frame_context` (1 / 0 for
    single-image models). ConfigError for a window < 1 or a context < 0."""
    info = up.model.info
    w = info.frames if window is None else window
    c = info.frame_context if context is None else context
    if isinstance(w, bool) or not isinstance(w, int) or w < 1:
        raise ConfigError(f"window must be an integer >= 1, got {w!r}")
    if isinstance(c, bool) or not isinstance(c, int) or c < 0:
        raise ConfigError(f"context must be an integer >= 0, got {c!r}")
    return w, (c if info.multi_frame else 0)


@torch.inference_mode()
def run_clip(up: Runner, clip: torch.Tensor, request: Request = Request()) -> torch.Tensor:
    """Upscale one window of frames: (T, C, H, W) float32 in [0, 1], C = 1 (gray) or 3 (RGB) -> (T, C, sH, sW)
    float32 in [0, 1] on the input's device.

    A multi-frame model sees the T frames as one clip (`srkit.infer.engine.run_model` with ``frames=T``); a
    single-image model upscales each frame on its own (`srkit.infer.engine.run_image`, the frames as a batch).

    Raises:
        ShapeError: not a float (T, C, H, W) tensor with C in (1, 3), or an empty clip.
    """
    if clip.ndim != 4 or not clip.is_floating_point() or clip.shape[1] not in (1, 3) or clip.shape[0] < 1:
        raise ShapeError(f"expected a float (T, C, H, W) clip with C = 1 or 3, got {tuple(clip.shape)} {clip.dtype}")
    if not up.model.info.multi_frame:
        return run_image(up, clip, request)
    t, c, h, w = clip.shape
    y = run_model(up, clip.reshape(1, t * c, h, w), request, frames=t)
    return y.reshape(t, c, y.shape[-2], y.shape[-1]).clamp_(0.0, 1.0)


def plan_windows(items: Iterable[Item], window: int, context: int,
                 group: Callable[[Item], Hashable] | None = None) -> Iterator[tuple[list[Item], int, int]]:
    """Cut a stream into model calls: yields ``(run, lo, hi)``, `run` the consecutive items one call sees and
    ``run[lo:hi]`` the ones whose outputs are kept; the kept slices cover the stream once, in order.

    Windows hold `window` kept items, with up to `context` more on each side (fewer at the ends of the stream). A
    window never spans two groups (`group(item)` changes): each group's windows start at its first item, so they
    do not depend on where the stream started, provided it starts at least `context` items before the group (or
    at the stream's start) - what makes a resumed video job equal to an uninterrupted one. Context crosses groups.
    At most ``window + 2 * context`` items are held at a time.
    """
    if window < 1 or context < 0:
        raise ConfigError(f"window must be >= 1 and context >= 0, got {window} and {context}")
    it = iter(items)
    buf: list[Item] = []
    base = 0  # stream index of buf[0]
    done = False

    def fill(n: int) -> None:
        nonlocal done
        while not done and base + len(buf) < n:
            try:
                buf.append(next(it))
            except StopIteration:
                done = True

    a = 0  # stream index of the first item not yet output
    while True:
        fill(a + window + context)
        have = base + len(buf)
        if a >= have:
            return
        end = min(a + window, have)
        if group is not None:
            g = group(buf[a - base])
            end = next((j for j in range(a + 1, end) if group(buf[j - base]) != g), end)
        lo = max(a - context, base)
        hi = min(end + context, have)
        yield buf[lo - base : hi - base], a - lo, end - lo
        a = end
        drop = max(0, a - context - base)
        del buf[:drop]
        base += drop


def _frames_tensor(frames: list[np.ndarray], peak: float) -> torch.Tensor:
    stack = np.stack(frames)
    if stack.ndim == 3:
        stack = stack[..., None]
    x = stack.astype(np.float32)
    if peak != 1.0:
        x /= np.float32(peak)
    return torch.from_numpy(np.ascontiguousarray(x.transpose(0, 3, 1, 2)))


def _to_dtype(y: torch.Tensor, dtype: np.dtype, peak: float, gray2d: bool) -> np.ndarray:
    out = y.permute(0, 2, 3, 1).cpu().numpy()
    if gray2d:
        out = out[..., 0]
    if peak == 1.0:
        return out.astype(dtype, copy=False)
    return np.rint(out * np.float32(peak)).astype(dtype)


def _check_frame(frame: np.ndarray, first: np.ndarray | None) -> None:
    if frame.ndim not in (2, 3) or (frame.ndim == 3 and frame.shape[2] not in (1, 3)):
        raise ShapeError(f"expected (H, W) or (H, W, 1 | 3) frames (no alpha), got shape {frame.shape}")
    if first is not None and (frame.shape != first.shape or frame.dtype != first.dtype):
        raise ShapeError(f"the frames of a clip must share one shape and dtype: {first.shape} {first.dtype}, then "
                         f"{frame.shape} {frame.dtype}")


def iter_clip(up: Runner, frames: Iterable[np.ndarray], request: Request = Request(), *, window: int | None = None,
              context: int | None = None) -> Iterator[np.ndarray]:
    """Upscale a stream of frames: (H, W[, C]) arrays (C = 1 or 3; uint8, uint16 or float in [0, 1], one shape and
    dtype for all) in, (sH, sW[, C]) arrays of the same dtype out, one per input frame, in order.

    A multi-frame model runs on windows (`plan_windows` with `window_of`: `ModelInfo.frames` output frames and
    `frame_context` context frames by default), at most one window held; a single-image model on one frame at a
    time (a window of 1, no context).

    Raises:
        ShapeError: a frame of another shape or dtype than the first, or with alpha.
        ConfigError: a bad window or context.
    """
    w, c = window_of(up, window, context)
    if not up.model.info.multi_frame:
        w = 1
    first: np.ndarray | None = None

    def checked(stream: Iterable[np.ndarray]) -> Iterator[np.ndarray]:
        nonlocal first
        for f in stream:
            f = np.asarray(f)
            _check_frame(f, first)
            if first is None:
                first = f
            yield f

    for run, lo, hi in plan_windows(checked(frames), w, c):
        dtype = run[0].dtype
        peak = peak_value(dtype)
        y = run_clip(up, _frames_tensor(run, peak), request)[lo:hi]
        yield from _to_dtype(y, dtype, peak, run[0].ndim == 2)


def upscale_clip(up: Runner, frames: np.ndarray, request: Request = Request(), *, window: int | None = None,
                 context: int | None = None) -> np.ndarray:
    """`iter_clip` of a (T, H, W[, C]) array of frames -> (T, sH, sW[, C]), the same dtype."""
    arr = np.asarray(frames)
    if arr.ndim not in (3, 4) or arr.shape[0] < 1:
        raise ShapeError(f"expected a (T, H, W[, C]) array of frames, got shape {arr.shape}")
    return np.stack(list(iter_clip(up, iter(arr), request, window=window, context=context)))
