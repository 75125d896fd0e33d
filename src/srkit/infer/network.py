"""The network as it runs: an `SRModel` prepared once per (model, backend, device, dtype, layout) and cached.

Preparing a model is the expensive part of making an `Upscaler`: folding re-parameterisable blocks (a deep
copy), storing conv weights in bf16/fp16, swapping PReLU for a faster equal form, converting to channels-last,
or exporting to ONNX for onnxruntime. `prepare_network` does it once and keeps the result in a cache keyed
weakly by the model, so `srkit.upscale(image, model=m)` in a loop and one reused `Upscaler` cost the same, and a
model that the caller drops is freed with its prepared forms. (A prepared network that *is* the given model —
fp32 with nothing to fold — is not cached: it costs nothing to make, and caching it would keep the model alive.)
"""

from __future__ import annotations

import threading
import warnings
import weakref
from dataclasses import dataclass
from typing import Literal, cast, get_args

import torch

from srkit.errors import ConfigError
from srkit.srmodel import SRModel

__all__ = [
    "AutocastModule",
    "Backend",
    "DtypePolicy",
    "MaxFormPReLU",
    "NetworkKey",
    "PreparedNetwork",
    "cpu_has_fast_bf16",
    "prepare_network",
    "resolve_dtype",
]

#: Compute dtype policies: "auto" picks bf16 where the hardware is fast at it and the model allows it.
DtypePolicy = Literal["auto", "fp32", "bf16", "fp16"]
#: Inference backends.
Backend = Literal["torch", "onnxruntime"]

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}
_LOWP_LAYERS = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.ConvTranspose2d, torch.nn.Linear)


def cpu_has_fast_bf16() -> bool:
    """True where the CPU runs bf16 matmuls/convolutions natively (AMX or AVX512-BF16)."""
    try:
        with open("/proc/cpuinfo") as f:
            flags = f.read()
    except OSError:
        return False
    return "amx_bf16" in flags or "avx512_bf16" in flags


def resolve_dtype(policy: str, device: torch.device, model: SRModel) -> str:
    """The compute dtype name for a dtype policy (`auto`, `fp32`, `bf16`, `fp16`)."""
    if policy == "auto":
        if model.info.channel_agnostic or "bf16" not in model.info.safe_dtypes:
            return "fp32"
        if device.type == "cuda" or (device.type == "cpu" and cpu_has_fast_bf16()):
            return "bf16"
        return "fp32"
    if policy not in _DTYPES:
        raise ConfigError(f"unknown dtype {policy!r}; choose {', '.join(get_args(DtypePolicy))}")
    return policy


def _cast_conv_weights(module: torch.nn.Module, dtype: torch.dtype, *, in_place: bool) -> torch.nn.Module:
    """`module` with the parameters of its conv/linear layers (the ops autocast runs in low precision) cast to
    `dtype`; everything else (norms, PReLU slopes, buffers) stays as it is, since autocast runs those in fp32.

    With `in_place` False the result is a copy in which only those parameters are new low-precision tensors
    (other parameters and buffers are copied as they are); `module` itself is untouched.
    """
    cast = {}
    for m in module.modules():
        if isinstance(m, _LOWP_LAYERS):
            for p in m.parameters(recurse=False):
                cast[id(p)] = torch.nn.Parameter(p.detach().to(dtype), requires_grad=False)
    if in_place:
        for m in module.modules():
            if isinstance(m, _LOWP_LAYERS):
                for name, p in list(m.named_parameters(recurse=False)):
                    setattr(m, name, cast[id(p)])
        return module
    import copy

    # deepcopy consults the memo first, so the listed parameters are replaced, not copied in fp32 first.
    return copy.deepcopy(module, memo=dict(cast))


class MaxFormPReLU(torch.nn.Module):
    """`nn.PReLU` computed as ``max(x, a*x)`` (every slope a <= 1) or ``min(x, a*x)`` (every a >= 1).

    The same values as ``F.prelu`` (round-to-nearest is monotonic, so ``a*x`` never crosses ``x`` on the wrong
    side), but two vectorised passes: PyTorch's CPU PReLU kernel takes a slow per-element path on channels-last
    tensors (14.5 ms against 2.7 ms here for a bf16 (1, 48, 512, 512) tensor on this project's CPU), which was a
    quarter of a PReLU network's bf16 inference time. Without autograd the result is written into the product.
    """

    def __init__(self, prelu: torch.nn.PReLU):
        super().__init__()
        self.weight = prelu.weight
        self.use_max = bool((prelu.weight <= 1).all())

    @staticmethod
    def applies_to(prelu: torch.nn.PReLU) -> bool:
        w = prelu.weight.detach()
        return bool((w <= 1).all() or (w >= 1).all())

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        a = self.weight.to(x.dtype)
        if a.numel() > 1:
            a = a.view(1, -1, *([1] * (x.ndim - 2)))
        t = x * a
        op = torch.maximum if self.use_max else torch.minimum
        return op(x, t) if torch.is_grad_enabled() else op(x, t, out=t)


