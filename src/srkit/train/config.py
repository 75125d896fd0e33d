"""Training configuration: frozen pydantic models, YAML loading and `--set key.sub=value` overrides.

A run is described by one `RunConfig`. `load_config(path, overrides)` reads YAML, applies the overrides to the
plain dict (before validation, so an override is checked exactly like a value in the file), validates, and turns
any problem into a one-line `srkit.errors.ConfigError` that names the key path, e.g.
``train.steps: Input should be a valid integer (got 'ten')``. There is no interpolation or templating: what is in
the file (plus the overrides) is what runs.
"""

from __future__ import annotations

import os
import re
import typing
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from srkit.data.clips import ClipCfg
from srkit.degrade.pipeline import DegradationCfg
from srkit.degrade.steps import STEP_OPS
from srkit.errors import ConfigError
from srkit.losses import LossTerm

__all__ = [
    "EVAL_SETS",
    "DataCfg",
    "DiscriminatorCfg",
    "DistillCfg",
    "GanCfg",
    "GanOptimCfg",
    "LossCfg",
    "ModelCfg",
    "OptimCfg",
    "RunConfig",
    "ScheduleCfg",
    "TrainCfg",
    "apply_overrides",
    "dump_config",
    "load_config",
    "parse_config",
]

# Benchmark sets that results are reported on: training on them (or holding validation images out of them)
# would leak the test set into the model. Compared case-insensitively with the last path component.
EVAL_SETS = ("Set5", "Set14", "B100", "BSD100", "Urban100", "Manga109")

_STRICT = ConfigDict(extra="forbid", frozen=True)


class _Yaml12Loader(yaml.SafeLoader):
    """PyYAML's safe loader with YAML 1.2 booleans: only true/false are booleans; on/off/yes/no stay strings
    (YAML 1.1 reads the key `on:` of a degradation as True)."""


_BOOL = "tag:yaml.org,2002:bool"
_Yaml12Loader.yaml_implicit_resolvers = {
    first: [(tag, rx) for tag, rx in resolvers if tag != _BOOL]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_Yaml12Loader.add_implicit_resolver(_BOOL, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))


def load_yaml(text: str) -> Any:
    """Parse YAML text the way every srkit config file is read (safe, YAML 1.2 booleans)."""
    return yaml.load(text, Loader=_Yaml12Loader)  # noqa: S506 - a SafeLoader subclass


class ModelCfg(BaseModel):
    """Which network to train: `srkit.archs.build(arch, scale, **options)`."""

    model_config = _STRICT

    arch: str
    scale: int = Field(gt=0)
    options: dict[str, Any] = Field(default_factory=dict)
    # Start from these weights instead of a random init (fine-tuning, longer schedules): a shipped model name or
    # a weights file whose network is exactly arch/scale/options (a run's best.safetensors keeps the training form);
    # or a mapping {submodule: model} that starts parts of a composite network from models of their own layout
    # ({clean: balanced-x4, restore: real-x4-ctrl} for ecbsr-ctrl-gated).
    init: str | dict[str, str] | None = None

    @field_validator("arch")
    @classmethod
    def _known_arch(cls, v: str) -> str:
        from srkit.archs import ARCHS

        spec = ARCHS.get(v)
        if spec is None:
            raise ValueError(f"unknown architecture {v!r}; known: {', '.join(sorted(ARCHS))}")
        if spec.kind != "generator":
            raise ValueError(f"{v} is a {spec.kind}, not an SR network")
        return v

    @model_validator(mode="after")
    def _supported_scale(self) -> ModelCfg:
        from srkit.archs import ARCHS

        scales = ARCHS[self.arch].scales
        if self.scale not in scales:
            raise ValueError(f"{self.arch} supports scales {', '.join(map(str, scales))}, not {self.scale}")
        return self


