"""Clips through the one inference path (`srkit.infer.clips`): windows that cover a stream once, in order, cut at
group changes; a window equal to the model called on it; windowed equal to whole where the context covers the
clip; a one-frame clip equal to the image path; single-image models frame by frame."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from srkit.errors import ConfigError, ShapeError
from srkit.infer import Upscaler
from srkit.infer.clips import plan_windows, run_clip, upscale_clip

from helpers import rand_model


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)  # build() initialises from the global generator: the same model whatever ran before
    return rand_model("recurrent-vsr", 2, channels=8, blocks=1, flow_width=8)


def _clip(t: int = 9, h: int = 12, w: int = 14, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    base = rng.random((h + 8, w + 8, 3))
    frames = [base[i % 3 : i % 3 + h, (i // 3) % 3 : (i // 3) % 3 + w] for i in range(t)]  # a moving texture
    return (np.stack(frames) * 255).round().astype(np.uint8)


@pytest.mark.parametrize("window, context", [(1, 0), (3, 0), (3, 2), (4, 7), (20, 3)])
def test_windows_cover_the_stream_once_in_order(window, context):
    kept, runs = [], []
    for run, lo, hi in plan_windows(iter(range(11)), window, context):
        assert 0 <= lo < hi <= len(run) and hi - lo <= window
        assert lo <= context and len(run) - hi <= context
        assert run == list(range(run[0], run[0] + len(run)))  # consecutive
        kept += run[lo:hi]
        runs.append(len(run))
    assert kept == list(range(11))
    assert max(runs) <= window + 2 * context


def test_windows_restart_at_every_group():
    group = {i: i // 4 for i in range(10)}  # groups 0-3, 4-7, 8-9
    out = [(run[lo], run[hi - 1], run[0], run[-1]) for run, lo, hi in plan_windows(range(10), 3, 1, group.get)]
    # kept slices never span two groups and each group's windows start at its first item; context crosses groups
    assert out == [(0, 2, 0, 3), (3, 3, 2, 4), (4, 6, 3, 7), (7, 7, 6, 8), (8, 9, 7, 9)]
    with pytest.raises(ConfigError):
        list(plan_windows(range(3), 0, 1))


def test_a_window_is_the_model_on_the_clip(model):
    up = Upscaler(model)
    x = torch.from_numpy(_clip(5)).permute(0, 3, 1, 2).float() / 255
    with torch.no_grad():
        want = model(x[None])[0].clamp(0, 1)
    torch.testing.assert_close(run_clip(up, x), want, atol=1e-6, rtol=0)


def test_windowed_equals_whole_when_the_context_covers_the_clip(model):
    up = Upscaler(model)
    clip = _clip(9)
    whole = upscale_clip(up, clip, window=9, context=0)
    assert whole.shape == (9, 24, 28, 3) and whole.dtype == np.uint8
    np.testing.assert_array_equal(upscale_clip(up, clip, window=2, context=8), whole)
    # the default window (ModelInfo.frames, frame_context) holds all 9 frames here
    np.testing.assert_array_equal(up.upscale_clip(clip), whole)


def test_short_context_differs_from_whole_only_slightly(model):
    up = Upscaler(model)
    clip = _clip(9)
    whole = upscale_clip(up, clip, window=9, context=0).astype(int)
    windowed = upscale_clip(up, clip, window=3, context=2).astype(int)
    diff = np.abs(windowed - whole)
    assert diff.mean() < 2.0  # an untrained network's reach; the shipped model's is in its model card


def test_one_frame_clip_is_the_image_path(model):
    up = Upscaler(model)
    clip = _clip(3)
    np.testing.assert_array_equal(upscale_clip(up, clip[:1])[0], up.upscale(clip[0]))
    np.testing.assert_array_equal(up.upscale(clip[1]).shape, (24, 28, 3))


def test_gray_and_float_clips(model):
    up = Upscaler(model)
    clip = _clip(4)
    gray = clip[..., 0]
    y = upscale_clip(up, gray)
    assert y.shape == (4, 24, 28) and y.dtype == np.uint8
    f = upscale_clip(up, clip.astype(np.float32) / 255)
    assert f.dtype == np.float32 and 0 <= f.min() and f.max() <= 1
    assert np.abs(f * 255 - upscale_clip(up, clip)).max() <= 0.5 + 1e-3
    with pytest.raises(ShapeError, match="alpha"):
        upscale_clip(up, np.zeros((2, 8, 8, 4), np.uint8))


def test_single_image_model_upscales_each_frame_on_its_own():
    m = rand_model("recurrent-vsr-single", 2, channels=8, blocks=2)
    up = Upscaler(m)
    clip = _clip(4)
    got = upscale_clip(up, clip)
    for g, frame in zip(got, clip):
        np.testing.assert_array_equal(g, up.upscale(frame))


def test_tiles_and_bf16_stay_close(model):
    clip = _clip(6, 40, 44)
    whole = upscale_clip(Upscaler(model), clip).astype(int)
    tiled = upscale_clip(Upscaler(model, tile=16), clip).astype(int)
    assert np.abs(tiled - whole).mean() < 1.0  # blended tiles: a recurrent model has no finite receptive field
    lowp = upscale_clip(Upscaler(model, dtype="bf16"), clip).astype(int)
    assert np.abs(lowp - whole).mean() < 1.0


def test_exports_and_onnxruntime_refuse_a_multi_frame_model(model, tmp_path):
    from srkit.export.onnx import export_onnx
    from srkit.export.torchscript import export_torchscript

    for export in (export_onnx, export_torchscript):
        with pytest.raises(ConfigError, match="multi-frame"):
            export(model, tmp_path / "m.out")
    with pytest.raises(ConfigError, match="multi-frame"):
        Upscaler(model, backend="onnxruntime")
