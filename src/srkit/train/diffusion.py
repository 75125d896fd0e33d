"""Training a diffusion model (`srkit.archs.resshift`): each step predicts x0 from a noised HR batch.

The trainer (`srkit.train.loop`) switches to this mode by itself when the model is stochastic
(`ModelInfo.noise_channels` > 0); there is no config key. A step:

1. for each sample a timestep t uniform in 1..T and a standard normal eps (HR-sized), drawn from a generator seeded
   by (run seed, rank, step), so a resumed run draws exactly the same (bit-identical resume);
2. x_t = x0 + eta_t (y0 - x0) + kappa sqrt(eta_t) eps from the HR patch x0 and the upsampled LR y0
   (`ResShiftSR.diffuse`, in fp32, outside autocast);
3. the network's x0 prediction from (LR, x_t, t), under the run's autocast; the run's ``loss:`` terms compare it with
   the HR patch (ResShift trains with MSE on x0: ``loss: [{name: mse}]``); backward, EMA and checkpoints as in any
   run.

Validation samples with the model's default number of steps and its fixed coordinate noise (the module called
without a noise field), so validation PSNR is that of one deterministic sample. The mode refuses a ``gan:`` or
``distill:`` section (one line).
"""

from __future__ import annotations

import torch
from torch import nn

from srkit.errors import ConfigError
from srkit.train.config import RunConfig

__all__ = ["DiffusionSteps", "diffusion_module"]


def diffusion_module(model: nn.Module) -> nn.Module:
    """The diffusion module inside an `SRModel` (its ``module``), checked to have ``diffuse`` and ``timesteps``."""
    module = getattr(model, "module", model)
    if not (callable(getattr(module, "diffuse", None)) and isinstance(getattr(module, "timesteps", None), int)):
        raise ConfigError(f"{type(module).__name__} is stochastic but has no diffusion training form (diffuse, "
                          "timesteps)")
    return module


class DiffusionSteps:
    """The diffusion part of each training step: ``inputs(lr, hr, seed)`` -> the keyword inputs (``x_t``, ``t``)
    of the network's training prediction.

    Args:
        cfg: the run config (a ``gan`` or ``distill`` section is refused).
        model: the `SRModel` being trained (unwrapped).
    """

    def __init__(self, cfg: RunConfig, model: nn.Module):
        arch = cfg.model.arch
        if cfg.gan is not None:
            raise ConfigError(f"gan: adversarial training of the diffusion model {arch} is not supported")
        if cfg.distill is not None:
            raise ConfigError(f"distill: distillation into the diffusion model {arch} is not supported")
        self.module = diffusion_module(model)
        self.timesteps = int(getattr(self.module, "timesteps"))

    def inputs(self, lr: torch.Tensor, hr: torch.Tensor, seed: int) -> dict[str, torch.Tensor]:
        """{"x_t", "t"} for the batch (LR (B, C, h, w), HR (B, C, sh, sw) on the training device): t (B,) int64 in
        1..T and eps drawn on the CPU from `seed` (the same on every device), x_t built in fp32."""
        gen = torch.Generator(device="cpu").manual_seed(int(seed))
        t = torch.randint(1, self.timesteps + 1, (hr.shape[0],), generator=gen)
        eps = torch.randn(tuple(hr.shape), generator=gen)
        t, eps = t.to(hr.device), eps.to(hr.device)
        with torch.autocast(hr.device.type, enabled=False), torch.no_grad():
            x_t = getattr(self.module, "diffuse")(lr, hr, t, eps)
        return {"x_t": x_t, "t": t}
