"""recurrent-vsr (multi-frame, BasicVSR-style) and recurrent-vsr-single (its same-cost single-frame counterpart):
shapes, costs within the budget, the flow estimator aligning from the start, static clips never "aligned",
detection and the clip path of `SRModel`."""

from __future__ import annotations

import pytest
import torch

from srkit.archs import build
from srkit.archs.probe import count_macs, measure_receptive_field
from srkit.archs.profile import macs_per_lr_pixel
from srkit.archs.recurrent_vsr import FlowNet, RecurrentVSR, detect_recurrent_vsr, flow_warp
from srkit.errors import ShapeError

from helpers import rand_model


def _textured(h: int = 40, w: int = 48, seed: int = 0) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(1, 3, h // 4, w // 4, generator=g)
    return torch.nn.functional.interpolate(small, size=(h, w), mode="bicubic", align_corners=False).clamp(0, 1)


def test_clip_shapes_and_one_frame_clips():
    m = rand_model("recurrent-vsr", 4, channels=8, blocks=1, flow_width=8)
    x = torch.rand(2, 5, 3, 13, 17)
    with torch.no_grad():
        y = m(x)
        assert y.shape == (2, 5, 3, 52, 68)
        # a 4-D input is B one-frame clips
        one = m(x[:, 0])
        torch.testing.assert_close(one, m(x[:, :1])[:, 0])
    assert m.info.multi_frame and m.info.frames > 1 and m.info.frame_context >= 1
    with pytest.raises(ShapeError):
        m.module(torch.rand(1, 2, 4, 8, 8))


def test_costs_within_budget_and_the_single_frame_model_costs_the_same():
    video, single = build("recurrent-vsr", 4), build("recurrent-vsr-single", 4)
    v = macs_per_lr_pixel(video) / 16
    s = macs_per_lr_pixel(single) / 16
    assert v <= 100_000 and s <= 100_000
    assert v <= s <= 1.1 * v, (v, s)  # the baseline is not cheaper, and at most 10 % dearer
    assert not single.info.multi_frame
    # the count covers the flow estimator: two flows per frame in a long clip, none for one frame
    shape = (1, 8, 3, 32, 32)
    with_flow = count_macs(video.module, shape)
    alone = count_macs(video.module, (1, 3, 32, 32)) * 8
    assert with_flow > alone + 2 * 7 * 32 * 32 * 1000


def test_single_frame_receptive_field_is_what_its_spec_says():
    m = build("recurrent-vsr-single", 2, blocks=2)
    assert measure_receptive_field(m.module, 2, limit=24) == m.info.receptive_field


def test_flow_estimator_aligns_before_any_training():
    image = _textured(48, 56)
    shifted = torch.roll(image, shifts=(1, -2), dims=(2, 3))  # nbr[p] = ref[p - (1, -2)]
    net = FlowNet()
    with torch.no_grad():
        flow = net(shifted, image)  # flow_warp(image, flow) should match shifted: flow = (dx, dy) = (2, -1)
    inner = flow[0, :, 8:-8, 8:-8]
    assert abs(float(inner[0].mean()) - 2.0) < 0.2 and abs(float(inner[1].mean()) + 1.0) < 0.2
    err = (flow_warp(image, flow) - shifted)[..., 8:-8, 8:-8].abs().mean()
    assert float(err) < 0.3 * float((image - shifted)[..., 8:-8, 8:-8].abs().mean())


def test_static_clip_gives_zero_flow_so_the_same_as_no_alignment(monkeypatch):
    """Identical frames give exactly zero flow (trained or not), so a static clip's output is the network's with
    its alignment switched off."""
    m = rand_model("recurrent-vsr", 2, channels=8, blocks=1, flow_width=8)
    with torch.no_grad():
        for p in m.module.flow.parameters():  # a "trained" flow residual (it starts at zero)
            p.add_(0.1 * torch.randn(p.shape, generator=torch.Generator().manual_seed(1)))
    frame = _textured(16, 20)
    clip = frame[:, None].expand(1, 6, 3, 16, 20).contiguous()
    with torch.no_grad():
        assert float(m.module.flow(frame, frame.clone()).abs().max()) == 0.0
        y = m(clip)
        monkeypatch.setattr(FlowNet, "forward", lambda self, ref, nbr: torch.zeros_like(ref[:, :2]))
        assert torch.equal(m(clip), y)


def test_detection_reads_the_options_back():
    for name, options in (("recurrent-vsr", dict(channels=8, blocks=3, recon_blocks=2, flow_width=8,
                                                flow_levels=2)),
                          ("recurrent-vsr-single", dict(channels=8, blocks=3, recon_blocks=0))):
        for scale in (2, 3, 4):
            sd = build(name, scale, **options).module.state_dict()
            found = detect_recurrent_vsr(sd)
            assert found is not None and found[0] == name and found[1] == scale
            assert {k: found[2][k] for k in options} == options


def test_srmodel_takes_gray_clips_and_refuses_other_shapes():
    m = rand_model("recurrent-vsr", 2, channels=8, blocks=1, flow_width=8)
    gray = torch.rand(1, 3, 1, 10, 12)
    with torch.no_grad():
        y = m(gray)
        torch.testing.assert_close(y, m(gray.expand(-1, -1, 3, -1, -1)).mean(dim=2, keepdim=True))
    with pytest.raises(ValueError, match="clips"):
        m(torch.rand(2, 3))
    single = build("recurrent-vsr-single", 2)
    with pytest.raises(ValueError):
        single(torch.rand(1, 2, 3, 8, 8))


def test_alignment_loss_in_training_mode_only():
    module = RecurrentVSR(2, channels=8, blocks=1, flow_width=8, align_loss=0.5)
    x = torch.rand(2, 3, 3, 12, 12)
    module.train()
    module(x)
    aux = module.auxiliary_loss()
    assert aux is not None and aux.requires_grad and float(aux.detach()) > 0
    assert module.auxiliary_loss() is None  # taken once
    module.eval()
    with torch.no_grad():
        module(x)
    assert module.auxiliary_loss() is None
