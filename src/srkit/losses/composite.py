"""A weighted sum of loss terms configured by name: the ``loss:`` list of a run config.

Pixel/frequency terms (``l1``, ``mse``, ``charbonnier``, ``fft``, ``gradient``) and the VGG19 perceptual term
(``perceptual``) live here. Adversarial, discriminator feature-matching and LDL artifact terms need the
discriminator or the EMA model, so the trainer adds them from the run config's ``gan:`` section instead
(`srkit.train.gan`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator
from torch import nn

from srkit.errors import ConfigError
from srkit.losses.perceptual import DEFAULT_LAYER_WEIGHTS, VGG19_CONV_LAYERS, PerceptualLoss
from srkit.losses.pixel import charbonnier_loss, fft_loss, gradient_loss, l1_loss, mse_loss

__all__ = ["LOSS_NAMES", "CompositeLoss", "LossTerm"]

LossName = Literal["l1", "mse", "charbonnier", "fft", "gradient", "perceptual"]
LOSS_NAMES: tuple[str, ...] = ("l1", "mse", "charbonnier", "fft", "gradient", "perceptual")

# Options that only one loss accepts: option -> the loss it belongs to.
_OWN_OPTIONS = {"eps": "charbonnier", "layers": "perceptual", "weights": "perceptual", "before_relu": "perceptual"}


class LossTerm(BaseModel):
    """One weighted term of :class:`CompositeLoss` (a config entry such as ``{name: l1, weight: 1.0}``).

    Attributes:
        name: which loss: ``l1``, ``mse``, ``charbonnier``, ``fft``, ``gradient`` or ``perceptual``.
        weight: >= 0 factor in the sum (0: computed and logged, not trained on).
        eps: Charbonnier's epsilon (> 0; default 1e-3); only allowed for ``charbonnier``.
        layers: perceptual only: ``{vgg19 conv layer: weight}``, names ``conv1_1`` ... ``conv5_4``; default
            ``{conv1_2: 0.1, conv2_2: 0.1, conv3_4: 1, conv4_4: 1, conv5_4: 1}`` (ESRGAN / Real-ESRGAN).
        weights: perceptual only: the VGG19 weights file (torchvision's ``vgg19-dcbb9e9d.pth`` or any state dict
            with its ``features.N.weight`` keys); unset: that file in torch's hub cache
            (``torch.hub.get_dir()/checkpoints``); ``random``: seeded random weights (tests only). Never downloaded.
        before_relu: perceptual only: take the features before the ReLU (default True, as ESRGAN) or after it.
    """

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: LossName
    weight: float = Field(default=1.0, ge=0.0, allow_inf_nan=False)
    eps: float | None = Field(default=None, gt=0.0, allow_inf_nan=False)
    layers: dict[str, float] | None = Field(default=None, min_length=1)
    weights: str | None = Field(default=None, min_length=1)
    before_relu: bool | None = None

    @field_validator("layers")
    @classmethod
    def _known_layers(cls, v: dict[str, float] | None) -> dict[str, float] | None:
        if v is None:
            return v
        for name, w in v.items():
            if name not in VGG19_CONV_LAYERS:
                raise ValueError(f"unknown VGG19 layer {name!r} (known: {', '.join(VGG19_CONV_LAYERS)})")
            if not (w >= 0.0 and w < float("inf")):
                raise ValueError(f"layer weight of {name} must be a finite number >= 0, got {w!r}")
        return v

    @model_validator(mode="after")
    def _options_of_their_loss(self) -> LossTerm:
        for option, owner in _OWN_OPTIONS.items():
            if getattr(self, option) is not None and self.name != owner:
                raise ValueError(f"{option} applies to the {owner} loss only, not to {self.name!r}")
        return self


def _term_value(term: LossTerm, sr: torch.Tensor, hr: torch.Tensor, modules: nn.ModuleDict) -> torch.Tensor:
    match term.name:
        case "l1":
            return l1_loss(sr, hr)
        case "mse":
            return mse_loss(sr, hr)
        case "charbonnier":
            return charbonnier_loss(sr, hr, eps=1e-3 if term.eps is None else term.eps)
        case "fft":
            return fft_loss(sr, hr)
        case "gradient":
            return gradient_loss(sr, hr)
        case "perceptual":
            return modules["perceptual"](sr, hr)
        case other:
            # Reached only by a LossTerm built without validation (model_construct).
            raise ConfigError(f"unknown loss {other!r} (known: {', '.join(LOSS_NAMES)})")


def _as_term(t: LossTerm | Mapping[str, object]) -> LossTerm:
    if isinstance(t, LossTerm):
        return t
    try:
        return LossTerm.model_validate(t)
    except ValidationError as e:
        msgs = "; ".join(f"{'.'.join(map(str, err['loc'])) or 'term'}: {err['msg']}" for err in e.errors())
        raise ConfigError(f"bad loss term {dict(t) if isinstance(t, Mapping) else t!r}: {msgs}") from None


class CompositeLoss(nn.Module):
    """Weighted sum of loss terms: ``total = sum_i weight_i * loss_i(sr, hr)``.

    Args:
        terms: :class:`LossTerm` s (or mappings validated into them; a bad one raises ConfigError with
            pydantic's reasons, e.g. an unknown name). At least one; names must be distinct. A ``perceptual``
            term loads its frozen VGG19 here (a missing weights file is a ConfigError saying where to put it).

    Forward:
        ``sr``, ``hr``: float (B, C, H, W) in [0, 1]. Returns ``(total, values)``: ``total`` a 0-dim tensor carrying
        the gradient, ``values`` ``{name: unweighted value}`` as detached 0-dim tensors (for logging; convert with
        ``float()`` when needed, which syncs the device). Zero-weight terms are computed without autograd
        and only logged.

    Raises:
        ConfigError: no terms, duplicate names, invalid term, missing VGG19 weights.
    """

    def __init__(self, terms: Sequence[LossTerm | Mapping[str, object]]) -> None:
        super().__init__()
        checked = tuple(_as_term(t) for t in terms)
        if not checked:
            raise ConfigError("CompositeLoss needs at least one loss term")
        names = [t.name for t in checked]
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise ConfigError(f"loss terms must have distinct names; repeated: {', '.join(dup)}")
        self.terms = checked
        # Loss terms that hold networks (frozen; they are not trained and not checkpointed by the trainer).
        self.nets = nn.ModuleDict()
        for t in checked:
            if t.name == "perceptual":
                self.nets["perceptual"] = PerceptualLoss(
                    DEFAULT_LAYER_WEIGHTS if t.layers is None else t.layers, weights=t.weights,
                    before_relu=True if t.before_relu is None else t.before_relu,
                )

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        total: torch.Tensor | None = None
        values: dict[str, torch.Tensor] = {}
        for term in self.terms:
            if term.weight == 0.0:
                with torch.no_grad():
                    values[term.name] = _term_value(term, sr, hr, self.nets).detach()
                continue
            v = _term_value(term, sr, hr, self.nets)
            values[term.name] = v.detach()
            total = term.weight * v if total is None else total + term.weight * v
        if total is None:
            # Every weight is 0: a zero that still connects to sr, so backward() works (and does nothing).
            total = (sr * 0).sum()
        return total, values

    def extra_repr(self) -> str:
        return ", ".join(
            f"{t.weight:g}*{t.name}" + (f"(eps={t.eps:g})" if t.eps is not None else "") for t in self.terms
        )
