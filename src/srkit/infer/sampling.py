"""Sampling options of diffusion models (``steps``) -> the call's `Request.inputs`.

A diffusion model (`srkit.archs.resshift`, e.g. ``diffusion-x4``) takes the number of sampling steps as its
per-call input ``steps`` (`ModelInfo.inputs`): 1 <= steps <= T, the length of the chain it was trained with; its
``seed`` is the engine's (`Request.seed`, the noise field's seed, nothing else). `check_steps` validates the
value before anything is loaded; `step_inputs` checks it against the loaded model.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from srkit.errors import ConfigError

if TYPE_CHECKING:  # not imported at run time: the CLI checks steps before torch is loaded
    from srkit.srmodel import SRModel

__all__ = ["STEPS", "check_seed", "check_steps", "step_inputs", "takes_steps"]

#: The per-call input of diffusion models.
STEPS = "steps"


def check_steps(steps: Any) -> int | None:
    """None, or `steps` as an int >= 1 (the upper bound is the model's: `step_inputs`).

    Raises:
        ConfigError: one line, for anything that is not a whole number >= 1.
    """
    if steps is None:
        return None
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ConfigError(f"steps must be an integer >= 1 (at most the model's trained chain), got {steps!r}")
    return int(steps)


def check_seed(seed: Any) -> int | None:
    """None, or `seed` as an int (numpy integers accepted).

    Raises:
        ConfigError: one line, for a seed that is not an integer (a float, a string, a bool).
    """
    if seed is None:
        return None
    import numbers

    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise ConfigError(f"seed must be an integer, got {seed!r}")
    return int(seed)


def takes_steps(model: SRModel) -> bool:
    """Whether the model is a diffusion model that takes ``steps``."""
    return STEPS in model.info.inputs


def step_inputs(model: SRModel, inputs: Mapping[str, float] | None = None, steps: Any = None) -> dict[str, float]:
    """The inputs of one call: `inputs` plus ``steps`` when given, checked against the model's chain.

    Raises:
        ConfigError: steps for a model that takes none; steps outside 1..T; steps given twice.
    """
    out = {str(k): v for k, v in (inputs or {}).items()}
    n = check_steps(steps)
    if n is None:
        return out
    if not takes_steps(model):
        raise ConfigError(f"model {model.info.name} is not a diffusion model: steps is for diffusion models such as "
                          "diffusion-x4")
    if STEPS in out:
        raise ConfigError("steps given twice (as steps= and in inputs)")
    check = getattr(model.module, "check_steps", None)
    if callable(check):
        n = int(check(n))  # raises for steps > T
    out[STEPS] = float(n)
    return out
