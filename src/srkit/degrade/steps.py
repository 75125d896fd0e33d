"""The steps a degradation pipeline is made of, as validated data (YAML / dicts).

Each step is a frozen pydantic model with an ``op`` tag; a pipeline is a list of them. Ranges are ``[low, high]``
pairs sampled uniformly; probabilities are in [0, 1]; choice tables such as ``modes: {area: 1, bicubic: 2}`` are
relative weights. A bad value is refused with pydantic's reason at the key's path (turned into a one-line
``ConfigError`` by :func:`srkit.degrade.pipeline.parse_degradation` or the train config loader).

Noise levels ``sigma`` are in 8-bit units (``[1, 30]`` means sigma 1/255 .. 30/255), as the papers state them.
"""

from __future__ import annotations

from typing import Annotated, Literal, Union

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, field_validator, model_validator

__all__ = [
    "POISSON_SIGMA_PER_SCALE",
    "BlurStep",
    "ChoiceStep",
    "JpegStep",
    "NoiseStep",
    "ResizeStep",
    "SequenceStep",
    "SharpenStep",
    "ShuffleStep",
    "SincStep",
    "STEP_OPS",
    "Step",
    "ToTargetStep",
]

_STRICT = ConfigDict(extra="forbid", frozen=True)

Prob = Annotated[float, Field(ge=0.0, le=1.0, allow_inf_nan=False)]
Weight = Annotated[float, Field(ge=0.0, allow_inf_nan=False)]
ODD_SIZES = (7, 9, 11, 13, 15, 17, 19, 21)
_DEFAULT_KERNELS = {"iso": 0.45, "aniso": 0.25, "generalized_iso": 0.12, "generalized_aniso": 0.03,
                    "plateau_iso": 0.12, "plateau_aniso": 0.03}


def _check_range(v: tuple[float, float], lo: float, hi: float | None = None) -> tuple[float, float]:
    a, b = v
    if a > b:
        raise ValueError(f"range [{a}, {b}] is reversed")
    if a < lo or (hi is not None and b > hi):
        raise ValueError(f"range [{a}, {b}] must lie within [{lo}, {hi if hi is not None else 'inf'}]")
    return v


def _check_sizes(v: tuple[int, ...]) -> tuple[int, ...]:
    if not v:
        raise ValueError("at least one kernel size")
    for k in v:
        if k % 2 == 0:
            raise ValueError(f"{k} is even; kernel sizes are odd")
        if not 3 <= k <= 41:
            raise ValueError(f"{k} is outside 3..41")
    return v


def _check_weights(v: dict[str, float], known: tuple[str, ...], what: str) -> dict[str, float]:
    for name in v:
        if name not in known:
            raise ValueError(f"unknown {what} {name!r}; known: {', '.join(known)}")
    if not any(w > 0 for w in v.values()):
        raise ValueError(f"at least one {what} needs a weight > 0")
    return v


def _check_modes(v: dict[str, float]) -> dict[str, float]:
    from srkit.degrade.resize import RESIZE_MODES

    return _check_weights(v, RESIZE_MODES, "resize mode")


KernelSizes = Annotated[tuple[int, ...], AfterValidator(_check_sizes)]
ResizeModes = Annotated[dict[str, Weight], AfterValidator(_check_modes)]


def _all_modes() -> dict[str, float]:
    return {"area": 1.0, "bilinear": 1.0, "bicubic": 1.0}


