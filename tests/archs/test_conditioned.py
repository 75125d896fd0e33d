"""ECBSR-ctrl (`srkit.archs.conditioned`): level maps, deploy equality, blind start, MAC budget, save/load, export."""

from __future__ import annotations

import copy

import pytest
import torch

from srkit.archs import ARCHS, FAMILIES, build
from srkit.archs.conditioned import ConditionedECBSR, level_maps
from srkit.archs.probe import count_macs
from srkit.deployment import deploy
from srkit.errors import ConfigError, ShapeError
from srkit.models import load_model, save_model

from helpers import rand_model

SMALL = dict(module_nums=2, channel_nums=8)


def small(deploy: bool = False, seed: int = 0):
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return rand_model("ecbsr-ctrl", 4, **SMALL, deploy=deploy)


def test_registered_as_a_family_with_its_inputs():
    assert "conditioned" in [f.name for f in FAMILIES]
    m = build("ecbsr-ctrl", 4)
    assert ARCHS["ecbsr-ctrl"].family == "conditioned"
    assert m.info.inputs == ("noise", "jpeg") and m.info.in_channels == 3 and m.info.color_space == "rgb"
    assert m.info.receptive_field == 14 and m.info.name == "ecbsr-ctrl-m12c64"
    assert m.module.backbone[0].conv3x3.weight.shape[1] == 5  # RGB + 2 level maps


def test_level_maps_values_and_per_image_levels():
    x = torch.rand(2, 3, 5, 7)
    maps = level_maps(x, torch.tensor([0.0, 25.0]), 100)
    assert maps.shape == (2, 2, 5, 7)
    assert torch.allclose(maps[:, 0, 0, 0], torch.tensor([0.0, 0.5]))
    assert torch.allclose(maps[:, 1], torch.zeros(2, 5, 7))
    assert torch.allclose(level_maps(x, 50, 10)[:, :, 2, 3], torch.ones(2, 2))
    with pytest.raises(ShapeError, match="one per image"):
        level_maps(x, torch.tensor([1.0, 2.0, 3.0]), 50)


def test_forward_takes_floats_or_per_image_tensors():
    m = small()
    x = torch.rand(2, 3, 9, 11)
    with torch.no_grad():
        both = m(x, noise=torch.tensor([5.0, 30.0]), jpeg=torch.tensor([90.0, 40.0]))
        first = m(x[:1], noise=5.0, jpeg=90)
        second = m(x[1:], noise=torch.tensor(30.0), jpeg=40.0)
        other = m(x[:1], noise=40.0, jpeg=90)
    assert both.shape == (2, 3, 36, 44)
    assert torch.allclose(both[:1], first, atol=1e-6) and torch.allclose(both[1:], second, atol=1e-6)
    assert not torch.allclose(first, other)  # the levels reach the network


@pytest.mark.parametrize("arch", ["ecbsr-ctrl", "ecbsr-ctrl-gated"])
def test_without_levels_it_estimates_them_per_image(arch):
    from srkit.degrade.estimate import estimate_levels_batch

    m = small() if arch == "ecbsr-ctrl" else rand_model(arch, 4, **SMALL, clean_module_nums=2, clean_channel_nums=6)
    x = torch.rand(1, 3, 24, 24)
    noise, jpeg = estimate_levels_batch(x)
    with torch.no_grad():
        assert torch.allclose(m(x), m(x, noise=noise, jpeg=jpeg))
        assert torch.allclose(m(x, noise=3.0), m(x, noise=3.0, jpeg=jpeg))


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_deploy_computes_the_same_function(scale):
    torch.manual_seed(scale)
    m = rand_model("ecbsr-ctrl", scale, **SMALL)
    d = deploy(m)
    assert d.info.options["deploy"] is True and d.info.inputs == m.info.inputs
    assert len(d.state_dict()) < len(m.state_dict())  # branches folded, head included
    x = torch.rand(2, 3, 13, 10)
    with torch.no_grad():
        for noise, jpeg in ((0.0, 100.0), (17.0, 55.0), (torch.tensor([50.0, 3.0]), torch.tensor([10.0, 95.0]))):
            assert torch.allclose(m(x, noise=noise, jpeg=jpeg), d(x, noise=noise, jpeg=jpeg), atol=1e-5)


