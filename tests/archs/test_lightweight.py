"""Lightweight architectures: IMDN and RLFN."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from srkit.archs.imdn import IMDN_SPEC, build_imdn, detect_imdn
from srkit.archs.probe import measure_receptive_field
from srkit.archs.rlfn import RLFN_SPEC, build_rlfn, detect_rlfn
from srkit.archs.span import build_span


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def randomise(m: nn.Module, seed: int = 0, std: float = 0.05) -> nn.Module:
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for p in m.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=p.dtype) * std)
    return m


SPECS = {"imdn": IMDN_SPEC, "rlfn": RLFN_SPEC}
DETECT = {"imdn": detect_imdn, "rlfn": detect_rlfn}
FIRST = {"imdn": "fea_conv", "rlfn": "conv_1"}


@pytest.mark.parametrize("name", list(SPECS))
def test_shapes_and_grad(name):
    spec = SPECS[name]
    for s in spec.scales:
        torch.manual_seed(s)
        m = spec.build(scale=s)
        y = m(torch.rand(1, 3, 17, 23))
        assert y.shape == (1, spec.out_channels, 17 * s, 23 * s)
        assert torch.isfinite(y).all()
    y.mean().backward()
    assert getattr(m, FIRST[name]).weight.grad.abs().sum() > 0


@pytest.mark.parametrize(
    ("name", "scale", "paper"),
    [("imdn", 2, 694_000), ("imdn", 3, 703_000), ("imdn", 4, 715_000), ("rlfn", 2, 527_000), ("rlfn", 4, 543_000)],
)
def test_param_counts(name, scale, paper):
    n = n_params(SPECS[name].build(scale=scale))
    assert abs(n - paper) / paper < 0.01, n


def test_exact_param_counts():
    # The counts of the authors' released checkpoints.
    assert n_params(build_imdn(4)) == 715_176
    assert n_params(build_rlfn(4)) == 543_740
    assert n_params(build_rlfn(4, feature_channels=46, mid_channels=48, num_blocks=4)) == 317_218  # NTIRE model


@pytest.mark.parametrize("name", list(SPECS))
def test_state_dict_round_trip(name):
    spec = SPECS[name]
    for s in spec.scales:
        m = randomise(spec.build(scale=s), seed=s)
        sd = m.state_dict()
        got = DETECT[name](sd)
        assert got is not None
        arch, scale, options = got
        assert (arch, scale) == (name, s)
        m2 = spec.build(scale=scale, **options)
        m2.load_state_dict(sd, strict=True)
        x = torch.rand(1, 3, 16, 17)
        assert torch.equal(m.eval()(x), m2.eval()(x))


def test_detect_options():
    _, _, o = detect_imdn(build_imdn(3).state_dict())
    assert o == {"in_nc": 3, "out_nc": 3, "nf": 64, "num_modules": 6, "distillation_rate": 0.25}
    _, _, o = detect_rlfn(build_rlfn(4).state_dict())
    assert o["feature_channels"] == 52 and o["num_blocks"] == 6 and o["esa_channels"] == 16
    assert o["rgb_range"] == 255.0  # the released weights work on 0..255
    # RLFN-S and the NTIRE pruned model are the same layout with other widths.
    ntire = randomise(build_rlfn(4, feature_channels=46, mid_channels=48, num_blocks=4), seed=9)
    arch, scale, o = detect_rlfn(ntire.state_dict())
    assert (arch, scale, o["feature_channels"], o["mid_channels"], o["num_blocks"]) == ("rlfn", 4, 46, 48, 4)
    m2 = build_rlfn(scale, **o)
    m2.load_state_dict(ntire.state_dict(), strict=True)
    small = build_imdn(2, nf=32, num_modules=3)
    arch, scale, o = detect_imdn(small.state_dict())
    assert (scale, o["nf"], o["num_modules"]) == (2, 32, 3)
    build_imdn(scale, **o).load_state_dict(small.state_dict(), strict=True)


def test_official_keys():
    sd = build_imdn(4).state_dict()
    for k in ("fea_conv.weight", "fea_conv.bias", "IMDB1.c1.weight", "IMDB1.c2.weight", "IMDB1.c3.weight",
              "IMDB1.c4.weight", "IMDB1.c5.weight", "IMDB1.cca.conv_du.0.weight", "IMDB6.cca.conv_du.2.bias",
              "c.0.weight", "c.0.bias", "LR_conv.weight", "upsampler.0.weight", "upsampler.0.bias"):
        assert k in sd, k
    assert sd["IMDB1.c4.weight"].shape == (16, 48, 3, 3)
    assert len(sd) == 92
    sd = build_rlfn(4).state_dict()
    for k in ("conv_1.weight", "block_1.c1_r.weight", "block_1.c2_r.bias", "block_1.c3_r.weight", "block_1.c5.weight",
              "block_1.esa.conv1.weight", "block_1.esa.conv_f.weight", "block_1.esa.conv2.weight",
              "block_1.esa.conv3.bias", "block_6.esa.conv4.weight", "conv_2.weight", "upsampler.0.weight"):
        assert k in sd, k
    assert len(sd) == 114


def test_receptive_field_is_whole_image():
    # IMDN: CCA pools over the image. RLFN: ESA's gate is resized to the image size.
    assert IMDN_SPEC.receptive_field is None
    assert RLFN_SPEC.receptive_field is None
    assert measure_receptive_field(build_imdn(2), 2, 3, limit=12) is None
    assert measure_receptive_field(build_rlfn(2), 2, 3, limit=12) is None


def test_detectors_reject_other_layouts():
    imdn, rlfn, span = build_imdn(2).state_dict(), build_rlfn(2).state_dict(), build_span(2).state_dict()
    assert detect_imdn(rlfn) is None and detect_imdn(span) is None
    assert detect_rlfn(imdn) is None and detect_rlfn(span) is None
    # IMDN_AS (fea_conv is a Sequential) is another layout.
    assert detect_imdn({("fea_conv.0." + k[len("fea_conv."):] if k.startswith("fea_conv.") else k): v
                        for k, v in imdn.items()}) is None
