"""Re-parameterisable architectures (ECBSR, SPAN) and the folding blocks of srkit.archs._blocks."""

from __future__ import annotations

import copy

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from srkit.archs import _blocks as B
from srkit.archs.ecbsr import (
    ECBSR_M4C16_SPEC,
    ECBSR_M16C64_SPEC,
    build_ecbsr_m4c16,
    build_ecbsr_m16c64,
    convert_ecbsr_edsr_state_dict,
    detect_ecbsr,
)
from srkit.archs.probe import measure_receptive_field
from srkit.archs.span import SPAN_SPEC, Conv3XC, build_span, detect_span


def n_params(m: nn.Module, trainable_only: bool = False) -> int:
    return sum(p.numel() for p in m.parameters() if p.requires_grad or not trainable_only)


def randomise(m: nn.Module, seed: int = 0, std: float = 0.05) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return m


def deploy_all(m: nn.Module) -> nn.Module:
    d = copy.deepcopy(m)
    for sub in list(d.modules()):
        if hasattr(type(sub), "switch_to_deploy"):
            sub.switch_to_deploy()
    return d


ECBSR_SPECS = {"ecbsr-m4c16": ECBSR_M4C16_SPEC, "ecbsr-m16c64": ECBSR_M16C64_SPEC}


# ------------------------------------------------------------------------------------------------- folding blocks


def test_fold_functions_match_sequential_convs():
    torch.manual_seed(0)
    x = torch.randn(2, 5, 9, 11, dtype=torch.float64)
    w1, b1 = torch.randn(7, 5, 1, 1, dtype=torch.float64), torch.randn(7, dtype=torch.float64)
    w3, b3 = torch.randn(4, 7, 3, 3, dtype=torch.float64), torch.randn(4, dtype=torch.float64)
    # 1x1 -> 3x3 with the input zero-padded first (== 1x1 output padded with its bias).
    ref = F.conv2d(F.conv2d(F.pad(x, [1] * 4), w1, b1), w3, b3)
    w, b = B.fold_1x1_into_3x3(w1, b1, w3, b3)
    assert torch.allclose(F.conv2d(x, w, b, padding=1), ref, atol=1e-12)
    ref2 = B.pad_with_bias(F.conv2d(x, w1, b1), b1)
    assert torch.allclose(F.conv2d(ref2, w3, b3), ref, atol=1e-12)
    # 3x3 -> 1x1.
    w1b, b1b = torch.randn(6, 4, 1, 1, dtype=torch.float64), torch.randn(6, dtype=torch.float64)
    ref = F.conv2d(F.conv2d(x, w, b, padding=1), w1b, b1b)
    wf, bf = B.fold_kxk_into_1x1(w, b, w1b, b1b)
    assert torch.allclose(F.conv2d(x, wf, bf, padding=1), ref, atol=1e-12)
    # depthwise -> dense, identity, 1x1 padding.
    dw = torch.randn(5, 1, 3, 3, dtype=torch.float64)
    assert torch.allclose(F.conv2d(x, B.depthwise_to_dense(dw), padding=1), F.conv2d(x, dw, padding=1, groups=5))
    assert torch.equal(F.conv2d(x, B.identity_kernel(5, 3, dtype=torch.float64), padding=1), x)
    assert torch.allclose(F.conv2d(x, B.pad_1x1_to_3x3(w1), padding=1), F.conv2d(x, w1), atol=1e-12)


def test_fuse_conv_bn_any_geometry():
    torch.manual_seed(1)
    conv = nn.Conv2d(6, 8, 3, stride=2, padding=2, dilation=2, groups=2, bias=False).double()
    bn = nn.BatchNorm2d(8).double()
    with torch.no_grad():
        bn.running_mean.uniform_(-1, 1)
        bn.running_var.uniform_(0.2, 3)
        bn.weight.uniform_(0.5, 2)
        bn.bias.uniform_(-1, 1)
    bn.eval()
    x = torch.randn(2, 6, 13, 10, dtype=torch.float64)
    fused = B.fuse_conv_bn(conv, bn)
    assert fused.bias is not None and fused.groups == 2 and fused.stride == (2, 2)
    assert torch.allclose(fused(x), bn(conv(x)), atol=1e-12)


@pytest.mark.parametrize("seq_type", B.SEQ_TYPES)
def test_seqconv_rep_params_exact(seq_type):
    torch.manual_seed(2)
    m = randomise(B.SeqConv3x3(seq_type, 4, 6, 2.0).double(), std=0.5)
    x = torch.randn(1, 4, 8, 7, dtype=torch.float64)
    w, b = m.rep_params()
    assert torch.allclose(F.conv2d(x, w, b, padding=1), m(x), atol=1e-12)


