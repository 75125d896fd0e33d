"""SAFMN (Sun, Dong, Tang, Pan, ICCV 2023): sizes, costs, the authors' key layout and checkpoint detection."""

from __future__ import annotations

import pytest
import torch
from helpers import randomise
from torch import nn

from srkit.archs import ARCHS, build
from srkit.archs.probe import measure_receptive_field
from srkit.archs.profile import describe
from srkit.archs.rlfn import build_rlfn
from srkit.archs.safmn import SAFMN_SPEC, build_safmn, detect_safmn
from srkit.archs.span import build_span
from srkit.errors import ConfigError, ModelLoadError
from srkit.models import load_model, model_from_state_dict

# The paper's comparison with lightweight SR methods (Table 1; FLOPs for a 1280x720 output):
# SAFMN x2: 228K params, 52G; x3: 233K, 23G; x4: 240K, 14G.
PAPER = {2: (228_000, 52e9), 3: (233_000, 23e9), 4: (240_000, 14e9)}


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def test_registered():
    assert ARCHS["safmn"] is SAFMN_SPEC
    assert SAFMN_SPEC.scales == (2, 3, 4)
    assert SAFMN_SPEC.license == "Apache-2.0" and SAFMN_SPEC.repo == "https://github.com/sunny2109/SAFMN"


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_param_counts_match_paper(scale):
    n = n_params(build("safmn", scale=scale).module)
    paper, _ = PAPER[scale]
    assert abs(n - paper) / paper < 0.01, n


def test_exact_param_counts():
    # 1008 (to_feat) + 8 x 27864 (FMMs) + to_img (3 s^2 x 36 x 9 + 3 s^2).
    assert n_params(build_safmn(2)) == 227_820
    assert n_params(build_safmn(3)) == 232_695
    assert n_params(build_safmn(4)) == 239_520
    # SAFMN-L (the repository's large model, options/test/SAFMN/test_L_benchmark_x4.yml).
    assert n_params(build_safmn(4, dim=128, n_blocks=16)) == 5_600_816


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_macs_match_paper(scale):
    d = describe(build("safmn", scale=scale))
    assert d["params"] == d["params_training_form"] == n_params(build_safmn(scale))
    # Conv MACs only (srkit's convention; layer norms, pooling, GELU and the gating product are not counted).
    _, paper_720p = PAPER[scale]
    assert abs(d["macs_720p_G"] * 1e9 - paper_720p) / paper_720p < 0.05, d["macs_720p_G"]
    if scale == 4:
        assert 14_600 < d["macs_per_output_pixel"] < 14_800  # measured 14 694.5 MACs per output pixel


def test_official_keys():
    sd = build_safmn(4).state_dict()
    for k in ("to_feat.weight", "to_feat.bias",
              "feats.0.norm1.weight", "feats.0.norm1.bias", "feats.0.norm2.weight", "feats.0.norm2.bias",
              "feats.0.safm.mfr.0.weight", "feats.0.safm.mfr.0.bias", "feats.0.safm.mfr.3.weight",
              "feats.0.safm.aggr.weight", "feats.0.safm.aggr.bias",
              "feats.0.ccm.ccm.0.weight", "feats.0.ccm.ccm.0.bias", "feats.0.ccm.ccm.2.weight",
              "feats.7.ccm.ccm.2.bias", "to_img.0.weight", "to_img.0.bias"):
        assert k in sd, k
    assert "feats.8.norm1.weight" not in sd
    assert len(sd) == 2 + 8 * 18 + 2
    assert sd["feats.0.safm.mfr.1.weight"].shape == (9, 1, 3, 3)  # depth-wise over a quarter of dim 36
    assert sd["feats.0.ccm.ccm.0.weight"].shape == (72, 36, 3, 3)
    assert sd["feats.0.ccm.ccm.2.weight"].shape == (36, 72, 1, 1)
    assert sd["to_img.0.weight"].shape == (48, 36, 3, 3)
    assert sd["feats.3.norm2.weight"].shape == (36,)


def test_matches_spandrel_port_of_the_official_code():
    # spandrel carries a port of sunny2109/SAFMN's safmn_arch.py: same keys, same function.
    spandrel = pytest.importorskip("spandrel")
    m = randomise(build_safmn(3), seed=4)
    desc = spandrel.ModelLoader().load_from_state_dict(m.state_dict())
    assert desc.architecture.id == "SAFMN" and desc.scale == 3
    ref = desc.model.eval()
    for shape in ((1, 3, 17, 23), (2, 3, 16, 24)):
        x = torch.rand(shape)
        with torch.no_grad():
            torch.testing.assert_close(m(x), ref(x), rtol=0, atol=0)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_forward_any_size(scale):
    torch.manual_seed(scale)
    m = build_safmn(scale).eval()
    with torch.no_grad():
        for b, h, w in ((1, 17, 23), (2, 9, 8), (1, 5, 3)):  # odd, not multiples of 8, below the 8px pool
            y = m(torch.rand(b, 3, h, w))
            assert y.shape == (b, 3, h * scale, w * scale)
            assert torch.isfinite(y).all()
    assert build("safmn", scale=scale).info.size_multiple == 1


