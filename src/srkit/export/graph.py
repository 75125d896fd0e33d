"""The module that is traced for export: an `SRModel` whose every step works for any input height and width.

`SRModel.forward` is already size-generic for networks, except for two uses of `srkit.ops.imresize_matlab`: the
classical upsamplers and the chroma of Y-only models. `imresize_matlab` builds its gather indices and weights in
numpy from the input size, so a trace would bake in the trace-time size. For an *integer upscale* the MATLAB
resize is periodic, though: output pixel ``s*j + p`` is a fixed weighted sum of input pixels ``j - K .. j + K``
(the weights depend only on the phase ``p``), and MATLAB's symmetric-mirror border is a symmetric pad. So the
same resize is a symmetric pad + one conv with ``s*s`` output channels + pixel shuffle, which exports to any
graph format with dynamic H and W (`MatlabUpsample`).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from srkit.errors import ConfigError
from srkit.models import ClassicalUpsampler, SRModel


def _phase_weights(scale: int, kernel: str) -> tuple[np.ndarray, int]:
    """(scale, 2K+1) float64 weights of MATLAB imresize ('modern') for an integer upscale, and K.

    Row p holds the weights of input offsets -K..K for output phase p; each row sums to 1 (MATLAB normalises).
    """
    from srkit.ops.resize import _KERNELS, _check_kernel

    func, width, _ = _KERNELS[_check_kernel(kernel)]
    k = int(math.ceil(width / 2.0)) + 1
    offsets = np.arange(-k, k + 1, dtype=np.float64)
    # 1-based output x = s*j + p + 1 maps to u = x/s + (1 - 1/s)/2; relative to input pixel j (1-based j + 1)
    # that is d = (p + 0.5)/s - 0.5, the same for every j.
    d = (np.arange(scale, dtype=np.float64) + 0.5) / scale - 0.5
    w = func(d[:, None] - offsets[None, :])
    w = w / w.sum(axis=1, keepdims=True)
    return w, k


def _symmetric_pad(x: torch.Tensor, k: int) -> torch.Tensor:
    """Pad the last two dims by `k` with MATLAB's symmetric mirror (edge pixel repeated), for H, W >= k."""
    x = torch.cat([x[..., :k, :].flip(-2), x, x[..., -k:, :].flip(-2)], dim=-2)
    return torch.cat([x[..., :k].flip(-1), x, x[..., -k:].flip(-1)], dim=-1)


class MatlabUpsample(nn.Module):
    """MATLAB `imresize(x, s)` ('modern' convention) for an integer `s`, built from export-friendly ops.

    (N, 1, H, W) float -> (N, 1, sH, sW); equals `imresize_matlab(x, s, kernel=kernel)` up to float32
    rounding for H, W >= K (2 for cubic, 4 for lanczos3).
    """

    weight: torch.Tensor  # buffer (not saved)

    def __init__(self, scale: int, kernel: str = "cubic"):
        super().__init__()
        if int(scale) != scale or scale < 1:
            raise ConfigError(f"only integer upscales export, got scale {scale}")
        w1, k = _phase_weights(int(scale), kernel)
        w2 = np.einsum("pa,qb->pqab", w1, w1).reshape(scale * scale, 1, 2 * k + 1, 2 * k + 1)
        self.scale = int(scale)
        self.k = k
        self.register_buffer("weight", torch.from_numpy(w2.astype(np.float32)), persistent=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = F.conv2d(_symmetric_pad(x, self.k), self.weight)
        return F.pixel_shuffle(y, self.scale)


class ExportableSRModel(nn.Module):
    """`SRModel` semantics on (B, C, H, W) float [0, 1] -> (B, C, sH, sW), traceable for any H and W.

    Classical upsamplers and the chroma path of Y-only models use `MatlabUpsample` instead of
    `imresize_matlab`; everything else is the model's own forward.

    Raises:
        ConfigError: a classical upsampler with a non-integer scale, or a resize kernel that has no export form.
    """

    def __init__(self, model: SRModel):
        super().__init__()
        self.model = model
        info = model.info
        self.up: nn.Module | None = None
        if isinstance(model.module, ClassicalUpsampler):
            self.up = MatlabUpsample(info.scale, model.module.kernel)
        elif info.color_space == "y":
            self.up = MatlabUpsample(info.scale, "cubic")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        info = self.model.info
        if isinstance(self.model.module, ClassicalUpsampler):
            assert self.up is not None
            b, c, h, w = x.shape
            y = self.up(x.reshape(b * c, 1, h, w))
            return y.reshape(b, c, h * info.scale, w * info.scale)
        if info.color_space == "y" and x.shape[1] == 3:
            from srkit.ops import rgb_to_ycbcr, ycbcr_to_rgb

            assert self.up is not None
            ycc = rgb_to_ycbcr(x)
            y = self.model._run(ycc[:, :1])
            b, _, h, w = x.shape
            cbcr = self.up(ycc[:, 1:].reshape(b * 2, 1, h, w)).reshape(b, 2, h * info.scale, w * info.scale)
            return ycbcr_to_rgb(torch.cat([y, cbcr], dim=1))
        return self.model(x)


def default_channels(model: SRModel) -> int:
    """Channels of the exported graph's input: 3 (RGB) for Y-only models and classical upsamplers, else the
    model's own."""
    if model.info.channel_agnostic or model.info.color_space == "y":
        return 3
    return model.info.in_channels


def needs_deploy(model: nn.Module) -> bool:
    """True when `srkit.deployment.deploy` would change the model (re-parameterisable blocks, fusable
    modules, BatchNorm)."""
    from srkit.deployment import _has_method

    return any(
        _has_method(m, "switch_to_deploy") or _has_method(m, "fuse") or isinstance(m, nn.BatchNorm2d)
        for m in model.modules()
    )


def inference_form(model: SRModel) -> SRModel:
    """`deploy(model)` when that folds something (a copy), else `model` itself; in eval mode either way."""
    if needs_deploy(model):
        from srkit.deployment import deploy

        return deploy(model)
    return model.eval()


#: Key of the srkit metadata in an export (ONNX `metadata_props`, TorchScript extra file `srkit.json`).
EXPORT_METADATA_KEY = "srkit"


def export_metadata(model: SRModel, channels: int) -> dict:
    """What srkit writes into its exports so that `srkit.export.load` can run them as models: the graph's
    channels (colour handling is inside the graph), scale, and what tiling needs (receptive field, size
    multiple), with the source model's architecture and cost (MACs per LR pixel of `model`, which the
    exporters pass deployed)."""
    info = model.info
    macs = info.macs_per_lr_pixel
    if macs is None:
        from srkit.archs.profile import macs_per_lr_pixel

        macs = float(macs_per_lr_pixel(model))
    return {
        "format": "srkit-export",
        "version": 1,
        "arch": info.name,
        "scale": int(info.scale),
        "channels": int(channels),
        "color_space_inside": info.color_space,
        "receptive_field": info.receptive_field,
        "size_multiple": int(info.size_multiple),
        "macs_per_lr_pixel": macs,
    }