def _fast_prelu(module: torch.nn.Module) -> torch.nn.Module:
    """Replace (in place) every `nn.PReLU` of `module` whose slopes allow it by a `MaxFormPReLU`."""
    for parent in list(module.modules()):
        for name, child in list(parent.named_children()):
            if isinstance(child, torch.nn.PReLU) and MaxFormPReLU.applies_to(child):
                setattr(parent, name, MaxFormPReLU(child))
    return module


class AutocastModule(torch.nn.Module):
    """Runs `module` under `torch.autocast(device_type, dtype)`; outputs come back as float32."""

    def __init__(self, module: torch.nn.Module, device_type: str, dtype: torch.dtype):
        super().__init__()
        self.module = module
        self.device_type = device_type
        self.dtype = dtype

    def forward(self, x: torch.Tensor, **inputs: torch.Tensor | float) -> torch.Tensor:
        with torch.autocast(device_type=self.device_type, dtype=self.dtype):
            y = self.module(x, **inputs)
        return y.float()


@dataclass(frozen=True)
class NetworkKey:
    """What a prepared network depends on besides the model itself."""

    backend: Backend
    device: str
    dtype: str  # the resolved compute dtype
    channels_last: bool
    compile: bool
    deploy: bool


class PreparedNetwork:
    """A network ready to run: call it on a (B, C, h, w) float32 input whose size fits the model's size multiple
    (plus the model's extra inputs as keywords) -> (B, C', sh, sw) float32.

    Attributes (read-only after construction): `net` (the `SRModel` that runs: the deployed copy or the given
    model, wrapped in an `AutocastModule` for bf16/fp16, or around an `OrtModule`), `key`, `deployed`.
    The only mutable state is a one-way "compile failed" latch and a lock that serialises calls into the
    compiled network (Dynamo's caches are not meant for concurrent recompilation); any number of threads may
    call one PreparedNetwork.
    """

    def __init__(self, net: SRModel, key: NetworkKey, *, deployed: bool):
        self.net = net
        self.key = key
        self.deployed = deployed
        self._compile_failed = threading.Event()
        self._compile_lock = threading.Lock()
        self._compiled: SRModel | None = None
        self.stamp = 0  # `_weights_stamp` of the model when this was prepared (set by `prepare_network`)
        if key.compile:
            try:
                # The network only: SRModel's colour conversion holds numpy-made constants that Dynamo guards
                # badly, and costs little. Freezing lets Inductor fold the (constant) weights and prepack them
                # for oneDNN; dynamic=False compiles once per input shape (tiles share a few shapes).
                inner = torch.compile(net.module, dynamic=False, options={"freezing": True})
                self._compiled = SRModel(cast(torch.nn.Module, inner), net.info).eval()
            except Exception as e:  # noqa: BLE001 - e.g. no compiler toolchain on this platform
                self._compile_fallback(e)

    @property
    def compiled(self) -> bool:
        """True while the compiled network is in use (False without `compile`, or after it failed)."""
        return self._compiled is not None and not self._compile_failed.is_set()

    def _compile_fallback(self, e: BaseException) -> None:
        if not self._compile_failed.is_set():
            self._compile_failed.set()
            msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            warnings.warn(f"torch.compile failed ({msg}); running eagerly", RuntimeWarning, stacklevel=4)

    def __call__(self, x: torch.Tensor, **inputs: torch.Tensor | float) -> torch.Tensor:
        if self.key.backend == "onnxruntime":
            return self.net(x, **inputs)
        if self.key.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        compiled = self._compiled
        if compiled is not None and not self._compile_failed.is_set():
            try:
                with self._compile_lock:
                    return compiled(x, **inputs).float()
            except torch.OutOfMemoryError:
                raise
            except Exception as e:  # noqa: BLE001 - any compiler failure: eager gives the same function
                self._compile_fallback(e)
        return self.net(x, **inputs).float()


