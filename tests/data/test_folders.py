import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader

from srkit.data.benchmark import modcrop
from srkit.data.folders import (
    HRFolder,
    PairedFolder,
    ValidationImages,
    bicubic_lr,
    list_images,
    split_files,
)
from srkit.data.patches import random_patch, sliding_patches
from srkit.errors import ConfigError, DatasetError, ShapeError
from srkit.io import write_image
from srkit.ops import imresize_matlab, rgb_to_ycbcr


def _img(seed: int, h: int, w: int, c: int | None = 3, dtype=np.uint8) -> np.ndarray:
    rng = np.random.default_rng(seed)
    shape = (h, w) if c is None else (h, w, c)
    hi = 65536 if dtype == np.uint16 else 256
    # Smooth-ish content (noise on a gradient) so bicubic does not saturate everywhere.
    base = np.linspace(0, hi * 0.6, w)[None, :] + np.linspace(0, hi * 0.2, h)[:, None]
    if c is not None:
        base = base[..., None]
    return np.clip(base + rng.integers(0, hi // 5, shape), 0, hi - 1).astype(dtype)


def _write(path: Path, arr: np.ndarray) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_image(path, arr)


@pytest.fixture()
def hr_files(tmp_path: Path) -> list[Path]:
    return [
        _write(tmp_path / "hr" / "a.png", _img(0, 26, 30)),
        _write(tmp_path / "hr" / "b.png", _img(1, 33, 25)),  # not a multiple of the scale
        _write(tmp_path / "hr" / "c.png", _img(2, 24, 24)),
    ]


# ---------------------------------------------------------------------------- files


def test_list_images_recursive_sorted_filtered(tmp_path: Path):
    _write(tmp_path / "r1" / "b.png", _img(0, 4, 4))
    _write(tmp_path / "r1" / "sub" / "a.PNG", _img(0, 4, 4))
    _write(tmp_path / "r2" / "c.bmp", _img(0, 4, 4))
    (tmp_path / "r1" / "notes.txt").write_text("x")
    (tmp_path / "r1" / "._b.png").write_bytes(b"\0\0")  # macOS resource fork
    (tmp_path / "r1" / "dir.png").mkdir()
    got = list_images([tmp_path / "r2", tmp_path / "r1", tmp_path / "r1"])
    assert got == sorted(got)
    assert [p.name for p in got] == ["b.png", "a.PNG", "c.bmp"]
    assert list_images(tmp_path / "r2") == [tmp_path / "r2" / "c.bmp"]
    with pytest.raises(DatasetError, match="does not exist"):
        list_images([tmp_path / "missing"])
    (tmp_path / "empty").mkdir()
    with pytest.raises(DatasetError, match="no images"):
        list_images([tmp_path / "empty"])


def test_split_files_deterministic_disjoint_order_free():
    files = [Path(f"/data/{i:04d}.png") for i in range(50)]
    train, val = split_files(files, 5, seed=0)
    assert len(val) == 5 and len(train) == 45
    assert set(train).isdisjoint(val) and set(train) | set(val) == set(files)
    assert split_files(files[::-1], 5, seed=0) == (train, val)
    # moving the data set does not change the split (names are hashed, not paths)
    moved = split_files([Path("/elsewhere") / f.name for f in files], 5, seed=0)[1]
    assert [p.name for p in moved] == [p.name for p in val]
    assert split_files(files, 5, seed=1)[1] != val
    # adding files only moves files across the cut, never reshuffles the rest
    more = split_files(files + [Path(f"/data/x{i}.png") for i in range(10)], 5, seed=0)[1]
    kept = [v for v in more if v in files]
    assert kept == [v for v in val if v in kept] and all(v in val for v in kept)
    assert split_files(files, 0, seed=0) == (sorted(files), [])
    with pytest.raises(ConfigError):
        split_files(files, 50, seed=0)
    with pytest.raises(ConfigError):
        split_files(files, -1, seed=0)


def test_bicubic_lr_is_matlab_imresize_of_modcrop():
    hr = _img(3, 26, 31)
    lr = bicubic_lr(hr, 4)
    assert lr.shape == (6, 7, 3) and lr.dtype == np.uint8
    np.testing.assert_array_equal(lr, imresize_matlab(hr[:24, :28], 0.25, convention="modern"))


# ---------------------------------------------------------------------------- HRFolder


def test_hrfolder_shapes_ranges_and_whole_image_lr(hr_files):
    ds = HRFolder(hr_files, scale=2, patch_size=6, augment=False, seed=3)
    assert len(ds) == 3 and ds.n_images == 3 and ds.skipped == 0
    for i in range(6):
        lr, hr = ds[i % 3]
        assert lr.shape == (3, 6, 6) and hr.shape == (3, 12, 12)
        assert lr.dtype == hr.dtype == torch.float32
        assert 0 <= float(lr.min()) and float(lr.max()) <= 1
    # Reproduce sample 1 by hand: image 1 % 3, rng([seed, epoch, index]) -> position, crop of the WHOLE LR.
    full = modcrop(_img(1, 33, 25), 2)
    full_lr = bicubic_lr(full, 2)
    top, left = random_patch(np.random.default_rng([3, 0, 1]), *full_lr.shape[:2], 6)
    lr, hr = ds[1]
    np.testing.assert_array_equal(np.rint(lr.numpy().transpose(1, 2, 0) * 255), full_lr[top : top + 6, left : left + 6])
    np.testing.assert_array_equal(
        np.rint(hr.numpy().transpose(1, 2, 0) * 255), full[top * 2 : top * 2 + 12, left * 2 : left * 2 + 12]
    )


def _box_down(hr: np.ndarray, s: int) -> np.ndarray:
    h, w = hr.shape[0] // s, hr.shape[1] // s
    return np.rint(hr.reshape(h, s, w, s, -1).mean(axis=(1, 3))).astype(np.uint8)


@pytest.mark.parametrize("sampler", ["random", "content", "sliding"])
def test_hrfolder_pairs_stay_aligned_under_augmentation(hr_files, sampler):
    # A box-average degradation commutes with every dihedral transform: HR patch boxed == LR patch exactly.
    ds = HRFolder(hr_files, scale=2, patch_size=5, sampler=sampler, degrade=lambda x: _box_down(x, 2), seed=1)
    for i in range(len(ds)):
        lr, hr = ds[i]
        hr8 = np.rint(hr.numpy().transpose(1, 2, 0) * 255).astype(np.uint8)
        np.testing.assert_array_equal(_box_down(hr8, 2), np.rint(lr.numpy().transpose(1, 2, 0) * 255))


def test_hrfolder_deterministic_epochs_and_cache_off(hr_files):
    ds = HRFolder(hr_files, scale=2, patch_size=4, samples_per_epoch=7, seed=5)
    assert len(ds) == 7
    a = [ds[i] for i in range(7)]
    again = HRFolder(hr_files, scale=2, patch_size=4, samples_per_epoch=7, seed=5, cache=False)
    for (l1, h1), i in zip(a, range(7), strict=True):
        l2, h2 = again[i]
        assert torch.equal(l1, l2) and torch.equal(h1, h2)
    ds.set_epoch(1)
    b = [ds[i] for i in range(7)]
    assert any(not torch.equal(x[0], y[0]) for x, y in zip(a, b, strict=True))
    ds.set_epoch(0)
    assert torch.equal(ds[-1][0], a[6][0])
    with pytest.raises(IndexError):
        ds[7]


def test_hrfolder_same_samples_with_any_worker_count(hr_files):
    ds = HRFolder(hr_files, scale=2, patch_size=4, samples_per_epoch=8, seed=2)
    ds.set_epoch(3)

    def run(workers: int) -> list[torch.Tensor]:
        dl = DataLoader(ds, batch_size=3, shuffle=False, num_workers=workers)
        return [torch.cat([lr.flatten(1), hr.flatten(1)], 1) for lr, hr in dl]

    for x, y in zip(run(0), run(2), strict=True):
        assert torch.equal(x, y)


def test_hrfolder_pickles_with_lambda_degrade_when_cached(hr_files):
    ds = HRFolder(hr_files, scale=2, patch_size=4, degrade=lambda x: _box_down(x, 2), seed=9)
    copy = pickle.loads(pickle.dumps(ds))  # what a spawned worker receives
    assert torch.equal(copy[1][1], ds[1][1])


def test_hrfolder_y_channel(hr_files):
    rgb = HRFolder(hr_files, scale=2, patch_size=4, seed=0)
    y = HRFolder(hr_files, scale=2, patch_size=4, seed=0, color="y")
    (lr_c, hr_c), (lr_y, hr_y) = rgb[2], y[2]
    assert lr_y.shape == (1, 4, 4) and hr_y.shape == (1, 8, 8) and lr_y.dtype == torch.float32
    torch.testing.assert_close(hr_y, rgb_to_ycbcr(hr_c.double(), y_only=True).float(), atol=1e-6, rtol=0)
    torch.testing.assert_close(lr_y, rgb_to_ycbcr(lr_c.double(), y_only=True).float(), atol=1e-6, rtol=0)
    assert float(hr_y.min()) >= 16 / 255 - 1e-6 and float(hr_y.max()) <= 235 / 255 + 1e-6


def test_hrfolder_sliding_visits_every_window(hr_files):
    ds = HRFolder(hr_files[2:], scale=2, patch_size=5, sampler="sliding", augment=False)
    lr_full = bicubic_lr(_img(2, 24, 24), 2)
    windows = sliding_patches(12, 12, 5, 5)
    assert len(ds) == len(windows) == 9
    for i, (t, lft) in enumerate(windows):
        got = np.rint(ds[i][0].numpy().transpose(1, 2, 0) * 255)
        np.testing.assert_array_equal(got, lr_full[t : t + 5, lft : lft + 5])


def test_hrfolder_content_sampler_prefers_texture(tmp_path):
    img = np.full((40, 80, 3), 120, np.uint8)
    img[:, 40:] = np.random.default_rng(0).integers(0, 256, (40, 40, 3), dtype=np.uint8)
    f = _write(tmp_path / "half.png", img)
    ds = HRFolder([f], scale=2, patch_size=4, sampler="content", augment=False, samples_per_epoch=400)
    textured = sum(float(ds[i][0].std()) > 0.02 for i in range(len(ds)))
    assert textured > 0.7 * len(ds)
    assert textured < len(ds)  # flat patches still drawn


def test_hrfolder_input_kinds_and_skipping(tmp_path):
    gray = _write(tmp_path / "g.png", _img(4, 20, 20, c=None))
    deep = _write(tmp_path / "d.png", _img(5, 20, 20, dtype=np.uint16))
    rgba = np.concatenate([_img(6, 20, 20), np.full((20, 20, 1), 9, np.uint8)], axis=2)
    alpha = _write(tmp_path / "a.png", rgba)
    small = _write(tmp_path / "s.png", _img(7, 7, 30))
    ds = HRFolder([gray, deep, alpha, small], scale=2, patch_size=4, augment=False)
    assert ds.skipped == 1 and ds.n_images == 3 and ds.names == ["g", "d", "a"]
    lr, hr = ds[0]
    assert torch.equal(hr[0], hr[1]) and torch.equal(hr[1], hr[2])  # gray -> 3 equal channels
    lr, hr = ds[1]
    assert hr.shape == (3, 8, 8)
    with pytest.raises(DatasetError, match="smaller than the HR patch"):
        HRFolder([small], scale=2, patch_size=4)
    with pytest.raises(DatasetError):
        HRFolder([], scale=2, patch_size=4)


def test_hrfolder_option_errors(hr_files):
    with pytest.raises(ConfigError):
        HRFolder(hr_files, scale=2, patch_size=4, color="lab")
    with pytest.raises(ConfigError):
        HRFolder(hr_files, scale=2, patch_size=4, sampler="grid")
    with pytest.raises(ConfigError):
        HRFolder(hr_files, scale=0, patch_size=4)
    with pytest.raises(ShapeError, match="degrade"):
        HRFolder(hr_files, scale=2, patch_size=4, degrade=lambda x: x)


# ---------------------------------------------------------------------------- PairedFolder


def test_paired_folder_matches_stems_with_scale_suffix(tmp_path):
    hrs = {"baby": _img(0, 26, 22), "bird": _img(1, 24, 24)}
    for name, arr in hrs.items():
        _write(tmp_path / "HR" / f"{name}.png", arr)
    _write(tmp_path / "LR" / "babyx2.png", bicubic_lr(hrs["baby"], 2))
    _write(tmp_path / "LR" / "bird.png", bicubic_lr(hrs["bird"], 2))
    ds = PairedFolder(tmp_path / "LR", tmp_path / "HR", scale=2, patch_size=5, augment=False, seed=4)
    assert ds.names == ["baby", "bird"] and len(ds) == 2
    lr, hr = ds[0]
    assert lr.shape == (3, 5, 5) and hr.shape == (3, 10, 10)
    top, left = random_patch(np.random.default_rng([4, 0, 0]), 13, 11, 5)
    np.testing.assert_array_equal(
        np.rint(lr.numpy().transpose(1, 2, 0) * 255), bicubic_lr(hrs["baby"], 2)[top : top + 5, left : left + 5]
    )
    np.testing.assert_array_equal(
        np.rint(hr.numpy().transpose(1, 2, 0) * 255), hrs["baby"][top * 2 : top * 2 + 10, left * 2 : left * 2 + 10]
    )


def test_paired_folder_errors(tmp_path):
    _write(tmp_path / "HR" / "a.png", _img(0, 20, 20))
    _write(tmp_path / "HR" / "b.png", _img(1, 20, 20))
    _write(tmp_path / "LR" / "ax2.png", _img(0, 11, 10))  # should be 10x10
    _write(tmp_path / "LR" / "cx2.png", _img(0, 10, 10))
    with pytest.raises(DatasetError, match=r"b\.png.*cx2\.png"):
        PairedFolder(tmp_path / "LR", tmp_path / "HR", scale=2, patch_size=4)
    (tmp_path / "HR" / "b.png").unlink()
    (tmp_path / "LR" / "cx2.png").unlink()
    with pytest.raises(DatasetError, match=r"ax2\.png"):
        PairedFolder(tmp_path / "LR", tmp_path / "HR", scale=2, patch_size=4)
    with pytest.raises(DatasetError):
        PairedFolder(tmp_path / "nope", tmp_path / "HR", scale=2, patch_size=4)


# ---------------------------------------------------------------------------- ValidationImages


def test_validation_images_centre_crop(tmp_path):
    big = _img(0, 30, 41)
    files = [_write(tmp_path / "big.png", big), _write(tmp_path / "small.png", _img(1, 9, 10))]
    ds = ValidationImages(files, scale=4, max_side=21)
    assert len(ds) == 2
    lr, hr, name = ds[0]
    assert name == "big" and hr.shape == (3, 20, 20) and lr.shape == (3, 5, 5)
    crop = big[5:25, 10:30]  # centred 20x20 (21 rounded down to a multiple of 4)
    np.testing.assert_array_equal(np.rint(hr.numpy().transpose(1, 2, 0) * 255), crop)
    np.testing.assert_array_equal(np.rint(lr.numpy().transpose(1, 2, 0) * 255), bicubic_lr(crop, 4))
    lr, hr, name = ds[1]
    assert name == "small" and hr.shape == (3, 8, 8) and lr.shape == (3, 2, 2)
    lr_y, hr_y, _ = ValidationImages(files, scale=4, color="y", cache=False)[0]
    assert lr_y.shape == (1, 7, 10) and hr_y.shape == (1, 28, 40)
    with pytest.raises(ConfigError):
        ValidationImages(files, scale=4, max_side=3)


@pytest.mark.data
def test_hrfolder_on_set5(data_dir):
    files = list_images([data_dir / "Set5" / "HR"])
    ds = HRFolder(files, scale=4, patch_size=24, sampler="content", seed=0)
    assert ds.n_images == 5 and ds.skipped == 0
    lr, hr = ds[0]
    assert lr.shape == (3, 24, 24) and hr.shape == (3, 96, 96)
