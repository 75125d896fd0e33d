"""Network interpolation (DNI): a model whose weights lie on the line between two models of one architecture.

``interpolate(a, b, alpha)`` returns the model with weights ``(1 - alpha) * a + alpha * b``: the same network, so
the same cost as either end. Between a fidelity model and its GAN fine-tune it trades distortion for perceived
detail (ESRGAN's network interpolation); between a model and its denoising twin it sets how much is cleaned
(Real-ESRGAN's general / wdn pair, ``-dn``).

Reference: X. Wang, K. Yu, C. Dong, X. Tang and C. C. Loy, "Deep Network Interpolation for Continuous Imagery
Effect Transition", CVPR 2019.
"""

from __future__ import annotations

import copy
import math
import os
from pathlib import Path

import torch

from srkit.errors import ConfigError, ModelLoadError
from srkit.srmodel import SRModel

__all__ = ["interpolate"]


def _as_model(model: str | os.PathLike[str] | SRModel) -> SRModel:
    if isinstance(model, SRModel):
        return model
    from srkit.models import load_model

    return load_model(Path(model) if isinstance(model, os.PathLike) else model)


def interpolate(model_a: str | os.PathLike[str] | SRModel, model_b: str | os.PathLike[str] | SRModel,
                alpha: float) -> SRModel:
    """The model with weights ``(1 - alpha) * model_a + alpha * model_b``.

    Args:
        model_a, model_b: shipped names, weight files or `SRModel`s of the same architecture, options, scale and
            colour handling (e.g. ``"real-x4"`` and ``"real-x4-gan"``).
        alpha: in [0, 1]; 0 gives model_a's weights, 1 model_b's.

    Returns:
        A new `SRModel` (eval mode) with model_a's `info`; neither input is modified.

    Raises:
        ConfigError: alpha outside [0, 1] or not a number.
        ModelLoadError: the two models differ in architecture, options, scale, colour space or tensor layout, or
            in a non-float buffer (such as a step counter).
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) \
            or not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"alpha must be a number in [0, 1], got {alpha!r}")
    a, b = _as_model(model_a), _as_model(model_b)
    ia, ib = a.info, b.info
    same = (ia.arch, ia.scale, ia.options, ia.color_space, ia.in_channels) == \
           (ib.arch, ib.scale, ib.options, ib.color_space, ib.in_channels)
    if not same:
        raise ModelLoadError(f"cannot interpolate {ia.arch} x{ia.scale} {ia.options} with {ib.arch} x{ib.scale} "
                             f"{ib.options}: the two models must be the same network")
    sa, sb = a.module.state_dict(), b.module.state_dict()
    if sa.keys() != sb.keys() or any(sa[k].shape != sb[k].shape for k in sa):
        raise ModelLoadError("cannot interpolate: the two models' tensors differ in names or shapes")
    mixed = {}
    for k, ta in sa.items():
        tb = sb[k]
        if ta.is_floating_point():
            mixed[k] = torch.lerp(ta.double(), tb.double(), float(alpha)).to(ta.dtype)
        elif torch.equal(ta, tb):
            mixed[k] = ta.clone()
        else:
            raise ModelLoadError(f"cannot interpolate: non-float tensor {k!r} differs between the two models")
    module = copy.deepcopy(a.module)
    module.load_state_dict(mixed)
    return SRModel(module, ia).eval()
