"""Training and validation datasets read from image folders.

Every dataset here works on 8-bit RGB: images are read with :func:`srkit.io.read_image`, alpha is dropped,
16-bit and float images are brought to 8 bits and gray images become 3 equal channels, because LR is made
(and SR is scored) on 8-bit images, as in the benchmarks.

Samples are a pure function of ``(seed, epoch, index)`` - each ``__getitem__`` builds its own
``numpy.random.default_rng([seed, epoch, index])`` - so a run gives the same patches whatever the number of
DataLoader workers, their order, or a restart from a checkpoint at a given epoch.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Generic, TypeVar

import numpy as np
import torch
from torch.utils.data import Dataset

from srkit.data.benchmark import IMAGE_SUFFIXES, modcrop
from srkit.data.patches import (
    ContentSampler,
    dihedral,
    random_patch,
    sliding_patches,
    texture_energy,
)
from srkit.errors import ConfigError, DatasetError, ShapeError
from srkit.io import read_image
from srkit.ops import imresize_matlab, rgb_to_ycbcr

if TYPE_CHECKING:
    from srkit.degrade.pipeline import Degradation

__all__ = [
    "HRFolder",
    "PairedFolder",
    "ValidationImages",
    "as_rgb8",
    "bicubic_lr",
    "list_images",
    "read_rgb8",
    "split_files",
]

_COLORS = ("rgb", "y")
_SAMPLERS = ("random", "content", "sliding")


# --------------------------------------------------------------------------------------
# files
# --------------------------------------------------------------------------------------


def list_images(roots: Sequence[str | os.PathLike[str]] | str | os.PathLike[str]) -> list[Path]:
    """All image files under one or more folders, recursively.

    Args:
        roots: folders to search (a single folder is accepted too). Files are recognised by suffix
            (``benchmark.IMAGE_SUFFIXES``, any case); names starting with ``.`` are skipped (macOS ``._*``
            resource forks carry image suffixes but are not images; srkit's own temporary files are hidden).

    Returns:
        Sorted, de-duplicated paths (as given, joined with the sub-path: not resolved).

    Raises:
        DatasetError: a root is not a folder, or no image is found under any of them.
    """
    if isinstance(roots, (str, os.PathLike)):
        roots = [roots]
    found: set[Path] = set()
    for r in roots:
        root = Path(r)
        if not root.is_dir():
            raise DatasetError(f"image folder {str(root)!r} does not exist or is not a folder")
        for p in root.rglob("*"):
            if p.suffix.lower() in IMAGE_SUFFIXES and not p.name.startswith(".") and p.is_file():
                found.add(p)
    if not found:
        where = ", ".join(repr(str(r)) for r in roots) or "(no folders given)"
        raise DatasetError(f"no images ({' '.join(IMAGE_SUFFIXES)}) found under {where}")
    return sorted(found)


def _split_key(path: Path, seed: int) -> bytes:
    # The file *name* (not its folder) is hashed, so the split survives moving the data set and does not depend
    # on the order or the number of the other files.
    return hashlib.sha256(f"{seed}\0{path.name}".encode()).digest()


def split_files(
    files: Sequence[str | os.PathLike[str]], val_count: int, seed: int
) -> tuple[list[Path], list[Path]]:
    """Deterministic train/validation split by hashing file names.

    The ``val_count`` files with the smallest ``sha256(seed, file name)`` go to validation. Adding or removing
    other files only moves files whose hash ranks near the cut, and the input order does not matter.

    Args:
        files: image paths (duplicates are ignored).
        val_count: number of validation files, ``0 <= val_count < len(files)``.
        seed: selects another, equally deterministic split.

    Returns:
        ``(train, val)``: disjoint, sorted lists of ``Path``.

    Raises:
        ConfigError: ``val_count`` is negative or leaves no training file.
    """
    paths = sorted({Path(f) for f in files})
    if isinstance(val_count, bool) or not isinstance(val_count, (int, np.integer)) or val_count < 0:
        raise ConfigError(f"val_count must be an integer >= 0, got {val_count!r}")
    if val_count >= len(paths):
        raise ConfigError(f"val_count={val_count} leaves no training image out of {len(paths)}")
    # str(path) breaks ties between equal names in different folders.
    ranked = sorted(paths, key=lambda p: (_split_key(p, int(seed)), str(p)))
    val = set(ranked[:val_count])
    return [p for p in paths if p not in val], [p for p in paths if p in val]


# --------------------------------------------------------------------------------------
# pixels
# --------------------------------------------------------------------------------------


def bicubic_lr(hr: np.ndarray, scale: int) -> np.ndarray:
    """The standard bicubic LR: MATLAB ``imresize(modcrop(hr, s), 1/s)`` (modern rules: mirrored borders).

    Args:
        hr: uint8 (H, W) or (H, W, C).
        scale: integer factor >= 1.

    Returns:
        uint8 (H // s, W // s[, C]), rounded and clipped; bit-compatible with ``srkit.evaluate``'s LR.
    """
    scale = _check_int("scale", scale)
    return imresize_matlab(modcrop(hr, scale), 1.0 / scale, convention="modern")


def _check_int(name: str, value: object, minimum: int = 1) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def as_rgb8(image: np.ndarray) -> np.ndarray:
    """(H, W[, C]) any depth -> uint8 (H, W, 3): alpha dropped, 16-bit/float scaled, gray repeated."""
    from srkit.io.uint8 import as_uint8_image

    image = as_uint8_image(image)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    return np.ascontiguousarray(image)


def read_rgb8(path: Path) -> np.ndarray:
    """Read an image as uint8 (H, W, 3) (see :func:`as_rgb8`)."""
    return as_rgb8(read_image(path)[0])


def _to_tensor(patch: np.ndarray, color: str) -> torch.Tensor:
    """uint8 (h, w, 3) -> float32 (C, h, w) in [0, 1]; Y is BT.601 studio swing (16/255..235/255)."""
    if color == "y":
        y = rgb_to_ycbcr(patch, y_only=True) / 255.0  # float64 on the 0..255 scale for uint8 input
        return torch.from_numpy(y.astype(np.float32)[None])
    return torch.from_numpy(np.ascontiguousarray(patch.transpose(2, 0, 1))).float().div_(255.0)


def _to_uint8(chw: torch.Tensor) -> np.ndarray:
    """float (3, h, w) in [0, 1] (on 8-bit levels) -> uint8 (h, w, 3)."""
    return np.ascontiguousarray((chw.clamp(0, 1) * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy())


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {', '.join(choices)}; got {value!r}")
    return str(value)


# --------------------------------------------------------------------------------------
# patch datasets
# --------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)
class _Entry:
    """One usable image: where it comes from, its LR size, its patch sampler (content mode) and pixels (cache)."""

    name: str
    lr_hw: tuple[int, int]
    sampler: ContentSampler | None
    hr: np.ndarray | None
    lr: np.ndarray | None


_Src = TypeVar("_Src")  # what a subclass reads one image (pair) from


class _PatchDataset(Dataset, Generic[_Src]):
    """Shared sampling logic of :class:`HRFolder` and :class:`PairedFolder`; subclasses provide ``_load``."""

    def __init__(
        self,
        sources: Sequence[_Src],
        *,
        scale: int,
        patch_size: int,
        color: str,
        sampler: str,
        augment: bool,
        samples_per_epoch: int | None,
        seed: int,
        cache: bool,
    ) -> None:
        self.scale = _check_int("scale", scale)
        self.patch_size = _check_int("patch_size", patch_size)
        self.color = _check_choice("color", color, _COLORS)
        self.sampler = _check_choice("sampler", sampler, _SAMPLERS)
        self.augment = bool(augment)
        if samples_per_epoch is not None:
            samples_per_epoch = _check_int("samples_per_epoch", samples_per_epoch)
        self.samples_per_epoch = samples_per_epoch
        self.seed = int(seed)
        self.cache = bool(cache)
        self.epoch = 0
        self._sources = list(sources)
        self.skipped = 0
        entries: list[_Entry] = []
        kept: list[_Src] = []
        p = self.patch_size
        # One pass over the files now, whatever `cache` says: sizes (to skip small images and count sliding
        # positions) and content samplers must be known before the first __getitem__, in every worker alike.
        for src in self._sources:
            hr, lr = self._load(src)
            lh, lw = lr.shape[:2]
            if lh < p or lw < p:
                self.skipped += 1
                continue
            cs = ContentSampler.from_energy(texture_energy(lr), p) if self.sampler == "content" else None
            keep = self.cache
            entries.append(_Entry(self._name(src), (lh, lw), cs, hr if keep else None, lr if keep else None))
            kept.append(src)
        if not entries:
            raise DatasetError(
                f"no usable image: all {len(self._sources)} are smaller than the HR patch "
                f"({p * self.scale} px at x{self.scale})"
            )
        self._entries = entries
        self._kept = kept
        self._offsets: np.ndarray | None = None
        if self.sampler == "sliding":
            counts = [len(sliding_patches(*e.lr_hw, p, p)) for e in entries]
            self._offsets = np.cumsum([0, *counts])

    # -- to override -------------------------------------------------------------------
    def _load(self, src: _Src) -> tuple[np.ndarray, np.ndarray]:  # pragma: no cover - abstract
        """Return uint8 (H, W, 3) HR, modcropped, and uint8 (H/s, W/s, 3) LR for one source."""
        raise NotImplementedError

    def _name(self, src: _Src) -> str:  # pragma: no cover - abstract
        raise NotImplementedError

    # -- public --------------------------------------------------------------------------
    @property
    def n_images(self) -> int:
        """Number of usable images (``skipped`` ones excluded)."""
        return len(self._entries)

    @property
    def names(self) -> list[str]:
        """Names (file stems) of the usable images, in index order."""
        return [e.name for e in self._entries]

    def set_epoch(self, epoch: int) -> None:
        """Select the epoch's samples. Call before iterating the DataLoader each epoch.

        DataLoader workers hold a copy of the dataset made when iteration starts, so this reaches them with
        the default ``persistent_workers=False``; with persistent workers the change would not be seen.
        """
        self.epoch = int(epoch)

    def __len__(self) -> int:
        if self.samples_per_epoch is not None:
            return self.samples_per_epoch
        if self._offsets is not None:
            return int(self._offsets[-1])
        return len(self._entries)

    def _pixels(self, j: int) -> tuple[np.ndarray, np.ndarray]:
        e = self._entries[j]
        if e.hr is not None and e.lr is not None:
            return e.hr, e.lr
        return self._load(self._kept[j])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, ...]:
        """Sample ``index`` of the current epoch.

        Image: ``index % n_images`` (every image gets the same share of patches whatever its size: big and
        small photos are weighted alike, as in BasicSR's DIV2K loaders); in ``sliding`` mode the index runs
        over all (image, window) pairs instead, windows of side ``patch_size`` with stride ``patch_size``.

        Returns:
            ``(lr, hr)``: float32 tensors (C, p, p) and (C, p * s, p * s) in [0, 1], C = 3 (RGB) or 1 (Y,
            BT.601 studio swing, in [16/255, 235/255]); ``hr`` covers exactly the region of ``lr``. An
            :class:`HRFolder` with ``levels`` adds a float32 (2,) tensor: the sample's (noise sigma, JPEG
            quality).
        """
        n = len(self)
        if isinstance(index, bool) or not isinstance(index, (int, np.integer)):
            raise TypeError(f"dataset index must be an integer, got {type(index).__name__}")
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for {n} samples")
        index = int(index) % n
        rng = np.random.default_rng([self.seed, self.epoch, index])
        p = self.patch_size
        if self._offsets is not None:
            flat = index % int(self._offsets[-1])
            j = int(np.searchsorted(self._offsets, flat, side="right")) - 1
            top, left = sliding_patches(*self._entries[j].lr_hw, p, p)[flat - int(self._offsets[j])]
        else:
            j = index % len(self._entries)
            e = self._entries[j]
            top, left = e.sampler.sample(rng) if e.sampler is not None else random_patch(rng, *e.lr_hw, p)
        lr_patch, hr_patch, levels = self._cut_levels(j, top, left, index)
        if self.augment:
            k = int(rng.integers(8))
            lr_patch, hr_patch = dihedral(lr_patch, k), dihedral(hr_patch, k)
        pair = (_to_tensor(lr_patch, self.color), _to_tensor(hr_patch, self.color))
        return pair if levels is None else (*pair, levels)

    def _cut_levels(
        self, j: int, top: int, left: int, index: int
    ) -> tuple[np.ndarray, np.ndarray, torch.Tensor | None]:
        """`_cut` and the sample's (noise, quality) levels, or None when the dataset does not give them."""
        lr, hr = self._cut(j, top, left, index)
        return lr, hr, None

    def _cut(self, j: int, top: int, left: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        """uint8 LR patch (p, p, 3) at (top, left) of image j and the HR patch (p s, p s, 3) it covers."""
        p, s = self.patch_size, self.scale
        hr, lr = self._pixels(j)
        return lr[top : top + p, left : left + p], hr[top * s : (top + p) * s, left * s : (left + p) * s]

    def extra_repr(self) -> str:
        return (
            f"{self.n_images} images ({self.skipped} skipped), x{self.scale}, LR patch {self.patch_size}, "
            f"{self.color}, {self.sampler}, augment={self.augment}, len={len(self)}"
        )

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.extra_repr()})"


class HRFolder(_PatchDataset[Path]):
    """Random (LR, HR) training patches from HR images; LR is synthesised once per image.

    Each image is read, brought to 8-bit RGB, modcropped to a multiple of ``scale`` and degraded ONCE, whole
    (``degrade``, default :func:`bicubic_lr`): patches are cut from the whole LR image, so their borders look
    like test-time LR, not like a resized crop. With ``cache=True`` both are kept in memory (filled in
    ``__init__``, so forked DataLoader workers share it copy-on-write); with ``cache=False`` every
    ``__getitem__`` reads and degrades its image again (slow; for sets that do not fit in memory - and then
    ``degrade`` must be picklable for spawned workers).

    Args:
        files: HR image paths (e.g. from :func:`list_images` / :func:`split_files`).
        scale: SR factor.
        patch_size: LR patch side ``p``; HR patches are ``p * scale``.
        color: ``"rgb"`` (3 channels) or ``"y"`` (BT.601 luma, 1 channel).
        sampler: patch positions on the LR image: ``"random"`` (uniform), ``"content"``
            (:class:`~srkit.data.patches.ContentSampler` on the LR image's texture energy, 20% uniform floor)
            or ``"sliding"`` (every window of a stride-``p`` grid, border-flush; deterministic).
        augment: apply one random :func:`~srkit.data.patches.dihedral` transform (the same to LR and HR).
        samples_per_epoch: ``len(self)``; default: one per image (random/content) or one per window (sliding).
        seed: with the epoch and the index, determines every sample.
        degrade: uint8 (H, W, 3) HR -> uint8 (H / s, W / s, 3) LR; default :func:`bicubic_lr`.
        cache: keep HR and LR in memory.
        levels: add each sample's (noise sigma, JPEG quality) from its degradation record
            (:func:`srkit.degrade.pipeline.record_levels`) as a third item, for conditioned models; needs a
            ``degradation`` run here (``on: loader``).
        degradation: a :class:`srkit.degrade.Degradation` run on every sample instead (random blur, noise,
            JPEG, ...): the HR patch plus ``margin`` LR pixels of context on each side (where the image has
            them) is degraded with a generator seeded by ``(seed, epoch, index)``, and the patch is cut out of
            the result; the HR patch is the degradation's target (unsharp-masked if it says so). Patch positions
            still come from the bicubic LR grid (content sampler included). With ``on: batch`` the dataset does
            not degrade: the trainer does, per batch.

    Attributes:
        skipped: number of images smaller than one HR patch (left out, no warning).

    Raises:
        ConfigError: bad option values.
        DatasetError: no files, or every image is too small.
        ShapeError: ``degrade`` returned the wrong shape or dtype.
        ImageReadError: a file cannot be read.
    """

    def __init__(
        self,
        files: Sequence[Path],
        *,
        scale: int,
        patch_size: int,
        color: str = "rgb",
        sampler: str = "random",
        augment: bool = True,
        samples_per_epoch: int | None = None,
        seed: int = 0,
        degrade: Callable[[np.ndarray], np.ndarray] | None = None,
        cache: bool = True,
        degradation: Degradation | None = None,
        levels: bool = False,
    ) -> None:
        files = [Path(f) for f in files]
        if not files:
            raise DatasetError("HRFolder needs at least one image file")
        if degradation is not None and degrade is not None:
            raise ConfigError("give degrade (one LR per image) or degradation (new LR per sample), not both")
        if levels and (degradation is None or degradation.cfg.on != "loader"):
            raise ConfigError("levels come from a degradation run on every sample here (on: loader)")
        self.levels = bool(levels)
        self.degrade = degrade
        self.degradation = degradation
        super().__init__(
            files,
            scale=scale,
            patch_size=patch_size,
            color=color,
            sampler=sampler,
            augment=augment,
            samples_per_epoch=samples_per_epoch,
            seed=seed,
            cache=cache,
        )

    def __getstate__(self) -> dict[str, object]:
        state = self.__dict__.copy()
        if self.cache:
            # LR is cached, so `degrade` is never called again: dropping it lets spawned DataLoader workers
            # (macOS/Windows) receive a dataset built with a lambda or a closure.
            state["degrade"] = None
        return state

    def _name(self, src: Path) -> str:
        return Path(src).stem

    def _cut(self, j: int, top: int, left: int, index: int) -> tuple[np.ndarray, np.ndarray]:
        return self._cut_levels(j, top, left, index)[:2]

    def _cut_levels(
        self, j: int, top: int, left: int, index: int
    ) -> tuple[np.ndarray, np.ndarray, torch.Tensor | None]:
        d = self.degradation
        if d is None or d.cfg.on == "batch":
            return (*super()._cut(j, top, left, index), None)
        p, s, m = self.patch_size, self.scale, d.cfg.margin
        hr, _ = self._pixels(j)
        lh, lw = self._entries[j].lr_hw
        t0, l0 = max(0, top - m), max(0, left - m)
        t1, l1 = min(lh, top + p + m), min(lw, left + p + m)
        crop = torch.from_numpy(np.ascontiguousarray(hr[t0 * s : t1 * s, l0 * s : l1 * s])).permute(2, 0, 1)
        crop = crop[None].float().div_(255.0)
        seed = int(np.random.SeedSequence([self.seed, self.epoch, index, 1]).generate_state(1, np.uint64)[0] >> 1)
        lr_t, records = d(crop, s, torch.Generator().manual_seed(seed))
        hr_t = d.target(crop)
        dt, dl = top - t0, left - l0
        lr_patch = lr_t[0, :, dt : dt + p, dl : dl + p]
        hr_patch = hr_t[0, :, dt * s : (dt + p) * s, dl * s : (dl + p) * s]
        levels = None
        if self.levels:
            from srkit.degrade.pipeline import record_levels

            levels = torch.tensor(record_levels(records[0]), dtype=torch.float32)
        return _to_uint8(lr_patch), _to_uint8(hr_patch), levels

    def _load(self, src: Path) -> tuple[np.ndarray, np.ndarray]:
        path = Path(src)
        hr = modcrop(read_rgb8(path), self.scale)
        lr = bicubic_lr(hr, self.scale) if self.degrade is None else self.degrade(hr)
        want = (hr.shape[0] // self.scale, hr.shape[1] // self.scale, 3)
        if not isinstance(lr, np.ndarray) or lr.dtype != np.uint8 or lr.shape != want:
            got = f"{lr.dtype} {lr.shape}" if isinstance(lr, np.ndarray) else type(lr).__name__
            raise ShapeError(f"degrade must return uint8 {want} for {str(path)!r}, got {got}")
        return hr, lr


def _lr_key(stem: str, scale: int, hr_stems: set[str]) -> str:
    """LR stem -> HR stem: ``babyx4`` pairs with ``baby`` at x4 (the name as is is tried when that fails)."""
    tag = f"x{scale}"
    if stem.lower().endswith(tag) and stem[: -len(tag)] in hr_stems:
        return stem[: -len(tag)]
    return stem


def _stems(paths: list[Path], what: str) -> dict[str, Path]:
    out: dict[str, Path] = {}
    for p in paths:
        if p.stem in out:
            raise DatasetError(f"two {what} images named {p.stem!r}: {str(out[p.stem])!r} and {str(p)!r}")
        out[p.stem] = p
    return out


def _few(names: Sequence[str]) -> str:
    shown = ", ".join(sorted(names)[:5])
    return shown + (f", ... ({len(names)} in all)" if len(names) > 5 else "")


class PairedFolder(_PatchDataset[tuple[str, Path, Path]]):
    """Training patches from stored (LR, HR) pairs, e.g. DIV2K's ``X4/0001x4.png`` with ``0001.png``.

    Pairs are matched by file stem (both folders searched recursively); an LR name may carry an
    ``x{scale}`` suffix (``babyx4.png`` <-> ``baby.png``). HR is modcropped and the LR must then be exactly
    ``HR / scale`` in both sides (``floor`` of the original HR size), or the pair is refused.

    Args:
        lr_root, hr_root: folders of LR and HR images.
        scale, patch_size, color, sampler, augment, samples_per_epoch, seed, cache: as :class:`HRFolder`.

    Raises:
        DatasetError: a folder is missing or empty, a file has no partner (up to 5 names listed), duplicate
            stems, an LR size does not match its HR (the file is named), or every image is too small.
        ConfigError: bad option values.
    """

    def __init__(
        self,
        lr_root: str | os.PathLike[str],
        hr_root: str | os.PathLike[str],
        *,
        scale: int,
        patch_size: int,
        color: str = "rgb",
        sampler: str = "random",
        augment: bool = True,
        samples_per_epoch: int | None = None,
        seed: int = 0,
        cache: bool = True,
    ) -> None:
        scale = _check_int("scale", scale)
        hr = _stems(list_images([hr_root]), "HR")
        lr_raw = _stems(list_images([lr_root]), "LR")
        hr_set = set(hr)
        lr: dict[str, Path] = {}
        for stem, path in lr_raw.items():
            key = _lr_key(stem, scale, hr_set)
            if key in lr:
                raise DatasetError(f"two LR images pair with HR {key!r}: {str(lr[key])!r} and {str(path)!r}")
            lr[key] = path
        no_lr = sorted(set(hr) - set(lr))
        no_hr = sorted(set(lr) - set(hr))
        if no_lr or no_hr:
            parts = []
            if no_lr:
                parts.append(f"HR without LR in {str(lr_root)!r}: {_few([hr[k].name for k in no_lr])}")
            if no_hr:
                parts.append(f"LR without HR in {str(hr_root)!r}: {_few([lr[k].name for k in no_hr])}")
            raise DatasetError("unpaired images (LR names may end in x{}): {}".format(scale, "; ".join(parts)))
        pairs = [(k, lr[k], hr[k]) for k in sorted(hr)]
        super().__init__(
            pairs,
            scale=scale,
            patch_size=patch_size,
            color=color,
            sampler=sampler,
            augment=augment,
            samples_per_epoch=samples_per_epoch,
            seed=seed,
            cache=cache,
        )

    def _name(self, src: tuple[str, Path, Path]) -> str:
        return src[0]

    def _load(self, src: tuple[str, Path, Path]) -> tuple[np.ndarray, np.ndarray]:
        _, lr_path, hr_path = src
        hr_full = read_rgb8(hr_path)
        lr = read_rgb8(lr_path)
        want = (hr_full.shape[0] // self.scale, hr_full.shape[1] // self.scale)
        if lr.shape[:2] != want:
            raise DatasetError(
                f"LR image {str(lr_path)!r} is {lr.shape[1]}x{lr.shape[0]} (WxH); HR {hr_path.name!r} "
                f"({hr_full.shape[1]}x{hr_full.shape[0]}) at x{self.scale} needs {want[1]}x{want[0]}"
            )
        return modcrop(hr_full, self.scale), lr


class ValidationImages(Dataset):
    """Whole validation images with their bicubic LR, for PSNR during training.

    Each HR image is brought to 8-bit RGB, centre-cropped to at most ``max_side`` pixels per side (keeps
    validation fast on 2K images), cropped to a multiple of ``scale`` and degraded with :func:`bicubic_lr`
    (LR made from the crop, so each pair is a self-consistent small test image). Sizes differ between items:
    use ``batch_size=1`` (or ``batch_size=None``) in a DataLoader.

    Args:
        files: HR image paths.
        scale: SR factor.
        max_side: largest HR side kept (rounded down to a multiple of ``scale``); ``None``: whole images.
        color: ``"rgb"`` or ``"y"`` as in :class:`HRFolder`.
        cache: read and degrade every image once in ``__init__`` and keep the pairs in memory.
        degradation: make LR with this :class:`srkit.degrade.Degradation` instead of bicubic, seeded by
            ``(seed, file stem)``: the same LR in every run with that seed.
        seed: see ``degradation``.
        levels: add each image's (noise sigma, JPEG quality) from its degradation record as a fourth item (bicubic
            LR: (0, 100)), for conditioned models.

    Items:
        ``(lr, hr, name)``: float32 (C, h, w) and (C, h * s, w * s) in [0, 1], and the file stem (``levels``:
        and a float32 (2,) tensor).

    Raises:
        DatasetError: no files, or an image smaller than ``scale`` pixels.
        ConfigError: bad option values.
    """

    def __init__(
        self,
        files: Sequence[Path],
        *,
        scale: int,
        max_side: int | None = None,
        color: str = "rgb",
        cache: bool = True,
        degradation: Degradation | None = None,
        seed: int = 0,
        levels: bool = False,
    ) -> None:
        self.levels = bool(levels)
        self.files = [Path(f) for f in files]
        if not self.files:
            raise DatasetError("ValidationImages needs at least one image file")
        self.degradation, self.seed = degradation, int(seed)
        self.scale = _check_int("scale", scale)
        if max_side is not None and _check_int("max_side", max_side) < self.scale:
            raise ConfigError(f"max_side={max_side} is smaller than the scale {self.scale}")
        self.max_side = max_side
        self.color = _check_choice("color", color, _COLORS)
        self._cache = [self._load(f) for f in self.files] if cache else None

    def _load(self, path: Path) -> tuple[np.ndarray, np.ndarray, tuple[float, float]]:
        hr = read_rgb8(path)
        h, w = hr.shape[:2]
        if self.max_side is not None:
            ch, cw = min(h, self.max_side), min(w, self.max_side)
            ch, cw = ch - ch % self.scale, cw - cw % self.scale
            top, left = (h - ch) // 2, (w - cw) // 2
            hr = hr[top : top + ch, left : left + cw]
        hr = modcrop(hr, self.scale)
        if hr.shape[0] == 0 or hr.shape[1] == 0:
            raise DatasetError(f"validation image {str(path)!r} ({w}x{h}) is smaller than the scale {self.scale}")
        hr = np.ascontiguousarray(hr)
        if self.degradation is None:
            return hr, bicubic_lr(hr, self.scale), (0.0, 100.0)
        from srkit.degrade.pipeline import degrade_image, image_seed, record_levels

        lr, record = degrade_image(hr, self.degradation, self.scale, image_seed(self.seed, path.stem))
        return hr, lr, record_levels(record) if self.levels else (0.0, 100.0)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(
        self, index: int
    ) -> tuple[torch.Tensor, torch.Tensor, str] | tuple[torch.Tensor, torch.Tensor, str, torch.Tensor]:
        if not -len(self.files) <= index < len(self.files):
            raise IndexError(f"index {index} out of range for {len(self.files)} images")
        hr, lr, levels = self._cache[index] if self._cache is not None else self._load(self.files[index])
        item = (_to_tensor(lr, self.color), _to_tensor(hr, self.color), self.files[index].stem)
        if self.levels:
            return (*item, torch.tensor(levels, dtype=torch.float32))
        return item
