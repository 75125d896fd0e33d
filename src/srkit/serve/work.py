"""One upscale as the service does it: the request's parameters checked (422), then, on a worker thread, the
upload upscaled by `srkit.infer.files.upscale_file` (the one file-to-file path: metadata kept, bit depth fitted to
the output format, big outputs streamed) with the model's shared `Upscaler`.

The upload and the result live in the server's private folder (mode 0700, created at start, removed at exit)
under random names the server chooses; error messages name them "upload" and "result", never a server path.
The client's file name is used for nothing but the suggested download name (sanitised).
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import secrets
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from srkit.serve.limits import ApiError, DeadlineExpired, Header
from srkit.serve.registry import Registry

__all__ = ["MEDIA_TYPES", "Params", "Result", "error_of", "estimate_seconds", "parse_params", "run_upscale"]

#: Output format names a request may ask for -> file suffix.
FORMATS = {"png": ".png", "jpg": ".jpg", "jpeg": ".jpg", "webp": ".webp", "tif": ".tif", "tiff": ".tif",
           "bmp": ".bmp", "heic": ".heic", "avif": ".avif", "jp2": ".jp2"}
MEDIA_TYPES = {".png": "image/png", ".jpg": "image/jpeg", ".webp": "image/webp", ".tif": "image/tiff",
               ".bmp": "image/bmp", ".heic": "image/heic", ".avif": "image/avif", ".jp2": "image/jp2"}
#: Parameters a request may send (query string or multipart fields); anything else is a 422.
KNOWN = {"model", "scale", "format", "tile", "quality", "alpha", "tta", "inputs", "seed", "strength", "file",
         "token"}
MAX_TILE = 4096


@dataclass(frozen=True)
class Params:
    """A request's checked parameters."""

    model: str
    scale: int | None = None
    format: str | None = None  # suffix with the dot; None: the input's format (`srkit.io.output_suffix`)
    tile: Any = "auto"
    quality: int = 95
    alpha: str = "bicubic"
    tta: bool = False
    inputs: Mapping[str, float] = field(default_factory=dict)
    seed: int | None = None
    filename: str = "image"
    strength: float | None = None  # a conditioned model's cleaning strength (`srkit.infer.conditioning`)


def _int(name: str, value: str, lo: int, hi: int) -> int:
    try:
        v = int(str(value).strip())
    except ValueError:
        raise ApiError(422, f"{name} must be an integer, got {value!r}") from None
    if not lo <= v <= hi:
        raise ApiError(422, f"{name} must be in {lo}..{hi}, got {v}")
    return v


def _tile(value: str | None, default: Any) -> Any:
    if value is None or value == "":
        return default
    v = value.strip().lower()
    if v == "auto":
        return "auto"
    if v in ("none", "0"):
        return None
    return _int("tile", v, 8, MAX_TILE)


def _inputs(value: str | None, names: tuple[str, ...], model: str) -> dict[str, float]:
    if value is None or value.strip() == "":
        return {}
    try:
        obj = json.loads(value)
    except ValueError:
        raise ApiError(422, f"inputs must be a JSON object of numbers, got {value[:80]!r}") from None
    if not isinstance(obj, dict):
        raise ApiError(422, "inputs must be a JSON object of numbers, e.g. {\"strength\": 0.5}")
    out: dict[str, float] = {}
    for k, v in obj.items():
        if k not in names:
            takes = f"takes {', '.join(names)}" if names else "takes no inputs"
            raise ApiError(422, f"model {model} {takes}; got input {k!r}")
        if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
            raise ApiError(422, f"input {k} must be a finite number, got {v!r}")
        out[k] = float(v)
    return out


