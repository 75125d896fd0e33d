"""Tests of srkit.degrade.jpeg: libjpeg through Pillow, and the differentiable approximation that tracks it."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from srkit.degrade.jpeg import jpeg_bytes, jpeg_differentiable, jpeg_libjpeg, quantization_tables
from srkit.errors import ConfigError, ShapeError

# ITU-T T.81 Annex K.1, tables K.1 and K.2, natural order (typed in again here, independently of the module).
ANNEX_K_LUMA = np.array(
    [
        [16, 11, 10, 16, 24, 40, 51, 61],
        [12, 12, 14, 19, 26, 58, 60, 55],
        [14, 13, 16, 24, 40, 57, 69, 56],
        [14, 17, 22, 29, 51, 87, 80, 62],
        [18, 22, 37, 56, 68, 109, 103, 77],
        [24, 35, 55, 64, 81, 104, 113, 92],
        [49, 64, 78, 87, 103, 121, 120, 101],
        [72, 92, 95, 98, 112, 100, 103, 99],
    ]
)
ANNEX_K_CHROMA = np.array(
    [
        [17, 18, 24, 47, 99, 99, 99, 99],
        [18, 21, 26, 66, 99, 99, 99, 99],
        [24, 26, 56, 99, 99, 99, 99, 99],
        [47, 66, 99, 99, 99, 99, 99, 99],
    ]
    + [[99] * 8] * 4
)
# Acceptance bound of the issue: libjpeg vs differentiable, mean PSNR over Set14 at each quality.
AGREEMENT_DB = 34.0


def _psnr(a: torch.Tensor, b: torch.Tensor) -> float:
    mse = float(((a.double() - b.double()) ** 2).mean())
    return float("inf") if mse == 0 else 10.0 * np.log10(1.0 / mse)


def _smooth(h: int = 64, w: int = 64, seed: int = 0, channels: int = 3) -> torch.Tensor:
    """(1, C, H, W) smooth image: random 4x4 RGB bicubic-upscaled, quantised to 8 bits."""
    rng = np.random.default_rng(seed)
    small = Image.fromarray((rng.random((4, 4, 3)) * 255).astype(np.uint8)).resize((w, h), Image.BICUBIC)
    x = torch.from_numpy(np.asarray(small).copy()).permute(2, 0, 1)[None].float() / 255.0
    return x[:, :1] if channels == 1 else x


def _textured(h: int = 64, w: int = 64, seed: int = 1) -> torch.Tensor:
    """(1, 3, H, W) smooth image plus strong 8-bit noise: lots of high-frequency energy."""
    rng = np.random.default_rng(seed)
    noise = torch.from_numpy(rng.normal(0.0, 0.15, (1, 3, h, w))).float()
    return ((_smooth(h, w, seed) + noise).clamp(0, 1) * 255).round() / 255


def _zigzag_to_natural() -> np.ndarray:
    """natural index of each zigzag position (T.81 figure A.6), built from the anti-diagonal walk."""
    cells = [(i, j) for i in range(8) for j in range(8)]
    cells.sort(key=lambda ij: (ij[0] + ij[1], ij[0] if (ij[0] + ij[1]) % 2 else ij[1]))
    return np.array([8 * i + j for i, j in cells])


def _dqt_tables(data: bytes) -> dict[int, np.ndarray]:
    """Quantisation tables of a JPEG file read straight from its DQT segments, as natural-order (8, 8) arrays."""
    zz = _zigzag_to_natural()
    tables: dict[int, np.ndarray] = {}
    pos = 2
    assert data[:2] == b"\xff\xd8"
    while pos < len(data):
        assert data[pos] == 0xFF
        marker, length = data[pos + 1], int.from_bytes(data[pos + 2 : pos + 4], "big")
        if marker == 0xDA:  # start of scan: all tables are before it
            break
        if marker == 0xDB:
            seg, k = data[pos + 4 : pos + 2 + length], 0
            while k < len(seg):
                precision, tid = seg[k] >> 4, seg[k] & 15
                n = 128 if precision else 64
                vals = np.frombuffer(seg[k + 1 : k + 1 + n], dtype=">u2" if precision else np.uint8)
                nat = np.empty(64, dtype=np.int64)
                nat[zz] = vals
                tables[tid] = nat.reshape(8, 8)
                k += 1 + n
        pos += 2 + length
    return tables


# --------------------------------------------------------------------------------------
# quantization_tables
# --------------------------------------------------------------------------------------


def test_tables_q50_are_annex_k_and_q100_all_ones() -> None:
    luma, chroma = quantization_tables(50)
    assert luma.shape == chroma.shape == (8, 8)
    assert luma.dtype == chroma.dtype == np.uint16
    np.testing.assert_array_equal(luma, ANNEX_K_LUMA)
    np.testing.assert_array_equal(chroma, ANNEX_K_CHROMA)
    for t in quantization_tables(100):
        np.testing.assert_array_equal(t, np.ones((8, 8)))


def test_tables_follow_libjpeg_scaling_rule() -> None:
    luma, chroma = quantization_tables(30)  # scale 5000 // 30 = 166 %
    assert luma[0, 0] == (16 * 166 + 50) // 100 == 27
    assert chroma[7, 7] == (99 * 166 + 50) // 100 == 164
    luma, _ = quantization_tables(1)  # scale 5000 %: clipped to baseline's 255
    assert luma.max() == 255 and luma.min() == 255
    luma, _ = quantization_tables(90)  # scale 20 %
    assert luma[0, 1] == (11 * 20 + 50) // 100 == 2
    prev = None
    for q in range(1, 101):
        cur = np.stack(quantization_tables(q)).astype(int)
        assert cur.min() >= 1 and cur.max() <= 255
        if prev is not None:
            assert (cur <= prev).all(), f"tables not monotone at q={q}"
        prev = cur


@pytest.mark.parametrize("bad", [0, 101, 50.5, True, "50"])
def test_tables_reject_bad_quality(bad) -> None:
    with pytest.raises(ConfigError, match=r"jpeg\.quality"):
        quantization_tables(bad)


# --------------------------------------------------------------------------------------
# jpeg_bytes / jpeg_libjpeg
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("q", [5, 30, 50, 75, 90, 100])
def test_file_carries_the_quality_tables(q: int) -> None:
    img = (_textured(40, 48).numpy()[0].transpose(1, 2, 0) * 255).round().astype(np.uint8)
    data = jpeg_bytes(img, q)
    luma, chroma = quantization_tables(q)
    raw = _dqt_tables(data)  # DQT segments hold zigzag order by definition (T.81 B.2.4.1)
    np.testing.assert_array_equal(raw[0], luma)
    np.testing.assert_array_equal(raw[1], chroma)
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "JPEG" and im.mode == "RGB"
        # Pillow (the project needs >= 10; checked on 13.0) reports the tables in natural order.
        pil = {k: np.asarray(list(v)).reshape(8, 8) for k, v in im.quantization.items()}
        assert [s[1:3] for s in im.layer] == [(2, 2), (1, 1), (1, 1)], "expected 4:2:0 subsampling"
    np.testing.assert_array_equal(pil[0], luma)
    np.testing.assert_array_equal(pil[1], chroma)


def test_grey_file_has_luma_table_only() -> None:
    img = (_smooth(24, 24, channels=1).numpy()[0, 0] * 255).round().astype(np.uint8)
    data = jpeg_bytes(img, 60)
    with Image.open(io.BytesIO(data)) as im:
        assert im.mode == "L"
    raw = _dqt_tables(data)
    assert list(raw) == [0]
    np.testing.assert_array_equal(raw[0], quantization_tables(60)[0])


def test_jpeg_bytes_rejects_bad_arrays() -> None:
    with pytest.raises(ShapeError):
        jpeg_bytes(np.zeros((8, 8, 3), dtype=np.float32), 50)
    with pytest.raises(ShapeError):
        jpeg_bytes(np.zeros((8, 8, 2), dtype=np.uint8), 50)
    with pytest.raises(ConfigError):
        jpeg_bytes(np.zeros((8, 8, 3), dtype=np.uint8), 0)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_libjpeg_deterministic_keeps_shape_and_dtype(dtype: torch.dtype) -> None:
    x = _textured(37, 53).to(dtype)
    a, b = jpeg_libjpeg(x, 40), jpeg_libjpeg(x, 40)
    assert a.shape == x.shape and a.dtype == dtype and a.device == x.device
    assert torch.equal(a, b)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.equal((a * 255).round() / 255, a)  # 8-bit values
    assert 12 < _psnr(a, x) < 40


def test_libjpeg_matches_pillow_roundtrip() -> None:
    x = _textured(33, 21)
    arr = (x[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=55)
    expect = np.asarray(Image.open(io.BytesIO(buf.getvalue())).convert("RGB"))
    got = (jpeg_libjpeg(x, 55)[0].permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
    np.testing.assert_array_equal(got, expect)


def test_libjpeg_per_image_quality() -> None:
    x = _textured().repeat(3, 1, 1, 1)
    out = jpeg_libjpeg(x, [10, 50, 95])
    p = [_psnr(out[i], x[i]) for i in range(3)]
    assert p[0] < p[1] < p[2], p
    for i, q in enumerate((10, 50, 95)):
        assert torch.equal(out[i : i + 1], jpeg_libjpeg(x[i : i + 1], q))
    with pytest.raises(ConfigError, match="batch"):
        jpeg_libjpeg(x, [10, 50])


def test_libjpeg_grey_and_odd_size() -> None:
    x = _smooth(37, 53, channels=1)
    out = jpeg_libjpeg(x, 75)
    assert out.shape == (1, 1, 37, 53)
    assert _psnr(out, x) > 35


@pytest.mark.parametrize("bad", [0, 101, 50.5, -3, None])
def test_libjpeg_rejects_bad_quality(bad) -> None:
    with pytest.raises(ConfigError, match=r"jpeg\.quality"):
        jpeg_libjpeg(_smooth(16, 16), bad)
    with pytest.raises(ConfigError, match=r"jpeg\.quality"):
        jpeg_libjpeg(_smooth(16, 16), [50, bad][1:])


def test_quality_message() -> None:
    with pytest.raises(ConfigError, match=r"jpeg\.quality: 0 is outside 1\.\.100"):
        jpeg_libjpeg(_smooth(8, 8), 0)


@pytest.mark.parametrize("fn", [jpeg_libjpeg, jpeg_differentiable])
def test_bad_tensors_raise_shape_error(fn) -> None:
    with pytest.raises(ShapeError):
        fn(torch.rand(3, 16, 16), 50)
    with pytest.raises(ShapeError):
        fn(torch.rand(1, 2, 16, 16), 50)
    with pytest.raises(ShapeError):
        fn(torch.randint(0, 255, (1, 3, 16, 16), dtype=torch.uint8), 50)
    with pytest.raises(ShapeError):
        fn(np.zeros((1, 3, 16, 16), dtype=np.float32), 50)


# --------------------------------------------------------------------------------------
# jpeg_differentiable
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("rounding", ["cubic", "ste"])
def test_differentiable_passes_gradients(rounding: str) -> None:
    x = _textured(24, 40).requires_grad_(True)
    out = jpeg_differentiable(x, 50, rounding=rounding)
    out.sum().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    assert float(x.grad.abs().sum()) > 0


def test_hard_rounding_blocks_gradients_and_matches_ste_forward() -> None:
    x = _textured(16, 16).requires_grad_(True)
    hard = jpeg_differentiable(x, 50, rounding="hard")
    ste = jpeg_differentiable(x, 50, rounding="ste")
    torch.testing.assert_close(hard, ste)
    hard.sum().backward()
    assert float(x.grad.abs().sum()) == 0


def test_differentiable_keeps_shape_dtype_and_range() -> None:
    for dtype in (torch.float32, torch.float64):
        x = _textured(37, 53).to(dtype)
        out = jpeg_differentiable(x, 20)
        assert out.shape == x.shape and out.dtype == dtype
        assert float(out.min()) >= 0 and float(out.max()) <= 1


def test_differentiable_quality_100_is_near_lossless() -> None:
    x = _smooth(64, 64)
    assert _psnr(jpeg_differentiable(x, 100), x) > 40
    assert _psnr(jpeg_differentiable(x[:, :1], 100), x[:, :1]) > 40


def test_differentiable_per_image_quality_tensor() -> None:
    x = _textured(32, 32).repeat(2, 1, 1, 1)
    out = jpeg_differentiable(x, torch.tensor([15.0, 85.0]))
    torch.testing.assert_close(out[:1], jpeg_differentiable(x[:1], 15))
    torch.testing.assert_close(out[1:], jpeg_differentiable(x[1:], 85.0))
    assert _psnr(out[0], x[0]) < _psnr(out[1], x[1])


@pytest.mark.parametrize("shape", [(1, 3, 37, 53), (2, 3, 1, 1), (1, 1, 37, 53), (1, 3, 16, 16)])
def test_differentiable_agrees_with_libjpeg_on_any_size(shape: tuple[int, ...]) -> None:
    b, c, h, w = shape
    x = torch.cat([_smooth(h, w, seed=s, channels=c) for s in range(b)])
    for q in (30, 90):
        ref, out = jpeg_libjpeg(x, q), jpeg_differentiable(x, q)
        assert out.shape == x.shape
        assert _psnr(ref, out) >= AGREEMENT_DB, (shape, q, _psnr(ref, out))


def test_differentiable_agrees_with_libjpeg_on_texture() -> None:
    x = _textured(37, 53)
    for q in (10, 50, 90):
        p = _psnr(jpeg_libjpeg(x, q), jpeg_differentiable(x, q))
        assert p >= AGREEMENT_DB, (q, p)


def test_differentiable_rejects_bad_options() -> None:
    x = _smooth(16, 16)
    for bad in (0, 101, -1.0, "50", torch.tensor([50.0, 120.0])):
        with pytest.raises(ConfigError, match=r"jpeg\.quality"):
            jpeg_differentiable(x.repeat(2, 1, 1, 1), bad)
    with pytest.raises(ConfigError, match=r"jpeg\.quality"):
        jpeg_differentiable(x, torch.tensor([50.0, 60.0]))
    with pytest.raises(ConfigError, match=r"jpeg\.rounding"):
        jpeg_differentiable(x, 50, rounding="floor")


# --------------------------------------------------------------------------------------
# Acceptance: the two agree on Set14
# --------------------------------------------------------------------------------------


@pytest.mark.data
def test_differentiable_agrees_with_libjpeg_on_set14(data_dir: Path) -> None:
    files = sorted((data_dir / "Set14" / "HR").glob("*.png"))
    if not files:
        pytest.skip(f"no Set14 HR images under {data_dir}")
    assert len(files) == 14, f"expected 14 Set14 images, found {len(files)}"
    images = []
    for f in files:
        with Image.open(f) as im:  # bridge.png is greyscale: coded as RGB like the others
            images.append(torch.from_numpy(np.asarray(im.convert("RGB")).copy()).permute(2, 0, 1)[None] / 255.0)
    means = {}
    for q in (30, 50, 70, 90):
        means[q] = float(np.mean([_psnr(jpeg_libjpeg(x, q), jpeg_differentiable(x, q)) for x in images]))
    report = ", ".join(f"q{q}: {p:.2f} dB" for q, p in means.items())
    print(f"Set14 libjpeg vs differentiable (default rounding), mean PSNR: {report}")
    assert all(p >= AGREEMENT_DB for p in means.values()), f"mean PSNR below {AGREEMENT_DB} dB: {report}"
