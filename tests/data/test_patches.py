import numpy as np
import pytest
import torch

from srkit.data.patches import (
    ContentSampler,
    dihedral,
    dihedral_inverse,
    random_patch,
    sliding_patches,
    texture_energy,
)
from srkit.errors import ConfigError, ShapeError


def test_random_patch_uniform_and_in_range():
    rng = np.random.default_rng(0)
    pos = np.array([random_patch(rng, 10, 7, 4) for _ in range(4000)])
    assert pos[:, 0].min() == 0 and pos[:, 0].max() == 6
    assert pos[:, 1].min() == 0 and pos[:, 1].max() == 3
    counts = np.bincount(pos[:, 0], minlength=7)
    assert counts.min() > 0.7 * 4000 / 7  # roughly uniform
    assert random_patch(np.random.default_rng(0), 4, 4, 4) == (0, 0)
    with pytest.raises(ShapeError):
        random_patch(rng, 3, 10, 4)
    with pytest.raises(ConfigError):
        random_patch(rng, 10, 10, 0)


def test_random_patch_reproducible():
    a = [random_patch(np.random.default_rng(5), 50, 60, 8) for _ in range(3)]
    assert a[0] == a[1] == a[2]


def test_sliding_patches_cover_and_flush():
    pos = sliding_patches(10, 13, 4, 3)
    tops = sorted({t for t, _ in pos})
    lefts = sorted({lft for _, lft in pos})
    assert tops == [0, 3, 6] and lefts == [0, 3, 6, 9]
    assert len(pos) == 12 and pos[0] == (0, 0) and pos[-1] == (6, 9)
    covered = np.zeros((10, 13), bool)
    for t, lft in pos:
        covered[t : t + 4, lft : lft + 4] = True
    assert covered.all()
    # stride that does not land on the border adds one flush window
    assert sorted({t for t, _ in sliding_patches(11, 4, 4, 4)}) == [0, 4, 7]
    assert sliding_patches(4, 4, 4, 1) == [(0, 0)]


def test_texture_energy_flat_edge_and_inputs():
    flat = np.full((8, 9, 3), 77, np.uint8)
    e = texture_energy(flat)
    assert e.shape == (8, 9) and e.dtype == np.float64 and np.all(e == 0)
    step = np.zeros((6, 8), np.uint8)
    step[:, 4:] = 255
    e = texture_energy(step, radius=0)
    np.testing.assert_allclose(e[:, 3], 4 * 255)
    np.testing.assert_allclose(e[:, 4], 4 * 255)
    assert np.all(e[:, :2] == 0) and np.all(e[:, 6:] == 0)
    # colour = luma-weighted; uint16/float on the same scale; alpha ignored
    rgb = np.repeat(step[..., None], 3, axis=2)
    np.testing.assert_allclose(texture_energy(rgb), texture_energy(step), atol=1e-9)
    np.testing.assert_allclose(texture_energy(step.astype(np.uint16) * 257), texture_energy(step), atol=1e-9)
    np.testing.assert_allclose(texture_energy(step / 255.0), texture_energy(step), atol=1e-9)
    rgba = np.concatenate([rgb, np.zeros_like(rgb[..., :1])], axis=2)
    np.testing.assert_allclose(texture_energy(rgba), texture_energy(step), atol=1e-9)
    # flat area after texture: the integral image must not leave negative round-off
    tex = np.full((40, 40, 3), 128, np.uint8)
    tex[:20, :20] = np.random.default_rng(0).integers(0, 256, (20, 20, 3))
    e = texture_energy(tex)
    assert e.min() == 0 and np.all(e[25:, 25:] == 0)
    ContentSampler.from_energy(e, 8)
    with pytest.raises(ShapeError):
        texture_energy(np.zeros((4, 4, 5), np.uint8))
    with pytest.raises(ShapeError):
        texture_energy(np.zeros((4, 4), np.int32))


def _half_noise(rng: np.random.Generator) -> np.ndarray:
    img = np.full((64, 128, 3), 128, np.uint8)
    img[:, 64:] = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
    return img


