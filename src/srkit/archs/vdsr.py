"""VDSR: a 20-layer residual CNN on the bicubically upsampled Y channel.

Paper: J. Kim, J. K. Lee, K. M. Lee, "Accurate Image Super-Resolution Using Very Deep Convolutional
Networks", CVPR 2016. The authors released MATLAB/Caffe code (https://cv.snu.ac.kr/research/VDSR/); the
PyTorch weights in use come from twtygqyy/pytorch-vdsr (https://github.com/twtygqyy/pytorch-vdsr, MIT
licence), whose key names this module follows exactly: ``input.weight``, ``residual_layer.N.conv.weight``
(N = 0..17) and ``output.weight``; every convolution is 3x3 and bias-free.

The port's released model (``model/model_epoch_50.pth``) is one network for x2, x3 and x4 trained on
[0, 1] Y, srkit's convention. It is a pickled whole model: unpickle it with the port's code (or stubs of its
classes) and take ``["model"].state_dict()``.
"""

from __future__ import annotations

import torch
from torch import nn

from srkit.archs._spec import ArchFamily, ArchSpec
from srkit.archs.classic import preupsampling_receptive_field
from srkit.errors import ConfigError
from srkit.ops import imresize_matlab

__all__ = ["FAMILY", "VDSR", "VDSR_SPEC", "build_vdsr", "detect_vdsr"]


class _ConvReLU(nn.Module):
    """3x3 bias-free conv + ReLU; (B, C, H, W) -> (B, C, H, W). Its own module so the key is ``N.conv``."""

    def __init__(self, num_feat: int):
        super().__init__()
        self.conv = nn.Conv2d(num_feat, num_feat, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H, W), >= 0."""
        return self.relu(self.conv(x))


class VDSR(nn.Module):
    """VDSR: MATLAB bicubic upsampling, then `num_layers` 3x3 convs predicting the residual to add to it.

    Args:
        scale: upscaling factor (only the bicubic pre-upsampling depends on it).
        num_channels: image channels in and out (1: the Y channel, as in the paper).
        num_feat: feature maps of the hidden layers.
        num_layers: convolutions in all (the paper's depth d = 20): input, num_layers - 2 hidden, output.

    Shapes: (B, num_channels, H, W) in [0, 1] -> (B, num_channels, H*scale, W*scale), roughly [0, 1].
    """

    def __init__(self, scale: int = 3, num_channels: int = 1, num_feat: int = 64, num_layers: int = 20):
        super().__init__()
        if isinstance(scale, bool) or not isinstance(scale, int) or scale < 1:
            raise ConfigError(f"scale must be a positive integer, got {scale!r}")
        if num_layers < 2:
            raise ConfigError(f"VDSR needs at least 2 layers, got {num_layers}")
        self.scale = scale  # plain attribute: the factor this module was built for
        self.residual_layer = nn.Sequential(*(_ConvReLU(num_feat) for _ in range(num_layers - 2)))
        self.input = nn.Conv2d(num_channels, num_feat, 3, padding=1, bias=False)
        self.output = nn.Conv2d(num_feat, num_channels, 3, padding=1, bias=False)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, H, W) -> (B, C, H*scale, W*scale)."""
        up = imresize_matlab(x, float(self.scale))
        out = self.output(self.residual_layer(self.relu(self.input(up))))
        return out + up  # global residual learning: the net only predicts the high frequencies


def build_vdsr(scale: int = 4, *, num_channels: int = 1, num_feat: int = 64, num_layers: int = 20) -> VDSR:
    """VDSR (20 layers, 64 feature maps, Y channel); see `VDSR`."""
    return VDSR(scale, num_channels=num_channels, num_feat=num_feat, num_layers=num_layers)


def _vdsr_rf(options: dict) -> int:
    """VDSR receptive field for build options (plus ``scale``, default 4): one HR pixel per layer."""
    return preupsampling_receptive_field(int(options.get("scale", 4)), int(options.get("num_layers", 20)))


VDSR_SPEC = ArchSpec(
    build=build_vdsr,
    family="vdsr",
    paper="J. Kim, J. K. Lee, K. M. Lee, Accurate Image Super-Resolution Using Very Deep Convolutional Networks, "
          "CVPR 2016",
    repo="https://github.com/twtygqyy/pytorch-vdsr",
    license="MIT",
    scales=(2, 3, 4),
    in_channels=1,
    out_channels=1,
    color_space="y",
    size_multiple=1,
    receptive_field=_vdsr_rf,  # 20 HR pixels after the bicubic: 12 / 8 / 7 LR pixels at x2 / x3 / x4
    safe_dtypes=("fp32", "bf16", "fp16"),  # [0, 1] input, residual output of small magnitude
)


def detect_vdsr(state_dict: dict[str, torch.Tensor]) -> tuple[str, int | None, dict] | None:
    """Recognise a twtygqyy/pytorch-vdsr checkpoint.

    Returns ("vdsr", None, options) or None. The scale is None ("not inferable; the caller must give it"):
    the convolutions do not depend on it, and the port's released model serves x2, x3 and x4 alike.
    """
    keys = set(state_dict)
    if not {"input.weight", "output.weight"} <= keys:
        return None
    hidden = [k for k in keys if k.startswith("residual_layer.")]
    n = len(hidden)
    if keys != {"input.weight", "output.weight"} | {f"residual_layer.{i}.conv.weight" for i in range(n)}:
        return None
    w_in = state_dict["input.weight"]
    if w_in.ndim != 4:
        return None
    return "vdsr", None, {"num_channels": int(w_in.shape[1]), "num_feat": int(w_in.shape[0]),
                          "num_layers": n + 2}


FAMILY = ArchFamily(
    name="vdsr",
    specs={"vdsr": VDSR_SPEC},
    detect=detect_vdsr,
)
