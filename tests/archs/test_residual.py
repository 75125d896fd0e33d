"""VDSR, EDSR-baseline, EDSR, RCAN: shapes, gradients, parameter counts, state-dict round trip, receptive field."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from srkit.archs.edsr import (
    DIV2K_RGB_MEAN,
    EDSR_BASELINE_SPEC,
    EDSR_SPEC,
    build_edsr,
    build_edsr_baseline,
    detect_edsr,
)
from srkit.archs.probe import measure_receptive_field
from srkit.archs.rcan import RCAN_SPEC, build_rcan, detect_rcan
from srkit.archs.vdsr import VDSR_SPEC, build_vdsr, detect_vdsr
from srkit.errors import ConfigError

SPECS = {"vdsr": VDSR_SPEC, "edsr-baseline": EDSR_BASELINE_SPEC, "edsr": EDSR_SPEC, "rcan": RCAN_SPEC}
DETECT = {"vdsr": detect_vdsr, "edsr-baseline": detect_edsr, "edsr": detect_edsr, "rcan": detect_rcan}
CASES = [(name, s) for name, spec in SPECS.items() for s in spec.scales]
# Shallower versions of the heavy models for the scales other than the default x4 (the width stays, so the
# detectors still see the official widths: 256 for full EDSR).
LIGHT = {"edsr": {"num_block": 3}, "rcan": {"num_group": 2, "num_block": 3}}
FIRST_WEIGHT = {"vdsr": "input.weight", "edsr-baseline": "head.0.weight", "edsr": "head.0.weight",
                "rcan": "head.0.weight"}


def _build(name: str, scale: int, light: bool = True):
    options = LIGHT.get(name, {}) if light else {}
    return SPECS[name].build(scale, **options)


def _rf(spec, options: dict) -> int | None:
    rf = spec.receptive_field
    return rf(options) if callable(rf) else rf


def _union_reach(module, scale: int, in_channels: int, limit: int) -> int:
    """Reach of the input gradient of all scale x scale output pixels of the centre LR pixel (worst phase)."""
    side = 2 * limit + 1
    m = module.double().eval()
    x = torch.rand(1, in_channels, side, side, dtype=torch.float64, requires_grad=True)
    c = side // 2
    m(x)[..., c * scale:(c + 1) * scale, c * scale:(c + 1) * scale].sum().backward()
    nz = torch.nonzero(x.grad.abs().sum(dim=(0, 1)) > 0)
    assert nz.min() > 0 and nz.max() < side - 1, "limit too small"
    return int((nz - c).abs().max())


@pytest.mark.parametrize("name,scale", CASES)
def test_shape_and_finite(name, scale):
    spec = SPECS[name]
    torch.manual_seed(0)
    m = _build(name, scale, light=scale != 4).eval()  # default sizes at x4
    x = torch.rand(1, spec.in_channels, 17, 23)
    if spec.size_multiple > 1:
        x = F.pad(x, (0, (-23) % spec.size_multiple, 0, (-17) % spec.size_multiple), mode="reflect")
    with torch.no_grad():
        y = m(x)[..., : 17 * scale, : 23 * scale]
    assert y.shape == (1, spec.out_channels, 17 * scale, 23 * scale)
    assert torch.isfinite(y).all()
    assert m.scale == scale


@pytest.mark.parametrize("name", SPECS)
def test_gradient_reaches_first_layer(name):
    spec = SPECS[name]
    torch.manual_seed(0)
    m = spec.build(4)
    y = m(torch.rand(1, spec.in_channels, 6, 6))
    y.square().mean().backward()
    g = dict(m.named_parameters())[FIRST_WEIGHT[name]].grad
    assert g is not None and g.abs().sum() > 0


def _count(m) -> int:
    return sum(p.numel() for p in m.parameters())


@pytest.mark.parametrize("name,scale,expected", [
    ("vdsr", 4, 664_704),  # 20 bias-free 3x3 convs: 2 * 576 + 18 * 36,864
    ("edsr-baseline", 2, 1_369_859),  # EDSR paper / official repo: 1.37M, 1.55M, 1.52M
    ("edsr-baseline", 3, 1_554_499),
    ("edsr-baseline", 4, 1_517_571),
    ("edsr", 4, 43_090_179),  # 43M in the paper
    ("rcan", 4, 15_592_379),  # about 16M in the paper; this figure includes the 24 mean-shift values
])
def test_parameter_counts(name, scale, expected):
    # Mean shifts are buffers, not parameters (the paper figures leave them out, or differ by 24 values).
    with torch.device("meta"):  # shapes only: no memory, no initialisation
        m = SPECS[name].build(scale)
    assert _count(m) == pytest.approx(expected, rel=0.01)


@pytest.mark.parametrize("name,scale", CASES)
def test_state_dict_round_trip(name, scale):
    spec = SPECS[name]
    torch.manual_seed(1)
    m = _build(name, scale).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.02)
    sd = m.state_dict()
    found = DETECT[name](sd)
    assert found is not None
    arch, found_scale, options = found
    assert arch == name
    assert found_scale == (None if name == "vdsr" else scale)  # VDSR's weights serve every scale
    if name != "vdsr":
        assert options["rgb_range"] == 1.0  # read from sub_mean.bias: srkit default
    m2 = spec.build(scale, **options).eval()
    m2.load_state_dict(sd, strict=True)
    x = torch.rand(1, spec.in_channels, 7, 9)
    with torch.no_grad():
        assert torch.equal(m(x), m2(x))


def test_detect_official_options():
    found = detect_edsr(build_edsr(4, num_block=5, rgb_range=255).state_dict())
    assert found == ("edsr", 4, {"num_channels": 3, "num_feat": 256, "num_block": 5, "res_scale": 0.1,
                                 "rgb_range": 255.0})
    found = detect_edsr(build_edsr_baseline(3, rgb_range=255).state_dict())
    assert found == ("edsr-baseline", 3, {"num_channels": 3, "num_feat": 64, "num_block": 16, "res_scale": 1.0,
                                          "rgb_range": 255.0})
    sd = build_rcan(8, num_group=2, num_block=3, rgb_range=255).state_dict()
    assert detect_rcan(sd) == ("rcan", 8, {"num_channels": 3, "num_feat": 64, "num_group": 2, "num_block": 3,
                                           "reduction": 16, "rgb_range": 255.0})
    # A checkpoint saved without the mean shifts is still recognised (and taken as 0..255).
    sd = {k: v for k, v in build_edsr_baseline(2).state_dict().items() if "mean" not in k}
    assert detect_edsr(sd)[2]["rgb_range"] == 255.0


def test_detectors_keep_to_their_family():
    rcan_sd = build_rcan(2, num_group=1, num_block=1).state_dict()
    edsr_sd = build_edsr_baseline(2, num_block=2).state_dict()
    vdsr_sd = build_vdsr(2, num_layers=4).state_dict()
    assert detect_edsr(rcan_sd) is None
    assert detect_rcan(edsr_sd) is None
    assert detect_vdsr(edsr_sd) is None and detect_edsr(vdsr_sd) is None and detect_rcan(vdsr_sd) is None
    assert detect_vdsr(vdsr_sd) == ("vdsr", None, {"num_channels": 1, "num_feat": 64, "num_layers": 4})


def test_rgb_range_and_mean_shift():
    m = build_edsr_baseline(2, rgb_range=255).eval()
    sd = m.state_dict()
    assert torch.allclose(sd["sub_mean.bias"], -255 * torch.tensor(DIV2K_RGB_MEAN))
    assert torch.allclose(sd["add_mean.bias"], 255 * torch.tensor(DIV2K_RGB_MEAN))
    assert sd["sub_mean.weight"].shape == (3, 3, 1, 1)
    assert "sub_mean.weight" not in dict(m.named_parameters())  # frozen: buffers, never trained
    assert m.rgb_range == 255.0


def test_unsupported_scale():
    with pytest.raises(ConfigError):
        build_edsr_baseline(5)
    with pytest.raises(ConfigError):
        build_rcan(6)


def test_official_key_names():
    with torch.device("meta"):  # names and shapes only
        _check_official_key_names()


def _check_official_key_names():
    keys = set(build_vdsr(3).state_dict())
    assert keys == {"input.weight", "output.weight"} | {f"residual_layer.{i}.conv.weight" for i in range(18)}
    keys = set(build_edsr_baseline(4).state_dict())
    assert {"sub_mean.weight", "sub_mean.bias", "add_mean.bias", "head.0.weight", "body.0.body.0.weight",
            "body.15.body.2.bias", "body.16.weight", "tail.0.0.weight", "tail.0.2.weight", "tail.1.weight"} <= keys
    assert "tail.0.0.weight" in build_edsr(3).state_dict() and "tail.0.2.weight" not in build_edsr(3).state_dict()
    keys = set(build_rcan(4).state_dict())
    assert {"sub_mean.bias", "head.0.weight", "body.0.body.0.body.0.weight", "body.9.body.19.body.2.weight",
            "body.0.body.0.body.3.conv_du.0.weight", "body.0.body.0.body.3.conv_du.2.bias", "body.0.body.20.weight",
            "body.10.weight", "tail.0.0.weight", "tail.0.2.weight", "tail.1.weight", "add_mean.weight"} <= keys
    assert build_rcan(4).state_dict()["body.0.body.0.body.3.conv_du.0.weight"].shape == (4, 64, 1, 1)


def test_rcan_has_global_receptive_field():
    assert RCAN_SPEC.receptive_field is None
    m = build_rcan(2, num_feat=16, num_group=1, num_block=1, reduction=4)
    assert measure_receptive_field(m, 2, 3, limit=8) is None


@pytest.mark.parametrize("name", ["vdsr", "edsr-baseline", "edsr"])
def test_receptive_field_matches_probe_at_default_scale(name):
    spec = SPECS[name]
    declared = _rf(spec, {"scale": 4})
    # Width does not change the receptive field; EDSR is probed narrow (same depth) to stay fast.
    m = spec.build(4) if name == "vdsr" else spec.build(4, num_feat=4)
    assert measure_receptive_field(m, 4, spec.in_channels, limit=declared + 2) == declared


# Full EDSR shares EDSR-baseline's formula (only the depth differs): probe it at x3 only, to stay fast.
@pytest.mark.parametrize("name,scale", [c for c in CASES if c[0] not in ("rcan", "edsr")] + [("edsr", 3)])
def test_receptive_field_is_worst_case_over_output_phases(name, scale):
    # The declared value must cover every output pixel of an LR pixel, not only the centre one the probe
    # uses (they differ by one at x3, where the centre pixel is the middle sub-pixel).
    spec = SPECS[name]
    declared = _rf(spec, {"scale": scale})
    m = spec.build(scale) if name == "vdsr" else spec.build(scale, num_feat=4)
    assert _union_reach(m, scale, spec.in_channels, declared + 2) == declared
