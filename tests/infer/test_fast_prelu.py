"""The Upscaler's PReLU replacement computes exactly what nn.PReLU computes, and never touches the caller's model."""

import pytest
import torch

from srkit.infer import Upscaler
from srkit.infer.network import MaxFormPReLU
from helpers import rand_model


@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("slopes", [(0.0, 1.0), (-2.0, 1.0), (1.0, 3.0)])
@pytest.mark.parametrize("channels_last", [False, True])
def test_max_form_equals_prelu(dtype, slopes, channels_last):
    g = torch.Generator().manual_seed(0)
    prelu = torch.nn.PReLU(8)
    with torch.no_grad():
        prelu.weight.copy_(torch.empty(8).uniform_(*slopes, generator=g))
    x = (torch.randn(2, 8, 9, 7, generator=g) * 3).to(dtype)
    if channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    assert MaxFormPReLU.applies_to(prelu)
    ref = torch.nn.functional.prelu(x, prelu.weight.to(dtype))
    assert torch.equal(MaxFormPReLU(prelu)(x), ref)


def test_mixed_slopes_are_left_to_prelu():
    prelu = torch.nn.PReLU(2)
    with torch.no_grad():
        prelu.weight.copy_(torch.tensor([0.5, 2.0]))
    assert not MaxFormPReLU.applies_to(prelu)


def test_upscaler_swaps_prelu_only_in_its_own_copy():
    m = rand_model("ecbsr-m4c16", 2)
    before = sum(isinstance(x, torch.nn.PReLU) for x in m.modules())
    up = Upscaler(m, dtype="bf16")
    assert sum(isinstance(x, torch.nn.PReLU) for x in m.modules()) == before > 0
    assert not any(isinstance(x, torch.nn.PReLU) for x in up.network.modules())
    # Same result as the bf16 path built by hand with the stock PReLU.
    from srkit.deployment import deploy
    from srkit.infer.network import AutocastModule, _cast_conv_weights
    from srkit.models import SRModel

    d = deploy(m)
    mod = _cast_conv_weights(d.module, torch.bfloat16, in_place=True).to(memory_format=torch.channels_last)
    net = SRModel(AutocastModule(mod, "cpu", torch.bfloat16), d.info).eval()
    x = torch.rand(1, 1, 20, 24)
    with torch.inference_mode():
        ref = net(x.contiguous(memory_format=torch.channels_last)).float()
    assert torch.equal(up.upscale_tensor(x), ref)
