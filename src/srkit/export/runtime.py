"""Running exported graphs: an onnxruntime session as a torch module. A leaf (torch, numpy and srkit.errors only),
so both the ONNX exporter and the model loader (`srkit.export.load`, used by `srkit.models`) build on it."""

from __future__ import annotations

import numpy as np
import torch

from srkit.errors import ConfigError

__all__ = ["OrtModule", "ort_session"]


def ort_session(data: bytes, device: str = "cpu", threads: int = 0):
    """An onnxruntime InferenceSession on serialized model bytes (CUDA provider for a cuda device when
    available, else CPU). Intra-op threads: `threads` if > 0, else torch's (`torch.get_num_threads()`), so both
    backends follow one setting."""
    try:
        import onnxruntime as ort
    except ImportError:
        raise ConfigError("onnxruntime is not installed (pip install 'srkit[export]')") from None
    so = ort.SessionOptions()
    so.log_severity_level = 3
    so.intra_op_num_threads = threads if threads > 0 else torch.get_num_threads()
    providers: list[str | tuple[str, dict[str, int]]] = ["CPUExecutionProvider"]
    if str(device).startswith("cuda") and "CUDAExecutionProvider" in ort.get_available_providers():
        dev_id = torch.device(device).index or 0
        providers = [("CUDAExecutionProvider", {"device_id": dev_id}), "CPUExecutionProvider"]
    return ort.InferenceSession(data, so, providers=providers)


class OrtModule(torch.nn.Module):
    """An onnxruntime session as a module: (B, C, H, W) float tensor -> (B, C', H', W') float32 tensor, computed
    on the CPU or the session's provider (the result comes back on the input's device). `InferenceSession.run`
    is thread-safe, so one module may serve several threads."""

    def __init__(self, session):
        super().__init__()
        self.session = session
        self.input_name = session.get_inputs()[0].name

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        arr = np.ascontiguousarray(x.detach().float().cpu().numpy())
        out = self.session.run(None, {self.input_name: arr})[0]
        return torch.from_numpy(out).to(x.device)