class BlurStep(BaseModel):
    """Blur with a random kernel (:func:`srkit.degrade.kernels.sample_kernel`); ``sinc_prob``: a sinc kernel instead."""

    model_config = _STRICT
    op: Literal["blur"] = "blur"
    prob: Prob = 1.0
    kernel_sizes: KernelSizes = ODD_SIZES
    kernel_probs: dict[str, Weight] = Field(default_factory=lambda: dict(_DEFAULT_KERNELS))
    sigma: tuple[float, float] = (0.2, 3.0)
    beta_generalized: tuple[float, float] = (0.5, 4.0)
    beta_plateau: tuple[float, float] = (1.0, 2.0)
    sinc_prob: Prob = 0.1

    @field_validator("kernel_probs")
    @classmethod
    def _kernels(cls, v: dict[str, float]) -> dict[str, float]:
        from srkit.degrade.kernels import KERNEL_TYPES

        for name, p in v.items():
            if p > 1.0:
                raise ValueError(f"probability {p} of {name!r} is outside [0, 1]")
        return _check_weights(v, KERNEL_TYPES, "kernel type")

    @field_validator("sigma", "beta_generalized", "beta_plateau")
    @classmethod
    def _positive_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        _check_range(v, 0.0)
        if v[0] <= 0:
            raise ValueError(f"range [{v[0]}, {v[1]}] must be > 0")
        return v


class ResizeStep(BaseModel):
    """Random up / down / keep resize by a factor of the current size (or of the target LR size)."""

    model_config = _STRICT
    op: Literal["resize"] = "resize"
    prob: Prob = 1.0
    up_down_keep: tuple[Weight, Weight, Weight] = (0.2, 0.7, 0.1)
    up: tuple[float, float] = (1.0, 1.5)
    down: tuple[float, float] = (0.15, 1.0)
    modes: ResizeModes = Field(default_factory=_all_modes)
    relative_to: Literal["current", "target"] = "current"

    @field_validator("up")
    @classmethod
    def _up(cls, v: tuple[float, float]) -> tuple[float, float]:
        return _check_range(v, 1.0, 8.0)

    @field_validator("down")
    @classmethod
    def _down(cls, v: tuple[float, float]) -> tuple[float, float]:
        _check_range(v, 0.0, 1.0)
        if v[0] <= 0:
            raise ValueError("down factors must be > 0")
        return v

    @field_validator("up_down_keep")
    @classmethod
    def _udk(cls, v: tuple[float, float, float]) -> tuple[float, float, float]:
        if not any(w > 0 for w in v):
            raise ValueError("at least one of up / down / keep needs a weight > 0")
        return v


class ToTargetStep(BaseModel):
    """Resize to the LR size (HR size / scale) with a randomly chosen mode. Every pipeline has one."""

    model_config = _STRICT
    op: Literal["to_target"] = "to_target"
    modes: ResizeModes = Field(default_factory=_all_modes)


#: Std (8-bit units) of Poisson noise of ``scale`` 1 at mid-gray in an image using all 256 levels
#: (:func:`srkit.degrade.noise.add_poisson_noise`: ``scale * sqrt(x / 256)`` at intensity x = 0.5, times 255).
POISSON_SIGMA_PER_SCALE = 255.0 * (0.5 / 256.0) ** 0.5


