"""VGG19 perceptual loss: L1 between ImageNet-VGG19 feature maps of ``sr`` and ``hr``.

The network is torchvision's ``vgg19().features`` layout, written out here (so torchvision is not needed): an
``nn.Sequential`` whose index ``N`` is the same module as in torchvision, so a torchvision state dict
(``features.N.weight`` / ``features.N.bias``) loads as is. It is truncated after the last layer a loss needs.

Weights are never downloaded: they come from a file named in the config, or from the file torchvision itself
caches, ``torch.hub.get_dir()/checkpoints/vgg19-dcbb9e9d.pth``; a missing file is a one-line ConfigError saying
where to put it. ``weights="random"`` builds a seeded random network (tests, smoke runs).

Reference: J. Johnson, A. Alahi, L. Fei-Fei, "Perceptual Losses for Real-Time Style Transfer and
Super-Resolution", ECCV 2016; features before the activation as in X. Wang et al., "ESRGAN: Enhanced
Super-Resolution Generative Adversarial Networks", ECCV Workshops 2018; VGG19 from K. Simonyan, A. Zisserman,
"Very Deep Convolutional Networks for Large-Scale Image Recognition", ICLR 2015.
"""

from __future__ import annotations

import math
import pickle
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
from torch import nn

from srkit.errors import ConfigError, ShapeError
from srkit.losses.pixel import check_pair

__all__ = [
    "DEFAULT_LAYER_WEIGHTS",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "VGG19_CONV_LAYERS",
    "VGG19_FILE",
    "PerceptualLoss",
    "build_vgg19_features",
    "default_vgg19_path",
    "perceptual_loss",
    "vgg19_features",
]

# Output channels of the convolutions of each VGG19 block; a 2x2 max-pool closes every block.
_BLOCKS: tuple[tuple[int, ...], ...] = ((64, 64), (128, 128), (256,) * 4, (512,) * 4, (512,) * 4)


def _layout() -> dict[str, tuple[int, int, int]]:
    """conv name -> (index in torchvision's ``vgg19().features``, in channels, out channels)."""
    out: dict[str, tuple[int, int, int]] = {}
    index, cin = 0, 3
    for b, block in enumerate(_BLOCKS, start=1):
        for c, cout in enumerate(block, start=1):
            out[f"conv{b}_{c}"] = (index, cin, cout)
            index, cin = index + 2, cout  # conv, ReLU
        index += 1  # max-pool
    return out


_LAYOUT = _layout()
VGG19_CONV_LAYERS: tuple[str, ...] = tuple(_LAYOUT)  # conv1_1 ... conv5_4, in network order
VGG19_FILE = "vgg19-dcbb9e9d.pth"  # torchvision's IMAGENET1K_V1 weights, as its hub cache names them
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
# ESRGAN / Real-ESRGAN: features before ReLU, these layers and weights.
DEFAULT_LAYER_WEIGHTS: dict[str, float] = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0,
                                           "conv5_4": 1.0}


def default_vgg19_path() -> Path:
    """``torch.hub.get_dir()/checkpoints/vgg19-dcbb9e9d.pth``: where torchvision caches the VGG19 weights."""
    return Path(torch.hub.get_dir()) / "checkpoints" / VGG19_FILE


def _capture_index(name: str, before_relu: bool) -> int:
    if name not in _LAYOUT:
        raise ConfigError(f"unknown VGG19 layer {name!r} (known: {', '.join(VGG19_CONV_LAYERS)})")
    return _LAYOUT[name][0] + (0 if before_relu else 1)


def _read_state(path: Path) -> dict[str, torch.Tensor]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except (OSError, RuntimeError, ValueError, EOFError, pickle.UnpicklingError) as e:  # zip / pickle / format errors
        first = (str(e).strip().splitlines() or [type(e).__name__])[0][:160]
        raise ConfigError(f"perceptual loss: cannot read VGG19 weights {str(path)!r}: {first}") from None
    if not isinstance(state, Mapping):
        raise ConfigError(f"perceptual loss: {str(path)!r} is not a state dict")
    if not any(str(k).startswith("features.") for k in state):  # a saved `features` Sequential: bare N.weight
        state = {f"features.{k}": v for k, v in state.items()}
    return dict(state)


