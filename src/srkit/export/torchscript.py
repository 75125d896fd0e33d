"""TorchScript export of an `SRModel` (traced, deployed first), checked against eager PyTorch.

The saved module maps (B, C, H, W) float32 [0, 1] -> (B, C, sH, sW) float32 (not clipped), like `SRModel`, with
input-range scaling and Y-only colour handling inside; load it with ``torch.jit.load(path)``. It is traced, so
Python control flow that depends on the input size is frozen at the trace size: the check runs a different size
and refuses such a model.

PyTorch 2.14 marks `torch.jit` deprecated (in favour of `torch.export`); the format still loads with
``torch.jit.load`` and in LibTorch (C++). ONNX (`srkit.export.onnx`) is the format to prefer for deployment.
"""

from __future__ import annotations

import io
import json
import warnings
from pathlib import Path

import numpy as np
import torch

from srkit.errors import ConfigError
from srkit.models import SRModel

__all__ = ["export_torchscript"]


def export_torchscript(
    model: SRModel, path: str | Path, *, check: bool = True, channels: int | None = None, atol: float = 1e-4
) -> dict:
    """Trace `model` (deployed, CPU, fp32) to a TorchScript file; with `check`, compare the loaded file with eager
    PyTorch on a random input of another size and write only if max |diff| <= `atol` (atomic write).

    Args:
        channels: input channels (default: 3 for Y-only models and classical upsamplers, else the model's).

    Returns:
        {"path", "format": "torchscript", "channels", "size_bytes", "max_abs_diff" (None without check),
        "check_shape"}.

    Raises:
        ConfigError: tracing fails, or the traced module differs from eager by more than `atol` (e.g. it froze a
            size-dependent branch).
        ModelLoadError: the file cannot be written.
    """
    from srkit.export.graph import EXPORT_METADATA_KEY, ExportableSRModel, default_channels, export_metadata
    from srkit.export.onnx import _first_line, _prepare, check_sizes, write_atomic

    ref_model = _prepare(model)
    c = default_channels(ref_model) if channels is None else int(channels)
    net = ExportableSRModel(ref_model).eval()
    (th, tw), (ch, cw) = check_sizes(ref_model)
    example = torch.rand(1, c, th, tw, generator=torch.Generator().manual_seed(0))
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")  # TracerWarnings about frozen Python values: the check decides
            traced = torch.jit.trace(net, (example,), check_trace=False)
            traced = torch.jit.freeze(traced.eval())
            buf = io.BytesIO()
            meta = json.dumps(export_metadata(ref_model, c))
            torch.jit.save(traced, buf, _extra_files={f"{EXPORT_METADATA_KEY}.json": meta})
    except Exception as e:  # noqa: BLE001 - the tracer raises many kinds of errors
        raise ConfigError(f"{model.info.name} does not trace to TorchScript: {_first_line(e)}") from None
    data = buf.getvalue()
    diff, shape = None, None
    if check:
        x = torch.rand(2, c, ch, cw, generator=torch.Generator().manual_seed(1))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)  # torch.jit.* is deprecated in favour of torch.export
            loaded = torch.jit.load(io.BytesIO(data), map_location="cpu")
        with torch.inference_mode():
            ref = ref_model(x).float()
            try:
                out = loaded(x).float()
            except Exception as e:  # noqa: BLE001 - a size frozen into the trace fails here
                raise ConfigError(f"traced {model.info.name} fails on another input size: {_first_line(e)}") from None
        if out.shape != ref.shape:
            raise ConfigError(f"traced output shape {tuple(out.shape)} differs from eager {tuple(ref.shape)}")
        diff = float(np.abs(out.double().numpy() - ref.double().numpy()).max())
        shape = list(x.shape)
        if not diff <= atol:
            raise ConfigError(f"TorchScript export of {model.info.name} differs from eager by {diff:.3g} (> {atol:g})")
    write_atomic(path, data)
    return {"path": str(path), "format": "torchscript", "channels": c, "size_bytes": len(data),
            "max_abs_diff": diff, "check_shape": shape}
