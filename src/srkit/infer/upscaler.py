"""`Upscaler`: the one inference object shared by the CLI, the Python API, evaluation and the service.

It holds only configuration (model, device, dtype); every call works on its own tensors, so one instance may be
shared between threads.
"""

from __future__ import annotations

import threading
import warnings
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from srkit.errors import ConfigError, ShapeError
from srkit.models import SRModel

_DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def cpu_has_fast_bf16() -> bool:
    """True where the CPU runs bf16 matmuls/convolutions natively (AMX or AVX512-BF16)."""
    try:
        flags = open("/proc/cpuinfo").read()
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
        raise ConfigError(f"unknown dtype {policy!r}; choose auto, fp32, bf16 or fp16")
    return policy


def auto_tile_side(model: SRModel, device: torch.device) -> int:
    """LR tile side that keeps activations within a memory budget (1/4 of free memory, at most 4 GiB).

    Estimate: the widest layer's channels x 4 bytes x 8 live tensors per LR pixel, times scale^2 for the output
    end; rounded down to a multiple of 16 and clamped to [64, 2048].
    """
    from torch import nn

    width = max([m.out_channels for m in model.module.modules() if isinstance(m, nn.Conv2d)] + [64])
    if device.type == "cuda":
        free, _ = torch.cuda.mem_get_info(device)
    else:
        free = _available_ram()
    budget = min(free / 4, 4 * 1024**3)
    per_px = width * 4 * 8 + 4 * 3 * model.info.scale**2 * 4
    side = int((budget / per_px) ** 0.5) // 16 * 16
    return max(64, min(side, 2048))


def _available_ram() -> float:
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return float(line.split()[1]) * 1024
    except OSError:
        pass
    return 2.0 * 1024**3


_BACKENDS = ("torch", "onnxruntime")


_LOWP_LAYERS = (torch.nn.Conv1d, torch.nn.Conv2d, torch.nn.Conv3d, torch.nn.ConvTranspose2d, torch.nn.Linear)


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        with torch.autocast(device_type=self.device_type, dtype=self.dtype):
            y = self.module(x)
        return y.float()


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


