"""The models a service holds: loaded once at start, one shared `Upscaler` per (model, scale, tile).

Clients name a model by its served name only (shipped names, classical upsamplers, or the stem of a weights file
the operator gave `srkit serve --models`): no client-given string is ever used as a path.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from srkit.serve.limits import ApiError

if TYPE_CHECKING:
    from srkit.infer.network import DtypePolicy

__all__ = ["CLASSICAL_SCALES", "Registry", "ServedModel", "default_models"]

#: Scales offered for the classical upsamplers (they take any integer scale).
CLASSICAL_SCALES = tuple(range(1, 9))

#: The licence of the weights srkit ships (trained by srkit's own pipeline: `srkit/weights/MODEL_CARD.md`).
SHIPPED_LICENCE = "Apache-2.0"


def default_models() -> list[str]:
    """What `srkit serve` holds when `--models` is not given: every shipped model, then bicubic."""
    from srkit.models import builtin_weights

    return [*builtin_weights(), "bicubic"]


@dataclass
class ServedModel:
    """One served model: its name, the `SRModel`, and what `/v1/models` says about it."""

    name: str
    model: Any  # SRModel
    classical: bool
    description: dict[str, Any]

    @property
    def scales(self) -> tuple[int, ...]:
        return CLASSICAL_SCALES if self.classical else (int(self.model.info.scale),)

    @property
    def inputs(self) -> tuple[str, ...]:
        return tuple(self.model.info.inputs)


def _macs_per_output_pixel(model: Any) -> float | None:
    try:
        from srkit.archs.profile import describe

        value = describe(model)["macs_per_output_pixel"]
        return None if value is None else float(value)
    except Exception:  # noqa: BLE001 - a model the profiler cannot trace still serves; its cost is just unknown
        per_lr = model.info.macs_per_lr_pixel
        return None if per_lr is None else per_lr / model.info.scale ** 2


def _describe(name: str, model: Any, classical: bool, shipped: bool) -> dict[str, Any]:
    info = model.info
    licence = (SHIPPED_LICENCE if shipped else "n/a (classical interpolation)" if classical
               else str(info.options.get("license") or info.options.get("licence") or "unknown"))
    return {
        "name": name,
        "arch": info.arch,
        "scale": int(info.scale),
        "scales": list(CLASSICAL_SCALES) if classical else [int(info.scale)],
        "macs_per_output_pixel": _macs_per_output_pixel(model),
        "color_space": info.color_space,
        "channels": int(info.in_channels),
        "receptive_field": info.receptive_field,
        "license": licence,
        "inputs": [{"name": n} for n in info.inputs],
        "stochastic": info.noise_channels > 0,
        "levels": _levels(info),
    }


def _levels(info: Any) -> dict[str, dict[str, float]] | None:
    """For a conditioned model (it takes noise and JPEG levels: real-x4-ctrl): the `strength` parameter's range and
    its `noise` / `jpeg` inputs' (the trained ranges; `srkit.infer.conditioning`); None for other models."""
    from srkit.infer.conditioning import takes_levels

    if not takes_levels(info):
        return None
    return {"strength": {"min": 0.0, "max": 1.0, "step": 0.05}, "noise": {"min": 0.0, "max": 50.0, "step": 1.0},
            "jpeg": {"min": 1.0, "max": 100.0, "step": 1.0}}


class Registry:
    """Served models by name and their shared Upscalers.

    Args:
        models: names / weights paths to load (a weights file is served under its stem), or a mapping of served
            name -> name, path or `SRModel`.
        tile, dtype, device: the Upscalers' settings (a request may ask for another tile side).
    """

    def __init__(self, models: Sequence[str | os.PathLike[str]] | Mapping[str, Any], *, tile: Any = "auto",
                 dtype: DtypePolicy = "auto", device: str = "cpu", max_upscalers: int = 32):
        from srkit.infer.api import load_upscaler
        from srkit.models import CLASSICAL_KERNELS, builtin_weights, load_model
        from srkit.srmodel import SRModel

        self.tile, self.dtype, self.device = tile, dtype, device
        shipped = builtin_weights()
        pairs: list[tuple[str, Any]]
        if isinstance(models, Mapping):
            pairs = list(models.items())
        else:
            pairs = [(Path(os.fspath(m)).stem if Path(os.fspath(m)).suffix else os.fspath(m), os.fspath(m))
                     for m in models]
        if not pairs:
            raise ApiError(500, "no models to serve")
        self._models: dict[str, ServedModel] = {}
        self._ups: OrderedDict[tuple, Any] = OrderedDict()
        self._lock = threading.Lock()
        self._max = max_upscalers
        for name, ref in pairs:
            classical = isinstance(ref, str) and ref in CLASSICAL_KERNELS
            model = ref if isinstance(ref, SRModel) else load_model(ref)
            up = load_upscaler(model, tile=tile, dtype=dtype, device=device)  # prepares the network now
            self._models[name] = ServedModel(name, model, classical,
                                             _describe(name, model, classical, isinstance(ref, str) and ref in shipped))
            self._ups[(name, up.scale, tile)] = up
        self.default = "balanced-x4" if "balanced-x4" in self._models else next(iter(self._models))

    def names(self) -> list[str]:
        return list(self._models)

    def describe(self) -> list[dict[str, Any]]:
        return [{**m.description, "default": m.name == self.default} for m in self._models.values()]

    def get(self, name: str | None) -> ServedModel:
        key = self.default if name is None else name
        if key not in self._models:
            raise ApiError(422, f"unknown model {name!r}; this server has {', '.join(self._models)}")
        return self._models[key]

    def upscaler(self, name: str, scale: int | None, tile: Any) -> Any:
        """The shared Upscaler of a served model at `scale` (422 for a scale it does not have) and `tile`."""
        from srkit.infer.api import load_upscaler
        from srkit.models import classical_model

        served = self.get(name)
        s = served.scales[0] if scale is None and not served.classical else (4 if scale is None else scale)
        if s not in served.scales:
            have = "1 to 8" if served.classical else str(served.scales[0])
            raise ApiError(422, f"model {name} is x{have}; scale {s} was asked for")
        key = (name, s, tile)
        with self._lock:
            up = self._ups.get(key)
            if up is not None:
                self._ups.move_to_end(key)
                return up
        model = served.model
        if served.classical and model.info.scale != s:
            model = classical_model(model.info.arch, s)
        up = load_upscaler(model, tile=tile, dtype=self.dtype, device=self.device)
        with self._lock:
            self._ups[key] = up
            while len(self._ups) > self._max:
                self._ups.popitem(last=False)
        return up
