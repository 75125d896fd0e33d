"""SMFANet (Zheng, Sun, Dong, Pan, ECCV 2024): sizes, costs, the authors' key layout and checkpoint detection."""

from __future__ import annotations

import json

import pytest
import torch
import torch.nn.functional as F
from helpers import randomise
from torch import nn

from srkit.archs import ARCHS, build
from srkit.archs.probe import measure_receptive_field
from srkit.archs.profile import describe
from srkit.archs.safmn import build_safmn, detect_safmn
from srkit.archs.smfanet import (
    SMFANET_PLUS_SPEC,
    SMFANET_SPEC,
    build_smfanet,
    build_smfanet_plus,
    detect_smfanet,
    spatial_variance,
)
from srkit.archs.span import build_span
from srkit.deployment import deploy
from srkit.errors import ConfigError, ModelLoadError
from srkit.infer import Upscaler
from srkit.models import load_model, model_from_state_dict, save_model

# The paper's Tables 1 and 2 (#Params, #FLOPs for a 1280x720 output; Set5 x4: SMFANet 32.25 dB, SMFANet+ 32.51 dB
# with DF2K training): SMFANet x2 186K 41G, x3 191K 19G, x4 197K 11G; SMFANet+ x2 480K 108G, x3 487K 48G, x4 496K
# 28G.
PAPER = {
    "smfanet": {2: (186_000, 41e9), 3: (191_000, 19e9), 4: (197_000, 11e9)},
    "smfanet-plus": {2: (480_000, 108e9), 3: (487_000, 48e9), 4: (496_000, 28e9)},
}
# fvcore (the counter of the repository's plt/main_flops.py) on the authors' SMFANet_arch.py at 1280x720 output:
# convolutions + nearest upsampling, measured once (GMACs). The paper's figures are 5-7% above these.
FVCORE_720P_G = {
    "smfanet": {2: 38.856, 3: 17.739, 4: 10.386},
    "smfanet-plus": {2: 101.277, 3: 45.604, 4: 26.214},
}
DEFAULTS = {"smfanet": {"dim": 36, "n_blocks": 8, "ffn_scale": 2.0},
            "smfanet-plus": {"dim": 48, "n_blocks": 12, "ffn_scale": 2.0}}
VARIANTS = [(arch, s) for arch in PAPER for s in (2, 3, 4)]


