"""VGG19 perceptual loss: layout, weights files (never downloaded), gradients, config terms."""

from __future__ import annotations

import pytest
import torch
from pydantic import ValidationError

from srkit.errors import ConfigError
from srkit.losses import (
    DEFAULT_LAYER_WEIGHTS,
    VGG19_CONV_LAYERS,
    CompositeLoss,
    LossTerm,
    PerceptualLoss,
    build_vgg19_features,
    default_vgg19_path,
    perceptual_loss,
    vgg19_features,
)

SMALL = {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0}


def _pair(shape=(2, 3, 24, 24), seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.rand(shape, generator=g), torch.rand(shape, generator=g)


def test_layout_is_torchvisions():
    assert len(VGG19_CONV_LAYERS) == 16 and VGG19_CONV_LAYERS[0] == "conv1_1" and VGG19_CONV_LAYERS[-1] == "conv5_4"
    net = build_vgg19_features("conv5_4", "random")
    assert len(net) == 35  # truncated before conv5_4's ReLU and the last pool
    keys = set(net.state_dict())
    assert {"0.weight", "2.weight", "16.weight", "25.weight", "34.bias"} <= keys
    assert net[34].weight.shape == (512, 512, 3, 3) and net[10].weight.shape == (256, 128, 3, 3)
    assert len(build_vgg19_features("conv3_4", "random", before_relu=False)) == 18  # ... conv3_4, relu
    assert all(not p.requires_grad for p in net.parameters()) and not net.training
    assert DEFAULT_LAYER_WEIGHTS == {"conv1_2": 0.1, "conv2_2": 0.1, "conv3_4": 1.0, "conv4_4": 1.0, "conv5_4": 1.0}


def test_zero_for_identical_positive_otherwise_gradient_to_sr_only():
    loss = PerceptualLoss(SMALL, weights="random")
    sr, hr = _pair()
    assert float(loss(hr, hr.clone())) == 0.0
    sr.requires_grad_(True)
    v = loss(sr, hr)
    assert float(v) > 0
    v.backward()
    assert sr.grad is not None and torch.isfinite(sr.grad).all() and sr.grad.abs().sum() > 0
    assert all(p.grad is None and not p.requires_grad for p in loss.parameters())
    loss.train()
    assert not loss.features.training  # stays in eval mode


def test_gray_input_is_repeated_to_rgb_and_options():
    net = build_vgg19_features("conv2_2", "random")
    y, y2 = _pair((1, 1, 16, 16))
    rgb, rgb2 = y.expand(-1, 3, -1, -1), y2.expand(-1, 3, -1, -1)
    lw = {"conv1_2": 1.0, "conv2_2": 0.5}
    torch.testing.assert_close(perceptual_loss(y, y2, net, lw), perceptual_loss(rgb, rgb2, net, lw))
    # after-ReLU features are the ReLU of the before-ReLU ones
    net_after = build_vgg19_features("conv2_2", "random", before_relu=False)
    before = vgg19_features(rgb, net, ["conv2_2"], before_relu=True)["conv2_2"]
    after = vgg19_features(rgb, net_after, ["conv2_2"], before_relu=False)["conv2_2"]
    torch.testing.assert_close(after, before.relu())
    # the same seed gives the same random network, another seed another one
    assert torch.equal(build_vgg19_features("conv1_2", "random")[2].weight, net[2].weight)
    assert not torch.equal(build_vgg19_features("conv1_2", "random", seed=1)[2].weight, net[2].weight)
    with pytest.raises(ConfigError, match="unknown VGG19 layer 'conv6_1'"):
        PerceptualLoss({"conv6_1": 1.0}, weights="random")


def test_missing_file_says_where_to_put_it(tmp_path, monkeypatch):
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    default = tmp_path / "hub" / "checkpoints" / "vgg19-dcbb9e9d.pth"
    assert default_vgg19_path() == default
    with pytest.raises(ConfigError) as e:
        PerceptualLoss(SMALL)
    msg = str(e.value)
    assert "\n" not in msg and str(default) in msg and "weights: PATH" in msg and "never downloads" in msg
    missing = tmp_path / "elsewhere" / "vgg.pth"
    with pytest.raises(ConfigError) as e:
        CompositeLoss([{"name": "perceptual", "weights": str(missing)}])
    msg = str(e.value)
    assert "\n" not in msg and str(missing) in msg and str(default) in msg


def test_torchvision_state_dict_loads(tmp_path):
    torchvision = pytest.importorskip("torchvision")
    torch.manual_seed(0)
    tv = torchvision.models.vgg19(weights=None).eval()
    path = tmp_path / "vgg19-dcbb9e9d.pth"
    torch.save({f"features.{k}": v for k, v in tv.features.state_dict().items()}, path)
    loss = PerceptualLoss(SMALL, weights=str(path))
    for i in (0, 2, 5, 7, 10, 16):
        assert torch.equal(loss.features[i].weight, tv.features[i].weight)
    x = _pair((1, 3, 16, 16))[0]
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        want = tv.features[:17]((x - mean) / std)  # up to conv3_4, before its ReLU
        got = vgg19_features(x, loss.features, ["conv3_4"])["conv3_4"]
    torch.testing.assert_close(got, want)
    # The same file found as torchvision's cache file (weights unset).
    hub = tmp_path / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    path.rename(hub / path.name)
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
        assert torch.equal(PerceptualLoss(SMALL).features[16].weight, tv.features[16].weight)
    # A file that is not VGG19.
    torch.save({"features.0.weight": torch.zeros(3, 3, 3, 3)}, tmp_path / "bad.pth")
    with pytest.raises(ConfigError, match=r"not a torchvision VGG19 state dict \(features.0.weight: shape"):
        PerceptualLoss(SMALL, weights=str(tmp_path / "bad.pth"))


def test_loss_term_and_composite():
    t = LossTerm(name="perceptual", weight=0.5, layers=SMALL, weights="random", before_relu=False)
    assert t.layers == SMALL and t.before_relu is False
    for bad in (
        {"name": "perceptual", "layers": {"conv9_9": 1.0}},
        {"name": "perceptual", "layers": {"conv1_2": -1.0}},
        {"name": "perceptual", "layers": {}},
        {"name": "l1", "layers": SMALL},
        {"name": "mse", "weights": "random"},
        {"name": "l1", "before_relu": True},
    ):
        with pytest.raises(ValidationError):
            LossTerm(**bad)
        with pytest.raises(ConfigError, match="bad loss term"):
            CompositeLoss([bad])
    loss = CompositeLoss([{"name": "l1"}, {"name": "perceptual", "weight": 0.5, "layers": SMALL,
                                           "weights": "random"}])
    sr, hr = _pair()
    total, values = loss(sr, hr)
    want = PerceptualLoss(SMALL, weights="random")(sr, hr)
    torch.testing.assert_close(values["perceptual"], want)
    torch.testing.assert_close(total, values["l1"] + 0.5 * want)