class DataCfg(BaseModel):
    """Training data: HR images under `root/<set>/HR` (or `root/<set>` itself), LR made on the fly.

    `val_count` images are held out of the training files (`srkit.data.folders.split_files`) for validation;
    benchmark sets are never used, neither for training nor validation.
    """

    model_config = _STRICT

    root: Path | None = Field(default=None, validate_default=True)
    train_sets: list[str] = Field(
        default_factory=lambda: ["T91", "BSDS200", "BSDS500test", "General100"], min_length=1)  # 541 images
    val_count: int = Field(default=10, ge=0)
    val_max_side: int | None = Field(default=None, gt=0)  # crop validation HR images to this side (speed)
    patch_size: int = Field(default=48, gt=0)  # LR side
    batch_size: int = Field(default=16, gt=0)  # global (all DDP ranks together)
    sampler: Literal["random", "content", "sliding"] = "random"
    samples_per_epoch: int = Field(default=4000, gt=0)
    workers: int = Field(default=0, ge=0)
    color: Literal["rgb", "y"] | None = None  # None: from the model's input channels (1 -> "y")
    # LR made from each HR patch on the fly by a random degradation (srkit.degrade); None: bicubic, once per image.
    degradation: DegradationCfg | None = None
    # Train on synthetic clips made from the images (srkit.train.clips): frames and motion; None: single patches.
    clips: ClipCfg | None = None

    @field_validator("degradation", mode="before")
    @classmethod
    def _preset_name(cls, v: object) -> object:
        return {"preset": v} if isinstance(v, str) else v

    @field_validator("root")
    @classmethod
    def _root_or_env(cls, v: Path | None) -> Path:
        if v is None:
            env = os.environ.get("SRKIT_DATA")
            if not env:
                raise ValueError("no data folder: set data.root or the SRKIT_DATA environment variable")
            v = Path(env)
        return v.expanduser()

    @field_validator("train_sets")
    @classmethod
    def _no_eval_sets(cls, v: list[str]) -> list[str]:
        banned = {s.lower(): s for s in EVAL_SETS}
        for name in v:
            if Path(name).name.lower() in banned:
                raise ValueError(
                    f"{name!r} is a benchmark set; training on it would leak the test set "
                    f"(never train on {', '.join(EVAL_SETS)})"
                )
        if len(set(v)) != len(v):
            raise ValueError("a set is listed twice")
        return v


LossCfg = list[LossTerm]


def _check_betas(v: tuple[float, float]) -> tuple[float, float]:
    if not all(0.0 <= b < 1.0 for b in v):
        raise ValueError(f"betas must be in [0, 1), got {list(v)}")
    return v


class OptimCfg(BaseModel):
    """Optimiser; `lr` is the peak learning rate that the schedule scales."""

    model_config = _STRICT

    name: Literal["adam", "adamw"] = "adam"
    lr: float = Field(default=5e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.999)
    weight_decay: float = Field(default=0.0, ge=0)
    grad_clip: float | None = Field(default=None, gt=0)  # max global L2 norm of the gradients

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        return _check_betas(v)


class ScheduleCfg(BaseModel):
    """Learning rate as a pure function of the step: linear warm-up, then cosine / multistep / constant."""

    model_config = _STRICT

    name: Literal["cosine", "multistep", "constant"] = "cosine"
    warmup_steps: int = Field(default=0, ge=0)
    milestones: list[int] = Field(default_factory=list)  # multistep: lr *= gamma at each of these steps
    gamma: float = Field(default=0.5, gt=0)
    min_lr: float = Field(default=1e-6, ge=0)  # cosine: the lr of the last step

    @field_validator("milestones")
    @classmethod
    def _increasing(cls, v: list[int]) -> list[int]:
        if any(m <= 0 for m in v) or any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError(f"milestones must be positive and strictly increasing, got {v}")
        return v


class TrainCfg(BaseModel):
    """Length, seed, precision and how often to log, validate and checkpoint (all in optimiser steps)."""

    model_config = _STRICT

    steps: int = Field(gt=0)
    seed: int = Field(default=0, ge=0)
    # A wall-time budget (training seconds of all sessions of the run, validation included): the run ends at
    # whichever of `steps` and `max_minutes` comes first, and the schedule (cosine) anneals on whichever is
    # further along, so a time-boxed run (a lent GPU) still ends at min_lr. Not bit-reproducible: the step
    # where it stops depends on the machine.
    max_minutes: float | None = Field(default=None, gt=0)
    ema_decay: float | None = Field(default=0.999, gt=0, lt=1)  # None: no EMA, validate/save the raw weights
    bf16: bool = True  # bf16 autocast for the forward pass (loss and optimiser stay fp32)
    channels_last: bool = True
    checkpoint_every: int = Field(default=1000, gt=0)
    val_every: int = Field(default=1000, gt=0)
    log_every: int = Field(default=50, gt=0)
    deterministic: bool = False  # torch.use_deterministic_algorithms (slower; needed for bit-exact CUDA runs)
    device: Literal["auto", "cpu", "cuda"] = "auto"  # auto: CUDA when available (under torchrun: cuda:LOCAL_RANK)