def build_vgg19_features(last_layer: str, weights: str | Path | None = None, *, before_relu: bool = True,
                         seed: int = 0) -> nn.Sequential:
    """torchvision's ``vgg19().features`` up to ``last_layer`` (its ReLU too when ``before_relu`` is False), frozen.

    Args:
        last_layer: the deepest conv needed, ``conv1_1`` ... ``conv5_4``.
        weights: a state dict file with torchvision's keys (``features.N.weight``; bare ``N.weight`` also accepted;
            other keys such as ``classifier.*`` are ignored); None: :func:`default_vgg19_path`; ``"random"``:
            Kaiming-normal (fan-out) weights and zero biases drawn from ``torch.Generator().manual_seed(seed)``.
        before_relu: drop the ReLU after ``last_layer`` (it would be unused).
        seed: seed of the random weights.

    Returns:
        ``nn.Sequential`` in eval mode, fp32, every parameter ``requires_grad=False``; index N is torchvision's N.

    Raises:
        ConfigError: unknown layer; missing file (the message says where to put it); a file that is not VGG19.
    """
    end = _capture_index(last_layer, before_relu) + 1
    modules: list[nn.Module] = []
    convs: dict[int, tuple[int, int]] = {index: (cin, cout) for index, cin, cout in _LAYOUT.values()}
    while len(modules) < end:
        i = len(modules)
        if i in convs:
            modules.append(nn.Conv2d(convs[i][0], convs[i][1], 3, 1, 1))
        elif i - 1 in convs:
            modules.append(nn.ReLU(inplace=False))  # not in place: a pre-ReLU feature must survive it
        else:
            modules.append(nn.MaxPool2d(2, 2))
    net = nn.Sequential(*modules)
    if isinstance(weights, str) and weights == "random":
        g = torch.Generator().manual_seed(seed)
        with torch.no_grad():
            for m in net:
                if isinstance(m, nn.Conv2d):
                    m.weight.copy_(torch.randn(m.weight.shape, generator=g) * math.sqrt(2.0 / (m.out_channels * 9)))
                    if m.bias is not None:
                        m.bias.zero_()
    else:
        default = default_vgg19_path()
        path = default if weights is None else Path(weights).expanduser()
        if not path.is_file():
            raise ConfigError(
                f"perceptual loss: no VGG19 weights at {str(path)!r} (srkit never downloads): put torchvision's "
                f"{VGG19_FILE} at {str(default)!r}, or set the perceptual loss term's `weights: PATH` to that file"
            )
        state = _read_state(path)
        own = net.state_dict()
        for key, want in own.items():
            got = state.get(f"features.{key}")
            if not isinstance(got, torch.Tensor) or got.shape != want.shape:
                why = "missing" if got is None else f"shape {tuple(got.shape)} instead of {tuple(want.shape)}"
                raise ConfigError(f"perceptual loss: {str(path)!r} is not a torchvision VGG19 state dict "
                                  f"(features.{key}: {why})")
        net.load_state_dict({k: state[f"features.{k}"] for k in own})
    for p in net.parameters():
        p.requires_grad_(False)
    return net.eval()


def vgg19_features(x: torch.Tensor, features: nn.Sequential, layers: Sequence[str],
                   before_relu: bool = True) -> dict[str, torch.Tensor]:
    """VGG19 feature maps of ``x`` at ``layers``.

    Args:
        x: (B, 1 or 3, H, W) float in [0, 1] (1 channel, e.g. Y, is repeated to 3); normalised here with the
            ImageNet mean/std and cast to the network's dtype.
        features: from :func:`build_vgg19_features`, deep enough for every layer.
        layers: conv names (``conv3_4``, ...).
        before_relu: the conv output (True) or the ReLU output (False).

    Returns:
        ``{layer: (B, C_l, H / 2^k, W / 2^k)}`` for the given layers.

    Raises:
        ShapeError: not (B, 1|3, H, W) float. ConfigError: unknown layer, or deeper than ``features`` goes.
    """
    if x.ndim != 4 or x.shape[1] not in (1, 3) or not x.is_floating_point():
        raise ShapeError(f"VGG19 features need float (B, 1 or 3, H, W) input, got {tuple(x.shape)} {x.dtype}")
    want = {_capture_index(n, before_relu): n for n in layers}
    if max(want) >= len(features):
        raise ConfigError(f"VGG19 features end at index {len(features) - 1}: too shallow for {', '.join(layers)}")
    w = next(features.parameters())
    if x.shape[1] == 1:
        x = x.expand(-1, 3, -1, -1)
    mean = torch.tensor(IMAGENET_MEAN, device=x.device, dtype=w.dtype).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD, device=x.device, dtype=w.dtype).view(1, 3, 1, 1)
    h = (x.to(w.dtype) - mean) / std
    out: dict[str, torch.Tensor] = {}
    last = max(want)
    for i, module in enumerate(features):
        h = module(h)
        if i in want:
            out[want[i]] = h
        if i == last:
            break
    return out


