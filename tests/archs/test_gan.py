"""GAN generators (RRDBNet, SRVGGNetCompact) and discriminators (VGG-style, U-Net SN)."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from srkit.archs.discriminators import (
    UNET_DISCRIMINATOR_SPEC,
    VGG_DISCRIMINATOR_SPEC,
    build_unet_discriminator,
    build_vgg_discriminator,
)
from srkit.archs.probe import measure_receptive_field
from srkit.archs.rrdbnet import (
    RRDBNET_SPEC,
    build_rrdbnet,
    convert_old_esrgan_state_dict,
    detect_rrdbnet,
    rrdbnet_receptive_field,
)
from srkit.archs.srvgg import SRVGG_COMPACT_SPEC, build_srvggnet_compact, detect_srvgg
from helpers import randomise, run_padded

SMALL_RRDB = {"num_feat": 16, "num_block": 2, "num_grow_ch": 8}


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


# --------------------------------------------------------------------------------------------------- RRDBNet


@pytest.mark.parametrize("scale", RRDBNET_SPEC.scales)
def test_rrdbnet_shape(scale):
    torch.manual_seed(0)
    m = build_rrdbnet(scale, **SMALL_RRDB).eval()
    x = torch.rand(2, 3, 17, 23)
    with torch.no_grad():
        y = run_padded(m, x, scale, RRDBNET_SPEC.size_multiple)
        y_raw = m(x)  # the module pads for its pixel-unshuffle itself
    assert y.shape == (2, 3, 17 * scale, 23 * scale)
    assert torch.isfinite(y).all()
    assert torch.equal(y, y_raw)


def test_rrdbnet_default_forward():
    m = build_rrdbnet(4).eval()
    with torch.no_grad():
        y = m(torch.rand(1, 3, 17, 23))
    assert y.shape == (1, 3, 68, 92) and torch.isfinite(y).all()


def test_rrdbnet_pad_matches_realesrganer():
    # x2 on an odd size = reflect-pad bottom/right by one, run, crop (RealESRGANer.pre_process / post_process).
    m = randomise(build_rrdbnet(2, **SMALL_RRDB))
    x = torch.rand(1, 3, 9, 11)
    with torch.no_grad():
        ref = m(F.pad(x, (0, 1, 0, 1), mode="reflect"))[..., :18, :22]
        assert torch.equal(m(x), ref)


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_rrdbnet_gradient(scale):
    m = build_rrdbnet(scale, **SMALL_RRDB)
    m(torch.rand(1, 3, 8, 8)).mean().backward()
    assert m.conv_first.weight.grad is not None and m.conv_first.weight.grad.abs().sum() > 0


def test_rrdbnet_params():
    assert n_params(build_rrdbnet(4)) == 16_697_987  # ESRGAN / RealESRGAN_x4plus: 16.7M
    assert abs(n_params(build_rrdbnet(4)) - 16.7e6) / 16.7e6 < 0.01
    # x2 only widens conv_first from 3 to 12 input channels.
    assert n_params(build_rrdbnet(2)) == 16_697_987 + 9 * 64 * 9


def test_rrdbnet_keys():
    sd = build_rrdbnet(4).state_dict()
    for k in ["conv_first.weight", "body.0.rdb1.conv1.weight", "body.0.rdb1.conv5.bias",
              "body.22.rdb3.conv5.weight", "conv_body.weight", "conv_up1.weight", "conv_up2.bias",
              "conv_hr.weight", "conv_last.weight"]:
        assert k in sd, k
    assert "body.23.rdb1.conv1.weight" not in sd
    assert sd["conv_last.weight"].shape == (3, 64, 3, 3)
    assert build_rrdbnet(2).state_dict()["conv_first.weight"].shape == (64, 12, 3, 3)
    assert build_rrdbnet(1).state_dict()["conv_first.weight"].shape == (64, 48, 3, 3)


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_rrdbnet_roundtrip(scale):
    m = randomise(build_rrdbnet(scale, **SMALL_RRDB), seed=scale)
    sd = m.state_dict()
    det = detect_rrdbnet(sd)
    assert det == ("rrdbnet", scale, {"num_in_ch": 3, "num_out_ch": 3, **SMALL_RRDB})
    m2 = build_rrdbnet(det[1], **det[2]).eval()
    m2.load_state_dict(sd, strict=True)
    x = torch.rand(1, 3, 12, 16)
    with torch.no_grad():
        assert torch.equal(m(x), m2(x))


def test_rrdbnet_detect_default():
    assert detect_rrdbnet(build_rrdbnet(4).state_dict()) == (
        "rrdbnet", 4, {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_block": 23, "num_grow_ch": 32})


def _old_esrgan_layout(sd: dict, num_block: int) -> dict:
    """The original ESRGAN flattened-Sequential layout, written out by hand from ESRGAN's architecture.py:
    model = [conv_first, ShortcutBlock(sub=[RRDB..., conv]), Upsample, conv, LReLU, Upsample, conv, LReLU,
    conv_hr, LReLU, conv_last]; every conv of an RDB is conv_block -> Sequential(conv) -> `.0`."""
    top = {"conv_first": "model.0", "conv_body": f"model.1.sub.{num_block}", "conv_up1": "model.3",
           "conv_up2": "model.6", "conv_hr": "model.8", "conv_last": "model.10"}
    out = {}
    for k, v in sd.items():
        parts = k.split(".")
        if parts[0] == "body":
            n, rdb, conv, kind = parts[1], parts[2][3:], parts[3], parts[4]
            out[f"model.1.sub.{n}.RDB{rdb}.{conv}.0.{kind}"] = v
        else:
            out[f"{top[parts[0]]}.{parts[1]}"] = v
    return out


def _mid_esrgan_layout(sd: dict) -> dict:
    """The later xinntao/ESRGAN RRDBNet_arch.py (and BSRGAN) names."""
    top = {"conv_first": "conv_first", "conv_body": "trunk_conv", "conv_up1": "upconv1", "conv_up2": "upconv2",
           "conv_hr": "HRconv", "conv_last": "conv_last"}
    out = {}
    for k, v in sd.items():
        parts = k.split(".")
        if parts[0] == "body":
            out[f"RRDB_trunk.{parts[1]}.RDB{parts[2][3:]}.{parts[3]}.{parts[4]}"] = v
        else:
            out[f"{top[parts[0]]}.{parts[1]}"] = v
    return out


@pytest.mark.parametrize("layout", [_old_esrgan_layout, _mid_esrgan_layout])
def test_rrdbnet_old_layouts(layout):
    m = randomise(build_rrdbnet(4, **SMALL_RRDB))
    sd = m.state_dict()
    old = layout(sd, SMALL_RRDB["num_block"]) if layout is _old_esrgan_layout else layout(sd)
    assert "body.0.rdb1.conv1.weight" not in old
    conv = convert_old_esrgan_state_dict(old)
    assert conv.keys() == sd.keys() and all(torch.equal(conv[k], sd[k]) for k in sd)
    det = detect_rrdbnet(old)
    assert det == ("rrdbnet", 4, {"num_in_ch": 3, "num_out_ch": 3, **SMALL_RRDB})
    m2 = build_rrdbnet(det[1], **det[2]).eval()
    m2.load_state_dict(old, strict=True)  # the module converts old layouts while loading
    assert "model.0.weight" in old or "RRDB_trunk.0.RDB1.conv1.weight" in old  # caller's dict untouched
    x = torch.rand(1, 3, 10, 12)
    with torch.no_grad():
        assert torch.equal(m(x), m2(x))


def test_rrdbnet_old_layout_other_stage_count_rejected():
    # Original ESRGAN x8 (three x2 stages) has no counterpart in the two-stage RRDBNet.
    sd = _old_esrgan_layout(build_rrdbnet(4, **SMALL_RRDB).state_dict(), 2)
    sd["model.13.weight"], sd["model.13.bias"] = sd.pop("model.10.weight"), sd.pop("model.10.bias")
    sd["model.11.weight"], sd["model.11.bias"] = sd.pop("model.8.weight"), sd.pop("model.8.bias")
    sd["model.9.weight"], sd["model.9.bias"] = sd["model.6.weight"], sd["model.6.bias"]
    assert detect_rrdbnet(sd) is None


def test_rrdbnet_matches_spandrel():
    spandrel = pytest.importorskip("spandrel")
    m = randomise(build_rrdbnet(2, num_feat=16, num_block=2))
    desc = spandrel.ModelLoader().load_from_state_dict(dict(m.state_dict()))
    x = torch.rand(1, 3, 12, 16)
    with torch.no_grad():
        assert torch.allclose(m(x), desc.model.eval()(x), atol=1e-6)


@pytest.mark.parametrize("scale", [1, 2, 4])
def test_rrdbnet_receptive_field(scale):
    opts = {"scale": scale, "num_block": 1}
    rf = rrdbnet_receptive_field(opts)
    m = build_rrdbnet(scale, num_feat=4, num_block=1, num_grow_ch=2)
    assert measure_receptive_field(m, scale, limit=rf + 6, multiple=4) == rf


def test_rrdbnet_receptive_field_default():
    assert RRDBNET_SPEC.receptive_field({"scale": 4}) == 348  # 23 RRDBs x 15 convs + 2 + HR convs
    assert RRDBNET_SPEC.receptive_field({"scale": 2}) == 697
    assert RRDBNET_SPEC.receptive_field({"scale": 1}) == 1394


def test_rrdbnet_spec():
    assert RRDBNET_SPEC.family == "rrdbnet" and RRDBNET_SPEC.kind == "generator"
    assert set(RRDBNET_SPEC.scales) >= {2, 4}
    assert RRDBNET_SPEC.build is build_rrdbnet


# --------------------------------------------------------------------------------------------------- SRVGG


@pytest.mark.parametrize("scale", SRVGG_COMPACT_SPEC.scales)
def test_srvgg_shape_and_gradient(scale):
    m = build_srvggnet_compact(scale)
    y = m(torch.rand(2, 3, 17, 23))
    assert y.shape == (2, 3, 17 * scale, 23 * scale) and torch.isfinite(y).all()
    y.mean().backward()
    assert m.body[0].weight.grad.abs().sum() > 0


def test_srvgg_params():
    assert n_params(build_srvggnet_compact(4)) == 621_424  # compact (animevideov3): ~0.6M
    assert n_params(build_srvggnet_compact(4, num_conv=32)) == 1_213_296  # realesr-general-x4v3: 1.21M
    assert abs(n_params(build_srvggnet_compact(4, num_conv=32)) - 1.21e6) / 1.21e6 < 0.01


def test_srvgg_keys():
    sd = build_srvggnet_compact(4).state_dict()
    assert sd["body.0.weight"].shape == (64, 3, 3, 3)
    assert sd["body.1.weight"].shape == (64,)  # PReLU
    assert sd["body.32.weight"].shape == (64, 64, 3, 3)
    assert sd["body.34.weight"].shape == (48, 64, 3, 3)  # 3 * 4 * 4
    assert "body.35.weight" not in sd and "body.1.bias" not in sd


@pytest.mark.parametrize(("scale", "num_conv"), [(4, 16), (2, 32), (3, 4)])
def test_srvgg_roundtrip(scale, num_conv):
    m = randomise(build_srvggnet_compact(scale, num_conv=num_conv))
    sd = m.state_dict()
    det = detect_srvgg(sd)
    assert det == ("srvggnet-compact", scale,
                   {"num_in_ch": 3, "num_out_ch": 3, "num_feat": 64, "num_conv": num_conv, "act_type": "prelu"})
    m2 = build_srvggnet_compact(det[1], **det[2]).eval()
    m2.load_state_dict(sd, strict=True)
    x = torch.rand(1, 3, 9, 13)
    with torch.no_grad():
        assert torch.equal(m(x), m2(x))


def test_srvgg_detect_rejects_others():
    assert detect_srvgg(build_srvggnet_compact(4, act_type="relu").state_dict()) is None
    assert detect_srvgg(build_rrdbnet(4, **SMALL_RRDB).state_dict()) is None
    assert detect_rrdbnet(build_srvggnet_compact(4).state_dict()) is None


def test_srvgg_receptive_field():
    m = build_srvggnet_compact(4, num_feat=8)
    rf = SRVGG_COMPACT_SPEC.receptive_field({})
    assert rf == 18
    assert measure_receptive_field(m, 4, limit=24) == rf


def test_srvgg_matches_spandrel():
    spandrel = pytest.importorskip("spandrel")
    m = randomise(build_srvggnet_compact(4, num_conv=4))
    desc = spandrel.ModelLoader().load_from_state_dict(dict(m.state_dict()))
    x = torch.rand(1, 3, 9, 13)
    with torch.no_grad():
        assert torch.allclose(m(x), desc.model.eval()(x), atol=1e-6)


# --------------------------------------------------------------------------------------------- discriminators


def test_unet_discriminator_shape_gradient():
    d = build_unet_discriminator()
    x = torch.rand(2, 3, 32, 48, requires_grad=True)
    y = d(x)
    assert y.shape == (2, 1, 32, 48) and torch.isfinite(y).all()
    y.mean().backward()
    assert d.conv0.weight.grad.abs().sum() > 0
    assert d.conv1.weight_orig.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        d(torch.rand(1, 3, 20, 24))


def test_unet_discriminator_params_and_keys():
    f = 64
    convs = (3 * f * 9 + f) + (f * 2 * f + 2 * f * 4 * f + 4 * f * 8 * f) * 16 \
        + (8 * f * 4 * f + 4 * f * 2 * f + 2 * f * f + f * f + f * f) * 9 + (f * 9 + 1)
    d = build_unet_discriminator()
    assert n_params(d) == convs == 4_376_897
    sd = d.state_dict()
    for k in ["conv0.weight", "conv0.bias", "conv1.weight_orig", "conv1.weight_u", "conv1.weight_v",
              "conv8.weight_orig", "conv9.weight", "conv9.bias"]:
        assert k in sd, k
    assert "conv1.weight" not in sd and "conv1.bias" not in sd
    assert sd["conv3.weight_orig"].shape == (512, 256, 4, 4)


def test_unet_discriminator_state_dict_roundtrip():
    d = randomise(build_unet_discriminator(num_feat=16))
    d2 = build_unet_discriminator(num_feat=16).eval()
    d2.load_state_dict(d.state_dict(), strict=True)
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        assert torch.equal(d(x), d2(x))


@pytest.mark.parametrize("size", [128, 256])
def test_vgg_discriminator_shape_gradient(size):
    d = build_vgg_discriminator(input_size=size)
    y = d(torch.rand(2, 3, size, size))
    assert y.shape == (2, 1) and torch.isfinite(y).all()
    y.mean().backward()
    assert d.conv0_0.weight.grad.abs().sum() > 0
    with pytest.raises(ValueError):
        d(torch.rand(2, 3, 64, 64))


def test_vgg_discriminator_params_and_keys():
    assert n_params(build_vgg_discriminator()) == 14_499_401
    assert n_params(build_vgg_discriminator(input_size=256)) == 21_055_049
    sd = build_vgg_discriminator().state_dict()
    for k in ["conv0_0.weight", "conv0_0.bias", "conv0_1.weight", "bn0_1.weight", "bn0_1.running_mean",
              "conv1_0.weight", "bn1_0.bias", "conv4_1.weight", "bn4_1.running_var", "linear1.weight",
              "linear2.bias"]:
        assert k in sd, k
    assert "conv0_1.bias" not in sd and "conv5_0.weight" not in sd
    assert sd["linear1.weight"].shape == (100, 512 * 4 * 4)
    assert "conv5_1.weight" in build_vgg_discriminator(input_size=256).state_dict()


def test_discriminator_specs():
    for spec in (UNET_DISCRIMINATOR_SPEC, VGG_DISCRIMINATOR_SPEC):
        assert spec.kind == "discriminator" and spec.scales == (1,)
        assert spec.in_channels == 3 and spec.out_channels == 1 and spec.family == "discriminators"
    assert UNET_DISCRIMINATOR_SPEC.size_multiple == 8
    with pytest.raises(ValueError):
        build_unet_discriminator(scale=4)


def test_discriminator_features_path_matches_forward():
    # forward_features (for discriminator feature matching) is the same network: logits equal forward's.
    for d, x in ((randomise(build_unet_discriminator(num_feat=8)), torch.rand(2, 3, 16, 24)),
                 (randomise(build_vgg_discriminator(num_feat=4)), torch.rand(2, 3, 128, 128))):
        with torch.no_grad():
            logits, feats = d.forward_features(x)
            assert torch.equal(logits, d(x))
        assert all(f.shape[0] == 2 and f.ndim == 4 for f in feats)
    assert [f.shape[1:] for f in feats] == [(4, 64, 64), (8, 32, 32), (16, 16, 16), (32, 8, 8), (32, 4, 4)]
