"""ECBSR's ablation options: edge branches off and other upsamplers build, fold exactly and state a true receptive
field; the defaults keep the paper's keys."""

import pytest
import torch

from srkit.archs import ARCHS, build
from srkit.archs.probe import measure_receptive_field
from srkit.deployment import deploy


@pytest.mark.parametrize("upsampler", ["pixelshuffle", "deconv", "nearest_conv", "bicubic_pre"])
@pytest.mark.parametrize("scale", [2, 3, 4])
def test_upsamplers_shape_fold_and_receptive_field(upsampler, scale):
    torch.manual_seed(scale)
    m = build("ecbsr-m4c16", scale, module_nums=2, channel_nums=8, upsampler=upsampler).double().eval()
    x = torch.rand(1, 1, 23, 17, dtype=torch.float64)
    with torch.no_grad():
        y = m(x)
        assert y.shape == (1, 1, 23 * scale, 17 * scale)
        d = deploy(m)
        assert (d(x) - y).abs().max().item() < 1e-10
    rf = ARCHS["ecbsr-m4c16"].receptive_field({"module_nums": 2, "upsampler": upsampler, "scale": scale})
    # The stated field must cover what the model really reads (never smaller; exact tiling depends on it).
    assert measure_receptive_field(m, scale, in_channels=1, limit=24) <= rf


def test_edge_branches_off_drops_only_the_edge_branches():
    full = build("ecbsr-m4c16", 4)
    lean = build("ecbsr-m4c16", 4, edge_branches=False)
    kf, kl = set(full.state_dict()), set(lean.state_dict())
    assert kl < kf
    assert {k.split(".")[3] for k in kf - kl} == {"conv1x1_sbx", "conv1x1_sby", "conv1x1_lpl"}
    torch.manual_seed(0)
    lean = lean.double().eval()
    x = torch.rand(1, 1, 12, 12, dtype=torch.float64)
    with torch.no_grad():
        assert (deploy(lean)(x) - lean(x)).abs().max().item() < 1e-10
    # Deployed forms are identical in layout whatever the training form had.
    assert set(deploy(lean).state_dict()) == set(deploy(full).state_dict())


def test_unknown_upsampler_is_refused():
    with pytest.raises(ValueError, match="upsampler"):
        build("ecbsr-m4c16", 4, upsampler="magic")
