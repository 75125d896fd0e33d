"""Degradation pipelines: ``I_LR = D(I_HR; theta) + n`` with every parameter theta drawn from an explicit generator,
recorded, and replayable.

A pipeline is a list of steps (:mod:`srkit.degrade.steps`) given by a preset name (:data:`PRESETS`) or written
out. Running it on an HR batch samples each image's parameters in turn from one ``torch.Generator`` (so the
same seed gives the same LR, on any machine and in any DataLoader worker) and returns, per image, the record
of what was done: a list of plain dicts such as ``{"op": "jpeg", "quality": 57, "backend": "libjpeg"}``.
Noise steps record the seed of their noise field, so :meth:`Degradation.replay` rebuilds the LR from the
record alone. The LR ends at exactly ``(H // s, W // s)`` and is quantised to 8-bit levels, as a stored image is.

A batch is degraded batched (:mod:`srkit.degrade.batch`): each op runs once for all the images that need it
(grouped convolutions, one transfer per group), while each image still gets exactly its own record. An image's
LR does not depend on the rest of its batch beyond float rounding (within one 8-bit level).

Reference: X. Wang et al., "Real-ESRGAN", ICCVW 2021; K. Zhang et al., "BSRGAN", ICCV 2021; survey section 2.1.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import torch
from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from srkit.degrade.presets import PRESETS
from srkit.degrade.steps import (
    POISSON_SIGMA_PER_SCALE,
    BlurStep,
    ChoiceStep,
    JpegStep,
    NoiseStep,
    ResizeStep,
    SequenceStep,
    SharpenStep,
    ShuffleStep,
    SincStep,
    Step,
    ToTargetStep,
    STEP_OPS,
)
from srkit.errors import ConfigError, ShapeError

__all__ = [
    "Degradation",
    "DegradationCfg",
    "SharpenTargetCfg",
    "degrade_image",
    "describe",
    "image_seed",
    "level_problem",
    "parse_degradation",
    "preset_steps",
    "record_levels",
]

Record = list[dict[str, Any]]


class SharpenTargetCfg(BaseModel):
    """Unsharp masking of the HR target (Real-ESRGAN's USM ground truth): weight, sigma (px), threshold (8-bit)."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    weight: float = Field(default=0.5, ge=0.0)
    sigma: float = Field(default=8.0, gt=0.0, le=16.0)
    threshold: float = Field(default=10.0, ge=0.0, le=255.0)


class DegradationCfg(BaseModel):
    """A degradation: a preset name or a list of steps, plus how training uses it.

    Attributes:
        preset: a name from :data:`PRESETS` (``bicubic``, ``bsrgan``, ``realesrgan``, ``camera``).
        steps: the pipeline written out (exclusive with ``preset``).
        sharpen_target: unsharp-mask the HR training target (``None``: keep it).
        on: ``loader`` - each sample degraded in the DataLoader worker (CPU, libjpeg); ``batch`` - each batch
            degraded in the training process on the training device.
        margin: LR pixels of context degraded around a training patch and cut away after (no border effects
            of blur and resize inside the patch).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)
    preset: str | None = None
    steps: list[Step] | None = None
    sharpen_target: SharpenTargetCfg | None = None
    on: Literal["loader", "batch"] = "loader"
    margin: int = Field(default=4, ge=0, le=64)

    @model_validator(mode="after")
    def _one_source(self) -> DegradationCfg:
        if (self.preset is None) == (self.steps is None):
            raise ValueError("give either preset or steps")
        if self.preset is not None and self.preset not in PRESETS:
            raise ValueError(f"unknown preset {self.preset!r}; known: {', '.join(PRESETS)}")
        if self.steps is not None and not _reaches_target(self.steps):
            raise ValueError("the steps never resize to the LR size: add {op: to_target}")
        return self

    def resolved_steps(self) -> tuple[Step, ...]:
        if self.steps is not None:
            return tuple(self.steps)
        if self.preset is None:  # the validator above allows this only with steps
            raise ConfigError("degradation: give either preset or steps")
        return preset_steps(self.preset)


def _reaches_target(steps: Sequence[Any]) -> bool:
    for s in steps:
        if isinstance(s, ToTargetStep):
            return True
        if isinstance(s, (ShuffleStep, SequenceStep)) and _reaches_target(s.steps) and getattr(s, "prob", 1.0) == 1:
            return True
        if isinstance(s, ChoiceStep) and all(_reaches_target([c]) for c, w in zip(s.steps, s.weights) if w > 0):
            return True
    return False


class _StepList(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    steps: list[Step]


@functools.cache
def preset_steps(name: str) -> tuple[Step, ...]:
    """The validated steps of a preset (validated on first use, then cached)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown degradation preset {name!r}; known: {', '.join(PRESETS)}")
    return tuple(_StepList.model_validate(PRESETS[name]).steps)


def _one_line(e: ValidationError, where: str) -> str:
    msgs = []
    for err in e.errors():
        path = where
        for part in err["loc"]:
            if isinstance(part, int):
                path += f"[{part}]"
            elif part not in STEP_OPS and not any(c in part for c in "[]-"):
                path += f".{part}"
        msgs.append(f"{path}: {err['msg'].removeprefix('Value error, ')}")
    return "; ".join(msgs)


def parse_degradation(value: str | Mapping[str, Any] | DegradationCfg, where: str = "degradation") -> DegradationCfg:
    """A preset name, a mapping (YAML) or a :class:`DegradationCfg` -> a validated :class:`DegradationCfg`.

    Raises:
        ConfigError: one line naming the key, e.g. ``degradation.steps.0.prob: Input should be less than or
            equal to 1``.
    """
    if isinstance(value, DegradationCfg):
        return value
    if isinstance(value, str):
        value = {"preset": value}
    try:
        return DegradationCfg.model_validate(value)
    except ValidationError as e:
        raise ConfigError(_one_line(e, where)) from None


# ----------------------------------------------------------------------------------------------- sampling


def _rand(gen: torch.Generator) -> float:
    return float(torch.rand((), generator=gen, device=gen.device))


def _uniform(gen: torch.Generator, lo_hi: Sequence[float]) -> float:
    lo, hi = float(lo_hi[0]), float(lo_hi[1])
    return lo + (hi - lo) * _rand(gen)


def _int_uniform(gen: torch.Generator, lo_hi: Sequence[int]) -> int:
    lo, hi = int(lo_hi[0]), int(lo_hi[1])
    return lo + int(torch.randint(0, hi - lo + 1, (), generator=gen, device=gen.device))


def _choice(gen: torch.Generator, weights: Mapping[str, float] | Sequence[float]) -> Any:
    """A key of ``weights`` (or an index of a sequence) drawn with probability proportional to its weight."""
    keys = list(weights) if isinstance(weights, Mapping) else list(range(len(weights)))
    w = [float(weights[k]) for k in keys]  # type: ignore[index]
    u = _rand(gen) * sum(w)
    acc, last = 0.0, None
    for k, wk in zip(keys, w):
        if wk <= 0:
            continue
        acc += wk
        last = k
        if u < acc:
            return k
    return last  # u rounded up to the total


def _seed(gen: torch.Generator) -> int:
    return int(torch.randint(0, 2**62, (), generator=gen, device=gen.device))


@dataclass
class _Ctx:
    gen: torch.Generator
    target: tuple[int, int]
    size: tuple[int, int]
    record: Record


def _blur_settings(step: BlurStep):
    from srkit.degrade.kernels import BlurSettings

    return BlurSettings(kernel_sizes=tuple(step.kernel_sizes), kernel_probs=dict(step.kernel_probs),
                        sigma=step.sigma, beta_generalized=step.beta_generalized,
                        beta_plateau=step.beta_plateau, sinc_prob=step.sinc_prob)


def _scaled(size: tuple[int, int], f: float) -> tuple[int, int]:
    return max(1, int(size[0] * f)), max(1, int(size[1] * f))


def _sample(step: Step, ctx: _Ctx) -> None:
    """Draw the parameters of one step (recursing into groups) and append leaf records to ``ctx.record``."""
    gen = ctx.gen
    if isinstance(step, ShuffleStep):
        order = torch.randperm(len(step.steps), generator=gen, device=gen.device).tolist()
        for i in order:
            _sample(step.steps[i], ctx)
        return
    if isinstance(step, ChoiceStep):
        _sample(step.steps[_choice(gen, step.weights)], ctx)
        return
    if not isinstance(step, ToTargetStep) and _rand(gen) >= step.prob:
        return
    rec: dict[str, Any]
    if isinstance(step, SequenceStep):
        for s in step.steps:
            _sample(s, ctx)
        return
    if isinstance(step, BlurStep):
        from srkit.degrade.kernels import draw_kernel_record

        krec = draw_kernel_record(_blur_settings(step), gen)
        rec = {"op": "blur", **krec}
    elif isinstance(step, SincStep):
        from srkit.degrade.kernels import draw_sinc_record

        krec = draw_sinc_record(tuple(step.kernel_sizes), gen, step.cutoff)
        rec = {"op": "blur", **krec}
    elif isinstance(step, ResizeStep):
        direction = ("up", "down", "keep")[_choice(gen, step.up_down_keep)]
        f = 1.0 if direction == "keep" else _uniform(gen, step.up if direction == "up" else step.down)
        mode = _choice(gen, step.modes)
        base = ctx.size if step.relative_to == "current" else ctx.target
        ctx.size = _scaled(base, f)
        rec = {"op": "resize", "mode": mode, "factor": f, "size": list(ctx.size)}
    elif isinstance(step, ToTargetStep):
        ctx.size = ctx.target
        rec = {"op": "resize", "mode": _choice(gen, step.modes), "size": list(ctx.target)}
    elif isinstance(step, NoiseStep):
        gaussian = _rand(gen) < step.gaussian_prob
        gray = _rand(gen) < step.gray_prob
        if gaussian:
            rec = {"op": "noise", "kind": "gaussian", "sigma": _uniform(gen, step.sigma)}
        elif step.poisson_sigma is not None:
            level = _uniform(gen, step.poisson_sigma)
            rec = {"op": "noise", "kind": "poisson", "scale": level / POISSON_SIGMA_PER_SCALE, "sigma": level}
        else:
            rec = {"op": "noise", "kind": "poisson", "scale": _uniform(gen, step.poisson_scale)}
        rec.update(gray=gray, seed=_seed(gen))
    elif isinstance(step, JpegStep):
        rec = {"op": "jpeg", "quality": _int_uniform(gen, step.quality), "backend": step.backend}
    elif isinstance(step, SharpenStep):
        rec = {"op": "sharpen", "weight": _uniform(gen, step.weight), "sigma": _uniform(gen, step.sigma)}
    else:  # pragma: no cover - the Step union is closed
        raise ConfigError(f"unknown degradation step {type(step).__name__}")
    ctx.record.append(rec)


# ----------------------------------------------------------------------------------------------- applying


def _quantise(x: torch.Tensor) -> torch.Tensor:
    return torch.round(x.clamp(0.0, 1.0) * 255.0) / 255.0


@dataclass(frozen=True)
class Degradation:
    """A runnable degradation pipeline.

    Args:
        cfg: a :class:`DegradationCfg`, a preset name or a mapping (validated by :func:`parse_degradation`).

    Call: ``lr, records = degradation(hr, scale, generator)``.
    """

    cfg: DegradationCfg

    def __init__(self, cfg: DegradationCfg | str | Mapping[str, Any]) -> None:
        object.__setattr__(self, "cfg", parse_degradation(cfg))

    @property
    def steps(self) -> tuple[Step, ...]:
        return self.cfg.resolved_steps()

    def sample(self, hr_hw: tuple[int, int], scale: int, generator: torch.Generator) -> Record:
        """Draw one image's parameters: its record (leaf steps in the order they run)."""
        h, w = int(hr_hw[0]), int(hr_hw[1])
        target = (h // scale, w // scale)
        if min(target) < 1:
            raise ShapeError(f"an image of {h}x{w} is smaller than one LR pixel at x{scale}")
        ctx = _Ctx(generator, target, (h, w), [])
        for step in self.steps:
            _sample(step, ctx)
        return ctx.record

    def __call__(
        self, hr: torch.Tensor, scale: int, generator: torch.Generator
    ) -> tuple[torch.Tensor, list[Record]]:
        """Degrade a batch.

        Args:
            hr: float (B, C, H, W) in [0, 1] (C = 3 for colour noise and JPEG as intended; 1 works), any device;
                H and W are cropped to multiples of ``scale`` first.
            scale: integer SR factor (>= 1).
            generator: draws every parameter, image after image (a CPU generator serves CUDA images too).

        Returns:
            ``(lr, records)``: float (B, C, H // s, W // s) on hr's device, quantised to 8-bit levels; one record
            (list of dicts) per image.
        """
        _check_batch(hr, scale)
        records = [self.sample((hr.shape[-2], hr.shape[-1]), scale, generator) for _ in range(hr.shape[0])]
        return self.replay(hr, scale, records), records

    @staticmethod
    def replay(hr: torch.Tensor, scale: int, records: Sequence[Record]) -> torch.Tensor:
        """Apply recorded parameters: the LR that ``__call__`` returned with those records, bit for bit.

        The whole batch is processed together (:func:`srkit.degrade.batch.apply_records`); replaying one image's
        record alone gives its LR within one 8-bit level (float rounding of the batched kernels).
        """
        _check_batch(hr, scale)
        if len(records) != hr.shape[0]:
            raise ShapeError(f"{len(records)} records for a batch of {hr.shape[0]}")
        h, w = hr.shape[-2] // scale * scale, hr.shape[-1] // scale * scale
        target = (h // scale, w // scale)
        if hr.shape[0] == 0:
            return hr.new_zeros((0, hr.shape[1], *target))
        from srkit.degrade.batch import apply_records

        x, sizes = apply_records(hr[:, :, :h, :w], records)
        for size in sizes:
            if size != target:
                raise ConfigError(f"the pipeline ended at {size}, not the LR size {target}")
        return _quantise(x[:, :, : target[0], : target[1]])

    def training_pair(
        self, hr: torch.Tensor, scale: int, seed: int, color: str = "rgb"
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`training_batch` without the records."""
        lr, target, _ = self.training_batch(hr, scale, seed, color)
        return lr, target

    def training_batch(
        self, hr: torch.Tensor, scale: int, seed: int, color: str = "rgb"
    ) -> tuple[torch.Tensor, torch.Tensor, list[Record]]:
        """An (LR, target) training batch from RGB HR patches, for ``on: batch`` (degradation on the training device).

        Args:
            hr: float (B, 3, H, W) RGB in [0, 1], H and W multiples of ``scale``, on any device.
            scale: SR factor.
            seed: seeds the batch's parameter generator (the trainer passes a function of run seed, rank, step).
            color: ``"rgb"`` or ``"y"``: both tensors are returned as BT.601 luma (1 channel) for ``"y"``.

        Returns:
            ``(lr, target, records)``: (B, C, H / s, W / s) and (B, C, H, W) on hr's device, and each image's
            record (:func:`record_levels` gives a conditioned model's levels from it).
        """
        lr, records = self(hr, scale, torch.Generator().manual_seed(int(seed)))
        target = self.target(hr)
        if color == "y":
            from srkit.ops import rgb_to_ycbcr

            # luma of the 8-bit RGB, unrounded: what the loader's Y patches are
            lr, target = rgb_to_ycbcr(lr, y_only=True), rgb_to_ycbcr(target, y_only=True)
        return lr, target, records

    def target(self, hr: torch.Tensor) -> torch.Tensor:
        """The training target: ``hr`` unsharp-masked if ``sharpen_target`` is set, else ``hr`` itself."""
        s = self.cfg.sharpen_target
        if s is None:
            return hr
        from srkit.degrade.sharpen import unsharp_mask

        return _quantise(unsharp_mask(hr, s.weight, s.sigma, s.threshold / 255.0))


def _check_batch(hr: torch.Tensor, scale: int) -> None:
    if not isinstance(hr, torch.Tensor) or hr.ndim != 4 or not hr.is_floating_point():
        got = f"{hr.dtype} {tuple(hr.shape)}" if isinstance(hr, torch.Tensor) else type(hr).__name__
        raise ShapeError(f"degradation expects float HR images (B, C, H, W) in [0, 1], got {got}")
    if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
        raise ConfigError(f"scale must be an integer >= 1, got {scale!r}")


def image_seed(seed: int, *keys: int | str) -> int:
    """A 63-bit generator seed for one image from a run seed and keys (indices or names; names by CRC-32)."""
    import zlib

    import numpy as np

    ints = [int(seed)] + [zlib.crc32(k.encode()) if isinstance(k, str) else int(k) for k in keys]
    return int(np.random.SeedSequence(ints).generate_state(1, np.uint64)[0] >> 1)


def degrade_image(hr: Any, degradation: Degradation, scale: int, seed: int) -> tuple[Any, Record]:
    """Degrade one uint8 image: (H, W, 3) or (H, W) numpy -> (uint8 LR (H // s, W // s[, 3]), record).

    The generator is ``torch.Generator().manual_seed(seed)``: the same seed gives the same LR everywhere.
    """
    import numpy as np

    if not isinstance(hr, np.ndarray) or hr.dtype != np.uint8 or hr.ndim not in (2, 3):
        raise ShapeError("degrade_image expects a uint8 (H, W[, C]) array")
    x = torch.from_numpy(np.ascontiguousarray(hr if hr.ndim == 3 else hr[..., None])).permute(2, 0, 1)
    lr, records = degradation(x[None].float().div_(255.0), scale, torch.Generator().manual_seed(int(seed)))
    out = (lr[0] * 255.0).round().to(torch.uint8).permute(1, 2, 0).numpy()
    return (out if hr.ndim == 3 else out[..., 0]), records[0]


def describe(record: Record) -> list[str]:
    """One short human-readable line per recorded step, e.g. ``blur aniso 15px s=2.10/0.70 t=0.52``."""
    lines = []
    for r in record:
        op = r.get("op")
        if op == "blur" and r.get("kernel") == "sinc":
            lines.append(f"sinc {r['size']}px w={r['cutoff']:.2f}")
        elif op == "blur":
            line = f"blur {r['kernel']} {r['size']}px s={r['sigma_x']:.2f}"
            if r["kernel"].endswith("aniso"):
                line += f"/{r['sigma_y']:.2f} t={r['theta']:.2f}"
            if "beta" in r:
                line += f" b={r['beta']:.2f}"
            lines.append(line)
        elif op == "resize":
            lines.append(f"resize {r['mode']} -> {r['size'][1]}x{r['size'][0]}")
        elif op == "noise" and r["kind"] == "gaussian":
            lines.append(f"gaussian noise s={r['sigma']:.1f}{' gray' if r['gray'] else ''}")
        elif op == "noise" and "sigma" in r:
            lines.append(f"poisson noise s={r['sigma']:.1f}{' gray' if r['gray'] else ''}")
        elif op == "noise":
            lines.append(f"poisson noise x{r['scale']:.2f}{' gray' if r['gray'] else ''}")
        elif op == "jpeg":
            lines.append(f"jpeg q{r['quality']}")
        elif op == "sharpen":
            lines.append(f"sharpen {r['weight']:.2f} s={r['sigma']:.2f}")
        else:
            lines.append(str(op))
    return lines


# ----------------------------------------------------------------------------------------------- levels


def record_levels(record: Record) -> tuple[float, float]:
    """The (noise sigma, JPEG quality) of one image's record: what a conditioned model (``real-x4-ctrl``) is
    given for that image.

    Sigma (8-bit units) is the standard deviation of the noise the image got: each applied noise step records it
    as ``std`` (after clipping; Gaussian noise of sigma s gives about s, Poisson noise whatever the pixels made
    of it); a record that was only sampled, not applied, falls back to the drawn ``sigma``. Several noise steps:
    the root of the summed variances; none: 0. The quality is the lowest of the JPEG steps (100 without JPEG).
    Exact for single-stage pipelines such as the ``controllable`` preset (one noise step, one JPEG pass).

    Raises:
        ConfigError: a sampled-only Poisson noise step drawn by ``poisson_scale`` (no level without pixels).
    """
    var, quality = 0.0, 100.0
    for r in record:
        op = r.get("op")
        if op == "noise":
            level = r.get("std", r.get("sigma"))
            if level is None:
                raise ConfigError("a Poisson noise step drawn by poisson_scale has no sigma level until it is "
                                  "applied: give it poisson_sigma, or read the levels of an applied record")
            var += float(level) ** 2
        elif op == "jpeg":
            quality = min(quality, float(r["quality"]))
    return var**0.5, quality


def level_problem(steps: Sequence[Any]) -> str | None:
    """Why a pipeline's records would not give each image's levels (`record_levels`), or None when they do:
    every noise step must be Gaussian or have ``poisson_sigma``."""
    for s in steps:
        if isinstance(s, NoiseStep) and s.gaussian_prob < 1.0 and s.poisson_sigma is None:
            return "its Poisson noise is drawn by poisson_scale, which has no sigma level (set poisson_sigma)"
        if isinstance(s, (ShuffleStep, SequenceStep, ChoiceStep)):
            inner = level_problem(s.steps)
            if inner is not None:
                return inner
    return None
