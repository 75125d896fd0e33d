"""The 8 symmetries of the square (rotations and mirrors) on numpy arrays and torch tensors.

One definition for training augmentation (`srkit.data.patches`) and the x8 self-ensemble at inference
(`srkit.infer.engine`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, TypeVar

import numpy as np

from srkit.errors import ConfigError, ShapeError

if TYPE_CHECKING:
    import torch

__all__ = ["dihedral", "dihedral_inverse"]


T = TypeVar("T", np.ndarray, "torch.Tensor")


def _check_k(k: object) -> int:
    if isinstance(k, (bool, np.bool_)) or not isinstance(k, (int, np.integer)) or not 0 <= k <= 7:
        raise ConfigError(f"dihedral index k must be an integer in 0..7, got {k!r}")
    return int(k)


def dihedral(x: T, k: int) -> T:
    """One of the 8 symmetries of the square: rotate by ``k % 4`` quarter turns, then mirror if ``k >= 4``.

    Rotation is counter-clockwise (``numpy.rot90`` / ``torch.rot90``), the mirror is left-right. ``k = 0`` is
    the identity. Apply the same ``k`` to an LR patch and its HR patch: the transforms commute with any
    resize that treats rows and columns alike, so the pair stays aligned.

    Args:
        x: numpy (H, W) or (H, W, C) (channels last), or torch (..., H, W) (channels first, any leading dims).
        k: 0..7.

    Returns:
        Same kind, dtype (and device) as ``x``; (W, H, ...) / (..., W, H) for odd ``k % 4``. numpy results are
        C-contiguous copies (``torch.from_numpy`` refuses the negative strides of a view); torch results are
        new tensors.

    Raises:
        ConfigError: ``k`` is not in 0..7.
        ShapeError: fewer than 2 spatial dims, or a non-array input.
    """
    k = _check_k(k)
    if isinstance(x, np.ndarray):
        if x.ndim not in (2, 3):
            raise ShapeError(f"dihedral expects a numpy (H, W) or (H, W, C) array, got shape {x.shape}")
        y = np.rot90(x, k % 4, axes=(0, 1))
        if k >= 4:
            y = y[:, ::-1]
        return np.ascontiguousarray(y)
    import torch

    if isinstance(x, torch.Tensor):
        if x.ndim < 2:
            raise ShapeError(f"dihedral expects a (..., H, W) tensor, got shape {tuple(x.shape)}")
        y = torch.rot90(x, k % 4, dims=(-2, -1))
        return torch.flip(y, dims=(-1,)) if k >= 4 else y
    raise ShapeError(f"dihedral expects a numpy array or a torch tensor, got {type(x).__name__}")


def dihedral_inverse(x: T, k: int) -> T:
    """Undo :func:`dihedral`: ``dihedral_inverse(dihedral(x, k), k)`` equals ``x`` (for self-ensembles).

    Args and returns as :func:`dihedral`.
    """
    k = _check_k(k)
    # The mirror came last, so it is undone first; then rotate back.
    y = dihedral(x, 4) if k >= 4 else x
    return dihedral(y, (4 - k % 4) % 4)
