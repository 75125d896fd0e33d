import numpy as np
import pytest
import torch
from skimage.color import rgb2ycbcr

from srkit.errors import ShapeError
from srkit.ops import rgb_to_ycbcr, ycbcr_to_rgb


def test_known_values_studio_swing():
    px = np.array([[[255, 255, 255], [0, 0, 0], [255, 0, 0]]], np.uint8)
    ycc = rgb_to_ycbcr(px)
    np.testing.assert_allclose(ycc[0, 0], [235, 128, 128], atol=1e-9)
    np.testing.assert_allclose(ycc[0, 1], [16, 128, 128], atol=1e-9)
    np.testing.assert_allclose(ycc[0, 2], [16 + 65.481, 128 - 37.797, 128 + 112], atol=1e-9)


def test_matches_scikit_image_and_float_scale():
    rgb = np.random.default_rng(0).integers(0, 256, (7, 9, 3), dtype=np.uint8)
    ref = rgb2ycbcr(rgb)  # MATLAB's matrix, 0..255 scale
    np.testing.assert_allclose(rgb_to_ycbcr(rgb), ref, atol=1e-9)
    np.testing.assert_allclose(rgb_to_ycbcr(rgb.astype(np.float64) / 255) * 255, ref, atol=1e-9)
    np.testing.assert_allclose(rgb_to_ycbcr(rgb, y_only=True), ref[..., 0], atol=1e-9)


def test_round_trip_numpy_and_torch():
    x = np.random.default_rng(1).random((5, 6, 3))
    np.testing.assert_allclose(ycbcr_to_rgb(rgb_to_ycbcr(x)), x, atol=1e-12)
    t = torch.from_numpy(x.transpose(2, 0, 1))[None]
    ycc_t = rgb_to_ycbcr(t)
    np.testing.assert_allclose(ycc_t[0].numpy().transpose(1, 2, 0), rgb_to_ycbcr(x), atol=1e-12)
    np.testing.assert_allclose(ycbcr_to_rgb(ycc_t).numpy(), t.numpy(), atol=1e-12)
    assert rgb_to_ycbcr(t, y_only=True).shape == (1, 1, 5, 6)


def test_bad_shapes():
    with pytest.raises(ShapeError):
        rgb_to_ycbcr(np.zeros((4, 4, 4)))
    with pytest.raises(ShapeError):
        rgb_to_ycbcr(torch.zeros(1, 4, 4, 4))


def test_luma_chroma_to_rgb_equals_ycbcr_to_rgb_of_the_concatenation():
    from srkit.ops.color import luma_chroma_to_rgb

    g = torch.Generator().manual_seed(0)
    y = torch.rand(2, 1, 7, 9, generator=g, dtype=torch.float64)
    cbcr = torch.rand(2, 2, 7, 9, generator=g, dtype=torch.float64)
    ref = ycbcr_to_rgb(torch.cat([y, cbcr], dim=1))
    assert (luma_chroma_to_rgb(y, cbcr) - ref).abs().max().item() < 1e-12
    with pytest.raises(ShapeError):
        luma_chroma_to_rgb(cbcr, y)