def perceptual_loss(sr: torch.Tensor, hr: torch.Tensor, features: nn.Sequential, layer_weights: Mapping[str, float],
                    before_relu: bool = True) -> torch.Tensor:
    """``sum_l w_l * mean|phi_l(sr) - phi_l(hr)|`` over VGG19 layers ``l`` (L1 criterion).

    Args:
        sr, hr: float (B, 1 or 3, H, W) in [0, 1], same shape. The gradient flows to ``sr`` only (``hr``'s
            features are computed without autograd; the network is frozen).
        features: from :func:`build_vgg19_features`.
        layer_weights: ``{conv name: weight >= 0}``, at least one.
        before_relu: features before (True, ESRGAN) or after the ReLU.

    Returns:
        0-dim float tensor (the network's dtype); 0 exactly when ``sr == hr``.

    Reference: Johnson et al., ECCV 2016; Wang et al., ESRGAN, ECCV Workshops 2018 (before-activation features).
    """
    check_pair(sr, hr, "perceptual_loss")
    if not layer_weights:
        raise ConfigError("perceptual loss needs at least one layer")
    layers = list(layer_weights)
    f_sr = vgg19_features(sr, features, layers, before_relu)
    with torch.no_grad():
        f_hr = vgg19_features(hr, features, layers, before_relu)
    total = sr.new_zeros((), dtype=f_sr[layers[0]].dtype)
    for name, weight in layer_weights.items():
        if weight:
            total = total + weight * (f_sr[name] - f_hr[name]).abs().mean()
    return total


class PerceptualLoss(nn.Module):
    """:func:`perceptual_loss` with its frozen VGG19 (built by :func:`build_vgg19_features`).

    Args:
        layer_weights: ``{conv name: weight}``; default :data:`DEFAULT_LAYER_WEIGHTS` (ESRGAN / Real-ESRGAN).
        weights: VGG19 weights file, None (torchvision's cache file) or ``"random"``.
        before_relu: features before (default) or after the ReLU.
        seed: seed of ``"random"`` weights.

    Forward: ``(sr, hr)`` float (B, 1|3, H, W) in [0, 1] -> 0-dim loss. The network stays in eval mode and
    frozen whatever ``.train()`` is called with.

    Raises:
        ConfigError: unknown layer, no layers, missing or wrong weights file.
    """

    def __init__(self, layer_weights: Mapping[str, float] | None = None, weights: str | Path | None = None,
                 before_relu: bool = True, seed: int = 0) -> None:
        super().__init__()
        lw = dict(DEFAULT_LAYER_WEIGHTS if layer_weights is None else layer_weights)
        if not lw:
            raise ConfigError("perceptual loss needs at least one layer")
        for name, w in lw.items():
            _capture_index(name, before_relu)
            if not (w >= 0.0 and math.isfinite(w)):
                raise ConfigError(f"perceptual loss: layer weight of {name} must be finite and >= 0, got {w!r}")
        self.layer_weights = lw
        self.before_relu = bool(before_relu)
        deepest = max(lw, key=lambda n: _LAYOUT[n][0])
        self.features = build_vgg19_features(deepest, weights, before_relu=self.before_relu, seed=seed)

    def train(self, mode: bool = True) -> PerceptualLoss:
        super().train(mode)
        self.features.eval()
        return self

    def forward(self, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
        return perceptual_loss(sr, hr, self.features, self.layer_weights, self.before_relu)

    def extra_repr(self) -> str:
        where = "before" if self.before_relu else "after"
        return ", ".join(f"{w:g}*{n}" for n, w in self.layer_weights.items()) + f" ({where} ReLU)"
