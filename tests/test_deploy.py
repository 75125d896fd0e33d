"""srkit.deploy (srkit.deployment): folding re-parameterised blocks and BatchNorm into single convolutions."""

from __future__ import annotations

import torch
from torch import nn

from srkit.archs._blocks import RepVGGBlock, SharpeningConv
from srkit.archs.ecbsr import build_ecbsr_m4c16, build_ecbsr_m16c64, detect_ecbsr
from srkit.archs.span import build_span, detect_span
from srkit.deployment import deploy
from srkit.models import ModelInfo, SRModel


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def randomise(m: nn.Module, seed: int = 0, std: float = 0.05) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
        for b in m.modules():
            if isinstance(b, nn.BatchNorm2d):
                b.running_mean.copy_(torch.randn(b.num_features, generator=g) * 0.5)
                b.running_var.copy_(torch.rand(b.num_features, generator=g) * 2 + 0.2)
                b.weight.add_(1.0)
    return m


def max_diff(a: nn.Module, b: nn.Module, x: torch.Tensor) -> float:
    with torch.no_grad():
        return (a.eval()(x) - b.eval()(x)).abs().max().item()


def snapshot(m: nn.Module) -> dict:
    return {k: v.clone() for k, v in m.state_dict().items()}


def test_deploy_ecbsr_equal_and_plain():
    m = randomise(build_ecbsr_m16c64(4), seed=1).double()
    before = snapshot(m)
    d = deploy(m)
    x = torch.rand(1, 1, 12, 13, dtype=torch.float64)
    assert max_diff(m, d, x) < 1e-10
    # Deployed = plain 3x3 convs + PReLU, the paper's parameter count (603K).
    assert all(isinstance(s, (nn.Conv2d, nn.PReLU, nn.Identity, nn.Sequential, nn.PixelShuffle))
               or type(s).__name__ in ("ECB", "ECBSR") for s in d.modules())
    assert abs(n_params(d) - 603_000) / 603_000 < 0.01
    # The input is untouched.
    assert set(before) == set(m.state_dict())
    assert all(torch.equal(before[k], v) for k, v in m.state_dict().items())
    assert hasattr(m.backbone[1], "conv1x1_sbx")
    # The deployed weights are the authors' PlainSR layout: detected and reloaded as such.
    arch, scale, options = detect_ecbsr(d.state_dict())
    assert (arch, scale, options["deploy"]) == ("ecbsr-m16c64", 4, True)
    m2 = build_ecbsr_m16c64(scale, **options).double()
    m2.load_state_dict(d.state_dict(), strict=True)
    assert max_diff(m2, d, x) == 0.0


def test_deploy_span_equal():
    m = randomise(build_span(4), seed=2, std=0.03).double()
    d = deploy(m)
    x = torch.rand(1, 3, 11, 12, dtype=torch.float64)
    assert max_diff(m, d, x) < 1e-10
    assert n_params(d) == 426_288  # paper: 426K
    assert not any(".sk." in k or ".conv." in k for k in d.state_dict())
    _, _, options = detect_span(d.state_dict())
    assert options["deploy"] is True
    m2 = build_span(4, **options).double()
    m2.load_state_dict(d.state_dict(), strict=True)
    assert max_diff(m2, d, x) == 0.0
    assert "conv_1.sk.weight" in m.state_dict()


def test_deploy_sharpening_stack_and_bare_block():
    stack = nn.Sequential(
        SharpeningConv(3, 16), nn.ReLU(),
        SharpeningConv(16, 16, branches=("laplacian", "sobel_x", "sobel_y", "highpass", "expand", "identity")),
        nn.PReLU(16), SharpeningConv(16, 3),
    )
    stack = randomise(stack, seed=3, std=0.2).double()
    d = deploy(stack)
    x = torch.rand(2, 3, 10, 9, dtype=torch.float64)
    assert max_diff(stack, d, x) < 1e-10
    assert all(s.fused is not None for s in d if isinstance(s, SharpeningConv))
    assert all(s.fused is None for s in stack if isinstance(s, SharpeningConv))
    bare = randomise(SharpeningConv(4, 5), seed=4, std=0.3).double()
    db = deploy(bare)
    assert max_diff(bare, db, torch.rand(2, 4, 7, 8, dtype=torch.float64)) < 1e-10
    assert n_params(db) == 5 * 4 * 9 + 5


def test_deploy_conv_bn_stack():
    net = nn.Sequential(
        nn.Conv2d(3, 8, 3, padding=1), nn.BatchNorm2d(8), nn.ReLU(),
        nn.Conv2d(8, 8, 3, padding=2, dilation=2, groups=4, bias=False), nn.BatchNorm2d(8),
        nn.Sequential(nn.Conv2d(8, 6, 1), nn.BatchNorm2d(6)),
        RepVGGBlock(6, 6), nn.Conv2d(6, 3, 3, padding=1),
    )
    net = randomise(net, seed=5, std=0.2).double()
    d = deploy(net)
    assert not any(isinstance(s, nn.BatchNorm2d) for s in d.modules())
    assert any(isinstance(s, nn.BatchNorm2d) for s in net.modules())
    x = torch.rand(2, 3, 9, 10, dtype=torch.float64)
    assert max_diff(net, d, x) < 1e-10
    assert not d.training
    assert isinstance(d[1], nn.Identity) and d[0].bias is not None


def test_deploy_srmodel_keeps_info():
    module = randomise(build_ecbsr_m4c16(2, rgb_range=255.0), seed=6).double()
    info = ModelInfo(arch="ecbsr-m4c16", scale=2, in_channels=1, out_channels=1, color_space="y",
                     input_range=255.0, receptive_field=6)
    model = SRModel(module, info)
    d = deploy(model)
    assert isinstance(d, SRModel) and d.info == info
    assert d.module is not module
    assert not hasattr(d.module.backbone[1], "conv1x1_sbx")
    assert hasattr(model.module.backbone[1], "conv1x1_sbx")
    x = torch.rand(1, 1, 8, 9, dtype=torch.float64)
    with torch.no_grad():
        assert (model.eval()(x) - d(x)).abs().max().item() < 1e-10


def test_deploy_ignores_submodules_named_fuse():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.fuse = nn.Conv2d(2, 2, 1)  # a layer called "fuse", not the folding protocol

        def forward(self, x):
            return self.fuse(x)

    net = Net().double()
    d = deploy(net)
    assert isinstance(d, Net) and isinstance(d.fuse, nn.Conv2d)
    x = torch.rand(1, 2, 4, 4, dtype=torch.float64)
    assert max_diff(net, d, x) == 0.0


def test_saved_deployed_model_loads_back(tmp_path):
    from srkit.archs import build
    from srkit.models import load_model, save_model

    for arch, scale, opts in [("ecbsr-m4c16", 2, {"channel_nums": 8}), ("ecbsr-m4c16", 4, {"edge_branches": False}),
                              ("fsrcnn", 3, {})]:
        model = build(arch, scale, **opts)
        randomise(model.module, seed=7)
        d = deploy(model)
        if arch.startswith("ecbsr"):
            assert d.info.options == {**opts, "deploy": True} and "deploy" not in model.info.options
        else:
            assert d.info.options == model.info.options
        path = save_model(d, tmp_path / f"{arch}-{scale}.safetensors")
        back = load_model(path)
        x = torch.rand(1, back.info.in_channels, 9, 8)
        with torch.no_grad():
            assert (back(x) - model.eval()(x)).abs().max().item() < 1e-4
