"""Exponential moving average of a model's weights, the copy that is validated and shipped."""

from __future__ import annotations

import copy
from typing import Generic, TypeVar

import torch
from torch import nn

__all__ = ["ModelEMA"]

_M = TypeVar("_M", bound=nn.Module)


class ModelEMA(Generic[_M]):
    """A frozen copy of `model` whose floating-point parameters track `decay * ema + (1 - decay) * current`.

    The effective decay ramps up as ``min(decay, (1 + n) / (10 + n))`` after n updates, so that early in a run
    (and in short runs) the average is not dominated by the random initial weights. Buffers (BatchNorm running
    statistics, counters, fixed masks) are copied, not averaged: they are statistics or constants, not weights.

    Args:
        model: the module being trained (unwrapped: not the DistributedDataParallel wrapper).
        decay: the long-run decay in (0, 1).
    """

    def __init__(self, model: _M, decay: float):
        if not 0.0 < decay < 1.0:
            raise ValueError(f"EMA decay must be in (0, 1), got {decay}")
        self.decay = float(decay)
        self.updates = 0
        self.module: _M = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)

    def current_decay(self) -> float:
        """The decay the next `update` applies."""
        return min(self.decay, (1.0 + self.updates) / (10.0 + self.updates))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        """Fold the current weights of `model` (same architecture as the copy) into the average."""
        d = self.current_decay()
        self.updates += 1
        for e, p in zip(self.module.parameters(), model.parameters(), strict=True):
            if e.is_floating_point():
                e.lerp_(p.detach(), 1.0 - d)
            else:
                e.copy_(p)
        for eb, b in zip(self.module.buffers(), model.buffers(), strict=True):
            eb.copy_(b)

    def state_dict(self) -> dict:
        """{"decay", "updates", "module": the averaged module's state dict}."""
        return {"decay": self.decay, "updates": self.updates, "module": self.module.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        """Restore what `state_dict` returned (the decay comes from the state, not the constructor)."""
        self.decay = float(state["decay"])
        self.updates = int(state["updates"])
        self.module.load_state_dict(state["module"], strict=True)
