"""Architectures: the one explicit name -> `ArchSpec` table, and `build`.

Each family lives in its own module (paper, original repository and licence in its docstring); nothing
registers itself: an architecture exists for srkit when it is written into `ARCHS` below.
"""

from __future__ import annotations

from collections.abc import Callable

from srkit.archs import (
    classic,
    discriminators,
    ecbsr,
    edsr,
    imdn,
    rcan,
    rlfn,
    rrdbnet,
    safmn,
    span,
    srvgg,
    swinir,
    vdsr,
)
from srkit.archs._spec import ArchSpec
from srkit.errors import ConfigError
from srkit.srmodel import ModelInfo, SRModel

ARCHS: dict[str, ArchSpec] = {
    # CNN
    "srcnn": classic.SRCNN_SPEC,
    "fsrcnn": classic.FSRCNN_SPEC,
    "fsrcnn-s": classic.FSRCNN_S_SPEC,
    "espcn": classic.ESPCN_SPEC,
    # residual
    "vdsr": vdsr.VDSR_SPEC,
    "edsr-baseline": edsr.EDSR_BASELINE_SPEC,
    "edsr": edsr.EDSR_SPEC,
    "rcan": rcan.RCAN_SPEC,
    # GAN generators and discriminators
    "rrdbnet": rrdbnet.RRDBNET_SPEC,
    "srvggnet-compact": srvgg.SRVGG_COMPACT_SPEC,
    "unet-discriminator": discriminators.UNET_DISCRIMINATOR_SPEC,
    "vgg-discriminator": discriminators.VGG_DISCRIMINATOR_SPEC,
    # Transformer
    "swinir": swinir.SWINIR_SPEC,
    "swinir-light": swinir.SWINIR_LIGHT_SPEC,
    # lightweight
    "imdn": imdn.IMDN_SPEC,
    "rlfn": rlfn.RLFN_SPEC,
    "span": span.SPAN_SPEC,
    "safmn": safmn.SAFMN_SPEC,
    # re-parameterised, with sharpening (edge) branches
    "ecbsr-m4c16": ecbsr.ECBSR_M4C16_SPEC,
    "ecbsr-m16c64": ecbsr.ECBSR_M16C64_SPEC,
}

# (family, detect(state_dict) -> (arch, scale | None, options) | None, convert(state_dict) -> state_dict | None),
# tried in this order by `srkit.models.model_from_state_dict`. `convert`, when given, maps another official
# layout to the module's key names before detection and loading (old ESRGAN keys are handled by RRDBNet itself).
DETECTORS: list[tuple[str, Callable, Callable | None]] = [
    ("edsr", edsr.detect_edsr, None),
    ("rcan", rcan.detect_rcan, None),
    ("vdsr", vdsr.detect_vdsr, None),
    ("srcnn/fsrcnn/espcn", classic.detect_classic, None),
    ("rrdbnet", rrdbnet.detect_rrdbnet, None),
    ("srvggnet-compact", srvgg.detect_srvgg, None),
    ("swinir", swinir.detect_swinir, None),
    ("imdn", imdn.detect_imdn, None),
    ("rlfn", rlfn.detect_rlfn, None),
    ("span", span.detect_span, None),
    ("safmn", safmn.detect_safmn, None),
    ("ecbsr", ecbsr.detect_ecbsr, None),
    ("ecbsr (EDSR-codebase layout)", ecbsr.detect_ecbsr, ecbsr.convert_ecbsr_edsr_state_dict),
]


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
        options=dict(options),
    )
    return SRModel(module, info)


__all__ = ["ARCHS", "ArchSpec", "DETECTORS", "build"]
