"""What made an output: a small record kept next to each output `srkit upscale` writes, so that rerunning into the
same folder skips an output only when the same request made it, and redoes it when the model, scale, format,
quality or any other setting that changes the pixels differs.

The record is a hidden sidecar, `.<output name>.srkit.json`, written atomically after the output. It holds the
request's settings and a fingerprint of the model's weights (the SHA-256 of the weights file for a file, the
name for shipped and classical models, whose weights ship with the installed srkit). Settings that do not change
the pixels (tile size for models with a finite receptive field, threads, progress) are left out.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from srkit.io.atomic import atomic_write

__all__ = ["matches", "record", "remove_record", "request_record", "sidecar_path"]

_SUFFIX = ".srkit.json"


def sidecar_path(output: Path) -> Path:
    """The hidden record next to `output`."""
    return output.with_name(f".{output.name}{_SUFFIX}")


def _weights_id(model_ref: str) -> str:
    """The model's identity: SHA-256 of a weights file (cached by path, size and mtime), else its name."""
    p = Path(model_ref)
    if not p.is_file():
        return f"name:{model_ref}"
    st = p.stat()
    key = (str(p.resolve()), st.st_size, st.st_mtime_ns)
    hit = _HASHES.get(key)
    if hit is None:
        h = hashlib.sha256()
        with open(p, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                h.update(block)
        hit = _HASHES[key] = f"sha256:{h.hexdigest()}"
    return hit


_HASHES: dict[tuple, str] = {}


def request_record(model_ref: str, *, arch: str, scale: int, fmt: str | None, quality: int, alpha: str, tta: bool,
                   dtype: str, receptive_field: int | None, tile: Any = None, **extra: Any) -> dict:
    """The settings that decide an output's pixels and bytes. `tile` counts only for models that see the whole
    image (their tiles are blended, so the tile size changes the result); `extra` holds domain or conditioning
    options (JSON-serialisable)."""
    rec: dict[str, Any] = {
        "model": _weights_id(model_ref),
        "arch": arch,
        "scale": int(scale),
        "format": fmt,
        "quality": int(quality),
        "alpha": alpha,
        "tta": bool(tta),
        "dtype": dtype,
    }
    if receptive_field is None:
        rec["tile"] = tile
    rec.update({k: v for k, v in extra.items() if v is not None})
    return rec


def record(output: Path, rec: dict) -> None:
    """Write `output`'s record (atomically; a failure to write it only means the next run redoes the output)."""
    data = json.dumps(rec, sort_keys=True).encode()

    def encode(fh) -> None:
        fh.write(data)

    try:
        atomic_write(sidecar_path(output), encode)
    except Exception:  # noqa: BLE001 - the output itself is written; a missing record is not an error
        pass


def matches(output: Path, rec: dict) -> bool | None:
    """True when `output` exists and its record equals `rec`; False when it exists and was made otherwise (or
    its record is unreadable); None when it exists without a record (made by another tool or an older srkit)
    or does not exist."""
    if not output.exists():
        return None
    side = sidecar_path(output)
    try:
        stored = json.loads(side.read_text())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        return False
    return bool(stored == json.loads(json.dumps(rec, sort_keys=True)))


def remove_record(output: Path) -> None:
    """Remove `output`'s record (before the output is rewritten, so a killed rewrite leaves no stale record)."""
    try:
        os.unlink(sidecar_path(output))
    except OSError:
        pass
