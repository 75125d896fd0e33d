"""`srkit.metrics.warping_error`: near 0 for a perfect translation (at the input's size and upscaled), growing with
added flicker."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from srkit.errors import ShapeError
from srkit.metrics import WarpingError, warping_error

H, W, T = 48, 64, 8


@pytest.fixture(scope="module")
def texture() -> np.ndarray:
    """A smooth random RGB texture, 200 x 240, float [0, 1]."""
    rng = np.random.default_rng(0)
    g = cv2.GaussianBlur(rng.random((200, 240)).astype(np.float32), (0, 0), 3)
    g = (g - g.min()) / (g.max() - g.min())
    return np.stack([g, g[::-1], g[:, ::-1]], -1)


def _pan(texture: np.ndarray, scale: int = 1) -> list[np.ndarray]:
    """A camera panning 2 px (input pixels) right per frame over the texture, `scale` times larger."""
    big = texture if scale == 1 else cv2.resize(texture, None, fx=scale, fy=scale, interpolation=cv2.INTER_CUBIC)
    y, x = 20 * scale, 10 * scale
    return [big[y:y + H * scale, x + 2 * t * scale:x + 2 * t * scale + W * scale] for t in range(T)]


def _flicker(frames: list[np.ndarray], amount: float, seed: int = 1) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    return [np.clip(f + amount * rng.standard_normal(), 0, 1) for f in frames]


def test_perfect_translation_is_near_zero(texture):
    frames = _pan(texture)
    assert warping_error(frames) < 1e-3
    uint8 = [np.rint(f * 255).astype(np.uint8) for f in frames]
    assert warping_error(uint8) < 2e-3


def test_upscaled_translation_uses_the_input_flow(texture):
    lr, hr = _pan(texture), _pan(texture, scale=4)
    assert warping_error(hr, lr) < 1e-3


def test_grows_with_flicker(texture):
    frames = _pan(texture)
    errors = [warping_error(_flicker(frames, a)) for a in (0.0, 0.01, 0.03, 0.1)]
    assert errors == sorted(errors) and errors[-1] > 10 * errors[1] > 10 * errors[0]
    hr = _pan(texture, scale=4)
    assert warping_error(_flicker(hr, 0.03), frames) > 20 * warping_error(hr, frames)


def test_streaming_equals_sequence_and_bad_input(texture):
    frames = _pan(texture)
    meter = WarpingError()
    assert meter.update(frames[0]) is None and np.isnan(meter.value)
    for f in frames[1:]:
        meter.update(f)
    assert meter.pairs == T - 1 and meter.value == warping_error(frames)
    with pytest.raises(ShapeError):
        warping_error([np.zeros((48, 64)), np.zeros((48, 64))], [np.zeros((20, 30)), np.zeros((20, 30))])
