"""The clip mode of the trainer (``data.clips`` in a run config): multi-frame training on synthetic clips.

With ``data.clips`` set, `srkit.train.loop.fit` trains on clips made on the fly from the still training images
(`srkit.data.clips.ClipFolder`: small random motions, each frame degraded on its own by ``data.degradation``)
instead of single patches; everything else (schedule, EMA, bf16, checkpoints, resume, ``max_minutes``) is the
trainer's own. What changes:

* a batch is (B, T, C, p, p) LR and (B, T, C, p s, p s) HR clips. A multi-frame model (`ModelInfo.frames` > 1)
  gets the clips; a single-image model gets the B T frames as a batch of images - the same data, so the two are
  compared at the same budget. The loss is taken over all frames;
* a model may add an auxiliary loss of its own after each training forward (``module.auxiliary_loss()``, e.g.
  `srkit.archs.recurrent_vsr.RecurrentVSR`'s alignment loss); it is logged as ``aux``;
* validation scores the centre frame of one fixed clip per held-out image (`srkit.data.clips.ValidationClips`),
  PSNR / SSIM on Y with border = scale: the multi-frame model sees the whole clip, a single-image model the
  centre frame alone.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import torch
from torch import nn

from srkit.errors import ConfigError

if TYPE_CHECKING:
    from srkit.train.config import RunConfig

__all__ = ["auxiliary_loss", "check_clip_mode", "frames_as_images", "validate_clips"]


def check_clip_mode(cfg: RunConfig, multi_frame: bool, color: str) -> None:
    """ConfigError for what clip mode does not support, and for a multi-frame model without clips."""
    clips = cfg.data.clips
    if clips is None:
        if multi_frame:
            raise ConfigError(f"model.arch: {cfg.model.arch} is a multi-frame model: give data.clips (e.g. "
                              "{frames: 7}) to train it on synthetic clips")
        return
    if color != "rgb":
        raise ConfigError("data.clips: clips are RGB; use an RGB model (data.color: rgb)")
    if cfg.data.degradation is not None and cfg.data.degradation.on != "loader":
        raise ConfigError("data.degradation.on: clips are degraded frame by frame in the loader (on: loader)")
    if cfg.gan is not None or cfg.distill is not None:
        raise ConfigError("data.clips: adversarial training and distillation are not supported on clips")


def frames_as_images(lr: torch.Tensor, hr: torch.Tensor, multi_frame: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """A clip batch as the model takes it: (B, T, C, h, w) for a multi-frame model, else the B T frames as images
    (B T, C, h, w); HR alike."""
    if multi_frame or lr.ndim != 5:
        return lr, hr
    return lr.flatten(0, 1), hr.flatten(0, 1)


def auxiliary_loss(model: nn.Module) -> torch.Tensor | None:
    """The auxiliary loss the network computed in its last training forward (``module.auxiliary_loss()``), or
    None when it has none."""
    inner = getattr(model, "module", model)
    take = getattr(inner, "auxiliary_loss", None)
    return take() if callable(take) else None


@torch.no_grad()
def validate_clips(model: nn.Module, clips, scale: int, device: torch.device) -> tuple[float, float]:
    """Mean PSNR and SSIM (Y, border = scale, `srkit.metrics`) of the centre frames of `clips`, fp32, eval mode.

    Args:
        model: an `SRModel`; a multi-frame one runs on each whole clip, a single-image one on its centre frame.
        clips: items (lr (T, C, h, w), hr (T, C, sh, sw), name) float [0, 1].
    """
    from srkit.metrics import psnr, ssim

    info = getattr(model, "info", None)
    multi = bool(info is not None and info.multi_frame)
    was_training = model.training
    model.eval()
    ps, ss = [], []
    try:
        for lr, hr, _ in clips:
            c = lr.shape[0] // 2
            if multi:
                sr = model(lr[None].to(device))[0, c]
            else:
                sr = model(lr[c][None].to(device))[0]
            sr = sr.float().clamp(0, 1).cpu()
            ps.append(psnr(sr, hr[c], border=scale, y_channel=True))
            ss.append(ssim(sr, hr[c], border=scale, y_channel=True))
    finally:
        model.train(was_training)
    return float(np.mean(ps)), float(np.mean(ss))