class DistillCfg(BaseModel):
    """Knowledge distillation from a frozen teacher (`srkit.load_model(teacher)`).

    loss += weight * L1(student_sr, teacher_sr) + feature_weight * mean over `feature_layers` of
    L1(adapter(student_feature), teacher_feature); `feature_layers` are (student module name, teacher module name)
    pairs, names as in `model.module.named_modules()`; the adapter is a learned 1x1 conv when channels differ.
    """

    model_config = _STRICT

    teacher: str
    weight: float = Field(default=1.0, ge=0)
    feature_weight: float = Field(default=0.0, ge=0)
    feature_layers: list[tuple[str, str]] = Field(default_factory=list)

    @model_validator(mode="after")
    def _layers_for_features(self) -> DistillCfg:
        if self.feature_weight > 0 and not self.feature_layers:
            raise ValueError("feature_weight > 0 needs feature_layers: [[student_module, teacher_module], ...]")
        return self


class DiscriminatorCfg(BaseModel):
    """The GAN discriminator: `srkit.archs.build(arch, 1, **options)` (its bare network), optionally from weights.

    `options.num_in_ch` defaults to the generator's output channels (1 for Y models). `init`: a state dict file
    (safetensors, or a `.pth` such as Real-ESRGAN's `RealESRGAN_x4plus_netD.pth`, `params` key unwrapped) loaded
    at the start of a fresh run.
    """

    model_config = _STRICT

    arch: str = "unet-discriminator"
    options: dict[str, Any] = Field(default_factory=dict)
    init: str | None = None

    @field_validator("arch")
    @classmethod
    def _known_discriminator(cls, v: str) -> str:
        from srkit.archs import ARCHS

        spec = ARCHS.get(v)
        if spec is None or spec.kind != "discriminator":
            known = sorted(k for k, sp in ARCHS.items() if sp.kind == "discriminator")
            raise ValueError(f"{v!r} is not a discriminator; known: {', '.join(known)}")
        return v


class GanOptimCfg(BaseModel):
    """The discriminator's optimiser; its lr follows the run's schedule shape (`schedule`) like the generator's."""

    model_config = _STRICT

    name: Literal["adam", "adamw"] = "adam"
    lr: float = Field(default=1e-4, gt=0)
    betas: tuple[float, float] = (0.9, 0.99)
    weight_decay: float = Field(default=0.0, ge=0)

    @field_validator("betas")
    @classmethod
    def _betas_in_range(cls, v: tuple[float, float]) -> tuple[float, float]:
        return _check_betas(v)


class GanCfg(BaseModel):
    """Adversarial training: a discriminator and the generator-side terms it provides (`srkit.train.gan`).

    Every step: G minimises `loss` terms + weight * adversarial + feature_matching * FM + ldl * LDL (D frozen),
    then D takes one step on (HR, G's output of that step, detached). `loss` picks the GAN objective for both
    sides (`srkit.losses.adversarial`). `feature_matching`: L1 between D's features of SR and HR. `ldl`: the LDL
    artifact loss against the EMA generator (needs `train.ema_decay`); `ldl_kernel`: its local window.
    `warmup_steps`: D-only steps at the start: G is not updated at all (no G optimiser step, no EMA update; its
    terms are still computed and logged), so D can catch up with a generator started from `model.init`.
    `grad_clip`: max global L2 norm of D's gradients (G's is `optim.grad_clip`).
    """

    model_config = _STRICT

    discriminator: DiscriminatorCfg = Field(default_factory=DiscriminatorCfg)
    loss: Literal["vanilla", "lsgan", "hinge", "ragan"] = "vanilla"
    weight: float = Field(default=0.1, ge=0)
    feature_matching: float = Field(default=0.0, ge=0)
    ldl: float = Field(default=0.0, ge=0)
    ldl_kernel: int = Field(default=7, ge=3)
    optim: GanOptimCfg = Field(default_factory=GanOptimCfg)
    warmup_steps: int = Field(default=0, ge=0)
    grad_clip: float | None = Field(default=None, gt=0)

    @field_validator("ldl_kernel")
    @classmethod
    def _odd(cls, v: int) -> int:
        if v % 2 == 0:
            raise ValueError(f"ldl_kernel must be odd, got {v}")
        return v


