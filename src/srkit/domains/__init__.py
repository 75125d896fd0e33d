"""Application domains whose files carry metadata an upscaler must keep true: georeferenced rasters, medical
images, video. One explicit table, `DOMAINS`; nothing registers itself.

`route(path)` recognises a domain file by its content (`srkit.domains.sniff`: standard library and tifffile only,
so a file is recognised even when its domain's extra is not installed), and `srkit.infer.files.upscale_file` (so
`srkit upscale` and the API) hands such a file to the domain's own `upscale_file` instead of treating it as a
plain image. A domain file met without its extra is refused with one line naming the extra (`pip install
'srkit[geo]'`): never processed as a plain image that silently loses its metadata.

A domain module provides::

    upscale_file(src: Path, dst: Path, up: Upscaler, request: Request, options: DomainOptions) -> Path

which runs the frames/bands/slices through the one inference path (`srkit.infer.engine`) and writes `dst`
atomically.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from srkit.domains import sniff
from srkit.errors import ConfigError

if TYPE_CHECKING:
    from srkit.infer.engine import Request
    from srkit.infer.upscaler import Upscaler

__all__ = ["DOMAINS", "Domain", "DomainOptions", "route", "upscale_domain_file"]


@dataclass(frozen=True)
class DomainOptions:
    """Per-call options of the domain writers (the CLI's domain flags); a domain ignores what is not its own.

    Attributes:
        bands: 1-based band indices (GeoTIFF), the output's bands in that order, e.g. (4, 3, 2) as R, G, B for an
            RGB model (3k bands: groups of 3); None: every band. A Y / 1-channel model gets every band on its
            own; an RGB model the source's red/green/blue triple together and any other band on its own as gray.
        value_range: (low, high) physical values mapped to [0, 1] (GeoTIFF, DICOM, NIfTI); None: the data's own
            range (recorded in the output).
        cog: write a tiled Cloud-Optimized GeoTIFF with overviews.
        through_plane: NIfTI: also upscale across slices.
        codec / crf: video encoder ("h264", "h265", "ffv1") and quality (constant rate factor).
        quality: image quality where a domain writes a lossy format.
        extra: anything else a domain needs, by name.
    """

    bands: tuple[int, ...] | None = None
    value_range: tuple[float, float] | None = None
    cog: bool = False
    through_plane: bool = False
    codec: str = "h264"
    crf: int = 18
    quality: int = 95
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Domain:
    """One row of `DOMAINS`: how a domain's files are recognised, which extra it needs, where its writer lives."""

    name: str
    extra: str
    requires: tuple[str, ...]  # modules the extra installs (checked before the domain runs)
    module: str  # the module holding `upscale_file`
    sniff: Callable[[Path], bool]


DOMAINS: tuple[Domain, ...] = (
    Domain("GeoTIFF", "geo", ("rasterio",), "srkit.domains.geo", sniff.is_geotiff),
    Domain("DICOM", "medical", ("pydicom",), "srkit.domains.medical", sniff.is_dicom),
    Domain("NIfTI", "medical", ("nibabel",), "srkit.domains.medical", sniff.is_nifti),
    Domain("video", "video", ("av",), "srkit.domains.video", sniff.is_video),
)


def route(path: str | Path) -> Domain | None:
    """The domain of the file (or DICOM series folder) at `path`, by content; None for a plain image."""
    p = Path(path)
    for d in DOMAINS:
        if d.sniff(p):
            return d
    return None


def _require(domain: Domain) -> None:
    for mod in domain.requires:
        try:
            importlib.import_module(mod)
        except ImportError:
            raise ConfigError(f"{domain.name} input needs the {domain.extra} extra: pip install 'srkit[{domain.extra}]'"
                              ) from None


def upscale_domain_file(domain: Domain, src: Path, dst: Path, up: Upscaler, request: Request,
                        options: DomainOptions | None = None) -> Path:
    """Run `domain`'s writer on `src` -> `dst` (ConfigError naming the extra when it is not installed)."""
    _require(domain)
    module = importlib.import_module(domain.module)
    return module.upscale_file(src, dst, up, request, options or DomainOptions())