@dataclass(frozen=True)
class Upscaler:
    """Runs an `SRModel` on images.

    Args:
        model: the model. See "The model" below for what the Upscaler does to it.
        device: "cpu", "cuda", "cuda:1", ...
        dtype: "auto" (bf16 autocast where the hardware is fast at it — CUDA, or a CPU with AMX/AVX512-BF16 — and
            the model lists bf16 in `ModelInfo.safe_dtypes`; fp32 otherwise), "fp32", "bf16" or "fp16"
            (autocast). The onnxruntime backend is fp32 only.
        tile: None (whole image), an int (LR tile core side), or "auto" (a side chosen from free memory).
            Models with a finite receptive field get tiles with that much context and cropped cores, so the
            result equals the whole-image result; others get tiles blended over `overlap` LR pixels.
        overlap: blend width for whole-image-receptive-field models (default tile // 8, at least 8).
        channels_last: run convolutions in channels-last memory format (oneDNN's and cuDNN's fast layout; no
            effect on the result beyond float rounding).
        compile: wrap the network in `torch.compile` (first calls per input shape are slow; worth it for many
            same-sized tiles). If compiling or running the compiled network fails, the Upscaler warns once and
            stays on eager execution.
        tta: x8 geometric self-ensemble: the model runs on the 8 rotations/flips of each tile and the outputs,
            turned back, are averaged (8x the time; a small PSNR gain). Equivariant, so tiling stays exact.
        batch: run up to this many same-shaped tiles in one call (interior tiles share a shape; edge tiles run
            in their own groups). Output equals unbatched up to float rounding.
        backend: "torch" or "onnxruntime" (an ONNX export of the deployed model, made once at construction,
            with dynamic height and width; needs `onnxruntime`; the given model is not touched). fp32 only;
            tiling, TTA and batching work the same way.
        deploy: fold re-parameterisable blocks and conv+BN pairs (`srkit.deployment.deploy`) at construction
            when the model has any; the inference form computes the same function, much faster (ECBSR ~10x).

    The model: the Upscaler never deep-copies a model it does not have to (models can be big). In fp32 a model
    with nothing to deploy is used in place: it is put in eval mode, moved to `device` and, with
    `channels_last`, its 4-D parameters are converted to channels-last memory format (values unchanged; it
    still works on any input layout). A model that gets deployed is copied by `deploy`, and the copy is what
    runs; the given model then stays as it was (not even moved). With a bf16/fp16 compute dtype the
    conv/linear weights are stored in that dtype: in the deployed copy, or else in a copy that holds them
    (half the model's fp32 size) next to the untouched given model. Either way the given model must not be
    modified while the Upscaler is in use.

    Thread safety: the object holds configuration and read-only state built at construction (the network or
    the onnxruntime sessions); every call works on its own tensors, so threads may share one Upscaler. The only
    shared mutable pieces are a one-way "compile failed" latch and a lock that serialises calls into the
    compiled network (`compile=True` only).
    """

    model: SRModel
    device: str = "cpu"
    dtype: str = "fp32"
    tile: int | str | None = None
    overlap: int | None = None
    channels_last: bool = True
    compile: bool = False
    tta: bool = False
    batch: int = 1
    backend: str = "torch"
    deploy: bool = True

    def __post_init__(self) -> None:
        if not (self.tile is None or self.tile == "auto" or (isinstance(self.tile, int) and self.tile >= 8)):
            raise ConfigError(f"tile must be None, 'auto' or an integer >= 8, got {self.tile!r}")
        if isinstance(self.batch, bool) or not isinstance(self.batch, int) or self.batch < 1:
            raise ConfigError(f"batch must be an integer >= 1, got {self.batch!r}")
        if self.backend not in _BACKENDS:
            raise ConfigError(f"unknown backend {self.backend!r}; choose torch or onnxruntime")
        dev = torch.device(self.device)
        set_ = lambda k, v: object.__setattr__(self, k, v)  # noqa: E731 - frozen dataclass: construction only
        set_("_device", dev)
        set_("_compile_failed", threading.Event())
        set_("_compile_lock", threading.Lock())
        set_("_compiled", None)
        from srkit.export.graph import inference_form, needs_deploy

        # The ONNX export always folds what can be folded (`srkit.export.onnx`), whatever `deploy` says.
        deployed = needs_deploy(self.model) and (self.deploy or self.backend == "onnxruntime")
        set_("_deployed", deployed)
        if self.backend == "onnxruntime":
            if self.dtype not in ("auto", "fp32"):
                raise ConfigError(f"the onnxruntime backend runs fp32 only, not {self.dtype}")
            resolve_dtype(self.dtype, dev, self.model)  # validates the name
            if self.compile:
                raise ConfigError("compile applies to the torch backend only")
            set_("_dtype", "fp32")
            set_("_net", self._ort_network())
            return
        set_("_dtype", resolve_dtype(self.dtype, dev, self.model))
        net = inference_form(self.model) if deployed else self.model.eval()
        if self._dtype != "fp32":
            lowp = _DTYPES[self._dtype]
            # Conv/linear weights stored in the compute dtype: autocast would otherwise re-cast every weight on
            # every call (~15 % of a bf16 CPU forward). Only the deployed copy is ours to convert in place.
            module = _fast_prelu(_cast_conv_weights(net.module, lowp, in_place=deployed))
            module.to(dev)
            if self.channels_last:
                module.to(memory_format=torch.channels_last)
            # Low precision for the network only: SRModel's colour conversion and MATLAB-bicubic chroma (Y-only
            # models) stay fp32, where bf16 would cost ~0.5 grey levels.
            net = SRModel(AutocastModule(module, dev.type, lowp), net.info).eval()
        else:
            if deployed:  # our own copy: its activations may be swapped for faster equivalents
                _fast_prelu(net.module)
            net.to(dev)
            if self.channels_last:
                net.to(memory_format=torch.channels_last)
        set_("_net", net)
        if self.compile:
            try:
                set_("_compiled", torch.compile(net))
            except Exception as e:  # noqa: BLE001 - e.g. no compiler toolchain on this platform
                self._compile_fallback(e)

    def _ort_network(self) -> SRModel:
        """An `SRModel` whose module is an onnxruntime session running the exported model on its own channels
        (Y for Y-only models, one channel for classical upsamplers; input range inside the graph), so that
        `SRModel.forward` does the colour/gray/channel handling exactly as for the torch backend."""
        import dataclasses

        from srkit.export.onnx import onnx_model_bytes, ort_session

        info = self.model.info
        channels = 1 if info.channel_agnostic else info.in_channels
        data, _ = onnx_model_bytes(self.model, channels=channels)
        module = OrtModule(ort_session(data, self.device))
        return SRModel(module, dataclasses.replace(info, input_range=1.0)).eval()

    def _compile_fallback(self, e: BaseException) -> None:
        if not self._compile_failed.is_set():  # type: ignore[attr-defined]
            self._compile_failed.set()  # type: ignore[attr-defined]
            msg = str(e).strip().splitlines()[0][:200] if str(e).strip() else type(e).__name__
            warnings.warn(f"torch.compile failed ({msg}); running eagerly", RuntimeWarning, stacklevel=4)

    @property
    def scale(self) -> int:
        return self.model.info.scale

    @property
    def compute_dtype(self) -> str:
        return self._dtype  # type: ignore[attr-defined]

    @property
    def network(self) -> SRModel:
        """The network that runs: the deployed copy or the given model (in an `SRModel` around an
        `AutocastModule` for bf16/fp16); for onnxruntime an `SRModel` around an `OrtModule`."""
        return self._net  # type: ignore[attr-defined]

    def settings(self) -> dict:
        """What this Upscaler actually does: backend, compute dtype, deployed, channels_last, compiled, tta, batch."""
        return {
            "backend": self.backend,
            "dtype": self.compute_dtype,
            "deployed": self._deployed,  # type: ignore[attr-defined]
            "channels_last": bool(self.channels_last and self.backend == "torch"),
            "compiled": self._compiled is not None and not self._compile_failed.is_set(),  # type: ignore[attr-defined]
            "tta": bool(self.tta),
            "batch": self.batch,
            "tile": self.tile,
        }

    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        """The network on a (B, C, h, w) fp32 input whose size fits the size multiple -> (B, C', sh, sw) fp32."""
        if self.backend == "onnxruntime":
            return self._net(x)  # type: ignore[attr-defined]
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        compiled = self._compiled  # type: ignore[attr-defined]
        if compiled is not None and not self._compile_failed.is_set():  # type: ignore[attr-defined]
            try:
                # Dynamo's caches are not meant for concurrent (re)compilation: one caller at a time.
                with self._compile_lock:  # type: ignore[attr-defined]
                    return compiled(x).float()
            except torch.OutOfMemoryError:
                raise
            except Exception as e:  # noqa: BLE001 - any compiler failure: eager gives the same function
                self._compile_fallback(e)
        return self._net(x).float()  # type: ignore[attr-defined]

    def _run_padded(self, x: torch.Tensor) -> torch.Tensor:
        """Model on one (B, C, h, w) region: reflect-pad to the size multiple, run, crop to (h, w) x scale."""
        info = self.model.info
        h, w = x.shape[-2:]
        m = info.size_multiple
        ph, pw = (-h) % m, (-w) % m
        if ph or pw:
            mode = "reflect" if ph < h and pw < w else "replicate"
            x = F.pad(x, (0, pw, 0, ph), mode=mode)
        y = self._forward(x)
        return y[..., : h * info.scale, : w * info.scale]

    def _run_tile(self, x: torch.Tensor) -> torch.Tensor:
        """`_run_padded`, or with `tta` the mean of the model over the 8 dihedral transforms of `x`, each
        transformed back (rotations/flips commute with a translation-equivariant model's tiling)."""
        if not self.tta:
            return self._run_padded(x)
        from srkit.data.patches import dihedral, dihedral_inverse

        acc = None
        for k in range(8):
            y = dihedral_inverse(self._run_padded(dihedral(x, k)), k)
            acc = y if acc is None else acc.add_(y)
        assert acc is not None
        return acc.div_(8.0)

    def tile_side(self, x: torch.Tensor) -> int | None:
        """The LR tile core side used for input `x` (None = whole image)."""
        if self.tile is None:
            return None
        if self.tile == "auto":
            return auto_tile_side(self.model, self._device)  # type: ignore[attr-defined]
        return int(self.tile)

    @torch.inference_mode()
    def upscale_tensor(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) float [0, 1] -> (B, C, sH, sW) float32 (not clipped), contiguous, on the input's device.

        Tiled when `tile` is set and the image is larger than a tile; on out-of-memory batching is switched off
        first, then the tile side is halved and the image retried (down to 32 px)."""
        if x.ndim != 4 or not x.is_floating_point():
            raise ShapeError(f"upscale_tensor expects a float (B, C, H, W) tensor, got {tuple(x.shape)} {x.dtype}")
        xin = x.to(self._device, torch.float32)  # type: ignore[attr-defined]
        side = self.tile_side(xin)
        batch = self.batch
        while True:
            try:
                return self._upscale_tiled(xin, side, batch).to(x.device).contiguous()
            except torch.OutOfMemoryError:
                if batch > 1:
                    batch = 1
                else:
                    h, w = xin.shape[-2:]
                    side = max(h, w) // 2 if side is None else side // 2
                    if side < 32:
                        raise
                if self._device.type == "cuda":  # type: ignore[attr-defined]
                    torch.cuda.empty_cache()

    def _upscale_tiled(self, x: torch.Tensor, side: int | None, batch: int = 1) -> torch.Tensor:
        from srkit.infer.tiling import run_tiled_blend, run_tiled_exact

        h, w = x.shape[-2:]
        info = self.model.info
        if side is None or (h <= side and w <= side):
            return self._run_tile(x)
        if info.receptive_field is not None:
            return run_tiled_exact(self._run_tile, x, info.scale, side, info.receptive_field, batch)
        overlap = self.overlap if self.overlap is not None else max(8, side // 8)
        return run_tiled_blend(self._run_tile, x, info.scale, side, min(overlap, side // 2), batch)

    @torch.inference_mode()
    def upscale(self, image: np.ndarray) -> np.ndarray:
        """Upscale an (H, W) / (H, W, C) image array; returns the same dtype and layout, scaled by `scale`.

        uint8 / uint16 inputs are converted to [0, 1] float, upscaled, rounded and clipped back; float inputs
        are expected in [0, 1] and come back clipped to [0, 1] as float32. A 4th (or 2nd of 2) channel is alpha
        and is upscaled with MATLAB bicubic, separately from the colour.
        """
        arr = np.asarray(image)
        if arr.ndim not in (2, 3) or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4)):
            raise ShapeError(f"expected an (H, W) or (H, W, C<=4) image, got shape {arr.shape}")
        if arr.dtype == np.uint8:
            peak = 255.0
        elif arr.dtype == np.uint16:
            peak = 65535.0
        elif np.issubdtype(arr.dtype, np.floating):
            peak = 1.0
        else:
            raise ShapeError(f"unsupported image dtype {arr.dtype}")
        x = arr.astype(np.float32) / peak
        squeeze = x.ndim == 2
        if squeeze:
            x = x[..., None]
        alpha = None
        if x.shape[2] in (2, 4):
            x, alpha = x[..., :-1], x[..., -1:]
        t = torch.from_numpy(np.ascontiguousarray(x.transpose(2, 0, 1)))[None]
        y = self.upscale_tensor(t)[0]
        if alpha is not None:
            from srkit.ops import imresize_matlab

            a = imresize_matlab(torch.from_numpy(np.ascontiguousarray(alpha[..., 0])), float(self.scale))
            y = torch.cat([y, a[None]], dim=0)
        out = y.clamp_(0, 1).permute(1, 2, 0).numpy()
        if squeeze:
            out = out[..., 0]
        if peak == 1.0:
            return out.astype(np.float32)
        return np.rint(out * peak).astype(arr.dtype)
