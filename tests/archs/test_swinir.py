"""SwinIR (classical) and SwinIR-light."""

from __future__ import annotations

import re

import pytest
import torch

from helpers import randomise, run_padded
from srkit.archs.swinir import (
    SWINIR_LIGHT_SPEC,
    SWINIR_SPEC,
    WindowAttention,
    build_swinir,
    build_swinir_light,
    detect_swinir,
    shifted_window_mask,
)

# Small configurations for the per-scale tests; the default configurations are exercised separately.
SMALL = {"embed_dim": 24, "depths": (2, 2), "num_heads": (2, 3)}


def n_params(m: torch.nn.Module) -> int:
    return sum(p.numel() for p in m.parameters())


def n_bias_table(m: torch.nn.Module) -> int:
    return sum(p.numel() for k, p in m.named_parameters() if k.endswith("relative_position_bias_table"))


def official_like(sd: dict, train_size: int = 64, ws: int = 8) -> dict:
    """Add the `attn_mask` buffers the official code stores in every shifted (odd) block for its training
    patch size, as in the released checkpoints."""
    out = dict(sd)
    n_win = (train_size // ws) ** 2
    for k in sd:
        m = re.match(r"(layers\.\d+\.residual_group\.blocks\.(\d+)\.)attn\.relative_position_index$", k)
        if m and int(m.group(2)) % 2 == 1:
            out[m.group(1) + "attn_mask"] = torch.zeros(n_win, ws * ws, ws * ws)
    return out


@pytest.mark.parametrize("scale", SWINIR_SPEC.scales)
def test_swinir_shape_small(scale):
    torch.manual_seed(0)
    m = build_swinir(scale, **SMALL).eval()
    x = torch.rand(2, 3, 17, 23)
    with torch.no_grad():
        y = run_padded(m, x, scale, SWINIR_SPEC.size_multiple)
        y_raw = m(x)  # the module pads to the window size itself
    assert y.shape == (2, 3, 17 * scale, 23 * scale) and torch.isfinite(y).all()
    assert torch.equal(y, y_raw)


@pytest.fixture(scope="module")
def default_swinir():
    # Built once: the full-size model is the slow part of this file.
    torch.manual_seed(0)
    return build_swinir(4).eval()


def test_swinir_default_forward(default_swinir):
    with torch.no_grad():
        y = run_padded(default_swinir, torch.rand(1, 3, 17, 23), 4, 8)  # padded to 24x24
    assert y.shape == (1, 3, 68, 92) and torch.isfinite(y).all()


@pytest.mark.parametrize("scale", SWINIR_LIGHT_SPEC.scales)
def test_swinir_light_shape(scale):
    m = build_swinir_light(scale).eval()
    with torch.no_grad():
        y = run_padded(m, torch.rand(1, 3, 17, 23), scale, SWINIR_LIGHT_SPEC.size_multiple)
    assert y.shape == (1, 3, 17 * scale, 23 * scale) and torch.isfinite(y).all()


@pytest.mark.parametrize("build", [build_swinir, build_swinir_light])
def test_swinir_gradient(build):
    m = build(2, **SMALL)
    m(torch.rand(1, 3, 16, 16)).mean().backward()
    assert m.conv_first.weight.grad.abs().sum() > 0
    assert m.layers[0].residual_group.blocks[1].attn.relative_position_bias_table.grad.abs().sum() > 0


def test_swinir_params(default_swinir):
    m = default_swinir
    assert n_params(m) == 11_900_199  # paper: 11.9M
    assert abs(n_params(m) - 11.9e6) / 11.9e6 < 0.01


@pytest.mark.parametrize(("scale", "paper"), [(2, 878_000), (3, 886_000), (4, 897_000)])
def test_swinir_light_params(scale, paper):
    # The paper's lightweight counts leave out the relative-position bias tables (24 blocks x 225 x 6 heads).
    m = build_swinir_light(scale)
    assert n_bias_table(m) == 32_400
    assert abs(n_params(m) - n_bias_table(m) - paper) / paper < 0.001
    assert n_params(m) == {2: 910_152, 3: 918_267, 4: 929_628}[scale]


def test_swinir_keys(default_swinir):
    sd = default_swinir.state_dict()
    for k in ["conv_first.weight", "patch_embed.norm.weight", "patch_embed.norm.bias",
              "layers.0.residual_group.blocks.0.norm1.weight",
              "layers.0.residual_group.blocks.0.attn.relative_position_bias_table",
              "layers.0.residual_group.blocks.0.attn.relative_position_index",
              "layers.0.residual_group.blocks.1.attn.qkv.weight", "layers.0.residual_group.blocks.1.attn.qkv.bias",
              "layers.0.residual_group.blocks.1.attn.proj.weight", "layers.0.residual_group.blocks.1.norm2.bias",
              "layers.0.residual_group.blocks.1.mlp.fc1.weight", "layers.5.residual_group.blocks.5.mlp.fc2.bias",
              "layers.5.conv.weight", "norm.weight", "conv_after_body.weight", "conv_before_upsample.0.weight",
              "upsample.0.weight", "upsample.2.weight", "conv_last.weight"]:
        assert k in sd, k
    assert not any("attn_mask" in k for k in sd)
    assert "mean" not in sd
    assert sd["layers.0.residual_group.blocks.0.attn.relative_position_bias_table"].shape == (225, 6)
    assert sd["layers.0.residual_group.blocks.0.mlp.fc1.weight"].shape == (360, 180)
    assert sd["upsample.0.weight"].shape == (256, 64, 3, 3)
    light = build_swinir_light(3).state_dict()
    assert light["upsample.0.weight"].shape == (27, 60, 3, 3)
    assert "conv_before_upsample.0.weight" not in light and "conv_last.weight" not in light
    three = build_swinir(4, upsampler="nearest+conv", resi_connection="3conv", **SMALL).state_dict()
    for k in ["conv_after_body.0.weight", "conv_after_body.4.weight", "layers.1.conv.2.weight", "conv_up1.weight",
              "conv_up2.weight", "conv_hr.weight", "conv_last.weight"]:
        assert k in three, k


def test_relative_position_index():
    idx = build_swinir_light(2).layers[0].residual_group.blocks[0].attn.relative_position_index
    assert idx.shape == (64, 64) and idx.dtype == torch.int64
    # (dy + 7) * 15 + (dx + 7) for key offset (dy, dx) = query - key, as in Swin Transformer.
    assert idx[0, 0] == 7 * 15 + 7
    assert idx[0, 63] == 0 and idx[63, 0] == 224
    assert idx[9, 0] == (1 + 7) * 15 + (1 + 7)


def test_shifted_window_mask():
    m = shifted_window_mask(16, 24, 8, 4)
    assert m.shape == (6, 64, 64)
    assert set(m.unique().tolist()) == {0.0, -100.0}
    assert (m[0] == 0).all()  # interior window: no wrapped-around tokens
    # The last window mixes four regions: a token in its top-left quarter only sees its own quarter.
    last = m[-1].view(8, 8, 8, 8)
    assert (last[0, 0, :4, :4] == 0).all() and (last[0, 0, 4:, :] == -100).all()


def test_window_attention_matches_explicit_softmax():
    torch.manual_seed(0)
    attn = randomise(WindowAttention(12, 4, 3))
    x = torch.randn(2, 4, 16, 12)
    mask = shifted_window_mask(8, 8, 4, 2)
    b, nw, n, c = x.shape
    qkv = attn.qkv(x).view(b, nw, n, 3, 3, 4).permute(3, 0, 1, 4, 2, 5)
    q, k, v = qkv[0] * 4 ** -0.5, qkv[1], qkv[2]
    bias = attn.relative_position_bias_table[attn.relative_position_index.view(-1)].view(n, n, 3).permute(2, 0, 1)
    a = (q @ k.transpose(-2, -1) + bias + mask.unsqueeze(1)).softmax(-1)
    ref = attn.proj((a @ v).transpose(2, 3).reshape(b, nw, n, c))
    with torch.no_grad():
        assert torch.allclose(attn(x, mask), ref, atol=1e-5)


def _roundtrip(m, scale, name):
    sd = m.state_dict()
    det = detect_swinir(official_like(sd))
    assert det is not None and det[:2] == (name, scale)
    m2 = (build_swinir_light if det[0] == "swinir-light" else build_swinir)(det[1], **det[2]).eval()
    m2.load_state_dict(official_like(sd), strict=True)  # official checkpoints carry attn_mask buffers
    x = torch.rand(1, 3, 16, 24)
    with torch.no_grad():
        assert torch.equal(m(x), m2(x))
    return det


def test_swinir_roundtrip_default(default_swinir):
    # Detection and strict loading at full size (outputs are compared on the smaller variants below).
    sd = default_swinir.state_dict()
    det = detect_swinir(official_like(sd))
    assert det == ("swinir", 4, {"in_chans": 3, "embed_dim": 180, "depths": (6,) * 6, "num_heads": (6,) * 6,
                                 "window_size": 8, "mlp_ratio": 2.0, "qkv_bias": True, "img_range": 1.0,
                                 "upsampler": "pixelshuffle", "resi_connection": "1conv", "num_feat": 64})
    m2 = build_swinir(det[1], **det[2])
    m2.load_state_dict(official_like(sd), strict=True)
    sd2 = m2.state_dict()
    assert sd2.keys() == sd.keys() and all(torch.equal(sd2[k], sd[k]) for k in sd)


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_swinir_light_roundtrip(scale):
    det = _roundtrip(randomise(build_swinir_light(scale, depths=(2, 2, 2), num_heads=(6, 3, 2))), scale,
                     "swinir-light")
    assert det[2]["upsampler"] == "pixelshuffledirect" and det[2]["num_heads"] == (6, 3, 2)
    assert det[2]["embed_dim"] == 60 and det[2]["depths"] == (2, 2, 2)


@pytest.mark.parametrize(("scale", "kw"), [(3, {}), (8, {}), (2, {"window_size": 4, "mlp_ratio": 4.0}),
                                           (4, {"upsampler": "nearest+conv", "resi_connection": "3conv"})])
def test_swinir_roundtrip_variants(scale, kw):
    det = _roundtrip(randomise(build_swinir(scale, **SMALL, **kw)), scale, "swinir")
    for k, v in kw.items():
        assert det[2][k] == v


def test_swinir_any_window_multiple_size():
    m = randomise(build_swinir(2, **SMALL))
    with torch.no_grad():
        for h, w in [(8, 8), (16, 40), (32, 8)]:
            y = m(torch.rand(1, 3, h, w))
            assert y.shape == (1, 3, 2 * h, 2 * w) and torch.isfinite(y).all()


def test_swinir_detect_rejects_others():
    sd = build_swinir(2, **SMALL).state_dict()
    denoise = {k: v for k, v in sd.items() if not k.startswith(("conv_before_upsample", "upsample", "conv_last"))}
    denoise["conv_last.weight"] = torch.zeros(3, 24, 3, 3)
    assert detect_swinir(denoise) is None
    assert detect_swinir({"conv_first.weight": torch.zeros(64, 3, 3, 3)}) is None


def test_swinir_matches_spandrel():
    spandrel = pytest.importorskip("spandrel")
    for m, shape in [(randomise(build_swinir(3, **SMALL)), (1, 3, 16, 24)),
                     (randomise(build_swinir_light(4, depths=(2, 2), num_heads=(6, 6))), (1, 3, 24, 16))]:
        desc = spandrel.ModelLoader().load_from_state_dict(official_like(m.state_dict()))
        x = torch.rand(*shape)
        with torch.no_grad():
            assert torch.allclose(m(x), desc.model.eval()(x), atol=1e-5)


def test_swinir_bf16_close():
    m = randomise(build_swinir_light(2, depths=(2, 2), num_heads=(6, 6)))
    x = torch.rand(1, 3, 16, 16)
    with torch.no_grad():
        ref = m(x)
        y = m.to(torch.bfloat16)(x.to(torch.bfloat16)).float()
    assert (y - ref).abs().max() < 0.1


def test_swinir_specs():
    for spec in (SWINIR_SPEC, SWINIR_LIGHT_SPEC):
        assert spec.family == "swinir" and spec.kind == "generator"
        assert spec.receptive_field is None and spec.size_multiple == 8
        assert "bf16" in spec.safe_dtypes and "fp16" not in spec.safe_dtypes
        assert set(spec.scales) >= {2, 3, 4}
    assert SWINIR_SPEC.build is build_swinir and SWINIR_LIGHT_SPEC.build is build_swinir_light
