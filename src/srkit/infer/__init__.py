"""Inference: the stateless `Upscaler`."""

from srkit.infer.upscaler import Upscaler, cpu_has_fast_bf16

__all__ = ["Upscaler", "cpu_has_fast_bf16"]
