"""LPIPS: Learned Perceptual Image Patch Similarity (Zhang et al., CVPR 2018), full-reference, lower = closer.

The distance between two images is computed as in the paper's reference implementation (``lpips`` 0.1.x):

1. scale each image to [-1, 1], then apply the LPIPS "scaling layer" ``(x - shift) / scale`` with
   ``shift = (-0.030, -0.088, -0.188)`` and ``scale = (0.458, 0.448, 0.450)``;
2. run an ImageNet backbone and take five feature stacks - AlexNet: relu1..relu5 of torchvision's
   ``alexnet().features``; VGG16: relu1_2, relu2_2, relu3_3, relu4_3, relu5_3 of ``vgg16().features``;
3. normalise every feature vector to unit length along the channels, ``f / (sqrt(sum f^2) + 1e-10)``;
4. square the difference of the two images' normalised features, weight the channels with the learned
   non-negative 1x1 linear layer of that stage (no bias), average over space;
5. sum over the five stages.

Weights. The learned linear layers are read from the ``lpips`` PyPI package's bundled files
(``lpips/weights/v0.1/{alex,vgg}.pth``; ``pip install 'srkit[metrics]'``); only those files are used, not the
package's code. The ImageNet backbone cannot be downloaded by srkit: pass ``backbone=PATH`` to torchvision's
``alexnet-owt-7be5be79.pth`` / ``vgg16-397923af.pth``, or put that file in torchvision's cache,
``torch.hub.get_dir()/checkpoints``. ``backbone="random"`` builds a seeded random backbone, for tests only (its
scores mean nothing perceptually).

Inputs follow the srkit metric contract: a uint8 (H, W[, 3]) array, or a float [0, 1] array / tensor; float
input is rounded to uint8 first, like every srkit metric (the image one would save is scored). Gray images are
repeated to three channels. ``y_channel`` is accepted for the evaluation contract and ignored: LPIPS is defined on
RGB only.
"""

from __future__ import annotations

import functools
import importlib.util
from pathlib import Path

import numpy as np
import torch
from torch import nn

from srkit.errors import ConfigError, ShapeError
from srkit.metrics._prepare import uint8_pair

# The LPIPS ScalingLayer constants (applied to images already scaled to [-1, 1]).
_SHIFT = (-0.030, -0.088, -0.188)
_SCALE = (0.458, 0.448, 0.450)
_EPS = 1e-10

# net -> (torchvision checkpoint file name, end index (exclusive) of each stage in `features`, channels per stage)
_NETS: dict[str, tuple[str, tuple[int, ...], tuple[int, ...]]] = {
    "alex": ("alexnet-owt-7be5be79.pth", (2, 5, 8, 10, 12), (64, 192, 384, 256, 256)),
    "vgg": ("vgg16-397923af.pth", (4, 9, 16, 23, 30), (64, 128, 256, 512, 512)),
}
_VERSIONS = ("0.1",)
RANDOM = "random"


def _check_net(net: str) -> None:
    if net not in _NETS:
        raise ConfigError(f"LPIPS net must be one of {', '.join(_NETS)}, got {net!r}")


def lin_weights_path(net: str = "alex", version: str = "0.1") -> Path:
    """The ``lpips`` package's bundled linear-layer weights file for ``net`` (found without importing its code)."""
    _check_net(net)
    if version not in _VERSIONS:
        raise ConfigError(f"LPIPS version must be one of {', '.join(_VERSIONS)}, got {version!r}")
    spec = importlib.util.find_spec("lpips")
    if spec is None or not spec.submodule_search_locations:
        raise ConfigError("LPIPS needs the linear-layer weights of the 'lpips' package: pip install 'srkit[metrics]'")
    for root in spec.submodule_search_locations:
        path = Path(root) / "weights" / f"v{version}" / f"{net}.pth"
        if path.is_file():
            return path
    raise ConfigError(f"the installed 'lpips' package has no weights/v{version}/{net}.pth; reinstall lpips>=0.1.4")


