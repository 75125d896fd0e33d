"""Network interpolation (DNI): a model whose weights lie on the line between two models of one architecture.

``interpolate(a, b, alpha)`` returns the model with weights ``(1 - alpha) * a + alpha * b``: the same network, so
the same cost as either end. Between a fidelity model and its GAN fine-tune it trades distortion for perceived
detail (ESRGAN's network interpolation); between a model and its denoising twin it sets how much is cleaned
(Real-ESRGAN's general / wdn pair, ``-dn``).

`DENOISE_PAIRS` lists the pairs that ship together for denoising strength (`denoise_model`, `srkit upscale
--denoise A`): Real-ESRGAN's general model and its "without denoising" twin, from srkit's catalogue (`srkit pull`
both). srkit's own real-x4 / real-x4-gan are not such a pair: they differ in texture (a GAN fine-tune), not in
how much they clean, so `interpolate` trades fidelity for detail between them; the denoising control of srkit's
own models is `real-x4-ctrl`'s strength (`srkit.infer.conditioning`).

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

__all__ = ["DENOISE_PAIRS", "denoise_model", "denoise_pair", "interpolate"]

#: Denoising pairs that ship together: model name -> (weakest denoising, strongest denoising). `denoise_model(name,
#: a)` is ``(1 - a) * weakest + a * strongest``, as Real-ESRGAN's ``-dn a`` (its ``realesr-general-x4v3`` with
#: weight a and ``realesr-general-wdn-x4v3`` with 1 - a). Either name of a pair selects it.
DENOISE_PAIRS: dict[str, tuple[str, str]] = {
    name: ("4x-realesr-general-wdn-x4v3", "4x-realesr-general-x4v3")
    for name in ("4x-realesr-general-x4v3", "4x-realesr-general-wdn-x4v3")
}


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


def denoise_pair(model: str | os.PathLike[str] | SRModel) -> tuple[str, str]:
    """(weakest, strongest) denoising model of the pair `model` belongs to (`DENOISE_PAIRS`).

    Raises:
        ConfigError: one line when `model` is in no pair (an `SRModel` or a file never is).
    """
    name = model if isinstance(model, str) else None
    pair = DENOISE_PAIRS.get(name) if name is not None else None
    if pair is None:
        shown = model.info.name if isinstance(model, SRModel) else os.fspath(model)
        known = ", ".join(sorted({p[1] for p in DENOISE_PAIRS.values()}))
        raise ConfigError(f"model {shown} has no denoising pair for --denoise (pairs: {known}; for real-x4-ctrl use "
                          "--strength)")
    return pair


def denoise_model(model: str | os.PathLike[str] | SRModel, alpha: float) -> SRModel:
    """The model of `model`'s denoising pair at strength `alpha` in [0, 1] (0: its weakest denoising, 1: its
    strongest): `interpolate(weakest, strongest, alpha)`.

    Raises:
        ConfigError: alpha outside [0, 1], or a model in no pair. ModelLoadError: a model of the pair cannot be
            loaded (e.g. not pulled: `srkit pull NAME`).
    """
    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not math.isfinite(alpha) \
            or not 0.0 <= alpha <= 1.0:
        raise ConfigError(f"denoise strength must be a number in [0, 1], got {alpha!r}")
    weak, strong = denoise_pair(model)
    return interpolate(weak, strong, float(alpha))
