"""Architectures: the one explicit name -> `ArchSpec` table, and `build`.

Each family lives in its own module (paper, original repository and licence in its docstring); nothing
registers itself: an architecture exists for srkit when it is written into `ARCHS` below.
"""

from __future__ import annotations

from collections.abc import Callable

from torch import nn

from srkit.archs._spec import ArchSpec
from srkit.errors import ConfigError
from srkit.models import ModelInfo, SRModel

ARCHS: dict[str, ArchSpec] = {}

# (family, detect(state_dict) -> (arch, scale | None, options) | None, convert(state_dict) -> state_dict | None),
# tried in this order by `srkit.models.model_from_state_dict`.
DETECTORS: list[tuple[str, Callable, Callable | None]] = []


def _first_conv_in_channels(module: nn.Module) -> int | None:
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            return m.in_channels if isinstance(m, nn.Conv2d) else None
    return None


def build(name: str, scale: int = 4, **options) -> SRModel:
    """Build architecture `name` at `scale` with the paper's defaults overridden by `options`.

    Returns:
        An `SRModel` (freshly initialised weights) whose `ModelInfo` is filled from the spec and the options.

    Raises:
        ConfigError: unknown name, unsupported scale or a bad option.
    """
    spec = ARCHS.get(name)
    if spec is None:
        raise ConfigError(f"unknown architecture {name!r}; known: {', '.join(sorted(ARCHS))}")
    if scale not in spec.scales:
        raise ConfigError(f"{name} supports scales {', '.join(map(str, spec.scales))}, not {scale}")
    try:
        module = spec.build(scale=scale, **options)
    except TypeError as e:
        raise ConfigError(f"{name}: bad option ({e})") from None
    in_ch = _first_conv_in_channels(module) or spec.in_channels
    if spec.kind == "discriminator":
        in_ch = spec.in_channels
    rf = spec.receptive_field(dict(options)) if callable(spec.receptive_field) else spec.receptive_field
    input_range = float(options.get("rgb_range", options.get("input_range", 1.0)))
    info = ModelInfo(
        arch=name,
        scale=scale,
        in_channels=in_ch,
        out_channels=in_ch if spec.kind == "generator" else spec.out_channels,
        color_space="y" if in_ch == 1 else "rgb",
        input_range=input_range,
        size_multiple=spec.size_multiple,
        receptive_field=rf,
        safe_dtypes=spec.safe_dtypes,
        options=dict(options),
    )
    return SRModel(module, info)


__all__ = ["ARCHS", "ArchSpec", "DETECTORS", "build"]