def test_content_sampler_prefers_texture_but_draws_flat():
    img = _half_noise(np.random.default_rng(0))
    cs = ContentSampler.from_energy(texture_energy(img), 16)
    assert cs.stride == 4 and cs.max_top == 48 and cs.max_left == 112
    np.testing.assert_allclose(cs.probs.sum(), 1.0)
    rng = np.random.default_rng(1)
    pos = np.array([cs.sample(rng) for _ in range(3000)])
    assert pos[:, 0].min() >= 0 and pos[:, 0].max() <= 48
    assert pos[:, 1].min() >= 0 and pos[:, 1].max() <= 112
    centre_x = pos[:, 1] + 8
    assert np.mean(centre_x >= 64) > 0.7
    fully_flat = np.mean(pos[:, 1] + 16 <= 62)  # away from the step's edge response too
    assert 0.02 < fully_flat < 0.3
    # jitter reaches off-grid positions
    assert np.any(pos[:, 1] % 4 != 0)


def test_content_sampler_flat_image_is_uniform_and_mix_one_is_uniform():
    cs = ContentSampler.from_energy(np.zeros((20, 30)), 8, stride=2)
    np.testing.assert_allclose(cs.probs, 1.0 / len(cs.probs))
    img = _half_noise(np.random.default_rng(2))
    cs1 = ContentSampler.from_energy(texture_energy(img), 16, mix=1.0)
    np.testing.assert_allclose(cs1.probs, 1.0 / len(cs1.probs))
    cs0 = ContentSampler.from_energy(texture_energy(img), 16, mix=0.0)
    flat = cs0.positions[:, 1] + 16 <= 62
    assert np.all(cs0.probs[flat] == 0)


def test_content_sampler_window_sums_match_brute_force():
    e = np.random.default_rng(3).random((13, 17))
    cs = ContentSampler.from_energy(e, 5, stride=3, mix=0.0)
    sums = np.array([e[t : t + 5, lft : lft + 5].sum() for t, lft in cs.positions])
    np.testing.assert_allclose(cs.probs, sums / sums.sum())
    assert [tuple(p) for p in cs.positions] == sliding_patches(13, 17, 5, 3)


def test_content_sampler_errors():
    with pytest.raises(ShapeError):
        ContentSampler.from_energy(np.zeros((4, 4)), 5)
    with pytest.raises(ShapeError):
        ContentSampler.from_energy(-np.ones((8, 8)), 4)
    with pytest.raises(ConfigError):
        ContentSampler.from_energy(np.ones((8, 8)), 4, mix=1.5)


def test_dihedral_eight_distinct_and_invertible():
    x = np.random.default_rng(0).integers(0, 256, (5, 5, 3), dtype=np.uint8)
    outs = [dihedral(x, k) for k in range(8)]
    assert len({o.tobytes() for o in outs}) == 8
    assert np.array_equal(outs[0], x)
    for k, o in enumerate(outs):
        assert o.flags.c_contiguous
        assert np.array_equal(dihedral_inverse(o, k), x)
    # rectangular: odd rotations swap H and W
    r = np.zeros((3, 4))
    assert dihedral(r, 1).shape == (4, 3) and dihedral(r, 6).shape == (3, 4)
    with pytest.raises(ConfigError):
        dihedral(x, 8)


def test_dihedral_torch_matches_numpy():
    x = np.random.default_rng(1).random((4, 6, 2))
    t = torch.from_numpy(x.transpose(2, 0, 1).copy())[None]  # (1, C, H, W)
    for k in range(8):
        got = dihedral(t, k)[0].numpy().transpose(1, 2, 0)
        np.testing.assert_array_equal(got, dihedral(x, k))
        np.testing.assert_array_equal(dihedral_inverse(dihedral(t, k), k).numpy(), t.numpy())


def test_dihedral_keeps_lr_hr_crops_aligned():
    s, p = 3, 4
    lr = np.random.default_rng(2).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    hr = lr.repeat(s, axis=0).repeat(s, axis=1)  # upscale-aligned: HR pixel (y, x) <- LR (y // s, x // s)
    top, left = 2, 5
    lr_p = lr[top : top + p, left : left + p]
    hr_p = hr[top * s : (top + p) * s, left * s : (left + p) * s]
    for k in range(8):
        up = dihedral(lr_p, k).repeat(s, axis=0).repeat(s, axis=1)
        np.testing.assert_array_equal(up, dihedral(hr_p, k))