def test_sharpening_conv_fuse_and_switch():
    torch.manual_seed(3)
    m = randomise(B.SharpeningConv(8, 8, branches=(*B.BRANCHES,)).double(), std=0.3)
    x = torch.randn(2, 8, 10, 9, dtype=torch.float64)
    y = m(x)
    fused = m.fuse()
    assert isinstance(fused, nn.Conv2d) and fused.kernel_size == (3, 3)
    assert (fused(x) - y).abs().max().item() < 1e-10
    m.switch_to_deploy()
    assert [n for n, _ in m.named_children()] == ["fused"]
    assert (m(x) - y).abs().max().item() < 1e-10
    m.switch_to_deploy()  # idempotent
    # Default branches, different in/out channels.
    m2 = B.SharpeningConv(3, 5).double()
    assert (m2.fuse()(x[:, :3]) - m2(x[:, :3])).abs().max().item() < 1e-10
    with pytest.raises(ValueError):
        B.SharpeningConv(3, 5, branches=("identity",))
    with pytest.raises(ValueError):
        B.SharpeningConv(3, 5, branches=("blur",))


def test_highpass_branch_has_zero_dc_and_sharpening_masks():
    torch.manual_seed(4)
    m = B.SeqConv3x3("conv1x1-highpass", 3, 4)
    with torch.no_grad():
        m.k1.normal_()
    k = m.depthwise_kernel()
    assert torch.allclose(k.sum(dim=(-2, -1)), torch.zeros(4, 1), atol=1e-6)
    for f in (B.sobel_x_kernel, B.sobel_y_kernel, B.laplacian_kernel):
        assert f().sum().item() == 0.0
    # The authors' orientation: Sobel-x has +1, +2, +1 in the left column.
    assert B.sobel_x_kernel()[:, 0].tolist() == [1.0, 2.0, 1.0]
    assert B.sobel_y_kernel()[0].tolist() == [1.0, 2.0, 1.0]


def test_repvgg_block_fuse():
    torch.manual_seed(5)
    m = B.RepVGGBlock(6, 6).double()
    for bn in m.modules():
        if isinstance(bn, nn.BatchNorm2d):
            with torch.no_grad():
                bn.running_mean.uniform_(-1, 1)
                bn.running_var.uniform_(0.2, 3)
                bn.weight.uniform_(0.5, 2)
                bn.bias.uniform_(-1, 1)
    m.eval()
    x = torch.randn(2, 6, 7, 9, dtype=torch.float64)
    y = m(x)
    assert (m.fuse()(x) - y).abs().max().item() < 1e-10
    m.switch_to_deploy()
    assert (m(x) - y).abs().max().item() < 1e-10


def test_rep_params_are_differentiable():
    m = B.SharpeningConv(3, 4)
    w, b = m.rep_params()
    g = torch.Generator().manual_seed(0)
    # A random projection: plain sums vanish for the zero-sum masks.
    ((w * torch.randn(w.shape, generator=g)).sum() + b.sum()).backward()
    assert m.branches["highpass"].k1.grad is not None
    assert m.branches["laplacian"].scale.grad.abs().sum() > 0


# ------------------------------------------------------------------------------------------------- ECBSR

ECBSR_BUILDERS = {"ecbsr-m4c16": build_ecbsr_m4c16, "ecbsr-m16c64": build_ecbsr_m16c64}


@pytest.mark.parametrize("name", list(ECBSR_BUILDERS))
def test_ecbsr_shapes_and_grad(name):
    spec = ECBSR_SPECS[name]
    for s in spec.scales:
        torch.manual_seed(s)
        m = spec.build(scale=s)
        x = torch.rand(1, spec.in_channels, 17, 23)
        y = m(x)
        assert y.shape == (1, spec.out_channels, 17 * s, 23 * s)
        assert torch.isfinite(y).all()
    y.mean().backward()
    assert m.backbone[0].conv3x3.weight.grad.abs().sum() > 0
    assert m.backbone[0].conv1x1_sbx.scale.grad.abs().sum() > 0


def test_ecbsr_param_counts():
    # Paper (deployed, plain 3x3 convs): ECBSR-M16C64 603K at x4, 596K at x2 (SAFMN table).
    train = build_ecbsr_m16c64(4)
    d = deploy_all(train)
    assert abs(n_params(d) - 603_000) / 603_000 < 0.01
    assert n_params(d) == n_params(build_ecbsr_m16c64(4, deploy=True)) == 601_808
    d2 = build_ecbsr_m16c64(2, deploy=True)
    assert abs(n_params(d2) - 596_000) / 596_000 < 0.01
    assert n_params(deploy_all(build_ecbsr_m4c16(4))) == 11_840
    # Training form (edge masks are buffers, not parameters).
    assert n_params(train) == 2_206_160
    assert n_params(build_ecbsr_m4c16(4)) == 47_120


