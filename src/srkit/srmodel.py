"""The two types every part of srkit shares: `ModelInfo` (how to feed a network) and `SRModel` (a network plus it).

A leaf module: it imports nothing from srkit but errors and ops, so the architecture table (`srkit.archs`) and
loading / detection (`srkit.models`) can both build on it without importing each other.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["ModelInfo", "SRModel", "progress_callback", "report_progress"]

# The progress callback of the model call in progress (this thread / task); None outside one.
_PROGRESS: ContextVar[Callable[[float], None] | None] = ContextVar("srkit_model_progress", default=None)


def report_progress(fraction: float) -> None:
    """Tell whoever runs the current model call how far it is (0..1]; a no-op when nobody listens. For modules that
    do many steps per call (a diffusion sampler), so that a progress bar moves within one tile."""
    callback = _PROGRESS.get()
    if callback is not None:
        callback(float(fraction))


@contextmanager
def progress_callback(callback: Callable[[float], None]) -> Iterator[None]:
    """Inside the block, `report_progress(f)` calls `callback(f)` (the engine sets one around every tile)."""
    token = _PROGRESS.set(callback)
    try:
        yield
    finally:
        _PROGRESS.reset(token)


@dataclass(frozen=True)
class ModelInfo:
    """What the engine needs to know about a model.

    Attributes:
        arch: architecture or baseline name.
        scale: integer upscaling factor.
        in_channels / out_channels: channels the module takes and returns (1 for Y-only models).
        color_space: "rgb" (works on RGB) or "y" (works on BT.601 luma; chroma is upscaled bicubically).
        input_range: 1.0 if the weights expect [0, 1], 255.0 if they expect 0..255.
        size_multiple: the LR input must have H and W divisible by this (reflect-padded otherwise).
        receptive_field: LR pixels of context on each side that one output pixel depends on (None = whole image).
        safe_dtypes: dtypes the model keeps its accuracy in.
        channel_agnostic: the module works on any number of channels, one at a time (classical resizers).
        macs_per_lr_pixel: multiply-accumulates per LR input pixel (0 for resizers; None if unknown).
        inputs: names of the per-call scalar inputs the module takes as keyword arguments besides the image (a
            conditioned model's noise level or JPEG quality, say); the engine passes them through every tile.
        noise_channels: > 0 for a stochastic model: it takes keyword `noise`, a (B, noise_channels, h, w)
            standard normal field at LR resolution, drawn once per image from the call's seed so that all tiles
            (and all strips of a streamed image) see one field.
        frames: 1 for a single-image model. > 1 for a multi-frame model: it also takes clips (B, T, C, H, W) ->
            (B, T, C, sH, sW) for any T >= 1 (a 4-D input is B one-frame clips), and the engine runs a video
            through it in windows of `frames` output frames (`srkit.infer.clips`).
        frame_context: frames of context the engine adds on each side of a window of a multi-frame model and
            discards (the model's temporal reach; 0 for single-image models).
        label: the variant's name when the options make it another than `arch` (ECBSR M12C48 built from the
            `ecbsr-m16c64` entry); "" otherwise. `name` is what to show.
    """

    @property
    def name(self) -> str:
        """The name to show a user: `label` when set, else `arch`."""
        return self.label or self.arch

    @property
    def multi_frame(self) -> bool:
        """True for a model that takes clips (`frames` > 1)."""
        return self.frames > 1

    arch: str
    scale: int
    in_channels: int = 3
    out_channels: int = 3
    color_space: str = "rgb"
    input_range: float = 1.0
    size_multiple: int = 1
    receptive_field: int | None = None
    safe_dtypes: tuple[str, ...] = ("fp32", "bf16", "fp16")
    channel_agnostic: bool = False
    macs_per_lr_pixel: float | None = None
    inputs: tuple[str, ...] = ()
    noise_channels: int = 0
    frames: int = 1
    frame_context: int = 0
    label: str = ""
    options: dict = field(default_factory=dict, compare=False)


class SRModel(nn.Module):
    """An `nn.Module` with its `ModelInfo`; call it on (B, C, H, W) float [0, 1] -> (B, C, sH, sW).

    Keyword arguments (the model's `ModelInfo.inputs`, and `noise` for stochastic models) go to the module.
    """

    def __init__(self, module: nn.Module, info: ModelInfo):
        super().__init__()
        self.module = module
        self.info = info

    def forward(self, x: torch.Tensor, **inputs: torch.Tensor | float) -> torch.Tensor:
        info = self.info
        if x.ndim == 5 and info.multi_frame:
            return self._forward_clip(x, inputs)
        if x.ndim != 4:
            clips = " or (B, T, C, H, W) clips" if info.multi_frame else ""
            raise ValueError(f"SRModel expects (B, C, H, W){clips}, got {tuple(x.shape)}")
        if info.channel_agnostic:
            b, c, h, w = x.shape
            y = self.module(x.reshape(b * c, 1, h, w), **inputs)
            return y.reshape(b, c, y.shape[-2], y.shape[-1])
        c = x.shape[1]
        if info.color_space == "y":
            return self._forward_y(x, inputs)
        if c == 1 and info.in_channels == 3:
            # Gray input to an RGB model: replicate, run, and take the luma-neutral mean back.
            return self._run(x.expand(-1, 3, -1, -1), inputs).mean(dim=1, keepdim=True)
        if c != info.in_channels:
            raise ValueError(f"model {info.name} takes {info.in_channels} channels, got {c}")
        return self._run(x, inputs)

    def _forward_clip(self, x: torch.Tensor, inputs: dict) -> torch.Tensor:
        """A multi-frame model on clips (B, T, C, H, W) -> (B, T, C, sH, sW); gray clips through an RGB model as
        3 equal channels, mean taken back."""
        c = x.shape[2]
        if c == 1 and self.info.in_channels == 3:
            return self._run(x.expand(-1, -1, 3, -1, -1), inputs).mean(dim=2, keepdim=True)
        if c != self.info.in_channels:
            raise ValueError(f"model {self.info.name} takes {self.info.in_channels} channels, got {c}")
        return self._run(x, inputs)

    def _run(self, x: torch.Tensor, inputs: dict | None = None) -> torch.Tensor:
        r = self.info.input_range
        if r != 1.0:
            return self.module(x * r, **(inputs or {})) / r
        return self.module(x, **(inputs or {}))

    def _forward_y(self, x: torch.Tensor, inputs: dict) -> torch.Tensor:
        from srkit.ops.color import upscale_rgb_by_luma

        if x.shape[1] == 1:
            return self._run(x, inputs)
        return upscale_rgb_by_luma(lambda y: self._run(y, inputs), x, self.info.scale)
