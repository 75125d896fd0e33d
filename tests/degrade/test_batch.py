"""Batched degradation: a batch's LR is each image degraded alone, whatever else is in the batch."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import srkit.degrade.batch as batch
from srkit.degrade.batch import replay_one_by_one
from srkit.degrade.canvas import buckets, pad_images
from srkit.degrade.jpeg import jpeg_differentiable
from srkit.degrade.noise import add_gaussian_noise, add_poisson_noise, gaussian_field, poisson_field
from srkit.degrade.pipeline import Degradation

LEVEL = 1 / 255 + 1e-6  # one 8-bit level: what float rounding of the batched kernels may flip


def textured(b: int, h: int, w: int, seed: int = 0, c: int = 3) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    small = torch.rand(b, c, max(1, h // 8), max(1, w // 8), generator=g)
    x = F.interpolate(small, size=(h, w), mode="bicubic", align_corners=False)
    return (x + 0.05 * torch.rand(b, c, h, w, generator=g)).clamp(0, 1)


def one_by_one(hr: torch.Tensor, record: list[dict]) -> torch.Tensor:
    """What a record means: the op functions applied one after the other to one (1, C, H, W) image."""
    return replay_one_by_one(hr, record)


# Every op, random sizes (some tiny: replicated borders), shuffled orders, both JPEG backends, gray noise.
EVERYTHING = {"steps": [
    {"op": "resize", "up_down_keep": [0.3, 0.5, 0.2], "up": [1.0, 1.5], "down": [0.03, 1.0]},
    {"op": "blur", "sigma": [0.2, 3.0], "sinc_prob": 0.3},
    {"op": "noise", "gaussian_prob": 0.5, "gray_prob": 0.5},
    {"op": "sharpen", "prob": 0.7},
    {"op": "jpeg", "prob": 0.5, "backend": "differentiable"},
    {"op": "jpeg", "prob": 0.5},
    {"op": "shuffle", "steps": [{"op": "blur", "prob": 0.5}, {"op": "sharpen", "prob": 0.5},
                                {"op": "jpeg", "backend": "differentiable", "prob": 0.5},
                                {"op": "noise", "prob": 0.5}]},
    {"op": "to_target"},
    {"op": "jpeg", "backend": "differentiable"},
]}


@pytest.fixture(params=[True, False], ids=["cpu-path", "device-path"])
def path(request, monkeypatch):
    """Run with the CPU's in-place per-image noise / libjpeg, and with the bucketed path CUDA batches take."""
    monkeypatch.setattr(batch, "PER_IMAGE_ON_CPU", request.param)
    return request.param


@pytest.mark.parametrize("preset", ["realesrgan", "bsrgan", "camera"])
def test_batched_replay_equals_stacked_single_image_replays(preset, path):
    hr = textured(4, 64, 64, seed=1)
    before = hr.clone()
    lr, records = Degradation(preset)(hr, 4, torch.Generator().manual_seed(5))
    singles = torch.cat([Degradation.replay(hr[i : i + 1], 4, [records[i]]) for i in range(4)])
    assert lr.shape == singles.shape == (4, 3, 16, 16)
    assert float((lr - singles).abs().max()) <= LEVEL
    meaning = torch.cat([one_by_one(hr[i : i + 1], records[i]) for i in range(4)])
    assert float((lr - meaning).abs().max()) <= LEVEL
    assert torch.equal(hr, before)  # the caller's batch is not written into


@pytest.mark.parametrize("preset", ["realesrgan", "bsrgan", "camera"])
def test_an_images_lr_does_not_depend_on_the_rest_of_the_batch(preset, path):
    d = Degradation(preset)
    hr = textured(6, 64, 64, seed=3)
    record = d.sample((64, 64), 4, torch.Generator().manual_seed(42))
    alone = Degradation.replay(hr[:1], 4, [record])
    for trial in range(2):
        others = [d.sample((64, 64), 4, torch.Generator().manual_seed(100 + 10 * trial + k)) for k in range(5)]
        lr = Degradation.replay(torch.cat([hr[1:3], hr[:1], hr[3:]]), 4, others[:2] + [record] + others[2:])
        assert float((lr[2:3] - alone).abs().max()) <= LEVEL


@pytest.mark.parametrize("channels", [3, 1])
def test_every_op_on_images_of_different_sizes_keeps_its_meaning(channels, path):
    d = Degradation(EVERYTHING)
    smallest = 72
    for seed in range(3):
        hr = textured(6, 72, 64, seed=seed, c=channels)
        lr, records = d(hr, 4, torch.Generator().manual_seed(seed))
        meaning = torch.cat([one_by_one(hr[i : i + 1], records[i]) for i in range(6)])
        assert lr.shape == (6, channels, 18, 16)
        assert float((lr - meaning).abs().max()) <= LEVEL
        smallest = min(smallest, *(min(r["size"]) for rec in records for r in rec if r["op"] == "resize"))
    assert smallest < 8  # images smaller than a blur kernel's reach happened (replicated borders)