# model -> {key: PreparedNetwork}; weak in the model, so dropping a model frees its prepared forms.
_CACHE: weakref.WeakKeyDictionary[SRModel, dict[NetworkKey, PreparedNetwork]] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def prepare_network(
    model: SRModel,
    *,
    device: str = "cpu",
    dtype: str = "fp32",
    channels_last: bool = True,
    compile: bool = False,
    backend: str = "torch",
    deploy: bool = True,
) -> PreparedNetwork:
    """The `PreparedNetwork` of `model` for these settings, made once and cached (see the module docstring).

    Args are `Upscaler`'s. The given model is never modified, except in the one case where it runs as it is
    (fp32, nothing to fold or `deploy` False): then it is put in eval mode, moved to `device`, and its 4-D
    parameters converted to channels-last with `channels_last` (values unchanged).

    Raises:
        ConfigError: unknown dtype or backend, or a combination the backend does not run.
    """
    if backend not in get_args(Backend):
        raise ConfigError(f"unknown backend {backend!r}; choose {', '.join(get_args(Backend))}")
    dev = torch.device(device)
    if backend == "onnxruntime":
        if dtype not in ("auto", "fp32"):
            raise ConfigError(f"the onnxruntime backend runs fp32 only, not {dtype}")
        resolve_dtype(dtype, dev, model)  # validates the name
        if compile:
            raise ConfigError("compile applies to the torch backend only")
        if model.info.inputs:
            raise ConfigError(f"{model.info.name} takes extra inputs ({', '.join(model.info.inputs)}); the "
                              "onnxruntime backend runs single-input models only")
    from srkit.export.graph import needs_deploy

    # The ONNX export always folds what can be folded (`srkit.export.onnx`), whatever `deploy` says.
    deployed = needs_deploy(model) and (deploy or backend == "onnxruntime")
    resolved = "fp32" if backend == "onnxruntime" else resolve_dtype(dtype, dev, model)
    key = NetworkKey(cast(Backend, backend), str(dev), resolved, bool(channels_last and backend == "torch"),
                     bool(compile), deployed)
    if not deployed and resolved == "fp32" and backend == "torch":
        return _prepare(model, key, dev)
    stamp = _weights_stamp(model)
    with _CACHE_LOCK:
        per_model = _CACHE.setdefault(model, {})
        hit = per_model.get(key)
        if hit is None or hit.stamp != stamp:  # first use, or the weights changed since (e.g. load_state_dict)
            hit = per_model[key] = _prepare(model, key, dev)
            hit.stamp = stamp
    return hit


def _weights_stamp(model: SRModel) -> int:
    """Changes when any parameter or buffer of `model` is replaced or modified in place (tensor version
    counters), so a cached prepared form is never older than the weights."""
    return hash(tuple((t.data_ptr(), t._version) for t in (*model.parameters(), *model.buffers())))


def _prepare(model: SRModel, key: NetworkKey, dev: torch.device) -> PreparedNetwork:
    if key.backend == "onnxruntime":
        return PreparedNetwork(_ort_network(model, key.device), key, deployed=key.deploy)
    from srkit.export.graph import inference_form

    net = inference_form(model) if key.deploy else model.eval()
    if key.dtype != "fp32":
        lowp = _DTYPES[key.dtype]
        # Conv/linear weights stored in the compute dtype: autocast would otherwise re-cast every weight on
        # every call (~15 % of a bf16 CPU forward). Only the deployed copy is ours to convert in place.
        module = _fast_prelu(_cast_conv_weights(net.module, lowp, in_place=key.deploy))
        module.to(dev)
        if key.channels_last:
            module.to(memory_format=torch.channels_last)
        # Low precision for the network only: SRModel's colour conversion and MATLAB-bicubic chroma (Y-only
        # models) stay fp32, where bf16 would cost ~0.5 grey levels.
        net = SRModel(AutocastModule(module, dev.type, lowp), net.info).eval()
    else:
        if key.deploy:  # our own copy: its activations may be swapped for faster equivalents
            _fast_prelu(net.module)
        net.to(dev)
        if key.channels_last:
            net.to(memory_format=torch.channels_last)
    return PreparedNetwork(net, key, deployed=key.deploy)


def _ort_network(model: SRModel, device: str) -> SRModel:
    """An `SRModel` whose module is an onnxruntime session running the exported model on its own channels (Y
    for Y-only models, one channel for classical upsamplers; input range inside the graph), so that
    `SRModel.forward` does the colour/gray/channel handling exactly as for the torch backend."""
    import dataclasses

    from srkit.export.onnx import onnx_model_bytes
    from srkit.export.runtime import OrtModule, ort_session

    info = model.info
    channels = 1 if info.channel_agnostic else info.in_channels
    data, _ = onnx_model_bytes(model, channels=channels)
    module = OrtModule(ort_session(data, device))
    return SRModel(module, dataclasses.replace(info, input_range=1.0)).eval()
