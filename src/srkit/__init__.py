"""srkit: image super-resolution toolkit.

Importing srkit is cheap: heavy submodules (torch models, CLI) are imported on first use.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

__version__ = "0.1.0"

# Public name -> module that defines it; resolved lazily so `import srkit` stays fast.
_LAZY = {
    "read_image": "srkit.io",
    "write_image": "srkit.io",
    "ImageMeta": "srkit.io",
    "imresize_matlab": "srkit.ops",
    "rgb_to_ycbcr": "srkit.ops",
    "ycbcr_to_rgb": "srkit.ops",
    "psnr": "srkit.metrics",
    "ssim": "srkit.metrics",
    "load_model": "srkit.models",
    "SRModel": "srkit.models",
    "ModelInfo": "srkit.models",
    "evaluate": "srkit.evaluate",
    "deploy": "srkit.deployment",
    "save_model": "srkit.models",
    "Upscaler": "srkit.infer",
    "upscale": "srkit.infer.api",
    "upscale_file": "srkit.infer.files",
    "load_upscaler": "srkit.infer.api",
    "interpolate": "srkit.interpolation",
}

__all__ = ["__version__", *_LAZY]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'srkit' has no attribute {name!r}")
    value = getattr(import_module(module), name)
    globals()[name] = value
    return value