def load_lin_weights(net: str = "alex", version: str = "0.1") -> list[torch.Tensor]:
    """The five learned per-stage channel weights, each a float32 (C,) tensor (non-negative)."""
    path = lin_weights_path(net, version)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unreadable file is one config error
        raise ConfigError(f"cannot read LPIPS linear weights {str(path)!r}: {exc}".splitlines()[0]) from None
    channels = _NETS[net][2]
    out = []
    for i, c in enumerate(channels):
        w = state.get(f"lin{i}.model.1.weight")
        if w is None or tuple(w.shape) != (1, c, 1, 1):
            got = None if w is None else tuple(w.shape)
            raise ConfigError(f"LPIPS linear weights {str(path)!r}: lin{i} should be (1, {c}, 1, 1), got {got}")
        out.append(w.detach().reshape(c).float().clone())
    return out


def default_backbone_path(net: str = "alex") -> Path:
    """Where torchvision caches the ImageNet backbone: ``torch.hub.get_dir()/checkpoints/<file>``."""
    _check_net(net)
    return Path(torch.hub.get_dir()) / "checkpoints" / _NETS[net][0]


def _resolve_backbone(net: str, backbone: str | Path | None) -> str:
    if isinstance(backbone, str) and backbone == RANDOM:
        return RANDOM
    path = Path(backbone).expanduser() if backbone is not None else default_backbone_path(net)
    if not path.is_file():
        name = _NETS[net][0]
        raise ConfigError(
            f"LPIPS {net} backbone weights not found at {str(path)!r}: put torchvision's {name} in the torch.hub "
            f"checkpoints folder {str(default_backbone_path(net).parent)!r}, or pass backbone=PATH to that file "
            f"(srkit never downloads it)")
    return str(path.resolve())


