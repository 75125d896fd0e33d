"""SRCNN, FSRCNN, FSRCNN-s, ESPCN: shapes, gradients, parameter counts, state-dict round trip, receptive field."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from srkit.archs.classic import (
    ESPCN_SPEC,
    FSRCNN_S_SPEC,
    FSRCNN_SPEC,
    SRCNN_SPEC,
    build_srcnn,
    detect_classic,
    preupsampling_receptive_field,
)
from srkit.archs.probe import measure_receptive_field

SPECS = {"srcnn": SRCNN_SPEC, "fsrcnn": FSRCNN_SPEC, "fsrcnn-s": FSRCNN_S_SPEC, "espcn": ESPCN_SPEC}
CASES = [(name, s) for name, spec in SPECS.items() for s in spec.scales]
FIRST_WEIGHT = {"srcnn": "conv1.weight", "fsrcnn": "first_part.0.weight", "fsrcnn-s": "first_part.0.weight",
                "espcn": "first_part.0.weight"}


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
    m = spec.build(scale).eval()
    x = torch.rand(2, spec.in_channels, 17, 23)
    if spec.size_multiple > 1:
        x = F.pad(x, (0, (-23) % spec.size_multiple, 0, (-17) % spec.size_multiple), mode="reflect")
    with torch.no_grad():
        y = m(x)[..., : 17 * scale, : 23 * scale]
    assert y.shape == (2, spec.out_channels, 17 * scale, 23 * scale)
    assert torch.isfinite(y).all()
    assert m.scale == scale


@pytest.mark.parametrize("name", SPECS)
def test_gradient_reaches_first_layer(name):
    spec = SPECS[name]
    torch.manual_seed(0)
    m = spec.build(4)
    y = m(torch.rand(1, spec.in_channels, 12, 12))
    y.square().mean().backward()
    g = dict(m.named_parameters())[FIRST_WEIGHT[name]].grad
    assert g is not None and g.abs().sum() > 0


def _count(m) -> int:
    return sum(p.numel() for p in m.parameters())


def _filter_weights(m) -> int:
    # The FSRCNN paper counts only filter weights (no biases, no PReLU slopes).
    return sum(p.numel() for n, p in m.named_parameters() if n.endswith("weight") and p.ndim == 4)


def test_parameter_counts():
    # SRCNN (Y): 9*9*64 + 64 + 5*5*64*32 + 32 + 5*5*32 + 1; the paper's 9-1-5 base model has 8,129.
    assert _count(SRCNN_SPEC.build(3)) == pytest.approx(57_281, rel=0.01)
    assert _count(build_srcnn(3, kernels=(9, 1, 5))) == pytest.approx(8_129, rel=0.01)
    # FSRCNN paper, Table 1 / Sec. 3.3: 12,464 (56, 12, 4) and 3,937 (32, 5, 1) weights at every scale.
    for s in (2, 3, 4):
        assert _filter_weights(FSRCNN_SPEC.build(s)) == pytest.approx(12_464, rel=0.01)
        assert _filter_weights(FSRCNN_S_SPEC.build(s)) == pytest.approx(3_937, rel=0.01)
    # ESPCN 5-3-3 with 64/32 maps: 21.3K (x2), 22.7K (x3), 24.8K (x4).
    for s, n in ((2, 21_284), (3, 22_729), (4, 24_752)):
        assert _count(ESPCN_SPEC.build(s)) == pytest.approx(n, rel=0.01)


@pytest.mark.parametrize("name,scale", CASES)
def test_state_dict_round_trip(name, scale):
    spec = SPECS[name]
    torch.manual_seed(1)
    m = spec.build(scale).eval()
    with torch.no_grad():
        for p in m.parameters():
            p.normal_(0, 0.05)
    sd = m.state_dict()
    found = detect_classic(sd)
    assert found is not None
    arch, found_scale, options = found
    assert arch == name
    # ESPCN's scale is in its shapes; SRCNN's and FSRCNN's is not (the caller must give it).
    assert found_scale == (scale if name == "espcn" else None)
    m2 = spec.build(scale, **options).eval()
    m2.load_state_dict(sd, strict=True)
    x = torch.rand(1, spec.in_channels, 9, 11)
    with torch.no_grad():
        assert torch.equal(m(x), m2(x))


def test_detect_variants_and_rejects():
    sd = build_srcnn(2, kernels=(9, 1, 5)).state_dict()
    assert detect_classic(sd) == ("srcnn", None, {"num_channels": 1, "kernels": (9, 1, 5), "filters": (64, 32)})
    sd = FSRCNN_SPEC.build(3, d=48, s=16, m=2, num_channels=3).state_dict()
    assert detect_classic(sd) == ("fsrcnn", None, {"num_channels": 3, "d": 48, "s": 16, "m": 2})
    assert detect_classic({"conv1.weight": torch.zeros(1)}) is None
    assert detect_classic({"head.0.weight": torch.zeros(64, 3, 3, 3)}) is None


def test_official_key_names():
    assert {"conv1.weight", "conv1.bias", "conv2.weight", "conv3.bias"} <= set(SRCNN_SPEC.build(3).state_dict())
    keys = set(FSRCNN_SPEC.build(3).state_dict())
    assert {"first_part.0.weight", "first_part.1.weight", "mid_part.0.weight", "mid_part.11.weight",
            "last_part.weight", "last_part.bias"} <= keys
    assert FSRCNN_SPEC.build(3).state_dict()["last_part.weight"].shape == (56, 1, 9, 9)
    keys = set(ESPCN_SPEC.build(3).state_dict())
    assert keys == {"first_part.0.weight", "first_part.0.bias", "first_part.2.weight", "first_part.2.bias",
                    "last_part.0.weight", "last_part.0.bias"}


@pytest.mark.parametrize("name", SPECS)
def test_receptive_field_matches_probe_at_default_scale(name):
    spec = SPECS[name]
    declared = _rf(spec, {"scale": 4})
    m = spec.build(4)
    assert measure_receptive_field(m, 4, spec.in_channels, limit=declared + 3) == declared


@pytest.mark.parametrize("name,scale", CASES)
def test_receptive_field_is_worst_case_over_output_phases(name, scale):
    # The declared value must cover every output pixel of an LR pixel, not only the centre one the probe
    # uses (they differ by one at x3, where the centre pixel is the middle sub-pixel).
    spec = SPECS[name]
    declared = _rf(spec, {"scale": scale})
    m = spec.build(scale)
    assert _union_reach(m, scale, spec.in_channels, declared + 3) == declared
    assert measure_receptive_field(m, scale, spec.in_channels, limit=declared + 3) <= declared


def test_receptive_field_depends_on_options():
    assert _rf(SRCNN_SPEC, {"scale": 3, "kernels": (9, 1, 5)}) == preupsampling_receptive_field(3, 6)
    m = build_srcnn(3, kernels=(9, 1, 5))
    declared = _rf(SRCNN_SPEC, {"scale": 3, "kernels": (9, 1, 5)})
    assert _union_reach(m, 3, 1, declared + 3) == declared
