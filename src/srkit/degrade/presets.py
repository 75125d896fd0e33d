"""Named degradation pipelines, written out as data (the same dicts a YAML config would hold).

- ``bicubic``: the classical benchmark degradation, MATLAB ``imresize(HR, 1/s, 'bicubic')``.
- ``bsrgan``: BSRGAN-style shuffled degradations (Zhang et al., ICCV 2021): two Gaussian blurs, a random
  downscale, Gaussian noise and JPEG in a random order, then the resize to the LR size and a last JPEG.
  Not modelled: BSRGAN's camera-ISP noise and its "down-up" nearest resize.
- ``realesrgan``: Real-ESRGAN's second-order model (Wang et al., ICCVW 2021, with the parameters of its
  released training options): blur -> random resize -> noise -> JPEG, twice (the second blur with
  probability 0.8), then [resize to the LR size + sinc filter] and JPEG in a random order.
- ``camera``: a chain of srkit's own that no shipped model is trained on, for testing generalisation: a mild
  isotropic lens blur, area downscale to the LR size, shot noise plus weaker read noise, in-camera unsharp
  masking and a high-quality JPEG. It stands for a phone photo more than for a web image.
- ``controllable``: a single-stage model whose levels are well defined, for conditioned models (``real-x4-ctrl``,
  which are told each sample's noise sigma and JPEG quality): a quarter of the samples are clean, MATLAB bicubic
  only (sigma 0, quality 100); the others get a mild blur (half of them), a downscale to the LR size, Gaussian or
  Poisson noise of level sigma in [1, 50] (8-bit units; Poisson drawn by its std at mid-gray; 15 % without noise,
  sigma 0) and one JPEG pass of quality in [10, 95] (15 % without, quality 100). The record of every sample gives
  its (sigma, quality) (:func:`srkit.degrade.pipeline.record_levels`): sigma is the standard deviation of the
  noise the sample actually got, recorded when it is applied.
- ``video``: one frame of a video camera, for multi-frame SR on synthetic clips (:mod:`srkit.data.clips` degrades
  every frame on its own with it): a Gaussian lens blur of sigma 0.6-1.6 HR px, a downscale to the LR size by area
  averaging or by bilinear / bicubic interpolation without antialiasing (so the frames keep the aliasing that
  several sub-pixel-shifted frames can resolve), mild Gaussian noise of sigma 1-5 (70 %) and a light JPEG of
  quality 70-95 (50 %). Moderate on purpose: the task is to gather detail across frames, not mainly to denoise.
"""

from __future__ import annotations

from typing import Any

__all__ = ["PRESETS"]

_ALL_MODES = {"area": 1.0, "bilinear": 1.0, "bicubic": 1.0}

PRESETS: dict[str, dict[str, Any]] = {
    "bicubic": {
        "steps": [{"op": "to_target", "modes": {"matlab": 1.0}}],
    },
    "bsrgan": {
        "steps": [
            {
                "op": "shuffle",
                "steps": [
                    {"op": "blur", "kernel_probs": {"iso": 0.5, "aniso": 0.5}, "sigma": [0.1, 2.8],
                     "kernel_sizes": [7, 9, 11, 13, 15, 17, 19, 21], "sinc_prob": 0.0},
                    {"op": "blur", "kernel_probs": {"iso": 0.5, "aniso": 0.5}, "sigma": [0.1, 2.8],
                     "kernel_sizes": [7, 9, 11, 13, 15, 17, 19, 21], "sinc_prob": 0.0},
                    {"op": "resize", "prob": 0.75, "up_down_keep": [0.0, 1.0, 0.0], "down": [0.5, 1.0],
                     "modes": _ALL_MODES},
                    {"op": "noise", "gaussian_prob": 1.0, "sigma": [2.0, 25.0], "gray_prob": 0.3},
                    {"op": "jpeg", "prob": 0.9, "quality": [30, 95]},
                ],
            },
            {"op": "to_target", "modes": _ALL_MODES},
            {"op": "jpeg", "quality": [30, 95]},
        ],
    },
    "realesrgan": {
        "steps": [
            # first order
            {"op": "blur", "sigma": [0.2, 3.0], "sinc_prob": 0.1},
            {"op": "resize", "up_down_keep": [0.2, 0.7, 0.1], "up": [1.0, 1.5], "down": [0.15, 1.0]},
            {"op": "noise", "gaussian_prob": 0.5, "sigma": [1.0, 30.0], "poisson_scale": [0.05, 3.0],
             "gray_prob": 0.4},
            {"op": "jpeg", "quality": [30, 95]},
            # second order
            {"op": "blur", "prob": 0.8, "sigma": [0.2, 1.5], "sinc_prob": 0.1},
            {"op": "resize", "up_down_keep": [0.3, 0.4, 0.3], "up": [1.0, 1.2], "down": [0.3, 1.0],
             "relative_to": "target"},
            {"op": "noise", "gaussian_prob": 0.5, "sigma": [1.0, 25.0], "poisson_scale": [0.05, 2.5],
             "gray_prob": 0.4},
            {
                "op": "shuffle",
                "steps": [
                    {"op": "sequence", "steps": [{"op": "to_target", "modes": _ALL_MODES},
                                                 {"op": "sinc", "prob": 0.8}]},
                    {"op": "jpeg", "quality": [30, 95]},
                ],
            },
        ],
    },
    "controllable": {
        "steps": [
            {
                "op": "choice",
                "weights": [0.25, 0.75],
                "steps": [
                    {"op": "to_target", "modes": {"matlab": 1.0}},
                    {
                        "op": "sequence",
                        "steps": [
                            {"op": "blur", "prob": 0.5, "kernel_probs": {"iso": 0.7, "aniso": 0.3},
                             "sigma": [0.2, 1.5], "kernel_sizes": [7, 9, 11, 13], "sinc_prob": 0.0},
                            {"op": "to_target", "modes": {"area": 1.0, "bilinear": 1.0, "bicubic": 1.0,
                                                          "matlab": 1.0}},
                            {"op": "noise", "prob": 0.85, "gaussian_prob": 0.5, "sigma": [1.0, 50.0],
                             "poisson_sigma": [1.0, 50.0], "gray_prob": 0.4},
                            {"op": "jpeg", "prob": 0.85, "quality": [10, 95]},
                        ],
                    },
                ],
            },
        ],
    },
    "video": {
        "steps": [
            {"op": "blur", "kernel_probs": {"iso": 1.0}, "sigma": [0.6, 1.6], "kernel_sizes": [9, 11],
             "sinc_prob": 0.0},
            {"op": "to_target", "modes": {"area": 1.0, "bilinear": 1.0, "bicubic": 1.0}},
            {"op": "noise", "prob": 0.7, "gaussian_prob": 1.0, "sigma": [1.0, 5.0], "gray_prob": 0.3},
            {"op": "jpeg", "prob": 0.5, "quality": [70, 95]},
        ],
    },
    "camera": {
        "steps": [
            {"op": "blur", "kernel_probs": {"iso": 1.0}, "sigma": [0.6, 1.4], "kernel_sizes": [9, 11, 13],
             "sinc_prob": 0.0},
            {"op": "to_target", "modes": {"area": 1.0}},
            {"op": "noise", "gaussian_prob": 0.0, "poisson_scale": [0.25, 1.0], "gray_prob": 0.0},
            {"op": "noise", "gaussian_prob": 1.0, "sigma": [1.0, 4.0], "gray_prob": 1.0},
            {"op": "sharpen", "weight": [0.5, 1.2], "sigma": [0.8, 1.5]},
            {"op": "jpeg", "quality": [75, 92]},
        ],
    },
}