class _LPIPSNet(nn.Module):
    """Backbone stages plus the learned channel weights; ``forward(a, b)`` gives the per-stage distances."""

    shift: torch.Tensor  # buffer
    scale: torch.Tensor  # buffer

    def __init__(self, features: nn.Sequential, ends: tuple[int, ...], lins: list[torch.Tensor]):
        super().__init__()
        for m in features:
            if isinstance(m, nn.ReLU):
                m.inplace = False  # stage outputs are kept; never overwrite them
        starts = (0, *ends[:-1])
        self.stages = nn.ModuleList(nn.Sequential(*features[s:e]) for s, e in zip(starts, ends))
        for i, w in enumerate(lins):
            self.register_buffer(f"lin{i}", w.view(1, -1, 1, 1))
        self.register_buffer("shift", torch.tensor(_SHIFT).view(1, 3, 1, 1))
        self.register_buffer("scale", torch.tensor(_SCALE).view(1, 3, 1, 1))

    def features(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Stage outputs of ``x`` given in [-1, 1] (the scaling layer is applied here)."""
        h = (x - self.shift) / self.scale
        out = []
        for stage in self.stages:
            h = stage(h)
            out.append(h)
        return out

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        terms = []
        for i, (fa, fb) in enumerate(zip(self.features(a), self.features(b))):
            na = fa / (fa.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS)
            nb = fb / (fb.pow(2).sum(dim=1, keepdim=True).sqrt() + _EPS)
            d = ((na - nb) ** 2 * getattr(self, f"lin{i}")).sum(dim=1)
            terms.append(d.mean(dim=(1, 2)))
        return torch.stack(terms, dim=1)  # (N, 5)


def _features(net: str) -> nn.Sequential:
    """torchvision's ``alexnet().features`` / ``vgg16().features`` layer for layer (same indices, same state-dict
    keys), built without the classifier, which LPIPS does not use."""
    def conv(cin: int, cout: int, k: int, stride: int = 1, pad: int = 1) -> list[nn.Module]:
        return [nn.Conv2d(cin, cout, k, stride=stride, padding=pad), nn.ReLU()]

    if net == "alex":
        layers = [*conv(3, 64, 11, 4, 2), nn.MaxPool2d(3, 2), *conv(64, 192, 5, 1, 2), nn.MaxPool2d(3, 2),
                  *conv(192, 384, 3), *conv(384, 256, 3), *conv(256, 256, 3), nn.MaxPool2d(3, 2)]
    else:
        layers, cin = [], 3
        for v in (64, 64, "M", 128, 128, "M", 256, 256, 256, "M", 512, 512, 512, "M", 512, 512, 512, "M"):
            if isinstance(v, str):  # "M"
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += conv(cin, v, 3)
                cin = v
    return nn.Sequential(*layers)


@functools.lru_cache(maxsize=8)
def _build(net: str, backbone: str, version: str, device: str) -> _LPIPSNet:
    if backbone == RANDOM:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            features = _features(net)
    else:
        features = _features(net)
        try:
            state = torch.load(backbone, map_location="cpu", weights_only=True)
            if not isinstance(state, dict):
                raise TypeError(f"expected a state dict, got {type(state).__name__}")
            feats = {k[len("features."):]: v for k, v in state.items() if k.startswith("features.")}
            features.load_state_dict(feats)
        except Exception as exc:  # noqa: BLE001 - a wrong or corrupt file is one config error
            msg = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise ConfigError(f"{backbone!r} is not torchvision's {_NETS[net][0]}: {msg}") from None
    lpnet = _LPIPSNet(features, _NETS[net][1], load_lin_weights(net, version))
    lpnet.requires_grad_(False)
    return lpnet.eval().to(device)


def lpips_model(net: str = "alex", backbone: str | Path | None = None, version: str = "0.1",
                device: str = "cpu") -> _LPIPSNet:
    """The built LPIPS network (cached per net, backbone file, version and device; eval mode, no gradients)."""
    _check_net(net)
    if version not in _VERSIONS:
        raise ConfigError(f"LPIPS version must be one of {', '.join(_VERSIONS)}, got {version!r}")
    return _build(net, _resolve_backbone(net, backbone), version, str(device))


def _to_input(image: np.ndarray, device: str) -> torch.Tensor:
    t = torch.from_numpy(np.ascontiguousarray(image)).permute(2, 0, 1).float().div(255.0)
    if t.shape[0] == 1:
        t = t.expand(3, -1, -1)
    return (t * 2.0 - 1.0)[None].to(device)


def lpips(image, reference, border: int = 0, y_channel: bool = False, *, net: str = "alex",
          backbone: str | Path | None = None, version: str = "0.1", device: str = "cpu") -> float:
    """LPIPS distance between ``image`` and ``reference`` (lower = more similar; 0 for identical images).

    Args:
        image, reference: uint8 (H, W[, 3]) arrays or float [0, 1] arrays / tensors, the same shape.
        net: ``"alex"`` (the paper's recommended variant) or ``"vgg"``.
        backbone: path to torchvision's ImageNet checkpoint (``alexnet-owt-7be5be79.pth`` /
            ``vgg16-397923af.pth``); None: that file under ``torch.hub.get_dir()/checkpoints``; ``"random"``: a
            seeded random backbone (tests only).
        version: linear-layer weights version of the ``lpips`` package (``"0.1"``).
        border: pixels cropped from each edge before scoring (the evaluation passes the scale).
        y_channel: ignored - LPIPS is defined on RGB; accepted so the metric fits the evaluation contract.
        device: torch device for the network.

    Raises:
        ShapeError: the images differ in shape, are not gray/RGB, hold NaN/Inf, or the border leaves nothing.
        ConfigError: unknown net/version, the backbone file is missing or wrong, or the ``lpips`` package is absent.
    """
    del y_channel  # LPIPS is an RGB metric
    a, b = uint8_pair(image, reference, border, ("image", "reference"))
    if a.shape[2] not in (1, 3):
        raise ShapeError(f"LPIPS takes gray or RGB images; got {a.shape[2]} channels (drop alpha first)")
    model = lpips_model(net, backbone, version, device)
    if np.array_equal(a, b):
        return 0.0
    with torch.inference_mode():
        try:
            d = model(_to_input(a, device), _to_input(b, device))
        except RuntimeError as exc:  # e.g. an image too small for the backbone's pooling
            raise ShapeError(f"LPIPS {net} cannot score a {a.shape[1]}x{a.shape[0]} image: "
                             f"{str(exc).splitlines()[0]}") from None
    return float(d.sum())