def n_params(m: nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def official_state_dict(scale: int, dim: int = 36, n_blocks: int = 8, hidden: int | None = None,
                        seed: int = 0) -> dict[str, torch.Tensor]:
    """Random weights under Zheng-MJ/SMFANet's key names and shapes (basicsr/archs/SMFANet_arch.py), written out
    here from that layout rather than taken from srkit's module."""
    hidden = 2 * dim if hidden is None else hidden
    part = hidden // 4
    shapes: dict[str, tuple[int, ...]] = {"to_feat.weight": (dim, 3, 3, 3), "to_feat.bias": (dim,)}
    for i in range(n_blocks):
        b = f"feats.{i}"
        shapes.update({
            f"{b}.smfa.alpha": (1, dim, 1, 1), f"{b}.smfa.belt": (1, dim, 1, 1),
            f"{b}.smfa.linear_0.weight": (2 * dim, dim, 1, 1), f"{b}.smfa.linear_0.bias": (2 * dim,),
            f"{b}.smfa.linear_1.weight": (dim, dim, 1, 1), f"{b}.smfa.linear_1.bias": (dim,),
            f"{b}.smfa.linear_2.weight": (dim, dim, 1, 1), f"{b}.smfa.linear_2.bias": (dim,),
            f"{b}.smfa.lde.conv_0.0.weight": (2 * dim, 1, 3, 3), f"{b}.smfa.lde.conv_0.0.bias": (2 * dim,),
            f"{b}.smfa.lde.conv_0.1.weight": (2 * dim, 2 * dim, 1, 1), f"{b}.smfa.lde.conv_0.1.bias": (2 * dim,),
            f"{b}.smfa.lde.conv_1.weight": (dim, 2 * dim, 1, 1), f"{b}.smfa.lde.conv_1.bias": (dim,),
            f"{b}.smfa.dw_conv.weight": (dim, 1, 3, 3), f"{b}.smfa.dw_conv.bias": (dim,),
            f"{b}.pcfn.conv_0.weight": (hidden, dim, 1, 1), f"{b}.pcfn.conv_0.bias": (hidden,),
            f"{b}.pcfn.conv_1.weight": (part, part, 3, 3), f"{b}.pcfn.conv_1.bias": (part,),
            f"{b}.pcfn.conv_2.weight": (dim, hidden, 1, 1), f"{b}.pcfn.conv_2.bias": (dim,),
        })
    shapes.update({"to_img.0.weight": (3 * scale * scale, dim, 3, 3), "to_img.0.bias": (3 * scale * scale,)})
    g = torch.Generator().manual_seed(seed)
    return {k: 0.1 * torch.randn(shape, generator=g) for k, shape in shapes.items()}


def reference_forward(sd: dict[str, torch.Tensor], x: torch.Tensor, scale: int) -> torch.Tensor:
    """SMFANet written as plain functional calls on the state dict (H, W >= 8, where the authors' code runs)."""
    dim = sd["to_feat.weight"].shape[0]

    def conv(t, key, groups=1):
        w = sd[f"{key}.weight"]
        return F.conv2d(t, w, sd[f"{key}.bias"], padding=w.shape[-1] // 2, groups=groups)

    shallow = conv(x, "to_feat")
    f = shallow
    i = 0
    while f"feats.{i}.smfa.alpha" in sd:
        b = f"feats.{i}"
        n = f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)
        y, z = conv(n, f"{b}.smfa.linear_0").chunk(2, dim=1)
        h, w = z.shape[-2:]
        s = conv(F.adaptive_max_pool2d(z, (h // 8, w // 8)), f"{b}.smfa.dw_conv", groups=dim)
        v = z.var(dim=(2, 3), keepdim=True)
        g = F.gelu(conv(s * sd[f"{b}.smfa.alpha"] + v * sd[f"{b}.smfa.belt"], f"{b}.smfa.linear_1"))
        local = conv(F.gelu(conv(conv(y, f"{b}.smfa.lde.conv_0.0", groups=dim), f"{b}.smfa.lde.conv_0.1")),
                     f"{b}.smfa.lde.conv_1")
        f = f + conv(z * F.interpolate(g, size=(h, w), mode="nearest") + local, f"{b}.smfa.linear_2")
        n = f / f.norm(dim=1, keepdim=True).clamp_min(1e-12)
        t = F.gelu(conv(n, f"{b}.pcfn.conv_0"))
        p = sd[f"{b}.pcfn.conv_1.weight"].shape[0]
        t = torch.cat([F.gelu(conv(t[:, :p], f"{b}.pcfn.conv_1")), t[:, p:]], dim=1)
        f = f + conv(t, f"{b}.pcfn.conv_2")
        i += 1
    return F.pixel_shuffle(conv(f + shallow, "to_img.0"), scale)


def test_registered():
    assert ARCHS["smfanet"] is SMFANET_SPEC and ARCHS["smfanet-plus"] is SMFANET_PLUS_SPEC
    for spec in (SMFANET_SPEC, SMFANET_PLUS_SPEC):
        assert spec.family == "smfanet" and spec.scales == (2, 3, 4)
        assert spec.license == "Apache-2.0" and spec.repo == "https://github.com/Zheng-MJ/SMFANet"
        assert spec.receptive_field is None and spec.size_multiple == 1
    m = build("smfanet", scale=4)
    assert m.info.input_range == 1.0 and m.info.color_space == "rgb"


@pytest.mark.parametrize(("arch", "scale"), VARIANTS)
def test_param_counts_match_paper(arch, scale):
    n = n_params(build(arch, scale=scale).module)
    paper, _ = PAPER[arch][scale]
    assert abs(n - paper) / paper < 0.01, n


def test_exact_param_counts():
    # 1008 (to_feat) + 8 x 22590 (FMB: SMFA 14364 + PCFN 8226) + to_img (3 s^2 x 36 x 9 + 3 s^2); the released
    # pretrain/SMFANet_*_x{2,3,4}SR.pth hold exactly these counts.
    assert n_params(build_smfanet(2)) == 185_628
    assert n_params(build_smfanet(3)) == 190_503
    assert n_params(build_smfanet(4)) == 197_328
    # SMFANet+: 1344 + 12 x 39480 (SMFA 24912 + PCFN 14568) + (3 s^2 x 48 x 9 + 3 s^2).
    assert n_params(build_smfanet_plus(2)) == 480_300
    assert n_params(build_smfanet_plus(3)) == 486_795
    assert n_params(build_smfanet_plus(4)) == 495_888


@pytest.mark.parametrize(("arch", "scale"), VARIANTS)
def test_macs(arch, scale):
    m = build(arch, scale=scale)
    d = describe(m)
    # Nothing to fold: costed as trained.
    assert d["params"] == d["params_training_form"] == n_params(m.module)
    got = d["macs_720p_G"]
    # srkit counts convolutions only; fvcore on the authors' module agrees within 0.5% (it adds the nearest
    # upsampling, and its 320x180 LR pools to a 40x22 grid where srkit's 32x32 probe pools exactly 1/64).
    assert abs(got - FVCORE_720P_G[arch][scale]) / FVCORE_720P_G[arch][scale] < 0.005, got
    _, paper = PAPER[arch][scale]
    assert abs(got * 1e9 - paper) / paper < 0.08, got


def test_x4_macs_per_output_pixel_within_the_issue_budget():
    # Issue 16 asks for <= 20K MACs per output pixel at x4 (and a published x4 Set5 >= 32.18 dB: 32.25).
    d = describe(build("smfanet", scale=4))
    assert 11_200 < d["macs_per_output_pixel"] < 11_300  # measured 11 251.4
    assert d["macs_per_output_pixel"] <= 20_000
    # SMFANet+ is the larger release, above that budget.
    assert describe(build("smfanet-plus", scale=4))["macs_per_output_pixel"] > 20_000


def test_official_keys():
    sd = build_smfanet(4).state_dict()
    ref = official_state_dict(4)
    assert set(sd) == set(ref)
    assert {k: tuple(v.shape) for k, v in sd.items()} == {k: tuple(v.shape) for k, v in ref.items()}
    assert len(sd) == 2 + 8 * 22 + 2
    plus = build_smfanet_plus(3).state_dict()
    assert {k: tuple(v.shape) for k, v in plus.items()} == {
        k: tuple(v.shape) for k, v in official_state_dict(3, dim=48, n_blocks=12).items()}


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_matches_functional_reference(scale):
    sd = official_state_dict(scale, dim=12, n_blocks=2, seed=scale)
    m = build_smfanet(scale, dim=12, n_blocks=2).eval()
    m.load_state_dict(sd, strict=True)
    for shape in ((1, 3, 17, 23), (2, 3, 16, 24), (1, 3, 8, 9)):
        x = torch.rand(shape)
        with torch.no_grad():
            torch.testing.assert_close(m(x), reference_forward(sd, x, scale), rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_forward_any_size(scale):
    torch.manual_seed(scale)
    m = randomise(build_smfanet(scale), seed=scale)
    with torch.no_grad():
        # odd, not multiples of 8, below the 8px pool (the authors' code stops there), a single pixel
        for b, h, w in ((1, 17, 23), (2, 9, 8), (1, 5, 3), (1, 1, 1), (1, 1, 12)):
            y = m(torch.rand(b, 3, h, w))
            assert y.shape == (b, 3, h * scale, w * scale)
            assert torch.isfinite(y).all()
    assert build("smfanet", scale=scale).info.size_multiple == 1


def test_spatial_variance():
    x = torch.rand(2, 5, 7, 6)
    torch.testing.assert_close(spatial_variance(x), x.flatten(2).var(dim=2, unbiased=True)[..., None, None])
    assert torch.equal(spatial_variance(torch.rand(1, 4, 1, 1)), torch.zeros(1, 4, 1, 1))
    half = x.to(torch.bfloat16)
    assert spatial_variance(half).dtype == torch.bfloat16


def test_batch_items_are_independent():
    # The variance and the pooling are per image: a batch gives what each image gives alone.
    m = randomise(build_smfanet(2, dim=16, n_blocks=2), seed=3)
    x = torch.rand(3, 3, 16, 20)
    with torch.no_grad():
        whole = m(x)
        for i in range(3):
            torch.testing.assert_close(whole[i:i + 1], m(x[i:i + 1]), rtol=1e-5, atol=1e-6)


def test_receptive_field_is_whole_image():
    # A per-channel variance over the whole image: a far pixel moves every output.
    assert measure_receptive_field(randomise(build_smfanet(2, n_blocks=2)), 2, 3, limit=12) is None
    m = randomise(build_smfanet(2, dim=16, n_blocks=1), seed=5)
    x = torch.rand(1, 3, 32, 32)
    x2 = x.clone()
    x2[..., 31, 31] += 0.5
    with torch.no_grad():
        assert (m(x2)[..., :4, :4] - m(x)[..., :4, :4]).abs().max() > 0


def test_gradients_reach_every_parameter():
    m = randomise(build_smfanet(2, dim=16, n_blocks=2)).train()
    m(torch.rand(1, 3, 16, 16)).mean().backward()
    for name, p in m.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_deploy_has_nothing_to_fold():
    m = build("smfanet", scale=2, n_blocks=2)
    randomise(m.module)
    d = deploy(m)
    assert d.module.state_dict().keys() == m.module.state_dict().keys()
    x = torch.rand(1, 3, 12, 16)
    with torch.no_grad():
        assert torch.equal(d(x), m(x))


@pytest.mark.parametrize(("arch", "scale"), VARIANTS)
def test_state_dict_round_trip(arch, scale):
    opts = DEFAULTS[arch]
    sd = official_state_dict(scale, dim=opts["dim"], n_blocks=opts["n_blocks"], seed=scale)
    assert detect_smfanet(sd) == (arch, scale, opts)
    loaded = model_from_state_dict(sd)
    assert (loaded.info.arch, loaded.info.scale, loaded.info.options) == (arch, scale, opts)
    assert loaded.info.input_range == 1.0 and loaded.info.color_space == "rgb"
    got = loaded.module.state_dict()
    assert all(torch.equal(got[k], v) for k, v in sd.items())
    # The SAFMN detector (same top-level names) does not claim it.
    assert detect_safmn(sd) is None


@pytest.mark.parametrize(
    ("options", "scale"),
    [
        ({"dim": 24, "n_blocks": 3, "ffn_scale": 1.5}, 2),
        ({"dim": 20, "n_blocks": 2, "ffn_scale": 2.7}, 3),  # int(20 * 2.7) = 54: the hidden width rounds down
        ({"dim": 48, "n_blocks": 12, "ffn_scale": 1.0}, 4),  # SMFANet+ width and depth, another FFN: "smfanet"
    ],
)
def test_variants_detected(options, scale):
    m = randomise(build_smfanet(scale, **options), seed=1, std=0.02)
    arch, s, got = detect_smfanet(m.state_dict())
    assert (arch, s, got["dim"], got["n_blocks"]) == ("smfanet", scale, options["dim"], options["n_blocks"])
    assert int(got["dim"] * got["ffn_scale"]) == int(options["dim"] * options["ffn_scale"])
    loaded = model_from_state_dict(m.state_dict(), scale=scale)
    x = torch.rand(1, 3, 8, 11)
    with torch.no_grad():
        assert torch.equal(loaded(x), m(x))


def test_official_checkpoint_wrappers(tmp_path):
    # BasicSR saves {"params": ...} (the released pretrain/*.pth) or {"params": ..., "params_ema": ...}.
    path = tmp_path / "SMFANet_DF2K_100w_x4SR.pth"
    sd = official_state_dict(4, seed=7)
    torch.save({"params": sd}, path)
    m = load_model(path)
    assert (m.info.arch, m.info.scale) == ("smfanet", 4)
    assert torch.equal(m.module.state_dict()["feats.3.smfa.belt"], sd["feats.3.smfa.belt"])
    ema = official_state_dict(3, dim=48, n_blocks=12, seed=8)
    path2 = tmp_path / "SMFANet_plus_DF2K_100w_x3SR.pth"
    torch.save({"params": official_state_dict(3, dim=48, n_blocks=12, seed=9), "params_ema": ema}, path2)
    m2 = load_model(path2)
    assert (m2.info.arch, m2.info.scale) == ("smfanet-plus", 3)
    assert torch.equal(m2.module.state_dict()["to_feat.weight"], ema["to_feat.weight"])


def test_srkit_info_on_saved_checkpoints(tmp_path, srkit_cli):
    official = tmp_path / "SMFANet_DIV2K_100w_x4SR.pth"
    torch.save({"params": official_state_dict(4, seed=2)}, official)
    m = build("smfanet-plus", scale=2, n_blocks=2)
    randomise(m.module)
    ours = save_model(m, tmp_path / "smfa.safetensors")
    for path, arch, scale, params in ((official, "smfanet", 4, 197_328), (ours, "smfanet-plus", 2, None)):
        r = srkit_cli("info", path, "--json")
        assert r.returncode == 0, r.stderr
        d = json.loads(r.stdout)
        assert (d["arch"], d["scale"], d["receptive_field"], d["size_multiple"]) == (arch, scale, None, 1)
        assert d["params"] == (params or n_params(m.module))
        if arch == "smfanet":
            assert d["macs_per_output_pixel"] <= 20_000


@pytest.mark.parametrize(("dtype", "tol"), [("bf16", 0.05), ("fp16", 0.01)])
def test_low_precision_and_channels_last(dtype, tol):
    torch.manual_seed(0)
    m = build("smfanet", scale=3, n_blocks=3)
    randomise(m.module, seed=4, std=0.02)
    x = torch.rand(1, 3, 19, 24)
    ref = Upscaler(m, dtype="fp32", channels_last=False).upscale_tensor(x)
    for cl in (True, False):
        up = Upscaler(m, dtype=dtype, channels_last=cl)
        assert up.settings()["dtype"] == dtype and up.settings()["channels_last"] == cl
        y = up.upscale_tensor(x)
        assert y.dtype == torch.float32 and torch.isfinite(y).all()
        assert (y - ref).abs().max().item() <= tol, (dtype, cl)
    # The bare module in bf16 weights and channels-last input, no autocast.
    net = randomise(build_smfanet(2, dim=16, n_blocks=2), seed=6)
    x = torch.rand(1, 3, 16, 18)
    with torch.no_grad():
        ref = net(x)
        low = net.to(torch.bfloat16).to(memory_format=torch.channels_last)
        y = low(x.to(torch.bfloat16).contiguous(memory_format=torch.channels_last)).float()
    assert (y - ref).abs().max().item() < 0.1


def test_bad_state_dicts_are_rejected():
    sd = official_state_dict(2, dim=16, n_blocks=2)
    # A tensor missing from a later block.
    broken = {k: v for k, v in sd.items() if k != "feats.1.pcfn.conv_2.bias"}
    with pytest.raises(ModelLoadError):
        model_from_state_dict(broken)
    # A block whose PCFN has another width than the first one.
    bad = dict(sd)
    bad["feats.1.pcfn.conv_0.weight"] = torch.zeros(24, 16, 1, 1)
    with pytest.raises(ModelLoadError):
        model_from_state_dict(bad)
    # Asked for another scale than the weights have.
    with pytest.raises(ModelLoadError, match="x2"):
        model_from_state_dict(sd, scale=4)


def test_detector_rejects_other_layouts():
    assert detect_smfanet(build_safmn(2).state_dict()) is None
    assert detect_smfanet(build_span(2).state_dict()) is None
    sd = official_state_dict(2, dim=16, n_blocks=2)
    # Extra top-level modules, a non-RGB input, an x8 upsampler, a gap in the blocks: not this layout.
    assert detect_smfanet({**sd, "conv_after.weight": torch.zeros(1)}) is None
    gray = dict(sd)
    gray["to_feat.weight"] = torch.zeros(16, 1, 3, 3)
    assert detect_smfanet(gray) is None
    x8 = dict(sd)
    x8["to_img.0.weight"] = torch.zeros(3 * 64, 16, 3, 3)
    assert detect_smfanet(x8) is None
    gap = {k.replace("feats.1.", "feats.2."): v for k, v in sd.items()}
    assert detect_smfanet(gap) is None
    # Partial conv over another share of the hidden width, LDE of another width.
    half = dict(sd)
    half["feats.0.pcfn.conv_1.weight"] = torch.zeros(16, 16, 3, 3)
    assert detect_smfanet(half) is None
    lde = dict(sd)
    lde["feats.0.smfa.lde.conv_0.0.weight"] = torch.zeros(48, 1, 3, 3)
    assert detect_smfanet(lde) is None


def test_bad_options():
    with pytest.raises(ConfigError):
        build("smfanet", scale=4, dim=0)
    with pytest.raises(ConfigError):
        build("smfanet", scale=4, n_blocks=0)
    with pytest.raises(ConfigError):
        build("smfanet-plus", scale=4, dim=2.5)
    with pytest.raises(ConfigError, match="partial conv"):
        build("smfanet", scale=4, dim=3, ffn_scale=1.0)  # 3 hidden channels: no quarter to convolve
    with pytest.raises(ConfigError, match="ffn_scale"):
        build("smfanet", scale=4, ffn_scale="wide")
    with pytest.raises(ConfigError, match="bad option"):
        build("smfanet", scale=4, upscale=4)
