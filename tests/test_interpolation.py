"""srkit.interpolate: network interpolation between two models of one architecture."""

from __future__ import annotations

import numpy as np
import pytest
import torch

import srkit
from srkit.errors import ConfigError, ModelLoadError
from srkit.models import load_model


def test_ends_and_midpoint_of_the_shipped_real_pair():
    a, b = load_model("real-x4"), load_model("real-x4-gan")
    sa, sb = a.module.state_dict(), b.module.state_dict()
    for alpha, want in ((0.0, sa), (1.0, sb)):
        got = srkit.interpolate("real-x4", "real-x4-gan", alpha).module.state_dict()
        assert all(torch.equal(got[k], want[k]) for k in want)
    mid = srkit.interpolate(a, b, 0.5).module.state_dict()
    for k in sa:
        torch.testing.assert_close(mid[k], (sa[k].double() + sb[k].double()).div(2).to(sa[k].dtype))
    # Inputs untouched.
    assert all(torch.equal(a.module.state_dict()[k], sa[k]) for k in sa)


def test_output_moves_between_the_two_models():
    x = torch.rand(1, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    a, b = load_model("real-x4"), load_model("real-x4-gan")
    with torch.no_grad():
        ya, yb = a(x), b(x)
        dist = [float((srkit.interpolate(a, b, t)(x) - ya).abs().mean()) for t in (0.0, 0.25, 0.5, 0.75, 1.0)]
    assert dist[0] == 0.0 and np.all(np.diff(dist) > 0)
    assert dist[-1] == pytest.approx(float((yb - ya).abs().mean()), rel=1e-5)


def test_bad_inputs():
    with pytest.raises(ConfigError, match="alpha"):
        srkit.interpolate("real-x4", "real-x4-gan", 1.5)
    with pytest.raises(ConfigError, match="alpha"):
        srkit.interpolate("real-x4", "real-x4-gan", float("nan"))
    with pytest.raises(ModelLoadError, match="same network"):
        srkit.interpolate("tiny-x4", "balanced-x4", 0.5)
