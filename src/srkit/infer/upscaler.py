"""`Upscaler`: a model prepared to run with fixed settings, shared by the CLI, the Python API, evaluation and the
service.

An Upscaler is its settings (device, dtype, tiling, backend, ...) plus the prepared network
(`srkit.infer.network.prepare_network`, cached per model and settings); every call goes through the one
inference path, `srkit.infer.engine`, and works on its own tensors, so one instance may be shared by threads.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import numpy as np
import torch

from srkit.errors import ConfigError
from srkit.infer import engine
from srkit.infer.engine import AlphaMode, Request, TileSetting, Tiling
from srkit.infer.network import (Backend, CompileSetting, DtypePolicy, compiling_now, cpu_has_fast_bf16,
                                 prepare_network, resolve_dtype)
from srkit.srmodel import SRModel

__all__ = ["Upscaler", "auto_tile_side", "cpu_has_fast_bf16", "resolve_dtype"]

auto_tile_side = engine.auto_tile_side


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
        compile: run the network compiled by `torch.compile` (Inductor, weights frozen into the graph; colour
            handling included), one graph per input shape (`srkit.infer.network.CompileSetting`). "auto" (the
            default): on the CPU, an image size compiles once it has spent 10 s in eager calls (a compilation
            takes 8-30 s on a small CPU), so single images never wait for the compiler and long runs on one
            size get the compiled speed; `warmup` compiles at once. True: each input shape compiles on its first
            call. False: never. The compiled network computes the same function up to float rounding. If
            compiling or running the compiled network fails, it stays on eager execution (with a warning for
            True).
        tta: the default of the x8 geometric self-ensemble for calls that do not say (8x the time; a small PSNR
            gain; equivariant, so tiling stays exact).
        batch: run up to this many same-shaped tiles in one call. Output equals unbatched up to float rounding.
        backend: "torch" or "onnxruntime" (an ONNX export of the deployed model with dynamic height and width;
            needs `onnxruntime`; the given model is not touched). fp32 only.
        deploy: fold re-parameterisable blocks and conv+BN pairs (`srkit.deployment.deploy`) when the model has
            any; the inference form computes the same function, much faster (ECBSR ~10x).

    The model: preparing it (folding, low-precision weights, layout) happens once per (model, settings) and is
    cached weakly by the model (`prepare_network`), so building another Upscaler for the same model is cheap.
    The given model is never deep-copied unless it has to be: in fp32 a model with nothing to deploy is used
    in place (eval mode, moved to `device`, 4-D parameters channels-last with `channels_last`; values
    unchanged). A deployed model is a copy; with bf16/fp16 the conv/linear weights are stored in that dtype in
    a copy. Either way the given model must not be modified while an Upscaler uses it.

    Thread safety: the settings are read-only and every call works on its own tensors, so threads may share one
    Upscaler (the prepared network's only mutable state is a compile-failure latch and a lock).
    """

    def __init__(
        self,
        model: SRModel,
        device: str = "cpu",
        dtype: DtypePolicy = "fp32",
        tile: TileSetting = None,
        overlap: int | None = None,
        channels_last: bool = True,
        compile: CompileSetting = "auto",
        tta: bool = False,
        batch: int = 1,
        backend: Backend = "torch",
        deploy: bool = True,
    ):
        if not isinstance(model, SRModel):
            raise ConfigError(f"Upscaler needs an SRModel (see srkit.load_model), got {type(model).__name__}")
        self._tiling = Tiling(tile=tile, overlap=overlap, batch=batch)
        self._tta = bool(tta)
        self._model = model
        try:
            self._device = torch.device(device)
        except (RuntimeError, TypeError, ValueError):
            raise ConfigError(f"unknown device {device!r}; use cpu, cuda, cuda:1, ...") from None
        self._network = prepare_network(model, device=str(self._device), dtype=dtype, channels_last=channels_last,
                                        compile=compile, backend=backend, deploy=deploy)

    # --- settings (read-only) ---------------------------------------------------------------------

    @property
    def model(self) -> SRModel:
        return self._model

    @property
    def device(self) -> torch.device:
        return self._device

    @property
    def tiling(self) -> Tiling:
        return self._tiling

    @property
    def tile(self) -> TileSetting:
        return self._tiling.tile

    @property
    def overlap(self) -> int | None:
        return self._tiling.overlap

    @property
    def batch(self) -> int:
        return self._tiling.batch

    @property
    def tta(self) -> bool:
        return self._tta

    @property
    def backend(self) -> Backend:
        return self._network.key.backend

    @property
    def scale(self) -> int:
        return self._model.info.scale

    @property
    def compute_dtype(self) -> str:
        return self._network.key.dtype

    @property
    def prepared(self) -> engine.PreparedNetwork:
        """The prepared network that runs (`srkit.infer.network.PreparedNetwork`)."""
        return self._network

    @property
    def network(self) -> SRModel:
        """The `SRModel` that runs: the deployed copy or the given model (in an `SRModel` around an
        `AutocastModule` for bf16/fp16); for onnxruntime an `SRModel` around an `OrtModule`."""
        return self._network.net

    def settings(self) -> dict:
        """What this Upscaler actually does: backend, compute dtype, deployed, channels_last, compiled (the compile
        setting in effect: True, "auto" or False; False where it does not apply or compiling failed; stable over
        the Upscaler's life except for such a failure), tta, batch."""
        key = self._network.key
        return {
            "backend": key.backend,
            "dtype": key.dtype,
            "deployed": self._network.deployed,
            "channels_last": key.channels_last,
            "compiled": self._network.compile_setting,
            "tta": self._tta,
            "batch": self._tiling.batch,
            "tile": self._tiling.tile,
        }

    def tile_side(self, x: torch.Tensor | None = None) -> int | None:
        """The LR tile core side used (None = whole image)."""
        return engine.tile_side(self)

    def request(self, *, alpha: AlphaMode = "bicubic", tta: bool | None = None,
                inputs: Mapping[str, float] | None = None, seed: int | None = None,
                progress: Callable[[float], None] | None = None) -> Request:
        """The `Request` for a call: `tta` None takes this Upscaler's default."""
        return Request.make(alpha=alpha, tta=self._tta if tta is None else tta, inputs=inputs, seed=seed,
                            progress=progress)

    # --- running ------------------------------------------------------------------------------------

    def upscale_tensor(self, x: torch.Tensor, *, tta: bool | None = None, inputs: Mapping[str, float] | None = None,
                       seed: int | None = None) -> torch.Tensor:
        """(B, C, H, W) float [0, 1] colour channels -> (B, C', sH, sW) float32 (not clipped), contiguous, on the
        input's device: `srkit.infer.engine.run_model`."""
        return engine.run_model(self, x, self.request(tta=tta, inputs=inputs, seed=seed))

    def upscale(self, image: np.ndarray, *, alpha: AlphaMode = "bicubic", tta: bool | None = None,
                inputs: Mapping[str, float] | None = None, seed: int | None = None) -> np.ndarray:
        """Upscale an (H, W) / (H, W, C<=4) image array; returns the same dtype and layout, scaled by `scale`
        (`srkit.infer.engine.run_array`: gray, alpha, transparent-colour fill, bit depth as `srkit.upscale`)."""
        return engine.run_array(self, image, self.request(alpha=alpha, tta=tta, inputs=inputs, seed=seed))

    def warmup(self, image: np.ndarray, *, alpha: AlphaMode = "bicubic", tta: bool | None = None) -> float:
        """Upscale `image` once, compiling the network now for every input shape that call uses (with compile
        "auto" or True; tiles, TTA and gray images may use several): later images of the same size, layout
        and options run compiled from their first call. For services and benchmarks, which would rather pay
        the compilation (seconds) up front than after `compile="auto"`'s 10 s of eager work. Returns the seconds
        it took; with compile False (or where compiling does not apply or failed) it is one eager upscale."""
        import time

        start = time.perf_counter()
        with compiling_now():
            self.upscale(image, alpha=alpha, tta=tta)
        return time.perf_counter() - start

    def upscale_clip(self, frames: np.ndarray, *, tta: bool | None = None, window: int | None = None,
                     context: int | None = None) -> np.ndarray:
        """Upscale a clip, a (T, H, W[, C]) array of frames (C = 1 or 3; uint8, uint16 or float in [0, 1]) ->
        (T, sH, sW[, C]) of the same dtype (`srkit.infer.clips.upscale_clip`): a multi-frame model sees it in
        windows of `window` frames (default `ModelInfo.frames`) with `context` frames on each side (default
        `ModelInfo.frame_context`); a single-image model upscales each frame on its own."""
        from srkit.infer.clips import upscale_clip

        return upscale_clip(self, frames, self.request(tta=tta), window=window, context=context)