def test_ecbsr_official_keys():
    sd = build_ecbsr_m4c16(4).state_dict()
    for k in ("backbone.0.conv3x3.weight", "backbone.0.conv3x3.bias", "backbone.1.conv1x1_3x3.k0",
              "backbone.1.conv1x1_3x3.b0", "backbone.1.conv1x1_3x3.k1", "backbone.1.conv1x1_3x3.b1",
              "backbone.1.conv1x1_sbx.k0", "backbone.1.conv1x1_sbx.scale", "backbone.1.conv1x1_sbx.bias",
              "backbone.1.conv1x1_sbx.mask", "backbone.2.conv1x1_sby.mask", "backbone.3.conv1x1_lpl.mask",
              "backbone.0.act.weight", "backbone.5.conv3x3.weight"):
        assert k in sd, k
    assert "backbone.5.act.weight" not in sd  # tail is linear
    assert sd["backbone.1.conv1x1_3x3.k0"].shape == (32, 16, 1, 1)  # depth multiplier 2
    # Deployed form == the authors' PlainSR layout.
    dsd = build_ecbsr_m4c16(4, deploy=True).state_dict()
    expect = {f"backbone.{i}.conv3x3.{p}" for i in range(6) for p in ("weight", "bias")}
    expect |= {f"backbone.{i}.act.weight" for i in range(5)}
    assert set(dsd) == expect
    assert set(deploy_all(build_ecbsr_m4c16(4)).state_dict()) == expect


@pytest.mark.parametrize("deployed", [False, True])
@pytest.mark.parametrize("name", list(ECBSR_BUILDERS))
def test_ecbsr_state_dict_round_trip(name, deployed):
    spec = ECBSR_SPECS[name]
    for s in (2, 3):
        m = randomise(spec.build(scale=s, deploy=deployed), seed=s)
        sd = m.state_dict()
        got = detect_ecbsr(sd)
        assert got is not None
        arch, scale, options = got
        assert (arch, scale) == (name, s)
        assert options["rgb_range"] == 255.0 and options["deploy"] is deployed and options["colors"] == 1
        m2 = spec.build(scale=scale, **options)
        m2.load_state_dict(sd, strict=True)
        x = torch.rand(1, 1, 9, 10)
        assert torch.equal(m.eval()(x), m2.eval()(x))


def test_ecbsr_edsr_layout_and_rgb():
    m = randomise(build_ecbsr_m4c16(2, colors=3), seed=7)
    sd = m.state_dict()
    # EDSR-codebase layout: head.0 / body.i / tail.0.
    edsr = {}
    for k, v in sd.items():
        i, rest = int(k.split(".")[1]), ".".join(k.split(".")[2:])
        key = "head.0" if i == 0 else ("tail.0" if i == 5 else f"body.{i - 1}")
        edsr[f"{key}.{rest}"] = v
    conv = convert_ecbsr_edsr_state_dict(edsr)
    assert set(conv) == set(sd)
    arch, scale, options = detect_ecbsr(conv)
    assert (arch, scale, options["colors"]) == ("ecbsr-m4c16", 2, 3)
    m2 = build_ecbsr_m4c16(scale, **options)
    m2.load_state_dict(conv, strict=True)
    x = torch.rand(1, 3, 8, 9)
    assert torch.equal(m(x), m2(x))
    # Zero backbone: output is the nearest-neighbour upscale of the input, per colour.
    with torch.no_grad():
        m.backbone[-1].conv3x3.weight.zero_()
        m.backbone[-1].conv3x3.bias.zero_()
        for b in ("conv1x1_3x3", "conv1x1_sbx", "conv1x1_sby", "conv1x1_lpl"):
            for p in getattr(m.backbone[-1], b).parameters():
                p.zero_()
    assert torch.allclose(m(x), F.interpolate(x, scale_factor=2, mode="nearest"))


def test_ecbsr_receptive_field():
    m = build_ecbsr_m4c16(4)
    assert ECBSR_M4C16_SPEC.receptive_field({}) == 6
    assert measure_receptive_field(m, 4, 1, limit=9) == 6
    # M16C64: measured on the folded form (same function, far cheaper in float64).
    d = deploy_all(build_ecbsr_m16c64(2))
    assert ECBSR_M16C64_SPEC.receptive_field({}) == 18
    assert measure_receptive_field(d, 2, 1, limit=21) == 18