def _strength(value: str | None, served: Any, inputs: Mapping[str, float]) -> float | None:
    """The `strength` parameter, checked: a number in [0, 1], for a model that takes noise and JPEG levels, not
    together with those levels in `inputs` (422, one line)."""
    from srkit.errors import ConfigError
    from srkit.infer.conditioning import check_levels, takes_levels

    if value is None or str(value).strip() == "":
        return None
    try:
        v = float(str(value).strip())
    except ValueError:
        raise ApiError(422, f"strength must be a number in [0, 1], got {value!r}") from None
    if not takes_levels(served.model.info):
        raise ApiError(422, f"model {served.name} takes no strength: strength is for conditioned models such as "
                            "real-x4-ctrl")
    try:
        check_levels(strength=v, noise=inputs.get("noise"), jpeg=inputs.get("jpeg"))
    except ConfigError as exc:
        raise ApiError(422, str(exc)) from None
    return v


def _safe_stem(filename: str | None) -> str:
    stem = Path(str(filename or "image").replace("\\", "/")).stem
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem).strip("._")[:80]
    return stem or "image"


def parse_params(fields: Mapping[str, str], registry: Registry, default_tile: Any,
                 filename: str | None = None) -> Params:
    """Checked `Params` from query/form fields (422 with one message for the first bad one)."""
    unknown = sorted(set(fields) - KNOWN)
    if unknown:
        raise ApiError(422, f"unknown parameter {unknown[0]!r} (known: {', '.join(sorted(KNOWN - {'file'}))})")
    model = fields.get("model") or None
    served = registry.get(model)
    scale = _int("scale", fields["scale"], 1, 64) if fields.get("scale") not in (None, "") else None
    fmt = fields.get("format") or None
    if fmt is not None and fmt.lower().lstrip(".") not in FORMATS:
        raise ApiError(422, f"format must be one of {', '.join(sorted(set(FORMATS)))}, got {fmt!r}")
    alpha = fields.get("alpha") or "bicubic"
    if alpha not in ("bicubic", "model"):
        raise ApiError(422, f"alpha must be bicubic or model, got {alpha!r}")
    tta = (fields.get("tta") or "false").lower()
    if tta not in ("true", "false", "1", "0"):
        raise ApiError(422, f"tta must be true or false, got {tta!r}")
    seed = _int("seed", fields["seed"], 0, 2**62) if fields.get("seed") not in (None, "") else None
    inputs = _inputs(fields.get("inputs"), served.inputs, served.name)
    params = Params(
        model=served.name,
        scale=scale,
        format=None if fmt is None else FORMATS[fmt.lower().lstrip(".")],
        tile=_tile(fields.get("tile"), default_tile),
        quality=_int("quality", fields["quality"], 1, 100) if fields.get("quality") not in (None, "") else 95,
        alpha=alpha,
        tta=tta in ("true", "1"),
        inputs=inputs,
        seed=seed,
        filename=_safe_stem(filename),
        strength=_strength(fields.get("strength"), served, inputs),
    )
    registry.upscaler(params.model, params.scale, params.tile)  # 422 for a scale the model does not have
    return params


@dataclass
class Result:
    """A finished upscale: the result file (server-named) and what to tell the client about it."""

    path: Path
    media_type: str
    filename: str
    width: int
    height: int
    out_width: int
    out_height: int
    seconds: float

    def describe(self) -> dict[str, Any]:
        return {"out_width": self.out_width, "out_height": self.out_height, "media_type": self.media_type,
                "filename": self.filename, "seconds": round(self.seconds, 3)}


def error_of(exc: BaseException) -> ApiError:
    """The service's answer to an exception from a task: srkit errors by kind, anything else 500."""
    from srkit.errors import ConfigError, ImageReadError, ImageTooLargeError, ImageWriteError, ShapeError


    if isinstance(exc, ApiError):
        return exc
    if isinstance(exc, DeadlineExpired):
        return ApiError(503, f"not started before its deadline ({exc}); the server is busy, retry later")
    msg = " ".join(str(exc).split())
    if isinstance(exc, ImageTooLargeError):
        return ApiError(413, msg)
    if isinstance(exc, ImageReadError):
        return ApiError(415 if "pip install" in msg else 422, msg)
    if isinstance(exc, ImageWriteError | ConfigError | ShapeError):
        return ApiError(422, msg)
    if isinstance(exc, MemoryError):
        return ApiError(503, "out of memory for this image now; retry later or send a smaller image")
    return ApiError(500, f"internal error: {type(exc).__name__}: {msg}")


