"""Models as srkit sees them: an `nn.Module` plus a `ModelInfo` that says how to feed it.

`SRModel.__call__` always takes (B, C, H, W) float in [0, 1] and returns (B, C, sH, sW) in (roughly) [0, 1],
whatever the wrapped weights expect inside (0..255 range, Y-only colour space, ...). `load_model` turns a name
or a path into an `SRModel`.

The classical upsamplers (`nearest`, `bilinear`, `bicubic`, `lanczos`) are models too, so every baseline goes
through the same evaluation and inference code as a network.
"""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from srkit.errors import ModelLoadError
from srkit.srmodel import ModelInfo, SRModel

__all__ = [
    "CLASSICAL_KERNELS", "SRKIT_FORMAT", "WEIGHTS_DIR", "ClassicalUpsampler", "ModelInfo", "SRModel",
    "builtin_weights", "classical_model", "load_model", "model_from_state_dict", "same_layout", "save_model",
    "unwrap_state_dict",
]


class ClassicalUpsampler(nn.Module):
    """MATLAB-style interpolation as a module: (B, 1, H, W) -> (B, 1, sH, sW), differentiable."""

    def __init__(self, scale: int, kernel: str):
        super().__init__()
        self.scale = scale
        self.kernel = kernel

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        from srkit.ops import imresize_matlab

        return imresize_matlab(x, float(self.scale), kernel=self.kernel, convention="modern")


# Baseline name -> MATLAB imresize kernel.
CLASSICAL_KERNELS: dict[str, str] = {
    "nearest": "nearest",
    "bilinear": "linear",
    "bicubic": "cubic",
    "lanczos": "lanczos3",
}


def classical_model(name: str, scale: int) -> SRModel:
    """One of the classical upsamplers as an `SRModel`."""
    kernel = CLASSICAL_KERNELS[name]
    info = ModelInfo(
        arch=name,
        scale=scale,
        in_channels=1,
        out_channels=1,
        receptive_field=4,
        channel_agnostic=True,
        macs_per_lr_pixel=0.0,
    )
    return SRModel(ClassicalUpsampler(scale, kernel), info).eval()


SRKIT_FORMAT = "srkit"
WEIGHTS_DIR = Path(__file__).resolve().parent / "weights"


