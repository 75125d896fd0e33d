"""The network as it runs: an `SRModel` prepared once per (model, backend, device, dtype, layout) and cached.

Preparing a model is the expensive part of making an `Upscaler`: folding re-parameterisable blocks (a deep
copy), storing conv weights in bf16/fp16, swapping PReLU for a faster equal form, converting to channels-last,
or exporting to ONNX for onnxruntime. `prepare_network` does it once and keeps the result in a cache keyed
weakly by the model, so `srkit.upscale(image, model=m)` in a loop and one reused `Upscaler` cost the same, and a
model that the caller drops is freed with its prepared forms. (A prepared network that *is* the given model —
fp32 with nothing to fold — is not cached: it costs nothing to make, and caching it would keep the model alive.)
"""

from __future__ import annotations

import logging
import threading
import time
import warnings
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Literal, cast, get_args

import torch

from srkit.errors import ConfigError
from srkit.srmodel import SRModel

__all__ = [
    "AutocastModule",
    "Backend",
    "CompileSetting",
    "DtypePolicy",
    "MaxFormPReLU",
    "NetworkKey",
    "PreparedNetwork",
    "compiling_now",
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
    compile: CompileSetting  # resolved: "auto" only where it applies (CPU, torch backend), else False
    deploy: bool


#: When a prepared network runs compiled (`torch.compile`: Inductor with the weights frozen into the graph, so
#: that oneDNN gets prepacked weights and the activations, residual, pixel shuffle and colour handling around
#: the convolutions become a few fused loops), per input shape: False never; True from each shape's first call
#: (which compiles it); "auto" once a shape has spent `AUTO_COMPILE_AFTER_S` seconds in eager calls, so a
#: one-off image never waits for the compiler while a long run on one size gets the compiled speed.
CompileSetting = bool | Literal["auto"]

#: Eager seconds on one input shape after which compile="auto" compiles the network for that shape: about what
#: one compilation costs on a small CPU (8-30 s on 2 cores), so a run never pays much more than the better of
#: "never compile" and "compile at once" in hindsight.
AUTO_COMPILE_AFTER_S = 10.0
#: Input shapes compiled per prepared network at most (each is seconds of compilation and a frozen copy of the
#: weights); calls of other shapes run eagerly.
MAX_COMPILED_SHAPES = 6
# Dynamo's state (its stance, its configuration, the code caches of `SRModel.forward`) is global to the
# process: every compilation and every call into compiled code holds this lock. A call that finds it taken
# runs eagerly instead of waiting, except one that has to compile (compile=True, `warmup`).
_DYNAMO_LOCK = threading.Lock()
# True inside `compiling_now()`: calls compile the shapes they meet at once (compile "auto" or True).
_COMPILE_NOW: ContextVar[bool] = ContextVar("srkit_compile_now", default=False)
_log = logging.getLogger(__name__)


@contextmanager
def compiling_now() -> Iterator[None]:
    """Inside the block, every prepared network whose compile setting is True or "auto" compiles the input
    shapes it is called with at once (up to `MAX_COMPILED_SHAPES`), instead of after `AUTO_COMPILE_AFTER_S`
    seconds of eager calls: the warm-up of a service or a benchmark (`Upscaler.warmup`)."""
    token = _COMPILE_NOW.set(True)
    try:
        yield
    finally:
        _COMPILE_NOW.reset(token)


def _signature(x: torch.Tensor, inputs: dict) -> tuple:
    """What a compiled graph is specialised on: the input's shape, strides, dtype and device, and the extra
    inputs (tensors by shape and dtype, numbers by value)."""
    extra = tuple(sorted((k, (tuple(v.shape), v.dtype) if isinstance(v, torch.Tensor) else v)
                         for k, v in inputs.items()))
    return tuple(x.shape), x.stride(), x.dtype, x.device, extra


@contextmanager
def _compile_settings() -> Iterator[None]:
    """Dynamo and Inductor settings of a compilation. Freezing is read while Dynamo traces (before the
    `options` of `torch.compile` reach Inductor), so it is set here, globally, for the compilation only."""
    import torch._dynamo.config as dynamo_config
    import torch._inductor.config as inductor_config

    with inductor_config.patch(freezing=True), \
            dynamo_config.patch(recompile_limit=max(64, dynamo_config.recompile_limit)):
        yield


class PreparedNetwork:
    """A network ready to run: call it on a (B, C, h, w) float32 input whose size fits the model's size multiple
    (plus the model's extra inputs as keywords) -> (B, C', sh, sw) float32.

    Attributes (read-only after construction): `net` (the `SRModel` that runs: the deployed copy or the given
    model, wrapped in an `AutocastModule` for bf16/fp16, or around an `OrtModule`), `key`, `deployed`.
    With `key.compile` set, the whole `net` (colour conversion and bicubic chroma of Y-channel models included)
    is also compiled per input shape (see `CompileSetting`); a compiled shape computes what `net` computes, up to
    float rounding. Mutable state: the set of compiled shapes, the eager seconds per shape ("auto"), and a
    one-way "compile failed" latch after which everything runs eagerly. Any number of threads may call one
    PreparedNetwork; compiled code runs one call at a time in the process (`_DYNAMO_LOCK`), the others eagerly.
    """

    def __init__(self, net: SRModel, key: NetworkKey, *, deployed: bool):
        self.net = net
        self.key = key
        self.deployed = deployed
        self._compile_failed = threading.Event()
        self._compiled_net: Callable[..., torch.Tensor] | None = None  # torch.compile(net), made on first need
        self._shapes: set[tuple] = set()  # `_signature`s compiled
        self._eager_seconds: dict[tuple, float] = {}  # "auto": eager time per signature
        self.stamp = 0  # `_weights_stamp` of the model when this was prepared (set by `prepare_network`)
        if key.compile is True:
            try:
                self._compiled_form()
            except Exception as e:  # noqa: BLE001 - e.g. no compiler toolchain on this platform
                self._compile_fallback(e)

    @property
    def compiled(self) -> bool:
        """True when calls run compiled: some input shape is compiled (or, with compile=True, each will be from
        its first call); False without compile, before "auto" has compiled a shape, or after compiling failed."""
        if not self.key.compile or self._compile_failed.is_set():
            return False
        return bool(self._shapes) or (self.key.compile is True and self._compiled_net is not None)

    @property
    def compile_setting(self) -> CompileSetting:
        """The compile setting in effect: `key.compile`, or False once compiling has failed."""
        return False if self._compile_failed.is_set() else self.key.compile

    @property
    def compiled_shapes(self) -> int:
        """How many input shapes run compiled."""
        return 0 if self._compile_failed.is_set() else len(self._shapes)

    def _compiled_form(self) -> Callable[..., torch.Tensor]:
        if self._compiled_net is None:
            # dynamic=False: one graph per input shape, specialised (a dynamic-shape graph cannot prepack the
            # weights, and mis-predicts the layout of a 1-channel convolution's output under freezing).
            self._compiled_net = torch.compile(self.net, dynamic=False)
        return self._compiled_net

    def _compile_fallback(self, e: BaseException) -> None:
        if not self._compile_failed.is_set():
            self._compile_failed.set()
            msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            if self.key.compile is True:
                warnings.warn(f"torch.compile failed ({msg}); running eagerly", RuntimeWarning, stacklevel=4)
            else:  # "auto": the caller did not ask for it; eager is the same function
                _log.info("torch.compile failed (%s); %s runs eagerly", msg, self.net.info.name)

    def _wants_compile(self, sig: tuple) -> bool:
        if len(self._shapes) >= MAX_COMPILED_SHAPES:
            return False
        if self.key.compile is True or _COMPILE_NOW.get():
            return True
        return self._eager_seconds.get(sig, 0.0) >= AUTO_COMPILE_AFTER_S

    def _run_compiled(self, x: torch.Tensor, inputs: dict, sig: tuple) -> torch.Tensor | None:
        """The compiled network on `x` (compiling `sig` first when it is due), or None: run eagerly."""
        ready = sig in self._shapes
        if not ready and not self._wants_compile(sig):
            return None
        # A compiled call never waits for the lock; a compilation does, except one that "auto" decided on.
        if not _DYNAMO_LOCK.acquire(blocking=not ready and (self.key.compile is True or _COMPILE_NOW.get())):
            return None
        try:
            if self._compile_failed.is_set():
                return None
            if sig in self._shapes:
                # Compiled code only: a call whose guards fail (another grad mode, say) runs eagerly rather
                # than recompiling without the freezing settings.
                with torch.compiler.set_stance("eager_on_recompile"):
                    return self._compiled_form()(x, **inputs).float()
            with _compile_settings():
                y = self._compiled_form()(x, **inputs).float()
            self._shapes.add(sig)
            return y
        except torch.OutOfMemoryError:
            raise
        except Exception as e:  # noqa: BLE001 - any compiler failure: eager gives the same function
            self._compile_fallback(e)
            return None
        finally:
            _DYNAMO_LOCK.release()

    def __call__(self, x: torch.Tensor, **inputs: torch.Tensor | float) -> torch.Tensor:
        if self.key.backend == "onnxruntime":
            return self.net(x, **inputs)
        if self.key.channels_last and x.ndim == 4:  # (a multi-frame model's 5-D clips: per frame, inside it)
            x = x.contiguous(memory_format=torch.channels_last)
        if not self.key.compile or self._compile_failed.is_set():
            return self.net(x, **inputs).float()
        sig = _signature(x, inputs)
        y = self._run_compiled(x, inputs, sig)
        if y is not None:
            return y
        start = time.perf_counter()
        y = self.net(x, **inputs).float()
        if self.key.compile == "auto":  # (a lost update between threads only delays the compilation)
            self._eager_seconds[sig] = self._eager_seconds.get(sig, 0.0) + time.perf_counter() - start
        return y


# model -> {key: PreparedNetwork}; weak in the model, so dropping a model frees its prepared forms.
_CACHE: weakref.WeakKeyDictionary[SRModel, dict[NetworkKey, PreparedNetwork]] = weakref.WeakKeyDictionary()
_CACHE_LOCK = threading.Lock()


def prepare_network(
    model: SRModel,
    *,
    device: str = "cpu",
    dtype: str = "fp32",
    channels_last: bool = True,
    compile: CompileSetting = False,
    backend: str = "torch",
    deploy: bool = True,
) -> PreparedNetwork:
    """The `PreparedNetwork` of `model` for these settings, made once and cached (see the module docstring).

    Args are `Upscaler`'s. The given model is never modified, except in the one case where it runs as it is
    (fp32, nothing to fold or `deploy` False): then it is put in eval mode, moved to `device`, and its 4-D
    parameters converted to channels-last with `channels_last` (values unchanged).

    compile="auto" applies where it pays and is safe: the torch backend on the CPU, a network that is the
    Upscaler's own copy (deployed or low-precision: a model that runs as given may be changed by its owner,
    which frozen weights would not follow), single-image models without extra inputs or noise. Elsewhere it
    means False.

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
        if compile is True:
            raise ConfigError("compile applies to the torch backend only")
        if model.info.inputs:
            raise ConfigError(f"{model.info.name} takes extra inputs ({', '.join(model.info.inputs)}); the "
                              "onnxruntime backend runs single-input models only")
        if model.info.multi_frame:
            raise ConfigError(f"{model.info.name} is a multi-frame model; the onnxruntime backend runs "
                              "single-image models only")
    from srkit.export.graph import needs_deploy

    # The ONNX export always folds what can be folded (`srkit.export.onnx`), whatever `deploy` says.
    deployed = needs_deploy(model) and (deploy or backend == "onnxruntime")
    resolved = "fp32" if backend == "onnxruntime" else resolve_dtype(dtype, dev, model)
    key = NetworkKey(cast(Backend, backend), str(dev), resolved, bool(channels_last and backend == "torch"),
                     _resolve_compile(compile, model, dev, backend, own_copy=deployed or resolved != "fp32"),
                     deployed)
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


def _resolve_compile(compile: object, model: SRModel, dev: torch.device, backend: str, *,
                     own_copy: bool) -> CompileSetting:
    if compile is not True and compile is not False and compile != "auto":
        raise ConfigError(f"compile must be True, False or 'auto', got {compile!r}")
    if backend != "torch":
        return False
    if compile == "auto":
        info = model.info
        applies = (dev.type == "cpu" and own_copy and not info.channel_agnostic and not info.inputs
                   and not info.noise_channels and not getattr(info, "multi_frame", False))
        return "auto" if applies else False
    return bool(compile)


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
