"""Monotonic cleaning: a training term that makes a conditioned model's output smoother as the strength rises.

A conditioned model (`srkit.archs.conditioned`) is trained with L1 at each sample's true levels, which says
nothing about what it does at the other levels a user may set with ``--strength``: nothing stops it from
sharpening again when told of more damage than there is (real-x4-ctrl's high-frequency energy rose from strength
0.75 to 1 on 26 of 42 Set14 cases). This term states the contract directly. Each step, ``samples`` images of the
batch are run at two strengths ``s_a < s_b`` (levels ``noise = 50 s``, ``jpeg = 100 - 90 s``,
`srkit.infer.conditioning.levels_at`) drawn per image, and the term is::

    weight * mean_i relu(HF(sr_b) - (1 - margin * (s_b - s_a)) * HF(sr_a)) / HF(sr_a)

where HF is the mean absolute 4-neighbour Laplacian of the output's BT.601 luma (what ``scripts/strength_report.py``
checks): HF must fall by at least ``margin`` per unit of strength. No target image is involved, so the term needs
no data beyond the LR batch.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from srkit.infer.conditioning import levels_at
from srkit.train.config import MonotoneCfg

_LUMA = (0.299, 0.587, 0.114)


def hf_energy(sr: Tensor) -> Tensor:
    """(B,) mean absolute 4-neighbour Laplacian of the BT.601 luma of `sr` (B, C, H, W) in [0, 1], on 0..255."""
    with torch.autocast(sr.device.type, enabled=False):  # fp32 even inside a bf16 step: 0..255 needs the bits
        x = sr.float().clamp(0, 1) * 255.0
        y = x[:, 0] if x.shape[1] == 1 else torch.einsum("c,bchw->bhw", x.new_tensor(_LUMA), x)
        lap = 4 * y[:, 1:-1, 1:-1] - y[:, :-2, 1:-1] - y[:, 2:, 1:-1] - y[:, 1:-1, :-2] - y[:, 1:-1, 2:]
        return lap.abs().mean(dim=(1, 2))


def strength_pairs(n: int, seed: int) -> tuple[Tensor, Tensor]:
    """(s_a, s_b), each (n,) in [0, 1] with s_b - s_a in [0.1, 1]: s_a uniform on [0, 0.9], s_b uniform above it
    by at least 0.1; drawn from a generator seeded by `seed` (a run resumes bit-identically)."""
    g = torch.Generator().manual_seed(seed)
    a = torch.rand(n, generator=g) * 0.9
    b = a + 0.1 + torch.rand(n, generator=g) * (0.9 - a)
    return a, b


class MonotoneStrength:
    """The monotonic-cleaning term of one training run (see the module docstring)."""

    def __init__(self, cfg: MonotoneCfg):
        self.cfg = cfg

    def loss(self, net: nn.Module, lr_img: Tensor, seed: int) -> tuple[Tensor, dict[str, float]]:
        """(weighted term, {"monotone": unweighted value, "monotone_violations": share of pairs that violate})
        for the first `samples` images of `lr_img` (B, C, h, w) through `net` (in the caller's autocast)."""
        x = lr_img[: self.cfg.samples]
        s_a, s_b = strength_pairs(x.shape[0], seed)
        dev = x.device
        hf = []
        for s in (s_a, s_b):
            noise, jpeg = levels_at(s)
            hf.append(hf_energy(net(x, noise=noise.to(dev), jpeg=jpeg.to(dev))))
        hf_a, hf_b = hf
        bound = (1.0 - self.cfg.margin * (s_b - s_a)).to(dev) * hf_a
        excess = torch.relu(hf_b - bound) / hf_a.clamp(min=1e-3)
        term = excess.mean()
        return self.cfg.weight * term, {"monotone": float(term.detach()),
                                        "monotone_violations": float((excess > 0).float().mean())}


__all__ = ["MonotoneStrength", "hf_energy", "strength_pairs"]
