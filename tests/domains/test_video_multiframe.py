"""A multi-frame model (`recurrent-vsr`) on video files: `srkit upscale clip.mp4` keeps frame count, timestamps and
audio; the lossless output equals `srkit.infer.clips.upscale_clip` of the decoded frames (the same windows);
resuming by segment gives the uninterrupted run's frames although windows take context across segments; the
warping-error evaluation runs it in windows too."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from srkit.domains import DomainOptions
from srkit.infer.files import upscale_file

from helpers import rand_model
from test_video import N, _frames, _packets, _times, make_clip

pytest.importorskip("av")


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return make_clip(tmp_path_factory.mktemp("mf") / "clip.mp4")


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)  # build() initialises from the global generator: the same model whatever ran before
    return rand_model("recurrent-vsr", 2, channels=8, blocks=1, flow_width=8)


def test_cli_keeps_frames_timestamps_and_audio(srkit_cli, clip, model, tmp_path):
    from srkit.models import save_model

    weights = save_model(model, tmp_path / "vsr.safetensors")
    dst = tmp_path / "out" / "clip_x2.mp4"
    dst.parent.mkdir()
    r = srkit_cli("upscale", clip, "-o", dst, "--model", weights, "--crf", "20")
    assert r.returncode == 0, r.stderr
    assert _times(dst) == _times(clip) and len(_times(dst)) == N
    assert _packets(dst, "audio") == _packets(clip, "audio")
    assert _frames(dst)[0].shape == (96, 128, 3)
    assert sorted(p.name for p in dst.parent.iterdir()) == ["clip_x2.mp4"]


def test_lossless_output_is_upscale_clip_of_the_decoded_frames(clip, model, tmp_path):
    from srkit.domains.video import iter_frames
    from srkit.infer.api import load_upscaler
    from srkit.infer.clips import upscale_clip

    frames = np.stack([f for f, _, _ in iter_frames(clip)])
    opts = {"window": 5, "context": 2}
    up = load_upscaler(model)  # as upscale_file makes it (dtype "auto")
    want = upscale_clip(up, frames, window=5, context=2)
    dst = upscale_file(clip, tmp_path / "out.mkv", model, domain_options=DomainOptions(codec="ffv1", extra=opts))
    got = np.stack(_frames(dst))
    np.testing.assert_array_equal(got, want)
    # windowed differs from one window over the whole clip by little, at the seams only
    whole = upscale_clip(up, frames, window=N, context=0)
    assert np.abs(got.astype(int) - whole).mean() < 2.0


def test_resume_gives_the_uninterrupted_frames(clip, model, tmp_path):
    class Killed(Exception):
        pass

    def kill(index, count):
        if index == 1:
            raise Killed

    # 4-frame segments (IDR every 4 frames), windows of 3 with 2 frames of context: windows take context from
    # the neighbouring segments, and a resumed job must give the same frames.
    opts = {"segment_seconds": 0.3, "window": 3, "context": 2}
    dst = tmp_path / "out.mkv"
    with pytest.raises(Killed):
        upscale_file(clip, dst, model, domain_options=DomainOptions(codec="ffv1", extra={**opts, "on_segment": kill}))
    work = tmp_path / ".out.mkv.srkit-video"
    assert sorted(p.name for p in work.glob("seg-*")) == ["seg-000000.mp4", "seg-000001.mp4"]
    segments = []
    upscale_file(clip, dst, model, domain_options=DomainOptions(
        codec="ffv1", extra={**opts, "on_segment": lambda i, n: segments.append(i)}))
    assert segments == [2]
    whole = upscale_file(clip, tmp_path / "whole.mkv", model, domain_options=DomainOptions(codec="ffv1", extra=opts))
    assert len(_times(dst)) == N
    for a, b in zip(_frames(dst), _frames(whole), strict=True):
        np.testing.assert_array_equal(a, b)


def test_warping_error_of_a_multi_frame_model(clip, model):
    from srkit.domains.video import evaluate_clip
    from srkit.infer import Upscaler

    up = Upscaler(model)
    scores = evaluate_clip(clip, up, up.request(), max_frames=7)
    assert scores.frames == 7 and np.isfinite(scores.output) and np.isfinite(scores.input)
