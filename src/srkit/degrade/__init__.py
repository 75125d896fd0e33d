"""The degradation model ``I_LR = D(I_HR; theta) + n``: blur kernels, resize, noise, JPEG and seeded pipelines.

Pure tensor functions (``(B, C, H, W)`` float in [0, 1], CPU or CUDA) in the submodules, and
:class:`Degradation`, which runs a pipeline (a preset name from :data:`PRESETS` or a list of steps) with every
random choice drawn from an explicit ``torch.Generator`` and returns a record of each parameter.

Reference: X. Wang et al., "Real-ESRGAN", ICCVW 2021; K. Zhang et al., "BSRGAN", ICCV 2021.
"""

from srkit.degrade.jpeg import jpeg_differentiable, jpeg_libjpeg, quantization_tables
from srkit.degrade.kernels import (
    KERNEL_TYPES,
    BlurSettings,
    blur,
    gaussian_kernel,
    generalized_gaussian_kernel,
    kernel_from_record,
    plateau_kernel,
    sample_kernel,
    sample_sinc,
    sinc_kernel,
)
from srkit.degrade.noise import add_gaussian_noise, add_poisson_noise
from srkit.degrade.pipeline import (
    Degradation,
    DegradationCfg,
    degrade_image,
    describe,
    image_seed,
    parse_degradation,
)
from srkit.degrade.presets import PRESETS
from srkit.degrade.resize import RESIZE_MODES, resize
from srkit.degrade.sharpen import unsharp_mask

__all__ = [
    "KERNEL_TYPES",
    "PRESETS",
    "RESIZE_MODES",
    "BlurSettings",
    "Degradation",
    "DegradationCfg",
    "add_gaussian_noise",
    "add_poisson_noise",
    "blur",
    "degrade_image",
    "describe",
    "gaussian_kernel",
    "generalized_gaussian_kernel",
    "image_seed",
    "jpeg_differentiable",
    "jpeg_libjpeg",
    "kernel_from_record",
    "parse_degradation",
    "plateau_kernel",
    "quantization_tables",
    "resize",
    "sample_kernel",
    "sample_sinc",
    "sinc_kernel",
    "unsharp_mask",
]