def test_gradients_reach_every_parameter():
    m = randomise(build_safmn(2, dim=16, n_blocks=2)).train()
    m(torch.rand(1, 3, 16, 16)).mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_receptive_field_is_whole_image():
    # The pyramid levels pool over grids tied to the image extent.
    assert SAFMN_SPEC.receptive_field is None
    assert measure_receptive_field(build_safmn(2, n_blocks=2), 2, 3, limit=12) is None


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_state_dict_round_trip(scale):
    m = randomise(build_safmn(scale), seed=scale)
    sd = m.state_dict()
    assert detect_safmn(sd) == ("safmn", scale, {"dim": 36, "n_blocks": 8, "ffn_scale": 2.0})
    loaded = model_from_state_dict(sd)
    assert (loaded.info.arch, loaded.info.scale) == ("safmn", scale)
    assert loaded.info.options == {"dim": 36, "n_blocks": 8, "ffn_scale": 2.0}
    assert loaded.info.input_range == 1.0 and loaded.info.color_space == "rgb"
    x = torch.rand(1, 3, 13, 18)
    with torch.no_grad():
        assert torch.equal(loaded(x), m(x))


@pytest.mark.parametrize(
    ("options", "scale"),
    [
        ({"dim": 128, "n_blocks": 16, "ffn_scale": 2.0}, 4),  # SAFMN-L
        ({"dim": 24, "n_blocks": 3, "ffn_scale": 1.5}, 2),
        ({"dim": 20, "n_blocks": 2, "ffn_scale": 2.7}, 3),  # int(20 * 2.7) = 54: the hidden width rounds down
    ],
)
def test_variants_detected(options, scale):
    m = randomise(build_safmn(scale, **options), seed=1, std=0.02)
    arch, s, got = detect_safmn(m.state_dict())
    assert (arch, s, got["dim"], got["n_blocks"]) == ("safmn", scale, options["dim"], options["n_blocks"])
    assert int(got["dim"] * got["ffn_scale"]) == int(options["dim"] * options["ffn_scale"])
    loaded = model_from_state_dict(m.state_dict(), scale=scale)
    x = torch.rand(1, 3, 8, 11)
    with torch.no_grad():
        assert torch.equal(loaded(x), m(x))


def test_official_checkpoint_wrappers(tmp_path):
    # BasicSR saves {"params": ...} or {"params": ..., "params_ema": ...}; params_ema wins.
    ema = randomise(build_safmn(4), seed=7)
    raw = randomise(build_safmn(4), seed=8)
    path = tmp_path / "SAFMN_DF2K_x4.pth"
    torch.save({"params": raw.state_dict(), "params_ema": ema.state_dict()}, path)
    m = load_model(path)
    assert (m.info.arch, m.info.scale) == ("safmn", 4)
    x = torch.rand(1, 3, 12, 10)
    with torch.no_grad():
        assert torch.equal(m(x), ema(x))
    path2 = tmp_path / "SAFMN_DF2K_x2.pth"
    torch.save({"params": randomise(build_safmn(2)).state_dict()}, path2)
    assert load_model(path2).info.scale == 2


def test_bad_state_dicts_are_rejected():
    sd = randomise(build_safmn(2, dim=16, n_blocks=2)).state_dict()
    # A tensor missing from a later block.
    broken = {k: v for k, v in sd.items() if k != "feats.1.ccm.ccm.2.bias"}
    with pytest.raises(ModelLoadError):
        model_from_state_dict(broken)
    # A block whose mixer has another width than the first one.
    bad = dict(sd)
    bad["feats.1.ccm.ccm.0.weight"] = torch.zeros(24, 16, 3, 3)
    with pytest.raises(ModelLoadError):
        model_from_state_dict(bad)
    # Asked for another scale than the weights have.
    with pytest.raises(ModelLoadError, match="x2"):
        model_from_state_dict(sd, scale=4)
    # Nothing like any known layout.
    with pytest.raises(ModelLoadError):
        model_from_state_dict({"encoder.0.weight": torch.zeros(8, 3, 3, 3)})


def test_detector_rejects_other_layouts():
    assert detect_safmn(build_span(2).state_dict()) is None
    assert detect_safmn(build_rlfn(2).state_dict()) is None
    sd = build_safmn(2, dim=16, n_blocks=2).state_dict()
    # The NTIRE 2023 variant: a GRN (norm.gamma / norm.beta), no layer norms, bias-free block convs.
    ntire = {k: v for k, v in sd.items() if ".norm" not in k and not (k.startswith("feats.") and k.endswith(".bias"))}
    ntire["norm.gamma"] = torch.zeros(1, 16, 1, 1)
    ntire["norm.beta"] = torch.zeros(1, 16, 1, 1)
    assert detect_safmn(ntire) is None
    # Extra top-level modules, a non-RGB input, a SAFM with 2 levels, an x8 upsampler: not this layout.
    assert detect_safmn({**sd, "conv_after.weight": torch.zeros(1)}) is None
    gray = dict(sd)
    gray["to_feat.weight"] = torch.zeros(16, 1, 3, 3)
    assert detect_safmn(gray) is None
    two_levels = {k: v for k, v in sd.items() if not k.startswith(("feats.0.safm.mfr.2", "feats.0.safm.mfr.3"))}
    assert detect_safmn(two_levels) is None
    x8 = dict(sd)
    x8["to_img.0.weight"] = torch.zeros(3 * 64, 16, 3, 3)
    assert detect_safmn(x8) is None


def test_bad_options():
    with pytest.raises(ConfigError):
        build("safmn", scale=4, dim=30)  # not a multiple of the 4 SAFM groups
    with pytest.raises(ConfigError):
        build("safmn", scale=4, n_blocks=0)
    with pytest.raises(ConfigError, match="bad option"):
        build("safmn", scale=4, upscale=4)
