"""Load exported models (ONNX, TorchScript) back as `SRModel`s, so `srkit upscale`, `eval` and `info` run them.

An export is recognised by its content, not its name: an ONNX file is a protobuf `ModelProto` (it starts with
field 1, `ir_version`, and parses with onnxruntime); a TorchScript file is a zip archive holding `code/` and
`constants.pkl` (a plain `torch.save` checkpoint has neither). The graph maps (B, C, H, W) float32 [0, 1] to
(B, C, sH, sW) with any colour handling inside, so the model's `ModelInfo` says RGB in, RGB out (or gray for a
1-channel graph). srkit's exports carry metadata (`srkit.export.graph.export_metadata`: scale, channels,
receptive field, size multiple, source architecture and cost); for other files the scale is measured by running
the graph once on a small input, the channels come from the graph's input, and the receptive field is unknown
(tiles are then blended, not exact). Exports run in fp32.
"""

from __future__ import annotations

import json
import warnings
import zipfile
from pathlib import Path

import torch

from srkit.errors import ModelLoadError
from srkit.srmodel import ModelInfo, SRModel

__all__ = ["export_kind", "load_exported"]


def export_kind(path: Path) -> str | None:
    """"onnx", "torchscript" or None (not an export) for the file at `path`, by content."""
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return None
    if head.startswith(b"PK"):
        try:
            with zipfile.ZipFile(path) as z:
                names = z.namelist()
        except (zipfile.BadZipFile, OSError):
            return None
        if any("/code/" in n for n in names) and any(n.endswith("constants.pkl") for n in names):
            return "torchscript"
        return None
    # ModelProto field 1 (ir_version, varint): tag byte 0x08; suffix as a second opinion, since a legacy pickle
    # checkpoint never starts with 0x08 but other protobufs might.
    if head[:1] == b"\x08" and path.suffix.lower() == ".onnx":
        return "onnx"
    return None


def _info(meta: dict, channels: int, scale: int, fmt: str) -> ModelInfo:
    rf = meta.get("receptive_field")
    macs = meta.get("macs_per_lr_pixel")
    return ModelInfo(
        arch=str(meta.get("arch", fmt)),
        scale=scale,
        in_channels=channels,
        out_channels=channels,
        color_space="rgb",
        size_multiple=int(meta.get("size_multiple", 1) or 1),
        receptive_field=None if rf is None else int(rf),
        safe_dtypes=("fp32",),
        macs_per_lr_pixel=None if macs is None else float(macs),
        options={"format": fmt, "exported_from": meta.get("arch")},
    )


def _measure_scale(module: torch.nn.Module, channels: int, multiple: int, label: str) -> int:
    side = 16 * max(1, multiple)
    x = torch.rand(1, channels, side, side)
    try:
        with torch.inference_mode():
            y = module(x)
    except Exception as e:  # noqa: BLE001 - the runtime's own error, reported in one line
        msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"{label}: the exported graph does not run on a {tuple(x.shape)} input: {msg}") from None
    ratio, rest = divmod(int(y.shape[-1]), side)
    if rest or ratio < 1 or int(y.shape[-2]) != ratio * side:
        raise ModelLoadError(f"{label}: output {tuple(y.shape)} for input {tuple(x.shape)} is not an integer upscale")
    return ratio


def _load_onnx(path: Path) -> SRModel:
    from srkit.errors import ConfigError
    from srkit.export.runtime import OrtModule, ort_session

    try:
        session = ort_session(path.read_bytes())
    except ConfigError as e:  # onnxruntime missing
        raise ModelLoadError(f"{path.name}: {e}") from None
    except Exception as e:  # noqa: BLE001 - onnxruntime's parse errors
        msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"cannot read {str(path)!r} as an ONNX model: {msg}") from None
    raw = session.get_modelmeta().custom_metadata_map.get("srkit")
    meta = json.loads(raw) if raw else {}
    dims = session.get_inputs()[0].shape
    channels = int(meta.get("channels") or (dims[1] if len(dims) == 4 and isinstance(dims[1], int) else 3))
    module = OrtModule(session)
    scale = int(meta["scale"]) if meta.get("scale") else _measure_scale(
        module, channels, int(meta.get("size_multiple", 1) or 1), path.name)
    return SRModel(module, _info(meta, channels, scale, "onnx")).eval()


def _load_torchscript(path: Path) -> SRModel:
    extra = {"srkit.json": ""}
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit is deprecated in favour of torch.export
            module = torch.jit.load(str(path), map_location="cpu", _extra_files=extra)
    except Exception as e:  # noqa: BLE001 - the TorchScript loader raises many kinds of errors
        msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
        raise ModelLoadError(f"cannot read {str(path)!r} as a TorchScript model: {msg}") from None
    meta = json.loads(extra["srkit.json"]) if extra["srkit.json"] else {}
    channels = int(meta.get("channels") or 3)
    scale = int(meta["scale"]) if meta.get("scale") else _measure_scale(
        module, channels, int(meta.get("size_multiple", 1) or 1), path.name)
    return SRModel(module, _info(meta, channels, scale, "torchscript")).eval()


def load_exported(path: Path) -> SRModel | None:
    """The `SRModel` of an ONNX or TorchScript export at `path`, or None when the file is neither.

    Raises:
        ModelLoadError: an export that cannot be loaded (onnxruntime missing, corrupt graph, not an upscaler).
    """
    kind = export_kind(path)
    if kind == "onnx":
        return _load_onnx(path)
    if kind == "torchscript":
        return _load_torchscript(path)
    return None
