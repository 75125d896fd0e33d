"""Benchmark sets laid out as `<root>/<Set>/HR/*.png` (+ optional `LR_bicubic/X<s>/<name>x<s>.png`).

This is the layout of the classic Set5/Set14/B100 copies and the one Urban100, Manga109 or DIV2K-valid take
when unpacked the same way; any folder that has it is a benchmark set.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from srkit.errors import DatasetError
from srkit.io import IMAGE_SUFFIXES as _READABLE_SUFFIXES

#: Suffixes of dataset images (lower case, sorted: error messages list them): every format `srkit.io` reads except
#: GIF, which is palette-quantised (not ground truth for super-resolution) and often animated (unreadable here).
IMAGE_SUFFIXES = tuple(sorted(_READABLE_SUFFIXES - {".gif"}))


def modcrop(image: np.ndarray, multiple: int) -> np.ndarray:
    """Crop (H, W[, C]) at the bottom/right so both sides are multiples of `multiple`."""
    h, w = image.shape[:2]
    return image[: h - h % multiple, : w - w % multiple]


@dataclass(frozen=True)
class BenchmarkSet:
    """One benchmark set on disk."""

    name: str
    root: Path

    @property
    def hr_dir(self) -> Path:
        return self.root / "HR"

    def hr_paths(self) -> list[Path]:
        """HR image paths, sorted by file name."""
        return sorted(p for p in self.hr_dir.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())

    def lr_path(self, hr_path: Path, scale: int) -> Path:
        """Path of the stored bicubic LR image for an HR image (may not exist)."""
        return self.root / "LR_bicubic" / f"X{scale}" / f"{hr_path.stem}x{scale}{hr_path.suffix}"


def available_sets(data_dir: Path) -> list[str]:
    """Names of the sub-folders of `data_dir` that have an `HR/` folder."""
    if not data_dir.is_dir():
        return []
    return sorted(p.name for p in data_dir.iterdir() if (p / "HR").is_dir())


def find_set(data_dir: str | Path, name: str) -> BenchmarkSet:
    """Look a set up by name (case-insensitive) under `data_dir`.

    Raises:
        DatasetError: `data_dir` is missing, or has no such set (the message lists the sets it has).
    """
    root = Path(data_dir)
    if not root.is_dir():
        raise DatasetError(f"data folder {str(root)!r} does not exist (set --data or SRKIT_DATA)")
    sets = available_sets(root)
    match = [s for s in sets if s.lower() == name.lower()]
    if not match:
        have = ", ".join(sets) or "none"
        raise DatasetError(f"no benchmark set {name!r} under {str(root)!r} (sets with an HR/ folder: {have})")
    bench = BenchmarkSet(match[0], root / match[0])
    if not bench.hr_paths():
        raise DatasetError(f"benchmark set {name!r} has no images in {str(bench.hr_dir)!r}")
    return bench
