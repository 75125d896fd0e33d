"""ECBSR-ctrl-gated (`srkit.archs.conditioned.GatedECBSR`): strength 0 is the clean model exactly, the gate rises
with the levels, the restoration network is skipped when no image needs it, deploy / save / detection round trips,
and the per-part `model.init` that builds it from two shipped models."""

from __future__ import annotations

import pytest
import torch

from srkit.archs import ARCHS, build
from srkit.archs.conditioned import GatedECBSR, detect_conditioned
from srkit.archs.probe import count_macs
from srkit.deployment import deploy
from srkit.errors import ConfigError
from srkit.models import load_model, model_from_state_dict, save_model

from helpers import rand_model

SMALL = dict(module_nums=2, channel_nums=8, clean_module_nums=2, clean_channel_nums=6)


def small(deploy: bool = False):
    return rand_model("ecbsr-ctrl-gated", 4, **SMALL, deploy=deploy)


def clean_alone(m) -> torch.nn.Module:
    """The clean part as its own Y model, run the way srkit runs Y models (luma + MATLAB-bicubic chroma)."""
    from srkit.srmodel import SRModel

    info = build("ecbsr-m16c64", 4, module_nums=2, channel_nums=6, colors=1).info
    return SRModel(m.module.clean, info).eval()


def test_registered_with_its_inputs_and_a_frozen_clean_part():
    spec = ARCHS["ecbsr-ctrl-gated"]
    assert spec.family == "conditioned" and spec.inputs == ("noise", "jpeg")
    m = build("ecbsr-ctrl-gated", 4)
    assert m.info.receptive_field == 14 and m.info.name == "ecbsr-ctrl-m12c64-gated-m12c48"
    assert all(not p.requires_grad for p in m.module.clean.parameters())
    assert all(p.requires_grad for p in m.module.restore.parameters()) and m.module.gate_raw.requires_grad


def test_strength_zero_is_the_clean_model_exactly():
    m = small()
    x = torch.rand(2, 3, 11, 9)
    with torch.no_grad():
        assert torch.equal(m(x, noise=0.0, jpeg=100.0), clean_alone(m)(x))
        gray = torch.rand(1, 1, 8, 8)  # gray input: the SRModel's replicate-and-average path
        assert torch.allclose(m(gray, noise=0.0, jpeg=100.0), clean_alone(m)(gray.expand(-1, 3, -1, -1)).mean(
            1, keepdim=True), atol=1e-6)


def test_the_output_blends_the_two_networks_by_the_gate():
    m = small()
    x = torch.rand(2, 3, 9, 10)
    noise, jpeg = torch.tensor([3.0, 40.0]), torch.tensor([100.0, 20.0])
    with torch.no_grad():
        g = m.module.gate(x, noise, jpeg)
        clean = clean_alone(m)(x)
        restored = m.module.restore(x, noise=noise, jpeg=jpeg)
        assert torch.allclose(m(x, noise=noise, jpeg=jpeg), clean + g * (restored - clean), atol=1e-6)
    assert 0 < g[0].item() < g[1].item() <= 1


def test_the_gate_is_zero_only_at_no_damage_and_rises_with_each_level():
    m = small().module
    x = torch.zeros(1, 3, 4, 4)
    assert m.gate(x, 0.0, 100.0).item() == 0.0
    by_noise = [m.gate(x, s, 100.0).item() for s in (0.0, 1.0, 5.0, 20.0, 50.0)]
    by_jpeg = [m.gate(x, 0.0, q).item() for q in (100.0, 95.0, 70.0, 40.0, 10.0)]
    for seq in (by_noise, by_jpeg):
        assert all(a < b for a, b in zip(seq, seq[1:], strict=False))


def test_the_restoration_network_is_skipped_when_nothing_needs_cleaning(monkeypatch):
    m = small()
    calls = []
    forward = type(m.module.restore).forward
    monkeypatch.setattr(type(m.module.restore), "forward", lambda self, *a, **k: calls.append(1) or forward(
        self, *a, **k))
    x = torch.rand(2, 3, 8, 8)
    with torch.no_grad():
        m(x, noise=0.0, jpeg=100.0)
        assert calls == []
        m(x, noise=torch.tensor([0.0, 5.0]), jpeg=torch.tensor([100.0, 100.0]))
        assert calls == [1]
    macs_clean = count_macs(m.module.clean, (1, 1, 16, 16))
    macs_all = macs_clean + count_macs(m.module.restore, (1, 3, 16, 16))
    assert macs_clean < macs_all


def test_deploy_save_load_and_detection_round_trip(tmp_path):
    m = small()
    d = deploy(m)
    x = torch.rand(1, 3, 9, 8)
    with torch.no_grad():
        assert torch.allclose(d(x, noise=12.0, jpeg=50.0), m(x, noise=12.0, jpeg=50.0), atol=1e-5)
    for model in (m, d):
        back = load_model(save_model(model, tmp_path / f"g{len(model.state_dict())}.safetensors"))
        assert back.info == model.info
        found = model_from_state_dict(model.module.state_dict())  # no metadata: recognised by its keys
        assert found.info.arch == "ecbsr-ctrl-gated" and found.info.options["clean_channel_nums"] == 6
        with torch.no_grad():
            assert torch.equal(back(x, noise=7.0, jpeg=80.0), model(x, noise=7.0, jpeg=80.0))
            assert torch.equal(found(x, noise=7.0, jpeg=80.0), model(x, noise=7.0, jpeg=80.0))
    sd = m.module.state_dict()
    assert detect_conditioned({k: v for k, v in sd.items() if k != "gate_raw"}) is None
    assert detect_conditioned({**sd, "extra": torch.zeros(1)}) is None


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="colors"):
        GatedECBSR(colors=2)
    with pytest.raises(ConfigError, match="gate_gain"):
        GatedECBSR(gate_gain=0.0)


def test_init_per_part_from_two_models(tmp_path):
    from srkit.train.loop import _load_init

    clean = rand_model("ecbsr-m16c64", 4, module_nums=2, channel_nums=6, colors=1, deploy=True)
    ctrl = rand_model("ecbsr-ctrl", 4, module_nums=2, channel_nums=8, deploy=True)
    blind = rand_model("ecbsr-m16c64", 4, module_nums=2, channel_nums=8, colors=3, deploy=True)
    paths = {n: save_model(mm, tmp_path / f"{n}.safetensors") for n, mm in
             (("clean", clean), ("ctrl", ctrl), ("blind", blind))}
    m = build("ecbsr-ctrl-gated", 4, **SMALL, deploy=True)
    _load_init(m, {"clean": str(paths["clean"]), "restore": str(paths["ctrl"])})
    x = torch.rand(1, 3, 8, 8)
    with torch.no_grad():
        assert torch.equal(m.module.restore(x, noise=5.0, jpeg=90.0), ctrl(x, noise=5.0, jpeg=90.0))
        assert torch.equal(m.eval()(x, noise=0.0, jpeg=100.0), clean(x))
    _load_init(m, {"restore": str(paths["blind"])})  # a part also starts from its blind counterpart
    with torch.no_grad():
        assert torch.allclose(m.module.restore(x, noise=30.0, jpeg=20.0), blind(x), atol=1e-6)
    with pytest.raises(ConfigError, match="'body' is not a part of GatedECBSR") as e:
        _load_init(m, {"body": str(paths["clean"])})
    assert "\n" not in str(e.value)
    with pytest.raises(ConfigError, match="not the network this config builds"):
        _load_init(m, {"clean": str(paths["ctrl"])})
