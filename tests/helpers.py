"""Helpers shared by test modules (importable because pyproject sets pytest's pythonpath to tests/)."""

from __future__ import annotations

import pytest
import torch

from srkit.archs import build


def rand_model(name: str, scale: int, **options):
    """`srkit.archs.build(name, scale, **options)` with weights nudged by a fixed-seed N(0, 0.02) so outputs are
    not trivially smooth; eval mode."""
    m = build(name, scale=scale, **options)
    g = torch.Generator().manual_seed(0)
    with torch.no_grad():
        for p in m.module.parameters():
            p.add_(torch.randn(p.shape, generator=g) * 0.02)
    return m.eval()


@pytest.fixture(autouse=True, scope="module")
def one_torch_thread():
    """Tiny tensors: one intra-op thread is fastest, and avoids OpenMP spin-waits on a busy machine."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)