def builtin_weights() -> dict[str, Path]:
    """Shipped model name -> safetensors path (files in `srkit/weights/`)."""
    if not WEIGHTS_DIR.is_dir():
        return {}
    return {p.stem: p for p in sorted(WEIGHTS_DIR.glob("*.safetensors"))}


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def save_model(model: SRModel, path: str | Path, *, training_data: str = "",
               extra: dict[str, str] | None = None) -> Path:
    """Write an `SRModel` built by `srkit.archs.build` as srkit safetensors (atomic: temp file + rename).

    The metadata holds what `load_model` needs to rebuild it: format, arch, options (JSON), scale, colour
    space, input range, training data and the srkit version.

    Raises:
        ModelLoadError: the model has no arch spec behind it (e.g. a classical upsampler) or cannot be written.
    """
    import json

    from safetensors.torch import save_file

    from srkit import __version__
    from srkit.archs import ARCHS

    info = model.info
    if info.arch not in ARCHS:
        raise ModelLoadError(f"cannot save {info.arch!r}: only srkit architectures have a weights format")
    meta = {
        "format": SRKIT_FORMAT,
        "arch": info.arch,
        "options": json.dumps(info.options, sort_keys=True),
        "scale": str(info.scale),
        "color_space": info.color_space,
        "input_range": repr(float(info.input_range)),
        "training_data": training_data,
        "srkit_version": __version__,
        **(extra or {}),
    }
    path = Path(path)
    tensors = {k: v.detach().contiguous().cpu() for k, v in model.module.state_dict().items()}
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        save_file(tensors, str(tmp), metadata=meta)
        os.chmod(tmp, 0o666 & ~_umask())  # a weights file is for sharing: rw-r--r-- under the usual umask
        os.replace(tmp, path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise ModelLoadError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
    return path


def _load_srkit_safetensors(path: Path, meta: dict[str, str], tensors: dict) -> SRModel:
    import json

    from srkit.archs import ARCHS, build

    arch = meta.get("arch", "")
    if arch not in ARCHS:
        raise ModelLoadError(f"{path.name}: unknown arch {arch!r} in srkit metadata")
    try:
        options = json.loads(meta.get("options", "{}"))
        scale = int(meta["scale"])
    except (ValueError, KeyError) as e:
        raise ModelLoadError(f"{path.name}: bad srkit metadata ({e})") from None
    model = build(arch, scale=scale, **options)
    _load_strict(model.module, tensors, path.name)
    return model.eval()


def same_layout(a: dict, b: dict) -> bool:
    """True when two state dicts have the same parameter names and shapes (one can be loaded into the other)."""
    return a.keys() == b.keys() and all(a[k].shape == b[k].shape for k in a)


def _load_strict(module: nn.Module, sd: dict, label: str) -> None:
    try:
        module.load_state_dict(sd, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise ModelLoadError(f"{label}: weights do not fit the architecture ({' '.join(first[:2])[:300]})") from None


def unwrap_state_dict(obj) -> dict:
    """Find the state dict inside a checkpoint: `params_ema` > `params` > `state_dict` > `model` > itself;
    strips a DataParallel `module.` prefix."""
    if isinstance(obj, dict):
        for key in ("params_ema", "params", "state_dict", "model", "net_g"):
            if key in obj and isinstance(obj[key], dict):
                return unwrap_state_dict(obj[key])
    if not isinstance(obj, dict) or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise ModelLoadError("checkpoint holds no state dict of tensors")
    if obj and all(k.startswith("module.") for k in obj):
        obj = {k[len("module."):]: v for k, v in obj.items()}
    return dict(obj)


def _read_checkpoint(path: Path) -> tuple[dict, dict[str, str]]:
    """(state dict, safetensors metadata) of a weights file; only tensors are ever unpickled."""
    if path.suffix.lower() == ".safetensors":
        from safetensors import safe_open

        try:
            with safe_open(str(path), framework="pt") as f:
                meta = f.metadata() or {}
                tensors = {k: f.get_tensor(k) for k in f.keys()}
        except Exception as e:  # safetensors raises several private error types
            raise ModelLoadError(f"cannot read {str(path)!r}: not a valid safetensors file ({e})") from None
        return tensors, meta
    try:
        obj = torch.load(str(path), map_location="cpu", weights_only=True)
    except Exception as e:  # pickle errors, zip errors, forbidden globals
        msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"cannot read {str(path)!r} as a PyTorch checkpoint (weights_only): {msg}") from None
    return unwrap_state_dict(obj), {}


def model_from_state_dict(sd: dict, *, scale: int | None = None, label: str = "state dict") -> SRModel:
    """Recognise an authors' checkpoint layout and build the matching model; spandrel is the last resort.

    Raises:
        ModelLoadError: nothing recognises the keys; the message lists what was tried.
    """
    from srkit.archs import DETECTORS, build

    tried = []
    for family, detect, convert in DETECTORS:
        tried.append(family)
        candidate = sd
        if convert is not None:
            try:
                candidate = convert(sd)
            except (KeyError, ValueError, IndexError):
                continue
        found = detect(candidate)
        if found is None:
            continue
        arch, found_scale, options = found
        s = found_scale if found_scale is not None else scale
        if s is None:
            raise ModelLoadError(f"{label}: {arch} weights do not say their scale; pass scale= (--scale)")
        if scale is not None and found_scale is not None and scale != found_scale:
            raise ModelLoadError(f"{label}: the weights are {arch} x{found_scale}, but x{scale} was asked for")
        model = build(arch, scale=s, **options)
        _load_strict(model.module, candidate, label)
        return model.eval()
    tried.append("spandrel")
    try:
        import spandrel
    except ImportError:
        spandrel = None
    if spandrel is not None:
        try:
            desc = spandrel.ModelLoader().load_from_state_dict(sd)
        except Exception as e:  # spandrel raises UnsupportedModelError and others
            last = f"spandrel: {str(e).splitlines()[0][:120] if str(e) else type(e).__name__}"
        else:
            if not isinstance(desc, spandrel.ImageModelDescriptor):
                raise ModelLoadError(f"{label}: spandrel found {desc.architecture.name}, which is not an SR model")
            if scale is not None and desc.scale != scale:
                raise ModelLoadError(f"{label}: the weights are {desc.architecture.name} x{desc.scale}, not x{scale}")
            req = desc.size_requirements
            info = ModelInfo(
                arch=f"spandrel:{desc.architecture.id}",
                scale=desc.scale,
                in_channels=desc.input_channels,
                out_channels=desc.output_channels,
                color_space="y" if desc.input_channels == 1 else "rgb",
                size_multiple=max(1, req.multiple_of),
                receptive_field=None,
                safe_dtypes=("fp32",) + (("bf16",) if desc.supports_bfloat16 else ())
                + (("fp16",) if desc.supports_half else ()),
            )
            return SRModel(desc.model, info).eval()
    else:
        last = "spandrel: not installed (pip install 'srkit[models]')"
    raise ModelLoadError(f"{label}: no known layout fits its {len(sd)} tensors (tried {', '.join(tried)}; {last})")


# --- catalogue models (`srkit pull NAME` puts them in the cache; see srkit.catalog) --------------------------


def _pulled_catalogue_model(name: str) -> Path | None:
    """The cached file of catalogue model `name`, or None when `name` is no catalogue model.

    Raises:
        ModelLoadError: a catalogue model that is not in the cache; one line saying `srkit pull NAME` or where
            to put the file.
    """
    from srkit.catalog import resolve_cached

    return resolve_cached(name)


def _unknown_model(name: str, shipped: dict[str, Path]) -> ModelLoadError:
    """The unknown-name error, naming the closest shipped, classical and catalogue names."""
    from srkit.catalog import closest_names, load_catalogue
    from srkit.errors import ConfigError

    names = [*CLASSICAL_KERNELS, *shipped]
    try:
        names += load_catalogue().ids
    except ConfigError:
        pass
    close = closest_names(name, names)
    hint = f"; closest: {', '.join(close)}" if close else ""
    return ModelLoadError(f"unknown model {name!r}: no such file, and not a shipped, classical or catalogue model"
                          f"{hint} (srkit models lists them)")


def load_model(name_or_path: str | Path | SRModel, *, scale: int | None = None) -> SRModel:
    """Resolve a model name or weights path to an `SRModel` in eval mode.

    Accepts, in this order: an `SRModel` (returned as is); a classical upsampler name (`nearest`, `bilinear`,
    `bicubic`, `lanczos`, optionally `-x<scale>`); a shipped model name (`srkit/weights/<name>.safetensors`);
    a path to srkit safetensors; a path to an authors' checkpoint (`.pth`/`.pt`/`.ckpt`/`.safetensors`, loaded
    with `torch.load(weights_only=True)`; `params_ema`/`params`/`state_dict` wrappers and legacy pickles handled)
    in a layout of an srkit architecture; anything spandrel recognises; an ONNX or TorchScript export
    (`srkit.export.load`, run by onnxruntime / `torch.jit`, fp32); last, the id of a catalogue model pulled into
    the cache (`srkit pull NAME`, `srkit.catalog`).

    Args:
        scale: upscaling factor for scale-free models (classical upsamplers, default 4) and for weights whose
            scale cannot be read from their shapes. For a model with a fixed scale it must match, if given.

    Raises:
        ModelLoadError: unknown name (the message names the closest known ones), a catalogue model not pulled
            yet, unreadable file, a layout nothing recognises (the message lists what was tried), or a scale that
            does not fit the model.
    """
    if isinstance(name_or_path, SRModel):
        if scale is not None and scale != name_or_path.info.scale:
            raise ModelLoadError(f"model is x{name_or_path.info.scale}, but scale {scale} was asked for")
        return name_or_path
    name = str(name_or_path)
    base, _, suffix = name.partition("-x")
    if base in CLASSICAL_KERNELS:
        s = scale
        if suffix:
            if not suffix.isdigit():
                raise ModelLoadError(f"bad model name {name!r}: expected e.g. {base}-x4")
            if s is not None and s != int(suffix):
                raise ModelLoadError(f"model {name!r} is x{suffix}, but scale {s} was asked for")
            s = int(suffix)
        s = 4 if s is None else s
        if s < 1:
            raise ModelLoadError(f"scale must be a positive integer, got {s}")
        return classical_model(base, s)
    shipped = builtin_weights()
    path = shipped.get(name, Path(name))
    if not path.exists():
        from srkit.archs import ARCHS

        if name in ARCHS:
            raise ModelLoadError(
                f"{name!r} is an architecture without shipped weights: pass a weights file, or build it with "
                "srkit.archs.build"
            )
        pulled = _pulled_catalogue_model(name)
        if pulled is None:
            raise _unknown_model(name, shipped)
        path = pulled
    if path.is_dir():
        raise ModelLoadError(f"{name!r} is a folder, not a weights file")
    from srkit.export.load import load_exported

    exported = load_exported(path)  # ONNX / TorchScript files, recognised by content
    if exported is not None:
        if scale is not None and scale != exported.info.scale:
            raise ModelLoadError(f"{path.name} is x{exported.info.scale}, but scale {scale} was asked for")
        return exported
    sd, meta = _read_checkpoint(path)
    if meta.get("format") == SRKIT_FORMAT:
        model = _load_srkit_safetensors(path, meta, sd)
        if scale is not None and scale != model.info.scale:
            raise ModelLoadError(f"{path.name} is x{model.info.scale}, but scale {scale} was asked for")
        return model
    return model_from_state_dict(sd, scale=scale, label=path.name)