class NoiseStep(BaseModel):
    """Gaussian (``gaussian_prob``) or else Poisson noise; ``gray_prob``: one field for all channels.

    ``poisson_sigma`` (8-bit units) gives the Poisson noise a level comparable with Gaussian sigma instead of
    drawing ``poisson_scale``: its std at mid-gray in a full-range image (:data:`POISSON_SIGMA_PER_SCALE` per
    unit of scale; shot noise is weaker in the shadows and stronger in the highlights, and stronger in images
    using few levels). Both kinds then record a drawn ``sigma``; applied, every noise step also records ``std``,
    the standard deviation of the noise the image actually got (the level a conditioned model is given).
    """

    model_config = _STRICT
    op: Literal["noise"] = "noise"
    prob: Prob = 1.0
    gaussian_prob: Prob = 0.5
    sigma: tuple[float, float] = (1.0, 30.0)
    poisson_scale: tuple[float, float] = (0.05, 3.0)
    poisson_sigma: tuple[float, float] | None = None
    gray_prob: Prob = 0.4

    @field_validator("sigma", "poisson_scale", "poisson_sigma")
    @classmethod
    def _nonneg(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        return None if v is None else _check_range(v, 0.0)


class JpegStep(BaseModel):
    """JPEG compression at a random quality: real libjpeg (CPU) or the differentiable approximation (GPU batches)."""

    model_config = _STRICT
    op: Literal["jpeg"] = "jpeg"
    prob: Prob = 1.0
    quality: tuple[int, int] = (30, 95)
    backend: Literal["libjpeg", "differentiable"] = "libjpeg"

    @field_validator("quality")
    @classmethod
    def _quality(cls, v: tuple[int, int]) -> tuple[int, int]:
        a, b = v
        if not (1 <= a <= 100 and 1 <= b <= 100):
            raise ValueError(f"JPEG quality [{a}, {b}] is outside 1..100")
        if a > b:
            raise ValueError(f"range [{a}, {b}] is reversed")
        return v


class SincStep(BaseModel):
    """A 2-D sinc (ideal low-pass) filter: ringing and overshoot as left by resampling and sharpening."""

    model_config = _STRICT
    op: Literal["sinc"] = "sinc"
    prob: Prob = 0.8
    kernel_sizes: KernelSizes = ODD_SIZES
    cutoff: tuple[float, float] | None = None  # radians; None: [pi/3, pi] below size 13, else [pi/5, pi]

    @field_validator("cutoff")
    @classmethod
    def _cutoff(cls, v: tuple[float, float] | None) -> tuple[float, float] | None:
        if v is not None:
            _check_range(v, 0.0, 3.1415927)
            if v[0] <= 0:
                raise ValueError("cut-off must be > 0")
        return v


class SharpenStep(BaseModel):
    """Unsharp masking of the current image (in-camera or editor sharpening: halos)."""

    model_config = _STRICT
    op: Literal["sharpen"] = "sharpen"
    prob: Prob = 1.0
    weight: tuple[float, float] = (0.3, 1.0)
    sigma: tuple[float, float] = (0.8, 2.0)

    @field_validator("weight")
    @classmethod
    def _w(cls, v: tuple[float, float]) -> tuple[float, float]:
        return _check_range(v, 0.0)

    @field_validator("sigma")
    @classmethod
    def _s(cls, v: tuple[float, float]) -> tuple[float, float]:
        _check_range(v, 0.0, 16.0)
        if v[0] <= 0:
            raise ValueError("sigma must be > 0")
        return v


class ShuffleStep(BaseModel):
    """Run its steps in a random order (BSRGAN's shuffled degradations; Real-ESRGAN's final stage)."""

    model_config = _STRICT
    op: Literal["shuffle"] = "shuffle"
    steps: list[Step] = Field(min_length=1)


class ChoiceStep(BaseModel):
    """Run exactly one of its steps, drawn with probability proportional to ``weights`` (e.g. a share of clean,
    bicubic-only samples beside the degraded ones)."""

    model_config = _STRICT
    op: Literal["choice"] = "choice"
    weights: list[Weight] = Field(min_length=1)
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _one_weight_per_step(self) -> ChoiceStep:
        if len(self.weights) != len(self.steps):
            raise ValueError(f"{len(self.weights)} weights for {len(self.steps)} steps")
        if not any(w > 0 for w in self.weights):
            raise ValueError("at least one step needs a weight > 0")
        return self


class SequenceStep(BaseModel):
    """Run its steps in order (a group that a ``shuffle`` moves as one)."""

    model_config = _STRICT
    op: Literal["sequence"] = "sequence"
    prob: Prob = 1.0
    steps: list[Step] = Field(min_length=1)

    @model_validator(mode="after")
    def _target_always_runs(self) -> SequenceStep:
        if self.prob < 1.0 and any(isinstance(s, ToTargetStep) for s in self.steps):
            raise ValueError("a sequence holding to_target must have prob 1")
        return self


Step = Annotated[
    Union[BlurStep, ResizeStep, ToTargetStep, NoiseStep, JpegStep, SincStep, SharpenStep, ShuffleStep, SequenceStep,
          ChoiceStep],
    Field(discriminator="op"),
]
# The `op` tags: pydantic puts the tag in an error's location; error messages leave it out.
STEP_OPS = ("blur", "resize", "to_target", "noise", "jpeg", "sinc", "sharpen", "shuffle", "sequence", "choice")
ShuffleStep.model_rebuild()
SequenceStep.model_rebuild()
ChoiceStep.model_rebuild()
