"""Training checkpoints (`run_dir/checkpoints/last.pt`): write atomically, read safely.

A checkpoint is a plain dict of tensors, numbers, strings and nested dicts/lists, so it loads with
`torch.load(weights_only=True)`: reading a checkpoint never runs pickled code.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch

from srkit.errors import ConfigError

__all__ = ["CHECKPOINT_FORMAT", "load_checkpoint", "save_checkpoint"]

CHECKPOINT_FORMAT = "srkit-train-checkpoint/1"


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write `state` (plus a format tag) to `path` atomically: temp file in the same folder, then `os.replace`.

    A crash or a kill while writing leaves the previous checkpoint intact.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        torch.save({"format": CHECKPOINT_FORMAT, **state}, tmp)
        # fsync so that os.replace never publishes a file whose data is still only in the page cache.
        with open(tmp, "rb") as f:
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ConfigError(f"cannot write checkpoint {str(path)!r}: {e.strerror or e}") from None
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Read a checkpoint written by `save_checkpoint` (tensors on CPU).

    Raises:
        ConfigError: missing, unreadable, or not an srkit training checkpoint.
    """
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"no checkpoint at {str(path)!r}")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:  # zip/pickle errors come in several private types
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:200]
        raise ConfigError(f"cannot read checkpoint {str(path)!r}: {first}") from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise ConfigError(f"{str(path)!r} is not an srkit training checkpoint ({CHECKPOINT_FORMAT})")
    return state