def test_starts_as_the_blind_model_it_is_initialised_from():
    blind = load_model("real-x4")
    ctrl = build("ecbsr-ctrl", 4, **blind.info.options).eval()
    ctrl.module.load_blind_state_dict(blind.module.state_dict())
    x = torch.rand(1, 3, 20, 18)
    with torch.no_grad():
        ref = blind(x)
        for noise, jpeg in ((0.0, 100.0), (50.0, 10.0), (12.5, 77.5)):
            assert torch.equal(ctrl(x, noise=noise, jpeg=jpeg), ref)


def test_blind_start_refuses_other_networks():
    ctrl = build("ecbsr-ctrl", 4, **SMALL).module
    assert isinstance(ctrl, ConditionedECBSR)
    other = build("ecbsr-m16c64", 4, module_nums=2, channel_nums=16, colors=3).module
    with pytest.raises(ConfigError, match="not the blind ECBSR"):
        ctrl.load_blind_state_dict(other.state_dict())
    deployed = build("ecbsr-m16c64", 4, module_nums=2, channel_nums=8, colors=3, deploy=True).module
    with pytest.raises(ConfigError, match="not the blind ECBSR"):
        ctrl.load_blind_state_dict(deployed.state_dict())  # training form vs deployed form


def test_same_mac_budget_as_the_blind_model_plus_the_head():
    blind = load_model("real-x4")
    ctrl = build("ecbsr-ctrl", 4, **blind.info.options)
    shape = (1, 3, 32, 32)
    extra = count_macs(ctrl.module, shape) - count_macs(blind.module, shape)
    assert extra == 2 * 9 * 64 * 32 * 32  # two more input channels of the head 3x3 conv
    assert extra / count_macs(blind.module, shape) < 0.003


def test_save_load_round_trip(tmp_path):
    for m in (small(), deploy(small())):
        path = save_model(m, tmp_path / f"ctrl-{len(m.state_dict())}.safetensors")
        back = load_model(path)
        assert back.info == m.info and back.info.inputs == ("noise", "jpeg")
        x = torch.rand(1, 3, 8, 9)
        with torch.no_grad():
            assert torch.equal(back(x, noise=8.0, jpeg=60.0), m(x, noise=8.0, jpeg=60.0))


def test_exports_refuse_it_with_one_line():
    from srkit.export import export_torchscript

    with pytest.raises(ConfigError, match="takes per-call inputs") as e:
        export_torchscript(copy.deepcopy(small()), "/nonexistent/x.pt")
    assert "\n" not in str(e.value)
    try:
        from srkit.export import export_onnx
    except ImportError:  # pragma: no cover - onnx is an extra
        return
    with pytest.raises(ConfigError, match="takes per-call inputs"):
        export_onnx(small(), "/nonexistent/x.onnx")


def test_the_onnxruntime_backend_refuses_it():
    from srkit.infer import Upscaler

    with pytest.raises(ConfigError, match="extra inputs"):
        Upscaler(small(), backend="onnxruntime")


@pytest.mark.parametrize("form", [False, True])
def test_checkpoints_without_metadata_are_recognised(form):
    from srkit.models import model_from_state_dict

    m = small(deploy=form)
    found = model_from_state_dict(m.module.state_dict())
    assert found.info.arch == "ecbsr-ctrl" and found.info.scale == 4 and found.info.inputs == ("noise", "jpeg")
    assert found.info.options["module_nums"] == 2 and found.info.options["deploy"] is form
    x = torch.rand(1, 3, 7, 6)
    with torch.no_grad():
        assert torch.equal(found(x, noise=9.0, jpeg=70.0), m(x, noise=9.0, jpeg=70.0))
    blind = load_model("real-x4")  # a plain ECBSR stays an ECBSR
    assert model_from_state_dict(blind.module.state_dict()).info.arch == "ecbsr-m16c64"
