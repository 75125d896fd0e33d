"""Model cost and shape facts for `srkit info` and model cards."""

from __future__ import annotations

import math


from srkit.archs.probe import count_macs
from srkit.srmodel import SRModel


def macs_per_lr_pixel(model: SRModel, side: int = 32) -> float:
    """MACs per LR input pixel, counted on a side x side LR input (rounded up to the size multiple).

    Convolutional and windowed-attention models cost the same per pixel at any size (borders aside), so
    this extrapolates linearly; papers quote the same linear figure at 1280x720 output. A multi-frame model
    (`ModelInfo.frames` > 1) is counted on a clip of `frames` frames and the count divided by the frames: the cost
    per LR pixel of each output frame, its share of the flow estimation included.
    """
    info = model.info
    m = info.size_multiple
    side = int(math.ceil(side / m) * m)
    if info.multi_frame:
        macs = count_macs(model.module, (1, info.frames, info.in_channels, side, side))
        return macs / (info.frames * side * side)
    macs = count_macs(model.module, (1, info.in_channels, side, side))
    return macs / (side * side)


def describe(model: SRModel) -> dict:
    """A flat dict of the model's facts (JSON-friendly)."""
    from srkit.deployment import deploy

    info = model.info
    s = info.scale
    exported = info.options.get("format") in ("onnx", "torchscript")
    if exported:
        # A graph run by onnxruntime / torch.jit: its cost is what srkit measured before exporting (if it did).
        params = params_deployed = None
        per_lr = info.macs_per_lr_pixel
    else:
        params = sum(p.numel() for p in model.module.parameters())
        # Re-parameterised models are costed in their inference form; the training-form size is reported beside.
        deployed = deploy(model)
        params_deployed = sum(p.numel() for p in deployed.module.parameters())
        per_lr = macs_per_lr_pixel(deployed)
    return {
        "arch": info.name,
        "scale": s,
        **({"format": info.options["format"]} if exported else {}),
        "params": params_deployed,
        "params_training_form": params,
        "macs_per_output_pixel": None if per_lr is None else per_lr / (s * s),
        "macs_720p_G": None if per_lr is None else per_lr * (1280 * 720) / (s * s) / 1e9,
        "receptive_field": info.receptive_field,
        "color_space": "any (per channel)" if info.channel_agnostic else info.color_space,
        "channels": "any" if info.channel_agnostic else info.in_channels,
        "input_range": info.input_range,
        "size_multiple": info.size_multiple,
        "safe_dtypes": ", ".join(info.safe_dtypes),
        **({"frames": f"clips, windows of {info.frames} + {info.frame_context} context frames each side"}
           if info.multi_frame else {}),
    }