# ------------------------------------------------------------------------------------------------- SPAN


def test_span_shapes_and_grad():
    for s in SPAN_SPEC.scales:
        torch.manual_seed(s)
        m = SPAN_SPEC.build(scale=s)
        y = m(torch.rand(1, 3, 17, 23))
        assert y.shape == (1, 3, 17 * s, 23 * s)
        assert torch.isfinite(y).all()
    y.mean().backward()
    assert m.conv_1.sk.weight.grad.abs().sum() > 0
    assert m.conv_1.conv[0].weight.grad.abs().sum() > 0
    assert m.conv_1.eval_conv.weight.grad is None  # frozen, unused in the training form


def test_span_param_counts():
    m = build_span(4)
    d = deploy_all(m)
    # Paper: SPAN (48 ch) x4 426K parameters, i.e. the folded form.
    assert abs(n_params(d) - 426_000) / 426_000 < 0.01
    assert n_params(d) == 426_288
    assert n_params(m, trainable_only=True) == 1_840_488
    # All parameters = trainable + the frozen eval_conv copies (the folded form minus conv_cat and upsampler).
    assert n_params(m) == 1_840_488 + 426_288 - (192 * 48 + 48) - (48 * 48 * 9 + 48)


def test_span_official_keys():
    sd = build_span(4).state_dict()
    for k in ("conv_1.sk.weight", "conv_1.sk.bias", "conv_1.conv.0.weight", "conv_1.conv.1.weight",
              "conv_1.conv.2.bias", "conv_1.eval_conv.weight", "conv_1.eval_conv.bias", "block_1.c1_r.sk.weight",
              "block_1.c2_r.conv.1.weight", "block_6.c3_r.eval_conv.bias", "conv_cat.weight", "conv_cat.bias",
              "conv_2.sk.weight", "conv_2.eval_conv.weight", "upsampler.0.weight", "upsampler.0.bias"):
        assert k in sd, k
    assert "mean" not in sd
    assert sd["block_1.c1_r.conv.1.weight"].shape == (96, 96, 3, 3)  # gain 2
    dsd = build_span(4, deploy=True).state_dict()
    assert "conv_1.eval_conv.weight" in dsd and not any(".sk." in k or ".conv." in k for k in dsd)


@pytest.mark.parametrize("deployed", [False, True])
def test_span_state_dict_round_trip(deployed):
    for s in (2, 3, 4):
        m = randomise(build_span(s, deploy=deployed), seed=s)
        sd = m.state_dict()
        arch, scale, options = detect_span(sd)
        assert (arch, scale) == ("span", s)
        assert options["deploy"] is deployed and options["feature_channels"] == 48
        m2 = build_span(scale, **options)
        m2.load_state_dict(sd, strict=True)
        x = torch.rand(1, 3, 8, 9)
        assert torch.equal(m.eval()(x), m2.eval()(x))


def test_span_loads_training_keys_without_eval_conv():
    m = randomise(build_span(2), seed=3)
    sd = {k: v for k, v in m.state_dict().items() if "eval_conv" not in k}
    m2 = build_span(2)
    m2.load_state_dict(sd, strict=True)
    x = torch.rand(1, 3, 8, 8)
    assert torch.equal(m(x), m2(x))
    # eval_conv was derived from the branches: switching to the folded form keeps the function.
    w, b = m.conv_1.rep_params()
    assert torch.allclose(m2.conv_1.eval_conv.weight, w.detach())


def test_conv3xc_fold_exact():
    torch.manual_seed(6)
    m = randomise(Conv3XC(5, 7, gain1=2, relu=True).double(), std=0.3)
    x = torch.randn(2, 5, 9, 8, dtype=torch.float64)
    y = m(x)
    m.switch_to_deploy()
    assert (m(x) - y).abs().max().item() < 1e-12
    assert [n for n, _ in m.named_children()] == ["eval_conv"]


def test_span_receptive_field():
    d = deploy_all(build_span(2))  # same function as the training form, cheaper in float64
    assert measure_receptive_field(d, 2, 3, limit=24) == SPAN_SPEC.receptive_field == 21


def test_detectors_reject_each_other():
    e = build_ecbsr_m4c16(2).state_dict()
    s = build_span(2).state_dict()
    assert detect_span(e) is None
    assert detect_ecbsr(s) is None
    assert detect_ecbsr({"backbone.0.weight": torch.zeros(1)}) is None
    assert detect_span({**s, "no_norm": torch.zeros(1)}) is None
