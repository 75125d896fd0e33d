"""What made an output: a small record per output `srkit upscale` writes, so that rerunning into the same folder
skips an output only when the same request made it, and redoes it when the model, scale, format, quality or any
other setting that changes the pixels differs.

Records live in srkit's cache (`<cache>/outputs/`, see `srkit.catalog.cache_dir`: `$SRKIT_CACHE` or the platform
cache folder), one JSON file per output keyed by the output's real path, never next to the outputs. A record also
holds the output's size and modification time: an output changed since (by another tool, or copied over) no
longer matches its record and counts as made by an unknown request. It holds the request's settings and a
fingerprint of the model's weights (the SHA-256 of a weights file, the name for shipped and classical models,
whose weights ship with the installed srkit); settings that do not change the pixels (tile size for models with
a finite receptive field, threads, progress) are left out.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path
from typing import Any

from srkit.io.atomic import atomic_write

__all__ = ["matches", "record", "remove_record", "request_record", "sidecar_path"]

_SUFFIX = ".json"


def sidecar_path(output: Path) -> Path:
    """Where `output`'s record is kept: `<cache>/outputs/<SHA-256 of its real path>.json`."""
    from srkit.catalog import cache_dir

    key = hashlib.sha256(os.path.realpath(output).encode()).hexdigest()[:40]
    return cache_dir() / "outputs" / f"{key}{_SUFFIX}"


def _stamp(output: Path) -> list[int]:
    st = output.stat()
    return [int(st.st_size), int(st.st_mtime_ns)]


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
    """Write `output`'s record (atomically; a failure to write it only means the next run leaves the output
    alone as one of unknown origin)."""
    try:
        data = json.dumps({"output": os.path.realpath(output), "stamp": _stamp(output), "request": rec},
                          sort_keys=True).encode()

        def encode(fh) -> None:
            fh.write(data)

        side = sidecar_path(output)
        side.parent.mkdir(parents=True, exist_ok=True)
        atomic_write(side, encode)
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
    if not isinstance(stored, dict) or stored.get("stamp") != _stamp(output):
        return None  # the output changed since its record was written: made by someone else
    return bool(stored.get("request") == json.loads(json.dumps(rec, sort_keys=True)))


def remove_record(output: Path) -> None:
    """Remove `output`'s record (before the output is rewritten, so a killed rewrite leaves no stale record)."""
    try:
        os.unlink(sidecar_path(output))
    except OSError:
        pass
