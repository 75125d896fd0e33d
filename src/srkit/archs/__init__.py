"""Architectures: the one explicit tuple of families (`FAMILIES`), the tables derived from it, and `build`.

Each family lives in its own module (paper, original repository and licence in its docstring) and defines one
`ArchFamily` named ``FAMILY``: its architectures (`ArchSpec`s), checkpoint detection and extra key layouts (the
spandrel pattern). Nothing registers itself: a family exists for srkit when it is written into `FAMILIES` below,
and `ARCHS` (name -> `ArchSpec`) and `DETECTORS` (detection order) are computed from that tuple, so they cannot
drift apart.
"""

from __future__ import annotations

from srkit.archs import (
    classic,
    conditioned,
    discriminators,
    ecbsr,
    edsr,
    imdn,
    rcan,
    recurrent_vsr,
    resshift,
    rlfn,
    rrdbnet,
    safmn,
    smfanet,
    span,
    srvgg,
    swinir,
    vdsr,
)
from srkit.archs._spec import ArchFamily, ArchSpec, Convert, Detect, pixel_shuffle_scale
from srkit.errors import ConfigError
from srkit.srmodel import ModelInfo, SRModel

# In checkpoint detection order (`srkit.models.model_from_state_dict` tries them in turn; the first that
# recognises a state dict wins), which is also the listing order of `ARCHS`. Families without detection
# (the discriminators) come last.
FAMILIES: tuple[ArchFamily, ...] = (
    edsr.FAMILY,
    rcan.FAMILY,
    vdsr.FAMILY,
    classic.FAMILY,
    rrdbnet.FAMILY,
    srvgg.FAMILY,
    swinir.FAMILY,
    imdn.FAMILY,
    rlfn.FAMILY,
    span.FAMILY,
    safmn.FAMILY,
    smfanet.FAMILY,
    ecbsr.FAMILY,
    conditioned.FAMILY,
    resshift.FAMILY,
    recurrent_vsr.FAMILY,
    discriminators.FAMILY,
)


def _archs(families: tuple[ArchFamily, ...]) -> dict[str, ArchSpec]:
    """name -> spec over all families, in family order; a name defined twice is an error."""
    out: dict[str, ArchSpec] = {}
    for family in families:
        for name, spec in family.specs.items():
            if name in out:
                raise RuntimeError(f"architecture {name!r} is defined by two families (the second: {family.name})")
            out[name] = spec
    return out


Detector = tuple[str, Detect, Convert | None]


def _detectors(families: tuple[ArchFamily, ...]) -> tuple[Detector, ...]:
    """(label, detect, convert | None) in the order they are tried: each family's plain layout, then its other
    layouts (``convert`` maps them to the plain key names before `detect` and loading)."""
    out: list[Detector] = []
    for family in families:
        if family.detect is None:
            continue
        out.append((family.name, family.detect, None))
        out.extend((f"{family.name} ({label})", family.detect, convert) for label, convert in family.layouts.items())
    return tuple(out)


ARCHS: dict[str, ArchSpec] = _archs(FAMILIES)

# (family label, detect(state_dict) -> (arch, scale | None, options) | None, convert(state_dict) -> state_dict
# | None), tried in this order by `srkit.models.model_from_state_dict` (old ESRGAN keys are handled by RRDBNet
# itself). Derived from `FAMILIES`.
DETECTORS: tuple[Detector, ...] = _detectors(FAMILIES)


# The option each family uses for its input channels (the authors' own argument names).
_CHANNEL_OPTIONS = ("num_channels", "num_in_ch", "in_chans", "in_nc", "in_channels", "colors")


def _in_channels(spec: ArchSpec, options: dict) -> int:
    for key in _CHANNEL_OPTIONS:
        if key in options:
            return int(options[key])
    return spec.in_channels


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
    in_ch = _in_channels(spec, options)
    rf = spec.receptive_field({**options, "scale": scale}) if callable(spec.receptive_field) else spec.receptive_field
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
        label=spec.label(dict(options)) if spec.label is not None else "",
        inputs=spec.inputs,
        frames=spec.frames,
        frame_context=spec.frame_context,
        noise_channels=spec.noise_channels,
        options=dict(options),
    )
    return SRModel(module, info)


__all__ = ["ARCHS", "ArchFamily", "ArchSpec", "DETECTORS", "FAMILIES", "build", "pixel_shuffle_scale"]