# Seconds per output pixel measured per model (moving average), for progress and Retry-After estimates.
_SPEED: dict[str, float] = {}


def estimate_seconds(registry: Registry, params: Params, header: Header) -> float:
    """Expected seconds to upscale: the model's measured seconds per output pixel, else a guess from its MACs."""
    served = registry.get(params.model)
    s = (params.scale or 4) if served.classical else served.scales[0]
    out_px = header.pixels * s * s
    per_px = _SPEED.get(params.model)
    if per_px is None:
        macs = served.description.get("macs_per_output_pixel") or 0.0
        per_px = 2e-8 + float(macs) / 5e9  # ~5 GMAC/s per worker, plus resampling and encoding
    return max(0.05, out_px * per_px * (8 if params.tta else 1))


def _clean(msg: str, *paths: Path) -> str:
    for p, name in zip(paths, ("upload", "result")):
        msg = msg.replace(str(p), name)
    return msg


def _takes(fn: Callable[..., Any], name: str) -> bool:
    try:
        return name in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def run_upscale(registry: Registry, params: Params, header: Header, data: bytes, workdir: Path,
                progress: Callable[[float], None] | None = None) -> Result:
    """Upscale `data` (already checked: format, size) on the calling (worker) thread; the result is a file in
    `workdir` that the caller streams and removes. `progress(fraction)` is called as tiles are done when
    `upscale_file` reports progress."""
    from srkit.infer.files import upscale_file
    from srkit.io import output_suffix

    t0 = time.perf_counter()
    up = registry.upscaler(params.model, params.scale, params.tile)
    token = secrets.token_hex(8)
    src = workdir / f"in-{token}"
    fd = os.open(src, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    try:
        suffix = params.format or output_suffix(src).lower()
        suffix = {".jpeg": ".jpg", ".tiff": ".tif", ".heif": ".heic", ".j2k": ".jp2"}.get(suffix, suffix)
        dst = workdir / f"out-{token}{suffix}"
        try:
            extra: dict[str, Any] = {}
            if progress is not None and _takes(upscale_file, "progress"):
                extra["progress"] = progress  # tiles / strips done, where upscale_file reports them
            if params.strength is not None:
                extra["strength"] = params.strength
            upscale_file(src, dst, up, quality=params.quality, alpha=params.alpha,  # type: ignore[arg-type]
                         tta=params.tta, inputs=dict(params.inputs), seed=params.seed, **extra)
        except Exception as exc:
            err = error_of(exc)
            raise ApiError(err.status, _clean(err.message, src, dst)) from None
    finally:
        src.unlink(missing_ok=True)
    seconds = time.perf_counter() - t0
    s = up.scale
    out_px = header.pixels * s * s
    out_w, out_h = _result_size(dst, header, s)
    old = _SPEED.get(params.model)
    per_px = seconds / max(1, out_px) / (8 if params.tta else 1)
    _SPEED[params.model] = per_px if old is None else 0.7 * old + 0.3 * per_px
    return Result(dst, MEDIA_TYPES.get(suffix, "application/octet-stream"), f"{params.filename}_x{s}{suffix}",
                  out_w // s, out_h // s, out_w, out_h, seconds)


def _result_size(path: Path, header: Header, scale: int) -> tuple[int, int]:
    """The result's size from its own header (EXIF orientation may have turned the image), else the input's."""
    from srkit.serve.limits import image_header

    try:
        with open(path, "rb") as fh:
            head = fh.read(4 << 20)
        got = image_header(head)
        return got.width, got.height
    except (OSError, ApiError):
        return header.width * scale, header.height * scale