class MonotoneCfg(BaseModel):
    """Monotonic cleaning for a conditioned model (`srkit.train.strength`): `samples` images of each batch are run
    at two random strengths s_a < s_b, and loss += weight * mean relu(HF(sr_b) - (1 - margin (s_b - s_a)) HF(sr_a))
    / HF(sr_a), HF the mean absolute Laplacian of the output's luma."""

    model_config = _STRICT

    weight: float = Field(default=1.0, gt=0)
    samples: int = Field(default=4, ge=1)
    margin: float = Field(default=0.1, ge=0, lt=1)


class RunConfig(BaseModel):
    """Everything a training run depends on (saved as `run_dir/config.yaml`)."""

    model_config = _STRICT

    model: ModelCfg
    # Validated from {} (not built by a factory) so that a missing data root is reported as `data.root`.
    data: DataCfg = Field(default_factory=dict, validate_default=True)
    loss: LossCfg = Field(default_factory=lambda: [LossTerm(name="l1")], min_length=1)
    optim: OptimCfg = Field(default_factory=OptimCfg)
    schedule: ScheduleCfg = Field(default_factory=ScheduleCfg)
    train: TrainCfg
    distill: DistillCfg | None = None
    gan: GanCfg | None = None  # None: no discriminator (fidelity training)
    monotone: MonotoneCfg | None = None  # conditioned models: output smoother as the strength rises

    @model_validator(mode="after")
    def _consistent(self) -> RunConfig:
        if self.schedule.warmup_steps > self.train.steps:
            raise ValueError(
                f"schedule.warmup_steps ({self.schedule.warmup_steps}) is longer than train.steps ({self.train.steps})"
            )
        if self.data.samples_per_epoch < self.data.batch_size:
            raise ValueError(
                f"data.samples_per_epoch ({self.data.samples_per_epoch}) is smaller than one batch "
                f"({self.data.batch_size})"
            )
        if self.gan is not None:
            self._check_gan(self.gan)
        return self

    def _check_gan(self, gan: GanCfg) -> None:
        from srkit.archs import ARCHS

        if gan.warmup_steps >= self.train.steps:
            raise ValueError(f"gan.warmup_steps ({gan.warmup_steps}) leaves no generator step in train.steps "
                             f"({self.train.steps})")
        if gan.ldl > 0 and self.train.ema_decay is None:
            raise ValueError("gan.ldl > 0 compares with the EMA generator: set train.ema_decay")
        d, hr = gan.discriminator, self.data.patch_size * self.model.scale
        multiple = ARCHS[d.arch].size_multiple
        if d.arch == "vgg-discriminator" and hr != d.options.get("input_size", 128):
            raise ValueError(f"gan.discriminator: vgg-discriminator takes {d.options.get('input_size', 128)} px "
                             f"patches, but HR patches are {hr} (data.patch_size x model.scale); set "
                             "gan.discriminator.options.input_size (128 or 256) or data.patch_size")
        if hr % multiple:
            raise ValueError(f"gan.discriminator: {d.arch} needs HR patches that are a multiple of {multiple} px, "
                             f"got {hr} (data.patch_size x model.scale)")


# ------------------------------------------------------------------------------------------------- loading


