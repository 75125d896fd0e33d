"""Tests of srkit.ops.resize: MATLAB-exact imresize (numpy and torch)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srkit.errors import ConfigError, ShapeError
from srkit.ops.resize import (
    MatlabResize,
    imresize_matlab,
    resize_contributions,
    resize_kernel_names,
)

KERNELS = ("cubic", "lanczos2", "lanczos3", "linear", "triangle", "box", "nearest")
CONVENTIONS = ("modern", "legacy")


def _rng(seed: int = 0) -> np.random.Generator:
    return np.random.default_rng(seed)


def _read(path: Path) -> np.ndarray:
    return np.asarray(Image.open(path))


def _modcrop(img: np.ndarray, s: int) -> np.ndarray:
    h, w = img.shape[:2]
    return img[: h - h % s, : w - w % s]


# --------------------------------------------------------------------------------------
# MATLAB-made oracle images
# --------------------------------------------------------------------------------------

_LEGACY_COUNTS = {"Set5": 5, "Set14": 14, "B100": 100}


@pytest.mark.data
@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("set_name", ["Set5", "Set14", "B100"])
def test_legacy_reproduces_selfexsr_lr_bit_exact(data_dir: Path, set_name: str, scale: int) -> None:
    lr_dir = data_dir / set_name / "LR_bicubic" / f"X{scale}"
    files = sorted(lr_dir.glob(f"*x{scale}.png"))
    assert len(files) == _LEGACY_COUNTS[set_name], f"unexpected file count in {lr_dir}"
    mismatched = []
    for lr_path in files:
        name = lr_path.name[: -len(f"x{scale}.png")]
        hr = _modcrop(_read(data_dir / set_name / "HR" / f"{name}.png"), scale)
        lr = _read(lr_path)
        out = imresize_matlab(hr, 1 / scale, convention="legacy")
        assert out.dtype == np.uint8
        if out.shape != lr.shape or not np.array_equal(out, lr):
            mismatched.append(name)
    print(f"{set_name} X{scale}: {len(files) - len(mismatched)}/{len(files)} bit-exact (legacy)")
    assert not mismatched, f"{set_name} X{scale}: not bit-exact: {mismatched}"


def _alt_dirs(data_dir: Path) -> list[Path]:
    dirs = []
    for set_name in ("Set5", "Set14"):
        root = data_dir / set_name / "alt_BasicSR_GTmod12" / "LR_bicubic"
        for s in (2, 4):
            if (root / f"X{s}").is_dir():
                dirs.append(root / f"X{s}")
    return dirs


@pytest.mark.data
def test_modern_reproduces_basicsr_gtmod12_lr(data_dir: Path) -> None:
    dirs = _alt_dirs(data_dir)
    assert dirs, "no alt_BasicSR_GTmod12 folders found"
    n_files = n_exact_files = n_px = n_diff = 0
    worst = 0
    for lr_dir in dirs:
        set_name = lr_dir.parents[2].name
        s = int(lr_dir.name[1:])
        for lr_path in sorted(lr_dir.glob(f"*x{s}.png")):
            name = lr_path.name[: -len(f"x{s}.png")]
            hr = _read(data_dir / set_name / "HR" / f"{name}.png")
            if hr.ndim == 2:  # Set14 bridge is grayscale; GTmod12 expanded it to 3 channels
                hr = np.repeat(hr[:, :, None], 3, axis=2)
            hr = _modcrop(hr, 12)
            lr = _read(lr_path)
            out = imresize_matlab(hr, 1 / s, convention="modern")
            assert out.shape == lr.shape, (set_name, name, out.shape, lr.shape)
            d = np.abs(out.astype(np.int64) - lr.astype(np.int64))
            worst = max(worst, int(d.max()))
            n_files += 1
            n_exact_files += int(d.max() == 0)
            n_px += d.size
            n_diff += int(np.count_nonzero(d))
    frac = 1.0 - n_diff / n_px
    print(
        f"modern vs BasicSR GTmod12: {n_exact_files}/{n_files} files exact, "
        f"{frac:.6%} of values exact ({n_diff} of {n_px} differ), max diff {worst}"
    )
    assert n_files == 24
    assert worst <= 1
    assert frac >= 0.999


# --------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("hw", "scale", "expected"),
    [
        ((7, 5), 2, (14, 10)),
        ((7, 5), 1.7, (12, 9)),  # ceil(11.9), ceil(8.5)
        ((7, 5), 0.37, (3, 2)),  # ceil(2.59), ceil(1.85)
        ((9, 9), 1 / 3, (3, 3)),
        ((10, 11), 0.25, (3, 3)),  # ceil(2.5), ceil(2.75)
        ((6, 8), (0.5, 2.0), (3, 16)),
        ((6, 8), (1.5, 0.25), (9, 2)),
    ],
)
def test_output_size_is_matlab_ceil(hw, scale, expected) -> None:
    x = _rng().random((*hw, 3))
    assert imresize_matlab(x, scale).shape == (*expected, 3)
    t = torch.from_numpy(x).permute(2, 0, 1)
    assert tuple(imresize_matlab(t, scale).shape) == (3, *expected)


def test_output_shape_argument() -> None:
    x = _rng().random((13, 17))
    out = imresize_matlab(x, output_shape=(5, 30))
    assert out.shape == (5, 30)
    # Same as giving the exact per-axis scales out/in.
    ref = imresize_matlab(x, (5 / 13, 30 / 17))
    assert ref.shape == (5, 30)
    np.testing.assert_array_equal(out, ref)


def test_per_axis_scales_match_two_single_axis_resizes() -> None:
    x = _rng(1).random((12, 10))
    both = imresize_matlab(x, (0.5, 2.0))
    # scale 1 on an axis is an exact identity for cubic, so this applies the axes one by one
    steps = imresize_matlab(imresize_matlab(x, (0.5, 1.0)), (1.0, 2.0))
    np.testing.assert_allclose(both, steps, rtol=0, atol=1e-12)


def test_smaller_scale_axis_is_resized_first() -> None:
    # With legacy uint8 rounding after each pass the order of the passes is observable.
    x = _rng(2).integers(0, 256, (40, 36), dtype=np.uint8)
    for scale in [(2.0, 0.5), (0.5, 2.0), (0.75, 0.75)]:
        out = imresize_matlab(x, scale, convention="legacy")
        rows_first = imresize_matlab(
            imresize_matlab(x, (scale[0], 1.0), convention="legacy"), (1.0, scale[1]), convention="legacy"
        )
        cols_first = imresize_matlab(
            imresize_matlab(x, (1.0, scale[1]), convention="legacy"), (scale[0], 1.0), convention="legacy"
        )
        expected = rows_first if scale[0] <= scale[1] else cols_first
        other = cols_first if scale[0] <= scale[1] else rows_first
        np.testing.assert_array_equal(out, expected)
        assert not np.array_equal(out, other)  # the test would be vacuous otherwise


# --------------------------------------------------------------------------------------
# Values
# --------------------------------------------------------------------------------------


def test_hand_computed_value_upscale_x2() -> None:
    # Output row 3 (1-based) at scale 2: u = 3/2 + 0.5*(1 - 1/2) = 1.75; taps at input rows
    # -1..4 with distances 2.75, 1.75, 0.75, -0.25, -1.25, -2.25. Keys cubic (a = -0.5):
    # k(1.75) = -0.5*1.75^3 + 2.5*1.75^2 - 4*1.75 + 2 = -0.0234375
    # k(0.75) = 1.5*0.75^3 - 2.5*0.75^2 + 1          =  0.2265625
    # k(0.25) = 1.5*0.25^3 - 2.5*0.25^2 + 1          =  0.8671875
    # k(1.25) = -0.5*1.25^3 + 2.5*1.25^2 - 5 + 2     = -0.0703125, k(2.75) = k(2.25) = 0
    # Row 0 maps to row 1 under both the mirror and the clamp rule.
    col = np.array([10.0, 20.0, 40.0, 80.0, 160.0, 320.0])
    expected = (-0.0234375 + 0.2265625) * 10 + 0.8671875 * 20 - 0.0703125 * 40  # = 16.5625
    assert expected == 16.5625
    for convention in CONVENTIONS:
        out = imresize_matlab(np.repeat(col[:, None], 3, axis=1), (2.0, 1.0), convention=convention)
        assert out.shape == (12, 3)
        np.testing.assert_allclose(out[2], expected, rtol=0, atol=1e-12)
    idx, w = resize_contributions(6, 12, 2.0, "cubic")
    row = dict()
    for i, wt in zip(idx[2], w[2]):
        row[int(i)] = row.get(int(i), 0.0) + float(wt)
    # (the all-zero outer tap columns are dropped, as MATLAB does)
    assert row == pytest.approx({0: 0.203125, 1: 0.8671875, 2: -0.0703125}, abs=1e-15)


def test_ramp_interior_follows_direct_formula() -> None:
    # Keys cubic reproduces linear functions, so inside the image an upscaled ramp equals the
    # ramp evaluated at the mapped coordinate u = x/scale + 0.5*(1 - 1/scale) (1-based).
    n = 40
    ramp = np.arange(n, dtype=np.float64)  # value at 1-based position i is i - 1
    img = np.tile(ramp, (2, 1))  # (2, n): a 1-D-ish image, resized along the width
    for scale in (2.0, 3.0, 1.7):
        out = imresize_matlab(img, (1.0, scale))
        x = np.arange(1, out.shape[1] + 1)
        u = x / scale + 0.5 * (1 - 1 / scale)
        inner = (u > 3) & (u < n - 2)
        np.testing.assert_allclose(out[0, inner], u[inner] - 1, rtol=0, atol=1e-10)
    # Downscale by 2 (antialiased): taps are symmetric around u = 2x - 0.5, so the interior of the
    # ramp is again exact: value u - 1 = 2x - 1.5.
    out = imresize_matlab(img, (1.0, 0.5))
    x = np.arange(1, out.shape[1] + 1)
    inner = (x > 3) & (x < n // 2 - 3)
    np.testing.assert_allclose(out[0, inner], 2 * x[inner] - 1.5, rtol=0, atol=1e-10)


def test_nearest_downscale_by_two_picks_every_second_pixel() -> None:
    x = _rng(3).integers(0, 256, (10, 12, 3), dtype=np.uint8)
    out = imresize_matlab(x, 0.5, kernel="nearest")
    np.testing.assert_array_equal(out, x[1::2, 1::2])
    # antialias has no effect on 'nearest' (MATLAB never antialiases it)
    np.testing.assert_array_equal(imresize_matlab(x, 0.5, kernel="nearest", antialias=False), out)


def test_nearest_upscale_repeats_pixels() -> None:
    x = _rng(4).random((4, 5))
    out = imresize_matlab(x, 3, kernel="nearest")
    np.testing.assert_array_equal(out, np.repeat(np.repeat(x, 3, axis=0), 3, axis=1))


@pytest.mark.parametrize("kernel", KERNELS)
def test_identity_scale_returns_input(kernel: str) -> None:
    xf = _rng(5).random((9, 11, 3))
    xu = _rng(6).integers(0, 256, (9, 11, 3), dtype=np.uint8)
    for convention in CONVENTIONS:
        np.testing.assert_allclose(imresize_matlab(xf, 1, kernel=kernel, convention=convention), xf, atol=1e-12)
        np.testing.assert_array_equal(imresize_matlab(xu, 1.0, kernel=kernel, convention=convention), xu)


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("kernel", KERNELS)
def test_constant_image_stays_constant(kernel: str, convention: str) -> None:
    for scale in (0.25, 1 / 3, 0.37, 0.5, 1.7, 2, 3, (0.6, 1.3)):
        xf = np.full((13, 10, 2), 0.731)
        out = imresize_matlab(xf, scale, kernel=kernel, convention=convention)
        np.testing.assert_allclose(out, 0.731, rtol=0, atol=1e-12)
        xu = np.full((13, 10), 200, dtype=np.uint8)
        np.testing.assert_array_equal(imresize_matlab(xu, scale, kernel=kernel, convention=convention), 200)
        for aa in (True, False):
            idx, w = resize_contributions(13, 5, 5 / 13, kernel, aa, convention)
            np.testing.assert_allclose(w.sum(axis=1), 1.0, rtol=0, atol=1e-12)
            assert idx.min() >= 0 and idx.max() <= 12


def test_contributions_are_cached_and_read_only() -> None:
    a = resize_contributions(100, 25, 0.25, "cubic", True, "modern")
    b = resize_contributions(100, 25, 0.25, "cubic", True, "modern")
    assert a[0] is b[0] and a[1] is b[1]
    assert a[0].dtype == np.int64 and a[1].dtype == np.float64
    # P = ceil(4 / 0.25) + 2 = 18 taps, less the two outer columns that are zero for every output
    assert a[0].shape == a[1].shape == (25, 16)
    c = resize_contributions(100, 27, 0.27, "cubic", True, "modern")
    assert c[0].shape[0] == 27 and math.ceil(4 / 0.27) <= c[0].shape[1] <= math.ceil(4 / 0.27) + 2
    assert np.all(np.any(c[1] != 0, axis=0))
    with pytest.raises(ValueError):
        a[1][0, 0] = 1.0
    # Boundary rules: mirror vs clamp
    m_idx, _ = resize_contributions(5, 10, 2.0, "cubic", True, "modern")
    l_idx, _ = resize_contributions(5, 10, 2.0, "cubic", True, "legacy")
    assert m_idx[0].tolist() == [1, 0, 0, 1]  # taps -1, 0, 1, 2 (0-based) -> mirror 1, 0, 0, 1
    assert l_idx[0].tolist() == [0, 0, 0, 1]


def test_float_and_uint8_consistent() -> None:
    x = _rng(7).integers(0, 256, (31, 27, 3), dtype=np.uint8)
    for scale in (0.25, 0.5, 1 / 3, 1.7, 2.0):
        # uint8 in the modern convention is im2double -> imresize -> im2uint8, as MATLAB scripts do it
        f = imresize_matlab(x.astype(np.float64) / 255, scale) * 255
        u = imresize_matlab(x, scale)
        np.testing.assert_array_equal(u, np.clip(np.floor(f + 0.5), 0, 255).astype(np.uint8))
        # float32 input: float32 output, values close to the float64 computation
        f32 = imresize_matlab(x.astype(np.float32) / 255, scale)
        assert f32.dtype == np.float32
        np.testing.assert_allclose(f32, f / 255, rtol=0, atol=1e-6)


def test_uint16_supported() -> None:
    x = _rng(8).integers(0, 65536, (20, 18), dtype=np.uint16)
    out = imresize_matlab(x, 0.5)
    assert out.dtype == np.uint16 and out.shape == (10, 9)
    f = imresize_matlab(x.astype(np.float64), 0.5)
    np.testing.assert_array_equal(out, np.clip(np.floor(f + 0.5), 0, 65535).astype(np.uint16))


def test_float_output_not_clipped() -> None:
    x = np.zeros((16, 16))
    x[:, 8:] = 1.0  # a hard edge: cubic overshoots on both sides
    out = imresize_matlab(x, 2.0)
    assert out.min() < 0.0 and out.max() > 1.0


def test_legacy_uint8_rounds_each_pass() -> None:
    x = _rng(9).integers(0, 256, (64, 64, 3), dtype=np.uint8)
    out = imresize_matlab(x, 0.5, convention="legacy")
    rows = imresize_matlab(x, (0.5, 1.0), convention="legacy")
    np.testing.assert_array_equal(out, imresize_matlab(rows, (1.0, 0.5), convention="legacy"))
    # float input with the legacy convention: no rounding, only the clamp boundary
    f = imresize_matlab(x.astype(np.float64), 0.5, convention="legacy")
    assert not np.array_equal(f, np.round(f))


# --------------------------------------------------------------------------------------
# torch
# --------------------------------------------------------------------------------------

_TORCH_SCALES = (0.25, 1 / 3, 0.37, 0.5, 1.7, 2.0, 3.0, (0.5, 1.5))


@pytest.mark.parametrize("convention", CONVENTIONS)
@pytest.mark.parametrize("kernel", ["cubic", "lanczos3", "linear", "box"])
def test_torch_matches_numpy_float64(kernel: str, convention: str) -> None:
    x = _rng(10).random((2, 3, 23, 19))
    t = torch.from_numpy(x)
    for scale in _TORCH_SCALES:
        out_t = imresize_matlab(t, scale, kernel=kernel, convention=convention)
        assert out_t.dtype == torch.float64
        for b in range(2):
            ref = imresize_matlab(x[b].transpose(1, 2, 0), scale, kernel=kernel, convention=convention)
            np.testing.assert_allclose(out_t[b].numpy().transpose(1, 2, 0), ref, rtol=0, atol=1e-10)
        # 2-D (H, W) tensor
        out2 = imresize_matlab(t[0, 0], scale, kernel=kernel, convention=convention)
        ref2 = imresize_matlab(x[0, 0], scale, kernel=kernel, convention=convention)
        np.testing.assert_allclose(out2.numpy(), ref2, rtol=0, atol=1e-10)


def test_torch_float32_and_leading_dims() -> None:
    x = _rng(11).random((2, 2, 3, 16, 12)).astype(np.float32)
    out = imresize_matlab(torch.from_numpy(x), 0.5)
    assert out.dtype == torch.float32 and tuple(out.shape) == (2, 2, 3, 8, 6)
    ref = imresize_matlab(x[1, 0, 2].astype(np.float64), 0.5)
    np.testing.assert_allclose(out[1, 0, 2].numpy(), ref, rtol=0, atol=1e-5)


def test_torch_output_shape_and_module() -> None:
    x = torch.from_numpy(_rng(12).random((2, 3, 20, 16)))
    assert tuple(imresize_matlab(x, output_shape=(7, 33)).shape) == (2, 3, 7, 33)
    m = MatlabResize(0.25)
    out = m(x)
    assert tuple(out.shape) == (2, 3, 5, 4)
    torch.testing.assert_close(out, imresize_matlab(x, 0.25), rtol=0, atol=0)
    assert list(m.parameters()) == []
    assert "cubic" in repr(m)
    m2 = MatlabResize((2.0, 0.5), kernel="lanczos2", convention="legacy")
    torch.testing.assert_close(
        m2(x), imresize_matlab(x, (2.0, 0.5), kernel="lanczos2", convention="legacy"), rtol=0, atol=0
    )
    with pytest.raises(ShapeError):
        m(x[0])
    with pytest.raises(ConfigError):
        MatlabResize(0.0)
    with pytest.raises(ConfigError):
        MatlabResize(0.5, kernel="gaussian")


@pytest.mark.parametrize("scale", [0.5, 2.0, (0.6, 1.5)])
def test_torch_gradcheck(scale) -> None:
    x = torch.from_numpy(_rng(13).random((1, 2, 6, 5))).requires_grad_(True)
    assert torch.autograd.gradcheck(lambda t: imresize_matlab(t, scale), (x,))


def test_torch_gradient_flows_float32() -> None:
    x = torch.rand(1, 3, 12, 12, requires_grad=True)
    imresize_matlab(x, 0.25).sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    # each output sums its weights to 1, so d(sum out)/d(sum in) adds up to the output count
    assert float(x.grad.sum()) == pytest.approx(3 * 3 * 3, rel=1e-5)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_cuda_matches_cpu() -> None:
    x = torch.rand(2, 3, 37, 29, dtype=torch.float64)
    for scale in (0.25, 1 / 3, 2.0):
        out = imresize_matlab(x.cuda(), scale)
        assert out.is_cuda
        torch.testing.assert_close(out.cpu(), imresize_matlab(x, scale), rtol=0, atol=1e-10)


# --------------------------------------------------------------------------------------
# Errors and misc
# --------------------------------------------------------------------------------------


def test_kernel_names() -> None:
    names = resize_kernel_names()
    for k in KERNELS:
        assert k in names
    x = _rng(14).random((8, 8))
    np.testing.assert_array_equal(imresize_matlab(x, 0.5, kernel="bicubic"), imresize_matlab(x, 0.5))


def test_bad_inputs_raise() -> None:
    x = np.zeros((8, 8, 3), dtype=np.uint8)
    with pytest.raises(ShapeError):
        imresize_matlab(np.zeros((1, 8, 8, 3), dtype=np.uint8), 0.5)
    with pytest.raises(ShapeError):
        imresize_matlab(np.zeros(8), 0.5)
    with pytest.raises(ShapeError):
        imresize_matlab(np.zeros((8, 8), dtype=np.int32), 0.5)
    with pytest.raises(ShapeError):
        imresize_matlab(np.zeros((0, 8)), 0.5)
    with pytest.raises(ShapeError):
        imresize_matlab([[1.0, 2.0]], 0.5)
    with pytest.raises(ShapeError):
        imresize_matlab(torch.zeros(8, 8, dtype=torch.uint8), 0.5)
    with pytest.raises(ShapeError):
        imresize_matlab(torch.zeros(8), 0.5)
    for bad in (0, -0.5, float("nan"), float("inf"), "2", (0.5,), (0.5, 0.0), True):
        with pytest.raises(ConfigError):
            imresize_matlab(x, bad)
    with pytest.raises(ConfigError):
        imresize_matlab(x)
    with pytest.raises(ConfigError):
        imresize_matlab(x, 0.5, output_shape=(4, 4))
    for bad_shape in ((0, 4), (4,), (4.0, 4), (-1, 3)):
        with pytest.raises(ConfigError):
            imresize_matlab(x, output_shape=bad_shape)
    with pytest.raises(ConfigError):
        imresize_matlab(x, 0.5, kernel="gaussian")
    with pytest.raises(ConfigError):
        imresize_matlab(x, 0.5, convention="matlab2009")
    # ShapeError is a ValueError
    with pytest.raises(ValueError):
        imresize_matlab(np.zeros((1, 2, 3, 4)), 0.5)


def test_large_width_uses_no_dense_matrix() -> None:
    # an 8000 px wide row would need a 8000 x 2000 dense matrix per axis; the tap tables are small
    idx, w = resize_contributions(8000, 2000, 0.25, "cubic", True, "modern")
    assert idx.shape[0] == 2000 and idx.shape[1] <= 18
    x = _rng(15).random((2, 8000))
    out = imresize_matlab(x, (1.0, 0.25))
    assert out.shape == (2, 2000)
    assert math.isfinite(float(out.sum()))


@pytest.mark.parametrize("convention", ["modern", "legacy"])
@pytest.mark.parametrize("kernel", ["cubic", "lanczos3", "linear", "nearest", "box"])
def test_integer_upscale_fast_path_equals_gather(kernel, convention):
    # The polyphase fast path (integer upscales of torch tensors) must use exactly the general path's taps.
    from srkit.ops.resize import _contributions_cached, _resize_axis_torch

    g = torch.Generator().manual_seed(0)
    for h, w, s in [(1, 1, 2), (2, 3, 3), (5, 4, 4), (17, 9, 2), (31, 40, 3), (8, 64, 8)]:
        x = torch.rand(2, h, w, generator=g, dtype=torch.float64)
        fast = imresize_matlab(x, float(s), kernel=kernel, convention=convention)
        ref = x
        for dim, n in ((1, h), (2, w)):  # same axis order as imresize_matlab for equal scales: rows first
            idx, wts = _contributions_cached(n, s * n, float(s), kernel, True, convention)
            ref = _resize_axis_torch(ref, dim, idx, wts)
        assert fast.shape == ref.shape == (2, s * h, s * w)
        assert (fast - ref).abs().max().item() < 1e-12, (h, w, s)


@pytest.mark.parametrize("scale", [2, 3, 4, 8])
def test_upscale_cubic_is_imresize_matlab_bit_for_bit(scale):
    from srkit.ops.resize import upscale_cubic

    g = torch.Generator().manual_seed(scale)
    for h, w in [(1, 1), (1, 5), (2, 2), (3, 7), (4, 3), (9, 16), (33, 6)]:
        for dtype in (torch.float32, torch.float64, torch.bfloat16):
            x = torch.rand(2, 3, h, w, generator=g).to(dtype)
            y = upscale_cubic(x, scale)
            assert y.dtype == dtype and torch.equal(y, imresize_matlab(x, float(scale))), (h, w, dtype)


def test_upscale_cubic_traces_into_one_graph():
    # What lets `torch.compile` fuse a Y-channel model's chroma upscale with its colour conversion: no numpy at
    # trace time, no graph break (backend="eager" traces with Dynamo without compiling anything).
    from srkit.ops.resize import upscale_cubic

    traced = torch.compile(lambda t: upscale_cubic(t, 4), backend="eager", fullgraph=True, dynamic=False)
    x = torch.rand(1, 2, 11, 7)
    assert torch.equal(traced(x), imresize_matlab(x, 4.0))
