"""`Upscaler`: the one inference object shared by the CLI, the Python API, evaluation and the service.

It holds only configuration (model, device, dtype); every call works on its own tensors, so one instance may be
shared between threads.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from srkit.errors import ConfigError, ShapeError
from srkit.models import SRModel

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_fast_bf16() -> bool:
    """True where the CPU runs bf16 matmuls/convolutions natively (AMX or AVX512-BF16)."""
    try:
        flags = open("/proc/cpuinfo").read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_dtype(policy: str, device: torch.device, model: SRModel) -> str:
    """The compute dtype name for a dtype policy (`auto`, `fp32`, `bf16`, `fp16`)."""
    if policy == "auto":
        if model.info.channel_agnostic or "bf16" not in model.info.safe_dtypes:
            return "fp32"
        if device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16()):
            return "bf16"
        return "fp32"
    if policy not in _DTYPES:
        raise ConfigError(f"unknown dtype {policy!r}; choose auto, fp32, bf16 or fp16")
    return policy


def auto_tile_side(model: SRModel, device: torch.device) -> int:
    """LR tile side that keeps activations within a memory budget (1/4 of free memory, at most 4 GiB).

    Estimate: the widest layer's channels x 4 bytes x 8 live tensors per LR pixel, times scale^2 for the output
    end; rounded down to a multiple of 16 and clamped to [64, 2048].
    """
    from torch import nn

    width = max([m.out_channels for m in model.module.modules() if isinstance(m, nn.Conv2d)] + [64])
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
    else:
        free = _available_ram()
    budget = min(free / 4, 4 * 1024**3)
    per_px = width * 4 * 8 + 4 * 3 * model.info.scale**2 * 4
    side = int((budget / per_px) ** 0.5) // 16 * 16
    return max(64, min(side, 2048))


def _available_ram() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return 2.0 * 1024**3


@dataclass(frozen=True)
class Upscaler:
    """Runs an `SRModel` on images.

    Args:
        model: the model (put in eval mode; not modified afterwards).
        device: "cpu", "cuda", "cuda:1", ...
        dtype: "auto" (bf16 autocast where the hardware is fast at it and the model allows it), "fp32", "bf16"
            or "fp16" (autocast).
        tile: None (whole image), an int (LR tile core side), or "auto" (a side chosen from free memory).
            Models with a finite receptive field get tiles with that much context and cropped cores, so the
            result equals the whole-image result; others get tiles blended over `overlap` LR pixels.
        overlap: blend width for whole-image-receptive-field models (default tile // 8, at least 8).
    """

    model: SRModel
    device: str = "cpu"
    dtype: str = "fp32"
    tile: int | str | None = None
    overlap: int | None = None

    def __post_init__(self) -> None:
        if not (self.tile is None or self.tile == "auto" or (isinstance(self.tile, int) and self.tile >= 8)):
            raise ConfigError(f"tile must be None, 'auto' or an integer >= 8, got {self.tile!r}")
        dev = torch.device(self.device)
        self.model.eval().to(dev)
        object.__setattr__(self, "_device", dev)
        object.__setattr__(self, "_dtype", resolve_dtype(self.dtype, dev, self.model))

    @property
    def scale(self) -> int:
        return self.model.info.scale

    @property
    def compute_dtype(self) -> str:
        return self._dtype  # type: ignore[attr-defined]

    def _autocast(self):
        dt = self._dtype  # type: ignore[attr-defined]
        if dt == "fp32":
            return contextlib.nullcontext()
        return torch.autocast(device_type=self._device.type, dtype=_DTYPES[dt])  # type: ignore[attr-defined]

    def _run_padded(self, x: torch.Tensor) -> torch.Tensor:
        """Model on one (B, C, h, w) region: reflect-pad to the size multiple, run, crop to (h, w) x scale."""
        info = self.model.info
        h, w = x.shape[-2:]
        m = info.size_multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        with self._autocast():
            y = self.model(x)
        return y.float()[..., : h * info.scale, : w * info.scale]

    def tile_side(self, x: torch.Tensor) -> int | None:
        """The LR tile core side used for input `x` (None = whole image)."""
        if self.tile is None:
            return None
        if self.tile == "auto":
            return auto_tile_side(self.model, self._device)  # type: ignore[attr-defined]
        return int(self.tile)

    @torch.inference_mode()
    def upscale_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) float [0, 1] -> (B, C, sH, sW) float32 (not clipped), on the input's device.

        Tiled when `tile` is set and the image is larger than a tile; on out-of-memory the tile side is halved
        and the image retried (down to 32 px)."""
        if x.ndim != 4 or not x.is_floating_point():
            raise ShapeError(f"upscale_tensor expects a float (B, C, H, W) tensor, got {tuple(x.shape)} {x.dtype}")
        xin = x.to(self._device, torch.float32)  # type: ignore[attr-defined]
        side = self.tile_side(xin)
        while True:
            try:
                return self._upscale_tiled(xin, side).to(x.device)
            except torch.OutOfMemoryError:
                h, w = xin.shape[-2:]
                side = max(h, w) // 2 if side is None else side // 2
                if side < 32:
                    raise
                if self._device.type == "cuda":  # type: ignore[attr-defined]
                    torch.cuda.empty_cache()

    def _upscale_tiled(self, x: torch.Tensor, side: int | None) -> torch.Tensor:
        from srkit.infer.tiling import run_tiled_blend, run_tiled_exact

        h, w = x.shape[-2:]
        info = self.model.info
        if side is None or (h <= side and w <= side):
            return self._run_padded(x)
        if info.receptive_field is not None:
            return run_tiled_exact(self._run_padded, x, info.scale, side, info.receptive_field)
        overlap = self.overlap if self.overlap is not None else max(8, side // 8)
        return run_tiled_blend(self._run_padded, x, info.scale, side, min(overlap, side // 2))

    def upscale(self, image: np.ndarray) -> np.ndarray:
        """Upscale an (H, W) / (H, W, C) image array; returns the same dtype and layout, scaled by `scale`.

        uint8 / uint16 inputs are converted to [0, 1] float, upscaled, rounded and clipped back; float inputs
        are expected in [0, 1] and come back clipped to [0, 1] as float32. A 4th (or 2nd of 2) channel is alpha
        and is upscaled with MATLAB bicubic, separately from the colour.
        """
        arr = np.asarray(image)
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)):
            raise ShapeError(f"expected an (H, W) or (H, W, C<=4) image, got shape {arr.shape}")
        if arr.dtype == np.uint8:
            peak = 255.0
        elif arr.dtype == np.uint16:
            peak = 65535.0
        elif np.issubdtype(arr.dtype, np.floating):
            peak = 1.0
        else:
            raise ShapeError(f"unsupported image dtype {arr.dtype}")
        x = arr.astype(np.float32) / peak
        squeeze = x.ndim == 2
        if squeeze:
            x = x[..., None]
        alpha = None
        if x.shape[2] in (2, 4):
            x, alpha = x[..., :-1], x[..., -1:]
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
        y = self.upscale_tensor(t)[0]
        if alpha is not None:
            from srkit.ops import imresize_matlab

            a = imresize_matlab(torch.from_numpy(np.ascontiguousarray(alpha[..., 0])), float(self.scale))
            y = torch.cat([y, a[None]], dim=0)
        out = y.clamp_(0, 1).permute(1, 2, 0).numpy()
        if squeeze:
            out = out[..., 0]
        if peak == 1.0:
            return out.astype(np.float32)
        return np.rint(out * peak).astype(arr.dtype)
