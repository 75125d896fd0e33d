"""Export an `SRModel` to deployment formats: ONNX (`export_onnx`) and TorchScript (`export_torchscript`).

Both deploy the model first (re-parameterised blocks folded), take (B, C, H, W) float32 [0, 1] with dynamic
height and width, return (B, C, sH, sW), and check the written graph against PyTorch on an input size other
than the trace size.
"""

from __future__ import annotations

from srkit.export.onnx import export_onnx
from srkit.export.torchscript import export_torchscript

__all__ = ["export_onnx", "export_torchscript"]
