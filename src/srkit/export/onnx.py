"""ONNX export of an `SRModel`, with dynamic batch, height and width, checked against PyTorch with onnxruntime.

The exported graph is the whole `SRModel` (deployed first): input ``input`` (B, C, H, W) float32 in [0, 1],
output ``output`` (B, C, sH, sW) float32 (not clipped), so input range scaling and the Y-only colour handling
(RGB -> YCbCr, network on Y, MATLAB-bicubic chroma, -> RGB) are inside the graph.

Exporter: the torch.export-based exporter (``dynamo=True``, the default since PyTorch 2.9) is tried first; if it
fails, or keeps height/width static, the legacy TorchScript-based exporter (deprecated, still present in 2.14)
is tried. The report names the one used.
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import logging
import math
import os
import warnings
from pathlib import Path

import numpy as np
import torch

from srkit.errors import ConfigError, ModelLoadError
from srkit.export.runtime import OrtModule, ort_session
from srkit.srmodel import SRModel

__all__ = ["DEFAULT_OPSET", "OrtModule", "check_sizes", "export_onnx", "onnx_model_bytes", "ort_session"]

DEFAULT_OPSET = 17
_MAX_PROTO_BYTES = 2**31 - 1  # protobuf's limit for a single-file model


def check_sizes(model: SRModel) -> tuple[tuple[int, int], tuple[int, int]]:
    """(trace (H, W), check (H, W)) LR sizes: multiples of the model's size_multiple, non-square and different,
    so a graph that kept the trace size, or swapped H and W, fails the check."""
    m = max(1, model.info.size_multiple)
    trace = (m * math.ceil(48 / m), m * math.ceil(40 / m))
    check = (trace[0] + m * math.ceil(13 / m), trace[1] + m * math.ceil(7 / m))
    return trace, check


def _prepare(model: SRModel) -> SRModel:
    """A CPU fp32 eval copy of the model's inference form (the caller's model is never touched)."""
    from srkit.deployment import deploy

    if not isinstance(model, SRModel):
        raise ConfigError(f"export needs an srkit SRModel, got {type(model).__name__}")
    if model.info.inputs:
        raise ConfigError(f"{model.info.name} takes per-call inputs ({', '.join(model.info.inputs)}), which ONNX and "
                          "TorchScript exports do not carry (they take the image only); run it with srkit instead")
    if model.info.multi_frame:
        raise ConfigError(f"{model.info.name} is a multi-frame model: ONNX and TorchScript exports take one image, "
                          "not a clip; run it with srkit instead")
    return deploy(copy.deepcopy(model).cpu().float()).eval()


@contextlib.contextmanager
def _quiet_exporters():
    """Silence the exporters' progress/deprecation chatter (opset upgrade notes, TracerWarnings); errors still
    raise."""
    loggers = [logging.getLogger(n) for n in ("torch.onnx", "torch.export", "torch._dynamo", "onnxscript")]
    levels = [lg.level for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.ERROR)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            with contextlib.redirect_stdout(io.StringIO()):
                yield
    finally:
        for lg, lv in zip(loggers, levels):
            lg.setLevel(lv)


def _dims_dynamic(proto) -> bool:
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    return len(dims) == 4 and all(d.dim_param or not d.HasField("dim_value") for d in (dims[2], dims[3]))


def _name_dynamic_axes(proto) -> None:
    """Name the dynamic axes of the graph's input (batch, height, width) and output (batch, out_height,
    out_width), whatever the exporter called them; the output's batch follows the input's (the torch.export
    exporter may leave it fixed at the trace's 1)."""
    for value, names in ((proto.graph.input[0], ("batch", None, "height", "width")),
                         (proto.graph.output[0], ("batch", None, "out_height", "out_width"))):
        dims = value.type.tensor_type.shape.dim
        if len(dims) != 4:
            continue
        for d, name in zip(dims, names):
            if name is not None:
                d.ClearField("dim_value")
                d.dim_param = name


def _export_dynamo(net: torch.nn.Module, example: torch.Tensor, opset: int):
    from torch.export import Dim

    prog = torch.onnx.export(
        net, (example,), dynamo=True, opset_version=opset, input_names=["input"], output_names=["output"],
        dynamic_shapes=({0: Dim.AUTO, 2: Dim.AUTO, 3: Dim.AUTO},), verbose=False, optimize=True,
    )
    if prog is None:  # torch returns None only for the legacy exporter (dynamo=False)
        raise RuntimeError("torch.onnx.export returned no ONNX program")
    return prog.model_proto


def _export_legacy(net: torch.nn.Module, example: torch.Tensor, opset: int):
    import onnx

    buf = io.BytesIO()
    # The legacy exporter writes to a file object too; torch annotates `f` as a path only.
    torch.onnx.export(
        net, (example,), buf,  # type: ignore[arg-type]
        dynamo=False, opset_version=opset, input_names=["input"], output_names=["output"],
        dynamic_axes={"input": {0: "batch", 2: "height", 3: "width"},
                      "output": {0: "batch", 2: "out_height", 3: "out_width"}},
    )
    return onnx.load_from_string(buf.getvalue())


def onnx_model_bytes(
    model: SRModel, *, opset: int = DEFAULT_OPSET, channels: int | None = None, exporter: str = "auto"
) -> tuple[bytes, dict]:
    """Serialized ONNX model of `model` (deployed, CPU, fp32) with dynamic batch/height/width; not checked.

    Args:
        channels: input channels of the graph (default `srkit.export.graph.default_channels`: 3 for Y-only models
            and classical upsamplers, which then take and return RGB).
        exporter: "auto" (torch.export-based, then the legacy TorchScript exporter), "dynamo" or "legacy".

    Returns:
        (bytes, {"exporter", "opset", "channels", "trace_size"}).

    Raises:
        ConfigError: no exporter produced a graph with dynamic height and width (the reasons are in the message).
    """
    from srkit.export.graph import EXPORT_METADATA_KEY, ExportableSRModel, default_channels, export_metadata

    if exporter not in ("auto", "dynamo", "legacy"):
        raise ConfigError(f"exporter must be auto, dynamo or legacy, got {exporter!r}")
    net_model = _prepare(model)
    c = default_channels(net_model) if channels is None else int(channels)
    net = ExportableSRModel(net_model).eval()
    (th, tw), _ = check_sizes(net_model)
    example = torch.rand(1, c, th, tw, generator=torch.Generator().manual_seed(0))
    with torch.inference_mode():
        try:
            net(example)
        except Exception as e:  # noqa: BLE001 - the model's own error, reported in one line
            raise ConfigError(f"{model.info.name} does not run on a {c}-channel input: {_first_line(e)}") from None
    tries = ["dynamo", "legacy"] if exporter == "auto" else [exporter]
    reasons = []
    for name in tries:
        try:
            with _quiet_exporters():
                proto = (_export_dynamo if name == "dynamo" else _export_legacy)(net, example, opset)
        except Exception as e:  # noqa: BLE001 - exporters raise many private error types
            reasons.append(f"{name}: {_first_line(e)}")
            continue
        if not _dims_dynamic(proto):
            reasons.append(f"{name}: height/width came out static")
            continue
        _name_dynamic_axes(proto)
        entry = proto.metadata_props.add()
        entry.key, entry.value = EXPORT_METADATA_KEY, json.dumps(export_metadata(net_model, c))
        if proto.ByteSize() > _MAX_PROTO_BYTES:
            raise ConfigError(f"{model.info.name}: the ONNX model would exceed 2 GB (external data not supported)")
        info = {"exporter": name, "opset": max(o.version for o in proto.opset_import if o.domain in ("", "ai.onnx")),
                "channels": c, "trace_size": [th, tw]}
        return proto.SerializeToString(), info
    raise ConfigError(f"{model.info.name} does not export to ONNX ({'; '.join(reasons)})")


def _first_line(e: BaseException) -> str:
    text = str(e).strip()
    return (text.splitlines()[0][:300] if text else type(e).__name__)


def check_onnx_bytes(data: bytes, model: SRModel, channels: int, *, batch: int = 2) -> tuple[float, list[int]]:
    """Largest |ONNX - PyTorch| over a random (batch, channels, H, W) input of the check size (not the trace
    size), with the PyTorch side the model's own fp32 CPU forward (deployed). Returns (max |diff|, input shape)."""
    ref_model = _prepare(model)
    _, (h, w) = check_sizes(ref_model)
    x = torch.rand(batch, channels, h, w, generator=torch.Generator().manual_seed(1))
    with torch.inference_mode():
        ref = ref_model(x).float().numpy()
    sess = ort_session(data)
    out = sess.run(None, {sess.get_inputs()[0].name: x.numpy()})[0]
    if out.shape != ref.shape:
        raise ConfigError(f"ONNX output shape {out.shape} differs from PyTorch's {ref.shape} on input {tuple(x.shape)}")
    return float(np.abs(out.astype(np.float64) - ref).max()), list(x.shape)


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write bytes to `path` through a temp file in the same folder + rename (no partial file on failure)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except OSError as e:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise ModelLoadError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
    return path


def export_onnx(
    model: SRModel,
    path: str | Path,
    *,
    opset: int = DEFAULT_OPSET,
    check: bool = True,
    channels: int | None = None,
    atol: float = 1e-4,
    exporter: str = "auto",
) -> dict:
    """Export `model` (deployed) to an ONNX file with dynamic batch/height/width; verify it with onnxruntime.

    The graph maps ``input`` (B, C, H, W) float32 [0, 1] to ``output`` (B, C, sH, sW) float32 (not clipped).
    With `check`, onnxruntime and PyTorch run the same random input of a size other than the trace size and the
    file is written only if max |diff| <= `atol`. The write is atomic (temp file + rename).

    Args:
        channels: graph input channels (default: 3 for Y-only models and classical upsamplers, else the model's).
        exporter: "auto" (torch.export-based, falling back to the legacy TorchScript exporter), "dynamo", "legacy".

    Returns:
        {"path", "format": "onnx", "opset", "exporter", "channels", "size_bytes", "max_abs_diff" (None without
        check), "check_shape"}.

    Raises:
        ConfigError: the model does not export, or the check finds a difference above `atol`.
        ModelLoadError: the file cannot be written.
    """
    data, info = onnx_model_bytes(model, opset=opset, channels=channels, exporter=exporter)
    diff, shape = None, None
    if check:
        diff, shape = check_onnx_bytes(data, model, info["channels"])
        if not diff <= atol:
            raise ConfigError(
                f"ONNX export of {model.info.name} differs from PyTorch by {diff:.3g} (> {atol:g}) on input {shape}"
            )
    out = write_atomic(path, data)
    return {"path": str(out), "format": "onnx", "opset": info["opset"], "exporter": info["exporter"],
            "channels": info["channels"], "size_bytes": len(data), "max_abs_diff": diff, "check_shape": shape}