def test_cpu_and_device_paths_agree_bit_for_bit(monkeypatch):
    hr = textured(5, 72, 64, seed=7)
    d = Degradation(EVERYTHING)
    records = [d.sample((72, 64), 4, torch.Generator().manual_seed(s)) for s in range(5)]
    monkeypatch.setattr(batch, "PER_IMAGE_ON_CPU", True)
    a = Degradation.replay(hr, 4, records)
    monkeypatch.setattr(batch, "PER_IMAGE_ON_CPU", False)
    b = Degradation.replay(hr, 4, records)
    assert torch.equal(a, b)


@pytest.mark.parametrize("preset", ["realesrgan", EVERYTHING])
def test_pixels_outside_the_images_are_never_read(preset, path, monkeypatch):
    """Canvas buffers are left uninitialised: fill them with NaN (bytes with 0xAB) and nothing changes."""
    real = batch._blank

    def poisoned(shape, dtype, device, pin=False):
        t = real(shape, dtype, device, pin)
        return t.fill_(float("nan") if dtype.is_floating_point else 0xAB)

    hr = textured(6, 64, 64, seed=11)
    d = Degradation(preset)
    records = [d.sample((64, 64), 4, torch.Generator().manual_seed(s)) for s in range(6)]
    clean = Degradation.replay(hr, 4, records)
    monkeypatch.setattr(batch, "_blank", poisoned)
    assert torch.equal(Degradation.replay(hr, 4, records), clean)


def test_the_same_seed_gives_the_same_batch():
    hr = textured(8, 64, 64, seed=2)
    d = Degradation("bsrgan")
    a, ra = d(hr, 4, torch.Generator().manual_seed(9))
    b, rb = d(hr, 4, torch.Generator().manual_seed(9))
    assert ra == rb and torch.equal(a, b)
    assert torch.equal(Degradation.replay(hr, 4, ra), a)


def test_the_next_op_is_the_most_common_one():
    assert batch.next_op(["jpeg", "resize", "jpeg"]) == "jpeg"
    assert batch.next_op(["jpeg", "resize"]) == "resize"  # ties: the order of OPS
    assert batch.next_op(["sharpen"]) == "sharpen"


# ------------------------------------------------------------------------------------------------ canvas


def test_pad_images_pads_each_image_at_its_own_border():
    sizes = [(20, 17), (9, 30), (3, 5), (20, 30)]
    canvas = torch.rand(4, 3, 20, 30)
    own = [4, 2, 4, 1]  # (3, 5) with pad 4 cannot reflect: replicated
    out = pad_images(canvas, sizes, 6, own)
    assert out.shape == (4, 3, 32, 42)
    for i, ((h, w), p) in enumerate(zip(sizes, own)):
        mode = "reflect" if min(h, w) > p else "replicate"
        want = F.pad(canvas[i : i + 1, :, :h, :w], (p, p, p, p), mode=mode)
        got = out[i : i + 1, :, 6 - p : 6 + h + p, 6 - p : 6 + w + p]
        assert torch.equal(got, want), i
    same = pad_images(canvas, [(20, 30)] * 4, 6, [6] * 4)  # all full size: plain reflect padding
    assert torch.equal(same, F.pad(canvas, (6, 6, 6, 6), mode="reflect"))


def test_buckets_partition_the_images_with_bounded_waste():
    g = torch.Generator().manual_seed(0)
    sizes = [tuple(int(v) for v in torch.randint(5, 300, (2,), generator=g)) for _ in range(40)]
    sizes += [(224, 224)] * 10
    items = list(range(0, 50, 1))
    groups = buckets(items, sizes, 0.3)
    assert sorted(i for idx, _, _ in groups for i in idx) == items
    for idx, h, w in groups:
        assert h == max(sizes[i][0] for i in idx) and w == max(sizes[i][1] for i in idx)
        own = sum(sizes[i][0] * sizes[i][1] for i in idx)
        assert len({sizes[i] for i in idx}) == 1 or len(idx) * h * w <= 1.3 * own
    assert any(set(range(40, 50)) <= set(idx) for idx, _, _ in groups)  # equal sizes stay together
    assert buckets([3, 1], sizes, 0.3) == buckets([1, 3], sizes, 0.3)


def test_differentiable_jpeg_of_a_canvas_codes_each_image_alone():
    sizes = [(40, 33), (17, 9), (40, 40), (1, 2)]
    canvas = torch.rand(4, 3, 40, 40)
    q = torch.tensor([30.0, 50.0, 75.0, 90.0])
    out = jpeg_differentiable(canvas, q, sizes=sizes)
    for i, (h, w) in enumerate(sizes):
        alone = jpeg_differentiable(canvas[i : i + 1, :, :h, :w], float(q[i]))
        assert torch.allclose(out[i : i + 1, :, :h, :w], alone, atol=1e-6), i


def test_noise_fields_are_the_single_image_noise():
    x = textured(1, 24, 20, seed=4)
    for gray in (False, True):
        f = gaussian_field(3, 24, 20, gray, torch.Generator().manual_seed(3))
        want = add_gaussian_noise(x, 0.1, gray=gray, generator=torch.Generator().manual_seed(3))
        assert torch.equal((x + f * torch.tensor(0.1)).clamp(0, 1), want)
        f = poisson_field(x, gray, torch.Generator().manual_seed(3))
        want = add_poisson_noise(x, 2.0, gray=gray, generator=torch.Generator().manual_seed(3))
        assert torch.equal((x + f * torch.tensor(2.0)).clamp(0, 1), want)