def _key_path(loc: tuple) -> str:
    """pydantic error location -> `train.steps` / `loss[0].name`; drops pydantic's internal tags."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and part not in STEP_OPS and not any(c in part for c in "[]-"):
            out += f".{part}" if out else part
    return out or "config"


def _model_at(loc: tuple) -> type[BaseModel] | None:
    """The pydantic model class that the dict at `loc` is validated as (None if it is not a model)."""
    cls: Any = RunConfig
    for part in loc:
        if isinstance(part, int):
            continue
        if not (isinstance(cls, type) and issubclass(cls, BaseModel)) or part not in cls.model_fields:
            return None
        cls = cls.model_fields[part].annotation
        # Unwrap Optional[...] / list[...] down to the model class.
        while typing.get_origin(cls) is not None:
            args = [a for a in typing.get_args(cls) if a is not type(None)]
            if not args:
                return None
            cls = args[0]
    return cls if isinstance(cls, type) and issubclass(cls, BaseModel) else None


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _one_line(e: ValidationError) -> str:
    """The first validation problem as `key.path: what is wrong`, plus how many more there are."""
    errors = e.errors(include_url=False)
    first = errors[0]
    loc = tuple(first["loc"])
    path = _key_path(loc)
    if first["type"] == "extra_forbidden":
        model = _model_at(loc[:-1])
        known = f" (known: {', '.join(model.model_fields)})" if model is not None else ""
        msg = f"unknown key{known}"
    else:
        msg = first["msg"]
        for prefix in ("Value error, ", "Assertion failed, "):
            msg = msg.removeprefix(prefix)
        value = first.get("input")
        if first["type"] not in ("missing",) and isinstance(value, (str, int, float, bool)) and "got" not in msg:
            msg += f" (got {_short(value)})"
    more = f" [and {len(errors) - 1} more problem{'s' if len(errors) > 2 else ''}]" if len(errors) > 1 else ""
    return " ".join(f"{path}: {msg}{more}".split())


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `key.sub=value` overrides to a plain config dict (a new dict; `data` is not modified).

    The value is parsed with `load_yaml` (`3` -> int, `[T91]` -> list, `null` -> None); missing
    intermediate mappings are created; an integer part indexes into a list (`loss.0.weight=2`).

    Raises:
        ConfigError: malformed override, or a path that runs through a value that is not a mapping/list.
    """
    import copy

    out = copy.deepcopy(data)
    for item in overrides:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key or any(not p for p in key.split(".")):
            raise ConfigError(f"bad override {item!r}: expected key.sub=value")
        try:
            value = load_yaml(raw) if raw.strip() else None
        except yaml.YAMLError as e:
            raise ConfigError(f"{key}: cannot parse override value {raw!r} ({type(e).__name__})") from None
        parts = key.split(".")
        node: Any = out
        for i, part in enumerate(parts):
            last = i == len(parts) - 1
            where = ".".join(parts[: i + 1])
            if isinstance(node, list):
                if not part.isdigit() or int(part) >= len(node):
                    raise ConfigError(f"{where}: no item {part} in a list of {len(node)}")
                if last:
                    node[int(part)] = value
                else:
                    node = node[int(part)]
            elif isinstance(node, dict):
                if last:
                    node[part] = value
                else:
                    if node.get(part) is None:
                        node[part] = {}
                    node = node[part]
            else:
                raise ConfigError(f"{where}: cannot set a key inside {_short(node)}")
    return out


def parse_config(data: Any) -> RunConfig:
    """Validate a plain dict as `RunConfig`; problems become a one-line `ConfigError`."""
    if not isinstance(data, dict):
        raise ConfigError(f"config: expected a mapping at the top level, got {type(data).__name__}")
    try:
        return RunConfig.model_validate(data)
    except ValidationError as e:
        raise ConfigError(_one_line(e)) from None


def load_config(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> RunConfig:
    """Read a YAML run config, apply `--set` overrides (`key.sub=value`), validate.

    Args:
        path: YAML file; None starts from an empty mapping (everything from overrides).
        overrides: `key.sub=value` strings applied in order to the dict before validation.

    Raises:
        ConfigError: unreadable file, YAML syntax error, bad override, or a validation problem (one line naming
            the key path).
    """
    data: Any = {}
    if path is not None:
        path = Path(path)
        try:
            text = path.read_text()
        except OSError as e:
            raise ConfigError(f"cannot read config {str(path)!r}: {e.strerror or e}") from None
        try:
            data = load_yaml(text)
        except yaml.YAMLError as e:
            mark = getattr(e, "problem_mark", None)
            where = f" (line {mark.line + 1})" if mark is not None else ""
            problem = getattr(e, "problem", None) or type(e).__name__
            raise ConfigError(f"{path.name}: invalid YAML{where}: {problem}") from None
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{path.name}: expected a mapping at the top level, got {type(data).__name__}")
    return parse_config(apply_overrides(data, list(overrides)))


def dump_config(cfg: RunConfig) -> str:
    """YAML text that `load_config` reads back to an equal `RunConfig` (paths as strings, tuples as lists)."""
    data = cfg.model_dump(mode="json")
    # Unset newer options are left out, so a fidelity run's config.yaml reads as before they existed.
    if data.get("gan") is None:
        data.pop("gan", None)
    if data["data"].get("clips") is None:
        data["data"].pop("clips", None)
    for term in data.get("loss") or []:
        for key in ("layers", "weights", "before_relu"):
            if term.get(key) is None:
                term.pop(key, None)
    return yaml.safe_dump(data, sort_keys=False, default_flow_style=False)
